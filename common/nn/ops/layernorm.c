/*
 * ops/layernorm.c - layer normalization over one axis of a general tensor
 * (ONNX LayerNormalization, and the ReduceMean/Sub/Pow/ReduceMean/Add/
 * Sqrt/Div/Mul/Add chain older opsets export, which the importer fuses):
 *   y = (x - mean) / sqrt(var + eps) * gamma + beta,  var biased (torch).
 *
 * Owned by common/nn. The axis is the last one (axis = 0, the default) or
 * axis k > 0 of the input's general shape (nn_node_shape): axis 1 of a
 * c x h x w map normalizes the channels at every position, ConvNeXt's
 * channels-last LayerNorm run on the NCHW map without transposing it (the
 * importer's channels-last views, onnx_import.c). Statistics in double:
 * along the last axis as partial sums over 8 lanes; along an inner axis
 * one sum per position, the positions of a block side by side so the loops
 * vectorize. Each position's sums run over the axis in order, whatever the
 * batch. The loops run in 512-bit vectors on AVX-512 builds (nn/vmath.h's
 * NN_WIDE_VECTORS; the same bits). The forward keeps each position's mean
 * and 1/std (16 bytes a position); the backward of the same pass reuses
 * them, any other computes them again, the same bits either way:
 *   xhat = (x - mean) s, g = dy gamma,
 *   dx = s (g - mean(g) - xhat mean(g xhat)), dgamma += sum dy xhat, dbeta += sum dy.
 */
#include "nn/op.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/vmath.h"
#include "sc.h"

/* The normalized axis of nd's shape as outer x len x inner (inner 1: the last axis).
 * Returns its rank, or 0 when nd->axis lies outside it. */
static int ln_layout(const nn_node_t *nd, size_t *outer, int *len, size_t *inner)
{
    int dims[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(nd, dims);
    const int axis = nd->axis > 0 ? nd->axis : rank - 1;
    if (axis >= rank)
        return 0;
    *outer = nn_dims_count(axis, dims);
    *len = dims[axis];
    *inner = nn_dims_count(rank - axis - 1, dims + axis + 1);
    return rank;
}

static int ln_width(const nn_node_t *nd)
{
    size_t outer, inner;
    int len = 0;
    ln_layout(nd, &outer, &len, &inner);
    return len;
}

static int layernorm_infer(const nn_model_t *m, nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    if (nd->axis < 0 || nd->axis >= rank) {
        SC_ERROR("layernorm '%s': axis %d outside 1..%d (0: the last axis)", nd->name, nd->axis,
                 rank - 1);
        return SC_ERR_SHAPE;
    }
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
/* Positions normalized side by side along an inner axis: a block reads each of the D rows
 * of the axis over LN_BLOCK consecutive floats, long enough for the hardware prefetchers to
 * stream every row (ConvNeXt's 96 channels of 56 x 56: 64 positions, 256 bytes a row, left
 * the passes waiting on memory; 1024 positions run its layer norms 1.7x faster), and the
 * block of x, dy and dx stays in L2. */
#define LN_BLOCK 1024

/* sum of a[j] * (b ? b[j] : 1) - c over j < D: LN_LANES partial sums over j mod LN_LANES,
 * added in a fixed order at the end (the same for every row of every batch). */
NN_WIDE_VECTORS static double ln_dot(const float *a, const float *b, double c, int D)
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

NN_WIDE_VECTORS static void ln_stats(const float *x, int D, double eps, double *mean,
                                     double *invstd)
{
    const double s = ln_dot(x, NULL, 0.0, D) / D;
    *mean = s;
    *invstd = 1.0 / sqrt(ln_dot(x, x, s, D) / D + eps);
}

/* Statistics of positions p < P of x[D][stride] (P <= LN_BLOCK): each position's
 * mean and 1/sqrt(var + eps), its sums taken over the axis in order. */
NN_WIDE_VECTORS static void ln_stats_block(const float *x, int D, size_t stride, int P,
                                           double eps, double *mean, double *invstd)
{
    for (int p = 0; p < P; p++)
        mean[p] = invstd[p] = 0.0;
    for (int j = 0; j < D; j++) {
        const float *xj = x + (size_t)j * stride;
        for (int p = 0; p < P; p++)
            mean[p] += xj[p];
    }
    for (int p = 0; p < P; p++)
        mean[p] /= D;
    for (int j = 0; j < D; j++) {
        const float *xj = x + (size_t)j * stride;
        for (int p = 0; p < P; p++) {
            const double d = xj[p] - mean[p];
            invstd[p] += d * d;
        }
    }
    for (int p = 0; p < P; p++)
        invstd[p] = 1.0 / sqrt(invstd[p] / D + eps);
}

/* Forward of one [D][inner] slice along an inner axis; each position's mean and
 * 1/std into mean_all[inner], s_all[inner]. */
NN_WIDE_VECTORS static void ln_forward_inner(const float *x, float *y, int D, size_t inner,
                                             double eps, const float *g, const float *b,
                                             double *mean_all, double *s_all)
{
    for (size_t p0 = 0; p0 < inner; p0 += LN_BLOCK) {
        const int P = inner - p0 < LN_BLOCK ? (int)(inner - p0) : LN_BLOCK;
        double *mean = mean_all + p0, *s = s_all + p0;
        ln_stats_block(x + p0, D, inner, P, eps, mean, s);
        for (int j = 0; j < D; j++) {
            const float *xj = x + (size_t)j * inner + p0;
            float *yj = y + (size_t)j * inner + p0;
            const double gj = g[j], bj = b[j];
            for (int p = 0; p < P; p++)
                yj[p] = (float)((xj[p] - mean[p]) * s[p] * gj + bj);
        }
    }
}

/* Backward of one [D][inner] slice along an inner axis: dx (= when assign, else +=),
 * dg, db (NULL: not wanted) accumulated. saved_mean, saved_s: the forward's
 * statistics (ln_forward_inner's), or NULL to compute them again (the same bits). */
NN_WIDE_VECTORS static void ln_backward_inner(const float *x, const float *dy, float *dx,
                                              int assign, int D, size_t inner, double eps,
                                              const float *g, float *dg, float *db,
                                              const double *saved_mean, const double *saved_s)
{
    double mean_blk[LN_BLOCK], s_blk[LN_BLOCK], mg[LN_BLOCK], mgx[LN_BLOCK];
    for (size_t p0 = 0; p0 < inner; p0 += LN_BLOCK) {
        const int P = inner - p0 < LN_BLOCK ? (int)(inner - p0) : LN_BLOCK;
        const double *mean = mean_blk, *s = s_blk;
        if (saved_mean) {
            mean = saved_mean + p0;
            s = saved_s + p0;
        } else {
            ln_stats_block(x + p0, D, inner, P, eps, mean_blk, s_blk);
        }
        for (int p = 0; p < P; p++)
            mg[p] = mgx[p] = 0.0;
        for (int j = 0; j < D; j++) {
            const float *xj = x + (size_t)j * inner + p0, *dyj = dy + (size_t)j * inner + p0;
            const double gj = g[j];
            for (int p = 0; p < P; p++) {
                const double xhat = (xj[p] - mean[p]) * s[p], gy = dyj[p] * gj;
                mg[p] += gy;
                mgx[p] += gy * xhat;
            }
            /* the parameter gradients, sums over the block's positions in order (a loop
             * of its own: input gradients alone keep the loop above free of them) */
            if (dg || db) {
                double sum_dy = 0.0, sum_dyx = 0.0;
                for (int p = 0; p < P; p++) {
                    const double xhat = (xj[p] - mean[p]) * s[p];
                    sum_dy += dyj[p];
                    sum_dyx += dyj[p] * xhat;
                }
                if (dg)
                    dg[j] += (float)sum_dyx;
                if (db)
                    db[j] += (float)sum_dy;
            }
        }
        if (!dx)
            continue;
        for (int p = 0; p < P; p++) {
            mg[p] /= D;
            mgx[p] /= D;
        }
        for (int j = 0; j < D; j++) {
            const float *xj = x + (size_t)j * inner + p0, *dyj = dy + (size_t)j * inner + p0;
            float *dxj = dx + (size_t)j * inner + p0;
            const double gj = g[j];
            if (assign)
                for (int p = 0; p < P; p++) {
                    const double xhat = (xj[p] - mean[p]) * s[p];
                    dxj[p] = (float)(s[p] * (dyj[p] * gj - mg[p] - xhat * mgx[p]));
                }
            else
                for (int p = 0; p < P; p++) {
                    const double xhat = (xj[p] - mean[p]) * s[p];
                    dxj[p] += (float)(s[p] * (dyj[p] * gj - mg[p] - xhat * mgx[p]));
                }
        }
    }
}

NN_WIDE_VECTORS static int layernorm_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    size_t outer, inner;
    int D;
    ln_layout(nd, &outer, &D, &inner);
    const float *g = nn_param(m, id, NN_P_GAMMA, NULL), *b = nn_param(m, id, NN_P_BETA, NULL);
    const float *x_all = m->nodes[nd->in[0]].out;
    /* the statistics kept for the backward: means, then 1/stds, position by position */
    const size_t pos = (size_t)n * nn_layernorm_positions(nd);
    double *mean_all = nd->ln_stats, *s_all = nd->ln_stats + pos;
    nd->ln_gen = m->act_gen;
    if (inner > 1) {
        const size_t slice = (size_t)D * inner;
        for (size_t r = 0; r < (size_t)n * outer; r++)
            ln_forward_inner(x_all + r * slice, nd->out + r * slice, D, inner, nd->eps, g, b,
                             mean_all + r * inner, s_all + r * inner);
        return 0;
    }
    const size_t rows = (size_t)n * outer;
    for (size_t r = 0; r < rows; r++) {
        const float *x = x_all + r * D;
        float *y = nd->out + r * D;
        double mean, s;
        ln_stats(x, D, nd->eps, &mean, &s);
        mean_all[r] = mean;
        s_all[r] = s;
        for (int j = 0; j < D; j++)
            y[j] = (float)((x[j] - mean) * s * g[j] + b[j]);
    }
    return 0;
}

size_t nn_layernorm_positions(const nn_node_t *nd)
{
    const int D = ln_width(nd);
    return D > 0 ? nn_node_size(nd) / (size_t)D : 0;
}

static int layernorm_prepare(nn_model_t *m, nn_node_t *nd, int max_batch)
{
    int rc = 0;
    (void)m;
    nd->ln_stats = sc_calloc((size_t)max_batch * nn_layernorm_positions(nd) * 2, sizeof(double));
    CHECK_ALLOC(nd->ln_stats);
    nd->ln_gen = 0;
cleanup:
    return rc;
}

NN_WIDE_VECTORS static int layernorm_backward(nn_model_t *m, int id, int n,
                                              const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src = nd->in[0];
    size_t outer, inner;
    int D;
    ln_layout(nd, &outer, &D, &inner);
    const float *g = nn_param(m, id, NN_P_GAMMA, NULL);
    int assign = 0;
    float *dx_all = nn_wants_grad(src, o) ? nn_grad_dst(m, src, &assign) : NULL;
    float *dg = o->param_grads ? nn_param_grad(m, id, NN_P_GAMMA) : NULL;
    float *db = o->param_grads ? nn_param_grad(m, id, NN_P_BETA) : NULL;
    const float *x_all = m->nodes[src].out;
    /* the forward's statistics when it ran in this pass on this batch (else again) */
    const size_t pos = (size_t)n * nn_layernorm_positions(nd);
    const int saved = nd->ln_gen == m->act_gen && m->batch == n;
    const double *mean_all = saved ? nd->ln_stats : NULL;
    const double *s_all = saved ? nd->ln_stats + pos : NULL;
    if (inner > 1) {
        const size_t slice = (size_t)D * inner;
        for (size_t r = 0; r < (size_t)n * outer; r++)
            ln_backward_inner(x_all + r * slice, nd->grad + r * slice,
                              dx_all ? dx_all + r * slice : NULL, assign, D, inner, nd->eps, g,
                              dg, db, saved ? mean_all + r * inner : NULL,
                              saved ? s_all + r * inner : NULL);
        return 0;
    }
    const size_t rows = (size_t)n * outer;
    for (size_t r = 0; r < rows; r++) {
        const float *x = x_all + r * D, *dy = nd->grad + r * D;
        double mean, s, mg_part[LN_LANES] = {0}, mgx_part[LN_LANES] = {0};
        if (saved) {
            mean = mean_all[r];
            s = s_all[r];
        } else {
            ln_stats(x, D, nd->eps, &mean, &s);
        }
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
            if (assign)
                for (int j = 0; j < D; j++) {
                    double xhat = (x[j] - mean) * s;
                    dx[j] = (float)(s * ((double)dy[j] * g[j] - mg - xhat * mgx));
                }
            else
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
    if (nd->axis > 0)
        snprintf(buf, len, " eps=%.9g axis=%d", nd->eps, nd->axis);
    else
        snprintf(buf, len, " eps=%.9g", nd->eps);
}

const nn_op_def_t nn_op_layernorm = {
    .name = "layernorm",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_ANY,
    .infer = layernorm_infer,
    .param_shape = layernorm_param_shape,
    .init = layernorm_init,
    .prepare = layernorm_prepare,
    .forward = layernorm_forward,
    .backward = layernorm_backward,
    .flops = layernorm_flops,
    .bwd_reads = NN_READS_INPUTS,
    .write_attrs = layernorm_write_attrs,
};
