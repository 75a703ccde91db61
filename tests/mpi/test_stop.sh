#!/usr/bin/env bash
# test_stop.sh - SIGTERM inside a long cell (tests/mpi/stop.ini: SmoothGrad of 1200
# samples in batches of 4, seconds per cell): the run stops at the next engine batch,
# long before the cell would end (Slurm's KillWait is 30 s by default), exits with
# status 3, writes nothing of the stopped cell, and --resume computes only the cells
# not done, giving the same file as a run never stopped.
# Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/mpi/lib.sh
CHECK="$PY $ROOT/tests/mpi/check_results.py"
FAULT="$PY $ROOT/tests/mpi/fault_check.py"
work=$ROOT/$BUILD/test-stop
mkdir -p "$work" && cd "$work" || exit 2
rm -f ./*.h5 ./*.log && cp "$ROOT/tests/mpi/stop.ini" . || exit 2
if ! $PY -c 'import h5py, numpy' 2>/dev/null; then
    echo "[SKIP] python3-h5py missing for $PY"; echo "0 passed, 1 failed"; exit 1
fi

# the clean run (it trains the model first), and the time of one cell
"$SALCHECK" run stop.ini --out clean.h5 --progress 0 > clean.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && ok "clean run" || { bad "clean run (exit $rc)"; tail -3 clean.log; finish; exit; }
cell=$($PY -c 'import h5py; f = h5py.File("clean.h5", "r"); print(max(f["status/seconds"][()].ravel()))')
echo "    one cell takes up to ${cell} s"

# SIGTERM a second into the first cell
"$SALCHECK" run stop.ini --out stop.h5 --progress 0 > stop.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do # the map phase has started once the plan line is out
    grep -q "salcheck: plan:" stop.log 2>/dev/null && break
    sleep 0.1
done
sleep 1
t0=$(date +%s.%N)
kill -TERM "$pid"
wait "$pid"; rc=$?
took=$($PY -c "import sys, time; print('%.2f' % (time.time() - float(sys.argv[1])))" "$t0")
echo "    stopped ${took} s after SIGTERM"
[ "$rc" -eq 3 ] && ok "SIGTERM: exit status 3" || { bad "SIGTERM: exit $rc"; tail -4 stop.log; }
$PY -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 * float(sys.argv[2]) else 1)" "$took" "$cell" &&
    ok "SIGTERM: stopped in ${took} s, under half a cell (${cell} s)" ||
    bad "SIGTERM: took ${took} s, a cell takes ${cell} s: the cell was not stopped"
grep -q "stopped unfinished; --resume computes it" stop.log &&
    ok "SIGTERM: the stopped cell is named" || bad "SIGTERM: no stopped cell in the log"
done_after=$($FAULT done stop.h5 | awk '{print $1}')
[ "${done_after:-9}" -lt 2 ] && ok "SIGTERM: the stopped cell is not done (${done_after} of 2 done)" ||
    bad "SIGTERM: ${done_after} of 2 cells done"

# --resume: only the cells not done
"$SALCHECK" run stop.ini --out stop.h5 --resume --progress 0 > resume.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && grep -qF "2 cells (${done_after} done)" resume.log &&
    ok "resume: exit 0, computes only the $((2 - done_after)) cell(s) not done" ||
    { bad "resume (exit $rc)"; grep "cells" resume.log | head -3; }
py_check "resume: the file equals the run never stopped" $CHECK equal clean.h5 stop.h5
finish
