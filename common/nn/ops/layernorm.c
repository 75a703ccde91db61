/*
 * ops/layernorm.c - layer normalization over the last axis of a general
 * tensor (ONNX LayerNormalization, and the ReduceMean/Sub/Pow/ReduceMean/Add/
 * Sqrt/Div/Mul/Add chain older opsets export, which the importer fuses):
 *   y = (x - mean) / sqrt(var + eps) * gamma + beta,  var biased (torch).
 *
 * Owned by common/nn. Statistics in double (partial sums over 8 lanes, so
 * the loops vectorize); backward recomputes them:
 *   xhat = (x - mean) s, g = dy gamma,
 *   dx = s (g - mean(g) - xhat mean(g xhat)), dgamma += sum dy xhat, dbeta += sum dy.
 */
#include "nn/op.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sc.h"

static int ln_width(const nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    return dims[nn_node_shape(nd, dims) - 1];
}

static int layernorm_infer(const nn_model_t *m, nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    nn_set_dims(nd, rank, dims);
    return 0;
}

static int layernorm_param_shape(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k,
                                 size_t dims[4])
{
    (void)m;
    if (k != NN_P_GAMMA && k != NN_P_BETA)
        return 0;
    dims[0] = (size_t)ln_width(nd);
    return 1;
}

static void layernorm_init(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats)
{
    (void)rs;
    (void)keep_bn_stats;
    size_t count;
    float *g = nn_param(m, id, NN_P_GAMMA, &count);
    for (size_t i = 0; i < count; i++)
        g[i] = 1.0f;
    float *b = nn_param(m, id, NN_P_BETA, &count);
    memset(b, 0, sizeof(float) * count);
}

#define LN_LANES 8 /* independent double partial sums, so the reductions vectorize */

/* sum of a[j] * (b ? b[j] : 1) - c over j < D: LN_LANES partial sums over j mod LN_LANES,
 * added in a fixed order at the end (the same for every row of every batch). */
static double ln_dot(const float *a, const float *b, double c, int D)
{
    double part[LN_LANES] = {0};
    int j = 0;
    for (; j + LN_LANES <= D; j += LN_LANES)
        for (int l = 0; l < LN_LANES; l++)
            part[l] += ((double)a[j + l] - c) * (b ? (double)b[j + l] - c : 1.0);
    for (; j < D; j++)
        part[j % LN_LANES] += ((double)a[j] - c) * (b ? (double)b[j] - c : 1.0);
    double sum = 0.0;
    for (int l = 0; l < LN_LANES; l++)
        sum += part[l];
    return sum;
}

static void ln_stats(const float *x, int D, double eps, double *mean, double *invstd)
{
    const double s = ln_dot(x, NULL, 0.0, D) / D;
    *mean = s;
    *invstd = 1.0 / sqrt(ln_dot(x, x, s, D) / D + eps);
}

static int layernorm_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const int D = ln_width(nd);
    const size_t rows = (size_t)n * nn_node_size(nd) / (size_t)D;
    const float *g = nn_param(m, id, NN_P_GAMMA, NULL), *b = nn_param(m, id, NN_P_BETA, NULL);
    for (size_t r = 0; r < rows; r++) {
        const float *x = m->nodes[nd->in[0]].out + r * D;
        float *y = nd->out + r * D;
        double mean, s;
        ln_stats(x, D, nd->eps, &mean, &s);
        for (int j = 0; j < D; j++)
            y[j] = (float)((x[j] - mean) * s * g[j] + b[j]);
    }
    return 0;
}

static int layernorm_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src = nd->in[0], D = ln_width(nd);
    const size_t rows = (size_t)n * nn_node_size(nd) / (size_t)D;
    const float *g = nn_param(m, id, NN_P_GAMMA, NULL);
    float *dx_all = nn_wants_grad(src, o) ? nn_grad_acc(m, src) : NULL;
    float *dg = o->param_grads ? nn_param_grad(m, id, NN_P_GAMMA) : NULL;
    float *db = o->param_grads ? nn_param_grad(m, id, NN_P_BETA) : NULL;
    for (size_t r = 0; r < rows; r++) {
        const float *x = m->nodes[src].out + r * D, *dy = nd->grad + r * D;
        double mean, s, mg_part[LN_LANES] = {0}, mgx_part[LN_LANES] = {0};
        ln_stats(x, D, nd->eps, &mean, &s);
        int j = 0;
        for (; j + LN_LANES <= D; j += LN_LANES)
            for (int l = 0; l < LN_LANES; l++) {
                const double xhat = (x[j + l] - mean) * s, gj = (double)dy[j + l] * g[j + l];
                mg_part[l] += gj;
                mgx_part[l] += gj * xhat;
            }
        for (; j < D; j++) {
            const double xhat = (x[j] - mean) * s, gj = (double)dy[j] * g[j];
            mg_part[j % LN_LANES] += gj;
            mgx_part[j % LN_LANES] += gj * xhat;
        }
        if (dg || db)
            for (j = 0; j < D; j++) {
                if (dg)
                    dg[j] += (float)(dy[j] * (x[j] - mean) * s);
                if (db)
                    db[j] += dy[j];
            }
        double mg = 0.0, mgx = 0.0;
        for (int l = 0; l < LN_LANES; l++) {
            mg += mg_part[l];
            mgx += mgx_part[l];
        }
        mg /= D;
        mgx /= D;
        if (dx_all) {
            float *dx = dx_all + r * D;
            for (int j = 0; j < D; j++) {
                double xhat = (x[j] - mean) * s;
                dx[j] += (float)(s * ((double)dy[j] * g[j] - mg - xhat * mgx));
            }
        }
    }
    return 0;
}

static double layernorm_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return 8.0 * (double)nn_node_size(nd);
}

static void layernorm_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " eps=%.9g", nd->eps);
}

const nn_op_def_t nn_op_layernorm = {
    .name = "layernorm",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_ANY,
    .infer = layernorm_infer,
    .param_shape = layernorm_param_shape,
    .init = layernorm_init,
    .forward = layernorm_forward,
    .backward = layernorm_backward,
    .flops = layernorm_flops,
    .bwd_reads = NN_READS_INPUTS,
    .write_attrs = layernorm_write_attrs,
};
