#!/usr/bin/env bash
# cell_profile.sh - where the time of one cell of the paper's RSNA protocol goes
# (bench/README.md, "The rest of a cell").
#
#   bash bench/cell_profile.sh          (or: make bench-cell)
#
# Runs bench/cell.ini (the zoo's InceptionV3 at 320 x 320, the RSNA job's
# methods, metrics, similarities and float16 maps on the phantom; two cells and
# one pair) on one rank under `perf record` (call graphs by DWARF unwinding),
# then splits the samples of the salcheck process by the first function on
# each stack, from the leaf up, that belongs to a part of the cell:
# the gradient engine (OpenBLAS, common/nn, the methods' compute), XRAI's
# regions (xrai_map: resize, Felzenszwalb, dilation, greedy), post-processing,
# the per-map metrics, the pair phase's similarities, HDF5, and the rest (setup,
# model loading, the summary). The phantom data and the two models are made
# once (cached under build/bench-cell, or OUT). FREQ (default 49) sets perf's
# sampling rate; SALCHECK names another binary, and COMPARE=OLD.h5 checks with
# h5diff that the run wrote the same maps, metrics and pair similarities as
# OLD.h5 (a before/after comparison). bench/bench_cellrest.c then times the non-engine parts alone
# on the stored maps.
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
SALCHECK=$ROOT/${SALCHECK:-$BUILD/salcheck}
OUT=${OUT:-$ROOT/$BUILD/bench-cell}
FREQ=${FREQ:-49}
mkdir -p "$OUT"
cp bench/cell.ini "$OUT/cell.ini"
cd "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
if [ -n "${BENCH_CORETYPE:-}" ]; then export OPENBLAS_CORETYPE=$BENCH_CORETYPE; else unset OPENBLAS_CORETYPE; fi
command -v perf >/dev/null || { echo "cell_profile.sh: perf not found (apt-get install linux-perf)"; exit 1; }

if [ ! -f models/inceptionv3-rep1.h5 ] || [ ! -f models/inceptionv3-rep2.h5 ]; then
    echo "preparing: the phantom and the two InceptionV3 replicates (once)"
    sed 's/^list = grad.*/list = random/' cell.ini >prepare.ini
    "$SALCHECK" run prepare.ini --force --out prepare.h5 >prepare.log 2>&1 || { tail -20 prepare.log; exit 1; }
fi

echo "profiling: $SALCHECK run cell.ini (load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%F %H:%M UTC'))"
perf record -F "$FREQ" --call-graph dwarf,16384 -o perf.data -- \
    "$SALCHECK" run cell.ini --force --out results.h5 --progress 60 >run.log 2>&1 || { tail -20 run.log; exit 1; }
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E 'maps: .* took|pairs: .* took|time over all ranks' run.log || true
perf script -i perf.data -F comm,ip,sym,dso 2>/dev/null >perf.txt
/usr/bin/python3 "$ROOT/bench/cell_split.py" <perf.txt
if [ -n "${COMPARE:-}" ]; then
    different=0
    for ds in $(h5ls -r results.h5 | awk '$1 ~ /^\/(maps|metrics|pairs)\// && $2 == "Dataset" {print $1}'); do
        h5diff -q "$COMPARE" results.h5 "$ds" "$ds" || { echo "differs from $COMPARE: $ds"; different=1; }
    done
    [ "$different" = 0 ] && echo "maps, metrics and pairs identical to $COMPARE"
fi
