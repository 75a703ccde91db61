#!/usr/bin/env bash
# ok and bad always succeed, so "cond && ok || bad" reads as if-then-else here.
# shellcheck disable=SC2015
# test_phantom_mpi.sh - `salcheck phantom` writes byte-identical data sets on 1
# and 2 ranks (RSNA and SIIM formats), different ones for another seed, and
# rejects bad options. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
SALCHECK=${SALCHECK:-$BUILD/salcheck}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
pass=0; fail=0
ok() { echo "[ok]   $1"; pass=$((pass+1)); }
bad() { echo "[FAIL] $1"; fail=$((fail+1)); }

if [ ! -x "$SALCHECK" ]; then
    echo "[FAIL] $SALCHECK not built"; echo "0 passed, 1 failed"; exit 1
fi
mkdir -p "$BUILD"
work=$(mktemp -d "$BUILD/tmp-test-phantom-mpi-XXXXXX")
trap 'rm -rf "$work"' EXIT

for fmt in rsna siim; do
    args=(--count 23 --size 96 --seed 9 --format "$fmt")
    if "$SALCHECK" phantom --out "$work/$fmt-1" "${args[@]}" 2>"$work/log1" &&
       mpirun -np 2 --oversubscribe "$SALCHECK" phantom --out "$work/$fmt-2" "${args[@]}" 2>"$work/log2"; then
        ok "$fmt: 1 and 2 ranks ran"
    else
        bad "$fmt: a run failed"; cat "$work/log1" "$work/log2"
    fi
    n1=$(find "$work/$fmt-1/images" -name '*.png' 2>/dev/null | wc -l)
    [ "$n1" -eq 23 ] && ok "$fmt: 23 images written" || bad "$fmt: $n1 images written, expected 23"
    if diff -r "$work/$fmt-1" "$work/$fmt-2" >/dev/null 2>&1; then
        ok "$fmt: 1-rank and 2-rank outputs are byte-identical"
    else
        bad "$fmt: 1-rank and 2-rank outputs differ"; diff -rq "$work/$fmt-1" "$work/$fmt-2" | head -5
    fi
done

head -1 "$work/rsna-1/labels.csv" | grep -qx 'patientId,x,y,width,height,Target' &&
    ok "rsna: labels.csv header" || bad "rsna: labels.csv header"
head -1 "$work/siim-1/train-rle.csv" | grep -qx 'ImageId, EncodedPixels' &&
    ok "siim: train-rle.csv header" || bad "siim: train-rle.csv header"
[ "$(wc -l < "$work/rsna-1/splits.csv")" -eq 24 ] && ok "splits.csv has 23 rows" || bad "splits.csv rows"

mpirun -np 2 --oversubscribe "$SALCHECK" phantom --out "$work/other" --count 23 --size 96 --seed 10 2>/dev/null
same=0
for f in "$work"/rsna-1/images/*.png; do
    cmp -s "$f" "$work/other/images/$(basename "$f")" && same=$((same+1))
done
[ "$same" -eq 0 ] && ok "another seed gives different images" || bad "$same images equal across seeds"

"$SALCHECK" phantom --help | grep -q -- '--positive-fraction' && ok "--help" || bad "--help"
if "$SALCHECK" phantom --out "$work/x" --count 5 --size 8 2>"$work/err"; then
    bad "--size 8 accepted"
else
    grep -q -- '--size' "$work/err" && ok "--size 8 rejected with a message" || bad "--size 8 message"
fi
if "$SALCHECK" phantom --out "$work/x" --count 5 --format dicom 2>"$work/err"; then
    bad "--format dicom accepted"
else
    grep -q 'rsna, siim, nih, vindr or chexlocalize' "$work/err" && ok "--format dicom rejected with a message" || bad "--format message"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
