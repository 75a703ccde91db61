#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2086 # ok/bad always succeed; $CHECK/$FAULT are "python3 script"
# test_faults.sh - injected faults on tests/mpi/fault.ini, each with its exact
# message and exit status, and nothing finished lost:
#   a corrupt map cell (checksum), the results file's disk full (tmpfs),
#   a truncated or corrupted results file, a model with NaN weights, models
#   whose input size or channels do not fit the job, model files that crash
#   HDF5 (a corrupt string heap, a dying probe), unreadable images, a rank
#   out of memory (ulimit -v; also no room for OpenBLAS's buffer), a damaged
#   /status read by info, SIGKILL of the root in the map phase, in the
#   pair phase and half-way through /summary (SALCHECK_FAILPOINT).
# After each fault that leaves a partial file, --resume must equal the clean run.
set -u
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/mpi/lib.sh
. tests/mpi/lib.sh
CHECK="$PY $ROOT/tests/mpi/check_results.py"
FAULT="$PY $ROOT/tests/mpi/fault_check.py"
work=$ROOT/$BUILD/test-faults
mnt=$work/full
mkdir -p "$work" "$mnt" && cd "$work" || exit 2
mountpoint -q "$mnt" && umount "$mnt"
rm -rf ./*.h5 ./*.log ./*.npz badimg trunc big && cp "$ROOT/tests/mpi/fault.ini" . || exit 2
trap 'mountpoint -q "$mnt" && umount "$mnt"' EXIT
skip() { echo "[SKIP] $1"; }
expect() { # name, expected status, log, fixed string: the status and the message
    local name=$1 want=$2 log=$3 msg=$4 got=$5
    if [ "$got" -eq "$want" ] && grep -qF -- "$msg" "$log"; then ok "$name: exit $got, '$msg'"
    else bad "$name: exit $got (expected $want), message '$msg' $(grep -qF -- "$msg" "$log" && echo found || echo missing)"; grep -v '^|' "$log" | tail -4 | sed 's/^/    /'; fi
}
with_job() { # out.ini, python edit of the job text (variable s)
    "$PY" -c "import sys; s=open('fault.ini').read(); $2; open('$1','w').write(s)"
}
model_section() { # file: the [model.A] section replaced by an existing model file
    with_job "$1.ini" "a=s.index('[model.A]'); b=s.index('[experiments]'); s=s[:a]+'[model.A]\nfile = $2\n\n'+s[b:]"
}

if ! $PY -c 'import h5py, numpy' 2>/dev/null; then
    echo "[SKIP] python3-h5py missing for $PY: the fault checks read the files with it"; echo "0 passed, 1 failed"; exit 1
fi

# the clean run (trains the model, cached in models/)
"$SALCHECK" run fault.ini --out clean.h5 --progress 0 > clean.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && ok "clean run" || { bad "clean run (exit $rc)"; tail -5 clean.log; }
py_check "every cell's /status/checksum equals Python's zlib.crc32 of its stored bytes" $FAULT checksums clean.h5
"$SALCHECK" info clean.h5 --verify > info.log 2>&1; rc=$?
expect "info --verify on the clean file" 0 info.log "checksums: 21 finished cells verified" $rc
grep -q ", 0 corrupt" info.log && ok "no corrupt cell in the clean file" || bad "clean file reported corrupt"

# 1. silent corruption of one stored map: found by info --verify and by --resume
cp clean.h5 corrupt.h5
cell=$($FAULT corrupt corrupt.h5 1 2)   # variant 1, image 2: prints "VARIANT IMAGE"
variant=${cell% *}; image=${cell#* }
"$SALCHECK" info corrupt.h5 --verify > verify.log 2>&1; rc=$?
expect "info --verify finds the corrupt cell" 1 verify.log "corrupt: cell (variant $variant, image $image) does not match its checksum" $rc
"$SALCHECK" run fault.ini --out corrupt.h5 --resume --progress 0 > corrupt.log 2>&1; rc=$?
expect "--resume reports the corrupt cell and computes it again" 0 corrupt.log "'corrupt.h5': cell (variant $variant, image $image) does not match its checksum (the stored data is corrupt): it is computed again" $rc
py_check "the repaired file equals the clean run" $CHECK equal clean.h5 corrupt.h5

# 1b. salcheck info on a damaged /status: a 3-D done-flag dataset, a planned
# dataset of another shape (info read them into a fixed 2-D shape before)
cp clean.h5 dims3.h5 && cp clean.h5 dims2.h5 && "$PY" - <<'EOF'
import h5py, numpy as np
with h5py.File("dims3.h5", "r+") as f:
    v, n = f["status/done"].shape
    del f["status/done"]
    f["status/done"] = np.ones((v, n, 3), dtype=np.uint8)
with h5py.File("dims2.h5", "r+") as f:
    v, n = f["status/planned"].shape
    del f["status/planned"]
    f["status/planned"] = np.ones((v + 5, n), dtype=np.uint8)
EOF
"$SALCHECK" info dims3.h5 > dims3.log 2>&1; rc=$?
expect "info on a 3-D /status/done" 1 dims3.log "the /status group is missing or unreadable" $rc
"$SALCHECK" info dims2.h5 > dims2.log 2>&1; rc=$?
expect "info on /status/planned of another shape" 1 dims2.log "differ in shape: the file is damaged" $rc

# 2. the results file's disk fills up during a 2-rank run
if mount -t tmpfs -o size=256k tmpfs "$mnt" 2>/dev/null; then
    $MPIRUN -np 2 "$SALCHECK" run fault.ini --out "$mnt/full.h5" --progress 0 > full.log 2>&1; rc=$?
    expect "disk full: clear error" 1 full.log "cannot write the maps of cell" $rc
    grep -qF "No space left on device" full.log && ok "disk full: the reason is named (No space left on device)" || bad "disk full: reason"
    grep -qF "the results file cannot be written (see above): this rank takes no more items; finished cells are kept. Free space or fix the file system, then continue with --resume" full.log \
        && ok "disk full: the run stops and says how to continue" || bad "disk full: stop message"
    $CHECK snapshot "$mnt/full.h5" full.npz > /dev/null 2>&1
    mount -o remount,size=8m "$mnt"
    "$SALCHECK" run fault.ini --out "$mnt/full.h5" --resume --progress 0 > full2.log 2>&1; rc=$?
    [ "$rc" -eq 0 ] && ok "disk full: --resume after space is freed" || { bad "disk full: resume (exit $rc)"; tail -3 full2.log; }
    py_check "disk full: cells finished before the disk filled were kept" $CHECK kept "$mnt/full.h5" full.npz
    py_check "disk full: the resumed run equals the clean run" $CHECK equal clean.h5 "$mnt/full.h5"
    umount "$mnt"
else
    skip "disk full: mount -t tmpfs is not permitted here (needs root with CAP_SYS_ADMIN)"
fi

# 3. a truncated and a corrupted results file: --resume refuses, the file is untouched
for kind in truncated zeroed; do
    cp clean.h5 $kind.h5
    if [ $kind = truncated ]; then truncate -s $(( $(stat -c %s clean.h5) / 2 )) $kind.h5
    else dd if=/dev/zero of=$kind.h5 bs=96 count=1 conv=notrunc 2>/dev/null; fi
    sum=$(md5sum < $kind.h5)
    "$SALCHECK" run fault.ini --out $kind.h5 --resume --progress 0 > $kind.log 2>&1; rc=$?
    expect "$kind results file: --resume refused" 1 $kind.log "cannot open results file '$kind.h5' to resume: it is not a readable HDF5 file (truncated or corrupted?). It was left untouched; move it away, or run with --force instead of --resume to start the run again" $rc
    [ "$(md5sum < $kind.h5)" = "$sum" ] && ok "$kind results file: not modified without --force" || bad "$kind file modified"
done
"$SALCHECK" run fault.ini --out truncated.h5 --force --progress 0 > force.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && ok "--force starts the run again over the truncated file" || bad "--force over a truncated file (exit $rc)"
py_check "the run over the truncated file equals the clean run" $CHECK equal clean.h5 truncated.h5

# 4. models that cannot be used: NaN weights, input size, input channels
cp models/A.h5 nan.h5 && cp models/A.h5 onech.h5 && cp "$ROOT/tests/fuzz/corpus/modelfile/tiny.h5" tiny16.h5
"$PY" - <<'EOF'
import h5py, numpy as np
with h5py.File("nan.h5", "r+") as f:
    d = f["weights/block1.a.conv/weight"]
    w = d[()]; w.flat[5] = np.inf; w.flat[7] = np.nan; d[...] = w
with h5py.File("onech.h5", "r+") as f:   # a consistent 2-channel model of the same net
    f.attrs["input_c"] = np.bytes_(b"2")
    w = f["weights/block1.a.conv/weight"][()]
    del f["weights/block1.a.conv/weight"]
    f["weights/block1.a.conv/weight"] = w[:, :2]
EOF
model_section nan nan.h5; model_section tiny16 tiny16.h5; model_section onech onech.h5
"$SALCHECK" run nan.ini --out nan_out.h5 --progress 0 > nan.log 2>&1; rc=$?
expect "model with NaN/Inf weights refused" 1 nan.log "'nan.h5': /weights/block1.a.conv/weight holds 2 NaN or infinite values (the first at index 5): the model is unusable" $rc
"$SALCHECK" run tiny16.ini --out tiny_out.h5 --progress 0 > tiny.log 2>&1; rc=$?
expect "model input size differs from the job" 1 tiny.log "tiny16.ini:19: model 'A' takes 16x16 inputs, the job's [data] size is 48" $rc
"$SALCHECK" run onech.ini --out onech_out.h5 --progress 0 > onech.log 2>&1; rc=$?
expect "model input channels differ from the job" 1 onech.log "onech.ini:19: model 'A' takes 2-channel inputs; salcheck feeds 1 or 3 channels" $rc
[ ! -e nan_out.h5 ] && [ ! -e tiny_out.h5 ] && [ ! -e onech_out.h5 ] && ok "no results file made for an unusable model" || bad "results file made for an unusable model"

# 4b. damaged model files HDF5 itself mishandles: a corrupt string heap behind
# /graph (read without HDF5, every length checked), and a file whose structure
# crashes the HDF5 library (the forked probe dies: SALCHECK_FAILPOINT modelprobe:0)
cp "$ROOT/tests/fuzz/corpus/modelfile/hdf5-vlen-read-oom.h5" heap.h5 && model_section heap heap.h5
"$SALCHECK" run heap.ini --out heap_out.h5 --progress 0 > heap.log 2>&1; rc=$?
expect "model with a corrupt string heap refused" 1 heap.log "'heap.h5': /graph[0] declares 2684354560 bytes (at most 65536 expected; the file is damaged)" $rc
SALCHECK_FAILPOINT=modelprobe:0 "$SALCHECK" run fault.ini --out probe_out.h5 --progress 0 > probe.log 2>&1; rc=$?
expect "model file that crashes HDF5 refused" 1 probe.log "model file 'models/A.h5' is damaged: the HDF5 library crashed reading its structure (Killed); it was not used" $rc
[ ! -e heap_out.h5 ] && [ ! -e probe_out.h5 ] && ok "no results file made for a damaged model file" || bad "results file made for a damaged model file"

# 5. a job whose images are all unreadable: not PNGs (found at open), or truncated (found per cell)
cp -r phantom badimg && for f in badimg/images/*.png; do echo "not a png" > "$f"; done
cp -r phantom trunc && for f in trunc/images/*.png; do truncate -s 60 "$f"; done
with_job badimg.ini "s=s.replace('dir = phantom', 'dir = badimg')"
with_job trunc.ini "s=s.replace('dir = phantom', 'dir = trunc')"
"$SALCHECK" run badimg.ini --out badimg.h5 --progress 0 > badimg.log 2>&1; rc=$?
expect "all images not images: refused before computing" 1 badimg.log "badimg/labels.csv:4: image 'badimg/images/phantom-000002.png' of 'phantom-000002': not a PNG, JPEG or DICOM image (the first bytes match none of their signatures)" $rc
[ ! -e badimg.h5 ] && ok "no results file made for unreadable images" || bad "results file made for unreadable images"
# 21 cells in 9 work items: the cascading states of a model share one item per image block (cascade_reuse)
"$SALCHECK" run trunc.ini --out trunc.h5 --progress 0 > trunc.log 2>&1; rc=$?
expect "all images truncated: every item fails" 1 trunc.log "9 work items failed (see the errors above); their cells are not done. Fix the cause and continue with --resume" $rc
grep -qF "image 'trunc/images/phantom-000045.png': corrupt or truncated PNG" trunc.log && ok "the truncated image is named" || bad "truncated image named"
[ "$($FAULT "done" trunc.h5)" = "0 0" ] && ok "no cell marked done from a truncated image" || bad "cells marked done from truncated images"

# 6. a rank out of memory: one image too large for the address-space limit of every rank
cp -r phantom big && "$PY" - <<'EOF'
import struct, zlib
def chunk(k, d):
    b = k + d
    return struct.pack(">I", len(d)) + b + struct.pack(">I", zlib.crc32(b) & 0xffffffff)
w = h = 12000  # 12000 x 12000 gray: 687 MB to decode
row = b"\x00" + bytes((x // 250 * 37) % 256 for x in range(w))
comp = zlib.compressobj(9)
data = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
with open("big/images/phantom-000119.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", data) + chunk(b"IEND", b""))
EOF
with_job big.ini "s=s.replace('dir = phantom', 'dir = big')"
"$SALCHECK" run big.ini --out bigclean.h5 --progress 0 > bigclean.log 2>&1 || { bad "clean run with the large image"; tail -3 bigclean.log; }
$MPIRUN -np 2 bash -c "ulimit -v 1000000; exec $SALCHECK run big.ini --out oom.h5 --progress 0" > oom.log 2>&1; rc=$?
expect "rank out of memory: the image and the need are named" 1 oom.log "error: image 'big/images/phantom-000119.png': out of memory: 12000x12000 pixels need 687 MB to decode" $rc
grep -qE "\[rank [01]\] error: cell \(variant A, image phantom-000119\) not computed; rerun with --resume" oom.log \
    && ok "rank out of memory: the rank and the cell are named" || { bad "rank and cell named"; grep error oom.log | head -3; }
"$SALCHECK" run big.ini --out oom.h5 --resume --progress 0 > oom2.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && ok "out of memory: --resume without the limit" || bad "out of memory: resume (exit $rc)"
py_check "out of memory: the resumed run equals the clean run" $CHECK equal bigclean.h5 oom.h5

# 6b. an address-space limit without room for OpenBLAS's work buffer: OpenBLAS
# itself would retry its mmap forever; salcheck stops at start-up and says why
$MPIRUN -np 2 bash -c "ulimit -v 300000; exec timeout 120 $SALCHECK run fault.ini --out blas.h5 --progress 0" > blas.log 2>&1; rc=$?
expect "no room for OpenBLAS's buffer: stops at once, no hang" 1 blas.log "leaves no room for OpenBLAS's work buffer" $rc
grep -qE "ulimit -v 300000 kB\) leaves no room for OpenBLAS's work buffer: [0-9]+ MB mapped, 128 MB more needed" blas.log \
    && ok "no room for OpenBLAS's buffer: the limit, the use and the need are named" || bad "OpenBLAS buffer message"
[ ! -e blas.h5 ] && ok "no results file made when OpenBLAS has no room" || bad "results file made without room for OpenBLAS"

# 7. SIGKILL of the root: after a cell's data but before its done flag, in the
# pair phase (1 rank: the root computes everything), half-way through /summary (2 ranks)
SALCHECK_FAILPOINT=cell:7 "$SALCHECK" run fault.ini --out kcell.h5 --progress 0 > kcell.log 2>&1; rc=$?
expect "root killed in the map phase" 137 kcell.log "failpoint cell:7: killed" $rc
$CHECK snapshot kcell.h5 kcell.npz > /dev/null 2>&1
$MPIRUN -np 2 "$SALCHECK" run fault.ini --out kcell.h5 --resume --progress 0 > kcell2.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && ok "resume after the root was killed in the map phase (2 ranks)" || bad "resume after map-phase kill (exit $rc)"
py_check "map-phase kill: finished cells kept" $CHECK kept kcell.h5 kcell.npz
py_check "map-phase kill: the resumed run equals the clean run" $CHECK equal clean.h5 kcell.h5

SALCHECK_FAILPOINT=pair:10 "$SALCHECK" run fault.ini --out kpair.h5 --progress 0 > kpair.log 2>&1; rc=$?
expect "root killed in the pair phase" 137 kpair.log "failpoint pair:10: killed" $rc
[ "$($FAULT "done" kpair.h5)" = "21 11" ] && ok "pair-phase kill: every cell and the first 11 pairs were done" || bad "pair-phase kill: done counts $($FAULT "done" kpair.h5)"
"$SALCHECK" run fault.ini --out kpair.h5 --resume --progress 0 > kpair2.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && grep -qF "21 cells (21 done)" kpair2.log && ok "resume after the pair-phase kill recomputes no cell" || bad "resume after pair-phase kill (exit $rc)"
py_check "pair-phase kill: the resumed run equals the clean run" $CHECK equal clean.h5 kpair.h5

SALCHECK_FAILPOINT=summary:0 $MPIRUN -np 2 "$SALCHECK" run fault.ini --out ksum.h5 --progress 0 > ksum.log 2>&1; rc=$?
expect "root killed half-way through /summary (2 ranks)" 137 ksum.log "failpoint summary:0: killed" $rc
"$SALCHECK" run fault.ini --out ksum.h5 --resume --progress 0 > ksum2.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && ok "resume after the summary kill" || { bad "resume after summary kill (exit $rc)"; tail -3 ksum2.log; }
py_check "summary kill: the resumed run equals the clean run" $CHECK equal clean.h5 ksum.h5
same=1; for t in metrics pairs sanity; do h5diff -q clean.h5 ksum.h5 /summary/$t /summary/$t > /dev/null 2>&1 || same=0; done
[ "$same" -eq 1 ] && ok "summary kill: /summary equals the clean run's (h5diff)" || bad "summary tables differ"

finish
