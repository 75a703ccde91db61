/*
 * nnhelp.h - helpers of the tests that hand a model and its inputs to a
 * PyTorch reference script: raw float32 files and batch-norm parameters
 * moved away from their initial values.
 */
#ifndef NNHELP_H
#define NNHELP_H

#include <stdio.h>

#include "nn/model.h"
#include "rng.h"

/* Write count floats to path; 0 or -1. */
static inline int th_write_f32(const char *path, const float *v, size_t count)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(v, sizeof(float), count, f);
    return (fclose(f) == 0 && n == count) ? 0 : -1;
}

/* Read up to count floats from path; returns how many were read. */
static inline size_t th_read_f32(const char *path, float *v, size_t count)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(v, sizeof(float), count, f);
    fclose(f);
    return n;
}

/* BN statistics and affine parameters away from their 0/1 init (gamma and
 * variance in [0.5, 1.5), beta and mean in [-0.2, 0.2)), as in a trained
 * network, so that the comparisons exercise them. Keyed by seed. */
static inline void th_perturb_bn(nn_model_t *m, uint64_t seed)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "bn"), 0, 0, 0);
    for (int id = 1; id < m->n_nodes; id++) {
        if (m->nodes[id].op != NN_BN)
            continue;
        for (int k = NN_P_GAMMA; k <= NN_P_VAR; k++) {
            size_t count;
            float *p = nn_param(m, id, (nn_param_kind)k, &count);
            for (size_t i = 0; p && i < count; i++) {
                double u = rng_stream_uniform(&rs);
                p[i] = (float)(k == NN_P_VAR || k == NN_P_GAMMA ? 0.5 + u : 0.4 * (u - 0.5));
            }
        }
    }
    nn_model_params_changed(m);
}

/* x[0..count) uniform in [lo, hi), keyed by (seed, what). */
static inline void th_fill_uniform(float *x, size_t count, uint64_t seed, const char *what,
                                   float lo, float hi)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, what), 0, 0, 0);
    for (size_t i = 0; i < count; i++)
        x[i] = lo + (hi - lo) * (float)rng_stream_uniform(&rs);
}

/* Every BN's parameters and statistics away from their identity initialization:
 * gamma in [gamma_lo, gamma_hi), beta in [-0.3, 0.3), mean in [-0.2, 0.2), var in
 * [0.5, 2), keyed by the node id. */
static inline void th_randomize_bn(nn_model_t *m, float gamma_lo, float gamma_hi)
{
    for (int i = 0; i < m->n_nodes; i++) {
        size_t c;
        float *p;
        if (m->nodes[i].op != NN_BN)
            continue;
        if ((p = nn_param(m, i, NN_P_GAMMA, &c)))
            th_fill_uniform(p, c, (uint64_t)i, "gamma", gamma_lo, gamma_hi);
        if ((p = nn_param(m, i, NN_P_BETA, &c)))
            th_fill_uniform(p, c, (uint64_t)i, "beta", -0.3f, 0.3f);
        if ((p = nn_param(m, i, NN_P_MEAN, &c)))
            th_fill_uniform(p, c, (uint64_t)i, "mean", -0.2f, 0.2f);
        if ((p = nn_param(m, i, NN_P_VAR, &c)))
            th_fill_uniform(p, c, (uint64_t)i, "var", 0.5f, 2.0f);
    }
}

/* The forward pass's decisions for a reference that follows them
 * (tests/ref/zoo_torch_ref.py's DECISIONS): one byte per ReLU output (1:
 * positive) and per ReLU6 output (0: clipped at 0, 1: passed, 2: at 6),
 * and the argmax of every max-pool output (int32 offset in the input
 * plane), nodes in node order, n samples. The model must keep every node's
 * output (nn_model_keep_all). 0 or -1. */
static inline int th_write_decisions(const nn_model_t *m, int n, const char *mask_path,
                                     const char *argmax_path)
{
    FILE *fm = fopen(mask_path, "wb"), *fa = fopen(argmax_path, "wb");
    int rc = fm && fa ? 0 : -1;
    for (int id = 1; id < m->n_nodes && rc == 0; id++) {
        const nn_node_t *nd = &m->nodes[id];
        size_t count = (size_t)n * nn_node_size(nd);
        if (nd->op == NN_RELU) {
            for (size_t i = 0; i < count; i++)
                fputc(nd->out[i] > 0.0f, fm);
        } else if (nd->op == NN_RELU6) { /* 0 at 0, 1 passed, 2 at 6 (no gradient at either) */
            for (size_t i = 0; i < count; i++)
                fputc(nd->out[i] <= 0.0f ? 0 : nd->out[i] >= 6.0f ? 2 : 1, fm);
        } else if (nd->op == NN_MAXPOOL) {
            if (fwrite(nd->argmax, sizeof(int32_t), count, fa) != count)
                rc = -1;
        }
    }
    if (fm && fclose(fm) != 0)
        rc = -1;
    if (fa && fclose(fa) != 0)
        rc = -1;
    return rc;
}

#endif /* NNHELP_H */
