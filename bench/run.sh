#!/usr/bin/env bash
# bench/run.sh - run the benchmarks and print their tables (results go to bench/README.md by hand).
# One OpenBLAS thread per process; each benchmark measures the core clock for
# its FP32 peak (bench/bench_util.h). OPENBLAS_CORETYPE is cleared so that
# OpenBLAS picks the kernels of this CPU (BENCH_CORETYPE=Haswell pins them).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export OPENBLAS_NUM_THREADS=1
if [ -n "${BENCH_CORETYPE:-}" ]; then export OPENBLAS_CORETYPE=$BENCH_CORETYPE; else unset OPENBLAS_CORETYPE; fi
echo "CPU: $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo)"
for b in "$BUILD"/bench/*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b"
done
