#!/usr/bin/env bash
# shellcheck disable=SC2015 # ok/bad always succeed
# test_cascade.sh - a randomization's states in one work item (cascade_reuse):
# the maps, metrics and flags equal those of every state computed alone
# (cascade_reuse = no), bit for bit, on 1, 2 and 3 ranks; a rank killed
# after some of a group item's cells (SALCHECK_FAILPOINT) loses only the
# cells not flagged, and --resume on another rank count keeps the finished
# ones (their /status/seconds unchanged) and ends equal to the reference;
# with `memory_per_rank` set the states stay together and the maps the same.
set -u
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/mpi/lib.sh
. tests/mpi/lib.sh
CHECK="$PY $ROOT/tests/mpi/cascade_check.py"
work=$ROOT/$BUILD/test-cascade
mkdir -p "$work" && cd "$work" || exit 2
rm -f ./*.h5 ./*.log ./*.npz
cp "$ROOT/tests/mpi/cascade.ini" . || exit 2
"$PY" -c "s=open('cascade.ini').read(); s=s.replace('[experiments]\n', '[experiments]\ncascade_reuse = no\n'); open('alone.ini','w').write(s)"
if ! $PY -c 'import h5py, numpy' 2>/dev/null; then
    echo "[SKIP] python3-h5py missing for $PY"; echo "0 passed, 1 failed"; exit 1
fi

"$SALCHECK" run alone.ini --out alone.h5 --progress 0 > alone.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && ok "each state alone (cascade_reuse = no)" || { bad "alone run (exit $rc)"; tail -5 alone.log; }
for np in 1 2 3; do
    if [ "$np" -eq 1 ]; then "$SALCHECK" run cascade.ini --out r$np.h5 --progress 0 > r$np.log 2>&1; rc=$?
    else $MPIRUN -np $np "$SALCHECK" run cascade.ini --out r$np.h5 --progress 0 > r$np.log 2>&1; rc=$?; fi
    [ "$rc" -eq 0 ] && ok "states together, $np rank(s)" || { bad "$np ranks (exit $rc)"; tail -5 r$np.log; }
    py_check "states together on $np rank(s) equal each state alone, bit for bit" $CHECK same alone.h5 r$np.h5
done
grep -q "work items" r1.log && [ "$(grep -o '[0-9]* work items' r1.log | cut -d' ' -f1)" -lt \
    "$(grep -o '[0-9]* work items' alone.log | cut -d' ' -f1)" ] \
    && ok "fewer work items with the states together ($(grep -o '[0-9]* work items' r1.log))" \
    || bad "work items: $(grep -o '[0-9]* work items' r1.log) vs alone $(grep -o '[0-9]* work items' alone.log)"

# a per-rank memory budget keeps the states together (a smaller batch) with the same maps
"$PY" -c "s=open('cascade.ini').read(); s=s.replace('[job]\n', '[job]\nmemory_per_rank = 160M\n'); open('budget.ini','w').write(s)"
$MPIRUN -np 2 "$SALCHECK" run budget.ini --out budget.h5 --progress 0 > budget.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && grep -q "memory_per_rank .*: batch" budget.log && \
    [ "$(grep -o '[0-9]* work items' budget.log | cut -d' ' -f1)" = \
      "$(grep -o '[0-9]* work items' r1.log | cut -d' ' -f1)" ] \
    && ok "memory_per_rank keeps the states together ($(grep -o 'batch [0-9]*' budget.log | head -1), $(grep -o '[0-9]* work items' budget.log))" \
    || { bad "memory_per_rank run (exit $rc)"; tail -5 budget.log; }
py_check "states together under a budget equal each state alone, bit for bit" $CHECK same alone.h5 budget.h5

# killed after the first cells of a group item: variant 2 (the second top-down state), image 1
cell=$((2 * 3 + 1))
SALCHECK_FAILPOINT=cell:$cell "$SALCHECK" run cascade.ini --out kill.h5 --progress 0 > kill.log 2>&1; rc=$?
[ "$rc" -ne 0 ] && grep -q "failpoint cell:$cell" kill.log && ok "killed at cell $cell (exit $rc)" \
    || { bad "the kill did not happen (exit $rc)"; tail -3 kill.log; }
$CHECK done kill.h5 before.npz > /dev/null 2>&1 || bad "the killed file cannot be read"
$MPIRUN -np 2 "$SALCHECK" run cascade.ini --out kill.h5 --resume --progress 0 > resume.log 2>&1; rc=$?
[ "$rc" -eq 0 ] && ok "--resume on 2 ranks" || { bad "--resume (exit $rc)"; tail -5 resume.log; }
py_check "finished cells not computed again" $CHECK kept before.npz kill.h5
py_check "resumed file equals each state alone" $CHECK same alone.h5 kill.h5
finish
