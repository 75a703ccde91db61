#!/usr/bin/env bash
# bench/scale.sh - the scheduler and the results file at many ranks (bench/README.md,
# "Scale-out"). Runs bench/scale.ini with `salcheck run --skip-engine` (work items
# that store constant maps without computing them) on 2, 8, 32 and 64 ranks,
# oversubscribed on this machine, with the root computing when idle and without,
# and prints one table row per run:
#   items/s    map-phase items handed out by the root per second (wall clock)
#   root ran   items the root ran itself
#   writes/s   cells written (maps, metrics, status) per second of write time, per rank
#   reads/s    maps read back in the pair phase per second of read time, per rank
# Usage: [BUILD=build] [SCALE_RANKS="2 8 32 64"] [SCALE_PARSE_ONLY=1] bash bench/scale.sh
# (SCALE_PARSE_ONLY=1 prints the table from the logs of the last runs)
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD/salcheck
WORK=$ROOT/$BUILD/bench-scale
RANKS=${SCALE_RANKS:-2 8 32 64}
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export HDF5_USE_FILE_LOCKING=FALSE
mkdir -p "$WORK" && cd "$WORK" || exit 2
cp "$ROOT/bench/scale.ini" scale.ini

# the data set and the model, once (trained for one epoch; its weights do not matter here)
if [ ! -s models/A.h5 ] && [ "${SCALE_PARSE_ONLY:-0}" != 1 ]; then
    mpirun --oversubscribe -np 2 "$BIN" run scale.ini --force --skip-engine --progress 0 >/dev/null 2>prepare.log ||
        { tail -5 prepare.log; exit 1; }
fi
echo "CPU: $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo) x $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| ranks | root computes | map items | items/s | root ran | pair items | pairs/s | writes/s per rank | reads/s per rank |"
echo "|---|---|---|---|---|---|---|---|---|"
# row RANKS ROOT_COMPUTES LOG: one table row from a run's log
row() {
    awk -v r="$1" -v rc="$2" '
        /maps: [0-9]+ items in/ { mi = $3; mps = $8 }
        /pairs: [0-9]+ items in/ { pi = $3; pps = $8 }
        /maps: the root ran/ { root = $6 }
        /cells \(/ { for (i = 1; i <= NF; i++) if ($i == "cells") cells = $(i - 1) }
        /[0-9]+ pairs;/ { for (i = 1; i <= NF; i++) if ($i == "pairs;") pairs = $(i - 1) }
        /methods =/ { for (i = 1; i <= NF; i++) if ($i == "methods") m = $(i - 1) }
        /time over all ranks/ { w = $(NF - 5); rd = $(NF - 1) }
        END {
            gsub(/,/, "", w)
            printf "| %d | %s | %d | %.0f | %d | %d | %.0f | %.0f | %.0f |\n", r, rc, mi, mps, root, pi, pps,
                (w > 0 ? cells / w : 0), (rd > 0 ? 2 * m * pairs / rd : 0)
        }' "$3"
}
for r in $RANKS; do
    for rc in yes no; do
        log=run-$r-$rc.log
        if [ "${SCALE_PARSE_ONLY:-0}" != 1 ]; then
            mpirun --oversubscribe -np "$r" "$BIN" run scale.ini --force --skip-engine --root-computes "$rc" \
                --progress 0 >/dev/null 2>"$log" || { echo "| $r | $rc | failed: $(tail -1 "$log") |"; continue; }
        fi
        row "$r" "$rc" "$log"
    done
done
