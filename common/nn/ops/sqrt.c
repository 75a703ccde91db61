/*
 * ops/sqrt.c - square root, elementwise (ONNX Sqrt outside the layer-norm
 * chain the importer fuses): y = sqrt(x), dy/dx = 1 / (2 y).
 *
 * Owned by common/nn. Negative inputs give NaN as in PyTorch.
 */
#include "nn/op.h"

#include <math.h>

static float sqrt_f(float x) { return sqrtf(x); }

static float sqrt_grad(float x, float y)
{
    (void)x;
    return 0.5f / y;
}

static int sqrt_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, sqrt_f); }

static int sqrt_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, sqrt_grad);
}

const nn_op_def_t nn_op_sqrt = {
    .name = "sqrt",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_NONNEG,
    .forward = sqrt_forward,
    .backward = sqrt_backward,
};
