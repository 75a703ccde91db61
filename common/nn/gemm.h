/*
 * gemm.h - the single-precision GEMM of the convolutions: a packed left
 * operand (the weights) times a row-major right operand, with the bias and
 * ReLU epilogue applied while each output tile is still in registers.
 *
 * Owned by common/nn. On a CPU with AVX-512 it runs its own 8 x 32
 * register-tile kernel; with AVX2 and FMA the same tile in blocks of 12 or
 * 8 accumulators (the same fused multiply-adds per element in the same
 * order, so the same bits); elsewhere nn_gemm_available() is 0. The right operand
 * and the output may be split into segments of equal width at their own
 * addresses (nn_gemm_seg_t): the images of a batch then form one wide
 * product, N = images x pixels, which is how nn/conv_packed.c runs the
 * convolutions (bench/README.md). The
 * order of the additions of one output
 * element depends only on K (blocks of NN_GEMM_KC, ascending k), never on the
 * position of the element, the batch or the thread: results are the same for
 * an image whichever batch it runs in.
 */
#ifndef NN_GEMM_H
#define NN_GEMM_H

#include <stddef.h>

#ifndef NN_GEMM_MR
#define NN_GEMM_MR 8    /* rows of the register tile (packed panel height): 8 or 12 */
#endif
#define NN_GEMM_NR 32   /* columns of the register tile (2 AVX-512 vectors) */
#ifndef NN_GEMM_KC
#define NN_GEMM_KC 256  /* depth of one pass over the register tile */
#endif
#ifndef NN_GEMM_MC
/* Rows of A over which one strip of B is reused before the next strip: four
 * register tiles (32 rows).
 * Each row of C that a pass stores lies in its own 4 KB page when the rows
 * are far apart (12.5 KB for a 56 x 56 map); at 128 rows ResNet-50,
 * DenseNet-121 and ConvNeXt-Tiny gradients ran 3-4 % slower, and 2 MB pages
 * recovered the same (bench/README.md): the pages of one pass, not the
 * arithmetic. Any value gives the same bits. */
#define NN_GEMM_MC (NN_GEMM_MR * 4)
#endif
#ifndef NN_GEMM_NC
#define NN_GEMM_NC 512  /* columns of B packed at a time (NN_GEMM_KC x NN_GEMM_NC floats) */
#endif

/* The columns of B and C as n_seg segments of seg columns each: global
 * column j is column j % seg of segment j / seg, which starts at
 * b + (j / seg) * b_seg in B and at c + (j / seg) * c_seg in C (the row
 * strides ldb, ldc apply inside a segment). */
typedef struct {
    int seg, n_seg;
    size_t b_seg, c_seg;
} nn_gemm_seg_t;

/* Does this CPU run the packed kernel (AVX-512F, or AVX2 with FMA)? */
int nn_gemm_available(void);
/* Does it run the AVX-512 one? The code beside the GEMM written for 16-lane
 * vectors (Winograd's transforms, the stride-2 copies, the packers' masked
 * loads) asks this; where it is 0 the same values come from plain loops. */
int nn_gemm_avx512(void);
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
/* Where element (row p, column j) of a k x n right operand lies in its
 * packed form (n <= NN_GEMM_NC: one block of columns): depth blocks of
 * NN_GEMM_KC rows one after the other, each in strips of NN_GEMM_NR
 * columns, row-major within a strip, the strips padded to NN_GEMM_NR
 * columns (the padding must hold zeros or finite values; its products are
 * never stored). nn_gemm_bpacked_floats gives the size. */
static inline size_t nn_gemm_bpacked_offset(int n, int k, int p, int j)
{
    const int k0 = p / NN_GEMM_KC * NN_GEMM_KC, kc = k - k0 < NN_GEMM_KC ? k - k0 : NN_GEMM_KC;
    const size_t npad = (size_t)(n + NN_GEMM_NR - 1) / NN_GEMM_NR * NN_GEMM_NR;
    return (size_t)k0 * npad + (size_t)(j / NN_GEMM_NR) * NN_GEMM_NR * kc +
           (size_t)(p - k0) * NN_GEMM_NR + (size_t)(j % NN_GEMM_NR);
}
static inline size_t nn_gemm_bpacked_floats(int n, int k)
{
    return (size_t)k * ((size_t)(n + NN_GEMM_NR - 1) / NN_GEMM_NR * NN_GEMM_NR);
}
/* nn_gemm_packed (no accumulation, bias or ReLU) with B given packed as
 * nn_gemm_bpacked_offset lays it out; n <= NN_GEMM_NC. */
void nn_gemm_packed_bp(int m, int n, int k, const float *packed, const float *bpacked, float *c,
                       int ldc);
/* nn_gemm_packed over the segmented columns of g (n = g->seg * g->n_seg):
 * every element gets the same additions in the same order as in a product of
 * its segment alone. */
void nn_gemm_packed_seg(int m, int k, const float *packed, const float *b, int ldb, float *c,
                        int ldc, const nn_gemm_seg_t *g, int accumulate, const float *bias,
                        int relu, float *bpack);
/* nn_gemm_packed_seg with A read in place: row-major m x k, row stride lda
 * (no packing; the same additions in the same order, so the same bits). */
void nn_gemm_rows_seg(int m, int k, const float *a, int lda, const float *b, int ldb, float *c,
                      int ldc, const nn_gemm_seg_t *g, int accumulate, const float *bias,
                      int relu, float *bpack);
/* nn_gemm_rows_seg for the global columns [col0, col0 + n) of g's segmented
 * C only, with B flat: its column j (row stride ldb) is global column
 * col0 + j. A product computed a slice of columns at a time (nn/conv_packed.c
 * builds the patch matrix of one slice while the last is still in cache);
 * every element gets the same additions in the same order as in the whole. */
void nn_gemm_rows_cols(int m, int k, const float *a, int lda, const float *b, int ldb, float *c,
                       int ldc, const nn_gemm_seg_t *g, int col0, int n, int accumulate,
                       const float *bias, int relu, float *bpack);

/* Products that share B (convolutions reading the same input: nn/fuse.h's
 * sibling groups): member q computes rows [0, m) of its own A (row-major,
 * row stride lda) times B into its own C, with its own bias and ReLU; C's
 * columns are g's segments with the member's segment stride c_seg (g's
 * c_seg unused). At most NN_GEMM_MEMBERS members. */
#define NN_GEMM_MEMBERS 8
typedef struct {
    int m;
    const float *a;
    int lda;
    float *c;
    size_t c_seg;
    const float *bias;
    int relu;
} nn_gemm_member_t;
/* nn_gemm_rows_seg for every member (no accumulation; C's row stride ldc),
 * each block of B packed once for all of them: every element gets the same
 * additions in the same order as in its member's product alone. */
void nn_gemm_rows_multi(int n_mem, const nn_gemm_member_t *mem, int k, const float *b, int ldb,
                        int ldc, const nn_gemm_seg_t *g, float *bpack);
/* A right operand of rows from several operands: k rows of b, its columns g's
 * segments at segment stride b_seg (g's b_seg unused). */
typedef struct {
    int k;
    const float *b;
    size_t b_seg;
} nn_gemm_ksrc_t;
/* nn_gemm_packed_seg with B the rows of src[0], then src[1], ... (row stride
 * ldb in each; K the sum of their k), so that sum_q A_q B_q is one product:
 * its additions are those of the products of the sources one after the other,
 * each accumulating onto the last, in that order, hence the same bits. */
void nn_gemm_packed_ksrc(int m, const float *packed, int n_src, const nn_gemm_ksrc_t *src,
                         int ldb, float *c, int ldc, const nn_gemm_seg_t *g, int accumulate,
                         float *bpack);

/* An elementwise map applied in place to n packed floats of B. */
typedef void (*nn_gemm_map_fn)(float *v, size_t n);
/* v[i] = v[i] * f'(u[i]) for n floats: an elementwise backward applied in
 * place to a gradient v against the values u (nn/conv_packed.h's MLP pair). */
typedef void (*nn_gemm_dmap_fn)(float *v, const float *u, size_t n);
/* nn_gemm_rows_seg (no accumulation) of map(B): each block of B mapped once
 * packed, while it is in cache (its zero padding too, so map(0) must be
 * finite); the bits of the product of B mapped beforehand by the same map. */
void nn_gemm_rows_seg_map(int m, int k, const float *a, int lda, const float *b, int ldb,
                          float *c, int ldc, const nn_gemm_seg_t *g, const float *bias, int relu,
                          nn_gemm_map_fn map, float *bpack);

/* A right operand that the caller packs: pack(ctx, k0, kc, j0, nc, bpack)
 * writes rows [k0, k0 + kc) of global columns [j0, j0 + nc) (nc <=
 * NN_GEMM_NC) into bpack as nn_gemm_bpacked_offset lays out one depth block
 * of nc columns: strips of NN_GEMM_NR columns, row-major within a strip,
 * the strips padded with zeros (nn/conv_packed.c packs the patch matrix of a
 * convolution straight from the images this way, with no im2col). */
typedef void (*nn_gemm_bpack_fn)(const void *ctx, int k0, int kc, int j0, int nc, float *bpack);
/* nn_gemm_rows_seg with B packed by pack (over g's n_seg * seg global
 * columns; g's b_seg unused): the same additions in the same order as with
 * B given, so the same bits when pack writes what gemm would have packed. */
void nn_gemm_rows_src(int m, int k, const float *a, int lda, nn_gemm_bpack_fn pack,
                      const void *ctx, float *c, int ldc, const nn_gemm_seg_t *g,
                      int accumulate, const float *bias, int relu, float *bpack);
/* nn_gemm_rows_src with A packed (nn_gemm_pack_a's layout). */
void nn_gemm_packed_src(int m, int k, const float *packed, nn_gemm_bpack_fn pack,
                        const void *ctx, float *c, int ldc, const nn_gemm_seg_t *g,
                        int accumulate, const float *bias, int relu, float *bpack);
#endif
