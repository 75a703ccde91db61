/*
 * ops/relu6.c - ReLU6: y = min(max(x, 0), 6), elementwise (MobileNetV2; ONNX
 * Clip with min 0, max 6).
 *
 * Owned by common/nn. Derivative as PyTorch's hardtanh_backward (ReLU6 is
 * hardtanh(0, 6)): 1 on the open interval (0, 6), 0 elsewhere, so the
 * gradient at exactly 0 is 0 as for ReLU.
 */
#include "nn/op.h"

static float relu6(float x) { return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x); }

static float relu6_grad(float x, float y)
{
    (void)y;
    return x > 0.0f && x < 6.0f ? 1.0f : 0.0f;
}

static int relu6_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, relu6); }

static int relu6_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, relu6_grad);
}

const nn_op_def_t nn_op_relu6 = {
    .name = "relu6",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_NONNEG,
    .forward = relu6_forward,
    .backward = relu6_backward,
    .bwd_reads = NN_READS_INPUTS,
};
