/*
 * bench_conv.c - convolution forward and backward throughput on the shapes of
 * a 224x224 ResNet-18 (torchvision), batch 1, in GFLOPS, next to a plain
 * sgemm of the same total work as a ceiling for the im2col + GEMM scheme.
 *
 * usage: bench_conv [repeats]   (run with OPENBLAS_NUM_THREADS=1 for 1 thread; CPU time
 * of the process, so other jobs on the core do not count)
 * The peak for the fraction column is the measured core clock x 2 FMA pipes x
 * vector lanes x 2 (bench_util.h); SALCHECK_PEAK_GFLOPS overrides it.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/layers.h"
#include "sc.h"
#include "bench_util.h"

typedef struct bench_shape { const char *name; int c, h, oc, k, s, p; int count; } bench_shape_t;

/* Every distinct convolution of ResNet-18 at 224, with how often it occurs. */
static const bench_shape_t shapes[] = {
    {"conv1 7x7/2", 3, 224, 64, 7, 2, 3, 1},
    {"layer1 3x3", 64, 56, 64, 3, 1, 1, 4},
    {"layer2.0 3x3/2", 64, 56, 128, 3, 2, 1, 1},
    {"layer2 3x3", 128, 28, 128, 3, 1, 1, 3},
    {"layer2.ds 1x1/2", 64, 56, 128, 1, 2, 0, 1},
    {"layer3.0 3x3/2", 128, 28, 256, 3, 2, 1, 1},
    {"layer3 3x3", 256, 14, 256, 3, 1, 1, 3},
    {"layer3.ds 1x1/2", 128, 28, 256, 1, 2, 0, 1},
    {"layer4.0 3x3/2", 256, 14, 512, 3, 2, 1, 1},
    {"layer4 3x3", 512, 7, 512, 3, 1, 1, 3},
    {"layer4.ds 1x1/2", 256, 14, 512, 1, 2, 0, 1},
};

static float *rand_buf(size_t count)
{
    float *p = sc_calloc(count, sizeof(float));
    for (size_t i = 0; i < count; i++)
        p[i] = (float)((double)rand() / RAND_MAX - 0.5);
    return p;
}

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    int repeats = argc > 1 ? atoi(argv[1]) : 5;
    const char *peak_env = getenv("SALCHECK_PEAK_GFLOPS");
    double ghz = bench_measure_ghz();
    double peak = peak_env ? atof(peak_env) : bench_peak_gflops(ghz);
    printf("core clock %.2f GHz (measured), %d-lane FMA, FP32 peak %.0f GFLOPS per core; OpenBLAS core %s\n\n",
           ghz, bench_fma_lanes(), peak, openblas_get_corename());
    printf("| layer | count | GFLOP fwd | fwd GFLOPS | bwd (dx+dW) GFLOPS | sgemm same M,N,K GFLOPS |%s\n",
           peak > 0 ? " fwd % of peak |" : "");
    printf("|---|---|---|---|---|---|%s\n", peak > 0 ? "---|" : "");
    double tot_flop = 0, tot_fwd = 0, tot_bwd = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const bench_shape_t *b = &shapes[i];
        conv2d_shape_t s = {.n = 1, .c = b->c, .h = b->h, .w = b->h, .oc = b->oc, .kh = b->k,
                            .kw = b->k, .sh = b->s, .sw = b->s, .pt = b->p, .pb = b->p,
                            .pl = b->p, .pr = b->p};
        conv2d_shape_init(&s);
        size_t in = (size_t)b->c * b->h * b->h, out = (size_t)b->oc * s.oh * s.ow;
        size_t wsz = (size_t)b->oc * b->c * b->k * b->k;
        float *x = rand_buf(in), *W = rand_buf(wsz), *y = rand_buf(out), *dy = rand_buf(out);
        float *dx = rand_buf(in), *dW = rand_buf(wsz);
        size_t ws = conv2d_workspace(&s);
        float *col = sc_calloc(ws ? ws : 1, sizeof(float));
        const int M = b->oc, N = s.oh * s.ow, K = b->c * b->k * b->k;
        double flop = 2.0 * M * N * K;
        double tf[64], tb[64], tg[64];
        if (repeats > 64)
            repeats = 64;
        conv2d_forward(&s, x, W, NULL, y, col); /* warm-up */
        for (int r = 0; r < repeats; r++) {
            double t0 = bench_cpu_now();
            conv2d_forward(&s, x, W, NULL, y, col);
            double t1 = bench_cpu_now();
            conv2d_backward(&s, x, W, dy, dx, dW, NULL, col);
            double t2 = bench_cpu_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, W, K,
                        ws ? col : x, N, 0.0f, y, N);
            double t3 = bench_cpu_now();
            tf[r] = t1 - t0;
            tb[r] = t2 - t1;
            tg[r] = t3 - t2;
        }
        double mf = bench_median(tf, repeats), mb = bench_median(tb, repeats), mg = bench_median(tg, repeats);
        printf("| %s (%dx%dx%d -> %d) | %d | %.3f | %.1f | %.1f | %.1f |", b->name, b->c, b->h,
               b->h, b->oc, b->count, flop * 1e-9, flop / mf * 1e-9, 2 * flop / mb * 1e-9,
               flop / mg * 1e-9);
        if (peak > 0)
            printf(" %.0f%% |", 100.0 * flop / mf * 1e-9 / peak);
        printf("\n");
        tot_flop += b->count * flop;
        tot_fwd += b->count * mf;
        tot_bwd += b->count * mb;
        sc_free(x); sc_free(W); sc_free(y); sc_free(dy); sc_free(dx); sc_free(dW); sc_free(col);
    }
    printf("\nResNet-18 convolutions, batch 1: %.2f GFLOP forward in %.1f ms = %.1f GFLOPS;"
           " backward (input + weight gradients, 2x the FLOPs) %.1f ms = %.1f GFLOPS",
           tot_flop * 1e-9, tot_fwd * 1e3, tot_flop / tot_fwd * 1e-9, tot_bwd * 1e3,
           2 * tot_flop / tot_bwd * 1e-9);
    if (peak > 0)
        printf("; forward at %.0f%% of the %.0f GFLOPS peak", 100 * tot_flop / tot_fwd * 1e-9 / peak,
               peak);
    printf("\n");
    return 0;
}
