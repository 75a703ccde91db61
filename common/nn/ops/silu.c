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

static int silu_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, silu); }

/* dx (+)= dy silu'(x); the first contribution overwrites, so dx needs no zeroing pass. */
static int silu_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src = nd->in[0];
    if (!nn_wants_grad(src, o))
        return 0;
    const float *x = m->nodes[src].out, *dy = nd->grad;
    const size_t count = (size_t)n * nn_node_size(nd);
    int assign;
    float *dx = nn_grad_dst(m, src, &assign);
    if (assign)
        for (size_t k = 0; k < count; k++)
            dx[k] = dy[k] * silu_grad(x[k], 0.0f);
    else
        for (size_t k = 0; k < count; k++)
            dx[k] += dy[k] * silu_grad(x[k], 0.0f);
    return 0;
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
