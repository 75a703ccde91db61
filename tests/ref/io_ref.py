#!/usr/bin/env python3
"""io_ref.py - reference values for tests/unit/test_io.c from PIL, PyTorch and numpy.

Subcommands (all binary arrays are raw little-endian, row-major):
  pngs DIR                 write PNG layouts with PIL plus DIR/<name>.f32 = expected gray
                           (16-bit: v/257; color: 0.299 R + 0.587 G + 0.114 B; alpha ignored)
  readpng PNG OUT          decode PNG with PIL; OUT = "w h mode" line then raw bytes
  resize IN W H DW DH OUT_BILINEAR OUT_AREA
                           IN float32 [H][W]; bilinear = torch F.interpolate(align_corners=False);
                           area = exact overlap averaging in float64
  rsna CSV S R OUT         the paper's box masks (int(R*v/(S-1)), inclusive ends), one R*R uint8
                           mask per patient in order of first appearance
  siim CSV W H OUT         Kaggle's rle2mask (relative runs, column-major: reshape(W, H).T),
                           union of rows, one H*W uint8 mask per ImageId in order of appearance
"""
import sys

import numpy as np


def cmd_pngs(out):
    from PIL import Image
    rng = np.random.default_rng(7)
    h, w = 13, 17
    cases = {}
    g16 = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
    Image.fromarray(g16).save(f"{out}/gray16.png")  # mode I;16
    cases["gray16"] = g16.astype(np.float64) / 257.0
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(f"{out}/rgb.png")
    luma = lambda a: 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    cases["rgb"] = luma(rgb.astype(np.float64))
    rgba = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(f"{out}/rgba.png")
    cases["rgba"] = luma(rgba.astype(np.float64))
    la = rng.integers(0, 256, size=(h, w, 2), dtype=np.uint8)
    Image.fromarray(la, "LA").save(f"{out}/gray_alpha.png")
    cases["gray_alpha"] = la[..., 0].astype(np.float64)
    pal = Image.fromarray(rgb, "RGB").quantize(colors=16)
    pal.save(f"{out}/palette.png")
    cases["palette"] = luma(np.asarray(pal.convert("RGB")).astype(np.float64))
    bits = rng.integers(0, 2, size=(h, w)).astype(bool)
    Image.fromarray(bits).save(f"{out}/gray1.png")  # mode 1, 1-bit gray
    cases["gray1"] = bits.astype(np.float64) * 255.0
    g8 = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    Image.fromarray(g8).save(f"{out}/gray8.png")
    cases["gray8"] = g8.astype(np.float64)
    for name, arr in cases.items():
        arr.astype(np.float32).tofile(f"{out}/{name}.f32")
    print(" ".join(cases))


def cmd_readpng(path, out):
    from PIL import Image
    im = Image.open(path)
    im.load()
    arr = np.asarray(im)
    with open(out, "wb") as f:
        f.write(f"{im.width} {im.height} {im.mode}\n".encode())
        f.write(arr.astype(np.uint8).tobytes())


def area_matrix(n_in, n_out):
    m = np.zeros((n_out, n_in))
    s = n_in / n_out
    for i in range(n_out):
        a, b = i * s, (i + 1) * s
        for j in range(int(np.floor(a)), min(n_in, int(np.ceil(b)))):
            m[i, j] = max(0.0, min(b, j + 1) - max(a, j)) / s
    return m


def cmd_resize(path, w, h, dw, dh, out_bil, out_area):
    import torch
    import torch.nn.functional as F
    x = np.fromfile(path, dtype=np.float32).reshape(h, w)
    t = torch.from_numpy(x.copy())[None, None]
    y = F.interpolate(t, size=(dh, dw), mode="bilinear", align_corners=False)
    y[0, 0].numpy().astype(np.float32).tofile(out_bil)
    a = area_matrix(h, dh) @ x.astype(np.float64) @ area_matrix(w, dw).T
    a.astype(np.float32).tofile(out_area)


def read_rows(path):
    with open(path) as f:
        header = [c.strip() for c in f.readline().split(",")]
        for line in f:
            if line.strip():
                yield header, [c.strip() for c in line.rstrip("\n").split(",")]


def cmd_rsna(path, s, r, out):
    masks = {}
    for header, row in read_rows(path):
        rec = dict(zip(header, row))
        m = masks.setdefault(rec["patientId"], np.zeros((r, r), np.uint8))
        if rec["Target"] == "1":
            x, y, bw, bh = (float(rec[k]) for k in ("x", "y", "width", "height"))
            x0, x1 = int(r * x / (s - 1)), int(r * (x + bw) / (s - 1))
            y0, y1 = int(r * y / (s - 1)), int(r * (y + bh) / (s - 1))
            m[y0:y1 + 1, x0:x1 + 1] = 1
    with open(out, "wb") as f:
        for m in masks.values():
            f.write(m.tobytes())


def rle2mask(rle, width, height):
    mask = np.zeros(width * height, np.uint8)
    array = np.asarray([int(v) for v in rle.split()])
    current = 0
    for start, length in zip(array[0::2], array[1::2]):
        current += start
        mask[current:current + length] = 1
        current += length
    return mask.reshape(width, height).T


def cmd_siim(path, w, h, out):
    masks = {}
    for header, row in read_rows(path):
        rec = dict(zip(header, row))
        m = masks.setdefault(rec["ImageId"], np.zeros((h, w), np.uint8))
        if rec["EncodedPixels"] != "-1":
            m |= rle2mask(rec["EncodedPixels"], w, h)
    with open(out, "wb") as f:
        for m in masks.values():
            f.write(np.ascontiguousarray(m).tobytes())


def main(argv):
    cmd = argv[1]
    if cmd == "pngs":
        cmd_pngs(argv[2])
    elif cmd == "readpng":
        cmd_readpng(argv[2], argv[3])
    elif cmd == "resize":
        cmd_resize(argv[2], *map(int, argv[3:7]), argv[7], argv[8])
    elif cmd == "rsna":
        cmd_rsna(argv[2], int(argv[3]), int(argv[4]), argv[5])
    elif cmd == "siim":
        cmd_siim(argv[2], int(argv[3]), int(argv[4]), argv[5])
    else:
        sys.exit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main(sys.argv)
