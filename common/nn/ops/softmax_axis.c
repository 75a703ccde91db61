/*
 * ops/softmax_axis.c - softmax along one axis of a general tensor
 * (attention weights: the last axis of the [H, L, L] scores).
 *
 * Owned by common/nn. y = exp(x - max) / sum; backward dx += y (dy - sum(dy y)).
 * The class-axis softmax of [n, classes] logits stays ops/softmax.c.
 */
#include "nn/op.h"

#include <math.h>
#include <stdio.h>

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

static int softmax_axis_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    size_t outer, len, inner;
    sm_geometry(nd, n, &outer, &len, &inner);
    for (size_t q = 0; q < outer; q++)
        for (size_t i = 0; i < inner; i++) {
            const float *x = m->nodes[nd->in[0]].out + q * len * inner + i;
            float *y = nd->out + q * len * inner + i;
            float mx = x[0];
            for (size_t j = 1; j < len; j++)
                mx = x[j * inner] > mx ? x[j * inner] : mx;
            double sum = 0.0;
            for (size_t j = 0; j < len; j++) {
                float e = expf(x[j * inner] - mx);
                y[j * inner] = e;
                sum += e;
            }
            const float inv = (float)(1.0 / sum);
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
    float *dx_all = nn_grad_acc(m, nd->in[0]);
    for (size_t q = 0; q < outer; q++)
        for (size_t i = 0; i < inner; i++) {
            const size_t base = q * len * inner + i;
            const float *y = nd->out + base, *dy = nd->grad + base;
            float *dx = dx_all + base;
            double dot = 0.0;
            for (size_t j = 0; j < len; j++)
                dot += (double)dy[j * inner] * y[j * inner];
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
