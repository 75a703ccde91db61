#!/usr/bin/env bash
# shellcheck disable=SC2015 # ok/bad always succeed: "cond && ok || bad" is if-then-else here
# test_multilabel.sh - the example job jobs/xrv-pneumonia.ini (a multi-label model's
# "Pneumonia" output) with 1 and 2 ranks: the results file, read back with h5py,
# records the explained output per model (/models) and in every cell
# (/scores/target), and the maps are bit-identical across rank counts; salcheck
# info and the report show the explained output; a wrong or missing target and a
# resume with another target are refused with the job line. The model is the
# TorchXRayVision-style DenseNet-121 of tests/ref/xrv_torch_ref.py at 64 px
# (compared with PyTorch in tests/unit/test_xrv.c), imported with --labels and
# --normalize xrv.
set -u
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/mpi/lib.sh
. tests/mpi/lib.sh
JOB=$ROOT/jobs/xrv-pneumonia.ini
if ! $PY -c 'import torch, torchvision, onnx, h5py, numpy' 2>/dev/null; then
    echo "[SKIP] python3-torch/torchvision/onnx/h5py missing for $PY: the model is exported from PyTorch"
    echo "0 passed, 0 failed"; exit 0
fi
work=$ROOT/$BUILD/test-multilabel
rm -rf "$work/r"*.h5 "$work/bad" "$work/report" && mkdir -p "$work/build/xrv" "$work/bad" && cd "$work" || exit 2

# the model: the ONNX file test_xrv exported (while newer than its script), else export it
onnx=$ROOT/$BUILD/test-tmp/xrv_64.onnx
if [ ! -s "$onnx" ] || [ "$onnx" -ot "$ROOT/tests/ref/xrv_torch_ref.py" ]; then
    onnx=$work/build/xrv/xrv_64.onnx
    [ -s "$onnx" ] && [ "$onnx" -nt "$ROOT/tests/ref/xrv_torch_ref.py" ] ||
        $PY "$ROOT/tests/ref/xrv_torch_ref.py" export build/xrv 2024 64 13 >/dev/null
fi
labels=$($PY "$ROOT/tests/ref/xrv_torch_ref.py" labels)
if "$SALCHECK" import "$onnx" -o build/xrv/densenet121-xrv.h5 --normalize xrv --labels "$labels" > import.log 2>&1; then
    ok "import with --normalize xrv --labels (18 names)"
else
    bad "import"; tail -5 import.log
fi

# the example job, unchanged, with 1 and 2 ranks
if "$SALCHECK" run "$JOB" --out r1.h5 --progress 0 > r1.log 2>&1; then ok "1-rank run of jobs/xrv-pneumonia.ini"; else bad "1-rank run"; tail -20 r1.log; fi
grep -q "explains output 8 (Pneumonia) (sigmoid head), input xrv" r1.log && ok "the run says which output it explains" || bad "no explained-output line in the log"
if $MPIRUN -np 2 "$SALCHECK" run "$JOB" --out r2.h5 --progress 0 > r2.log 2>&1; then ok "2-rank run"; else bad "2-rank run"; tail -20 r2.log; fi
out=$($PY - r1.h5 r2.h5 <<'PYEOF' 2>&1
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for f in (a, b):
    m = f["models"]
    assert [x.decode() for x in m["name"][()]] == ["xrv"], m["name"][()]
    assert m["target"][()].tolist() == [8], m["target"][()]
    assert m["target_label"][()].tolist() == [b"Pneumonia"], m["target_label"][()]
    assert m["head"][()].tolist() == [b"sigmoid"] and m["input"][()].tolist() == [b"xrv"]
    assert m["probability"][()].tolist() == [b"sigmoid"], m["probability"][()]
    labels = m["labels"][()][0].decode().split(",")
    assert len(labels) == 18 and labels[8] == "Pneumonia", labels
    planned = f["status/planned"][()].astype(bool)
    assert f["status/done"][()].astype(bool)[planned].all(), "cells not done"
    t = f["scores/target"][()]
    assert (t[planned] == 8).all(), t
    assert f["scores/logits"].shape[2] == 18, f["scores/logits"].shape
planned = a["status/planned"][()].astype(bool)
for name in a["maps"]:
    x, y = a["maps/" + name][()], b["maps/" + name][()]
    assert np.isfinite(x[planned]).any(), name
    assert np.array_equal(x[planned], y[planned], equal_nan=True), "maps/%s differ" % name
for name in a["metrics"]:
    assert np.array_equal(a["metrics/" + name][()], b["metrics/" + name][()], equal_nan=True), name
assert np.array_equal(a["scores/logits"][()][planned], b["scores/logits"][()][planned])
print("ok")
PYEOF
)
[ "$out" = ok ] && ok "h5py: /models records output 8 (Pneumonia, sigmoid, xrv, checks' probability sigmoid); every cell explains 8; maps, metrics and logits bit-identical with 1 and 2 ranks" || { bad "results read back with h5py"; echo "$out" | tail -5; }

info=$("$SALCHECK" info r2.h5 2>&1)
echo "$info" | grep -q "xrv  *output 8 (Pneumonia), sigmoid head, input xrv" && ok "salcheck info shows the explained output" || { bad "salcheck info"; echo "$info" | head -12; }
if "$SALCHECK" report r1.h5 --out report > report.log 2>&1 && grep -q "Explained outputs" report/tables.md &&
   grep -q "| xrv | 8 | Pneumonia | sigmoid | xrv |" report/tables.md && grep -q "Pneumonia" report/index.html &&
   grep -q "^xrv,8,Pneumonia,sigmoid,xrv" report/tables/models.csv; then
    ok "the report shows the explained output (tables.md, index.html, models.csv)"
else
    bad "report"; tail -5 report.log
fi

# refused: an unknown label, no target on a multi-label model, a resume with another target
sed 's/^target = Pneumonia .*/target = pneumonia/' "$JOB" > bad/label.ini
line=$(grep -n '^target = pneumonia' bad/label.ini | cut -d: -f1)
out=$("$SALCHECK" run bad/label.ini --out bad/x.h5 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "bad/label.ini:$line: model 'xrv': target 'pneumonia' is not one of the model's labels; the outputs are 0 Atelectasis" &&
    ok "an unknown label is refused with its line and the labels" || { bad "unknown label: $out"; }
sed '/^target = /d' "$JOB" > bad/none.ini
out=$("$SALCHECK" run bad/none.ini --out bad/y.h5 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "model 'xrv': the model has 18 sigmoid outputs (multi-label): it has no predicted class" &&
    ok "a multi-label model without a target is refused" || { bad "no target: $out"; }
sed 's/^target = Pneumonia .*/target = 0/' "$JOB" > bad/other.ini
out=$("$SALCHECK" run bad/other.ini --out r1.h5 --resume 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "model 'xrv' explained output 8 there, this job explains 0" &&
    ok "a resume with another target is refused" || { bad "resume with another target: $out"; }
sed 's/^input = xrv .*/input = imagenet/' "$JOB" > bad/input.ini
line=$(grep -n '^input = imagenet' bad/input.ini | cut -d: -f1)
out=$("$SALCHECK" run bad/input.ini --out bad/z.h5 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "bad/input.ini:$line: model 'xrv': input = imagenet does not fit the model" &&
    ok "an input convention that does not fit the 1-channel model is refused with its line" || { bad "input: $out"; }

# model pairs compare maps of one output: a second model explaining another output is refused
# (run and --plan), the same output (by label) is accepted by --plan
pair_job() { # $1: the second model's target
    sed '/^\[experiments\]/a repeatability = xrv:xrv2' "$JOB"
    printf '\n[model.xrv2]\nfile = build/xrv/densenet121-xrv.h5\ntarget = %s\n' "$1"
}
pair_job Atelectasis > bad/pair.ini
want="bad/pair.ini: repeatability pair xrv:xrv2 compares maps of different outputs: model 'xrv' explains output 8 (Pneumonia), model 'xrv2' explains output 0 (Atelectasis); give both the same \[model.NAME\] target"
out=$("$SALCHECK" run bad/pair.ini --out bad/p.h5 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "$want" && [ ! -e bad/p.h5 ] &&
    ok "a pair of models explaining different outputs is refused" || { bad "pair: $out"; }
out=$("$SALCHECK" run bad/pair.ini --plan 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "$want" && ok "--plan refuses it too" || { bad "pair --plan: $out"; }
pair_job Pneumonia > bad/pair-same.ini
out=$("$SALCHECK" run bad/pair-same.ini --plan 2>&1); rc=$?
[ $rc -eq 0 ] && ok "a pair explaining the same output passes --plan" || { bad "pair --plan same: $(echo "$out" | tail -3)"; }

finish
