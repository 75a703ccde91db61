/*
 * ops/pow.c - a power with a constant exponent, elementwise (ONNX Pow with a
 * scalar exponent outside the layer-norm chain): y = x^alpha,
 * dy/dx = alpha x^(alpha - 1).
 *
 * Owned by common/nn. Computed in double; pow's rules for negative bases
 * (NaN unless alpha is an integer) are PyTorch's.
 */
#include "nn/op.h"

#include <math.h>
#include <stdio.h>

static int pow_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const float *x = m->nodes[nd->in[0]].out;
    const size_t count = (size_t)n * nn_node_size(nd);
    for (size_t k = 0; k < count; k++)
        nd->out[k] = (float)pow((double)x[k], (double)nd->alpha);
    return 0;
}

static int pow_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    const float *x = m->nodes[nd->in[0]].out;
    float *dx = nn_grad_acc(m, nd->in[0]);
    const size_t count = (size_t)n * nn_node_size(nd);
    const double a = nd->alpha;
    for (size_t k = 0; k < count; k++)
        dx[k] += (float)(nd->grad[k] * a * pow((double)x[k], a - 1.0));
    return 0;
}

static void pow_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " alpha=%.9g", nd->alpha);
}

const nn_op_def_t nn_op_pow = {
    .name = "pow",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_ANY,
    .forward = pow_forward,
    .backward = pow_backward,
    .bwd_reads = NN_READS_INPUTS,
    .write_attrs = pow_write_attrs,
};
