/*
 * ops/slice.c - elements start..end-1 along one axis of a general tensor
 * (ONNX Slice with step 1; ViT's split of the packed query/key/value
 * projection, and with a reshape after it, Gather of the class token).
 *
 * Owned by common/nn.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int slice_infer(const nn_model_t *m, nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    if (nd->axis < 0 || nd->axis >= rank || nd->start < 0 || nd->end > dims[nd->axis] ||
        nd->start >= nd->end) {
        SC_ERROR("slice '%s': range %d..%d of axis %d is empty or outside the input", nd->name,
                 nd->start, nd->end, nd->axis);
        return SC_ERR_SHAPE;
    }
    dims[nd->axis] = nd->end - nd->start;
    nn_set_dims(nd, rank, dims);
    return 0;
}

/* outer blocks, input block length, output block length, offset (elements). */
static void slice_geometry(const nn_model_t *m, const nn_node_t *nd, size_t *outer,
                           size_t *in_block, size_t *out_block, size_t *offset)
{
    int dims[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(nd, dims);
    const size_t inner = nn_dims_count(rank - nd->axis - 1, dims + nd->axis + 1);
    *outer = nn_dims_count(nd->axis, dims);
    *in_block = nn_node_size(&m->nodes[nd->in[0]]) / *outer;
    *out_block = (size_t)(nd->end - nd->start) * inner;
    *offset = (size_t)nd->start * inner;
}

static int slice_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    size_t outer, ib, ob, off;
    slice_geometry(m, nd, &outer, &ib, &ob, &off);
    const float *x = m->nodes[nd->in[0]].out;
    for (size_t q = 0; q < (size_t)n * outer; q++)
        memcpy(nd->out + q * ob, x + q * ib + off, sizeof(float) * ob);
    return 0;
}

static int slice_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    size_t outer, ib, ob, off;
    slice_geometry(m, nd, &outer, &ib, &ob, &off);
    float *dx = nn_grad_acc(m, nd->in[0]);
    for (size_t q = 0; q < (size_t)n * outer; q++)
        for (size_t i = 0; i < ob; i++)
            dx[q * ib + off + i] += nd->grad[q * ob + i];
    return 0;
}

static void slice_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " axis=%d start=%d end=%d", nd->axis, nd->start, nd->end);
}

const nn_op_def_t nn_op_slice = {
    .name = "slice",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_INPUTS,
    .infer = slice_infer,
    .forward = slice_forward,
    .backward = slice_backward,
    .write_attrs = slice_write_attrs,
};
