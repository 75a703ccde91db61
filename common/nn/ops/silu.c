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

static float silu(float x) { return x * nn_sigmoidf(x); }

static inline __attribute__((always_inline)) float silu_grad(float x, float y)
{
    (void)y;
    const float s = nn_sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
}

NN_WIDE_VECTORS static int silu_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, silu); }

NN_WIDE_VECTORS static int silu_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, silu_grad);
}

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
