#!/usr/bin/env bash
# test_portable.sh - the portable fallbacks of the CPU-specific kernels, run and checked.
#
# Every other build of make test compiles with -march=native, where nn/vmath.h's
# polynomials take fused multiply-adds and gconv's stride-2 kernels masked AVX-512
# accesses; the plain C they fall back to elsewhere would go untested. This tier builds
# the unit tests of those kernels in the sanitizer build (make SAN=1: -O2, no -march,
# AddressSanitizer and UBSan; objects under build/san) and runs them there.
# Prints "N passed, N failed" over the tests of the binaries it ran.
set -u
cd "$(dirname "$0")/../.." || exit 2
san=${SAN_BUILD:-build/san}
log_dir=${BUILD:-build}/test-logs
mkdir -p "$log_dir"
tests="test_gconv test_nn_grad test_families_kernels"
targets=""
for t in $tests; do targets="$targets $san/tests/$t"; done
echo "building$targets (make SAN=1)"
# shellcheck disable=SC2086 # the targets are separate words
if ! make -j"$(nproc)" SAN=1 BUILD="$san" $targets >"$log_dir/portable-build.log" 2>&1; then
    tail -20 "$log_dir/portable-build.log"
    echo "0 passed, 1 failed"
    exit 1
fi
pass=0
fail=0
for t in $tests; do
    out=$(BUILD="$san" "$san/tests/$t" 2>&1)
    rc=$?
    grep -E '^\[FAIL\]|^    ' <<<"$out" | head -20
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -1)
    if [ -z "$line" ]; then
        echo "$t: no result line (exit $rc)"
        tail -5 <<<"$out"
        fail=$((fail + 1))
        continue
    fi
    p=${line%% passed*}
    f=${line#*, }
    f=${f%% failed}
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    echo "$t (portable build): $line"
    pass=$((pass + p))
    fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
