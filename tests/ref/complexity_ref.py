#!/usr/bin/python3
"""Reference for the map-only checks (common/metrics/complexity.c) with numpy/scipy.

Written from the published definitions (docs/methods.md, "Checks beyond the
paper") and the Quantus toolkit's documented behaviour:
  sparseness   Gini index of |a| + 1e-7 sorted ascending (Chalasani et al. 2020)
  complexity   scipy.stats.entropy of |a| / sum |a| (Bhatt et al. 2020)
  bins         Freedman-Diaconis, Scott, sqrt, Sturges, Rice with n = pixels of
               one map, int() then clamped to [10, 200]
  entropy      scipy.stats.entropy of numpy.histogram(a, bins) counts
  emprt        (H(randomized) - H(original)) / H(original)

usage: complexity_ref.py MAPS.f32 K N BINS OUT.f64
MAPS.f32 holds K maps of N float32 values. OUT.f64 receives, per map k:
sparseness, complexity, discrete entropy with BINS bins; then the five rules'
bin counts over all K maps pooled; then eMPRT of map k+1 against map k for
k = 0..K-2.
"""
import sys

import numpy as np
import scipy.stats


def gini(a):
    a = np.sort(np.abs(a.astype(np.float64)) + 1e-7)
    n = a.shape[0]
    i = np.arange(1, n + 1)
    return np.sum((2 * i - n - 1) * a) / (n * np.sum(a))


def complexity(a):
    a = np.abs(a.astype(np.float64))
    return scipy.stats.entropy(a / a.sum())


def discrete_entropy(a, bins):
    counts, _ = np.histogram(a.astype(np.float64), bins=bins)
    return scipy.stats.entropy(counts)


def rule_bins(values, n, rule):
    v = values.astype(np.float64)
    if rule == "freedman-diaconis":
        iqr = np.percentile(v, 75) - np.percentile(v, 25)
        width = max(2 * iqr / n ** (1 / 3), 1e-6)
        b = (v.max() - v.min()) / width
    elif rule == "scott":
        width = 3.5 * np.std(v) / n ** (1 / 3)
        b = (v.max() - v.min()) / width if width > 0 else 0
    elif rule == "sqrt":
        b = np.sqrt(n)
    elif rule == "sturges":
        b = np.log2(n) + 1
    else:
        b = 2 * n ** (1 / 3)
    return float(min(max(int(b), 10), 200))


def main():
    path, k, n, bins, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    maps = np.fromfile(path, dtype=np.float32).reshape(k, n)
    res = []
    for a in maps:
        res += [gini(a), complexity(a), discrete_entropy(a, bins)]
    for rule in ["freedman-diaconis", "scott", "sqrt", "sturges", "rice"]:
        res.append(rule_bins(maps.ravel(), n, rule))
    for j in range(k - 1):
        h0 = discrete_entropy(maps[j], bins)
        h1 = discrete_entropy(maps[j + 1], bins)
        res.append((h1 - h0) / h0 if h0 > 0 else np.nan)
    np.asarray(res, dtype=np.float64).tofile(out)


if __name__ == "__main__":
    main()
