#!/usr/bin/env python3
"""Reference JET colours for tests/unit/test_colormap.c.

Usage: colormap_ref.py IN OUT
IN holds float32 values; OUT receives 3 bytes (R, G, B) per value from
matplotlib's 'jet' colormap with bytes=True.
"""
import sys

import matplotlib
import numpy as np


def main():
    src, dst = sys.argv[1:3]
    values = np.fromfile(src, dtype=np.float32)
    rgba = matplotlib.colormaps["jet"](values, bytes=True)
    np.ascontiguousarray(rgba[:, :3]).astype(np.uint8).tofile(dst)


if __name__ == "__main__":
    main()
