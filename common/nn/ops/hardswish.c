/*
 * ops/hardswish.c - Hardswish: y = x * relu6(x + 3) / 6, elementwise (MobileNetV3).
 *
 * Owned by common/nn. Derivative as PyTorch's vectorized hardswish_backward
 * (the path nearly every element of a real tensor takes): 0 below -3,
 * x/3 + 1/2 on [-3, 3), 1 from 3 on. (Its scalar tail loop gives 3/2 at
 * exactly 3; a measure-zero point, where the vectorized rule is taken.)
 */
#include "nn/op.h"

static float hardswish(float x)
{
    float r = x + 3.0f;
    r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
    return x * r / 6.0f;
}

static float hardswish_grad(float x, float y)
{
    (void)y;
    return x < -3.0f ? 0.0f : (x < 3.0f ? x / 3.0f + 0.5f : 1.0f);
}

static int hardswish_forward(nn_model_t *m, int id, int n)
{
    return nn_unary_forward(m, id, n, hardswish);
}

static int hardswish_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, hardswish_grad);
}

const nn_op_def_t nn_op_hardswish = {
    .name = "hardswish",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_ANY,
    .forward = hardswish_forward,
    .backward = hardswish_backward,
    .bwd_reads = NN_READS_INPUTS,
};
