#!/usr/bin/env python3
"""Reference segmentation for tests/unit/test_felzenszwalb.c.

Usage: felzenszwalb_ref.py IN H W C SCALE SIGMA MIN_SIZE OUT
IN holds H*W*C float64 values (row-major, channels last); OUT receives H*W
int32 labels from skimage.segmentation.felzenszwalb with the given
parameters. Prints the number of segments.
"""
import sys

import numpy as np
from skimage.segmentation import felzenszwalb


def main():
    src, h, w, c, scale, sigma, min_size, dst = sys.argv[1:9]
    h, w, c = int(h), int(w), int(c)
    image = np.fromfile(src, dtype=np.float64).reshape(h, w, c)
    labels = felzenszwalb(image, scale=float(scale), sigma=float(sigma),
                          min_size=int(min_size), channel_axis=-1)
    labels.astype(np.int32).tofile(dst)
    print(int(labels.max()) + 1)


if __name__ == "__main__":
    main()
