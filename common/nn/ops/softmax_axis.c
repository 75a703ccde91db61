/*
 * ops/softmax_axis.c - softmax along one axis of a general tensor
 * (attention weights: the last axis of the [H, L, L] scores).
 *
 * Owned by common/nn. y = exp(x - max) / sum; backward dx += y (dy - sum(dy y)).
 * The class-axis softmax of [n, classes] logits stays ops/softmax.c.
 */
#include "nn/op.h"

#include <math.h>
#ifdef __AVX__
#include <immintrin.h>
#endif
#include <stdio.h>

#include "nn/vmath.h"
#include "sc.h"

static int softmax_axis_infer(const nn_model_t *m, nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    if (nd->axis < 0 || nd->axis >= rank) {
        SC_ERROR("softmax_axis '%s': axis %d outside 0..%d", nd->name, nd->axis, rank - 1);
        return SC_ERR_SHAPE;
    }
    nn_set_dims(nd, rank, dims);
    return 0;
}

static void sm_geometry(const nn_node_t *nd, int n, size_t *outer, size_t *len, size_t *inner)
{
    int dims[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(nd, dims);
    *len = (size_t)dims[nd->axis];
    *inner = nn_dims_count(rank - nd->axis - 1, dims + nd->axis + 1);
    *outer = (size_t)n * nn_node_size(nd) / (*len * *inner);
}

/* The sum over j of a[j * inner] (times b[j * inner] when b is given), in double, in four
 * interleaved partial sums: a fixed order, so a row's value does not depend on the batch. */
static double sm_sum(const float *a, const float *b, size_t len, size_t inner)
{
    double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0;
    size_t j = 0;
    for (; j + 4 <= len; j += 4) {
        const float *q = a + j * inner;
        if (b) {
            const float *r = b + j * inner;
            p0 += (double)q[0] * r[0];
            p1 += (double)q[inner] * r[inner];
            p2 += (double)q[2 * inner] * r[2 * inner];
            p3 += (double)q[3 * inner] * r[3 * inner];
        } else {
            p0 += q[0];
            p1 += q[inner];
            p2 += q[2 * inner];
            p3 += q[3 * inner];
        }
    }
    for (; j < len; j++)
        p0 += b ? (double)a[j * inner] * b[j * inner] : (double)a[j * inner];
    return (p0 + p1) + (p2 + p3);
}

/* sm_sum over a contiguous row (inner = 1): the four partial sums as the lanes of one
 * vector, so the additions are sm_sum's, in its order, and the bits the same. */
typedef double sm_v4d __attribute__((vector_size(32)));
static double sm_sum_row(const float *restrict a, const float *restrict b, size_t len)
{
    sm_v4d p = {0.0, 0.0, 0.0, 0.0};
    size_t j = 0;
    if (b)
        for (; j + 4 <= len; j += 4) {
            const sm_v4d u = {a[j], a[j + 1], a[j + 2], a[j + 3]};
            const sm_v4d v = {b[j], b[j + 1], b[j + 2], b[j + 3]};
            p += u * v;
        }
    else
        for (; j + 4 <= len; j += 4) {
            const sm_v4d u = {a[j], a[j + 1], a[j + 2], a[j + 3]};
            p += u;
        }
    double p0 = p[0];
    for (; j < len; j++)
        p0 += b ? (double)a[j] * b[j] : (double)a[j];
    return (p0 + p[1]) + (p[2] + p[3]);
}

/* One row along a contiguous axis: the general loop's arithmetic, in loops that vectorize. */
static void sm_forward_row(const float *restrict x, float *restrict y, size_t len)
{
    /* the maximum, in 8 lanes where the CPU has AVX (vmaxps(a, b) is a > b ? a : b): the
     * same value in any order, NaN aside, and a NaN makes the whole row NaN either way */
    float mx = x[0];
    size_t j0 = 0;
#ifdef __AVX__
    if (len >= 8) {
        __m256 v = _mm256_loadu_ps(x);
        for (j0 = 8; j0 + 8 <= len; j0 += 8)
            v = _mm256_max_ps(_mm256_loadu_ps(x + j0), v);
        float lane[8];
        _mm256_storeu_ps(lane, v);
        for (int l = 0; l < 8; l++)
            mx = lane[l] > mx ? lane[l] : mx;
    }
#endif
    for (size_t j = j0; j < len; j++)
        mx = x[j] > mx ? x[j] : mx;
    for (size_t j = 0; j < len; j++)
        y[j] = nn_expf(x[j] - mx);
    const float inv = (float)(1.0 / sm_sum_row(y, NULL, len));
    for (size_t j = 0; j < len; j++)
        y[j] *= inv;
}

/* assign: dx holds nothing yet (0 + v: the bits of adding onto a zeroed buffer). */
static void sm_backward_row(const float *restrict y, const float *restrict dy,
                            float *restrict dx, size_t len, int assign)
{
    const double dot = sm_sum_row(y, dy, len);
    if (assign)
        for (size_t j = 0; j < len; j++)
            dx[j] = 0.0f + (float)(y[j] * (dy[j] - dot));
    else
        for (size_t j = 0; j < len; j++)
            dx[j] += (float)(y[j] * (dy[j] - dot));
}

static int softmax_axis_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    size_t outer, len, inner;
    sm_geometry(nd, n, &outer, &len, &inner);
    if (inner == 1) {
        for (size_t q = 0; q < outer; q++)
            sm_forward_row(m->nodes[nd->in[0]].out + q * len, nd->out + q * len, len);
        return 0;
    }
    for (size_t q = 0; q < outer; q++)
        for (size_t i = 0; i < inner; i++) {
            const float *x = m->nodes[nd->in[0]].out + q * len * inner + i;
            float *y = nd->out + q * len * inner + i;
            float mx = x[0];
            for (size_t j = 1; j < len; j++)
                mx = x[j * inner] > mx ? x[j * inner] : mx;
            for (size_t j = 0; j < len; j++)
                y[j * inner] = nn_expf(x[j * inner] - mx);
            const float inv = (float)(1.0 / sm_sum(y, NULL, len, inner));
            for (size_t j = 0; j < len; j++)
                y[j * inner] *= inv;
        }
    return 0;
}

static int softmax_axis_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    size_t outer, len, inner;
    sm_geometry(nd, n, &outer, &len, &inner);
    if (inner == 1) { /* rows: the first contribution written, no zeroing pass */
        int assign;
        float *dx_all = nn_grad_dst(m, nd->in[0], &assign);
        for (size_t q = 0; q < outer; q++)
            sm_backward_row(nd->out + q * len, nd->grad + q * len, dx_all + q * len, len,
                            assign);
        return 0;
    }
    float *dx_all = nn_grad_acc(m, nd->in[0]);
    for (size_t q = 0; q < outer; q++)
        for (size_t i = 0; i < inner; i++) {
            const size_t base = q * len * inner + i;
            const float *y = nd->out + base, *dy = nd->grad + base;
            float *dx = dx_all + base;
            const double dot = sm_sum(y, dy, len, inner);
            for (size_t j = 0; j < len; j++)
                dx[j * inner] += (float)(y[j * inner] * (dy[j * inner] - dot));
        }
    return 0;
}

static double softmax_axis_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return 4.0 * (double)nn_node_size(nd);
}

static void softmax_axis_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " axis=%d", nd->axis);
}

const nn_op_def_t nn_op_softmax_axis = {
    .name = "softmax_axis",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_NONNEG,
    .infer = softmax_axis_infer,
    .forward = softmax_axis_forward,
    .backward = softmax_axis_backward,
    .flops = softmax_axis_flops,
    .bwd_reads = NN_READS_OUTPUT,
    .write_attrs = softmax_axis_write_attrs,
};
