#!/usr/bin/env bash
# bench_run.sh - scaling of the demo audit (jobs/demo.ini): wall time at 1 and
# 2 ranks (or the rank counts in RANKS), the split between compute and
# results-file I/O, and a check that every rank count wrote the same maps.
#
#   bash bench/bench_run.sh            (REPEATS=3 RANKS="1 2" by default)
#
# The models are trained once first (cached in build/demo/models, as `make
# demo` does); the timed runs are the audit only: loading, maps, pairs,
# /summary and the printed tables, each into its own results file. Rank
# counts alternate within each repeat so that a change of load on a shared
# machine hits all of them alike; the table gives medians over the repeats.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SALCHECK=${SALCHECK:-$BUILD/salcheck}
REPEATS=${REPEATS:-3}
RANKS=${RANKS:-1 2}
JOB=${JOB:-jobs/demo.ini}
OUT=$BUILD/bench-run
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
if [ -n "${BENCH_CORETYPE:-}" ]; then export OPENBLAS_CORETYPE=$BENCH_CORETYPE; else unset OPENBLAS_CORETYPE; fi
run() { mpirun --oversubscribe -np "$1" "$SALCHECK" run "$JOB" --force --out "$2" --progress 1000; }

echo "preparing: data and models of $JOB (cached after the first time)"
run 2 "$OUT/prepare.h5" >"$OUT/prepare.log" 2>&1 || { tail -20 "$OUT/prepare.log"; exit 1; }

: >"$OUT/times.txt"
for rep in $(seq 1 "$REPEATS"); do
    for np in $RANKS; do
        log=$OUT/np$np-rep$rep.log
        t0=$(date +%s.%N)
        run "$np" "$OUT/np$np.h5" >"$log" 2>&1 || { tail -20 "$log"; exit 1; }
        t1=$(date +%s.%N)
        maps=$(sed -n 's/.*maps: .* took \([0-9.]*\)s$/\1/p' "$log" | tail -1)
        pairs=$(sed -n 's/.*pairs: .* took \([0-9.]*\)s$/\1/p' "$log" | tail -1)
        split=$(sed -n 's/.*time over all ranks: compute \([0-9.]*\) s, results-file writes \([0-9.]*\) s, map reads \([0-9.]*\) s.*/\1 \2 \3/p' "$log")
        wall=$(echo "$t1 - $t0" | bc)
        echo "$np $rep $wall ${maps:-nan} ${pairs:-nan} $split" | tee -a "$OUT/times.txt"
    done
done

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); OpenBLAS core: ${OPENBLAS_CORETYPE:-its own choice}"
/usr/bin/python3 - "$OUT/times.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(int(r[0]), []).append([float(x) for x in r[2:]])
med = {np: [statistics.median(col) for col in zip(*v)] for np, v in by.items()}
base = med[min(med)]
print("| ranks | runs | wall s (median) | maps phase s | pairs phase s | speed-up (wall) | "
      "compute s, all ranks | results-file writes s | map reads s | I/O share |")
print("|---|---|---|---|---|---|---|---|---|---|")
for np in sorted(med):
    w, m, p, comp, wr, rd = med[np]
    print(f"| {np} | {len(by[np])} | {w:.1f} | {m:.0f} | {p:.0f} | {base[0] / w:.2f}x | "
          f"{comp:.1f} | {wr:.2f} | {rd:.2f} | {100 * (wr + rd) / (comp + wr + rd):.2f} % |")
EOF

# Every rank count must have written the same maps and metrics.
first=""
for np in $RANKS; do
    if [ -z "$first" ]; then first=$np; continue; fi
    for obj in /maps /metrics /pairs; do
        if h5diff -q "$OUT/np$first.h5" "$OUT/np$np.h5" "$obj" "$obj"; then
            echo "np$first.h5 and np$np.h5: $obj identical"
        else
            echo "np$first.h5 and np$np.h5: $obj DIFFER"; exit 1
        fi
    done
done
