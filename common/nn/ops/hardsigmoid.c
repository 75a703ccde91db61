/*
 * ops/hardsigmoid.c - Hardsigmoid as PyTorch: y = relu6(x + 3) / 6, elementwise
 * (MobileNetV3 squeeze-and-excitation gates; ONNX HardSigmoid alpha 1/6, beta 1/2).
 *
 * Owned by common/nn. Derivative as PyTorch's hardsigmoid_backward: 1/6 on
 * the open interval (-3, 3), 0 elsewhere.
 */
#include "nn/op.h"

static float hardsigmoid(float x)
{
    float r = x + 3.0f;
    r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
    return r / 6.0f;
}

static float hardsigmoid_grad(float x, float y)
{
    (void)y;
    return x > -3.0f && x < 3.0f ? 1.0f / 6.0f : 0.0f;
}

static int hardsigmoid_forward(nn_model_t *m, int id, int n)
{
    return nn_unary_forward(m, id, n, hardsigmoid);
}

static int hardsigmoid_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, hardsigmoid_grad);
}

const nn_op_def_t nn_op_hardsigmoid = {
    .name = "hardsigmoid",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_NONNEG,
    .forward = hardsigmoid_forward,
    .backward = hardsigmoid_backward,
    .bwd_reads = NN_READS_INPUTS,
};
