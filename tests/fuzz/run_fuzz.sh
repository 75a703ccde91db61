#!/usr/bin/env bash
# run_fuzz.sh - run libFuzzer harnesses one at a time (make fuzz).
#
# Usage: FUZZ_SECONDS=600 tests/fuzz/run_fuzz.sh HARNESS...
# Each build/fuzz/fuzz_<harness> runs FUZZ_SECONDS at nice 19 (FUZZ_NICE) on its corpus:
# new inputs go to build/fuzz/corpus/<harness> (tests/fuzz/corpus/<harness>
# is read only), a crash, leak, timeout or UBSan report is saved under
# build/fuzz/artifacts/<harness>/. One line per harness goes to stdout and to
# build/fuzz/summary.txt: executions, seconds, corpus size, result.
set -u
cd "$(dirname "$0")/../.." || exit 2
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:allocator_may_return_null=1}
out=build/fuzz
mkdir -p "$out/logs"
cat tests/lsan.supp tests/fuzz/hdf5.supp > "$out/lsan.supp"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/$out/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export HDF5_USE_FILE_LOCKING=FALSE
failed=0
for h in "$@"; do
    mkdir -p "$out/corpus/$h" "$out/artifacts/$h"
    log=$out/logs/$h.log
    t0=$(date +%s)
    # a copy, so that rebuilding during a long run does not touch the running binary
    if ! { mkdir -p "$out/run" && cp "$out/fuzz_$h" "$out/run/fuzz_$h"; }; then failed=1; continue; fi
    nice -n "${FUZZ_NICE:-19}" "$out/run/fuzz_$h" -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$h/" \
        "$out/corpus/$h" "tests/fuzz/corpus/$h" > "$log" 2>&1
    rc=$?
    t1=$(date +%s)
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    units=$(find "$out/corpus/$h" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then result="no crash, leak or UBSan report"; else
        result="FAILED (exit $rc): $(grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$log"), see $log"; failed=1; fi
    line="$(date -u +%F) $h: ${execs:-?} executions in $((t1 - t0)) s (${rate:-?}/s), corpus $units new inputs; $result"
    echo "$line" | tee -a "$out/summary.txt"
done
exit $failed
