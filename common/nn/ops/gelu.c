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

#ifdef NN_HAVE_V16
/* y = gelu(x), dx = dy * gelu'(x) (or dx += it) over n values, 16 at a time, the
 * last partial vector masked: each value the bits of the scalar functions. */
static void gelu_loop(float *y, const float *x, size_t n)
{
    size_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m512 v = _mm512_loadu_ps(x + k);
        _mm512_storeu_ps(y + k, _mm512_mul_ps(v, nn_phif16(v)));
    }
    if (k < n) {
        const __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        _mm512_mask_storeu_ps(y + k, m, _mm512_mul_ps(v, nn_phif16(v)));
    }
}

static inline __m512 gelu_bwd16(__m512 dy, __m512 x, const float *dx, int assign)
{
    const __m512 d = _mm512_mul_ps(dy, nn_gelu_gradf16(x));
    return assign ? d : _mm512_add_ps(_mm512_loadu_ps(dx), d);
}

static void gelu_grad_loop(float *dx, const float *dy, const float *x, size_t n, int assign)
{
    size_t k = 0;
    for (; k + 16 <= n; k += 16)
        _mm512_storeu_ps(dx + k, gelu_bwd16(_mm512_loadu_ps(dy + k), _mm512_loadu_ps(x + k),
                                            dx + k, assign));
    if (k < n) {
        const __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        const __m512 d = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + k),
                                       nn_gelu_gradf16(_mm512_maskz_loadu_ps(m, x + k)));
        _mm512_mask_storeu_ps(dx + k, m,
                              assign ? d : _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + k), d));
    }
}
#else
static float gelu(float x) { return x * nn_phif(x); }

NN_WIDE_VECTORS static void gelu_loop(float *y, const float *x, size_t n)
{
    for (size_t k = 0; k < n; k++)
        y[k] = gelu(x[k]);
}

NN_WIDE_VECTORS static void gelu_grad_loop(float *dx, const float *dy, const float *x, size_t n,
                                           int assign)
{
    if (assign)
        for (size_t k = 0; k < n; k++)
            dx[k] = dy[k] * gelu_grad(x[k], 0.0f);
    else
        for (size_t k = 0; k < n; k++)
            dx[k] += dy[k] * gelu_grad(x[k], 0.0f);
}
#endif

static int gelu_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    gelu_loop(nd->out, m->nodes[nd->in[0]].out, (size_t)n * nn_node_size(nd));
    return 0;
}

/* The forwards' loops in place (a convolution's packing, nn/fuse.h): the same
 * function of each value, so the same bits. */
void nn_gelu_apply(float *v, size_t n)
{
    gelu_loop(v, v, n);
}

NN_WIDE_VECTORS void nn_gelu_tanh_apply(float *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        v[k] = gelu_tanh(v[k]);
}

/* The backwards' loops (the op's dy * df(x), assigned) in place over dy. */
void nn_gelu_backward_apply(float *v, const float *u, size_t n)
{
    gelu_grad_loop(v, v, u, n, 1);
}

NN_WIDE_VECTORS void nn_gelu_tanh_backward_apply(float *restrict v, const float *restrict u,
                                                 size_t n)
{
    for (size_t k = 0; k < n; k++)
        v[k] = v[k] * gelu_tanh_grad(u[k], 0.0f);
}

static int gelu_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    if (!nn_wants_grad(src_id, o))
        return 0;
    int assign;
    float *dx = nn_grad_dst(m, src_id, &assign);
    gelu_grad_loop(dx, nd->grad, m->nodes[src_id].out, (size_t)n * nn_node_size(nd), assign);
    return 0;
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
