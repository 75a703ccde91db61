/*
 * bench_util.h - shared helpers of the C benchmarks: process CPU time and the
 * FP32 peak of one core from a measured clock (a virtual machine's
 * /proc/cpuinfo may show the base clock, not the one the core runs at).
 */
#ifndef SALCHECK_BENCH_UTIL_H
#define SALCHECK_BENCH_UTIL_H

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/blas_core.h"

/* qsort's comparison of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v; the mean of the middle two when n is even). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* First thing in a benchmark's main(): where OpenBLAS took kernels weaker than
 * the CPU's, restart with OPENBLAS_CORETYPE set as salcheck does
 * (nn/blas_core.h), and say so on stderr. */
static inline void bench_blas_core(char **argv)
{
    char note[512];
    nn_blas_core_restart(argv);
    if (nn_blas_core_note(note, sizeof note))
        fprintf(stderr, "%s\n", note);
}

static inline double bench_cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Core clock in GHz, from a chain of dependent integer adds (one cycle each;
 * eight per iteration so that the loop's own overhead hides behind them).
 * Every add takes a register operand: a core that folds additions of
 * immediates at register renaming (Intel's Golden Cove) ran a chain with
 * constants at two adds per cycle and showed twice its clock. */
static inline double bench_measure_ghz(void)
{
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        unsigned long x = 1, k = 3;
        __asm__ volatile("" : "+r"(k)); /* k stays a register the compiler cannot fold */
        const unsigned long n = 50000000UL;
        double t0 = bench_cpu_now();
        for (unsigned long i = 0; i < n; i++) {
#define BENCH_DEP_ADD(v) x += (v); __asm__ volatile("" : "+r"(x))
            BENCH_DEP_ADD(i); BENCH_DEP_ADD(k); BENCH_DEP_ADD(i); BENCH_DEP_ADD(k);
            BENCH_DEP_ADD(i); BENCH_DEP_ADD(k); BENCH_DEP_ADD(i); BENCH_DEP_ADD(k);
#undef BENCH_DEP_ADD
        }
        double t = bench_cpu_now() - t0;
        if (t > 0 && 8.0 * n / t * 1e-9 > best)
            best = 8.0 * n / t * 1e-9;
    }
    return best;
}

/* FP32 lanes of the widest FMA the CPU has (OpenBLAS picks its kernels at run
 * time, whatever the compiler was told). */
static inline int bench_fma_lanes(void)
{
    return __builtin_cpu_supports("avx512f") ? 16 : 8;
}

/* GFLOPS of a loop of independent AVX-512 FMAs: 12 accumulators (a 4-cycle
 * latency x 2 pipes needs 8; more hide the loop branch), each a named
 * register; the best of `reps` runs of n iterations. The measured peak: on a CPU whose AVX-512
 * datapath is 256 bits wide it is half of bench_peak_gflops. */
__attribute__((target("avx512f"))) static inline double bench_fma_peak_avx512_n(long n, int reps)
{
    double best = 0.0;
#define FMA_ACC(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
    for (int rep = 0; rep < reps; rep++) {
#define FMA_DECL(i) __m512 acc##i = _mm512_set1_ps(1.0f + (i) * 1e-3f);
        FMA_ACC(FMA_DECL)
#undef FMA_DECL
        const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
        double t0 = bench_cpu_now();
        for (long i = 0; i < n; i++) {
#define FMA_STEP(i) acc##i = _mm512_fmadd_ps(acc##i, a, b);
            FMA_ACC(FMA_STEP)
#undef FMA_STEP
        }
        double t = bench_cpu_now() - t0;
        float sink = 0.0f;
#define FMA_SUM(i) sink += _mm512_reduce_add_ps(acc##i);
        FMA_ACC(FMA_SUM)
#undef FMA_SUM
        if (sink == 12345.0f)
            printf("%g\n", sink);
        double g = (double)n * 12 * 16 * 2 / t * 1e-9;
        if (g > best)
            best = g;
    }
#undef FMA_ACC
    return best;
}

/* The peak as above: the best of 5 runs of 50M iterations (about 1 s). */
static inline double bench_fma_peak_avx512(void) { return bench_fma_peak_avx512_n(50000000, 5); }

/* A short measurement (about 25 ms) to take beside each timed round on a host
 * whose speed drifts: a percentage of the peak is then taken against the peak
 * of its own round. The caller checks for AVX-512 first. */
static inline double bench_fma_peak_short(void) { return bench_fma_peak_avx512_n(5000000, 2); }


/* Peak FP32 GFLOPS of one core: clock x 2 FMA pipes x lanes x 2 FLOP. */
static inline double bench_peak_gflops(double ghz)
{
    return ghz * 2 * bench_fma_lanes() * 2;
}

#endif
