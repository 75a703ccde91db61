#!/usr/bin/env python3
"""Reference XRAI regions for tests/unit/test_xrai.c.

Usage: xrai_ref.py IMAGE ATTR H W C OUTDIR
IMAGE holds H*W*C float32 values (channels last; C == 1 means a 2-D gray
image), ATTR H*W float32 values. Follows the published XRAI procedure
(docs/methods.md section 4) with scikit-image doing the resizing, the
Felzenszwalb segmentation and the disk dilation; the greedy ranking is a
direct transcription of the definition, with sparse matrices for speed.
Writes to OUTDIR: small.f64 (the image Felzenszwalb sees), labels.i32
([6,H,W] label images at the original size), xrai.f64 ([H,W] map) and
ranks.i32 ([H,W]); prints "n_masks n_steps".
"""
import os
import sys

import numpy as np
import scipy.sparse
from skimage.morphology import dilation, disk
from skimage.segmentation import felzenszwalb
from skimage.transform import resize

SCALES = [50, 100, 150, 250, 500, 1200]
SIGMA = 0.8
MIN_SIZE = 150
SEG_SHAPE = (224, 224)
VALUE_RANGE = (-1.0, 1.0)
RADIUS = 5
MIN_PIXEL_DIFF = 50
AREA_THRESHOLD = 1.0


def segmentation_input(image):
    """Rescale to VALUE_RANGE over all values, then resize (float32 in, as given)."""
    lo, hi = VALUE_RANGE
    scaled = (image - image.min()) / (image.max() - image.min())
    scaled = scaled * (hi - lo) + lo
    return resize(scaled, SEG_SHAPE, order=3, mode="constant",
                  preserve_range=True, anti_aliasing=True)


def label_images(small, shape):
    out = []
    for scale in SCALES:
        seg = felzenszwalb(small, scale=scale, sigma=SIGMA, min_size=MIN_SIZE)
        seg = resize(seg, shape, order=0, preserve_range=True, mode="constant",
                     anti_aliasing=False).astype(np.int64)
        out.append(seg)
    return out


def dilated_masks(labels):
    """One mask per label value from min to max, per scale, dilated by a disk.
    Dilation runs on the mask's bounding box grown by RADIUS, which gives the
    same result as on the whole image (nothing outside can become true)."""
    footprint = disk(RADIUS)
    masks = []
    h, w = labels[0].shape
    for seg in labels:
        for value in range(seg.min(), seg.max() + 1):
            mask = seg == value
            ys, xs = np.nonzero(mask)
            full = np.zeros((h, w), dtype=bool)
            if ys.size:
                y0, y1 = max(ys.min() - RADIUS, 0), min(ys.max() + RADIUS + 1, h)
                x0, x1 = max(xs.min() - RADIUS, 0), min(xs.max() + RADIUS + 1, w)
                full[y0:y1, x0:x1] = dilation(mask[y0:y1, x0:x1], footprint)
            masks.append(full.ravel())
    return masks


def greedy(attr, masks):
    """XRAI full algorithm: returns the map and the 1-based segment ranks."""
    n = attr.size
    attr = attr.ravel().astype(np.float64)
    rows = np.concatenate([np.full(np.count_nonzero(m), i) for i, m in enumerate(masks)])
    cols = np.concatenate([np.flatnonzero(m) for m in masks])
    member = scipy.sparse.csr_matrix((np.ones(cols.size), (rows, cols)),
                                     shape=(len(masks), n))
    covered = np.zeros(n, dtype=bool)
    out = np.full(n, -np.inf)
    remaining = list(range(len(masks)))
    steps = []
    while covered.mean() <= AREA_THRESHOLD:
        free = (~covered).astype(np.float64)
        counts = member @ free
        sums = member @ (attr * free)
        best, best_gain, kept = None, -np.inf, []
        for i in remaining:
            if counts[i] < MIN_PIXEL_DIFF:
                continue
            kept.append(i)
            gain = sums[i] / counts[i]
            if gain > best_gain:
                best, best_gain = i, gain
        remaining = kept
        if not remaining:
            break
        new = masks[best] & ~covered
        gain = attr[new].sum() / np.count_nonzero(new)
        out[new] = gain
        steps.append((new, gain))
        covered |= masks[best]
        remaining.remove(best)
    rest = out == -np.inf
    if rest.any():
        out[rest] = attr[rest].mean()
    ranks = np.zeros(n, dtype=np.int32)
    order = sorted(range(len(steps)), key=lambda k: -steps[k][1])
    for rank, k in enumerate(order):
        ranks[steps[k][0]] = rank + 1
    if rest.any():
        ranks[rest] = len(steps) + 1
    return out.reshape(attr.shape), ranks, len(steps)


def main():
    img_path, attr_path, h, w, c, outdir = sys.argv[1:7]
    h, w, c = int(h), int(w), int(c)
    image = np.fromfile(img_path, dtype=np.float32)
    image = image.reshape(h, w) if c == 1 else image.reshape(h, w, c)
    attr = np.fromfile(attr_path, dtype=np.float32).reshape(h, w)
    small = segmentation_input(image)
    labels = label_images(small, (h, w))
    masks = dilated_masks(labels)
    out, ranks, n_steps = greedy(attr, masks)
    np.asarray(small, dtype=np.float64).tofile(os.path.join(outdir, "small.f64"))
    np.asarray(labels, dtype=np.int32).tofile(os.path.join(outdir, "labels.i32"))
    out.astype(np.float64).tofile(os.path.join(outdir, "xrai.f64"))
    ranks.astype(np.int32).tofile(os.path.join(outdir, "ranks.i32"))
    print(len(masks), n_steps)


if __name__ == "__main__":
    main()
