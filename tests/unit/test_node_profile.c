/*
 * test_node_profile.c - SALCHECK_NODE_PROFILE (common/nn/model.c): the
 * per-node CPU time of a model's passes, appended to the file when the model
 * is destroyed, read by bench/node_profile.py.
 *
 * - Without the variable nothing is written (in a child process: the
 *   variable is read once per process).
 * - With it: one block per model, a line for every node that ran, with the
 *   samples each direction saw: two fused passes and one plain pass of batch
 *   2 give the convolution 6 forward samples and its folded BN and ReLU 2
 *   (the fused passes compute them inside the convolution), one backward of
 *   batch 2 gives 2 backward samples; the times are non-negative and the
 *   convolution's forward time is positive. A second model appends a second
 *   block.
 * - The profile changes no result: the logits and the input gradient with it
 *   are bit-identical to a child process's without it.
 * - Processes sharing the file (the ranks of a run): six children, each a
 *   model of 300 nodes (a block of about 20 KB, several stdio buffers),
 *   free their models at one signal; the file holds six whole blocks of 300
 *   well-formed lines each (appended through stdio's 4 KB buffers instead,
 *   lines of different blocks interleaved in 2 of 5 runs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/model.h"
#include "sc.h"
#include "testhelp.h"

#define BATCH 2

static nn_model_t *small_model(void)
{
    nn_model_t *m = nn_model_create(3, 12, 12);
    int x = 0;
    x = nn_add_conv(m, "conv", x, 8, 3, 3, 1, 1, NULL, 1, 0);
    x = nn_add_bn(m, "bn", x, 1e-3f, 0.99f, 1, 1);
    x = nn_add_relu(m, "relu", x);
    x = nn_add_maxpool(m, "pool", x, 2, 2, 2, 2, NULL, 0, 0);
    x = nn_add_gap(m, "gap", x);
    x = nn_add_dense(m, "dense", x, 4, 1);
    if (x < 0 || nn_model_finalize(m, 11) < 0 || nn_model_prepare(m, BATCH) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    return m;
}

/* Two fused passes, a backward, a plain pass; logits and dx of the backward. */
static int run_passes(nn_model_t *m, float *logits, float *dx)
{
    float x[BATCH * 3 * 12 * 12];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = (float)sin(0.37 * (double)i);
    const int target[BATCH] = {1, 3};
    nn_backward_opts_t o = {.input_grad = 1};
    if (nn_forward_fused(m, x, BATCH) < 0 || nn_forward_fused(m, x, BATCH) < 0)
        return -1;
    const nn_node_t *out = &m->nodes[nn_logits_node(m)];
    memcpy(logits, out->out, sizeof(float) * BATCH * 4);
    if (nn_backward_logit(m, target, dx, &o) < 0)
        return -1;
    return nn_forward(m, x, BATCH, 0);
}

typedef struct {
    char name[64];
    double fwd, fwd_n, bwd, bwd_n;
} prof_row_t;

/* Rows of block `which` (0-based); the number of blocks in *blocks. */
static int read_profile(const char *path, int which, prof_row_t *rows, int max, int *blocks)
{
    FILE *f = fopen(path, "r");
    int n = 0, block = -1;
    char line[512];
    *blocks = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "# model", 7)) {
            block++;
            (*blocks)++;
            continue;
        }
        if (block != which || n >= max)
            continue;
        prof_row_t r;
        int id, c, h, w, cin, kh, kw, sh, sw, g;
        char op[32];
        if (sscanf(line, "%d\t%63s\t%31s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%lf\t%lf\t%lf\t%lf", &id,
                   r.name, op, &c, &h, &w, &cin, &kh, &kw, &sh, &sw, &g, &r.fwd, &r.fwd_n, &r.bwd,
                   &r.bwd_n) != 16) {
            fclose(f);
            return -2;
        }
        rows[n++] = r;
    }
    fclose(f);
    return n;
}

static const prof_row_t *find_row(const prof_row_t *rows, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name))
            return &rows[i];
    return NULL;
}

/* The logits and dx of a child process run without the variable, through a pipe. */
static int child_without(float *logits, float *dx, const char *path)
{
    int fd[2];
    if (pipe(fd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        unsetenv("SALCHECK_NODE_PROFILE");
        nn_model_t *m = small_model();
        float l[BATCH * 4], d[BATCH * 3 * 12 * 12];
        int ok = m && run_passes(m, l, d) == 0;
        nn_model_destroy(m);
        ok = ok && write(fd[1], l, sizeof l) == (ssize_t)sizeof l &&
             write(fd[1], d, sizeof d) == (ssize_t)sizeof d;
        _exit(ok && access(path, F_OK) != 0 ? 0 : 1);
    }
    close(fd[1]);
    ssize_t a = read(fd[0], logits, sizeof(float) * BATCH * 4);
    size_t got = 0, want = sizeof(float) * BATCH * 3 * 12 * 12;
    while (got < want) {
        ssize_t r = read(fd[0], (char *)dx + got, want - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return a == (ssize_t)(sizeof(float) * BATCH * 4) && got == want && WIFEXITED(status) &&
                   WEXITSTATUS(status) == 0
               ? 0
               : -1;
}

/* The file of both tests (the variable is read once per process). */
static char path[512];

static void test_node_profile(void)
{
    unlink(path);
    float l0[BATCH * 4], d0[BATCH * 3 * 12 * 12], l1[BATCH * 4], d1[BATCH * 3 * 12 * 12];
    TH_CHECK(child_without(l0, d0, path) == 0,
             "the child without SALCHECK_NODE_PROFILE failed or wrote %s", path);

    setenv("SALCHECK_NODE_PROFILE", path, 1);
    nn_model_t *m = small_model();
    TH_CHECK(m != NULL, "model");
    if (!m)
        return;
    TH_CHECK(run_passes(m, l1, d1) == 0, "passes");
    TH_CHECK(access(path, F_OK) != 0, "the profile is written before the model is destroyed");
    nn_model_destroy(m);
    TH_CHECK(!memcmp(l0, l1, sizeof l0) && !memcmp(d0, d1, sizeof d0),
             "the profile changed the logits or the input gradient");

    prof_row_t rows[16];
    int blocks = 0, n = read_profile(path, 0, rows, 16, &blocks);
    TH_CHECK(n > 0 && blocks == 1, "read %d rows in %d blocks of %s", n, blocks, path);
    const prof_row_t *conv = find_row(rows, n, "conv"), *bn = find_row(rows, n, "bn");
    const prof_row_t *relu = find_row(rows, n, "relu"), *dense = find_row(rows, n, "dense");
    TH_CHECK(conv && bn && relu && dense, "a node is missing from the profile");
    if (!conv || !bn || !relu || !dense)
        return;
    TH_CHECK(conv->fwd_n == 3 * BATCH && conv->bwd_n == BATCH,
             "conv: %g forward and %g backward samples, expected %d and %d", conv->fwd_n,
             conv->bwd_n, 3 * BATCH, BATCH);
    TH_CHECK(bn->fwd_n == BATCH && relu->fwd_n == BATCH,
             "the folded BN and its ReLU ran in %g and %g samples, expected %d (the plain pass)",
             bn->fwd_n, relu->fwd_n, BATCH);
    TH_CHECK(dense->fwd_n == 3 * BATCH && dense->bwd_n == BATCH, "dense: %g / %g samples",
             dense->fwd_n, dense->bwd_n);
    for (int i = 0; i < n; i++)
        TH_CHECK(rows[i].fwd >= 0 && rows[i].bwd >= 0, "%s: negative time", rows[i].name);
    TH_CHECK(conv->fwd > 0, "the convolution's forward took no time");

    /* a second model appends its own block */
    m = small_model();
    TH_CHECK(m && run_passes(m, l1, d1) == 0, "second model");
    nn_model_destroy(m);
    n = read_profile(path, 1, rows, 16, &blocks);
    TH_CHECK(blocks == 2 && n > 0 && find_row(rows, n, "conv"), "%d blocks after a second model",
             blocks);
    unlink(path);
}

#define CHAIN 298
#define NPROC 6

/* A convolution, CHAIN ReLUs and a dense layer (300 nodes after the input). */
static nn_model_t *chain_model(void)
{
    nn_model_t *m = nn_model_create(1, 8, 8);
    int x = nn_add_conv(m, "conv", 0, 4, 3, 3, 1, 1, NULL, 1, 1);
    for (int i = 0; i < CHAIN && x >= 0; i++) {
        char name[32];
        snprintf(name, sizeof name, "relu_%03d", i);
        x = nn_add_relu(m, name, x);
    }
    x = x >= 0 ? nn_add_dense(m, "dense", x, 3, 1) : x;
    if (x < 0 || nn_model_finalize(m, 5) < 0 || nn_model_prepare(m, 1) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    return m;
}

static void test_processes_append_whole_blocks(void)
{
    unlink(path);
    setenv("SALCHECK_NODE_PROFILE", path, 1);
    pid_t pid[NPROC];
    int go[2];
    TH_CHECK(pipe(go) == 0, "pipe");
    for (int k = 0; k < NPROC; k++) {
        pid[k] = fork();
        if (pid[k] == 0) {
            close(go[1]);
            nn_model_t *m = chain_model();
            float x[64];
            for (int i = 0; i < 64; i++)
                x[i] = (float)i / 64.0f - 0.3f;
            int ok = m && nn_forward(m, x, 1, 0) == 0;
            char c;
            ok = read(go[0], &c, 1) == 0 && ok; /* all freed at once: the parent closes the pipe */
            nn_model_destroy(m);
            _exit(ok ? 0 : 1);
        }
    }
    close(go[0]);
    usleep(200000);
    close(go[1]);
    int good = 1;
    for (int k = 0; k < NPROC; k++) {
        int status = 0;
        waitpid(pid[k], &status, 0);
        good = good && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    TH_CHECK(good, "a child failed");
    static prof_row_t rows[CHAIN + 8];
    int blocks = 0;
    for (int b = 0; b < NPROC; b++) {
        const int n = read_profile(path, b, rows, CHAIN + 8, &blocks);
        TH_CHECK(n == CHAIN + 2, "block %d: %d rows (expected %d; -2: a malformed line)", b, n,
                 CHAIN + 2);
        if (n > 0)
            TH_CHECK(!strcmp(rows[0].name, "conv") && !strcmp(rows[n - 1].name, "dense"),
                     "block %d runs from %s to %s", b, rows[0].name, rows[n - 1].name);
    }
    TH_CHECK(blocks == NPROC, "%d blocks, expected %d", blocks, NPROC);
    unlink(path);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR + 1);
    snprintf(path, sizeof path, "%s/node_profile_%d.tsv", th_tmp_dir(), (int)getpid());
    TH_RUN(test_node_profile);
    TH_RUN(test_processes_append_whole_blocks);
    return th_report();
}
