/*
 * ops/linear.c - a weight matrix applied to the last axis of a general tensor:
 * y[..., M] = x[..., K] W[M, K]^T + b (ONNX MatMul with a weight, or Gemm, on
 * token tensors [1, L, K]: every token is a row).
 *
 * Owned by common/nn. One cblas_sgemm over all rows of the batch (the rows
 * of a sample are contiguous and samples follow each other), added onto the
 * bias copied into the output. The weight is stored [out, in] as dense's.
 */
#include "nn/op.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "sc.h"

static int linear_in(const nn_model_t *m, const nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    return dims[rank - 1];
}

static int linear_infer(const nn_model_t *m, nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    if (nd->out_c < 1) {
        SC_ERROR("linear '%s': needs a positive output size", nd->name);
        return SC_ERR_SHAPE;
    }
    dims[rank - 1] = nd->out_c;
    nn_set_dims(nd, rank, dims);
    return 0;
}

static int linear_param_shape(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k,
                              size_t dims[4])
{
    if (k == NN_P_WEIGHT) {
        dims[0] = (size_t)nd->out_c;
        dims[1] = (size_t)linear_in(m, nd);
        return 2;
    }
    if (k == NN_P_BIAS && nd->has_bias) {
        dims[0] = (size_t)nd->out_c;
        return 1;
    }
    return 0;
}

static void linear_init(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats)
{
    (void)keep_bn_stats;
    const nn_node_t *nd = &m->nodes[id];
    size_t count;
    float *W = nn_param(m, id, NN_P_WEIGHT, &count);
    nn_init_weights(W, count, nd->init, linear_in(m, nd), nd->out_c, rs);
    float *b = nn_param(m, id, NN_P_BIAS, &count);
    if (b)
        memset(b, 0, sizeof(float) * count);
}

static int linear_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const int K = linear_in(m, nd), M = nd->out_c;
    const int rows = (int)((size_t)n * nn_node_size(nd) / (size_t)M);
    const float *W = nn_param(m, id, NN_P_WEIGHT, NULL), *bias = nn_param(m, id, NN_P_BIAS, NULL);
    /* With a bias the output starts as the bias and the GEMM adds to it (beta = 1), so
     * OpenBLAS neither zeroes it first nor is there a pass adding the bias afterwards. */
    if (bias)
        for (int r = 0; r < rows; r++)
            memcpy(nd->out + (size_t)r * M, bias, sizeof(float) * (size_t)M);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, M, K, 1.0f,
                m->nodes[nd->in[0]].out, K, W, K, bias ? 1.0f : 0.0f, nd->out, M);
    return 0;
}

static int linear_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src = nd->in[0], K = linear_in(m, nd), M = nd->out_c;
    const int rows = (int)((size_t)n * nn_node_size(nd) / (size_t)M);
    const float *W = nn_param(m, id, NN_P_WEIGHT, NULL), *x = m->nodes[src].out;
    if (nn_wants_grad(src, o)) {
        int assign;
        float *dx = nn_grad_dst(m, src, &assign);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, K, M, 1.0f, nd->grad, M, W,
                    K, assign ? 0.0f : 1.0f, dx, K);
    }
    float *dW = o->param_grads ? nn_param_grad(m, id, NN_P_WEIGHT) : NULL;
    float *db = o->param_grads ? nn_param_grad(m, id, NN_P_BIAS) : NULL;
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, K, rows, 1.0f, nd->grad, M, x,
                    K, 1.0f, dW, K);
    if (db)
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < M; j++)
                db[j] += nd->grad[(size_t)r * M + j];
    return 0;
}

static double linear_flops(const nn_model_t *m, const nn_node_t *nd)
{
    return 2.0 * (double)nn_node_size(nd) * linear_in(m, nd);
}

static void linear_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " out_c=%d bias=%d init=%d", nd->out_c, nd->has_bias, (int)nd->init);
}

const nn_op_def_t nn_op_linear = {
    .name = "linear",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_ANY,
    .infer = linear_infer,
    .param_shape = linear_param_shape,
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
    .flops = linear_flops,
    .bwd_reads = NN_READS_NOTHING | NN_READS_INPUTS_PARAM,
    .write_attrs = linear_write_attrs,
};
