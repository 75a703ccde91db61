#!/usr/bin/env bash
# run_tests.sh - run test binaries and tier scripts; sum their "N passed, N failed" lines.
#
# Usage: BUILD=build [TIERS="unit mpi fuzz"] tests/run_tests.sh BIN...
# Every binary and every tests/<tier>/test_*.sh prints "N passed, N failed" as
# its last such line. A program that exits non-zero without that line counts as
# one failure. The last line is "TOTAL: N passed, N failed"; the exit status is
# non-zero on any failure or when nothing ran.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
TIERS=${TIERS:-unit mpi install fuzz slurm cluster}
export BUILD SALCHECK=${SALCHECK:-$BUILD/salcheck} OPENBLAS_NUM_THREADS=1
# Sanitizer builds (make SAN=1): Open MPI's own one-time allocations are
# suppressed (tests/lsan.supp; full malloc stacks, since those libraries have
# no frame pointers); anything reported from salcheck code fails.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0}
# Where OpenBLAS took kernels weaker than the CPU's (nn/blas_core.h), pin the
# better set for every tier: the unit binaries and PyTorch's references do not
# restart themselves as salcheck does (tests/mpi/test_run.sh tests the restart).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -x "$SALCHECK" ]; then
    core=$("$SALCHECK" --blas-core 2>/dev/null)
    [ -n "$core" ] && { export OPENBLAS_CORETYPE=$core; echo "OpenBLAS kernels pinned for the tests: OPENBLAS_CORETYPE=$core"; }
fi
total_pass=0; total_fail=0; ran=0
log_dir=$BUILD/test-logs; mkdir -p "$log_dir"

run_one() {
    local name=$1; shift
    local log="$log_dir/$(basename "$name").log"
    echo "== $name"
    "$@" >"$log" 2>&1; local rc=$?
    grep -E '^\[(FAIL|SKIP)\]|^    ' "$log" | head -40
    local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "   no result line (exit $rc); see $log"; tail -5 "$log"; total_fail=$((total_fail+1))
    else
        local p f; p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { echo "   exit $rc with no failed test; counted as a failure"; f=1; }
        echo "   $line"
        total_pass=$((total_pass+p)); total_fail=$((total_fail+f))
    fi
    ran=$((ran+1))
}

for tier in $TIERS; do
    if [ "$tier" = unit ]; then
        for bin in "$@"; do run_one "$bin" "$bin"; done
    fi
    for script in tests/$tier/test_*.sh; do
        [ -e "$script" ] || continue
        run_one "$script" bash "$script"
    done
done

[ "$ran" -eq 0 ] && { echo "no test ran"; total_fail=$((total_fail+1)); }
echo "TOTAL: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
