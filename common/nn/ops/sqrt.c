/*
 * ops/sqrt.c - square root, elementwise (ONNX Sqrt outside the layer-norm
 * chain the importer fuses): y = sqrt(x), dy/dx = 1 / (2 y).
 *
 * Owned by common/nn. Negative inputs give NaN as in PyTorch.
 */
#include "nn/op.h"

#include <math.h>

static float sqrt_f(float x) { return sqrtf(x); }

static int sqrt_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, sqrt_f); }

static int sqrt_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    /* from the output only (the memory plan may have reused the input's buffer) */
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    float *dx = nn_grad_acc(m, nd->in[0]);
    const size_t count = (size_t)n * nn_node_size(nd);
    for (size_t k = 0; k < count; k++)
        dx[k] += nd->grad[k] * (0.5f / nd->out[k]);
    return 0;
}

const nn_op_def_t nn_op_sqrt = {
    .name = "sqrt",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_NONNEG,
    .forward = sqrt_forward,
    .backward = sqrt_backward,
    .bwd_reads = NN_READS_OUTPUT,
    .inplace = 1,
};
