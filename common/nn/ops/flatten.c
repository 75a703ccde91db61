/*
 * ops/flatten.c - reshape [c, h, w] -> [c*h*w, 1, 1] (NCHW order kept).
 *
 * Owned by common/nn.
 */
#include "nn/op.h"

#include <string.h>

int nn_add_flatten(nn_model_t *m, const char *name, int in)
{
    return nn_add_node(m, name, NN_FLATTEN, 1, &in, NULL);
}

static int flatten_infer(const nn_model_t *m, nn_node_t *nd)
{
    (void)m;
    nd->c = nd->c * nd->h * nd->w;
    nd->h = nd->w = 1;
    return 0;
}

static int flatten_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    memcpy(nd->out, m->nodes[nd->in[0]].out, sizeof(float) * (size_t)n * nn_node_size(nd));
    return 0;
}

static int flatten_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (nn_wants_grad(nd->in[0], o))
        nn_grad_pass_through(m, nd->in[0], nd->grad, (size_t)n * nn_node_size(nd));
    return 0;
}

const nn_op_def_t nn_op_flatten = {
    .name = "flatten",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_INPUTS,
    .infer = flatten_infer,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .bwd_reads = NN_READS_NOTHING,
};
