/*
 * ops/conv_node.h - what the convolution nodes (ops/conv.c, ops/gconv.c)
 * share: the kernel shape of a node on its input, the weight and bias
 * shapes, and their initialization. groups is 1 for conv, the node's groups
 * for gconv (whose output group g reads input group g only).
 *
 * Owned by common/nn.
 */
#ifndef NN_OPS_CONV_NODE_H
#define NN_OPS_CONV_NODE_H

#include <string.h>

#include "nn/op.h"

/* The convolution of n samples of one group: c/groups input and
 * out_c/groups output channels on the input's h x w with the node's kernel,
 * stride and padding. conv2d_shape_init is left to the caller. */
static inline conv2d_shape_t conv_node_shape(const nn_model_t *m, const nn_node_t *nd, int n,
                                             int groups)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    conv2d_shape_t s = {.n = n, .c = src->c / groups, .h = src->h, .w = src->w,
                        .oc = nd->out_c / groups, .kh = nd->kh, .kw = nd->kw, .sh = nd->sh,
                        .sw = nd->sw, .pt = nd->pt, .pb = nd->pb, .pl = nd->pl, .pr = nd->pr};
    return s;
}

/* param_shape: the weight [out_c, c/groups, kh, kw] and, with has_bias, the bias [out_c]. */
static inline int conv_node_param_shape(const nn_model_t *m, const nn_node_t *nd,
                                        nn_param_kind k, size_t dims[4], int groups)
{
    if (k == NN_P_WEIGHT) {
        dims[0] = (size_t)nd->out_c;
        dims[1] = (size_t)(m->nodes[nd->in[0]].c / groups);
        dims[2] = (size_t)nd->kh;
        dims[3] = (size_t)nd->kw;
        return 4;
    }
    if (k == NN_P_BIAS && nd->has_bias) {
        dims[0] = (size_t)nd->out_c;
        return 1;
    }
    return 0;
}

/* init: the weight by the node's init kind with the fans of one group (what
 * each output and input channel sees), the bias 0. */
static inline void conv_node_init(nn_model_t *m, int id, rng_stream_t *rs, int groups)
{
    const nn_node_t *nd = &m->nodes[id];
    const int cg = m->nodes[nd->in[0]].c / groups, og = nd->out_c / groups;
    size_t count;
    float *W = nn_param(m, id, NN_P_WEIGHT, &count);
    nn_init_weights(W, count, nd->init, (double)cg * nd->kh * nd->kw,
                    (double)og * nd->kh * nd->kw, rs);
    float *b = nn_param(m, id, NN_P_BIAS, &count);
    if (b)
        memset(b, 0, sizeof(float) * count);
}

#endif /* NN_OPS_CONV_NODE_H */
