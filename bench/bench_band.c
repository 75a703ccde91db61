/*
 * bench_band.c - what keeping a bottleneck's intermediate map in L2 would
 * gain: ResNet-50's 56 x 56 pointwise pair (256 -> 64, ReLU, 64 -> 256) over
 * a batch, through the engine's GEMM (nn/gemm.h), in four orders.
 *
 *   bench_band [batch [band [rounds]]]   (defaults 16, 448 = 8 rows, 7;
 *                                         OPENBLAS_NUM_THREADS=1, one core)
 *
 * layer by layer: the first product over the whole batch, then the second
 * (the engine's order); banded, stored: both products a band of columns
 * (image rows) at a time, the intermediate written to its full-size map
 * and read back while in L2 (what a band-fused engine must still do for the
 * backward pass); banded, L2 only: the intermediate in a band-sized buffer;
 * in cache: the same band of one image every time (every operand in L2, the
 * ceiling of these shapes). The three real orders give the same bits
 * (checked). Medians of the rounds; results and reading: bench/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"
#include "bench_util.h"
#include "sc.h"

enum { BAND_C = 256, BAND_H = 64, BAND_P = 56 * 56, BAND_ORDERS = 4 };

static float *band_fill(size_t n, unsigned seed)
{
    float *v = sc_calloc(n, sizeof(float));
    if (!v) {
        fprintf(stderr, "bench_band: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((i * 2654435761u + seed) % 1000u) / 1000.0f - 0.3f;
    return v;
}

/* One pass of the pair in the given order (the file's header): x (n images
 * of BAND_C x BAND_P) -> ReLU(w1 x) -> y = w2 ReLU(w1 x), the intermediate in
 * mid (n images of BAND_H x BAND_P) or tmp (BAND_H x band). */
static void band_run(int order, int n, int band, const float *x, const float *w1,
                     const float *w2, float *mid, float *tmp, float *y, float *bp)
{
    const size_t in = (size_t)BAND_C * BAND_P, hid = (size_t)BAND_H * BAND_P;
    if (order == 0) {
        const nn_gemm_seg_t g1 = {.seg = BAND_P, .n_seg = n, .b_seg = in, .c_seg = hid};
        const nn_gemm_seg_t g2 = {.seg = BAND_P, .n_seg = n, .b_seg = hid, .c_seg = in};
        nn_gemm_rows_seg(BAND_H, BAND_C, w1, BAND_C, x, BAND_P, mid, BAND_P, &g1, 0, NULL, 1, bp);
        nn_gemm_rows_seg(BAND_C, BAND_H, w2, BAND_H, mid, BAND_P, y, BAND_P, &g2, 0, NULL, 0, bp);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int p0 = 0; p0 < BAND_P; p0 += band) {
            const int w = BAND_P - p0 < band ? BAND_P - p0 : band;
            const nn_gemm_seg_t g = {.seg = w, .n_seg = 1};
            const size_t at = order == 3 ? 0 : (size_t)i * in + p0; /* 3: the same band */
            float *m = order == 1 ? mid + (size_t)i * hid + p0 : tmp;
            const int ldm = order == 1 ? BAND_P : w;
            nn_gemm_rows_seg(BAND_H, BAND_C, w1, BAND_C, x + at, BAND_P, m, ldm, &g, 0, NULL, 1,
                             bp);
            nn_gemm_rows_seg(BAND_C, BAND_H, w2, BAND_H, m, ldm, y + at, BAND_P, &g, 0, NULL, 0,
                             bp);
        }
}

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    const int n = argc > 1 ? atoi(argv[1]) : 16, band = argc > 2 ? atoi(argv[2]) : 448;
    const int rounds = argc > 3 ? atoi(argv[3]) : 7;
    if (n < 1 || band < 1 || band > BAND_P || rounds < 1) {
        fprintf(stderr, "usage: bench_band [batch [band (1-%d) [rounds]]]\n", BAND_P);
        return 2;
    }
    if (!nn_gemm_available()) {
        printf("bench_band: skipped (no AVX-512: the engine's GEMM does not run here)\n");
        return 0;
    }
    const size_t in = (size_t)BAND_C * BAND_P, mid = (size_t)BAND_H * BAND_P;
    float *x = band_fill(n * in, 1), *y1 = band_fill(n * mid, 2), *ya = band_fill(n * in, 3);
    float *yb = band_fill(n * in, 4), *yc = band_fill(n * in, 5);
    float *w1 = band_fill((size_t)BAND_H * BAND_C, 6), *w2 = band_fill((size_t)BAND_C * BAND_H, 7);
    float *tmp = band_fill((size_t)BAND_H * band, 8), *bp = band_fill(nn_gemm_bpack_floats(), 9);
    double *t = calloc((size_t)BAND_ORDERS * rounds, sizeof(double));
    if (!t)
        return 1;
    for (int r = 0; r < rounds; r++) {
        for (int order = 0; order < BAND_ORDERS; order++) {
            const double t0 = bench_cpu_now();
            band_run(order, n, band, x, w1, w2, y1, tmp, order == 0 ? ya : order == 3 ? yc : yb,
                     bp);
            t[(size_t)order * rounds + r] = bench_cpu_now() - t0;
            if ((order == 1 || order == 2) && memcmp(ya, yb, n * in * sizeof(float)) != 0) {
                fprintf(stderr, "bench_band: the orders disagree\n");
                return 1;
            }
        }
    }
    const char *names[BAND_ORDERS] = {"layer by layer", "banded, stored", "banded, L2 only",
                                      "in cache"};
    const double flops = 4.0 * n * BAND_P * (double)BAND_C * BAND_H;
    printf("ResNet-50 56x56 pair 256 -> 64 -> 256, batch %d, band %d columns, %d rounds\n", n, band,
           rounds);
    for (int o = 0; o < BAND_ORDERS; o++) {
        const double s = bench_median(t + (size_t)o * rounds, rounds);
        printf("  %-16s %8.2f ms %6.1f GFLOPS\n", names[o], s * 1e3, flops / s / 1e9);
    }
    free(t);
    sc_free(x), sc_free(y1), sc_free(ya), sc_free(yb), sc_free(yc), sc_free(w1), sc_free(w2);
    sc_free(tmp), sc_free(bp);
    return 0;
}
