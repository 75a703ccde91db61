/*
 * bench_tile.c - where the GEMM's rate goes between the register tile and a
 * whole product, on this core, as fractions of its FP32 peak.
 *
 *   bench_tile [rounds]      (OPENBLAS_NUM_THREADS=1, pinned to one core)
 *
 * Part 1, the register tile alone in L1: the A panel, the B strip and the C
 * tile of one depth block (256) used over and over, for the engine's tile
 * (8 rows x 32 columns, 16 accumulators, nn/gemm.c) and for the other shapes
 * AVX-512's 32 registers allow: 12 x 32 and 14 x 32 (24 and 28 accumulators),
 * 6 x 64 (four B vectors per row) and 16 x 24 (A along the vector, its even
 * and odd rows duplicated against broadcast pairs of B, OpenBLAS's layout).
 * Part 2, whole products of the zoo's shapes through the engine's GEMM
 * (nn/gemm.h, weights packed once as the engine does) and through OpenBLAS's
 * sgemm (one call per image). Each rate is the best of `rounds` runs; the peak
 * is bench_util.h's loop of independent FMAs, measured between the parts.
 * The results and what they mean: bench/README.md.
 */
#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/gemm.h"
#include "bench_util.h"

#define TILE_KC 256

#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define ROWS8(X) ROWS6(X) X(6) X(7)
#define ROWS12(X) ROWS8(X) X(8) X(9) X(10) X(11)
#define ROWS14(X) ROWS12(X) X(12) X(13)

/* C (mr x 32, row stride ldc) += A (kc x mr, packed) . B (kc x 32, packed) */
#define TILE_32(NAME, ROWS, MR)                                                                   \
    __attribute__((noinline, target("avx512f"))) static void NAME(const float *a,              \
                                                                   const float *b, float *c,    \
                                                                   int ldc)                     \
    {                                                                                             \
        ROWS(T32_LOAD)                                                                            \
        for (int p = 0; p < TILE_KC; p++) {                                                       \
            const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);                    \
            ROWS(T32_FMA)                                                                         \
            a += MR;                                                                              \
            b += 32;                                                                              \
        }                                                                                         \
        ROWS(T32_STORE)                                                                           \
    }
#define T32_LOAD(i)                                                                               \
    __m512 c##i##a = _mm512_load_ps(c + (i) * ldc), c##i##b = _mm512_load_ps(c + (i) * ldc + 16);
#define T32_FMA(i)                                                                                \
    {                                                                                             \
        const __m512 ai = _mm512_set1_ps(a[i]);                                                   \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a);                                               \
        c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b);                                               \
    }
#define T32_STORE(i)                                                                              \
    _mm512_store_ps(c + (i) * ldc, c##i##a);                                                      \
    _mm512_store_ps(c + (i) * ldc + 16, c##i##b);
TILE_32(tile_8x32, ROWS8, 8)
TILE_32(tile_12x32, ROWS12, 12)
TILE_32(tile_14x32, ROWS14, 14)

/* C (6 x 64) += A (kc x 6) . B (kc x 64) */
__attribute__((noinline, target("avx512f"))) static void tile_6x64(const float *a, const float *b,
                                                                   float *c, int ldc)
{
#define T64_LOAD(i)                                                                               \
    __m512 c##i##a = _mm512_load_ps(c + (i) * ldc), c##i##b = _mm512_load_ps(c + (i) * ldc + 16), \
           c##i##c = _mm512_load_ps(c + (i) * ldc + 32),                                          \
           c##i##d = _mm512_load_ps(c + (i) * ldc + 48);
#define T64_FMA(i)                                                                                \
    {                                                                                             \
        const __m512 ai = _mm512_set1_ps(a[i]);                                                   \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a);                                               \
        c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b);                                               \
        c##i##c = _mm512_fmadd_ps(ai, b2, c##i##c);                                               \
        c##i##d = _mm512_fmadd_ps(ai, b3, c##i##d);                                               \
    }
#define T64_STORE(i)                                                                              \
    _mm512_store_ps(c + (i) * ldc, c##i##a);                                                      \
    _mm512_store_ps(c + (i) * ldc + 16, c##i##b);                                                 \
    _mm512_store_ps(c + (i) * ldc + 32, c##i##c);                                                 \
    _mm512_store_ps(c + (i) * ldc + 48, c##i##d);
    ROWS6(T64_LOAD)
    for (int p = 0; p < TILE_KC; p++) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        const __m512 b2 = _mm512_load_ps(b + 32), b3 = _mm512_load_ps(b + 48);
        ROWS6(T64_FMA)
        a += 6;
        b += 64;
    }
    ROWS6(T64_STORE)
}

/* 16 rows of A along the vector x 24 columns: per k, A's even rows and odd
 * rows each duplicated into pairs of lanes (vmovsldup, vmovshdup) against a
 * broadcast pair of B's columns (vbroadcastsd); accumulators e_j, o_j hold
 * column pair j, interleaved. */
__attribute__((noinline, target("avx512f"))) static void tile_16x24(const float *a, const float *b,
                                                                    float *c, int ldc)
{
    (void)ldc;
#define PAIRS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define T16_LOAD(j) __m512 e##j = _mm512_load_ps(c + 32 * (j)), o##j = _mm512_load_ps(c + 32 * (j) + 16);
#define T16_FMA(j)                                                                                \
    {                                                                                             \
        double pair;                                                                              \
        __builtin_memcpy(&pair, b + 2 * (j), sizeof pair);                                        \
        const __m512 bj = _mm512_castpd_ps(_mm512_set1_pd(pair));                                \
        e##j = _mm512_fmadd_ps(lo, bj, e##j);                                                     \
        o##j = _mm512_fmadd_ps(hi, bj, o##j);                                                     \
    }
#define T16_STORE(j)                                                                              \
    _mm512_store_ps(c + 32 * (j), e##j);                                                          \
    _mm512_store_ps(c + 32 * (j) + 16, o##j);
    PAIRS(T16_LOAD)
    for (int p = 0; p < TILE_KC; p++) {
        const __m512 av = _mm512_load_ps(a);
        const __m512 lo = _mm512_moveldup_ps(av), hi = _mm512_movehdup_ps(av);
        PAIRS(T16_FMA)
        a += 16;
        b += 24;
    }
    PAIRS(T16_STORE)
}

typedef void (*tile_fn)(const float *a, const float *b, float *c, int ldc);

static double tile_rate(tile_fn f, int mr, int nr, const float *a, const float *b, float *c,
                        int rounds)
{
    const int reps = 20000;
    double best = 0.0;
    for (int r = 0; r < rounds; r++) {
        const double t0 = bench_cpu_now();
        for (int i = 0; i < reps; i++)
            f(a, b, c, 64);
        const double g = 2.0 * mr * nr * TILE_KC * reps / (bench_cpu_now() - t0) * 1e-9;
        best = g > best ? g : best;
    }
    return best;
}

/* One product shape: M x K weights times K x (images x pixels). */
typedef struct {
    const char *what;
    int m, k, pixels, images;
} prod_shape_t;

static const prod_shape_t prods[] = {
    {"ConvNeXt-T 14x14 pwconv1 (6 images)", 1536, 384, 196, 6},
    {"ConvNeXt-T 14x14 pwconv2 (6 images)", 384, 1536, 196, 6},
    {"ConvNeXt-T 28x28 pwconv1 (2 images)", 768, 192, 784, 2},
    {"InceptionV3 35x35 1x1 siblings", 176, 288, 1225, 2},
    {"InceptionV3 35x35 1x1, 64 rows", 64, 288, 1225, 2},
    {"InceptionV3 17x17 1x1 (7 images)", 192, 768, 289, 7},
    {"ResNet-50 14x14 conv3 (6 images)", 1024, 256, 196, 6},
    {"1536 x 1536 x 1176 (one image)", 1536, 1536, 1176, 1},
};

/* n floats on a cache line's boundary */
static float *aligned_floats(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench_tile: out of memory\n");
        exit(1);
    }
    return p;
}

static float *filled(size_t n, int mod)
{
    float *p = aligned_floats(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(i % (size_t)mod) / (float)mod - 0.5f;
    return p;
}

int main(int argc, char **argv)
{
    if (!nn_gemm_available()) {
        fprintf(stderr, "%s: this CPU has neither AVX-512 nor AVX2 with FMA\n", argv[0]);
        return 2;
    }
    const int rounds = argc > 1 ? atoi(argv[1]) : 7;
    double peak;
    if (!nn_gemm_avx512()) { /* part 1's tiles are AVX-512 code: part 2 alone */
        peak = bench_peak_gflops(bench_measure_ghz());
        printf("FP32 peak of this core: %.1f GFLOPS (clock x 2 pipes x 8 lanes x 2); no AVX-512: "
               "the engine's AVX2 tile (6 x 16, 6 x 16, 2 x 32), whole products only\n\n", peak);
        goto products;
    }
    float *a = filled(16 * TILE_KC, 101), *b = filled(64 * TILE_KC, 77), *c = filled(16 * 64, 13);
    const struct {
        const char *name;
        tile_fn f;
        int mr, nr;
    } tiles[] = {
        {"8 x 32 (the engine's)", tile_8x32, 8, 32}, {"12 x 32", tile_12x32, 12, 32},
        {"14 x 32", tile_14x32, 14, 32},             {"6 x 64", tile_6x64, 6, 64},
        {"16 x 24 (A along the vector)", tile_16x24, 16, 24},
    };
    const int n_tiles = (int)(sizeof tiles / sizeof tiles[0]);
    peak = bench_fma_peak_avx512();
    printf("FP32 peak of this core: %.1f GFLOPS (independent FMAs)\n\n", peak);
    printf("| register tile, in L1 (depth %d) | accumulators | GFLOPS | of peak |\n|---|---|---|---|\n",
           TILE_KC);
    for (int t = 0; t < n_tiles; t++) {
        const double g = tile_rate(tiles[t].f, tiles[t].mr, tiles[t].nr, a, b, c, rounds);
        printf("| %s | %d | %.1f | %.0f %% |\n", tiles[t].name, tiles[t].mr * tiles[t].nr / 16, g,
               100.0 * g / peak);
    }
    const double peak2 = bench_fma_peak_avx512();
    printf("\npeak again: %.1f GFLOPS\n\n", peak2);
    peak = peak2 > peak ? peak2 : peak;
    free(a), free(b), free(c);
products:
    printf("| whole product | M x K x N | engine GFLOPS | of peak | OpenBLAS GFLOPS | of peak |\n"
           "|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof prods / sizeof prods[0]; s++) {
        const prod_shape_t *q = &prods[s];
        const int P = q->pixels, G = q->images;
        const size_t n = (size_t)P * G;
        float *x = filled(n * q->k, 1000), *w = filled((size_t)q->m * q->k, 777);
        float *y = filled(n * q->m, 3), *bias = filled((size_t)q->m, 5);
        float *packed = aligned_floats(nn_gemm_packed_floats(q->m, q->k));
        float *bpack = aligned_floats(nn_gemm_bpack_floats());
        nn_gemm_pack_a(q->m, q->k, w, q->k, 0, packed);
        const nn_gemm_seg_t g = {.seg = P, .n_seg = G, .b_seg = (size_t)q->k * P,
                                 .c_seg = (size_t)q->m * P};
        double te = 1e30, tb = 1e30;
        for (int r = 0; r < rounds + 1; r++) { /* the first of each a warm-up */
            double t0 = bench_cpu_now();
            nn_gemm_packed_seg(q->m, q->k, packed, x, P, y, P, &g, 0, bias, 0, bpack);
            const double t1 = bench_cpu_now();
            for (int i = 0; i < G; i++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q->m, P, q->k, 1.0f, w,
                            q->k, x + (size_t)i * q->k * P, P, 0.0f, y + (size_t)i * q->m * P, P);
            const double t2 = bench_cpu_now();
            if (r > 0) {
                te = t1 - t0 < te ? t1 - t0 : te;
                tb = t2 - t1 < tb ? t2 - t1 : tb;
            }
        }
        const double flop = 2.0 * q->m * q->k * (double)n * 1e-9;
        printf("| %s | %d x %d x %zu | %.1f | %.0f %% | %.1f | %.0f %% |\n", q->what, q->m, q->k, n,
               flop / te, 100.0 * flop / te / peak, flop / tb, 100.0 * flop / tb / peak);
        free(x), free(w), free(y), free(bias), free(packed), free(bpack);
    }
    return 0;
}
