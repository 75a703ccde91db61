#!/usr/bin/env python3
"""Checks of `salcheck report` output for tests/mpi/test_report.sh.

    report_check.py partial SRC DST          make a partial copy of a finished results file
    report_check.py tables RESULTS OUTDIR    CSV and Markdown numbers == numpy on the file
    report_check.py analysis RESULTS OUTDIR  examples/analysis.py agrees with the report
    report_check.py html OUTDIR (complete|partial)   the page is self-contained and whole
    report_check.py figures OUTDIR           the PNG figures are real pictures
    report_check.py inject OUTDIR NAME [corrupt]   a copy of index.html that, once loaded in a
                                             browser, writes "IMGCHECK images=N loaded=K
                                             tables=T" into the page (corrupt: break one image
                                             first, to show the check can fail)

Every value is recomputed here from the results file with h5py and numpy, using
only the cells and pairs whose done flags are set (what a partial file holds),
and compared with what the report wrote. Prints [ok]/[FAIL] lines and
"N passed, N failed"; exits 1 on any failure.
"""
import csv
import html.parser
import base64
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys

import h5py
import numpy as np

EXPERIMENTS = ["cascading", "independent", "untrained", "label", "repeatability",
               "reproducibility", "baseline"]
GARBAGE = 99.0  # written into not-done cells of the partial copy: the report must ignore it

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("[ok]   %s" % name)
    else:
        failed += 1
        print("[FAIL] %s%s" % (name, (": " + detail) if detail else ""))


def names(f, path):
    return [x.decode() for x in f[path][()]]


def close(a, b, tol=1e-9):
    """Equal within tol, both empty/NaN counting as equal."""
    a = float("nan") if a in ("", None) else float(a)
    b = float("nan") if b in ("", None) else float(b)
    if np.isnan(a) or np.isnan(b):
        return np.isnan(a) and np.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def summary(values):
    """n, n_nan, mean, median, q1, q3 of a sample with NaN (numpy 'linear' percentiles)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    n_nan = int(np.isnan(values).sum())
    if finite.size == 0:
        return 0, n_nan, np.nan, np.nan, np.nan, np.nan
    q1, med, q3 = np.percentile(finite, [25, 50, 75])
    return finite.size, n_nan, finite.mean(), med, q1, q3


class Results:
    def __init__(self, path):
        self.f = h5py.File(path, "r")
        f = self.f
        self.methods = names(f, "methods/name")
        self.variants = names(f, "variants/name")
        self.kinds = names(f, "variants/kind")
        self.bases = names(f, "variants/base")
        self.images = names(f, "images/id")
        self.done = f["status/done"][()].astype(bool) & f["status/planned"][()].astype(bool)
        self.planned = f["status/planned"][()].astype(bool)
        self.metrics = {k: f["metrics"][k][()] for k in f["metrics"].keys()}
        self.index = f["pairs/index"][()]
        self.exp = f["pairs/experiment"][()]
        self.pair_done = f["status/pair_done"][()].astype(bool)
        self.sims = {k: f["pairs"][k][()] for k in f["pairs"].keys()
                     if k not in ("index", "experiment", "experiment_names")}

    def group(self, exp, va, vb):
        return ((self.exp == exp) & (self.index[:, 0] == va) & (self.index[:, 2] == vb))


def cmd_partial(src, dst):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        kinds = names(f, "variants/kind")
        done = f["status/done"][()]
        trained = [v for v, k in enumerate(kinds) if k == "trained"]
        cascading = [v for v, k in enumerate(kinds) if k == "cascading"]
        # the second trained model not started, one cell of the first cascading state missing
        done[trained[1], :] = 0
        done[cascading[0], 0] = 0
        f["status/done"][...] = done
        for k in f["metrics"].keys():
            values = f["metrics"][k][()]
            values[:, ~done.astype(bool)] = GARBAGE
            f["metrics"][k][...] = values
        # every other cascading pair and every repeatability pair not done
        exp = f["pairs/experiment"][()]
        pair_done = f["status/pair_done"][()]
        casc = np.nonzero(exp == EXPERIMENTS.index("cascading"))[0]
        pair_done[casc[::2]] = 0
        pair_done[exp == EXPERIMENTS.index("repeatability")] = 0
        f["status/pair_done"][...] = pair_done
        for k in f["pairs"].keys():
            if k in ("index", "experiment", "experiment_names"):
                continue
            values = f["pairs"][k][()]
            values[:, pair_done == 0] = GARBAGE
            f["pairs"][k][...] = values
        if "summary" in f:
            del f["summary"]
    print("partial copy %s: %d/%d cells, %d/%d pairs done" % (
        dst, int(done.sum()), done.size, int(pair_done.sum()), pair_done.size))
    return 0


def cmd_tables(path, out):
    r = Results(path)
    M, V = len(r.methods), len(r.variants)
    complete = bool(r.done[r.planned].all() and r.pair_done.all())

    # metrics.csv: every (metric, method, variant) over the done cells
    rows = read_csv(os.path.join(out, "tables", "metrics.csv"))
    expect = sum(1 for _ in r.metrics) * M * sum(1 for v in range(V) if r.planned[v].any())
    check("metrics.csv has one row per (metric, method, planned variant)", len(rows) == expect,
          "%d rows, expected %d" % (len(rows), expect))
    bad = []
    for row in rows:
        m, v = r.methods.index(row["method"]), r.variants.index(row["variant"])
        vals = r.metrics[row["metric"]][m, v, r.done[v]]
        n, n_nan, mean, med, q1, q3 = summary(vals)
        ok = (int(row["n"]) == n and int(row["n_nan"]) == n_nan and
              int(row["images_done"]) == int(r.done[v].sum()) and
              int(row["images_planned"]) == int(r.planned[v].sum()) and
              close(row["mean"], mean) and close(row["median"], med) and close(row["q1"], q1)
              and close(row["q3"], q3))
        ci_ok = n < 2 or (float(row["ci_lo"]) <= mean + 1e-12 <= float(row["ci_hi"]) + 2e-12)
        if not (ok and ci_ok):
            bad.append("%s/%s/%s: report n=%s mean=%s, numpy n=%d mean=%r" % (
                row["metric"], row["method"], row["variant"], row["n"], row["mean"], n, mean))
    check("metrics.csv: n, mean, median, quartiles == numpy over the done cells; mean inside "
          "the CI", not bad, "; ".join(bad[:3]))
    util = read_csv(os.path.join(out, "tables", "utility.csv"))
    check("utility.csv is the AUPRC rows of metrics.csv",
          util == [row for row in rows if row["metric"] == "auprc"])

    # pairs.csv: every (experiment, variant a, variant b, method, similarity)
    prow = read_csv(os.path.join(out, "tables", "pairs.csv"))
    bad = []
    for row in prow:
        e = EXPERIMENTS.index(row["experiment"])
        va, vb = r.variants.index(row["variant_a"]), r.variants.index(row["variant_b"])
        m = r.methods.index(row["method"])
        g = r.group(e, va, vb)
        vals = r.sims[row["similarity"]][m, g & r.pair_done]
        n, n_nan, mean, med, q1, q3 = summary(vals)
        ok = (int(row["pairs_planned"]) == int(g.sum()) and
              int(row["pairs_done"]) == int((g & r.pair_done).sum()) and int(row["n"]) == n and
              close(row["mean"], mean) and close(row["median"], med) and close(row["q1"], q1)
              and close(row["q3"], q3))
        if not ok:
            bad.append("%s %s/%s %s %s: report %s, numpy %r" % (
                row["experiment"], row["variant_a"], row["variant_b"], row["method"],
                row["similarity"], row["mean"], mean))
    n_groups = len({(int(e), int(a), int(b)) for e, (a, _, b, _) in zip(r.exp, r.index)})
    check("pairs.csv has one row per (pair group, method, similarity)",
          len(prow) == n_groups * M * len(r.sims), "%d rows" % len(prow))
    check("pairs.csv: counts, mean, median, quartiles == numpy over the done pairs", not bad,
          "; ".join(bad[:3]))

    # cascading.csv and sanity.csv: the sanity check recomputed
    sim = "ssim" if "ssim" in r.sims else sorted(k for k in r.sims if k.startswith("ssim"))[0]
    casc = read_csv(os.path.join(out, "tables", "cascading.csv"))
    sanity = read_csv(os.path.join(out, "tables", "sanity.csv"))
    bad = []
    verdicts = {}
    for b, kind in enumerate(r.kinds):
        states = [v for v in range(V) if r.kinds[v] == "cascading" and r.bases[v] == r.bases[b]]
        if kind != "trained" or not states:
            continue
        gb = r.group(EXPERIMENTS.index("baseline"), b, b)
        for m, method in enumerate(r.methods):
            bvals = r.sims[sim][m, gb & r.pair_done]
            baseline = summary(bvals)[2]
            means = []
            all_done = bool(gb.sum() == (gb & r.pair_done).sum())
            for v in states:
                g = r.group(EXPERIMENTS.index("cascading"), v, b)
                all_done &= bool(g.sum() == (g & r.pair_done).sum())
                mean = summary(r.sims[sim][m, g & r.pair_done])[2]
                means.append(mean)
                row = [x for x in casc if x["variant"] == r.variants[v] and x["method"] == method]
                if len(row) != 1 or not close(row[0]["mean"], mean) or \
                        not close(row[0]["baseline"], baseline):
                    bad.append("%s %s %s" % (r.variants[v], method, row[:1]))
                elif np.isfinite(mean) and np.isfinite(baseline) and \
                        row[0]["below_baseline"] != ("1" if mean < baseline else "0"):
                    bad.append("below_baseline of %s %s" % (r.variants[v], method))
            finite = [x for x in means if np.isfinite(x)]
            known = bool(finite) and np.isfinite(baseline)
            verdict = ("1" if min(finite) < baseline else "0") if known else ""
            verdicts[(r.bases[b], method)] = (verdict, all_done)
            row = [x for x in sanity if x["model"] == r.bases[b] and x["method"] == method]
            if len(row) != 1 or row[0]["pass"] != verdict or row[0]["complete"] != str(int(all_done)):
                bad.append("sanity %s %s: report %s, expected pass=%s complete=%d" % (
                    r.bases[b], method, row[:1], verdict, all_done))
    check("cascading.csv and sanity.csv: state means, baselines and pass/fail recomputed", not bad,
          "; ".join(str(x) for x in bad[:3]))

    # progress.csv
    prog = {row["item"]: (int(row["done"]), int(row["planned"]))
            for row in read_csv(os.path.join(out, "tables", "progress.csv"))}
    ok = all(prog.get("cells:" + r.variants[v]) == (int(r.done[v].sum()), int(r.planned[v].sum()))
             for v in range(V) if r.planned[v].any())
    for e, name in enumerate(EXPERIMENTS):
        sel = r.exp == e
        if sel.any():
            ok &= prog.get("pairs:" + name) == (int((sel & r.pair_done).sum()), int(sel.sum()))
    check("progress.csv: done and planned cells per variant and pairs per experiment", ok)

    # /summary, when the run wrote it, holds the same numbers (the report recomputes them
    # read-only with the run's own aggregation code)
    if "summary" in r.f:
        s = r.f["summary/metrics"][()]
        by_key = {(x["metric"], x["method"], x["variant"]): x for x in rows}
        bad = []
        for x in s:
            key = (x["metric"].decode(), x["method"].decode(), x["variant"].decode())
            row = by_key.get(key)
            if row is None and int(x["n"]) == 0:
                continue
            if row is None or not (close(row["mean"], x["mean"], 1e-9) and
                                   close(row["ci_lo"], x["ci_lo"], 1e-9) and
                                   close(row["ci_hi"], x["ci_hi"], 1e-9)):
                bad.append(str(key))
        check("metrics.csv == /summary/metrics written by the run (means and bootstrap CIs)",
              not bad, "; ".join(bad[:3]))
        ss = r.f["summary/sanity"][()]
        ok = all(verdicts.get((x["model"].decode(), x["method"].decode()), ("?",))[0] ==
                 str(int(x["pass"])) for x in ss)
        check("sanity verdicts == /summary/sanity", ok and len(ss) == len(verdicts))
    else:
        check("no /summary in a partial file (the report did not need it)", not complete)

    # tables.md: sections present, the utility cells are the recomputed means
    md = open(os.path.join(out, "tables.md")).read()
    sections = ["## Localization utility", "## Cascading randomization of", "## Label randomization",
                "## Repeatability", "## Reproducibility", "## Other localization metrics",
                "## Run progress"]
    missing = [s for s in sections if s not in md]
    check("tables.md has the paper's tables", not missing, "missing %s" % missing)
    check("tables.md says whether the run is complete",
          ("Complete:" in md) if complete else ("Incomplete run" in md and "--resume" in md))
    lines = md.split("\n")
    start = next(k for k, l in enumerate(lines) if l.startswith("## Localization utility"))
    header = [c.strip() for c in lines[start + 2].strip("|").split("|")]
    bad = []
    for l in lines[start + 4:]:
        if not l.startswith("|"):
            break
        cells = [c.strip() for c in l.strip("|").split("|")]
        method = cells[0].strip("*").replace(" (baseline)", "")
        for col, cell in zip(header[1:], cells[1:]):
            variant = col.replace(" (fully randomized)", "")
            v, m = r.variants.index(variant), r.methods.index(method)
            n, _, mean, _, _, _ = summary(r.metrics["auprc"][m, v, r.done[v]])
            want = "not done" if not r.done[v].any() else "%.3f" % mean
            if not cell.startswith(want):
                bad.append("%s/%s: '%s' (expected %s)" % (method, variant, cell, want))
            if r.done[v].any() and r.done[v].sum() < r.planned[v].sum() and \
                    "(%d/%d)" % (r.done[v].sum(), r.planned[v].sum()) not in cell:
                bad.append("%s/%s: '%s' lacks the done fraction" % (method, variant, cell))
    check("tables.md utility cells == recomputed mean AUPRC ('not done', 'k/n' when partial)",
          not bad, "; ".join(bad[:3]))
    return 0


def cmd_analysis(path, out):
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "..", "..", "examples", "analysis.py")
    spec = importlib.util.spec_from_file_location("analysis", script)
    analysis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(analysis)
    r = Results(path)
    df = analysis.tidy(path)
    per_map = df[df.experiment == "map"]
    pairs = df[df.experiment != "map"]
    check("analysis.tidy: one row per (metric, method, done cell)",
          len(per_map) == len(r.metrics) * len(r.methods) * int(r.done.sum()),
          "%d rows" % len(per_map))
    check("analysis.tidy: one row per (similarity, method, done pair)",
          len(pairs) == len(r.sims) * len(r.methods) * int(r.pair_done.sum()),
          "%d rows" % len(pairs))
    check("analysis.tidy: columns method, variant, image, metric, value first",
          list(df.columns[:5]) == ["method", "variant", "image", "metric", "value"])
    check("analysis.tidy holds no value of an unfinished cell or pair",
          not (df.value == GARBAGE).any())
    util = read_csv(os.path.join(out, "tables", "utility.csv"))
    means = df[df.metric == "auprc"].groupby(["method", "variant"]).value.mean()
    bad = [row for row in util if int(row["n"]) > 0 and
           not close(row["mean"], means.get((row["method"], row["variant"]), np.nan), 1e-9)]
    check("mean AUPRC from analysis.py (pandas) == the report's utility.csv", not bad,
          str(bad[:2]))
    fig = os.path.join(out, "analysis_ssim_states.png")
    if os.path.exists(fig):
        os.remove(fig)
    proc = subprocess.run([sys.executable, script, path, "--out", fig], capture_output=True,
                          text=True)
    check("examples/analysis.py runs and redraws the SSIM figure",
          proc.returncode == 0 and os.path.exists(fig) and open(fig, "rb").read(8) ==
          b"\x89PNG\r\n\x1a\n", proc.stderr[-300:])
    return 0


class PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tables, self.links, self.scripts, self.status = [], 0, [], 0, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        elif tag == "table" and "data" in (a.get("class") or "").split():
            self.tables += 1
        elif tag in ("script", "iframe", "object", "embed"):
            self.scripts += 1
        elif tag == "div" and a.get("id") == "status":
            self.status = a.get("class")
        for key in ("src", "href"):
            if key in a:
                self.links.append(a[key])


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def cmd_html(out, expect):
    page = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    p = PageParser()
    p.feed(page)
    # the page inlines the PNGs; each has an SVG copy beside it for papers
    names = sorted(os.listdir(os.path.join(out, "figures")))
    figures = [n for n in names if n.endswith(".png")]
    svgs = [n for n in names if n.endswith(".svg")]
    check("every figure has an SVG copy with real text (%d)" % len(svgs),
          sorted(n[:-4] for n in svgs) == sorted(n[:-4] for n in figures) and
          all("<text" in open(os.path.join(out, "figures", n), encoding="utf-8").read()
              for n in svgs), "svg: %s" % svgs[:3])
    files = {open(os.path.join(out, "figures", n), "rb").read() for n in figures}
    bad = []
    inlined = set()
    for img in p.imgs:
        src = img.get("src", "")
        if not src.startswith("data:image/png;base64,"):
            bad.append("not inlined: " + src[:60])
            continue
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        size = png_size(data)
        if size is None or size != (int(img.get("width", -1)), int(img.get("height", -1))):
            bad.append("%s: PNG size %s, attributes %s x %s" % (img.get("alt"), size,
                                                                img.get("width"), img.get("height")))
        inlined.add(data)
    check("every <img> is an inlined PNG whose size matches its attributes", not bad and p.imgs,
          "; ".join(bad[:3]))
    check("the page inlines exactly the figure files (%d)" % len(figures), inlined == files)
    external = [l for l in p.links if re.match(r"^[a-z][a-z0-9+.-]*:", l) and
                not l.startswith("data:")]
    check("no external resource and no script (works offline)",
          not external and p.scripts == 0 and "@import" not in page and "url(" not in page,
          str(external[:3]))
    md = open(os.path.join(out, "tables.md")).read()
    n_md = sum(1 for l in md.split("\n") if l.startswith("## "))
    check("the page has the %d tables of tables.md" % n_md, p.tables == n_md,
          "%d tables" % p.tables)
    check("the page's status box says '%s'" % expect, p.status == "status " + expect,
          str(p.status))
    return 0


def cmd_figures(out):
    import matplotlib.image as mpimg
    d = os.path.join(out, "figures")
    for name in sorted(n for n in os.listdir(d) if n.endswith(".png")):
        img = mpimg.imread(os.path.join(d, name))
        rgb = (img[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
        colours = len(np.unique(rgb.view([("r", "u1"), ("g", "u1"), ("b", "u1")])))
        if name.startswith(("montage", "cascading_")):
            # heat maps: many colours; white ground-truth outlines
            white = int((rgb == 255).all(axis=1).sum())
            check("%s is a heat-map grid (%d colours, ground truth outlined)" % (name, colours),
                  colours > 2000 and white > 1000 and img.shape[0] > 300)
        else:
            blue = int(((rgb[:, 0] == 31) & (rgb[:, 1] == 119) & (rgb[:, 2] == 180)).sum())
            dark = int((rgb.max(axis=1) < 60).sum())
            check("%s is a plot (series colour, black axes and text)" % name,
                  blue > 100 and dark > 2000 and img.shape[1] >= 800)
    return 0


CHECKER = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++)
    if (imgs[i].complete && imgs[i].naturalWidth > 0 && imgs[i].naturalHeight > 0) ok++;
  var out = document.createElement('pre');
  out.textContent = 'IMGCHECK images=' + imgs.length + ' loaded=' + ok +
                    ' tables=' + document.querySelectorAll('table.data').length;
  document.body.appendChild(out);
});
</script>
"""


def cmd_inject(out, name, corrupt=None):
    page = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    if corrupt:
        k = page.index("data:image/png;base64,") + len("data:image/png;base64,")
        page = page[:k] + "AAAA" + page[k + 40:]
    page = page.replace("</body>", CHECKER + "</body>")
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        f.write(page)
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "partial":
        return cmd_partial(*args)
    if cmd == "inject":
        return cmd_inject(*args)
    {"tables": cmd_tables, "analysis": cmd_analysis, "html": cmd_html,
     "figures": cmd_figures}[cmd](*args)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
