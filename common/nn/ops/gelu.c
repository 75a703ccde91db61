/*
 * ops/gelu.c - GELU, elementwise (ConvNeXt, ViT), in its two forms:
 *   gelu:      y = x/2 * (1 + erf(x / sqrt 2))                          (exact)
 *   gelu_tanh: y = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))    (approximate="tanh")
 *
 * Owned by common/nn. One family, two table entries (like max/average pooling).
 * Computed in double and rounded once, so the float32 result is PyTorch's to
 * the last bit or one unit.
 */
#include "nn/op.h"

#include <math.h>

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */

static float gelu(float x) { return (float)(0.5 * x * (1.0 + erf(x * M_SQRT1_2))); }

static float gelu_grad(float x, float y)
{
    (void)y;
    const double xd = x;
    return (float)(0.5 * (1.0 + erf(xd * M_SQRT1_2)) + xd * exp(-0.5 * xd * xd) * 0.5 * M_2_SQRTPI * M_SQRT1_2);
}

static float gelu_tanh(float x)
{
    const double xd = x;
    return (float)(0.5 * xd * (1.0 + tanh(GELU_K * (xd + 0.044715 * xd * xd * xd))));
}

static float gelu_tanh_grad(float x, float y)
{
    (void)y;
    const double xd = x, u = GELU_K * (xd + 0.044715 * xd * xd * xd), t = tanh(u);
    return (float)(0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * 0.044715 * xd * xd));
}

static int gelu_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, gelu); }

static int gelu_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, gelu_grad);
}

static int gelu_tanh_forward(nn_model_t *m, int id, int n)
{
    return nn_unary_forward(m, id, n, gelu_tanh);
}

static int gelu_tanh_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, gelu_tanh_grad);
}

const nn_op_def_t nn_op_gelu = {
    .name = "gelu",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_ANY,
    .forward = gelu_forward,
    .backward = gelu_backward,
    .bwd_reads = NN_READS_INPUTS,
};

const nn_op_def_t nn_op_gelu_tanh = {
    .name = "gelu_tanh",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_ANY,
    .forward = gelu_tanh_forward,
    .backward = gelu_tanh_backward,
    .bwd_reads = NN_READS_INPUTS,
};
