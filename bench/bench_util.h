/*
 * bench_util.h - shared helpers of the C benchmarks: process CPU time and the
 * FP32 peak of one core from a measured clock (a virtual machine's
 * /proc/cpuinfo may show the base clock, not the one the core runs at).
 */
#ifndef SALCHECK_BENCH_UTIL_H
#define SALCHECK_BENCH_UTIL_H

#include <time.h>

static inline double bench_cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Core clock in GHz, from a chain of dependent integer adds (one cycle each;
 * eight per iteration so that the loop's own overhead hides behind them). */
static inline double bench_measure_ghz(void)
{
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        unsigned long x = 1;
        const unsigned long n = 50000000UL;
        double t0 = bench_cpu_now();
        for (unsigned long i = 0; i < n; i++) {
#define BENCH_DEP_ADD(v) x += (v); __asm__ volatile("" : "+r"(x))
            BENCH_DEP_ADD(i); BENCH_DEP_ADD(3); BENCH_DEP_ADD(i); BENCH_DEP_ADD(5);
            BENCH_DEP_ADD(i); BENCH_DEP_ADD(7); BENCH_DEP_ADD(i); BENCH_DEP_ADD(9);
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

/* Peak FP32 GFLOPS of one core: clock x 2 FMA pipes x lanes x 2 FLOP. */
static inline double bench_peak_gflops(double ghz)
{
    return ghz * 2 * bench_fma_lanes() * 2;
}

#endif
