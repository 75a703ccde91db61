#!/usr/bin/env python3
"""Reference post-processing for tests/unit/test_postproc.c (numpy, float64).

Usage:
  postproc_ref.py p1 IN OUT C H W LAYOUT          LAYOUT: chw or hwc
  postproc_ref.py p2 IN OUT H W
  postproc_ref.py ggcam GBP GCAM OUT C1 C2 H W LAYOUT
  postproc_ref.py all MAP GCAM OUT C H W          P1(MAP), ggcam, P2(GCAM), CHW
  postproc_ref.py percentile IN OUT SIZES Q [Q ...]
                  IN: float64 arrays of the comma-separated SIZES, one after
                  another; OUT: for each array, its percentile at every Q
Maps are float32 files; OUT receives float64 values. Prints "ok", or
"undefined" when the normalization would divide by zero.
docs/methods.md section 4: P1 = clip((s-min)/(p99-min), 0, 1) with s the channel
sum of |m| and p99 = numpy.percentile(s, 99); P2 = min-max; Guided Grad-CAM =
P2(P1(gbp) * P1(gcam)).
"""
import sys

import numpy as np


class Undefined(Exception):
    pass


def load_map(path, c, h, w, layout):
    m = np.fromfile(path, dtype=np.float32).astype(np.float64)
    if layout == "chw":
        return m.reshape(c, h, w)
    return np.moveaxis(m.reshape(h, w, c), -1, 0)


def p1(m):
    s = np.abs(m).sum(axis=0)
    lo, p99 = s.min(), np.percentile(s, 99)
    if not p99 > lo:
        raise Undefined
    return np.clip((s - lo) / (p99 - lo), 0.0, 1.0)


def p2(m):
    lo, hi = m.min(), m.max()
    if not hi > lo:
        raise Undefined
    return (m - lo) / (hi - lo)


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    try:
        if mode == "p1":
            src, dst, c, h, w, layout = args
            out = p1(load_map(src, int(c), int(h), int(w), layout))
        elif mode == "p2":
            src, dst, h, w = args
            out = p2(np.fromfile(src, dtype=np.float32).astype(np.float64).reshape(int(h), int(w)))
        elif mode == "ggcam":
            gbp, gcam, dst, c1, c2, h, w, layout = args
            h, w = int(h), int(w)
            out = p2(p1(load_map(gbp, int(c1), h, w, layout)) *
                     p1(load_map(gcam, int(c2), h, w, layout)))
        elif mode == "all":
            src, gsrc, dst, c, h, w = args
            c, h, w = int(c), int(h), int(w)
            m, g = load_map(src, c, h, w, "chw"), load_map(gsrc, 1, h, w, "chw")
            out = np.concatenate([p1(m).ravel(), p2(p1(m) * p1(g)).ravel(), p2(g[0]).ravel()])
        elif mode == "percentile":
            src, dst, sizes = args[0], args[1], [int(n) for n in args[2].split(",")]
            values = np.fromfile(src, dtype=np.float64)
            out, start = [], 0
            for n in sizes:
                out += [np.percentile(values[start:start + n], float(q)) for q in args[3:]]
                start += n
            out = np.array(out)
        else:
            sys.exit("unknown mode " + mode)
    except Undefined:
        print("undefined")
        return
    np.asarray(out, dtype=np.float64).tofile(dst)
    print("ok")


if __name__ == "__main__":
    main()
