#!/usr/bin/env bash
# bench/run.sh - run the benchmarks and print their tables (results go to bench/README.md by hand).
# One OpenBLAS thread per process; the FP32 peak is clock x FLOP/cycle (see bench/README.md).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export OPENBLAS_NUM_THREADS=1
mhz=$(awk -F: '/cpu MHz/ {printf "%d", $2; exit}' /proc/cpuinfo)
if grep -q -m1 avx512f /proc/cpuinfo; then lanes=16; else lanes=8; fi
# two FMA pipes x lanes x 2 FLOP per FMA
peak=$(( mhz * lanes * 2 * 2 / 1000 ))
export SALCHECK_PEAK_GFLOPS=$peak
echo "CPU: $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo), ${mhz} MHz, ${lanes}-lane FMA: peak ${peak} GFLOPS per core (FP32)"
for b in "$BUILD"/bench/*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b"
done
