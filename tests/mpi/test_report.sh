#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2086 # ok/bad always succeed: "cond && ok || bad" is if-then-else here; $CHECK is "python3 script"
# test_report.sh - `salcheck report` end to end on a tiny audit (every experiment
# kind): tables and CSV recomputed with numpy from the results file, the same
# numbers as the run's /summary, examples/analysis.py agreeing with the report,
# the HTML page self-contained and opened in headless Chromium (every image
# loads, every table is there), partial files (done flags cleared, a run stopped
# with SIGUSR1, a run still writing), the data set found or not, user mistakes.
set -u
cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=tests/mpi/lib.sh
. tests/mpi/lib.sh
CHECK="$PY $ROOT/tests/ref/report_check.py"
work=$ROOT/$BUILD/test-report
# phantom/ and models/ are kept between runs (a cache, as in test_run.sh)
mkdir -p "$work" && cd "$work" && rm -rf out* ./*.h5 ./*.log moved chrome-profile || exit 2
skip=0
skipped() { echo "[SKIP] $1"; skip=$((skip+1)); }
have_py=1
if ! $PY -c 'import h5py, numpy, pandas, matplotlib' 2>/dev/null; then
    have_py=0
    echo "[SKIP] python3-h5py/pandas/matplotlib missing for $PY: the numeric checks need them"
fi

cat > tiny.ini <<'EOF'
; the smallest audit with every experiment kind (report test)
[job]
name = tiny
seed = 5
block_images = 2

[data]
kind = phantom
dir = phantom
phantom_count = 120
phantom_size = 32
phantom_seed = 7
size = 32
max_images = 4
randomization_images = 3

[model.A]
train = yes
arch = democnn
seed = 1
epochs = 1
file = models/A.h5

[model.B]
train = yes
arch = democnn
seed = 2
epochs = 1
file = models/B.h5

[model.S]
train = yes
arch = democnn
seed = 3
epochs = 1
labels = shuffled
file = models/S.h5

[model.C]
train = yes
arch = demoresnet
seed = 4
epochs = 1
file = models/C.h5

[experiments]
utility = A
cascading = A
untrained = A
label_randomization = A:S
repeatability = A:B
reproducibility = B:C
baseline_pairs = 3

[methods]
list = grad, sg, ig, gcam, random, avgmask
sg.samples = 2
ig.steps = 3

[metrics]
list = auprc, pointing, energy, iou_otsu
similarity = ssim, spearman_abs
EOF

# ---- a finished run ----
if "$SALCHECK" run tiny.ini --out r.h5 --progress 0 > run.log 2>&1; then ok "tiny audit"; else bad "tiny audit"; tail -20 run.log; fi
t0=$(date +%s%N)
if "$SALCHECK" report r.h5 --out out > report.log 2>&1; then ok "salcheck report on a finished run"; else bad "salcheck report on a finished run"; tail -20 report.log; fi
echo "    the report took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
missing=""
for f in index.html tables.md tables/progress.csv tables/utility.csv tables/metrics.csv tables/pairs.csv \
         tables/cascading.csv tables/sanity.csv figures/montage.png figures/cascading_A.png \
         figures/ssim_states_A.png figures/auprc_box.png figures/similarity_box.png; do
    [ -s "out/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok "every table, CSV and figure written" || bad "missing outputs:$missing"
grep -q '^radiographs from .*phantom' report.log && ok "the job's data set found for the radiographs" \
    || bad "data set not found: $(tail -3 report.log)"
grep -q '^Complete: ' report.log && ok "the report says the run is complete" || bad "completeness line"
if [ $have_py = 1 ]; then
    py_check "tables == numpy recomputation and /summary" $CHECK tables r.h5 out
    py_check "HTML self-contained, figures inlined, tables present" $CHECK html out complete
    py_check "figures are pictures (heat maps, outlines, plot colours)" $CHECK figures out
    py_check "examples/analysis.py: tidy frame == report; figure redrawn" $CHECK analysis r.h5 out
fi

# ---- a partial file: done flags cleared, not-done values overwritten with garbage ----
if [ $have_py = 1 ] && $CHECK partial r.h5 p.h5 > partial.log 2>&1; then
    if "$SALCHECK" report p.h5 --out outp > reportp.log 2>&1; then ok "salcheck report on a partial file"; else bad "report on a partial file"; tail -20 reportp.log; fi
    grep -q 'Incomplete run: .*cells of B (0/4 done).*pairs of repeatability (0/' reportp.log \
        && grep -q -- '--resume' reportp.log && ok "the partial report says what is missing and how to resume" \
        || bad "missing parts not reported: $(head -3 reportp.log)"
    py_check "partial: tables from the done cells and pairs only" $CHECK tables p.h5 outp
    py_check "partial: HTML" $CHECK html outp partial
    py_check "partial: analysis.py" $CHECK analysis p.h5 outp
fi

# ---- a real run stopped with SIGUSR1, then resumed and reported while it writes ----
wait_maps() { # log pid: until the run has written maps (or ended)
    for _ in $(seq 1 900); do grep -q 'maps: [1-9]' "$1" && return 0; kill -0 "$2" 2>/dev/null || return 1; sleep 0.1; done
}
# the same models with many more gradient evaluations per map (maps in seconds,
# not a fraction of one), so that the signal and the live report meet a run
# that is still computing on a fast machine too
sed -e 's/^block_images = 2/block_images = 1/' -e 's/^sg.samples = 2/sg.samples = 80/' \
    -e 's/^ig.steps = 3/ig.steps = 80/' tiny.ini > slow.ini
"$SALCHECK" run slow.ini --out u.h5 --progress 0.2 > u.log 2>&1 &
pid=$!
wait_maps u.log $pid
kill -USR1 $pid 2>/dev/null
wait $pid; urc=$?
if [ "$urc" -eq 3 ]; then
    if "$SALCHECK" report u.h5 --out outu > reportu.log 2>&1 && grep -q 'Incomplete run' reportu.log; then
        ok "report on a run stopped by SIGUSR1 says it is incomplete"
    else bad "report on a stopped run"; tail -5 reportu.log; fi
    [ $have_py = 1 ] && py_check "stopped run: tables from what is done" $CHECK tables u.h5 outu
else
    skipped "the run was not stopped by SIGUSR1 (exit $urc): it finished first"
fi
"$SALCHECK" run slow.ini --out u.h5 --resume --progress 0.2 > u2.log 2>&1 &
pid=$!
if wait_maps u2.log $pid && kill -0 $pid 2>/dev/null; then
    if "$SALCHECK" report u.h5 --out outlive > reportlive.log 2>&1; then ok "report on the file of a run still writing it"
    else bad "report on a running job's file"; tail -5 reportlive.log; fi
else
    skipped "the resumed run finished before the report could look at it"
fi
wait $pid || bad "the resumed run failed"

# ---- the data set: elsewhere, or named with --data ----
moved=$(mktemp -d /tmp/salcheck-report-XXXXXX)
cp r.h5 "$moved/r.h5"
if (cd "$moved" && "$SALCHECK" report r.h5 --out o > report.log 2>&1) && grep -q 'neutral gray' "$moved/report.log" \
    && grep -q 'neutral gray' "$moved/o/index.html"; then
    ok "data set not found: neutral gray background, said in the log and the page"
else bad "report without its data set"; tail -5 "$moved/report.log"; fi
if (cd "$moved" && "$SALCHECK" report r.h5 --out o --data "$work/phantom" > report2.log 2>&1) \
    && grep -q "^radiographs from $work/phantom" "$moved/report2.log"; then
    ok "--data DIR gives the radiographs"
else bad "--data DIR"; tail -5 "$moved/report2.log"; fi
rm -rf "$moved"
"$SALCHECK" report r.h5 --out outx --data /nonexistent > bad.log 2>&1 && bad "--data with no images accepted" \
    || { grep -q -- '--data /nonexistent' bad.log && ok "--data without the images: an error naming it"; } || bad "--data error message"

# ---- user mistakes ----
"$SALCHECK" report nosuch.h5 --out outx > bad.log 2>&1 && bad "missing file accepted" \
    || { grep -q "cannot open 'nosuch.h5'" bad.log && ok "missing results file: an error naming it"; } || bad "missing file message: $(cat bad.log)"
"$SALCHECK" report models/A.h5 --out outx > bad.log 2>&1 && bad "a model file accepted" \
    || { grep -q 'not a salcheck results file' bad.log && ok "a model file instead of results: an error saying so"; } || bad "model file message: $(cat bad.log)"
"$SALCHECK" report r.h5 > bad.log 2>&1 && bad "missing --out accepted" \
    || { grep -q -- '--out DIR is required' bad.log && ok "missing --out: usage"; } || bad "usage message"
"$SALCHECK" report r.h5 --out outx --variant nosuch > bad.log 2>&1 && bad "unknown --variant accepted" \
    || { grep -q -- '--variant nosuch' bad.log && ok "unknown --variant: an error naming it"; } || bad "--variant message"

# ---- the page in a browser: headless Chromium ----
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
    skipped "chromium not installed (apt-get install chromium): the browser check did not run"
elif [ $have_py = 0 ]; then
    skipped "the browser check needs $PY to prepare the page"
else
    browse() { # page -> "images=N loaded=K tables=T" as the browser saw it
        local profile; profile=$(mktemp -d "$work/chrome-profile.XXXXXX")
        timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --user-data-dir="$profile" --virtual-time-budget=5000 --dump-dom "file://$1" 2>/dev/null \
            | grep -oE 'IMGCHECK images=[0-9]+ loaded=[0-9]+ tables=[0-9]+' | head -1 | sed 's/IMGCHECK //'
        rm -rf "$profile"
    }
    for dir in out outp; do
        [ -s "$dir/index.html" ] || continue
        n_fig=$(find "$dir/figures" -name '*.png' | wc -l)
        n_tab=$(grep -c '^## ' "$dir/tables.md")
        $CHECK inject "$dir" check.html
        seen=$(browse "$work/$dir/check.html")
        want="images=$n_fig loaded=$n_fig tables=$n_tab"
        [ "$seen" = "$want" ] && ok "Chromium ($dir): every image loads and every table is there ($seen)" \
            || bad "Chromium ($dir): saw '$seen', expected '$want'"
    done
    $CHECK inject out broken.html corrupt
    seen=$(browse "$work/out/broken.html")
    case "$seen" in
        images=*" loaded=$(( $(find out/figures -name '*.png' | wc -l) - 1 )) "*) ok "Chromium notices a broken image (control: $seen)" ;;
        *) bad "Chromium control with a broken image: '$seen'" ;;
    esac
fi

[ "$skip" -gt 0 ] && echo "$skip skipped"
finish
