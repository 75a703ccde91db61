#!/usr/bin/python3
"""metrics_ref.py - reference values for salcheck's metrics (common/metrics) from the
reference libraries: scikit-learn, scikit-image, scipy and numpy (Debian 12:
sklearn 1.2, skimage 0.19, scipy 1.10, numpy 1.24).

Usage: metrics_ref.py INPUT OUTPUT

tests/unit/test_metrics.c writes the inputs it scored (its random and structured
maps, masks and samples) to INPUT; this script computes what the reference
library returns for each case and writes it to OUTPUT, and the C test compares.
Maps are passed to the libraries as float64 (salcheck computes in double).

INPUT  (little endian): b"SCMREF1\\n", then per case
         u32 case id, 16-byte op name (NUL padded), u32 h, u32 w,
         u32 n_params, f64 params[n_params],
         u32 n_arrays, per array: u32 dtype (0 f32, 1 u8, 2 f64), u64 count, data
OUTPUT : b"SCMOUT1\\n", then per case: u32 case id, u64 n, f64 values[n]

Ops and what they return:
  pr          map, mask -> [auc(recall, precision) of precision_recall_curve,
                            average_precision_score, roc_auc_score]  (NaN when undefined)
  otsu        map -> [skimage.filters.threshold_otsu(map)]
  ssim        a, b; [win_size, data_range, gaussian, sigma, sample_cov]
              -> [skimage.metrics.structural_similarity]
  spearman    a, b; [absolute] -> [scipy.stats.spearmanr(a, b).correlation]
  pearson     a, b -> [scipy.stats.pearsonr(a, b)[0]]
  hog         map; [orientations, cell_r, cell_c, block_r, block_c, norm] -> features
  hogsim      a, b; same params -> [spearmanr(hog(a), hog(b))]
  wilcoxon    x, y; [omit] -> [statistic, pvalue] of scipy.stats.wilcoxon(x, y)
  summary     x -> [nanmean, nanstd(ddof=1), nanmin, nanpercentile 25, nanmedian,
                    nanpercentile 75, nanmax]
  percentile  x; [q...] (percent) -> np.percentile(x, q)
"""
import struct
import sys
import warnings

import numpy as np
import scipy.stats
from skimage.feature import hog
from skimage.filters import threshold_otsu
from skimage.metrics import structural_similarity
from sklearn.metrics import (auc, average_precision_score, precision_recall_curve,
                             roc_auc_score)

DTYPES = {0: np.float32, 1: np.uint8, 2: np.float64}
HOG_NORMS = ["L2-Hys", "L2", "L1", "L1-sqrt"]


def read_cases(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"SCMREF1\n":
        raise SystemExit(f"{path}: not a metrics reference input (bad magic)")
    pos = 8
    cases = []
    while pos < len(data):
        case_id, = struct.unpack_from("<I", data, pos)
        op = data[pos + 4:pos + 20].rstrip(b"\0").decode()
        h, w, n_params = struct.unpack_from("<III", data, pos + 20)
        pos += 32
        params = list(struct.unpack_from(f"<{n_params}d", data, pos))
        pos += 8 * n_params
        n_arrays, = struct.unpack_from("<I", data, pos)
        pos += 4
        arrays = []
        for _ in range(n_arrays):
            dtype, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            dt = np.dtype(DTYPES[dtype]).newbyteorder("<")
            arrays.append(np.frombuffer(data, dtype=dt, count=count, offset=pos).copy())
            pos += dt.itemsize * count
        cases.append((case_id, op, h, w, params, arrays))
    return cases


def as_map(a, h, w):
    return a.reshape(h, w).astype(np.float64)


def spearman(x, y):
    return float(scipy.stats.spearmanr(x, y).correlation)


def hog_args(params):
    o, cr, cc, br, bc, norm = (int(p) for p in params[:6])
    return dict(orientations=o, pixels_per_cell=(cr, cc), cells_per_block=(br, bc),
                block_norm=HOG_NORMS[norm], transform_sqrt=False, feature_vector=True)


def compute(op, h, w, params, arrays):
    if op == "pr":
        y = arrays[1] != 0
        s = arrays[0].astype(np.float64)
        if not y.any():
            return [np.nan, np.nan, np.nan]
        precision, recall, _ = precision_recall_curve(y, s)
        roc = roc_auc_score(y, s) if not y.all() else np.nan
        return [auc(recall, precision), average_precision_score(y, s), roc]
    if op == "otsu":
        return [threshold_otsu(as_map(arrays[0], h, w))]
    if op == "ssim":
        win, data_range, gaussian, sigma, sample_cov = params[:5]
        return [structural_similarity(as_map(arrays[0], h, w), as_map(arrays[1], h, w),
                                      win_size=int(win), data_range=data_range,
                                      gaussian_weights=bool(gaussian), sigma=sigma,
                                      use_sample_covariance=bool(sample_cov))]
    if op == "spearman":
        a, b = (x.astype(np.float64) for x in arrays[:2])
        if params[0]:
            a, b = np.abs(a), np.abs(b)
        return [spearman(a, b)]
    if op == "pearson":
        return [float(scipy.stats.pearsonr(arrays[0].astype(np.float64),
                                           arrays[1].astype(np.float64))[0])]
    if op == "hog":
        return hog(as_map(arrays[0], h, w), **hog_args(params))
    if op == "hogsim":
        return [spearman(hog(as_map(arrays[0], h, w), **hog_args(params)),
                         hog(as_map(arrays[1], h, w), **hog_args(params)))]
    if op == "wilcoxon":
        policy = "omit" if params[0] else "propagate"
        try:
            res = scipy.stats.wilcoxon(arrays[0], arrays[1], nan_policy=policy)
            return [float(res.statistic), float(res.pvalue)]
        except ValueError:  # all differences zero
            return [np.nan, np.nan]
    if op == "summary":
        x = arrays[0]
        return [np.nanmean(x), np.nanstd(x, ddof=1), np.nanmin(x), np.nanpercentile(x, 25),
                np.nanmedian(x), np.nanpercentile(x, 75), np.nanmax(x)]
    if op == "percentile":
        return list(np.percentile(arrays[0], params))
    raise SystemExit(f"unknown op {op!r}")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    warnings.simplefilter("ignore")  # constant inputs, no positives: NaN is the answer
    out = [b"SCMOUT1\n"]
    for case_id, op, h, w, params, arrays in read_cases(sys.argv[1]):
        values = np.asarray(compute(op, h, w, params, arrays), dtype="<f8").ravel()
        out.append(struct.pack("<IQ", case_id, values.size))
        out.append(values.tobytes())
    with open(sys.argv[2], "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
