/*
 * ops/transpose.c - permutation of the axes of a general tensor (ONNX
 * Transpose): out dims[d] = in dims[perm[d]].
 *
 * Owned by common/nn. The input's shape is its general shape (nn_node_shape:
 * [1, c, h, w] for a c x h x w map). Backward scatters the gradient back
 * through the same index map. A permutation that swaps two runs of axes
 * (NCHW <-> NHWC: [c, h w] <-> [h w, c]) is a matrix transpose per leading
 * index and runs in cache-sized tiles; any other walks the index map.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int transpose_infer(const nn_model_t *m, nn_node_t *nd)
{
    int in_dims[NN_MAX_RANK], out[NN_MAX_RANK], seen[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], in_dims);
    for (int d = 0; d < rank; d++) {
        if (nd->perm[d] < 0 || nd->perm[d] >= rank || seen[nd->perm[d]]++) {
            SC_ERROR("transpose '%s': perm is not a permutation of %d axes", nd->name, rank);
            return SC_ERR_SHAPE;
        }
        out[d] = in_dims[nd->perm[d]];
    }
    nn_set_dims(nd, rank, out);
    return 0;
}

/* Input offset stride of each output axis. */
static int transpose_strides(const nn_model_t *m, const nn_node_t *nd, size_t stride[NN_MAX_RANK])
{
    int in_dims[NN_MAX_RANK] = {0};
    size_t in_stride[NN_MAX_RANK];
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], in_dims);
    size_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        in_stride[d] = s;
        s *= (size_t)in_dims[d];
    }
    for (int d = 0; d < rank; d++)
        stride[d] = in_stride[nd->perm[d]];
    return rank;
}

/* When perm keeps axes [0, a) and moves the run [b, rank) before the run [a, b), sets
 * *outer, *rows, *cols to the products of the three runs' sizes and returns 1; else 0. */
static int transpose_as_matrix(const nn_model_t *m, const nn_node_t *nd, size_t *outer,
                               size_t *rows, size_t *cols)
{
    int dims[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    int a = 0;
    while (a < rank && nd->perm[a] == a)
        a++;
    if (a == rank)
        return 0;
    const int b = nd->perm[a];
    for (int d = a; d < rank; d++) {
        const int want = d - a < rank - b ? b + (d - a) : a + (d - a) - (rank - b);
        if (nd->perm[d] != want)
            return 0;
    }
    *outer = *rows = *cols = 1;
    for (int d = 0; d < rank; d++)
        *(d < a ? outer : d < b ? rows : cols) *= (size_t)dims[d];
    return 1;
}

#define TRANSPOSE_TILE 16

/* Floats that move together: the product of the trailing axes the permutation keeps in
 * place (attention's [L, H, d] -> [H, L, d] moves rows of d), and the rank of the axes
 * before them. */
static size_t transpose_run(const nn_node_t *nd, int rank, const int *out_dims, int *lead)
{
    size_t inner = 1;
    int d = rank - 1;
    for (; d > 0 && nd->perm[d] == d; d--)
        inner *= (size_t)out_dims[d];
    *lead = d + 1;
    return inner;
}

/* y[j, i] (= or +=) x[i, j] for the rows x cols matrix x, in TRANSPOSE_TILE square tiles. */
static void transpose_matrix(const float *x, float *y, size_t rows, size_t cols, int acc)
{
    for (size_t i0 = 0; i0 < rows; i0 += TRANSPOSE_TILE) {
        const size_t i1 = i0 + TRANSPOSE_TILE < rows ? i0 + TRANSPOSE_TILE : rows;
        for (size_t j0 = 0; j0 < cols; j0 += TRANSPOSE_TILE) {
            const size_t j1 = j0 + TRANSPOSE_TILE < cols ? j0 + TRANSPOSE_TILE : cols;
            for (size_t j = j0; j < j1; j++) {
                float *dst = y + j * rows;
                if (acc)
                    for (size_t i = i0; i < i1; i++)
                        dst[i] += x[i * cols + j];
                else
                    for (size_t i = i0; i < i1; i++)
                        dst[i] = x[i * cols + j];
            }
        }
    }
}

static void transpose_add(float *restrict dst, const float *restrict src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] += src[i];
}

static int transpose_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    size_t stride[NN_MAX_RANK];
    const int rank = transpose_strides(m, nd, stride);
    const size_t size = nn_node_size(nd);
    size_t outer, rows, cols;
    if (transpose_as_matrix(m, nd, &outer, &rows, &cols)) {
        for (size_t k = 0; k < (size_t)n * outer; k++)
            transpose_matrix(m->nodes[nd->in[0]].out + k * rows * cols,
                             nd->out + k * rows * cols, rows, cols, 0);
        return 0;
    }
    int out_dims[NN_MAX_RANK] = {0}, lead;
    nn_node_shape(nd, out_dims);
    const size_t inner = transpose_run(nd, rank, out_dims, &lead);
    for (int b = 0; b < n; b++) {
        const float *x = m->nodes[nd->in[0]].out + (size_t)b * size;
        float *y = nd->out + (size_t)b * size;
        if (inner > 1) /* runs of inner floats; at: the input offset of run k */
            NN_STRIDED_WALK(size / inner, lead, out_dims, stride,
                            memcpy(y + k * inner, x + at, sizeof(float) * inner));
        else
            NN_STRIDED_WALK(size, rank, out_dims, stride, y[k] = x[at]);
    }
    return 0;
}

static int transpose_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nn_wants_grad(nd->in[0], o))
        return 0;
    size_t stride[NN_MAX_RANK];
    const int rank = transpose_strides(m, nd, stride);
    const size_t size = nn_node_size(nd);
    size_t outer, rows, cols;
    if (transpose_as_matrix(m, nd, &outer, &rows, &cols)) {
        int assign;
        float *dx = nn_grad_dst(m, nd->in[0], &assign);
        for (size_t k = 0; k < (size_t)n * outer; k++) /* dy is the cols x rows matrix */
            transpose_matrix(nd->grad + k * rows * cols, dx + k * rows * cols, cols, rows,
                             !assign);
        return 0;
    }
    int out_dims[NN_MAX_RANK] = {0}, lead;
    nn_node_shape(nd, out_dims);
    const size_t inner = transpose_run(nd, rank, out_dims, &lead);
    if (inner > 1) {
        int assign;
        float *dx_all = nn_grad_dst(m, nd->in[0], &assign);
        for (int b = 0; b < n; b++) {
            float *dx = dx_all + (size_t)b * size;
            const float *dy = nd->grad + (size_t)b * size;
            if (assign) /* every run of dx is written once: no zeroing pass */
                NN_STRIDED_WALK(size / inner, lead, out_dims, stride,
                                memcpy(dx + at, dy + k * inner, sizeof(float) * inner));
            else
                NN_STRIDED_WALK(size / inner, lead, out_dims, stride,
                                transpose_add(dx + at, dy + k * inner, inner));
        }
        return 0;
    }
    float *dx_all = nn_grad_acc(m, nd->in[0]);
    for (int b = 0; b < n; b++) {
        float *dx = dx_all + (size_t)b * size;
        const float *dy = nd->grad + (size_t)b * size;
        NN_STRIDED_WALK(size, rank, out_dims, stride, dx[at] += dy[k]);
    }
    return 0;
}

static void transpose_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    int dims[NN_MAX_RANK] = {0};
    nn_write_dims("perm", nn_node_shape(nd, dims), nd->perm, buf, len);
}

const nn_op_def_t nn_op_transpose = {
    .name = "transpose",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_INPUTS,
    .infer = transpose_infer,
    .forward = transpose_forward,
    .backward = transpose_backward,
    .bwd_reads = NN_READS_NOTHING,
    .write_attrs = transpose_write_attrs,
};
