/*
 * ops/matmul.c - batched product of two activations (attention: scores
 * Q K^T and the weighted values A V): A [..., M, K] x B [..., K, N] =
 * Y [..., M, N], the leading axes equal in both.
 *
 * Owned by common/nn. One cblas_sgemm per matrix; backward dA += dY B^T,
 * dB += A^T dY.
 */
#include "nn/op.h"

#include <cblas.h>
#include <stdio.h>

#include "sc.h"

static int matmul_infer(const nn_model_t *m, nn_node_t *nd)
{
    int a[NN_MAX_RANK] = {0}, b[NN_MAX_RANK] = {0};
    if (nd->n_in != 2)
        return SC_ERR_SHAPE;
    int ra = nn_node_shape(&m->nodes[nd->in[0]], a), rb = nn_node_shape(&m->nodes[nd->in[1]], b);
    int ok = ra == rb && ra >= 2 && a[ra - 1] == b[rb - 2];
    for (int d = 0; ok && d < ra - 2; d++)
        ok = a[d] == b[d];
    if (!ok) {
        SC_ERROR("matmul '%s': shapes do not multiply (equal leading axes, [M,K] x [K,N])",
                 nd->name);
        return SC_ERR_SHAPE;
    }
    a[ra - 1] = b[rb - 1];
    nn_set_dims(nd, ra, a);
    return 0;
}

static void matmul_dims(const nn_model_t *m, const nn_node_t *nd, int *M, int *K, int *N,
                        size_t *count)
{
    int a[NN_MAX_RANK] = {0};
    int ra = nn_node_shape(&m->nodes[nd->in[0]], a);
    *M = a[ra - 2];
    *K = a[ra - 1];
    int y[NN_MAX_RANK] = {0};
    *N = y[nn_node_shape(nd, y) - 1];
    *count = nn_dims_count(ra - 2, a);
}

static int matmul_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    int M, K, N;
    size_t count;
    matmul_dims(m, nd, &M, &K, &N, &count);
    const float *A = m->nodes[nd->in[0]].out, *B = m->nodes[nd->in[1]].out;
    for (size_t q = 0; q < (size_t)n * count; q++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f,
                    A + q * M * K, K, B + q * K * N, N, 0.0f, nd->out + q * M * N, N);
    return 0;
}

static int matmul_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    int M, K, N;
    size_t count;
    matmul_dims(m, nd, &M, &K, &N, &count);
    const int ia = nd->in[0], ib = nd->in[1];
    const float *A = m->nodes[ia].out, *B = m->nodes[ib].out;
    float *dA = nn_wants_grad(ia, o) ? nn_grad_acc(m, ia) : NULL;
    float *dB = nn_wants_grad(ib, o) ? nn_grad_acc(m, ib) : NULL;
    for (size_t q = 0; q < (size_t)n * count; q++) {
        const float *dY = nd->grad + q * M * N;
        if (dA)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1.0f, dY, N,
                        B + q * K * N, N, 1.0f, dA + q * M * K, K);
        if (dB)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, M, 1.0f, A + q * M * K,
                        K, dY, N, 1.0f, dB + q * K * N, N);
    }
    return 0;
}

static double matmul_flops(const nn_model_t *m, const nn_node_t *nd)
{
    int M, K, N;
    size_t count;
    matmul_dims(m, nd, &M, &K, &N, &count);
    return 2.0 * count * M * K * N;
}

const nn_op_def_t nn_op_matmul = {
    .name = "matmul",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_ANY,
    .infer = matmul_infer,
    .forward = matmul_forward,
    .backward = matmul_backward,
    .flops = matmul_flops,
    .bwd_reads = NN_READS_INPUTS,
};
