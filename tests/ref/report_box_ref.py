#!/usr/bin/env python3
"""Reference box-plot statistics for tests/unit/test_report.c.

Usage: report_box_ref.py IN OUT
IN: one sample per line, whitespace-separated values ("nan" allowed).
OUT: one line per sample: q1 median q3 whislo whishi mean n_fliers, from
matplotlib.cbook.boxplot_stats(finite values, whis=1.5) (what plt.boxplot draws).
"""
import sys

import numpy as np
from matplotlib import cbook


def main():
    src, dst = sys.argv[1:3]
    lines = []
    with open(src) as f:
        for line in f:
            x = np.array([float(v) for v in line.split()], dtype=np.float64)
            x = x[np.isfinite(x)]
            s = cbook.boxplot_stats(x, whis=1.5)[0]
            lines.append("%.17g %.17g %.17g %.17g %.17g %.17g %d" % (
                s["q1"], s["med"], s["q3"], s["whislo"], s["whishi"], s["mean"], len(s["fliers"])))
    with open(dst, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
