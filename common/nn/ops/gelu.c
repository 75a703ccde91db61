/*
 * ops/gelu.c - GELU, elementwise (ConvNeXt, ViT), in its two forms:
 *   gelu:      y = x/2 * (1 + erf(x / sqrt 2)) = x Phi(x)                 (exact)
 *   gelu_tanh: y = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))    (approximate="tanh")
 *
 * Owned by common/nn. One family, two table entries (like max/average pooling).
 * Computed in float with nn/vmath.h's vectorized functions: Phi within 1e-6
 * relative of the float64 value for |x| <= 4 and keeping its relative accuracy
 * in the lower tail (where 1 + erf cancels in float32 and float64 alike), the
 * derivative with one exponential shared by Phi and the density; the
 * tanh form as x * sigmoid(2u), since (1 + tanh u) / 2 = sigmoid(2u).
 */
#include "nn/op.h"

#include "nn/vmath.h"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

static float gelu(float x) { return x * nn_phif(x); }

static inline __attribute__((always_inline)) float gelu_grad(float x, float y)
{
    (void)y;
    return nn_gelu_gradf(x);
}

static float gelu_tanh(float x)
{
    return x * nn_sigmoidf(2.0f * GELU_K * (x + 0.044715f * x * x * x));
}

/* d/dx of x s(2u): s + x * 2 s (1 - s) * u', with tanh' = 1 - tanh^2 = 4 s (1 - s). */
static float gelu_tanh_grad(float x, float y)
{
    (void)y;
    const float s = nn_sigmoidf(2.0f * GELU_K * (x + 0.044715f * x * x * x));
    return s + x * 2.0f * s * (1.0f - s) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
}

NN_WIDE_VECTORS static int gelu_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, gelu); }

/* The forwards' loops in place (a convolution's packing, nn/fuse.h): the same
 * function of each value, so the same bits. */
NN_WIDE_VECTORS void nn_gelu_apply(float *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        v[k] = gelu(v[k]);
}

NN_WIDE_VECTORS void nn_gelu_tanh_apply(float *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        v[k] = gelu_tanh(v[k]);
}

/* The backwards' loops (nn_unary_backward's dy * df(x, y), assigned) in place over dy. */
NN_WIDE_VECTORS void nn_gelu_backward_apply(float *restrict v, const float *restrict u, size_t n)
{
    for (size_t k = 0; k < n; k++)
        v[k] = v[k] * gelu_grad(u[k], 0.0f);
}

NN_WIDE_VECTORS void nn_gelu_tanh_backward_apply(float *restrict v, const float *restrict u,
                                                 size_t n)
{
    for (size_t k = 0; k < n; k++)
        v[k] = v[k] * gelu_tanh_grad(u[k], 0.0f);
}

NN_WIDE_VECTORS static int gelu_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, gelu_grad);
}

NN_WIDE_VECTORS static int gelu_tanh_forward(nn_model_t *m, int id, int n)
{
    return nn_unary_forward(m, id, n, gelu_tanh);
}

NN_WIDE_VECTORS static int gelu_tanh_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
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
