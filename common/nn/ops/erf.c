/*
 * ops/erf.c - the error function, elementwise (ONNX Erf outside the GELU
 * chain the importer fuses): y = erf(x), dy/dx = 2/sqrt(pi) exp(-x^2).
 *
 * Owned by common/nn. Computed in double and rounded once.
 */
#include "nn/op.h"

#include <math.h>

static float erf_f(float x) { return (float)erf((double)x); }

static float erf_grad(float x, float y)
{
    (void)y;
    return (float)(M_2_SQRTPI * exp(-(double)x * x));
}

static int erf_forward(nn_model_t *m, int id, int n) { return nn_unary_forward(m, id, n, erf_f); }

static int erf_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return nn_unary_backward(m, id, n, o, erf_grad);
}

const nn_op_def_t nn_op_erf = {
    .name = "erf",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_ANY,
    .forward = erf_forward,
    .backward = erf_backward,
    .bwd_reads = NN_READS_INPUTS,
};
