/*
 * ops/reshape.c - a general tensor given a new shape with the same elements
 * in the same order (ONNX Reshape, Flatten, Squeeze, Unsqueeze on tokens, the
 * [N, C, H, W] patch grid to [N, C, H*W] tokens).
 *
 * Owned by common/nn. The output copies the input; the shape is the node's
 * dims attribute. Also home of nn_write_dims, the dims attribute writer of
 * the general-shape ops.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

void nn_write_dims(const char *key, int rank, const int *dims, char *buf, size_t len)
{
    int off = snprintf(buf, len, " %s=", key);
    for (int d = 0; d < rank && off < (int)len; d++)
        off += snprintf(buf + off, len - off, d ? ",%d" : "%d", dims[d]);
}

static int reshape_infer(const nn_model_t *m, nn_node_t *nd)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    if (nd->rank < 1 || nd->rank > NN_MAX_RANK ||
        nn_dims_count(nd->rank, nd->dims) != nn_node_size(src)) {
        SC_ERROR("reshape '%s': the new shape does not hold the %zu values of its input",
                 nd->name, nn_node_size(src));
        return SC_ERR_SHAPE;
    }
    int dims[NN_MAX_RANK] = {0};
    memcpy(dims, nd->dims, sizeof dims);
    nn_set_dims(nd, nd->rank, dims);
    return 0;
}

static int reshape_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const float *x = m->nodes[nd->in[0]].out;
    if (nd->out != x) /* in place when the memory plan gave it its input's buffer */
        memcpy(nd->out, x, sizeof(float) * n * nn_node_size(nd));
    return 0;
}

static int reshape_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    nn_grad_pass_through(m, nd->in[0], nd->grad, (size_t)n * nn_node_size(nd));
    return 0;
}

static void reshape_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    int dims[NN_MAX_RANK] = {0};
    nn_write_dims("dims", nn_node_shape(nd, dims), dims, buf, len);
}

const nn_op_def_t nn_op_reshape = {
    .name = "reshape",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_INPUTS,
    .infer = reshape_infer,
    .forward = reshape_forward,
    .backward = reshape_backward,
    .bwd_reads = NN_READS_NOTHING,
    .inplace = 1,
    .write_attrs = reshape_write_attrs,
};
