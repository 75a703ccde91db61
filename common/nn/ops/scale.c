/*
 * ops/scale.c - y = alpha * x with a constant alpha (a general tensor
 * multiplied or divided by a scalar: attention's 1/sqrt(head dim)).
 *
 * Owned by common/nn.
 */
#include "nn/op.h"

#include <stdio.h>

static int scale_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const float *x = m->nodes[nd->in[0]].out;
    const size_t count = (size_t)n * nn_node_size(nd);
    for (size_t k = 0; k < count; k++)
        nd->out[k] = nd->alpha * x[k];
    return 0;
}

static int scale_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    float *dx = nn_grad_acc(m, nd->in[0]);
    const size_t count = (size_t)n * nn_node_size(nd);
    for (size_t k = 0; k < count; k++)
        dx[k] += nd->alpha * nd->grad[k];
    return 0;
}

static double scale_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return (double)nn_node_size(nd);
}

static void scale_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " alpha=%.9g", nd->alpha);
}

const nn_op_def_t nn_op_scale = {
    .name = "scale",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_ANY,
    .forward = scale_forward,
    .backward = scale_backward,
    .flops = scale_flops,
    .bwd_reads = NN_READS_NOTHING,
    .inplace = 1,
    .write_attrs = scale_write_attrs,
};
