/*
 * bench_wino.c - the zoo's convolutions that take the Winograd path
 * (nn/conv_wino.h: 3x3 by F(2x2, 3x3), InceptionV3's 5x5 by F(2x2, 5x5) and
 * its 1x7 / 7x1 by F(2, 7)) against the GEMM path they took before
 * (nn/conv.c: OpenBLAS or the packed kernel, W^T packed once), forward and
 * input gradient, in one process, the two paths alternating per round.
 *
 * usage: build/bench/bench_wino [--batch B] [--rounds R] [--only TEXT]
 * (--only: the shapes whose name contains TEXT)
 * CPU ms per call (median of R rounds), and the Winograd path's speed as a
 * share of the measured FP32 peak with its work counted as the direct
 * convolution's 2 x oc x c x kh x kw x oh x ow per image ("effective":
 * above 100 % is possible, Winograd does 2.25 (3x3), 2.78 (5x5) or 1.75
 * (7-tap) times fewer multiply-adds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "nn/conv_packed.h"
#include "nn/conv_wino.h"
#include "nn/gemm.h"
#include "nn/layers.h"

typedef struct {
    const char *where;
    int c, h, w, oc, pad; /* pad: on every side of a square kernel */
    int kh, kw;
} shape_t;

static const shape_t shapes[] = {
    {"resnet50 layer1", 64, 56, 56, 64, 1, 3, 3},
    {"resnet50 layer2", 128, 28, 28, 128, 1, 3, 3},
    {"resnet50 layer3", 256, 14, 14, 256, 1, 3, 3},
    {"inceptionv3 stem conv2", 32, 149, 149, 32, 0, 3, 3},
    {"inceptionv3 stem conv3", 32, 147, 147, 64, 1, 3, 3},
    {"inceptionv3 35x35 64->96", 64, 35, 35, 96, 1, 3, 3},
    {"inceptionv3 35x35 96->96", 96, 35, 35, 96, 1, 3, 3},
    {"densenet121 block1", 128, 56, 56, 32, 1, 3, 3},
    {"densenet121 block2", 128, 28, 28, 32, 1, 3, 3},
    {"densenet121 block3", 128, 14, 14, 32, 1, 3, 3},
    {"inceptionv3 mixed7 (8x8)", 384, 8, 8, 384, 1, 3, 3},
    {"inceptionv3 mixed7 448->384", 448, 8, 8, 384, 1, 3, 3},
    {"resnet50 layer4 (7x7)", 512, 7, 7, 512, 1, 3, 3},
    {"densenet121 block4 (7x7)", 128, 7, 7, 32, 1, 3, 3},
    {"inceptionv3 5x5 48->64", 48, 35, 35, 64, 2, 5, 5},
    {"inceptionv3 1x7 128->128", 128, 17, 17, 128, 3, 1, 7},
    {"inceptionv3 7x1 128->192", 128, 17, 17, 192, 3, 7, 1},
    {"inceptionv3 1x7 192->192", 192, 17, 17, 192, 3, 1, 7},
    {"inceptionv3 7x1 192->192", 192, 17, 17, 192, 3, 7, 1},
};

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
}

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    int batch = 8, rounds = 5;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--batch B] [--rounds R] [--only TEXT]\n", argv[0]);
            return 2;
        }
    }
    if (!nn_gemm_available()) {
        fprintf(stderr, "this CPU has no AVX-512: no Winograd path\n");
        return 0;
    }
    const double peak = bench_fma_peak_avx512();
    printf("batch %d, %d rounds, peak %.1f GFLOPS (measured: independent AVX-512 FMAs; clock x 2 "
           "pipes x 16 lanes x 2 would say %.1f)\n\n", batch, rounds, peak,
           bench_peak_gflops(bench_measure_ghz()));
    printf("| shape | c -> oc | out | GEMM fwd ms | Winograd fwd ms | fwd ratio | GEMM dx ms | "
           "Winograd dx ms | dx ratio | Winograd fwd+dx effective %% of peak |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const shape_t *sh = &shapes[k];
        if (only && !strstr(sh->where, only))
            continue;
        const int kh = sh->kh, kw = sh->kw;
        const int ph = kh > 1 ? sh->pad : 0, pw = kw > 1 ? sh->pad : 0;
        conv2d_shape_t s = {.n = batch, .c = sh->c, .h = sh->h, .w = sh->w, .oc = sh->oc, .kh = kh,
                            .kw = kw, .sh = 1, .sw = 1, .pt = ph, .pb = ph, .pl = pw, .pr = pw};
        conv2d_shape_init(&s);
        const size_t in = (size_t)batch * s.c * s.h * s.w, out = (size_t)batch * s.oc * s.oh * s.ow;
        const size_t wc = (size_t)s.oc * s.c * kh * kw;
        const size_t ws_f = conv2d_workspace(&s) > conv_wino_workspace(&s) ? conv2d_workspace(&s)
                                                                          : conv_wino_workspace(&s);
        float *x = malloc(sizeof(float) * in), *dx = malloc(sizeof(float) * in);
        float *y = malloc(sizeof(float) * out), *dy = malloc(sizeof(float) * out);
        float *W = malloc(sizeof(float) * wc), *b = malloc(sizeof(float) * s.oc);
        float *ws = malloc(sizeof(float) * ws_f);
        float *uf = malloc(sizeof(float) * conv_wino_u_floats(&s, 0));
        float *ub = malloc(sizeof(float) * conv_wino_u_floats(&s, 1));
        const int K = s.c * kh * kw;
        float *wt = malloc(sizeof(float) * nn_gemm_packed_floats(K, s.oc));
        fill(x, in, 1);
        fill(dy, out, 2);
        fill(W, wc, 3);
        fill(b, (size_t)s.oc, 4);
        conv_wino_transform(&s, W, 0, uf);
        conv_wino_transform(&s, W, 1, ub);
        nn_gemm_pack_a(K, s.oc, W, K, 1, wt);
        const float *wtp = conv_packed_wanted(&s, 1) ? wt : NULL;
        double *t = malloc(sizeof(double) * 4 * rounds);
        for (int r = 0; r < rounds; r++) {
            double t0 = bench_cpu_now();
            conv2d_forward_fused(&s, x, W, b, 1, y, ws);
            double t1 = bench_cpu_now();
            conv_wino_forward(&s, uf, x, b, 1, y, ws);
            double t2 = bench_cpu_now();
            conv2d_backward_data_wt(&s, W, wtp, dy, dx, 1, ws);
            double t3 = bench_cpu_now();
            conv_wino_backward_data(&s, ub, dy, dx, 1, ws);
            double t4 = bench_cpu_now();
            t[r] = t1 - t0, t[rounds + r] = t2 - t1, t[2 * rounds + r] = t3 - t2;
            t[3 * rounds + r] = t4 - t3;
        }
        double med[4];
        for (int q = 0; q < 4; q++) {
            qsort(t + q * rounds, (size_t)rounds, sizeof(double), bench_cmp_double);
            med[q] = 1e3 * t[q * rounds + rounds / 2];
        }
        const double gflop = 2.0 * s.oc * s.c * kh * kw * (double)s.oh * s.ow * batch * 1e-9;
        printf("| %s | %d -> %d | %dx%d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% |\n",
               sh->where, s.c, s.oc, s.oh, s.ow, med[0], med[1], med[1] / med[0], med[2], med[3],
               med[3] / med[2], 100.0 * 2.0 * gflop / ((med[1] + med[3]) * 1e-3) / peak);
        fflush(stdout);
        free(x), free(dx), free(y), free(dy), free(W), free(b), free(ws), free(uf), free(ub);
        free(wt), free(t);
    }
    return 0;
}
