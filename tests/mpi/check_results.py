#!/usr/bin/python3
"""Read salcheck results files as a user would (h5py) and check them.

usage:
  check_results.py schema FILE            shapes, names, attributes, summary tables
  check_results.py equal FILE_A FILE_B    every map, metric, score and pair similarity equal
  check_results.py honest FILE            AUPRC (sklearn) and SSIM (skimage) recomputed from the
                                          stored maps equal the stored metrics
  check_results.py maps-equal A.h5 B.h5   two `salcheck explain` outputs: the same maps, logits
                                          and target, bit for bit
  check_results.py kept FILE BEFORE.npz   cells done before a resume kept their timing/rank
  check_results.py snapshot FILE OUT.npz  save done flags, seconds and ranks
  check_results.py beyond FILE            sparseness, complexity and eMPRT recomputed from the
                                          stored maps (numpy/scipy, tests/ref/complexity_ref.py)
                                          equal the stored values; every check parameter stored
Prints "N passed, N failed".
"""
import sys

import h5py
import numpy as np

passed = failed = 0


def check(cond, msg):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("[FAIL]", msg)


def schema(path):
    with h5py.File(path, "r") as f:
        n = f["images/id"].shape[0]
        v = f["variants/name"].shape[0]
        m = f["methods/name"].shape[0]
        h = int(f.attrs["image_size"])
        check(n > 0 and v > 0 and m > 0, "non-empty plan")
        check(f["images/gt"].shape == (n, h, h), "gt shape")
        for name in f["methods/name"][()]:
            name = name.decode()
            check(f["maps/" + name].shape == (v, n, h, h), "maps/%s shape" % name)
        for k in f["metrics"]:
            check(f["metrics/" + k].shape == (m, v, n), "metrics/%s shape" % k)
        p = f["pairs/index"].shape[0]
        check(f["pairs/index"].shape == (p, 4), "pairs/index shape")
        job = f.attrs.get("job", b"")
        job = job.decode() if isinstance(job, bytes) else str(job)
        check("[job]" in job and "[methods]" in job, "job text attribute")
        done, planned = f["status/done"][()], f["status/planned"][()]
        check(np.array_equal(done, planned), "every planned cell done")
        check(f["status/pair_done"][()].all(), "every pair done")
        au = f["metrics/auprc"][()]
        check(np.isfinite(au[:, planned.astype(bool)]).mean() > 0.8, "AUPRC mostly defined")
        s = f["summary/metrics"][()]
        check(len(s) == len(f["metrics"]) * m * v, "summary/metrics rows")
        check({"metric", "method", "variant", "mean", "ci_lo", "ci_hi"} <= set(s.dtype.names),
              "summary/metrics columns")
        check(len(f["summary/sanity"][()]) > 0, "summary/sanity rows")
        kinds = set(x.decode() for x in f["variants/kind"][()])
        check({"trained", "cascading", "untrained"} <= kinds, "variant kinds")


def equal(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        planned = fa["status/planned"][()].astype(bool)
        for name in fa["maps"]:
            x, y = fa["maps/" + name][()], fb["maps/" + name][()]
            check(np.array_equal(x[planned], y[planned], equal_nan=True), "maps/%s equal" % name)
        for name in fa["metrics"]:
            check(np.array_equal(fa["metrics/" + name][()], fb["metrics/" + name][()],
                                 equal_nan=True), "metrics/%s equal" % name)
        for name in fa["pairs"]:
            x, y = fa["pairs/" + name][()], fb["pairs/" + name][()]
            if x.dtype.kind == "f":
                check(np.array_equal(x, y, equal_nan=True), "pairs/%s equal" % name)
            else:
                check(np.array_equal(x, y), "pairs/%s equal" % name)
        check(np.array_equal(fa["scores/logits"][()][planned], fb["scores/logits"][()][planned]),
              "logits equal")
        for name in fa.get("curves", {}):
            check("curves" in fb and np.array_equal(fa["curves/" + name][()], fb["curves/" + name][()],
                                                    equal_nan=True), "curves/%s equal" % name)


def maps_equal(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        check(sorted(fa["maps"]) == sorted(fb["maps"]) and len(fa["maps"]) > 0, "same methods")
        for name in fa["maps"]:
            check(name in fb["maps"] and np.array_equal(fa["maps/" + name][()], fb["maps/" + name][()]),
                  "maps/%s equal" % name)
        for name in ("logits", "target"):
            check(np.array_equal(fa[name][()], fb[name][()]), "%s equal" % name)


def honest(path):
    from sklearn.metrics import auc, precision_recall_curve
    from skimage.metrics import structural_similarity
    with h5py.File(path, "r") as f:
        methods = [x.decode() for x in f["methods/name"][()]]
        gt = f["images/gt"][()]
        planned = f["status/planned"][()]
        au = f["metrics/auprc"][()]
        worst = 0.0
        count = 0
        for mi, name in enumerate(methods):
            maps = f["maps/" + name]
            for v in range(planned.shape[0]):
                for i in range(planned.shape[1]):
                    if not planned[v, i] or not np.isfinite(au[mi, v, i]):
                        continue
                    mp = maps[v, i].astype(np.float64)
                    p, r, _ = precision_recall_curve(gt[i].ravel(), mp.ravel())
                    worst = max(worst, abs(auc(r, p) - au[mi, v, i]))
                    count += 1
        check(count > 0 and worst < 1e-9, "AUPRC from stored maps (%d maps): max diff %.2e" % (count, worst))
        idx = f["pairs/index"][()]
        ssim = f["pairs/ssim"][()]
        worst = 0.0
        count = 0
        for mi, name in enumerate(methods):
            maps = f["maps/" + name]
            for q in range(0, len(idx), max(1, len(idx) // 40)):
                if not np.isfinite(ssim[mi, q]):
                    continue
                va, ia, vb, ib = idx[q]
                a = maps[va, ia].astype(np.float64)
                b = maps[vb, ib].astype(np.float64)
                s = structural_similarity(a, b, win_size=7, data_range=2.0, full=True)[1]
                ref = s[3:-3, 3:-3].mean()
                worst = max(worst, abs(ref - ssim[mi, q]))
                count += 1
        check(count > 0 and worst < 1e-9, "SSIM from stored maps (%d pairs): max diff %.2e" % (count, worst))


def params_of(f):
    text = f["methods"].attrs["params"]
    text = text.decode() if isinstance(text, bytes) else str(text)
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" = ")
        out[k.strip()] = v.strip()
    return out


def beyond(path):
    import os
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
    import complexity_ref as cx
    with h5py.File(path, "r") as f:
        params = params_of(f)
        for key in ("deletion.steps", "deletion.fill", "insertion.start", "checks.probability",
                    "road.percentages", "road.noise", "sensitivity.samples",
                    "sensitivity.radius", "emprt.bins"):
            check(key in params, "parameter %s stored in /methods params" % key)
        methods = [m.decode() for m in f["methods/name"][()]]
        planned = f["status/planned"][()].astype(bool)
        for name, fn in (("sparseness", cx.gini), ("complexity", cx.complexity)):
            if name not in f["metrics"]:
                continue
            stored = f["metrics/" + name][()]
            worst, count = 0.0, 0
            for mi, m in enumerate(methods):
                maps = f["maps/" + m][()]
                for v, i in zip(*np.nonzero(planned)):
                    a = maps[v, i].ravel()
                    if not np.isfinite(a).all() or not a.any():
                        continue
                    worst = max(worst, abs(fn(a) - stored[mi, v, i]))
                    count += 1
            check(count > 0 and worst < 1e-10,
                  "%s from the stored maps (%d maps): max diff %.2e" % (name, count, worst))
        if "emprt" in f["pairs"]:
            idx = f["pairs/index"][()]
            exp = f["pairs/experiment"][()]
            stored = f["pairs/emprt"][()]
            bins_param = params["emprt.bins"]
            worst, count = 0.0, 0
            for mi, m in enumerate(methods):
                maps = f["maps/" + m][()]
                if bins_param.isdigit():
                    bins = int(bins_param)
                else:  # the rule over the distinct original maps of the randomization pairs
                    orig = sorted({(int(r[2]), int(r[3])) for r, e in zip(idx, exp) if e in (0, 1, 2)})
                    pool = [maps[v, i].ravel() for v, i in orig if np.isfinite(maps[v, i]).all()]
                    bins = int(cx.rule_bins(np.concatenate(pool), maps.shape[2] * maps.shape[3],
                                            bins_param))
                for q in range(len(idx)):
                    va, ia, vb, ib = idx[q]
                    a, b = maps[va, ia].ravel(), maps[vb, ib].ravel()
                    if not (np.isfinite(a).all() and np.isfinite(b).all()):
                        continue
                    h0, h1 = cx.discrete_entropy(b, bins), cx.discrete_entropy(a, bins)
                    ref = (h1 - h0) / h0 if h0 > 0 else np.nan
                    if np.isnan(ref):
                        check(np.isnan(stored[mi, q]), "eMPRT NaN where the original is constant")
                        continue
                    worst = max(worst, abs(ref - stored[mi, q]))
                    count += 1
            check(count > 0 and worst < 1e-10,
                  "eMPRT from the stored maps (%d pairs, bins %s): max diff %.2e"
                  % (count, bins_param, worst))


def snapshot(path, out):
    with h5py.File(path, "r") as f:
        np.savez(out, done=f["status/done"][()], seconds=f["status/seconds"][()],
                 rank=f["status/rank"][()])
    print("snapshot: %d cells done" % int(np.load(out)["done"].sum()))


def kept(path, before):
    b = np.load(before)
    with h5py.File(path, "r") as f:
        d = b["done"].astype(bool)
        check(d.sum() > 0, "some cells were done before the kill (%d)" % d.sum())
        check(d.sum() < f["status/planned"][()].sum(), "some cells were left for the resume")
        check(np.array_equal(f["status/seconds"][()][d], b["seconds"][d]) and
              np.array_equal(f["status/rank"][()][d], b["rank"][d]),
              "cells finished before the kill were not recomputed")


def main():
    cmd = sys.argv[1]
    if cmd == "schema":
        schema(sys.argv[2])
    elif cmd == "equal":
        equal(sys.argv[2], sys.argv[3])
    elif cmd == "maps-equal":
        maps_equal(sys.argv[2], sys.argv[3])
    elif cmd == "honest":
        honest(sys.argv[2])
    elif cmd == "beyond":
        beyond(sys.argv[2])
    elif cmd == "snapshot":
        snapshot(sys.argv[2], sys.argv[3])
        return
    elif cmd == "kept":
        kept(sys.argv[2], sys.argv[3])
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
