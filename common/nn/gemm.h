/*
 * gemm.h - the single-precision GEMM of the convolutions: a packed left
 * operand (the weights) times a row-major right operand, with the bias and
 * ReLU epilogue applied while each output tile is still in registers.
 *
 * Owned by common/nn. On a CPU with AVX-512 it runs its own 8 x 32
 * register-tile kernel; elsewhere nn_gemm_available() is 0. Not yet on the
 * convolutions' path: measured against OpenBLAS on the zoo's shapes it is
 * level overall (faster on small M and 8 x 8 images, slower on mid-size
 * shapes; bench/README.md), so nn/conv.c calls cblas_sgemm. The order of the additions of one output
 * element depends only on K (blocks of NN_GEMM_KC, ascending k), never on the
 * position of the element, the batch or the thread: results are the same for
 * an image whichever batch it runs in.
 */
#ifndef NN_GEMM_H
#define NN_GEMM_H

#include <stddef.h>

#define NN_GEMM_MR 8    /* rows of the register tile (packed panel height) */
#define NN_GEMM_NR 32   /* columns of the register tile (2 AVX-512 vectors) */
#define NN_GEMM_KC 256  /* depth of one pass over the register tile */
#define NN_GEMM_MC 128  /* rows of A kept in L2 while B's columns stream by */
#define NN_GEMM_NC 512  /* columns of B packed at a time (NN_GEMM_KC x NN_GEMM_NC floats) */

/* Does this CPU run the packed kernel (AVX-512F)? */
int nn_gemm_available(void);
/* Floats of the scratch buffer nn_gemm_packed packs B into. */
size_t nn_gemm_bpack_floats(void);
/* Floats of the packed form of an m x k left operand: m rounded up to NN_GEMM_MR, times k. */
size_t nn_gemm_packed_floats(int m, int k);
/* Pack op(A) (m x k) into panels of NN_GEMM_MR rows, k-major within a panel,
 * rows past m zero. trans = 0: op(A)[i][p] = a[i * lda + p]; trans = 1:
 * op(A)[i][p] = a[p * lda + i]. packed: nn_gemm_packed_floats(m, k) floats. */
void nn_gemm_pack_a(int m, int k, const float *a, int lda, int trans, float *packed);
/* C[m x n] (row stride ldc) = (accumulate ? C : 0) + packed(A) B[k x n] (row
 * stride ldb), then + bias[i] per row when bias is given, then max(., 0) when
 * relu. bpack: nn_gemm_bpack_floats() floats of scratch. Only on a CPU where
 * nn_gemm_available(). */
void nn_gemm_packed(int m, int n, int k, const float *packed, const float *b, int ldb, float *c,
                    int ldc, int accumulate, const float *bias, int relu, float *bpack);

#endif
