/*
 * gemm.c - packed-operand SGEMM with a fused bias/ReLU epilogue (gemm.h).
 *
 * Owned by common/nn. Blocking (Goto/BLIS style): for each depth block of
 * NN_GEMM_KC of a block of NN_GEMM_NC columns, B's block is packed into
 * 32-column strips (contiguous, so one strip stays in L1 while the row panels
 * pass over it); for each block of NN_GEMM_MC rows of the packed A and each
 * strip, an 8 x 32 register tile accumulates its dot products in 16
 * AVX-512 registers (with AVX2's 16 registers, as blocks of 6 x 16, 6 x 16
 * and 2 x 32 over depth chunks of 64, or 4 x 16 at the edges). The tile is
 * loaded from C on every block but the first (or on the first too when
 * accumulating), and on the last block the bias and the ReLU are applied
 * before the store, so the output is written once.
 */
#include "nn/gemm.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* The kernel this CPU runs: 2 the AVX-512 tile, 1 the AVX2 + FMA tile, 0
 * none. Decided once; both tiles do each element's additions in the same
 * order with fused multiply-adds, so they give the same bits. */
static int gemm_isa(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    static int isa = -1;
    if (isa < 0)
        isa = __builtin_cpu_supports("avx512f")                                   ? 2
              : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1
                                                                                  : 0;
    return isa;
#else
    return 0;
#endif
}

int nn_gemm_available(void)
{
    return gemm_isa() > 0;
}

int nn_gemm_avx512(void)
{
    return gemm_isa() == 2;
}

size_t nn_gemm_bpack_floats(void)
{
    return (size_t)NN_GEMM_KC * NN_GEMM_NC;
}

size_t nn_gemm_packed_floats(int m, int k)
{
    return (size_t)((m + NN_GEMM_MR - 1) / NN_GEMM_MR) * NN_GEMM_MR * (size_t)k;
}

void nn_gemm_pack_a(int m, int k, const float *a, int lda, int trans, float *packed)
{
    for (int i0 = 0; i0 < m; i0 += NN_GEMM_MR) {
        float *panel = packed + (size_t)i0 * k;
        const int rows = m - i0 < NN_GEMM_MR ? m - i0 : NN_GEMM_MR;
        if (trans) {
            for (int p = 0; p < k; p++) {
                const float *src = a + (size_t)p * lda + i0;
                float *dst = panel + (size_t)p * NN_GEMM_MR;
                int r = 0;
                for (; r < rows; r++)
                    dst[r] = src[r];
                for (; r < NN_GEMM_MR; r++)
                    dst[r] = 0.0f;
            }
        } else if (rows == NN_GEMM_MR) {
            /* the rows read side by side, each k's NN_GEMM_MR floats written together */
            const float *src = a + (size_t)i0 * lda;
            for (int p = 0; p < k; p++)
                for (int r = 0; r < NN_GEMM_MR; r++)
                    panel[(size_t)p * NN_GEMM_MR + r] = src[(size_t)r * lda + p];
        } else {
            for (int r = 0; r < NN_GEMM_MR; r++) {
                const float *src = a + (size_t)(i0 + r) * lda;
                for (int p = 0; p < k; p++)
                    panel[(size_t)p * NN_GEMM_MR + r] = r < rows ? src[p] : 0.0f;
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)

#if NN_GEMM_MR == 8
#define GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#elif NN_GEMM_MR == 12
#define GEMM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#else
#error "NN_GEMM_MR must be 8 or 12"
#endif

/* C[0..mr) x [0..32) (masks m0, m1 select the valid columns of the two
 * vectors) = (load_c ? C : 0) + a[kc x 8] . b[kc x 32] (b packed: 32 floats
 * per k, zero past the valid columns), epilogue if bias/relu. c2 != 0: the
 * tile spans two segments of C; lanes selected by n0, n1 are at c2 + lane
 * (c2 an address: the second segment's first column minus the lane it is
 * in), those by m0, m1 at c + lane. two == 0: a tile of 16 columns (the
 * second vector neither computed nor stored), for a last strip of at most
 * 16 columns; each column's sum is the same sequence of FMAs either way,
 * so the bits are too. */
__attribute__((always_inline, target("avx512f"))) static inline void
gemm_tile_body(int kc, const float *a, size_t lda, const float *b, int ldb, float *c, intptr_t c2,
               int ldc, int mr, __mmask16 m0, __mmask16 m1, __mmask16 n0, __mmask16 n1,
               int load_c, const float *bias, int relu, const float *next_c, const int two)
{
    if (next_c) /* the C rows the next tile will read or write, fetched for writing (every
                 * line of each row's 32 or 16 columns) while this one computes */
        for (int i = 0; i < NN_GEMM_MR; i++) {
            const float *row = next_c + (size_t)i * ldc;
            _mm_prefetch((const char *)row, _MM_HINT_ET0);
            _mm_prefetch((const char *)(row + 15), _MM_HINT_ET0);
            if (two) {
                _mm_prefetch((const char *)(row + 16), _MM_HINT_ET0);
                _mm_prefetch((const char *)(row + 31), _MM_HINT_ET0);
            }
        }
#define GEMM_DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
    GEMM_ROWS(GEMM_DECL)
#undef GEMM_DECL
    if (load_c) {
#define GEMM_LOAD(i)                                                                              \
    if (i < mr) {                                                                                 \
        c##i##a = _mm512_maskz_loadu_ps(m0, c + (size_t)(i) * ldc);                               \
        if (two)                                                                                  \
            c##i##b = _mm512_maskz_loadu_ps(m1, c + (size_t)(i) * ldc + 16);                      \
        if (c2) {                                                                                 \
            const intptr_t r2 = c2 + (intptr_t)(i) * ldc * (intptr_t)sizeof(float);              \
            c##i##a = _mm512_mask_loadu_ps(c##i##a, n0, (const void *)r2);                        \
            if (two)                                                                              \
                c##i##b = _mm512_mask_loadu_ps(c##i##b, n1,                                       \
                                               (const void *)(r2 + 16 * (intptr_t)sizeof(float))); \
        }                                                                                         \
    }
        GEMM_ROWS(GEMM_LOAD)
#undef GEMM_LOAD
    }
    if (lda) { /* A read in place: row r of the tile at a + r * lda (rows past mr read row 0) */
#define GEMM_ROWPTR(i) const float *a##i = a + (size_t)(i < mr ? i : 0) * lda;
        GEMM_ROWS(GEMM_ROWPTR)
#undef GEMM_ROWPTR
        for (int p = 0; p < kc; p++) {
            const __m512 b0 = _mm512_loadu_ps(b);
            const __m512 b1 = two ? _mm512_loadu_ps(b + 16) : b0;
#define GEMM_FMA_ROW(i)                                                                           \
    {                                                                                             \
        const __m512 ai = _mm512_set1_ps(a##i[p]);                                                \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a);                                               \
        if (two)                                                                                  \
            c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b);                                           \
    }
            GEMM_ROWS(GEMM_FMA_ROW)
#undef GEMM_FMA_ROW
            b += ldb;
        }
    } else {
    for (int p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(b);
        const __m512 b1 = two ? _mm512_loadu_ps(b + 16) : b0;
#define GEMM_FMA(i)                                                                               \
    {                                                                                             \
        const __m512 ai = _mm512_set1_ps(a[i]);                                                   \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a);                                               \
        if (two)                                                                                  \
            c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b);                                           \
    }
        GEMM_ROWS(GEMM_FMA)
#undef GEMM_FMA
        a += NN_GEMM_MR;
        b += ldb;
    }
    }
    const __m512 zero = _mm512_setzero_ps();
#define GEMM_STORE(i)                                                                             \
    if (i < mr) {                                                                                 \
        if (bias) {                                                                               \
            const __m512 bi = _mm512_set1_ps(bias[i]);                                            \
            c##i##a = _mm512_add_ps(c##i##a, bi);                                                 \
            c##i##b = _mm512_add_ps(c##i##b, bi);                                                 \
        }                                                                                         \
        if (relu) {                                                                               \
            c##i##a = _mm512_max_ps(c##i##a, zero);                                               \
            c##i##b = _mm512_max_ps(c##i##b, zero);                                               \
        }                                                                                         \
        _mm512_mask_storeu_ps(c + (size_t)(i) * ldc, m0, c##i##a);                                \
        if (two)                                                                                  \
            _mm512_mask_storeu_ps(c + (size_t)(i) * ldc + 16, m1, c##i##b);                       \
        if (c2) {                                                                                 \
            const intptr_t r2 = c2 + (intptr_t)(i) * ldc * (intptr_t)sizeof(float);              \
            _mm512_mask_storeu_ps((void *)r2, n0, c##i##a);                                       \
            if (two)                                                                              \
                _mm512_mask_storeu_ps((void *)(r2 + 16 * (intptr_t)sizeof(float)), n1, c##i##b); \
        }                                                                                         \
    }
    GEMM_ROWS(GEMM_STORE)
#undef GEMM_STORE
}

__attribute__((target("avx512f"))) static void gemm_tile(int kc, const float *a, size_t lda,
                                                         const float *b, int ldb, float *c,
                                                         intptr_t c2, int ldc, int mr,
                                                         __mmask16 m0, __mmask16 m1,
                                                         __mmask16 n0, __mmask16 n1, int load_c,
                                                         const float *bias, int relu,
                                                         const float *next_c)
{
    gemm_tile_body(kc, a, lda, b, ldb, c, c2, ldc, mr, m0, m1, n0, n1, load_c, bias, relu,
                   next_c, 1);
}

__attribute__((target("avx512f"))) static void gemm_tile16(int kc, const float *a, size_t lda,
                                                           const float *b, int ldb, float *c,
                                                           intptr_t c2, int ldc, int mr,
                                                           __mmask16 m0, __mmask16 n0,
                                                           int load_c, const float *bias,
                                                           int relu, const float *next_c)
{
    gemm_tile_body(kc, a, lda, b, ldb, c, c2, ldc, mr, m0, 0, n0, 0, load_c, bias, relu, next_c,
                   0);
}

/* An AVX2 block for the tile's edges (fewer than 8 rows, 16 columns, or a
 * 12-row build): rows [r0, r0 + 4) x 16 columns of C (row stride ldc) =
 * (load_c ? C : 0) + a . b, then + bias[r], then max(., 0) when relu; a
 * packed (lda 0: NN_GEMM_MR floats per k, this block's rows from r0) or read
 * in place (row r0 + r at a + (r0 + r) * lda, rows at or past mr reading row
 * 0). Eight accumulators: the FMA latency of two pipes. Each element's sum is
 * the AVX-512 tile's sequence of fused multiply-adds, ascending k. */
__attribute__((always_inline, target("avx2,fma"))) static inline void
gemm_sub4x16(int kc, const float *a, size_t lda, int r0, int mr, const float *b, int ldb,
             float *c, int ldc, int load_c, const float *bias, int relu)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31;
    if (load_c) {
        c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
        c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
        c20 = _mm256_loadu_ps(c + 2 * (size_t)ldc), c21 = _mm256_loadu_ps(c + 2 * (size_t)ldc + 8);
        c30 = _mm256_loadu_ps(c + 3 * (size_t)ldc), c31 = _mm256_loadu_ps(c + 3 * (size_t)ldc + 8);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = _mm256_setzero_ps();
    }
#define GEMM_SUB_STEP(x0, x1, x2, x3)                                                             \
    {                                                                                             \
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);                              \
        __asm__("" : "+x"(b0), "+x"(b1)); /* kept in registers, not reloaded by each FMA */    \
        __m256 x = _mm256_broadcast_ss(x0);                                                       \
        c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);                     \
        x = _mm256_broadcast_ss(x1);                                                              \
        c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);                     \
        x = _mm256_broadcast_ss(x2);                                                              \
        c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);                     \
        x = _mm256_broadcast_ss(x3);                                                              \
        c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);                     \
        b += ldb;                                                                                 \
    }
    if (lda) {
        const float *a0 = a + (size_t)(r0 < mr ? r0 : 0) * lda;
        const float *a1 = a + (size_t)(r0 + 1 < mr ? r0 + 1 : 0) * lda;
        const float *a2 = a + (size_t)(r0 + 2 < mr ? r0 + 2 : 0) * lda;
        const float *a3 = a + (size_t)(r0 + 3 < mr ? r0 + 3 : 0) * lda;
        for (int p = 0; p < kc; p++)
            GEMM_SUB_STEP(a0 + p, a1 + p, a2 + p, a3 + p)
    } else {
        const float *ap = a + r0;
        for (int p = 0; p < kc; p++, ap += NN_GEMM_MR)
            GEMM_SUB_STEP(ap, ap + 1, ap + 2, ap + 3)
    }
#undef GEMM_SUB_STEP
    if (bias) {
        __m256 x = _mm256_set1_ps(bias[0]);
        c00 = _mm256_add_ps(c00, x), c01 = _mm256_add_ps(c01, x);
        x = _mm256_set1_ps(bias[1]);
        c10 = _mm256_add_ps(c10, x), c11 = _mm256_add_ps(c11, x);
        x = _mm256_set1_ps(bias[2]);
        c20 = _mm256_add_ps(c20, x), c21 = _mm256_add_ps(c21, x);
        x = _mm256_set1_ps(bias[3]);
        c30 = _mm256_add_ps(c30, x), c31 = _mm256_add_ps(c31, x);
    }
    if (relu) { /* max(v, 0): 0 for NaN and -0 as the AVX-512 tile's */
        const __m256 z = _mm256_setzero_ps();
        c00 = _mm256_max_ps(c00, z), c01 = _mm256_max_ps(c01, z);
        c10 = _mm256_max_ps(c10, z), c11 = _mm256_max_ps(c11, z);
        c20 = _mm256_max_ps(c20, z), c21 = _mm256_max_ps(c21, z);
        c30 = _mm256_max_ps(c30, z), c31 = _mm256_max_ps(c31, z);
    }
    _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
    _mm256_storeu_ps(c + ldc, c10), _mm256_storeu_ps(c + ldc + 8, c11);
    _mm256_storeu_ps(c + 2 * (size_t)ldc, c20), _mm256_storeu_ps(c + 2 * (size_t)ldc + 8, c21);
    _mm256_storeu_ps(c + 3 * (size_t)ldc, c30), _mm256_storeu_ps(c + 3 * (size_t)ldc + 8, c31);
}

/* Rows 0-5 x columns [0, 16) of the chunk (c, b at the block's first column;
 * A packed, 8 floats per k, or in place with all 8 rows present): twelve
 * accumulators. The same fused sequence per element as gemm_sub4x16. */
__attribute__((always_inline, target("avx2,fma"))) static inline void
gemm_sub6x16(int kc, const float *a, size_t lda, const float *b, int ldb, float *c, int ldc,
             int load_c, const float *bias, int relu)
{
    __m256 acc[6][2];
    for (int r = 0; r < 6; r++)
        for (int v = 0; v < 2; v++)
            acc[r][v] = load_c ? _mm256_loadu_ps(c + (size_t)r * ldc + 8 * v) : _mm256_setzero_ps();
    const size_t as = lda ? 1 : NN_GEMM_MR, ar = lda ? lda : 1;
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __asm__("" : "+x"(b0), "+x"(b1)); /* kept in registers */
        const float *ap = a + (size_t)p * as;
#pragma GCC unroll 6
        for (int r = 0; r < 6; r++) {
            const __m256 x = _mm256_broadcast_ss(ap + (size_t)r * ar);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
        b += ldb;
    }
    for (int r = 0; r < 6; r++)
        for (int v = 0; v < 2; v++) {
            __m256 y = acc[r][v];
            if (bias)
                y = _mm256_add_ps(y, _mm256_set1_ps(bias[r]));
            if (relu)
                y = _mm256_max_ps(y, _mm256_setzero_ps());
            _mm256_storeu_ps(c + (size_t)r * ldc + 8 * v, y);
        }
}

/* Rows 6-7 x columns [0, 32) of the chunk: eight accumulators, B's whole row. */
__attribute__((always_inline, target("avx2,fma"))) static inline void
gemm_sub2x32(int kc, const float *a, size_t lda, const float *b, int ldb, float *c, int ldc,
             int load_c, const float *bias, int relu)
{
    __m256 acc[2][4];
    for (int r = 0; r < 2; r++)
        for (int v = 0; v < 4; v++)
            acc[r][v] = load_c ? _mm256_loadu_ps(c + (size_t)r * ldc + 8 * v) : _mm256_setzero_ps();
    const size_t as = lda ? 1 : NN_GEMM_MR, ar = lda ? lda : 1;
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 b2 = _mm256_loadu_ps(b + 16), b3 = _mm256_loadu_ps(b + 24);
        __asm__("" : "+x"(b0), "+x"(b1), "+x"(b2), "+x"(b3));
        const float *ap = a + (size_t)p * as;
#pragma GCC unroll 2
        for (int r = 0; r < 2; r++) {
            const __m256 x = _mm256_broadcast_ss(ap + (size_t)r * ar);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(x, b2, acc[r][2]);
            acc[r][3] = _mm256_fmadd_ps(x, b3, acc[r][3]);
        }
        b += ldb;
    }
    for (int r = 0; r < 2; r++)
        for (int v = 0; v < 4; v++) {
            __m256 y = acc[r][v];
            if (bias)
                y = _mm256_add_ps(y, _mm256_set1_ps(bias[r]));
            if (relu)
                y = _mm256_max_ps(y, _mm256_setzero_ps());
            _mm256_storeu_ps(c + (size_t)r * ldc + 8 * v, y);
        }
}

/* Depth chunks of the AVX2 tile: its four blocks each read a chunk of B and A
 * (8 KB and 2 KB) while it is in L1, C's tile (1 KB) carried between chunks
 * in memory (a float stored and loaded back is the same float: the same
 * bits). A whole depth block of 256 per block would read the 32 KB strip
 * four times, half of each line at a time, from L2. */
#ifndef GEMM_AVX2_KCHUNK
#define GEMM_AVX2_KCHUNK 64
#endif

/* The tile's blocks (rows [0, mr) in blocks of 4; 16 or 32 columns) over
 * depth chunks; c at row stride ldc, bias/relu on the last chunk. */
__attribute__((target("avx2,fma"))) static void gemm_tile_avx2_run(int kc, const float *a,
                                                                   size_t lda, const float *b,
                                                                   int ldb, float *c, int ldc,
                                                                   int mr, int load_c,
                                                                   const float *bias, int relu,
                                                                   int cols)
{
    for (int k0 = 0; k0 < kc; k0 += GEMM_AVX2_KCHUNK) {
        const int kn = kc - k0 < GEMM_AVX2_KCHUNK ? kc - k0 : GEMM_AVX2_KCHUNK;
        const int last = k0 + kn >= kc;
        const float *ak = lda ? a + k0 : a + (size_t)k0 * NN_GEMM_MR;
        const float *bk = b + (size_t)k0 * ldb;
        const int lc = load_c || k0 > 0, rl = last && relu;
        if (NN_GEMM_MR == 8 && mr == 8 && cols == 32) { /* 6 x 16 twice, then 2 x 32 */
            gemm_sub6x16(kn, ak, lda, bk, ldb, c, ldc, lc, last ? bias : NULL, rl);
            gemm_sub6x16(kn, ak, lda, bk + 16, ldb, c + 16, ldc, lc, last ? bias : NULL, rl);
            gemm_sub2x32(kn, lda ? ak + 6 * lda : ak + 6, lda, bk, ldb, c + 6 * (size_t)ldc, ldc,
                         lc, last && bias ? bias + 6 : NULL, rl);
            continue;
        }
        for (int h = 0; h < cols; h += 16)
            for (int r0 = 0; r0 < mr; r0 += 4)
                gemm_sub4x16(kn, ak, lda, r0, mr, bk + h, ldb, c + (size_t)r0 * ldc + h, ldc,
                             load_c || k0 > 0, last && bias ? bias + r0 : NULL, last && relu);
    }
}

/* gemm_tile_body's contract on AVX2: the 8 x 32 (cols 32) or 8 x 16 (cols
 * 16) tile, `first` selecting the columns at c + lane and `second` those at
 * c2 + lane (bit l: lane l). A whole tile of 8 rows in one segment is
 * computed in place; any other goes through a local tile, its valid
 * columns gathered before and scattered after (the same arithmetic). */
__attribute__((target("avx2,fma"))) static void gemm_tile_avx2(int kc, const float *a, size_t lda,
                                                               const float *b, int ldb, float *c,
                                                               intptr_t c2, int ldc, int mr,
                                                               uint32_t first, uint32_t second,
                                                               int load_c, const float *bias,
                                                               int relu, int cols)
{
    const uint32_t all = cols == 32 ? 0xFFFFFFFFu : 0xFFFFu;
    if (mr == NN_GEMM_MR && first == all && !c2) {
        gemm_tile_avx2_run(kc, a, lda, b, ldb, c, ldc, mr, load_c, bias, relu, cols);
        return;
    }
    /* the valid columns: lanes [0, n1) at c (first), [n1, n1 + n2) at c2 (second) */
    const int n1 = __builtin_popcount(first), n2 = __builtin_popcount(second);
    float tile[NN_GEMM_MR * NN_GEMM_NR] __attribute__((aligned(32)));
    float bl[NN_GEMM_MR] = {0};
    if (load_c)
        memset(tile, 0, sizeof tile);
    for (int i = 0; i < mr; i++) {
        const float *row2 = (const float *)(c2 + (intptr_t)i * ldc * (intptr_t)sizeof(float));
        if (load_c) {
            memcpy(tile + i * NN_GEMM_NR, c + (size_t)i * ldc, sizeof(float) * (size_t)n1);
            if (n2)
                memcpy(tile + i * NN_GEMM_NR + n1, row2 + n1, sizeof(float) * (size_t)n2);
        }
        if (bias)
            bl[i] = bias[i];
    }
    gemm_tile_avx2_run(kc, a, lda, b, ldb, tile, NN_GEMM_NR, mr, load_c, bias ? bl : NULL, relu,
                       cols);
    for (int i = 0; i < mr; i++) {
        float *row2 = (float *)(c2 + (intptr_t)i * ldc * (intptr_t)sizeof(float));
        memcpy(c + (size_t)i * ldc, tile + i * NN_GEMM_NR, sizeof(float) * (size_t)n1);
        if (n2)
            memcpy(row2 + n1, tile + i * NN_GEMM_NR + n1, sizeof(float) * (size_t)n2);
    }
}

/* Global column j of the segmented operand (gemm.h): segment j / seg, column
 * j % seg of it. */
static size_t gemm_seg_offset(const nn_gemm_seg_t *g, int j, int b_side)
{
    const int s = j / g->seg, col = j - s * g->seg;
    return (b_side ? (size_t)s * g->b_seg : (size_t)s * g->c_seg) + (size_t)col;
}

/* B[k0 .. k0+kc) x global columns [j0 .. j0+nc) into strips of NN_GEMM_NR
 * columns, k-major within a strip, zero past the last column; the strips of
 * kstride rows, these kc rows from row r0 of each on. A strip may span
 * segments: it is gathered piece by piece. Built twice, its whole rows
 * copied in 16- or 8-lane vectors. */
#define GEMM_PACK_B_ROWS(NAME, ATTR, COPY32)                                                      \
    ATTR static void NAME(int kc, int kstride, int r0, int j0, int nc, const float *b, int ldb,    \
                          const nn_gemm_seg_t *g, float *bpack)                                    \
    {                                                                                             \
    for (int j = 0; j < nc; j += NN_GEMM_NR) {                                                    \
        const int nr = nc - j < NN_GEMM_NR ? nc - j : NN_GEMM_NR;                                 \
        float *strip = bpack + (size_t)j * kstride + (size_t)r0 * NN_GEMM_NR;                     \
        int done = 0;                                                                             \
        while (done < nr) {                                                                       \
            const int col = j0 + j + done, in_seg = g->seg - col % g->seg;                        \
            const int len = nr - done < in_seg ? nr - done : in_seg;                              \
            const float *src = b + gemm_seg_offset(g, col, 1);                                    \
            float *dst = strip + done;                                                            \
            if (len == NN_GEMM_NR) { /* a whole strip row: vectors, no call */                    \
                for (int p = 0; p < kc; p++)                                                      \
                    COPY32(dst + (size_t)p * NN_GEMM_NR, src + (size_t)p * ldb);                  \
            } else {                                                                              \
                for (int p = 0; p < kc; p++)                                                      \
                    memcpy(dst + (size_t)p * NN_GEMM_NR, src + (size_t)p * ldb,                   \
                           sizeof(float) * (size_t)len);                                          \
            }                                                                                     \
            done += len;                                                                          \
        }                                                                                         \
        if (nr < NN_GEMM_NR)                                                                      \
            for (int p = 0; p < kc; p++)                                                          \
                memset(strip + (size_t)p * NN_GEMM_NR + nr, 0,                                    \
                       sizeof(float) * (size_t)(NN_GEMM_NR - nr));                                \
    }                                                                                             \
    }
#define GEMM_COPY32_512(d, s)                                                                     \
    (_mm512_storeu_ps((d), _mm512_loadu_ps(s)),                                                   \
     _mm512_storeu_ps((d) + 16, _mm512_loadu_ps((s) + 16)))
#define GEMM_COPY32_256(d, s)                                                                     \
    (_mm256_storeu_ps((d), _mm256_loadu_ps(s)),                                                   \
     _mm256_storeu_ps((d) + 8, _mm256_loadu_ps((s) + 8)),                                         \
     _mm256_storeu_ps((d) + 16, _mm256_loadu_ps((s) + 16)),                                       \
     _mm256_storeu_ps((d) + 24, _mm256_loadu_ps((s) + 24)))
GEMM_PACK_B_ROWS(gemm_pack_b_rows512, __attribute__((target("avx512f"))), GEMM_COPY32_512)
GEMM_PACK_B_ROWS(gemm_pack_b_rows256, __attribute__((target("avx2"))), GEMM_COPY32_256)

static void gemm_pack_b_rows(int kc, int kstride, int r0, int j0, int nc, const float *b, int ldb,
                             const nn_gemm_seg_t *g, float *bpack)
{
    if (gemm_isa() == 2)
        gemm_pack_b_rows512(kc, kstride, r0, j0, nc, b, ldb, g, bpack);
    else
        gemm_pack_b_rows256(kc, kstride, r0, j0, nc, b, ldb, g, bpack);
}

/* Rows [0, kc) of B into a block of kc rows (gemm_pack_b_rows: rows
 * [r0, r0 + kc) of strips of kstride rows). */
static void gemm_pack_b(int kc, int j0, int nc, const float *b, int ldb, const nn_gemm_seg_t *g,
                        float *bpack)
{
    gemm_pack_b_rows(kc, kc, 0, j0, nc, b, ldb, g, bpack);
}

/* A tile whose columns span segments: run in a local 8 x 32 tile, gathering
 * C into it first when loading, then scatter the valid columns back. The
 * arithmetic is the same as the direct tile's, so the bits are too. */
static void gemm_tile_split(int kc, const float *a, size_t lda, const float *strip, float *c, int ldc,
                            const nn_gemm_seg_t *g, int col0, int nr, int mr, int load_c,
                            const float *bias, int relu)
{
    float tile[NN_GEMM_MR * NN_GEMM_NR];
    int done = 0;
    if (load_c)
        while (done < nr) {
            const int col = col0 + done, in_seg = g->seg - col % g->seg;
            const int len = nr - done < in_seg ? nr - done : in_seg;
            const float *src = c + gemm_seg_offset(g, col, 0);
            for (int i = 0; i < mr; i++)
                memcpy(tile + i * NN_GEMM_NR + done, src + (size_t)i * ldc, sizeof(float) * (size_t)len);
            done += len;
        }
    if (gemm_isa() == 1)
        gemm_tile_avx2(kc, a, lda, strip, NN_GEMM_NR, tile, 0, NN_GEMM_NR, mr, 0xFFFFFFFFu, 0,
                       load_c, bias, relu, 32);
    else
        gemm_tile(kc, a, lda, strip, NN_GEMM_NR, tile, 0, NN_GEMM_NR, mr, 0xFFFF, 0xFFFF, 0, 0,
                  load_c, bias, relu, NULL);
    for (done = 0; done < nr;) {
        const int col = col0 + done, in_seg = g->seg - col % g->seg;
        const int len = nr - done < in_seg ? nr - done : in_seg;
        float *dst = c + gemm_seg_offset(g, col, 0);
        for (int i = 0; i < mr; i++)
            memcpy(dst + (size_t)i * ldc, tile + i * NN_GEMM_NR + done, sizeof(float) * (size_t)len);
        done += len;
    }
}

/* One member of a product over shared columns of B: rows [0, m) of A (lda =
 * 0: packed by nn_gemm_pack_a, else row-major with row stride lda), its own
 * C (row stride ldc, segment stride c_seg: the columns as g's segments), its
 * bias and ReLU. */
typedef struct {
    int m;
    const float *a;
    size_t lda;
    float *c;
    int ldc;
    size_t c_seg;
    const float *bias;
    int relu;
} gemm_rows_t;

/* The tiles of one member over one packed block of B (depth [k0, k0 + kc),
 * global columns [col0 + j0, col0 + j0 + nc)). */
static void gemm_block_rows(const gemm_rows_t *r, int k, int k0, int kc, const nn_gemm_seg_t *gs,
                            int col0, int j0, int nc, int accumulate, const float *bpack)
{
    const int m = r->m, ldc = r->ldc, relu = r->relu;
    const size_t lda = r->lda;
    const float *a = r->a, *bias = r->bias;
    float *c = r->c;
    const nn_gemm_seg_t gc = {.seg = gs->seg, .n_seg = gs->n_seg, .b_seg = gs->b_seg,
                              .c_seg = r->c_seg};
    const nn_gemm_seg_t *g = &gc;
    const int first_blk = k0 == 0, last = k0 + kc >= k;
    for (int i0 = 0; i0 < m; i0 += NN_GEMM_MC) {
        const int i1 = m - i0 < NN_GEMM_MC ? m : i0 + NN_GEMM_MC;
        for (int j = 0; j < nc; j += NN_GEMM_NR) {
            const int nr = nc - j < NN_GEMM_NR ? nc - j : NN_GEMM_NR;
            const int col = col0 + j0 + j; /* C's global column */
            /* columns in C's first segment: all (whole), else the tile spans two
             * segments (two masked parts) or more (gemm_tile_split) */
            const int in_first = g->seg - col % g->seg;
            const int whole = in_first >= nr;
            const int two_segs = !whole && nr - in_first <= g->seg;
            const uint32_t valid = nr >= 32 ? 0xFFFFFFFFu : (1u << nr) - 1;
            const uint32_t first = whole ? valid : valid & ((1u << in_first) - 1);
            const uint32_t second = valid & ~first;
            const __mmask16 m0 = (__mmask16)first, m1 = (__mmask16)(first >> 16);
            const __mmask16 n0 = (__mmask16)second, n1 = (__mmask16)(second >> 16);
            const int narrow = nr <= 16;
            const float *strip = bpack + (size_t)j * kc;
            float *cj = c + gemm_seg_offset(g, col, 0);
            /* the second segment's column 0 sits in lane in_first: its row 0 as an
             * address, less in_first columns */
            const intptr_t c2 = two_segs ? (intptr_t)(c + gemm_seg_offset(g, col + in_first, 0)) -
                                               (intptr_t)in_first * (intptr_t)sizeof(float)
                                         : 0;
            for (int i = i0; i < i1; i += NN_GEMM_MR) {
                const int mr = m - i < NN_GEMM_MR ? m - i : NN_GEMM_MR;
                const float *ai = lda ? a + (size_t)i * lda + k0
                                      : a + (size_t)i * k + (size_t)k0 * NN_GEMM_MR;
                const float *bi = last && bias ? bias + i : NULL;
                const int load = !first_blk || accumulate;
                /* the next tile's C rows, also when it only stores them (a first
                 * depth block): their lines come in before its stores need them */
                const float *next = whole && i + NN_GEMM_MR < i1 ? cj + (size_t)(i + NN_GEMM_MR) * ldc : NULL;
                const intptr_t c2i = c2 ? c2 + (intptr_t)i * ldc * (intptr_t)sizeof(float) : 0;
                if (gemm_isa() == 1 && (whole || two_segs)) {
                    gemm_tile_avx2(kc, ai, lda, strip, NN_GEMM_NR, cj + (size_t)i * ldc, c2i,
                                   ldc, mr, first, second, load, bi, last && relu,
                                   narrow ? 16 : 32);
                } else if (whole || two_segs) {
                    if (narrow)
                        gemm_tile16(kc, ai, lda, strip, NN_GEMM_NR, cj + (size_t)i * ldc, c2i,
                                    ldc, mr, m0, n0, load, bi, last && relu, next);
                    else
                        gemm_tile(kc, ai, lda, strip, NN_GEMM_NR, cj + (size_t)i * ldc, c2i,
                                  ldc, mr, m0, m1, n0, n1, load, bi, last && relu, next);
                } else {
                    gemm_tile_split(kc, ai, lda, strip, c + (size_t)i * ldc, ldc, g, col, nr,
                                    mr, load, bi, last && relu);
                }
            }
        }
    }
}

/* The blocked product of n_mem members sharing B (each block of B packed
 * once for all of them; gemm_rows_t): for each block of columns and depth,
 * every member's tiles in turn. Each element gets the same additions in the
 * same order as in a product of its member alone. B packed by pack (ctx) when
 * given, else from b; b == NULL: bpack holds B already packed, every depth
 * block of it (nn_gemm_bpacked_offset; one block of columns). */
static void gemm_blocked_multi(int n_mem, const gemm_rows_t *mem, int k, const float *b,
                               int ldb, nn_gemm_bpack_fn pack, const void *ctx,
                               const nn_gemm_seg_t *g, int col0, int n, int b_flat,
                               int accumulate, nn_gemm_map_fn map, float *bpack)
{
    float *const bpack0 = bpack;
    /* B's own column layout: g's segments, or one flat segment of n columns */
    const nn_gemm_seg_t flat = {.seg = n, .n_seg = 1, .b_seg = 0, .c_seg = 0};
    const nn_gemm_seg_t *gb = b_flat ? &flat : g;
    for (int j0 = 0; j0 < n; j0 += NN_GEMM_NC) {
        const int nc = n - j0 < NN_GEMM_NC ? n - j0 : NN_GEMM_NC;
        for (int k0 = 0; k0 < k; k0 += NN_GEMM_KC) {
            const int kc = k - k0 < NN_GEMM_KC ? k - k0 : NN_GEMM_KC;
            if (pack)
                pack(ctx, k0, kc, col0 + j0, nc, bpack);
            else if (b)
                gemm_pack_b(kc, j0, nc, b + (size_t)k0 * ldb, ldb, gb, bpack);
            else
                bpack = bpack0 + nn_gemm_bpacked_offset(nc, k, k0, 0);
            if (map) /* the whole packed block, its zero padding too (map(0) finite) */
                map(bpack, (size_t)(nc + NN_GEMM_NR - 1) / NN_GEMM_NR * NN_GEMM_NR * kc);
            for (int q = 0; q < n_mem; q++)
                gemm_block_rows(&mem[q], k, k0, kc, g, col0, j0, nc, accumulate, bpack);
        }
    }
}

/* The blocked product of one member (gemm_blocked_multi). */
static void gemm_blocked(int m, int k, const float *a, size_t lda, const float *b, int ldb,
                         nn_gemm_bpack_fn pack, const void *ctx, float *c, int ldc,
                         const nn_gemm_seg_t *g, int col0, int n, int b_flat, int accumulate,
                         const float *bias, int relu, float *bpack)
{
    const gemm_rows_t r = {m, a, lda, c, ldc, g->c_seg, bias, relu};
    gemm_blocked_multi(1, &r, k, b, ldb, pack, ctx, g, col0, n, b_flat, accumulate, NULL, bpack);
}

void nn_gemm_packed_seg(int m, int k, const float *packed, const float *b, int ldb, float *c,
                        int ldc, const nn_gemm_seg_t *g, int accumulate, const float *bias,
                        int relu, float *bpack)
{
    gemm_blocked(m, k, packed, 0, b, ldb, NULL, NULL, c, ldc, g, 0, g->seg * g->n_seg, 0,
                 accumulate, bias, relu, bpack);
}

void nn_gemm_rows_seg(int m, int k, const float *a, int lda, const float *b, int ldb, float *c,
                      int ldc, const nn_gemm_seg_t *g, int accumulate, const float *bias,
                      int relu, float *bpack)
{
    gemm_blocked(m, k, a, (size_t)lda, b, ldb, NULL, NULL, c, ldc, g, 0, g->seg * g->n_seg, 0,
                 accumulate, bias, relu, bpack);
}

void nn_gemm_rows_src(int m, int k, const float *a, int lda, nn_gemm_bpack_fn pack,
                      const void *ctx, float *c, int ldc, const nn_gemm_seg_t *g,
                      int accumulate, const float *bias, int relu, float *bpack)
{
    gemm_blocked(m, k, a, (size_t)lda, NULL, 0, pack, ctx, c, ldc, g, 0, g->seg * g->n_seg, 0,
                 accumulate, bias, relu, bpack);
}

void nn_gemm_packed_src(int m, int k, const float *packed, nn_gemm_bpack_fn pack,
                        const void *ctx, float *c, int ldc, const nn_gemm_seg_t *g,
                        int accumulate, const float *bias, int relu, float *bpack)
{
    gemm_blocked(m, k, packed, 0, NULL, 0, pack, ctx, c, ldc, g, 0, g->seg * g->n_seg, 0,
                 accumulate, bias, relu, bpack);
}

void nn_gemm_rows_cols(int m, int k, const float *a, int lda, const float *b, int ldb, float *c,
                       int ldc, const nn_gemm_seg_t *g, int col0, int n, int accumulate,
                       const float *bias, int relu, float *bpack)
{
    if (n > 0)
        gemm_blocked(m, k, a, (size_t)lda, b, ldb, NULL, NULL, c, ldc, g, col0, n, 1, accumulate,
                     bias, relu, bpack);
}

void nn_gemm_rows_multi(int n_mem, const nn_gemm_member_t *mem, int k, const float *b, int ldb,
                        int ldc, const nn_gemm_seg_t *g, float *bpack)
{
    gemm_rows_t r[NN_GEMM_MEMBERS];
    for (int q = 0; q < n_mem; q++)
        r[q] = (gemm_rows_t){mem[q].m, mem[q].a, (size_t)mem[q].lda, mem[q].c, ldc,
                             mem[q].c_seg, mem[q].bias, mem[q].relu};
    gemm_blocked_multi(n_mem, r, k, b, ldb, NULL, NULL, g, 0, g->seg * g->n_seg, 0, 0, NULL, bpack);
}

void nn_gemm_rows_seg_map(int m, int k, const float *a, int lda, const float *b, int ldb,
                          float *c, int ldc, const nn_gemm_seg_t *g, const float *bias, int relu,
                          nn_gemm_map_fn map, float *bpack)
{
    const gemm_rows_t r = {m, a, (size_t)lda, c, ldc, g->c_seg, bias, relu};
    gemm_blocked_multi(1, &r, k, b, ldb, NULL, NULL, g, 0, g->seg * g->n_seg, 0, 0, map, bpack);
}

/* What the packer of nn_gemm_packed_ksrc reads. */
typedef struct {
    int n_src;
    const nn_gemm_ksrc_t *src;
    int ldb;
    const nn_gemm_seg_t *g;
} gemm_ksrc_ctx_t;

/* Rows [k0, k0 + kc) of the sources' rows one after the other, each part
 * from its own operand. */
static void gemm_pack_ksrc(const void *ctx, int k0, int kc, int j0, int nc, float *bpack)
{
    const gemm_ksrc_ctx_t *x = ctx;
    int base = 0; /* the first row of source q */
    for (int q = 0; q < x->n_src && base < k0 + kc; base += x->src[q++].k) {
        const int lo = k0 > base ? k0 : base;
        const int hi = k0 + kc < base + x->src[q].k ? k0 + kc : base + x->src[q].k;
        if (lo >= hi)
            continue;
        const nn_gemm_seg_t gq = {.seg = x->g->seg, .n_seg = x->g->n_seg,
                                  .b_seg = x->src[q].b_seg};
        gemm_pack_b_rows(hi - lo, kc, lo - k0, j0, nc,
                         x->src[q].b + (size_t)(lo - base) * x->ldb, x->ldb, &gq, bpack);
    }
}

void nn_gemm_packed_ksrc(int m, const float *packed, int n_src, const nn_gemm_ksrc_t *src,
                         int ldb, float *c, int ldc, const nn_gemm_seg_t *g, int accumulate,
                         float *bpack)
{
    int k = 0;
    for (int q = 0; q < n_src; q++)
        k += src[q].k;
    const gemm_ksrc_ctx_t ctx = {n_src, src, ldb, g};
    gemm_blocked(m, k, packed, 0, NULL, 0, gemm_pack_ksrc, &ctx, c, ldc, g, 0, g->seg * g->n_seg,
                 0, accumulate, NULL, 0, bpack);
}

void nn_gemm_packed(int m, int n, int k, const float *packed, const float *b, int ldb, float *c,
                    int ldc, int accumulate, const float *bias, int relu, float *bpack)
{
    const nn_gemm_seg_t g = {.seg = n, .n_seg = 1, .b_seg = 0, .c_seg = 0};
    if (n > 0)
        nn_gemm_packed_seg(m, k, packed, b, ldb, c, ldc, &g, accumulate, bias, relu, bpack);
}

void nn_gemm_packed_bp(int m, int n, int k, const float *packed, const float *bpacked, float *c,
                       int ldc)
{
    const nn_gemm_seg_t g = {.seg = n, .n_seg = 1, .b_seg = 0, .c_seg = 0};
    if (n > 0)
        gemm_blocked(m, k, packed, 0, NULL, 0, NULL, NULL, c, ldc, &g, 0, n, 0, 0, NULL, 0,
                     (float *)bpacked);
}

#else

void nn_gemm_rows_seg(int m, int k, const float *a, int lda, const float *b, int ldb, float *c,
                      int ldc, const nn_gemm_seg_t *g, int accumulate, const float *bias,
                      int relu, float *bpack)
{
    (void)m, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc, (void)g;
    (void)accumulate, (void)bias, (void)relu, (void)bpack; /* never called: nn_gemm_available() is 0 */
}

void nn_gemm_rows_cols(int m, int k, const float *a, int lda, const float *b, int ldb, float *c,
                       int ldc, const nn_gemm_seg_t *g, int col0, int n, int accumulate,
                       const float *bias, int relu, float *bpack)
{
    (void)m, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc, (void)g;
    (void)col0, (void)n, (void)accumulate, (void)bias, (void)relu, (void)bpack; /* never called */
}

void nn_gemm_rows_src(int m, int k, const float *a, int lda, nn_gemm_bpack_fn pack,
                      const void *ctx, float *c, int ldc, const nn_gemm_seg_t *g,
                      int accumulate, const float *bias, int relu, float *bpack)
{
    (void)m, (void)k, (void)a, (void)lda, (void)pack, (void)ctx, (void)c, (void)ldc, (void)g;
    (void)accumulate, (void)bias, (void)relu, (void)bpack; /* never called */
}

void nn_gemm_packed_src(int m, int k, const float *packed, nn_gemm_bpack_fn pack,
                        const void *ctx, float *c, int ldc, const nn_gemm_seg_t *g,
                        int accumulate, const float *bias, int relu, float *bpack)
{
    (void)m, (void)k, (void)packed, (void)pack, (void)ctx, (void)c, (void)ldc, (void)g;
    (void)accumulate, (void)bias, (void)relu, (void)bpack; /* never called */
}

void nn_gemm_packed_seg(int m, int k, const float *packed, const float *b, int ldb, float *c,
                        int ldc, const nn_gemm_seg_t *g, int accumulate, const float *bias,
                        int relu, float *bpack)
{
    (void)m, (void)k, (void)packed, (void)b, (void)ldb, (void)c, (void)ldc, (void)g;
    (void)accumulate, (void)bias, (void)relu, (void)bpack; /* never called: nn_gemm_available() is 0 */
}

void nn_gemm_packed(int m, int n, int k, const float *packed, const float *b, int ldb, float *c,
                    int ldc, int accumulate, const float *bias, int relu, float *bpack)
{
    (void)m, (void)n, (void)k, (void)packed, (void)b, (void)ldb, (void)c, (void)ldc;
    (void)accumulate, (void)bias, (void)relu, (void)bpack; /* never called: nn_gemm_available() is 0 */
}

void nn_gemm_rows_multi(int n_mem, const nn_gemm_member_t *mem, int k, const float *b, int ldb,
                        int ldc, const nn_gemm_seg_t *g, float *bpack)
{
    (void)n_mem, (void)mem, (void)k, (void)b, (void)ldb, (void)ldc, (void)g, (void)bpack; /* never called */
}

void nn_gemm_rows_seg_map(int m, int k, const float *a, int lda, const float *b, int ldb,
                          float *c, int ldc, const nn_gemm_seg_t *g, const float *bias, int relu,
                          nn_gemm_map_fn map, float *bpack)
{
    (void)m, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc, (void)g;
    (void)bias, (void)relu, (void)map, (void)bpack; /* never called */
}

void nn_gemm_packed_ksrc(int m, const float *packed, int n_src, const nn_gemm_ksrc_t *src,
                         int ldb, float *c, int ldc, const nn_gemm_seg_t *g, int accumulate,
                         float *bpack)
{
    (void)m, (void)packed, (void)n_src, (void)src, (void)ldb, (void)c, (void)ldc, (void)g;
    (void)accumulate, (void)bpack; /* never called */
}

void nn_gemm_packed_bp(int m, int n, int k, const float *packed, const float *bpacked, float *c,
                       int ldc)
{
    (void)m, (void)n, (void)k, (void)packed, (void)bpacked, (void)c, (void)ldc; /* never called */
}

#endif
