#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2086 # ok/bad always succeed: "cond && ok || bad" is if-then-else here; $CHECK is "python3 script"
# test_checks_mpi.sh - the checks beyond the paper inside the distributed audit
# (tests/mpi/checks.ini): identical maps, metrics and pairs with 1, 2 and 3
# ranks; a run stopped by SIGUSR1 and resumed equals the clean run;
# sparseness, complexity and eMPRT recomputed from the stored maps with
# numpy/scipy; every check parameter stored; bottom-up states planned beside
# the top-down ones; a bad check parameter named with its line. The model
# checks themselves are compared with PyTorch in tests/unit/test_checks.c.
set -u
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/mpi/lib.sh
. tests/mpi/lib.sh
CHECK="$PY $ROOT/tests/mpi/check_results.py"
work=$ROOT/$BUILD/test-checks
rm -rf "$work/c"*.h5 "$work/bad" && mkdir -p "$work" && cp tests/mpi/checks.ini "$work/" && cd "$work" || exit 2
if ! $PY -c 'import h5py, numpy, scipy' 2>/dev/null; then
    echo "[SKIP] python3-h5py/numpy/scipy missing for $PY: the result checks need them"
fi

if "$SALCHECK" run checks.ini --out c1.h5 --progress 0 > c1.log 2>&1; then ok "1-rank run with every check"; else bad "1-rank run"; tail -20 c1.log; fi
grep -q 'up1:' c1.log && grep -q '1:' c1.log && ok "bottom-up states beside the top-down ones" || bad "bottom-up states in the tables"
grep -q 'eMPRT: method grad, scott rule' c1.log && ok "eMPRT's bin count logged per method" || bad "eMPRT bin count log"
# the resolved bin counts are stored: /methods attribute emprt_bins [M], equal to the logged counts
$PY - c1.h5 c1.log <<'PYEOF2' && ok "eMPRT's resolved bin counts stored as /methods emprt_bins, equal to the log" || bad "emprt_bins attribute"
import re, sys, h5py
f = h5py.File(sys.argv[1], "r")
names = [x.decode() if isinstance(x, bytes) else x for x in f["methods/name"][()]]
stored = dict(zip(names, (int(b) for b in f["methods"].attrs["emprt_bins"])))
logged = {m: int(b) for m, b in re.findall(r"eMPRT: method (\S+), scott rule over \d+ original maps: (\d+) bins", open(sys.argv[2]).read())}
assert len(stored) == len(names) and logged and all(stored[m] == b for m, b in logged.items()), (stored, logged)
assert len(set(stored.values())) >= 1 and min(stored.values()) >= 2, stored
PYEOF2
# the summary printed at the end: the checks in their own section, not among the localization metrics
# (a section runs from its heading to the next heading or the end of the tables)
section() { awk -v h="$1" 'index($0, h) == 1 {on = 1; next} on && /^(## |salcheck: )/ {on = 0} on' c1.log; }
if section "## Checks beyond the paper on A" | grep -E "^\| method \|" | grep -q "sparseness.*\|" \
    && section "## Checks beyond the paper on A" | grep -E "^\| method \|" | grep -q "road_morf" \
    && ! section "## Other localization metrics" | grep -qE "sparseness|deletion|road_morf"; then
    ok "summary: the checks beyond the paper have their own section"
else bad "summary sections"; grep "^## " c1.log; fi
for n in 2 3; do
    if $MPIRUN -np $n "$SALCHECK" run checks.ini --out c$n.h5 --progress 0 > c$n.log 2>&1; then ok "$n-rank run"; else bad "$n-rank run"; tail -20 c$n.log; fi
    py_check "1 rank and $n ranks give identical maps, metrics (every check) and pairs" $CHECK equal c1.h5 c$n.h5
done
py_check "sparseness, complexity, eMPRT from the stored maps; parameters stored" $CHECK beyond c1.h5
$PY - c1.h5 <<'PYEOF' && ok "model checks defined and in range on the trained model" || bad "model check values"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
v = 0  # the trained model A
for name, lo, hi in [("deletion", 0, 1), ("insertion", 0, 1), ("road_morf", 0, 1), ("road_lerf", 0, 1),
                     ("random_logit", -1, 1), ("max_sensitivity", 0, 10), ("avg_sensitivity", 0, 10),
                     ("sparseness", 0, 1), ("complexity", 0, 20)]:
    x = f["metrics/" + name][:, v, :]
    assert np.isfinite(x).all() and (x >= lo).all() and (x <= hi).all(), (name, x)
# the stored curves hold the scores: ROAD's mean, deletion's trapezoid area
for name in ("road_morf", "road_lerf"):
    cv, val = f["curves/" + name][:, v, :, :], f["metrics/" + name][:, v, :]
    assert np.allclose(cv.mean(axis=2), val, rtol=0, atol=1e-12), name
cv, val = f["curves/deletion"][:, v, :, :], f["metrics/deletion"][:, v, :]
n = cv.shape[2] - 1
assert np.allclose((cv.sum(axis=2) - cv[..., 0] / 2 - cv[..., -1] / 2) / n, val, atol=1e-12)
assert np.allclose(cv[..., 0], f["curves/insertion"][:, v, :, -1], atol=1e-6), "deletion starts where insertion ends (x)"
mx, av = f["metrics/max_sensitivity"][()], f["metrics/avg_sensitivity"][()]
ok = np.isfinite(mx)
assert (mx[ok] >= av[ok] - 1e-12).all(), "max below mean"
PYEOF

# SIGUSR1 after the first items, then resume with 2 ranks
rm -f cu.h5
"$SALCHECK" run checks.ini --out cu.h5 --progress 0.2 --rank-progress > cu.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q 'maps: [1-9]' cu.log && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -USR1 $pid 2>/dev/null
wait $pid; urc=$?
[ "$urc" -eq 3 ] && ok "SIGUSR1 stops the run with checks (status 3)" || bad "SIGUSR1 stop status $urc (expected 3)"
if $MPIRUN -np 2 "$SALCHECK" run checks.ini --out cu.h5 --resume --progress 0 > cu2.log 2>&1; then ok "resume with 2 ranks"; else bad "resume"; tail -5 cu2.log; fi
py_check "resumed run equals the clean run" $CHECK equal c1.h5 cu.h5

# bad check parameters are named with their line
mkdir -p bad
sed 's/^deletion.steps = 12/deletion.steps = many/; s/^emprt.bins = scott/emprt.bins = sturgis/' checks.ini > bad/p.ini
out=$("$SALCHECK" run bad/p.ini --out bad/x.h5 2>&1); rc=$?
[ "$rc" -ne 0 ] && [ ! -e bad/x.h5 ] && echo "$out" | grep -q "p.ini:[0-9]*: deletion.steps = 'many'" \
    && echo "$out" | grep -q "p.ini:[0-9]*: emprt.bins = 'sturgis'" && ok "bad check parameters named with their line" \
    || { bad "bad check parameters"; echo "$out" | tail -4; }
sed 's/^road.percentages = 20, 50, 80/road.percentage = 20/' checks.ini > bad/q.ini
out=$("$SALCHECK" run bad/q.ini --out bad/y.h5 2>&1)
echo "$out" | grep -q "q.ini:[0-9]*: method 'road' has no parameter 'percentage'" && ok "unknown check parameter named" \
    || { bad "unknown check parameter"; echo "$out" | tail -3; }

finish
