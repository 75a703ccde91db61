#!/usr/bin/env bash
# shellcheck disable=SC2086 # $CHECK is "python3 script"
# test_run.sh - the distributed audit end to end on tests/mpi/small.ini:
# determinism with 1, 2 and 3 ranks; the file read back with h5py and h5dump;
# AUPRC and SSIM recomputed from the stored maps with sklearn/skimage; a rank
# killed with SIGKILL and the run resumed with another rank count; a graceful
# stop with SIGUSR1; job file mistakes reported with their line.
set -u
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/mpi/lib.sh
. tests/mpi/lib.sh
CHECK="$PY $ROOT/tests/mpi/check_results.py"
work=$ROOT/$BUILD/test-run
rm -rf "$work"/*.h5 "$work/bad" && mkdir -p "$work" && cp tests/mpi/small.ini "$work/" && cd "$work" || exit 2

if ! $PY -c 'import h5py, numpy, sklearn, skimage' 2>/dev/null; then
    echo "[SKIP] python3-h5py/sklearn/skimage missing for $PY: the result checks need them"
fi

# 1 rank (trains the four small models first, cached in models/)
if "$SALCHECK" run small.ini --out r1.h5 --progress 0 > r1.log 2>&1; then ok "1-rank run"; else bad "1-rank run"; tail -20 r1.log; fi
grep -q 'Localization utility' r1.log && grep -q 'Cascading randomization' r1.log && grep -q 'Repeatability' r1.log \
    && grep -q 'Reproducibility' r1.log && grep -q 'Label randomization' r1.log \
    && ok "tables printed (utility, cascading, label, repeatability, reproducibility)" || bad "tables printed"
for n in 2 3; do
    if $MPIRUN -np $n "$SALCHECK" run small.ini --out r$n.h5 --progress 0 > r$n.log 2>&1; then ok "$n-rank run"; else bad "$n-rank run"; tail -20 r$n.log; fi
    py_check "1 rank and $n ranks give identical maps, metrics and pairs" $CHECK equal r1.h5 r$n.h5
done
py_check "file read back with h5py as a user would" $CHECK schema r1.h5
py_check "stored AUPRC and SSIM equal sklearn/skimage on the stored maps" $CHECK honest r1.h5
if h5dump -H r1.h5 > /dev/null 2>&1 && h5dump -d /metrics/auprc r1.h5 | grep -q DATASPACE; then ok "h5dump reads the file"; else bad "h5dump reads the file"; fi

# SIGKILL one rank half-way, resume with 3 ranks
rm -f rk.h5
$MPIRUN -np 2 "$SALCHECK" run small.ini --out rk.h5 --progress 0.2 --rank-progress > rk.log 2>&1 &
mpipid=$!
# 6 items done: by rank 1's own lines, or by the root's progress line (when the ranks share
# one loaded core, rank 1 may finish few items of its own before the run ends)
for _ in $(seq 1 600); do
    [ "$(grep -c 'finished item' rk.log)" -ge 6 ] && break
    done_items=$(grep -Eo 'maps: [0-9]+/' rk.log | tail -1 | tr -dc 0-9)
    [ "${done_items:-0}" -ge 6 ] && break
    kill -0 $mpipid 2>/dev/null || break
    sleep 0.1
done
victim=$(pgrep -P $mpipid | head -1)
if [ -n "$victim" ]; then kill -9 "$victim"; echo "    killed rank process $victim after $(grep -c 'finished item' rk.log) finished items"; fi
wait $mpipid; krc=$?
[ "$krc" -ne 0 ] && ok "the killed run failed (exit $krc)" || bad "the killed run failed"
$CHECK snapshot rk.h5 before.npz
if $MPIRUN -np 3 "$SALCHECK" run small.ini --out rk.h5 --resume --progress 0 > rk2.log 2>&1; then ok "resume with 3 ranks"; else bad "resume with 3 ranks"; tail -20 rk2.log; fi
py_check "finished cells kept, nothing recomputed" $CHECK kept rk.h5 before.npz
py_check "resumed run equals the clean run" $CHECK equal r1.h5 rk.h5

# SIGUSR1: finish current items, flush, exit 3; then resume
rm -f ru.h5
"$SALCHECK" run small.ini --out ru.h5 --progress 0.2 --rank-progress > ru.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q 'maps: [1-9]' ru.log && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -USR1 $pid 2>/dev/null
wait $pid; urc=$?
[ "$urc" -eq 3 ] && ok "SIGUSR1 stops gracefully with status 3" || bad "SIGUSR1 stop status $urc (expected 3)"
grep -q -- '--resume' ru.log && ok "the stop message says how to resume" || bad "resume hint"
if "$SALCHECK" run small.ini --out ru.h5 --resume --progress 0 > ru2.log 2>&1; then ok "resume after SIGUSR1"; else bad "resume after SIGUSR1"; fi
py_check "resumed-after-signal run equals the clean run" $CHECK equal r1.h5 ru.h5

# SIGUSR1 to mpirun with 2 ranks: the worker finishes its item, hands back the
# one it holds ahead, and the resumed run (1 rank) equals the clean run
rm -f rv.h5
$MPIRUN -np 2 "$SALCHECK" run small.ini --out rv.h5 --progress 0.2 --rank-progress > rv.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q 'rank 1 finished item' rv.log && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -USR1 $pid 2>/dev/null
wait $pid; vrc=$?
[ "$vrc" -eq 3 ] && ok "SIGUSR1 to mpirun stops 2 ranks with status 3" || { bad "2-rank SIGUSR1 stop status $vrc (expected 3)"; tail -5 rv.log; }
if "$SALCHECK" run small.ini --out rv.h5 --resume --progress 0 > rv2.log 2>&1; then ok "resume with 1 rank after the 2-rank stop"; else bad "resume after the 2-rank stop"; fi
py_check "resumed-after-2-rank-signal run equals the clean run" $CHECK equal r1.h5 rv.h5

# an existing output is not overwritten by accident
"$SALCHECK" run small.ini --out r1.h5 > exists.log 2>&1 && bad "existing output overwritten" \
    || { grep -q -- '--resume' exists.log && ok "existing output refused with a hint"; }

# job file mistakes: line numbers, nothing computed
mkdir -p bad
sed 's/^sg.samples = 4/sg.sampels = 4/; s/^kind = phantom/kind = phantome/; s/^arch = demoresnet/arch = demoresnet\nepoch = 3/' small.ini > bad/typo.ini
out=$("$SALCHECK" run bad/typo.ini --out bad/x.h5 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ ! -e bad/x.h5 ] && ok "a bad job fails before computing (exit $rc)" || bad "bad job"
echo "$out" | grep -q "typo.ini:[0-9]*: kind = 'phantome' is not one of" && ok "bad value named with its line" || { bad "bad value line"; echo "$out"; }
echo "$out" | grep -q "typo.ini:[0-9]*: unknown key 'epoch' in \[model.C\]" && ok "unknown key named with its line" || { bad "unknown key line"; echo "$out"; }
sed 's/^sg.samples = 4/sg.sampels = 4/' small.ini > bad/param.ini
out=$("$SALCHECK" run bad/param.ini --out bad/y.h5 2>&1)
echo "$out" | grep -q "param.ini:[0-9]*: method 'sg' has no parameter 'sampels'" && ok "unknown method parameter named with its line" || { bad "unknown method parameter"; echo "$out" | tail -3; }
printf '[job]\nseed = 1\n[data]\nkind = rsna\ndir = /nonexistent\n[model.A]\nfile = missing.h5\n[experiments]\nutility = A, Z\n[methods]\nlist = grad, gradcam\n' > bad/missing.ini
out=$("$SALCHECK" run bad/missing.ini 2>&1)
echo "$out" | grep -q "missing.ini:7: \[model.A\] file 'missing.h5' does not exist" && echo "$out" | grep -q "no \[model.Z\] section" \
    && echo "$out" | grep -q "dir '/nonexistent' does not exist" && ok "missing files and unknown models reported together" || { bad "missing files"; echo "$out"; }

# OpenBLAS's kernels (nn/blas_core.h): where OpenBLAS took a set weaker than the
# CPU's (it does not know a newer CPU), salcheck restarts itself with
# OPENBLAS_CORETYPE set, says so, and computes what a pinned run computes.
core=$(env -u OPENBLAS_CORETYPE "$SALCHECK" --blas-core)
img=$(find phantom -name '*.png' | sort | head -1)
xp() { "$SALCHECK" explain --model models/A.h5 --image "$img" --method grad,gcam "$@"; }
env -u OPENBLAS_CORETYPE -u SALCHECK_BLAS_CORE "$SALCHECK" explain --model models/A.h5 --image "$img" \
    --method grad,gcam --out blas-own > blas-own.log 2>&1 || bad "explain with OpenBLAS's own kernels"
if [ -n "$core" ]; then
    grep "restarted with OPENBLAS_CORETYPE=$core" blas-own.log | grep -q "OpenBLAS now runs $core" \
        && ok "restarted with OPENBLAS_CORETYPE=$core, and OpenBLAS runs it" \
        || { bad "restart with OPENBLAS_CORETYPE=$core not reported"; tail -3 blas-own.log; }
    OPENBLAS_CORETYPE=$core xp --out blas-pin > blas-pin.log 2>&1
    py_check "the restarted explain equals one pinned to $core" $CHECK maps-equal blas-own.h5 blas-pin.h5
    env -u OPENBLAS_CORETYPE -u SALCHECK_BLAS_CORE $MPIRUN -np 2 "$SALCHECK" run small.ini --out blas-r2.h5 \
        --progress 0 > blas-r2.log 2>&1 || bad "2-rank run with OpenBLAS's own kernels"
    [ "$(grep -c "restarted with OPENBLAS_CORETYPE=$core" blas-r2.log)" -eq 1 ] \
        && ok "2 ranks under mpirun restart before MPI starts (reported once)" || { bad "2-rank restart"; tail -3 blas-r2.log; }
    py_check "the restarted 2-rank run equals the pinned one" $CHECK equal r2.h5 blas-r2.h5
    env -u OPENBLAS_CORETYPE SALCHECK_BLAS_CORE=keep "$SALCHECK" explain --model models/A.h5 --image "$img" \
        --method grad --out blas-keep > blas-keep.log 2>&1 && ! grep -q restarted blas-keep.log \
        && ok "SALCHECK_BLAS_CORE=keep: no restart" || bad "SALCHECK_BLAS_CORE=keep"
else
    grep -q restarted blas-own.log && bad "restart where OpenBLAS's own kernels fit the CPU" \
        || ok "no restart: OpenBLAS's own kernels ($(grep -c . blas-own.log) log lines) fit the CPU"
fi

finish
