/*
 * bench_cascade.c - how much of a cascading-randomization audit repeats the
 * same work: the forward FLOPs below the re-initialized blocks of each state.
 *
 * For a zoo architecture and the cascade of jobs/arun2021-rsna.ini (top-down:
 * logits, mixed10, ..., mixed1 for InceptionV3; the zoo's own top-down block
 * order otherwise), state k re-initializes the top k blocks; every node below
 * the lowest of them computes the activations of the trained model. Prints,
 * per state, the forward FLOPs that must be recomputed and the share that a
 * reuse of the trained model's lower activations would skip, for gradient
 * maps (forward + input-gradient backward, the backward counted as the
 * forward's GEMM FLOPs again: it still runs through every layer) and for
 * forward-only maps (occlusion, RISE). No timing: the FLOP counts of the
 * op table (nn_forward_flops' per-node costs).
 *
 * With a method name (or a comma-separated list of them, or "paper": grad, sg,
 * ig, sig, gbp, gcam, ggcam, xrai, the methods of jobs/arun2021-rsna.ini),
 * also times them over the cascade's states for a few images
 * (workers/saliency/sal_cascade.c): each state alone (its parameters switched
 * in, its target and then the methods run as a variant item runs them)
 * against the states in lockstep with the lower layers reused; alternating,
 * process CPU time, the ratio per round and its median. Checks that both give
 * the same maps bit for bit. The paper's parameters unless the last argument
 * sets some: sg=N (SmoothGrad samples), sig=N (SmoothGrad-of-IG samples),
 * ig=N (IG steps), xrai=N (XRAI steps per baseline), comma-separated.
 *
 *   bench_cascade [arch] [size] [methods images rounds batch [params]]
 *   (default inceptionv3 299; e.g. inceptionv3 299 ig 2 3 10,
 *    inceptionv3 299 paper 1 1 10 sig=2,xrai=10)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "nn/fuse.h"
#include "nn/op.h"
#include "nn/zoo.h"
#include "saliency/sal_cascade.h"
#include "saliency/saliency.h"
#include "sc.h"

#define MAX_METHODS 16

typedef struct time_ctx {
    const sal_method_t *const *methods;
    int n_methods;
    const sal_params_t *p;
    const float *x;
    size_t raw_size;
    float *raw;              /* [states, methods, raw_size] */
    int image;
} time_ctx_t;

static int run_state(void *vctx, int state, sal_ws_t *ws)
{
    time_ctx_t *c = vctx;
    int target = 0;
    int rc = sal_target(ws, c->x, SAL_TARGET_PREDICTED, &target, NULL);
    sal_key_t key = {1, 0, (uint32_t)c->image};
    for (int q = 0; q < c->n_methods && rc >= 0; q++) {
        rc = sal_compute(c->methods[q], c->p, ws->model, ws, c->x, target, NULL, key,
                         c->raw + ((size_t)state * c->n_methods + q) * c->raw_size);
        rc = rc == SC_ERR_UNDEFINED ? 0 : rc;
    }
    return rc;
}

/* The timed comparison: alone vs lockstep with reuse, `rounds` alternating rounds. */
static int time_cascade(nn_model_t *m, const char **blocks, int states, const char *method_list,
                        int images, int rounds, int batch, const char *param_list)
{
    const sal_method_t *methods[MAX_METHODS];
    int n_methods = 0;
    char names[256], label[256];
    snprintf(names, sizeof names, "%s",
             strcmp(method_list, "paper") ? method_list : "grad,sg,ig,sig,gbp,gcam,ggcam,xrai");
    snprintf(label, sizeof label, "%s", names);
    for (char *save = NULL, *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        methods[n_methods] = sal_method_find(t);
        if (!methods[n_methods] || n_methods + 1 >= MAX_METHODS) {
            fprintf(stderr, "bench_cascade: no method '%s' (or more than %d)\n", t,
                    MAX_METHODS - 1);
            return 1;
        }
        n_methods++;
    }
    sal_params_t p = sal_params_default();
    char params[256];
    snprintf(params, sizeof params, "%s", param_list ? param_list : "");
    for (char *save = NULL, *t = strtok_r(params, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int v = 0;
        if (sscanf(t, "sg=%d", &v) == 1 && v > 0)
            p.sg_samples = v;
        else if (sscanf(t, "sig=%d", &v) == 1 && v > 0)
            p.sig_samples = v;
        else if (sscanf(t, "ig=%d", &v) == 1 && v > 0)
            p.ig_steps = v;
        else if (sscanf(t, "xrai=%d", &v) == 1 && v > 0)
            p.xrai_steps = v;
        else {
            fprintf(stderr, "bench_cascade: unknown parameter '%s' (sg=, sig=, ig=, xrai=)\n", t);
            return 1;
        }
    }
    const int N = m->n_nodes;
    const size_t chw = nn_node_size(&m->nodes[0]);
    float *base = malloc(sizeof(float) * m->n_params), *rnd = malloc(sizeof(float) * m->n_params);
    uint8_t *mask = calloc((size_t)states * N, 1);
    float *x = malloc(sizeof(float) * chw);
    const size_t raw_image = (size_t)states * n_methods * chw; /* one image's raw maps */
    float *raw_a = calloc((size_t)images * raw_image, sizeof(float));
    float *raw_b = calloc((size_t)images * raw_image, sizeof(float));
    memcpy(base, m->params, sizeof(float) * m->n_params);
    for (int b = 0; b < states; b++)
        nn_model_reinit_block(m, blocks[b], 99, 0);
    memcpy(rnd, m->params, sizeof(float) * m->n_params);
    for (int k = 0; k < states; k++)
        for (int i = 0; i < N; i++)
            for (int b = 0; b <= k; b++)
                mask[(size_t)k * N + i] |= !strcmp(m->nodes[i].block, blocks[b]);
    sal_cascade_t *cs = NULL;
    sal_ws_t *one = NULL; /* what one state alone holds, for the memory line */
    if (sal_ws_create(&one, m, batch, NULL) < 0)
        return 1;
    const double plan_alone = (double)m->runtime_floats * sizeof(float);
    sal_ws_destroy(one);
    if (sal_cascade_create(&cs, m, batch, NULL, base, rnd, states, mask) < 0)
        return 1;
    const double plan_kept = (double)m->runtime_floats * sizeof(float);
    /* the states' own workspaces (the Expected Gradients pool, when a run has one, is shared) */
    const double ws_state = ((double)sal_cascade_bytes(m, batch, states) -
                             (double)m->n_params * sizeof(float)) / states;
    printf("memory beyond one state alone: activations %.0f MB planned -> %.0f MB with the kept "
           "lower outputs, %d more workspaces of %.0f MB, the randomized slab %.0f MB; "
           "sal_cascade_bytes %.0f MB\n",
           plan_alone / 1048576.0, plan_kept / 1048576.0, states - 1, ws_state / 1048576.0,
           (double)m->n_params * sizeof(float) / 1048576.0,
           (double)sal_cascade_bytes(m, batch, states) / 1048576.0);
    fflush(stdout);
    int order[64];
    for (int k = 0; k < states; k++)
        order[k] = k;
    double ratios[64], t_alone_sum = 0.0, t_reuse_sum = 0.0;
    int same = 1;
    printf("\n%s (sg %d, ig %d, sig %d x %d, xrai 2 x %d), %d states, %d image(s) per round, "
           "batch %d, process CPU seconds:\n\n", label, p.sg_samples, p.ig_steps, p.sig_samples,
           p.ig_steps, p.xrai_steps, states, images, batch);
    printf("| round | each state alone s | lockstep with reuse s | ratio |\n|---|---|---|---|\n");
    for (int r = 0; r < rounds && r < 64; r++) {
        double t_alone = 0.0, t_reuse = 0.0;
        for (int half = 0; half < 2; half++) {
            const int reuse_first = r % 2; /* alternate which goes first */
            const int do_reuse = half == 0 ? reuse_first : !reuse_first;
            for (int img = 0; img < images; img++) {
                for (size_t i = 0; i < chw; i++) /* a smooth image per index, in [-1, 1] */
                    x[i] = (float)(0.9 * sin(0.013 * (double)(i % 331) * (img + 1) + 0.002 * i));
                time_ctx_t c = {methods, n_methods, &p, x, chw,
                                (do_reuse ? raw_b : raw_a) + (size_t)img * raw_image, img};
                double t0 = bench_cpu_now();
                if (do_reuse) {
                    if (sal_cascade_run(cs, order, states, 1, run_state, &c, NULL) < 0)
                        return 1;
                } else {
                    for (int k = 0; k < states; k++) {
                        /* a state alone is a variant of its own: all of its parameters
                         * written, every BN refolded (what plan_apply_variant costs) */
                        sal_cascade_use(cs, k);
                        nn_model_params_changed(m);
                        if (run_state(&c, k, sal_cascade_ws(cs, k)) < 0)
                            return 1;
                    }
                }
                double t = bench_cpu_now() - t0;
                if (do_reuse)
                    t_reuse += t;
                else
                    t_alone += t;
            }
            if (half == 1)
                same &= !memcmp(raw_a, raw_b, sizeof(float) * images * raw_image);
        }
        ratios[r] = t_reuse / t_alone;
        t_alone_sum += t_alone;
        t_reuse_sum += t_reuse;
        printf("| %d | %.2f | %.2f | %.3f |\n", r + 1, t_alone, t_reuse, ratios[r]);
        fflush(stdout);
    }
    if (rounds < 1)
        goto done;
    qsort(ratios, (size_t)rounds, sizeof(double), bench_cmp_double);
    long reused = 0, total = 0, fwd_reused = 0, fwd_total = 0;
    sal_cascade_counts(cs, &reused, &total);
    sal_cascade_forward_counts(cs, &fwd_reused, &fwd_total);
    printf("\nmedian ratio %.3f (sum %.3f); %ld of %ld engine batches and %ld of %ld "
           "single-input forwards reused the lower layers; maps %s\n", ratios[rounds / 2],
           t_reuse_sum / t_alone_sum, reused, total, fwd_reused, fwd_total,
           same ? "bit-identical" : "DIFFER");
done:
    /* what a state switch costs: the changed tensors copied, then every chain refolded (a
     * variant of its own) or only the copied ones (the cascade) */
    if (!m->fuse)
        nn_forward_fused(m, x, 1);
    if (m->fuse) {
        double t_full = 0.0, t_part = 0.0;
        for (int k = 0; k < states; k++) {
            double t0 = bench_cpu_now();
            sal_cascade_use(cs, k);
            nn_model_params_changed(m);
            nn_fuse_refresh(m->fuse, m);
            t_full += bench_cpu_now() - t0;
        }
        for (int k = states - 1; k >= 0; k--) {
            double t0 = bench_cpu_now();
            sal_cascade_use(cs, k);
            nn_fuse_refresh(m->fuse, m);
            t_part += bench_cpu_now() - t0;
        }
        printf("a state switch (copy and refold), mean of %d: every chain refolded %.1f ms, the "
               "copied ones only %.1f ms\n", states, 1e3 * t_full / states, 1e3 * t_part / states);
    }
    sal_cascade_destroy(cs);
    free(base);
    free(rnd);
    free(mask);
    free(x);
    free(raw_a);
    free(raw_b);
    return same ? 0 : 1;
}

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    const char *arch = argc > 1 ? argv[1] : "inceptionv3";
    int size = argc > 2 ? atoi(argv[2]) : 299;
    nn_model_t *m = NULL;
    if (zoo_build(arch, size, 2, 1, &m) < 0)
        return 1;
    const char *blocks[64];
    int nb = zoo_blocks_top_down(m, blocks, 64);
    /* the paper's cascade: the top 11 blocks (logits, mixed10 .. mixed1 for InceptionV3) */
    int states = nb - 1 < 11 ? nb - 1 : 11;
    double total = 0.0;
    for (int i = 1; i < m->n_nodes; i++) {
        const nn_op_def_t *def = nn_op_def(m->nodes[i].op);
        total += def->flops ? def->flops(m, &m->nodes[i]) : 0.0;
    }
    printf("%s at %d: forward %.2f GFLOP per image; cascade of %d states (top-down)\n\n", arch,
           size, total * 1e-9, states);
    printf("| state | re-initialized down to | forward GFLOP recomputed | share of forward |\n");
    printf("|---|---|---|---|\n");
    double grad_alone = 0.0, grad_reuse = 0.0, fwd_alone = 0.0, fwd_reuse = 0.0;
    for (int k = 1; k <= states; k++) {
        /* the first node of any of the top k blocks */
        int first = m->n_nodes;
        for (int b = 0; b < k; b++)
            for (int i = 1; i < m->n_nodes; i++)
                if (!strcmp(m->nodes[i].block, blocks[b]) && i < first)
                    first = i;
        double upper = 0.0;
        for (int i = first; i < m->n_nodes; i++) {
            const nn_op_def_t *def = nn_op_def(m->nodes[i].op);
            upper += def->flops ? def->flops(m, &m->nodes[i]) : 0.0;
        }
        printf("| %d | %s | %.2f | %.0f%% |\n", k, blocks[k - 1], upper * 1e-9,
               100.0 * upper / total);
        /* the least randomized state computes its whole forward: nothing before it to reuse */
        const double fwd = k == 1 ? total : upper;
        grad_alone += 2.0 * total;
        grad_reuse += fwd + total;
        fwd_alone += total;
        fwd_reuse += fwd;
    }
    printf("\ngradient maps: the cascade with reuse costs %.1f%% of computing each state alone "
           "(the first state's forward in full, the backward counted as the forward)\n",
           100.0 * grad_reuse / grad_alone);
    printf("forward-only maps: %.1f%%\n", 100.0 * fwd_reuse / fwd_alone);
    int rc = 0;
    if (argc > 3)
        rc = time_cascade(m, blocks, states, argv[3], argc > 4 ? atoi(argv[4]) : 1,
                          argc > 5 ? atoi(argv[5]) : 3, argc > 6 ? atoi(argv[6]) : 10,
                          argc > 7 ? argv[7] : NULL);
    nn_model_destroy(m);
    return rc;
}
