/*
 * ops/slice.c - elements start, start + step, ... below end along one axis of
 * a general tensor (ONNX Slice; ViT's split of the packed query/key/value
 * projection, and with a reshape after it, Gather of the class token; Swin's
 * cyclic shift and, with step 2, its patch merging).
 *
 * Owned by common/nn. The step is the node's sh attribute (0 or 1: step 1).
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int slice_step(const nn_node_t *nd) { return nd->sh > 1 ? nd->sh : 1; }

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
    dims[nd->axis] = (nd->end - nd->start + slice_step(nd) - 1) / slice_step(nd);
    nn_set_dims(nd, rank, dims);
    return 0;
}

/* outer blocks, input block length, output block length, offset (elements),
 * the elements after the axis, and the output's length along it. */
static void slice_geometry(const nn_model_t *m, const nn_node_t *nd, size_t *outer,
                           size_t *in_block, size_t *out_block, size_t *offset, size_t *inner,
                           size_t *len)
{
    int dims[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(nd, dims);
    *inner = nn_dims_count(rank - nd->axis - 1, dims + nd->axis + 1);
    *outer = nn_dims_count(nd->axis, dims);
    *len = (size_t)dims[nd->axis];
    *in_block = nn_node_size(&m->nodes[nd->in[0]]) / *outer;
    *out_block = *len * *inner;
    *offset = (size_t)nd->start * *inner;
}

static int slice_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    size_t outer, ib, ob, off, inner, len;
    slice_geometry(m, nd, &outer, &ib, &ob, &off, &inner, &len);
    const size_t step = (size_t)slice_step(nd) * inner;
    const float *x = m->nodes[nd->in[0]].out;
    for (size_t q = 0; q < (size_t)n * outer; q++) {
        if (step == inner) {
            memcpy(nd->out + q * ob, x + q * ib + off, sizeof(float) * ob);
            continue;
        }
        for (size_t i = 0; i < len; i++)
            memcpy(nd->out + q * ob + i * inner, x + q * ib + off + i * step,
                   sizeof(float) * inner);
    }
    return 0;
}

static int slice_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    size_t outer, ib, ob, off, inner, len;
    slice_geometry(m, nd, &outer, &ib, &ob, &off, &inner, &len);
    const size_t step = (size_t)slice_step(nd) * inner;
    float *dx = nn_grad_acc(m, nd->in[0]);
    for (size_t q = 0; q < (size_t)n * outer; q++)
        for (size_t i = 0; i < len; i++)
            for (size_t j = 0; j < inner; j++)
                dx[q * ib + off + i * step + j] += nd->grad[q * ob + i * inner + j];
    return 0;
}

static void slice_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    if (slice_step(nd) > 1)
        snprintf(buf, len, " axis=%d start=%d end=%d s=%d,1", nd->axis, nd->start, nd->end,
                 slice_step(nd));
    else
        snprintf(buf, len, " axis=%d start=%d end=%d", nd->axis, nd->start, nd->end);
}

const nn_op_def_t nn_op_slice = {
    .name = "slice",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_INPUTS,
    .infer = slice_infer,
    .forward = slice_forward,
    .backward = slice_backward,
    .bwd_reads = NN_READS_NOTHING,
    .write_attrs = slice_write_attrs,
};
