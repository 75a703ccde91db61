/*
 * ops/transpose.c - permutation of the axes of a general tensor (ONNX
 * Transpose): out dims[d] = in dims[perm[d]].
 *
 * Owned by common/nn. The input's shape is its general shape (nn_node_shape:
 * [1, c, h, w] for a c x h x w map). Backward scatters the gradient back
 * through the same index map.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int transpose_infer(const nn_model_t *m, nn_node_t *nd)
{
    int in_dims[NN_MAX_RANK], out[NN_MAX_RANK], seen[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], in_dims);
    for (int d = 0; d < rank; d++) {
        if (nd->perm[d] < 0 || nd->perm[d] >= rank || seen[nd->perm[d]]++) {
            SC_ERROR("transpose '%s': perm is not a permutation of %d axes", nd->name, rank);
            return SC_ERR_SHAPE;
        }
        out[d] = in_dims[nd->perm[d]];
    }
    nn_set_dims(nd, rank, out);
    return 0;
}

/* Input offset stride of each output axis. */
static int transpose_strides(const nn_model_t *m, const nn_node_t *nd, size_t stride[NN_MAX_RANK])
{
    int in_dims[NN_MAX_RANK] = {0};
    size_t in_stride[NN_MAX_RANK];
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], in_dims);
    size_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        in_stride[d] = s;
        s *= (size_t)in_dims[d];
    }
    for (int d = 0; d < rank; d++)
        stride[d] = in_stride[nd->perm[d]];
    return rank;
}

static int transpose_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    size_t stride[NN_MAX_RANK];
    const int rank = transpose_strides(m, nd, stride);
    const size_t size = nn_node_size(nd);
    int out_dims[NN_MAX_RANK] = {0};
    nn_node_shape(nd, out_dims);
    for (int b = 0; b < n; b++) {
        const float *x = m->nodes[nd->in[0]].out + (size_t)b * size;
        float *y = nd->out + (size_t)b * size;
        NN_STRIDED_WALK(size, rank, out_dims, stride, y[k] = x[at]); /* at: input offset */
    }
    return 0;
}

static int transpose_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    size_t stride[NN_MAX_RANK];
    const int rank = transpose_strides(m, nd, stride);
    const size_t size = nn_node_size(nd);
    int out_dims[NN_MAX_RANK] = {0};
    nn_node_shape(nd, out_dims);
    float *dx_all = nn_grad_acc(m, nd->in[0]);
    for (int b = 0; b < n; b++) {
        float *dx = dx_all + (size_t)b * size;
        const float *dy = nd->grad + (size_t)b * size;
        NN_STRIDED_WALK(size, rank, out_dims, stride, dx[at] += dy[k]);
    }
    return 0;
}

static void transpose_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    int dims[NN_MAX_RANK] = {0};
    nn_write_dims("perm", nn_node_shape(nd, dims), nd->perm, buf, len);
}

const nn_op_def_t nn_op_transpose = {
    .name = "transpose",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_INPUTS,
    .infer = transpose_infer,
    .forward = transpose_forward,
    .backward = transpose_backward,
    .bwd_reads = NN_READS_NOTHING,
    .write_attrs = transpose_write_attrs,
};
