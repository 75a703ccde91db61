/*
 * ops/silu.c - SiLU (Swish): y = x * sigmoid(x), elementwise (EfficientNet).
 *
 * Owned by common/nn. Derivative s * (1 + x * (1 - s)) with s = sigmoid(x),
 * as PyTorch's silu_backward. The ONNX importer builds it from x * Sigmoid(x),
 * the form torch exports before opset 20: one pass over the map each way
 * instead of a sigmoid and a product.
 */
#include "nn/op.h"

#include "nn/vmath.h"

static inline float silu(float x) { return x * nn_sigmoidf(x); }

static inline __attribute__((always_inline)) float silu_grad(float x, float y)
{
    (void)y;
    const float s = nn_sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
}

#ifdef NN_HAVE_V16
/* The loops on 16 lanes (nn/vmath.h), the last partial vector masked: each value the
 * bits of silu and silu_grad above (the same operations, no contraction). */
static inline __m512 silu16(__m512 x)
{
    return _mm512_mul_ps(x, nn_sigmoidf16(x));
}

static inline __m512 silu_grad16(__m512 x)
{
    const __m512 s = nn_sigmoidf16(x), one = _mm512_set1_ps(1.0f);
    return _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(x, _mm512_sub_ps(one, s))));
}

static int silu_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const float *x = m->nodes[nd->in[0]].out;
    float *y = nd->out;
    const size_t count = (size_t)n * nn_node_size(nd);
    size_t k = 0;
    for (; k + 16 <= count; k += 16)
        _mm512_storeu_ps(y + k, silu16(_mm512_loadu_ps(x + k)));
    if (k < count) {
        const __mmask16 mk = (__mmask16)((1u << (count - k)) - 1);
        _mm512_mask_storeu_ps(y + k, mk, silu16(_mm512_maskz_loadu_ps(mk, x + k)));
    }
    return 0;
}

static int silu_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    if (!nn_wants_grad(src_id, o))
        return 0;
    const float *x = m->nodes[src_id].out, *dy = nd->grad;
    const size_t count = (size_t)n * nn_node_size(nd);
    int assign;
    float *dx = nn_grad_dst(m, src_id, &assign);
    for (size_t k = 0; k < count; k += 16) {
        const __mmask16 mk = count - k >= 16 ? (__mmask16)0xffff
                                             : (__mmask16)((1u << (count - k)) - 1);
        __m512 d = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, dy + k),
                                 silu_grad16(_mm512_maskz_loadu_ps(mk, x + k)));
        if (!assign)
            d = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, dx + k), d);
        _mm512_mask_storeu_ps(dx + k, mk, d);
    }
    return 0;
}
#else
NN_WIDE_VECTORS static int silu_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, silu); }

NN_WIDE_VECTORS static int silu_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, silu_grad);
}
#endif

static double silu_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return 4.0 * (double)nn_node_size(nd);
}

const nn_op_def_t nn_op_silu = {
    .name = "silu",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_ANY,
    .forward = silu_forward,
    .backward = silu_backward,
    .flops = silu_flops,
    .bwd_reads = NN_READS_INPUTS,
};
