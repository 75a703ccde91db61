#!/usr/bin/env bash
# test_data_formats.sh - an audit on the phantom in DICOM layouts gives the same
# maps as on the PNG layout (lossless syntaxes: bit for bit, with 1 and 2 ranks),
# and how close a JPEG layout comes; every command creates the parent folders of
# what it writes (a job whose data, models and results sit in folders that do
# not exist yet); salcheck explain --dicom-window against pydicom.
set -u
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/mpi/lib.sh
. tests/mpi/lib.sh
work=$ROOT/$BUILD/test-data-formats
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 2

# The same phantom (seed 3, 80 images of 96 px) in five layouts.
common=(--count 80 --size 96 --seed 3)
"$SALCHECK" phantom --out data/png "${common[@]}" > ph.log 2>&1 \
  && "$SALCHECK" phantom --out data/dcm-ls12m1 "${common[@]}" --image dicom --dicom-syntax jpeg-ls --dicom-bits 12 --monochrome1 >> ph.log 2>&1 \
  && $MPIRUN -np 2 "$SALCHECK" phantom --out data/dcm-rle16 "${common[@]}" --image dicom --dicom-syntax rle --dicom-bits 16 >> ph.log 2>&1 \
  && "$SALCHECK" phantom --out data/dcm-base "${common[@]}" --image dicom --dicom-syntax jpeg-baseline >> ph.log 2>&1 \
  && "$SALCHECK" phantom --out data/jpg "${common[@]}" --image jpeg >> ph.log 2>&1 \
  && ok "phantom in PNG, DICOM (JPEG-LS 12-bit MONOCHROME1, RLE 16-bit on 2 ranks, JPEG baseline) and JPEG layouts" \
  || { bad "phantom layouts"; tail -5 ph.log; }

job() { # name dir: a small audit job on data/<dir>, model trained on the PNG layout once
cat > "$1.ini" <<INI
[job]
name = $1
seed = 4
out = out/$1/results.h5
block_images = 2
[data]
kind = rsna
dir = data/$2
size = 48
max_images = 6
randomization_images = 3
[model.A]
train = yes
arch = democnn
seed = 1
epochs = 1
file = models/nested/A.h5
[experiments]
utility = A
cascading = A
[methods]
list = grad, ig, gcam, sobel
ig.steps = 4
INI
}
job png png; job ls12 dcm-ls12m1; job rle16 dcm-rle16; job base dcm-base; job jpg jpg
if "$SALCHECK" run png.ini --progress 0 > png.log 2>&1 && [ -f models/nested/A.h5 ] && [ -f out/png/results.h5 ]; then
    ok "PNG audit (model and results written into folders that did not exist)"
else bad "PNG audit"; tail -15 png.log; fi
for j in ls12 rle16 base jpg; do
    if $MPIRUN -np 2 "$SALCHECK" run $j.ini --progress 0 > $j.log 2>&1; then ok "$j audit on 2 ranks"; else bad "$j audit"; tail -15 $j.log; fi
done
"$SALCHECK" run ls12.ini --out out/ls12-1rank.h5 --progress 0 > ls12-1.log 2>&1 || bad "ls12 audit on 1 rank"

# kind = phantom with its data two folders deep that do not exist yet (a fresh clone's build/demo/phantom)
cat > fresh.ini <<'INI'
[job]
name = fresh
out = fresh/out/r.h5
[data]
kind = phantom
dir = fresh/build/demo/phantom
phantom_count = 60
phantom_size = 32
size = 32
max_images = 2
[model.A]
train = yes
arch = democnn
epochs = 1
file = fresh/build/demo/models/A.h5
[experiments]
utility = A
[methods]
list = grad
INI
if "$SALCHECK" run fresh.ini --progress 0 > fresh.log 2>&1 && [ -f fresh/out/r.h5 ]; then
    ok "kind = phantom into fresh/build/demo/phantom (parents created)"
else bad "phantom job into missing folders"; tail -5 fresh.log; fi

if $PY -c 'import h5py, numpy' 2>/dev/null; then
    out=$($PY - <<'PYEOF'
import h5py, numpy as np
def load(p):
    with h5py.File(p, "r") as f:
        maps = {k: f["maps"][k][...] for k in f["maps"]}
        mets = {k: f["metrics"][k][...] for k in f["metrics"]}
        return [x.decode() if isinstance(x, bytes) else x for x in f["images/id"][...]], f["images/gt"][...], maps, mets
ids0, gt0, maps0, met0 = load("out/png/results.h5")
def same(name, path):
    ids, gt, maps, mets = load(path)
    eq = ids == ids0 and np.array_equal(gt, gt0) and maps.keys() == maps0.keys() and \
        all(np.array_equal(maps[k], maps0[k]) for k in maps0) and \
        all(np.array_equal(mets[k], met0[k], equal_nan=True) for k in met0)
    print(("[ok]   " if eq else "[FAIL] ") + f"{name}: ids, masks, maps and metrics bit-identical to the PNG layout")
    return eq
good = same("DICOM JPEG-LS 12-bit MONOCHROME1, 2 ranks", "out/ls12/results.h5")
good &= same("DICOM JPEG-LS 12-bit MONOCHROME1, 1 rank", "out/ls12-1rank.h5")
good &= same("DICOM RLE 16-bit", "out/rle16/results.h5")
for name, path in [("DICOM JPEG baseline", "out/base/results.h5"), ("JPEG files", "out/jpg/results.h5")]:
    ids, gt, maps, mets = load(path)
    corr = {}
    for k in maps0:
        a = maps0[k].reshape(-1, maps0[k].shape[-2] * maps0[k].shape[-1]).astype(np.float64)
        b = maps[k].reshape(a.shape).astype(np.float64)
        r = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b) if x.std() > 0 and y.std() > 0]
        corr[k] = float(np.median(r))
    au = float(np.nanmean(np.abs(mets["auprc"] - met0["auprc"])))
    close = ids == ids0 and np.array_equal(gt, gt0) and au < 0.03 and min(corr.values()) > 0.6
    print(("[ok]   " if close else "[FAIL] ") + f"{name} (lossy, quality 95): same ids and masks; median Pearson r "
          f"of each map with the PNG layout's: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(corr.items())) +
          f"; mean |AUPRC difference| {au:.4f}")
    good &= close
print("PYOK" if good else "PYBAD")
PYEOF
)
    echo "$out" | grep -E '^\[(ok|FAIL)\]'
    pass=$((pass + $(echo "$out" | grep -c '^\[ok\]'))); fail=$((fail + $(echo "$out" | grep -c '^\[FAIL\]')))
    echo "$out" | grep -q PYOK || { [ "$(echo "$out" | grep -c '^\[FAIL\]')" -gt 0 ] || bad "map comparison did not run: $out"; }
else
    echo "[SKIP] python3-h5py missing: maps not compared"
fi
# JPEG baseline DICOM: only the JPEG loss, no shift of the gray levels (DCMTK's
# lossy encoder lowered every value by the image's minimum before
# pUsePixelValues was turned off in dicom.cc)
if $PY -c 'import pydicom, PIL, numpy' 2>/dev/null; then
    $PY - <<'PYEOF2' && ok "JPEG baseline DICOM decodes (pydicom) to the PNG layout's pixels without a level shift" || bad "JPEG baseline DICOM level shift"
import glob, numpy as np, pydicom
from PIL import Image
d = []
for f in sorted(glob.glob("data/dcm-base/stage_2_train_images/*.dcm"))[:20]:
    i = f.rsplit("/", 1)[1][:-4]
    a = pydicom.dcmread(f).pixel_array.astype(float) - np.asarray(Image.open(f"data/png/images/{i}.png")).astype(float)
    d.append((abs(a.mean()), np.abs(a).mean()))
d = np.array(d)
print(f"    20 images: max |mean signed difference| {d[:, 0].max():.3f}, mean |difference| {d[:, 1].mean():.2f} gray levels")
assert d[:, 0].max() < 0.25 and d[:, 1].mean() < 2.0
PYEOF2
fi

# NIH: a positive whose box is removed from BBox_List_2017.csv is left out and
# counted (log and results file); CheXlocalize: the report finds CheXpert's
# <patient>/<study>/<view>.jpg for each id (no neutral tiles)
"$SALCHECK" phantom --out data/nih --count 40 --size 96 --seed 3 --format nih > nih-ph.log 2>&1 \
  && "$SALCHECK" phantom --out data/chex --count 40 --size 96 --seed 3 --format chexlocalize --image jpeg >> nih-ph.log 2>&1 \
  || { bad "nih and chexlocalize phantoms"; tail -3 nih-ph.log; }
unboxed=$($PY - <<'PYEOF2'
import csv
rows = list(csv.reader(open("data/nih/BBox_List_2017.csv")))
first = rows[1][0]
with open("data/nih/BBox_List_2017.csv", "w", newline="") as f:
    csv.writer(f).writerows([r for r in rows if r[0] != first])
print(first.rsplit(".", 1)[0])
PYEOF2
)
small_job() { # name kind dir
cat > "$1.ini" <<INI
[job]
name = $1
out = out/$1/results.h5
[data]
kind = $2
dir = data/$3
size = 48
max_images = 4
[model.A]
file = models/nested/A.h5
[experiments]
utility = A
[methods]
list = grad
INI
}
small_job nihjob nih nih; small_job chexjob chexlocalize chex
"$SALCHECK" run nihjob.ini --progress 0 > nihjob.log 2>&1 || { bad "nih audit"; tail -3 nihjob.log; }
grep -qF "1 images labelled 'Pneumonia' have no box and were left out (no ground truth to localize)" nihjob.log \
  && ok "nih: the positive without a box is left out and counted in the log" || { bad "nih: unboxed positive not reported"; grep -i box nihjob.log | head -3; }
$PY -c "
import h5py, sys
with h5py.File('out/nihjob/results.h5', 'r') as f:
    ids = [x.decode() if isinstance(x, bytes) else x for x in f['images/id'][()]]
    sys.exit(0 if int(f.attrs['dataset_positives_without_box']) == 1 and '$unboxed' not in ids else 1)" \
  && ok "nih: results file attribute dataset_positives_without_box = 1, '$unboxed' not among the images" \
  || bad "nih: dataset_positives_without_box attribute"
if "$SALCHECK" run chexjob.ini --progress 0 > chexjob.log 2>&1 && "$SALCHECK" report out/chexjob/results.h5 --out out/chexjob/report > chexrep.log 2>&1; then
    if grep -qiE "neutral gray|could not be read|was not found" chexrep.log; then bad "chexlocalize report: radiographs not found"; grep -iE "neutral|not" chexrep.log | head -2
    else ok "chexlocalize report: every radiograph found under <patient>/<study>/<view>.jpg"; fi
else bad "chexlocalize audit and report"; tail -n 3 chexjob.log chexrep.log; fi

# salcheck explain --dicom-window on one DICOM of the RLE 16-bit layout, with
# a narrow window centre/width added (pydicom): full = the PNG layout's image
# and maps bit for bit; voi = pydicom's apply_modality_lut + apply_voi_lut,
# scaled to 0..255 and averaged 2x2 (96 -> 48 px, the area resize)
if $PY -c 'import h5py, numpy, pydicom' 2>/dev/null && [ -f models/nested/A.h5 ]; then
    mkdir -p ex
    $PY - <<'PYEOF2'
import pydicom
d = pydicom.dcmread("data/dcm-rle16/stage_2_train_images/phantom-000005.dcm")
d.WindowCenter, d.WindowWidth = 30000, 12000
d.save_as("ex/win.dcm")
PYEOF2
    ex() { "$SALCHECK" explain --model models/nested/A.h5 --method grad,gcam "$@" > ex/log 2>&1; }
    ex --image data/png/images/phantom-000005.png --out ex/png && ex --image ex/win.dcm --out ex/full --dicom-window full \
      && ex --image ex/win.dcm --out ex/voi && ex --image ex/win.dcm --out ex/minmax --dicom-window minmax \
      && ok "explain --dicom-window full|voi|minmax on a DICOM" || { bad "explain --dicom-window"; tail -3 ex/log; }
    "$SALCHECK" explain --model models/nested/A.h5 --image ex/win.dcm --out ex/bad --dicom-window center > ex/bad.log 2>&1
    grep -qF -- "--dicom-window 'center' is not one of voi, full, minmax" ex/bad.log && ok "explain --dicom-window: a bad value is named" \
      || bad "explain --dicom-window bad value message"
    out=$($PY - <<'PYEOF2'
import h5py, numpy as np, pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut
def rd(p):
    with h5py.File(p, "r") as f:
        return f["image_gray"][()], {k: f["maps"][k][()] for k in f["maps"]}, f.attrs["dicom_window"]
g0, m0, _ = rd("ex/png.h5"); gf, mf, wf = rd("ex/full.h5"); gv, mv, wv = rd("ex/voi.h5"); gm, mm, wm = rd("ex/minmax.h5")
s = lambda a: a.decode() if isinstance(a, bytes) else a
ok = np.array_equal(g0, gf) and all(np.array_equal(m0[k], mf[k]) for k in m0) and s(wf) == "full"
print(("[ok]   " if ok else "[FAIL] ") + "--dicom-window full: image and maps equal the PNG layout's; attribute dicom_window = full")
d = pydicom.dcmread("ex/win.dcm")
v = apply_voi_lut(apply_modality_lut(d.pixel_array, d), d).astype(np.float64)
ref = 255.0 * v / (2 ** d.BitsStored - 1)
ref = ref.reshape(48, 2, 48, 2).mean(axis=(1, 3))
err = float(np.abs(gv - ref).max())
sat = float(np.mean((ref <= 0) | (ref >= 255)))
# /image_gray is stored as 8 bits (rounded): half a gray level is the bound
ok = err <= 0.5 + 1e-3 and not np.array_equal(gv, gf) and s(wv) == "voi" and sat > 0.05
print(("[ok]   " if ok else "[FAIL] ") + f"--dicom-window voi (default) equals pydicom's window rendering, area-resized: max |diff| {err:.3f} "
      f"on 0..255 (bound 0.5, the 8-bit rounding of /image_gray; {100 * sat:.0f} % of pixels saturated by the window)")
span = lambda g: int(g.max()) - int(g.min())
ok = s(wm) == "minmax" and span(gm) > span(gf)
print(("[ok]   " if ok else "[FAIL] ") + f"--dicom-window minmax: the image's own range is stretched (gray span {span(gm)} against {span(gf)} for full)")
PYEOF2
)
    echo "$out" | grep -E '^\[(ok|FAIL)\]'
    pass=$((pass + $(echo "$out" | grep -c '^\[ok\]'))); fail=$((fail + $(echo "$out" | grep -c '^\[FAIL\]')))
    [ "$(echo "$out" | grep -c '^\[')" -eq 3 ] || bad "explain --dicom-window comparison did not run: $out"
else
    echo "[SKIP] pydicom/h5py missing or no model: explain --dicom-window not checked"
fi
finish
