/*
 * ops/param.c - a learned tensor as a node (ViT's class token and position
 * embedding when they enter the graph as operands: Concat of the expanded
 * class token, Add of the position embedding).
 *
 * Owned by common/nn. The node reads no input values (input 0, the image, only
 * anchors it in the graph); every sample gets the weight tensor of shape dims.
 * Backward sums the gradient over the samples into the weight's gradient and
 * sends nothing to the input. Initialization: normal with standard deviation
 * 0.02 (torchvision's position embedding; the class token starts at zero
 * there, but a zero tensor would not change under cascading randomization).
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int param_infer(const nn_model_t *m, nn_node_t *nd)
{
    (void)m;
    int dims[NN_MAX_RANK] = {0};
    if (nd->rank < 1 || nd->rank > 4) {
        SC_ERROR("param '%s': needs a shape of 1 to 4 axes", nd->name);
        return SC_ERR_SHAPE;
    }
    memcpy(dims, nd->dims, sizeof dims);
    nn_set_dims(nd, nd->rank, dims);
    return 0;
}

static int param_shape(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k, size_t dims[4])
{
    (void)m;
    if (k != NN_P_WEIGHT)
        return 0;
    int shape[NN_MAX_RANK] = {0};
    int rank = nn_node_shape(nd, shape);
    for (int d = 0; d < rank && d < 4; d++)
        dims[d] = (size_t)shape[d];
    return rank;
}

static void param_init(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats)
{
    (void)keep_bn_stats;
    size_t count;
    float *W = nn_param(m, id, NN_P_WEIGHT, &count);
    for (size_t i = 0; i < count; i++)
        W[i] = (float)(0.02 * rng_stream_normal(rs));
}

static int param_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const size_t size = nn_node_size(nd);
    const float *W = nn_param(m, id, NN_P_WEIGHT, NULL);
    for (int b = 0; b < n; b++)
        memcpy(nd->out + (size_t)b * size, W, sizeof(float) * size);
    return 0;
}

static int param_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    float *dW = o->param_grads ? nn_param_grad(m, id, NN_P_WEIGHT) : NULL;
    if (!dW)
        return 0;
    const size_t size = nn_node_size(nd);
    for (int b = 0; b < n; b++)
        for (size_t k = 0; k < size; k++)
            dW[k] += nd->grad[(size_t)b * size + k];
    return 0;
}

static void param_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    int dims[NN_MAX_RANK] = {0};
    nn_write_dims("dims", nn_node_shape(nd, dims), dims, buf, len);
}

const nn_op_def_t nn_op_param = {
    .name = "param",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_ANY,
    .infer = param_infer,
    .param_shape = param_shape,
    .init = param_init,
    .forward = param_forward,
    .backward = param_backward,
    .bwd_reads = NN_READS_NOTHING,
    .write_attrs = param_write_attrs,
};
