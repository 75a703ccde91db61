/*
 * bench_peak.c - the FP32 peak of this core right now, in GFLOPS.
 *
 *   bench_peak [--long]
 *
 * A loop of independent AVX-512 FMAs (bench_util.h): by default the short
 * measurement (about 25 ms) that bench/bench_import.py takes before and after
 * every timed run, to express each time in the core's speed of that moment;
 * --long the one-second measurement of bench_convpath. Prints one number;
 * exits 2 without AVX-512 (the scripts then use plain times).
 */
#include <immintrin.h>
#include <stdio.h>
#include <string.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "%s: this CPU has no AVX-512\n", argv[0]);
        return 2;
    }
    const int long_run = argc > 1 && !strcmp(argv[1], "--long");
    printf("%.2f\n", long_run ? bench_fma_peak_avx512() : bench_fma_peak_short());
    return 0;
}
