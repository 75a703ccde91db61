#!/usr/bin/env bash
# test_plan.sh - `salcheck run JOB.ini --plan` against what the run then costs, on
# tests/mpi/small.ini (seconds of work):
#  1. before the data set and the models exist: the plan's counts (cells, pairs per
#     experiment) and its gradient evaluations computed here by hand from the
#     methods' costs (saliency.h); nothing is written
#  2. the audit on 1 rank (it trains the models), then again with the models cached,
#     measuring its CPU time, peak resident size and results file size
#  3. the plan again: its work (CPU seconds) within 50 %, memory per rank within 30 % and
#     file size within 10 % of the measured ones; bad options and a missing model are errors
# Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
BIN=${SALCHECK:-$BUILD/salcheck}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
PY=${SALCHECK_PYTHON:-/usr/bin/python3}
JOB=$ROOT/tests/mpi/small.ini
WORK=$ROOT/$BUILD/test-plan
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export HDF5_USE_FILE_LOCKING=FALSE
passed=0
failed=0
check() { local what=$1; shift; if "$@"; then passed=$((passed + 1)); echo "[PASS] $what"; else failed=$((failed + 1)); echo "[FAIL] $what"; fi; }
note() { echo "    $*"; }
within() { "$PY" -c 'import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(0 if b > 0 and abs(a / b - 1) <= t else 1)' "$@"; }
field() { grep -m1 "$1" "$2" | awk -v k="$3" '{print $k}'; }
# measured CMD...: "CPU_SECONDS MAX_RSS_BYTES" of the command and its children
measured() {
    "$PY" -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime, r.ru_maxrss * 1024, rc)' "$@"
}

rm -rf "$WORK"
mkdir -p "$WORK" && cd "$WORK" || exit 2

# ---- 1. the plan before anything exists --------------------------------------
"$BIN" run "$JOB" --plan --cores-per-node 1 >plan0.txt 2>plan0.err
rc=$?
check "plan before the data and models exist: exit 0" [ "$rc" -eq 0 ]
check "plan: 46 cells (6 images x 5 variants + 4 x 4 cascading states)" grep -q '^cells      46 ' plan0.txt
check "plan: 56 pairs (cascading 16, untrained 6, label 6, repeatability 6, reproducibility 6, baseline 16)" \
    grep -q '^pairs      56: cascading 16 untrained 6 label 6 repeatability 6 reproducibility 6 baseline 16$' plan0.txt
# grad 1, sg 4, ig 5, sig 2x5, gbp 1, gcam 1/2, ggcam 3/2, xrai 2x4, controls 0, + 1/2 forward:
# 31 1/2 per cell
evals=$(field '^cost' plan0.txt 2)
check "plan: gradient evaluations = 46 x (31 + 1/2) = 1449 ($evals)" [ "$evals" = 1449 ]
absent() { local f; for f; do [ ! -e "$f" ] || return 1; done; }
check "plan: nothing written (no phantom, no model, no results file)" absent phantom models small.h5
check "plan: the recipe models are to be trained" grep -q 'training .*4 models to train first' plan0.txt

# ---- 2. the run, measured -----------------------------------------------------
read -r _ _ rc1 < <(measured "$BIN" run "$JOB" --progress 0)
read -r cpu rss rc2 < <(measured "$BIN" run "$JOB" --force --progress 0)
size=$(stat -c %s small.h5 2>/dev/null || echo 0)
check "the audit runs (training, then again with the models cached)" [ "$rc1$rc2" = 00 ]
note "measured: ${cpu} CPU-s, max RSS ${rss} B, results file ${size} B"

# ---- 3. the plan against the measurement ----------------------------------------
"$BIN" run "$JOB" --plan --cores-per-node 1 >plan1.txt 2>plan1.err
work=$(grep -m1 '^| 1 | 1 |' plan1.txt | awk -F'|' '{print $7 * 3600}')
mem=$(grep -m1 'memory/rank' plan1.txt | awk '{print $2 * ($3 == "GB" ? 1e9 : $3 == "MB" ? 1e6 : 1e3)}')
fsz=$(grep -m1 'results file' plan1.txt | awk '{print $3 * ($4 == "GB" ? 1e9 : $4 == "MB" ? 1e6 : 1e3)}')
note "plan: work ${work} CPU-s, memory ${mem} B, results file ${fsz} B"
# 50 %: the plan's calibration and the run are timed minutes apart, and a virtual machine's
# speed can drift by 20-30 % between minutes (bench/README.md, "On an Intel Xeon"); an
# estimate off by a factor of 2 still fails
check "plan: work within 50 % of the run's CPU time" within "$work" "$cpu" 0.50
# the estimate counts every model's workspaces (they live through the whole run) at the
# inputs per engine call its methods use (small.ini: 5 of the batch of 16)
between() { "$PY" -c 'import sys; a, b, lo, hi = map(float, sys.argv[1:]); sys.exit(0 if b > 0 and lo <= a / b <= hi else 1)' "$@"; }
check "plan: memory per rank 0.7-1.3 x the run's peak resident size" between "$mem" "$rss" 0.70 1.30
check "plan: results file within 10 % of the file written" within "$fsz" "$size" 0.10

# ---- automatic block_images: by rank count, and the same maps ---------------------
sed '/^block_images/d' "$JOB" >auto.ini
"$BIN" run auto.ini --plan --nodes 1,64 --cores-per-node 1 >plan2.txt 2>plan2.err
check "plan: block_images automatic, 4 images per item on 1 rank" grep -q '^| 1 | 1 | .* | 4 (automatic) |$' plan2.txt
check "plan: ... and 1 on 64 ranks (46 cells)" grep -q '^| 64 | 64 | .* | 1 (automatic) |$' plan2.txt
"$BIN" run auto.ini --out auto.h5 --progress 0 >auto.log 2>&1
check "run: block_images automatic, 4 images per item on 1 rank" grep -q 'work items of up to 4 images (block_images automatic)' auto.log
r=$("$PY" "$ROOT/tests/mpi/check_results.py" equal small.h5 auto.h5 2>&1 | tail -1)
check "run: ... the same maps, metrics and pairs as with 1 image per item ($r)" \
    bash -c "echo '$r' | grep -q ' 0 failed'"
mpirun --oversubscribe -np 3 "$BIN" run auto.ini --out auto3.h5 --progress 0 >auto3.log 2>&1
check "run: ... 1 image per item on 3 ranks (46 cells, lockstep items of 4 states)" \
    grep -q 'work items of up to 1 image (block_images automatic)' auto3.log

# ---- mistakes ---------------------------------------------------------------------
"$BIN" run "$JOB" --plan --nodes 0 >/dev/null 2>bad.err
check "plan: --nodes 0 is an error" [ $? -ne 0 ]
sed 's/^train = yes$/train = no/; /^arch\|^epochs\|^labels\|^seed = [1-4]$/d' "$JOB" >nomodel.ini
sed -i 's|^file = models/A.h5|file = models/absent.h5|' nomodel.ini
"$BIN" run nomodel.ini --plan >/dev/null 2>nomodel.err
check "plan: a missing model file is an error" [ $? -ne 0 ]
check "plan: ... naming the job line and --assume" \
    grep -q 'nomodel.ini:[0-9]*: model .A.: file .models/absent.h5. does not exist.*--assume A=ARCH' nomodel.err
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
