/*
 * test_cascade.c - the cascade states computed in lockstep with the lower
 * layers reused (workers/saliency/sal_cascade.c) give the same raw maps, bit
 * for bit, as each state computed alone on a model of its own holding the
 * variant's weights (what plan_apply_variant makes), and the forward from a
 * node equals the whole forward.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/fuse.h"
#include "nn/model.h"
#include "nn/zoo.h"
#include "saliency/sal_cascade.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "testhelp.h"

#define SEED 7u
#define RSEED 0x5eedULL
#define MAX_STATES 16

/* grad, gbp, gcam and ggcam run single-input forwards of the image after the target's
 * (sal_cascade_forward); deeplift runs its own passes in between (another input) */
static const char *const methods[] = {"ig",  "sg",      "grad",     "gcam",  "occlusion",
                                      "xrai", "gbp",    "deeplift", "ggcam", "scorecam"};
#define N_METHODS (int)(sizeof methods / sizeof methods[0])

typedef struct run_ctx {
    const sal_params_t *p;
    const float *x;
    size_t chw;
    float *raw;        /* [states, methods, chw] */
    int rc[MAX_STATES][N_METHODS];
    int n_methods;
} run_ctx_t;

static int compute_state(void *vctx, int state, sal_ws_t *ws)
{
    run_ctx_t *c = vctx;
    int target = 0;
    int rc = sal_target(ws, c->x, SAL_TARGET_PREDICTED, &target, NULL);
    if (rc < 0)
        return rc;
    sal_key_t key = {11, 0, 3};
    for (int k = 0; k < c->n_methods; k++) {
        float *out = c->raw + ((size_t)state * N_METHODS + k) * c->chw;
        c->rc[state][k] = sal_compute(sal_method_find(methods[k]), c->p, ws->model, ws, c->x,
                                      target, NULL, key, out);
        if (c->rc[state][k] < 0 && c->rc[state][k] != SC_ERR_UNDEFINED)
            return c->rc[state][k];
    }
    return 0;
}

/* One architecture: S states of the top-down cascade over its blocks (all but
 * the bottom one, at most max_states), the first n_methods methods alone and
 * in lockstep, compared bit for bit. */
static void check_arch(const char *arch, int size, int batch, int n_methods, int max_states)
{
    nn_model_t *m = NULL, *ref = NULL;
    sal_ws_t *ref_ws = NULL;
    sal_cascade_t *cs = NULL;
    float *base = NULL, *rnd = NULL, *raw_alone = NULL, *raw_lock = NULL, *raw_plain = NULL,
          *x = NULL;
    uint8_t *mask = NULL;
    TH_CHECK(zoo_build(arch, size, 2, SEED, &m) == 0, "build %s", arch);
    TH_CHECK(zoo_build(arch, size, 2, SEED, &ref) == 0, "build %s", arch);
    if (!m || !ref)
        goto done;
    const char *blocks[64];
    const int nb = zoo_blocks_top_down(m, blocks, 64);
    const int S = nb - 1 < max_states ? nb - 1 : max_states;
    const int N = m->n_nodes;
    const size_t chw = nn_node_size(&m->nodes[0]);
    base = malloc(sizeof(float) * m->n_params);
    rnd = malloc(sizeof(float) * m->n_params);
    mask = calloc((size_t)S * N, 1);
    x = malloc(sizeof(float) * chw);
    raw_alone = calloc((size_t)S * N_METHODS * chw, sizeof(float));
    raw_lock = calloc((size_t)S * N_METHODS * chw, sizeof(float));
    raw_plain = calloc((size_t)S * N_METHODS * chw, sizeof(float));
    memcpy(base, m->params, sizeof(float) * m->n_params);
    for (size_t i = 0; i < chw; i++) /* a smooth image in [-1, 1] */
        x[i] = (float)(0.9 * sin(0.37 * (double)(i % 97) + 0.011 * (double)i));
    /* the randomized slab: every cascade block re-initialized */
    for (int b = 0; b < S; b++)
        nn_model_reinit_block(m, blocks[b], RSEED, 0);
    memcpy(rnd, m->params, sizeof(float) * m->n_params);
    for (int k = 0; k < S; k++)
        for (int i = 0; i < N; i++)
            for (int b = 0; b <= k; b++)
                if (!strcmp(m->nodes[i].block, blocks[b]))
                    mask[(size_t)k * N + i] = 1;
    sal_params_t p = sal_params_default();
    p.ig_steps = n_methods > 1 ? 2 * batch + 1 : batch + 1; /* full and partial batches */
    p.sg_samples = batch + 1;
    p.xrai_steps = 3;
    p.occ_window = size / 4;
    p.occ_stride = size / 4;
    run_ctx_t alone = {.p = &p, .x = x, .chw = chw, .raw = raw_alone, .n_methods = n_methods};
    /* each state alone, on a model of its own: base weights, then its blocks re-initialized */
    TH_CHECK(sal_ws_create(&ref_ws, ref, batch, NULL) == 0, "reference workspace");
    for (int k = 0; k < S && ref_ws; k++) {
        memcpy(ref->params, base, sizeof(float) * ref->n_params);
        nn_model_params_changed(ref);
        for (int b = 0; b <= k; b++)
            nn_model_reinit_block(ref, blocks[b], RSEED, 0);
        TH_CHECK(compute_state(&alone, k, ref_ws) == 0, "state %d alone", k);
    }
    TH_CHECK(sal_cascade_create(&cs, m, batch, NULL, base, rnd, S, mask) == 0, "cascade");
    if (!cs)
        goto done;
    /* the parameters of a state switched in equal those the variant builds */
    int params_equal = 1;
    for (int k = S - 1; k >= 0; k--) {
        memcpy(ref->params, base, sizeof(float) * ref->n_params);
        for (int b = 0; b <= k; b++)
            nn_model_reinit_block(ref, blocks[b], RSEED, 0);
        sal_cascade_use(cs, k);
        params_equal &= !memcmp(ref->params, m->params, sizeof(float) * m->n_params);
    }
    TH_CHECK(params_equal, "%s: a state's switched parameters differ from its variant's", arch);
    int states[MAX_STATES], rcs[MAX_STATES];
    for (int k = 0; k < S; k++) /* an order the cascade sorts itself */
        states[k] = (k % 2) ? S - 1 - k / 2 : k / 2;
    run_ctx_t lock = {.p = &p, .x = x, .chw = chw, .raw = raw_lock, .n_methods = n_methods};
    TH_CHECK(sal_cascade_run(cs, states, S, 1, compute_state, &lock, rcs) == 0, "lockstep run");
    long reused = 0, total = 0;
    sal_cascade_counts(cs, &reused, &total);
    TH_CHECK(total > 0 && reused > 0, "%s: %ld of %ld batches reused the lower layers", arch,
             reused, total);
    /* every state's target after the state before it; with the single-input methods, each
     * of their forwards after the target's (deeplift's own passes break one chain each) */
    long fwd_reused = 0, fwd_total = 0;
    sal_cascade_forward_counts(cs, &fwd_reused, &fwd_total);
    TH_CHECK(fwd_reused >= S - 1 && fwd_reused < fwd_total,
             "%s: %ld of %ld single-input forwards reused the lower layers (states %d)", arch,
             fwd_reused, fwd_total, S);
    if (n_methods > 2)
        TH_CHECK(fwd_reused >= 4L * S, "%s: only %ld of %ld single-input forwards reused", arch,
                 fwd_reused, fwd_total);
    /* XRAI's segmentation of the image once for every state */
    long seg = 0, seg_used = 0;
    sal_cascade_xrai_counts(cs, &seg, &seg_used);
    const long with_xrai = n_methods > 5 ? S : 0;
    TH_EQ_INT(seg, with_xrai ? 1 : 0);
    TH_EQ_INT(seg_used, with_xrai);
    run_ctx_t plain = {.p = &p, .x = x, .chw = chw, .raw = raw_plain, .n_methods = n_methods};
    TH_CHECK(sal_cascade_run(cs, states, S, 0, compute_state, &plain, rcs) == 0, "run, no reuse");
    long reused2 = 0, total2 = 0;
    sal_cascade_counts(cs, &reused2, &total2);
    TH_EQ_INT(reused2, reused);
    TH_EQ_INT(total2, 2 * total);
    long fwd_reused2 = 0, fwd_total2 = 0;
    sal_cascade_forward_counts(cs, &fwd_reused2, &fwd_total2);
    TH_EQ_INT(fwd_reused2, fwd_reused);
    TH_EQ_INT(fwd_total2, 2 * fwd_total);
    long seg2 = 0, seg_used2 = 0;
    sal_cascade_xrai_counts(cs, &seg2, &seg_used2);
    TH_EQ_INT(seg2, seg + with_xrai);
    TH_EQ_INT(seg_used2, 2 * with_xrai);
    int defined = 0;
    for (int k = 0; k < S; k++) {
        for (int q = 0; q < n_methods; q++) {
            const size_t off = ((size_t)k * N_METHODS + q) * chw;
            TH_EQ_INT(lock.rc[k][q], alone.rc[k][q]);
            defined += alone.rc[k][q] == 0;
            TH_CHECK(!memcmp(raw_lock + off, raw_alone + off, sizeof(float) * chw),
                     "%s state %d method %s: lockstep with reuse differs from the state alone "
                     "(max rel %.3g)", arch, k, methods[q],
                     th_rel_err(raw_lock + off, raw_alone + off, chw));
            TH_CHECK(!memcmp(raw_plain + off, raw_alone + off, sizeof(float) * chw),
                     "%s state %d method %s: lockstep without reuse differs", arch, k, methods[q]);
        }
    }
    TH_CHECK(defined >= S, "%s: only %d maps defined", arch, defined);
    /* the maps of different states differ (the test compares something) */
    TH_CHECK(memcmp(raw_alone, raw_alone + (size_t)(S - 1) * N_METHODS * chw,
                    sizeof(float) * chw) != 0, "%s: state 0 and state %d give the same IG", arch,
             S - 1);
done:
    sal_cascade_destroy(cs);
    sal_ws_destroy(ref_ws);
    nn_model_destroy(m);
    nn_model_destroy(ref);
    free(base);
    free(rnd);
    free(mask);
    free(x);
    free(raw_alone);
    free(raw_lock);
    free(raw_plain);
}

static void test_democnn_all_methods(void) { check_arch("democnn", 64, 3, N_METHODS, MAX_STATES); }
static void test_inceptionv3_ig(void) { check_arch("inceptionv3", 75, 2, 1, 3); }

/* A state's single-input forwards of the image start above the lower layers only while
 * the model's activations are those of the image: another pass between them (another
 * input) or a re-plan of the buffers (a node kept) makes the next one start at the input. */
typedef struct guard_ctx {
    nn_model_t *m;
    const float *x, *other;
    int keep_node, classes;
    float logits[MAX_STATES][3][16];
    int replanned, rc;
} guard_ctx_t;

static int guard_state(void *vctx, int state, sal_ws_t *ws)
{
    guard_ctx_t *g = vctx;
    int t = 0;
    int rc = sal_target(ws, g->x, SAL_TARGET_PREDICTED, &t, g->logits[state][0]);
    if (rc == 0)
        rc = nn_forward(g->m, g->other, 1, 0); /* a pass the cascade does not see */
    if (rc == 0)
        rc = sal_target(ws, g->x, SAL_TARGET_PREDICTED, &t, g->logits[state][1]);
    const uint64_t gen = g->m->act_gen;
    if (rc == 0)
        rc = nn_model_keep(g->m, g->keep_node); /* new buffers the first time */
    g->replanned += g->m->act_gen != gen;
    if (rc == 0)
        rc = sal_target(ws, g->x, SAL_TARGET_PREDICTED, &t, g->logits[state][2]);
    return rc;
}

/* The slabs of a cascade over the S top blocks of m: *base the trained parameters, *rnd
 * every one of the S blocks re-initialized (RSEED), *mask [S, n_nodes] the nodes state k
 * re-initializes (blocks 0..k). Leaves m holding *rnd; the three buffers are the caller's
 * (free). Returns 0, or -1 when out of memory (nothing allocated). */
static int tc_cascade_slabs(nn_model_t *m, const char *const *blocks, int S, float **base,
                            float **rnd, uint8_t **mask)
{
    const int N = m->n_nodes;
    *base = malloc(sizeof(float) * m->n_params);
    *rnd = malloc(sizeof(float) * m->n_params);
    *mask = calloc((size_t)S * N, 1);
    if (!*base || !*rnd || !*mask) {
        free(*base);
        free(*rnd);
        free(*mask);
        *base = *rnd = NULL;
        *mask = NULL;
        return -1;
    }
    memcpy(*base, m->params, sizeof(float) * m->n_params);
    for (int b = 0; b < S; b++)
        nn_model_reinit_block(m, blocks[b], RSEED, 0);
    memcpy(*rnd, m->params, sizeof(float) * m->n_params);
    for (int k = 0; k < S; k++)
        for (int i = 0; i < N; i++)
            for (int b = 0; b <= k; b++)
                (*mask)[(size_t)k * N + i] |= !strcmp(m->nodes[i].block, blocks[b]);
    return 0;
}

static void test_forward_guards(void)
{
    nn_model_t *m = NULL, *ref = NULL;
    sal_cascade_t *cs = NULL;
    sal_ws_t *ref_ws = NULL;
    TH_CHECK(zoo_build("democnn", 48, 2, SEED, &m) == 0, "build");
    TH_CHECK(zoo_build("democnn", 48, 2, SEED, &ref) == 0, "build");
    if (!m || !ref)
        goto done;
    const char *blocks[64];
    const int nb = zoo_blocks_top_down(m, blocks, 64), S = nb - 1 < 4 ? nb - 1 : 4, N = m->n_nodes;
    const size_t chw = nn_node_size(&m->nodes[0]);
    float *x = malloc(sizeof(float) * chw), *other = malloc(sizeof(float) * chw);
    float *base = NULL, *rnd = NULL;
    uint8_t *mask = NULL;
    for (size_t i = 0; i < chw; i++) {
        x[i] = (float)(0.9 * sin(0.21 * (double)(i % 89) + 0.007 * (double)i));
        other[i] = (float)(0.8 * cos(0.05 * (double)i));
    }
    TH_CHECK(tc_cascade_slabs(m, blocks, S, &base, &rnd, &mask) == 0, "slabs");
    if (!base)
        goto out;
    guard_ctx_t g = {.m = m, .x = x, .other = other, .keep_node = N / 2};
    g.classes = (int)nn_node_size(&m->nodes[nn_logits_node(m)]);
    TH_CHECK(sal_cascade_create(&cs, m, 2, NULL, base, rnd, S, mask) == 0, "cascade");
    TH_CHECK(sal_ws_create(&ref_ws, ref, 2, NULL) == 0, "reference workspace");
    if (!cs || !ref_ws || g.classes > 16)
        goto out;
    int states[MAX_STATES];
    for (int k = 0; k < S; k++)
        states[k] = S - 1 - k;
    TH_CHECK(sal_cascade_run(cs, states, S, 1, guard_state, &g, NULL) == 0, "lockstep run");
    TH_CHECK(g.replanned == 1, "the kept node re-planned the buffers %d times", g.replanned);
    long reused = 0, total = 0;
    sal_cascade_forward_counts(cs, &reused, &total);
    /* the first target of states 2..S after the third of the state before; none after a
     * foreign pass; the third of state 1 (re-planned) none, of states 2..S after their
     * second, which the keep did not touch */
    TH_EQ_INT(total, 3L * S);
    TH_EQ_INT(reused, 2L * (S - 1));
    /* the last state's workspace used outside a run while the model holds state 0's
     * parameters, then a run of that state alone: its first forward is not the one
     * outside (the logits are checked with the others below) */
    sal_cascade_use(cs, 0);
    {
        int t = 0, last = S - 1;
        float outside[16];
        TH_CHECK(sal_target(sal_cascade_ws(cs, S - 1), x, SAL_TARGET_PREDICTED, &t, outside) == 0,
                 "a target outside a run");
        TH_CHECK(sal_cascade_run(cs, &last, 1, 1, guard_state, &g, NULL) == 0, "second run");
    }
    for (int k = 0; k < S; k++) {
        memcpy(ref->params, base, sizeof(float) * ref->n_params);
        nn_model_params_changed(ref);
        for (int b = 0; b <= k; b++)
            nn_model_reinit_block(ref, blocks[b], RSEED, 0);
        float want[16];
        int t = 0;
        TH_CHECK(sal_target(ref_ws, x, SAL_TARGET_PREDICTED, &t, want) == 0, "state %d alone", k);
        for (int q = 0; q < 3; q++)
            TH_CHECK(!memcmp(want, g.logits[k][q], sizeof(float) * g.classes),
                     "state %d, forward %d: logits %.9g differ from the state alone %.9g", k, q,
                     g.logits[k][q][0], want[0]);
    }
    TH_CHECK(memcmp(g.logits[0][0], g.logits[S - 1][0], sizeof(float) * g.classes) != 0,
             "the first and the last state give the same logits");
out:
    free(x);
    free(other);
    free(base);
    free(rnd);
    free(mask);
done:
    sal_cascade_destroy(cs);
    sal_ws_destroy(ref_ws);
    nn_model_destroy(m);
    nn_model_destroy(ref);
}

/* nn_forward_fused_from after a parameter change above the node equals the whole forward. */
static void test_forward_from(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("demoresnet", 48, 2, SEED, &m) == 0, "build");
    if (!m)
        return;
    const int n = 2, N = m->n_nodes;
    const size_t chw = nn_node_size(&m->nodes[0]);
    float *x = malloc(sizeof(float) * chw * n);
    for (size_t i = 0; i < chw * n; i++)
        x[i] = (float)sin(0.1 * (double)i);
    TH_CHECK(nn_model_prepare(m, n) == 0, "prepare");
    const char *blocks[64];
    zoo_blocks_top_down(m, blocks, 64);
    int first = N;
    for (int i = N - 1; i > 0; i--)
        if (!strcmp(m->nodes[i].block, blocks[1]))
            first = i;
    for (int j = first; j < N; j++)
        for (int q = 0; q < m->nodes[j].n_in; q++)
            if (m->nodes[j].in[q] < first)
                nn_model_keep(m, m->nodes[j].in[q]);
    const int logits = nn_logits_node(m);
    const size_t classes = nn_node_size(&m->nodes[logits]);
    float whole[16], from[16];
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "forward");
    TH_CHECK(nn_forward_fused_from(m, 0, n) < 0, "node 0 refused");
    nn_model_reinit_block(m, blocks[0], 3, 0);
    nn_model_reinit_block(m, blocks[1], 3, 0);
    TH_CHECK(nn_forward_fused_from(m, first, n) == 0, "forward from %d", first);
    memcpy(from, nn_node_out(m, logits), sizeof(float) * n * classes);
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "forward");
    memcpy(whole, nn_node_out(m, logits), sizeof(float) * n * classes);
    TH_CHECK(!memcmp(whole, from, sizeof(float) * n * classes), "logits differ: %g vs %g",
             whole[0], from[0]);
    TH_CHECK(nn_forward_fused_from(m, first, n + 1) < 0, "another batch size refused");
    free(x);
    nn_model_destroy(m);
}

/* A switch that copies one block's parameters refolds that block's chains only, and the
 * result equals a full refold. */
static void test_partial_refold(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("demoresnet", 48, 2, SEED, &m) == 0, "build");
    if (!m)
        return;
    const int n = 1, N = m->n_nodes;
    const size_t chw = nn_node_size(&m->nodes[0]);
    float *x = malloc(sizeof(float) * chw);
    for (size_t i = 0; i < chw; i++)
        x[i] = (float)sin(0.05 * (double)i);
    TH_CHECK(nn_model_prepare(m, n) == 0 && nn_forward_fused(m, x, n) == 0, "fused pass");
    nn_fuse_t *f = m->fuse;
    const char *blocks[64];
    zoo_blocks_top_down(m, blocks, 64);
    /* a folded chain in the top block (changed) and one outside it (not) */
    int changed = -1, other = -1;
    for (int i = 1; i < N; i++) {
        if (f->bn_of[i] < 0)
            continue;
        if (!strcmp(m->nodes[i].block, blocks[1]) && changed < 0)
            changed = i;
        else if (strcmp(m->nodes[i].block, blocks[1]) && other < 0)
            other = i;
    }
    TH_CHECK(changed > 0 && other > 0, "no folded chain in block %s (%d) or outside (%d)",
             blocks[1], changed, other);
    if (changed < 0 || other < 0)
        goto done;
    /* the block's parameters rewritten node by node, as a state switch copies them */
    nn_model_t *donor = NULL;
    TH_CHECK(zoo_build("demoresnet", 48, 2, SEED + 1, &donor) == 0, "donor");
    for (int i = 0; i < N && donor; i++) {
        if (strcmp(m->nodes[i].block, blocks[1]))
            continue;
        for (int k = 0; k < NN_P_KINDS; k++)
            if (m->nodes[i].p_off[k] >= 0)
                memcpy(m->params + m->nodes[i].p_off[k], donor->params + m->nodes[i].p_off[k],
                       sizeof(float) * m->nodes[i].p_count[k]);
        nn_model_node_params_changed(m, i);
    }
    nn_model_destroy(donor);
    /* a chain outside the block holds a marker that only a full refold would overwrite */
    float *w_other = f->params + f->w_off[other];
    const float saved = w_other[0];
    w_other[0] = 12345.0f;
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "fused pass after the switch");
    TH_CHECK(w_other[0] == 12345.0f, "an unchanged chain was refolded");
    w_other[0] = saved;
    float *partial = malloc(sizeof(float) * f->n_params);
    memcpy(partial, f->params, sizeof(float) * f->n_params);
    nn_model_params_changed(m);
    nn_fuse_refresh(f, m);
    TH_CHECK(!memcmp(partial, f->params, sizeof(float) * f->n_params),
             "the partial refold differs from a full one");
    free(partial);
done:
    free(x);
    nn_model_destroy(m);
}

static double status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0.0;
    const size_t len = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, len) && line[len] == ':')
            kb = atof(line + len + 1);
    if (f)
        fclose(f);
    return kb * 1024.0;
}

#define BUDGET_SIZE 64
#define BUDGET_STATES 4

typedef struct budget_ctx {
    const sal_params_t *p;
    const float *x;
    size_t chw;
    float *raw; /* [states, chw] */
} budget_ctx_t;

static int budget_state(void *vctx, int state, sal_ws_t *ws)
{
    budget_ctx_t *c = vctx;
    return sal_compute(&sal_method_ig, c->p, ws->model, ws, c->x, 1, NULL, (sal_key_t){0},
                       c->raw + (size_t)state * c->chw);
}

/* A democnn cascade of BUDGET_STATES states at `batch` (0: from the budget, with the
 * model's own workspace beside it, as a run holds them): IG with `steps` steps (0: the
 * batch) for every state into raw. *chosen receives the batch; *planned the bytes the
 * budget counted. */
static int budget_cascade(double budget, int batch, int steps, const float *x, float *raw,
                          int *chosen, double *resident, double *planned)
{
    int rc = -1;
    nn_model_t *m = NULL;
    sal_ws_t *own = NULL;
    sal_cascade_t *cs = NULL;
    float *base = NULL, *rnd = NULL;
    uint8_t *mask = NULL, *keep = NULL;
    if (zoo_democnn(&m, BUDGET_SIZE, 2, SEED) < 0)
        return -1;
    const int N = m->n_nodes;
    const char *blocks[64];
    const int nb = zoo_blocks_top_down(m, blocks, 64);
    const int S = BUDGET_STATES < nb - 1 ? BUDGET_STATES : nb - 1;
    keep = malloc((size_t)N);
    if (!keep || tc_cascade_slabs(m, blocks, S, &base, &rnd, &mask) < 0)
        goto done;
    memcpy(m->params, base, sizeof(float) * m->n_params);
    nn_model_params_changed(m);
    if (batch < 1) {
        /* what a run does before choosing its batch: the cascade's kept outputs */
        sal_cascade_keeps(m, S, mask, keep);
        int states[1] = {S};
        nn_model_t *list[1] = {m};
        *resident = status_bytes("VmRSS");
        if (nn_model_keep_outputs(m, keep) < 0 ||
            sal_batch_for_memory_cascade(list, 1, states, budget, *resident, 4096, "test",
                                         &batch) < 0)
            goto done;
        *planned = (double)sal_ws_bytes(m, batch) + (double)sal_cascade_bytes(m, batch, S);
    }
    *chosen = batch;
    if (sal_ws_create(&own, m, batch, NULL) < 0 ||
        sal_cascade_create(&cs, m, batch, NULL, base, rnd, S, mask) < 0)
        goto done;
    sal_params_t p = sal_params_default();
    p.ig_steps = steps > 0 ? steps : batch;
    budget_ctx_t c = {&p, x, nn_node_size(&m->nodes[0]), raw};
    int states[MAX_STATES];
    for (int k = 0; k < S; k++)
        states[k] = k;
    rc = sal_cascade_run(cs, states, S, 1, budget_state, &c, NULL);
done:
    sal_cascade_destroy(cs);
    sal_ws_destroy(own);
    nn_model_destroy(m);
    free(base);
    free(rnd);
    free(mask);
    free(keep);
    return rc;
}

static void test_budget_counts_the_states(void)
{
    const double budget = 256.0 * 1048576.0;
    const size_t chw = 3 * BUDGET_SIZE * BUDGET_SIZE;
    const size_t raw_bytes = sizeof(float) * chw * BUDGET_STATES;
    float *x = malloc(sizeof(float) * chw);
    for (size_t i = 0; i < chw; i++)
        x[i] = (float)(0.8 * sin(0.021 * (double)i + 0.3 * (double)(i % 13)));
    int fds[2];
    TH_CHECK(pipe(fds) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    typedef struct { int batch; double resident, planned, peak; } child_t;
    if (pid == 0) {
        /* child: a fresh peak (clear_refs 5 resets VmHWM); the batch from the budget, then
         * IG on one full batch for every state in lockstep */
        close(fds[0]);
        FILE *cr = fopen("/proc/self/clear_refs", "w");
        if (cr) {
            fputs("5", cr);
            fclose(cr);
        }
        child_t r = {0, 0, 0, 0};
        float *raw = calloc(chw * BUDGET_STATES, sizeof(float));
        int ok = raw && budget_cascade(budget, 0, 0, x, raw, &r.batch, &r.resident,
                                       &r.planned) == 0;
        r.peak = status_bytes("VmHWM");
        if (!ok)
            r.batch = -1;
        ssize_t w1 = write(fds[1], &r, sizeof r);
        ssize_t w2 = write(fds[1], raw, raw_bytes);
        _exit(w1 == (ssize_t)sizeof r && w2 == (ssize_t)raw_bytes ? 0 : 1);
    }
    close(fds[1]);
    child_t r = {0, 0, 0, 0};
    float *child_raw = calloc(chw * BUDGET_STATES, sizeof(float));
    ssize_t got = read(fds[0], &r, sizeof r);
    size_t off = 0;
    while (got == (ssize_t)sizeof r && off < raw_bytes) {
        ssize_t g = read(fds[0], (char *)child_raw + off, raw_bytes - off);
        if (g <= 0)
            break;
        off += (size_t)g;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    TH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && r.batch > 0, "child failed (%d)",
             r.batch);
    printf("    budget %.0f MB, %d states in lockstep: batch %d, resident before %.0f MB, "
           "planned %.0f MB, peak %.0f MB (%.1f %% of the budget)\n", budget / 1048576.0,
           BUDGET_STATES, r.batch, r.resident / 1048576.0, r.planned / 1048576.0,
           r.peak / 1048576.0, 100.0 * r.peak / budget);
    TH_CHECK(r.peak <= 1.10 * budget, "peak %.0f MB more than 10 %% above the budget %.0f MB",
             r.peak / 1048576.0, budget / 1048576.0);
    TH_CHECK(r.resident + r.planned >= 0.90 * budget && r.resident + r.planned <= budget &&
             r.peak >= 0.75 * budget,
             "resident %.0f MB + planned %.0f MB (peak %.0f MB) do not fill the budget %.0f MB "
             "within 10 %%", r.resident / 1048576.0, r.planned / 1048576.0, r.peak / 1048576.0,
             budget / 1048576.0);
    /* the states' workspaces are counted: the batch is below the one model alone allows */
    {
        nn_model_t *m = NULL;
        TH_CHECK(zoo_democnn(&m, BUDGET_SIZE, 2, SEED) == 0, "democnn");
        nn_model_t *list[1] = {m};
        int alone = 0;
        TH_CHECK(m &&
                     sal_batch_for_memory(list, 1, budget, r.resident, 4096, "test", &alone) == 0 &&
                     alone > r.batch,
                 "the cascade's batch %d is not below one workspace's %d", r.batch, alone);
        nn_model_destroy(m);
    }
    /* the same maps as the cascade at batch 3 without a budget */
    if (r.batch > 0) {
        float *raw3 = calloc(chw * BUDGET_STATES, sizeof(float));
        int b3 = 0;
        double unused = 0.0;
        TH_CHECK(budget_cascade(0.0, 3, r.batch, x, raw3, &b3, &unused, &unused) == 0,
                 "batch-3 cascade");
        TH_CHECK(off == raw_bytes && !memcmp(raw3, child_raw, raw_bytes),
                 "IG maps at batch %d differ from batch 3", r.batch);
        TH_CHECK(memcmp(raw3, raw3 + chw, sizeof(float) * chw) != 0, "states 0 and 1 agree");
        free(raw3);
    }
    free(child_raw);
    free(x);
}

int main(int argc, char **argv)
{
    sc_log_set_level(SC_LOG_WARN);
    const char *only = argc > 1 ? argv[1] : "";
    /* first: the budget's child process starts from a small resident size */
    if (!*only || strstr("budget", only))
        TH_RUN(test_budget_counts_the_states);
    if (!*only || strstr("refold", only))
        TH_RUN(test_partial_refold);
    if (!*only || strstr("forward", only))
        TH_RUN(test_forward_from);
    if (!*only || strstr("guards", only))
        TH_RUN(test_forward_guards);
    if (!*only || strstr("democnn", only))
        TH_RUN(test_democnn_all_methods);
    if (!*only || strstr("inceptionv3", only))
        TH_RUN(test_inceptionv3_ig);
    return th_report();
}
