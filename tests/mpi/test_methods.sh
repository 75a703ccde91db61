#!/usr/bin/env bash
# shellcheck disable=SC2086 # $CHECK is "python3 script"
# test_methods.sh - the peers' saliency methods (Score-CAM, LayerCAM, HiResCAM,
# XGrad-CAM, Eigen-CAM, RISE, Expected Gradients, LRP, DeepLIFT) in a
# distributed audit
# (tests/mpi/peers.ini): each method gets its rows in the utility and the
# cascading-randomization tables, the maps, metrics and pairs are identical
# with 1, 2 and 3 ranks, and the stored AUPRC and SSIM equal sklearn/skimage
# on the stored maps.
set -u
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/mpi/lib.sh
. tests/mpi/lib.sh
CHECK="$PY $ROOT/tests/mpi/check_results.py"
work=$ROOT/$BUILD/test-methods
rm -rf "$work/p"*.h5 && mkdir -p "$work" && cp tests/mpi/peers.ini "$work/" && cd "$work" || exit 2
methods="scorecam layercam hirescam xgradcam eigencam rise eg lrp deeplift"

if "$SALCHECK" run peers.ini --out p1.h5 --progress 0 > p1.log 2>&1; then ok "1-rank run"; else bad "1-rank run"; tail -20 p1.log; fi
# A table's rows: the lines between its heading and the next heading.
table() { awk -v h="$1" '/^## /{on = index($0, h) > 0} on' p1.log; }
for m in $methods; do
    table "Localization utility" | grep -q "^| $m | [0-9]" && u=1 || u=0
    table "Cascading randomization" | grep -Eq "^\| $m \| [0-9.]+ \|.*\| (yes|\*\*no\*\*) \|$" && c=1 || c=0
    [ $u -eq 1 ] && [ $c -eq 1 ] && ok "$m has its utility and cascading rows" \
        || { bad "$m rows (utility $u, cascading $c)"; table "Localization utility" | head -15; }
done
for n in 2 3; do
    if $MPIRUN -np $n "$SALCHECK" run peers.ini --out p$n.h5 --progress 0 > p$n.log 2>&1; then ok "$n-rank run"; else bad "$n-rank run"; tail -20 p$n.log; fi
    py_check "1 rank and $n ranks give identical maps, metrics and pairs" $CHECK equal p1.h5 p$n.h5
done
py_check "stored AUPRC and SSIM equal sklearn/skimage on the stored maps" $CHECK honest p1.h5
# The maps are maps: defined (not NaN) on the trained model and not all alike.
out=$($PY - p1.h5 $methods <<'PYEOF' 2>&1
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
names = [n.decode() if isinstance(n, bytes) else n for n in f["methods/name"][()]]
bad = 0
for m in sys.argv[2:]:
    maps = f["maps/" + m][0]  # variant 0: the trained model A
    nan = np.isnan(maps).any(axis=(1, 2))
    spread = np.nanstd(maps.reshape(maps.shape[0], -1), axis=1)
    if nan.any() or not (spread > 0.01).all():
        print("%s: %d undefined maps, spreads %s" % (m, nan.sum(), spread)); bad += 1
    print("%-9s mean AUPRC on A %.3f" % (m, np.nanmean(f["metrics/auprc"][names.index(m), 0])))
sys.exit(bad)
PYEOF
); rc=$?
echo "$out" | sed 's/^/    /'
[ $rc -eq 0 ] && ok "every peer map of the trained model is defined and not flat" || bad "peer maps defined"
# The LRP and DeepLIFT options in force are stored with the method parameters:
# the job's composite, the defaults for the rest.
out=$($PY - p1.h5 <<'PYEOF' 2>&1
import sys, h5py
f = h5py.File(sys.argv[1], "r")
text = f["methods"].attrs["params"]
text = text.decode() if isinstance(text, bytes) else text
want = ["lrp.composite = epsilon_gamma_box", "lrp.first = zbox", "lrp.conv = gamma",
        "lrp.dense = epsilon", "lrp.epsilon = 1e-06", "lrp.gamma = 0.25",
        "lrp.low = normalization", "deeplift.baseline = black"]
missing = [w for w in want if w not in text.splitlines()]
print("missing: %s" % missing if missing else "all found")
sys.exit(1 if missing else 0)
PYEOF
); rc=$?
[ $rc -eq 0 ] && ok "lrp and deeplift options stored with the parameters" || { bad "lrp/deeplift options ($out)"; }
finish
