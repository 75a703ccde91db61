#!/usr/bin/env python3
"""formats_ref.py - references for the image readers and the data set kinds.

Usage: formats_ref.py TMPDIR TEST_FORMATS SALCHECK
  TMPDIR        the scratch folder of test_formats (phantom layouts already written there)
  TEST_FORMATS  the test binary: its --decode and --masks modes print salcheck's view
  SALCHECK      the salcheck binary (writes the NIH phantom layout)

Checks, each printed as [ok] or [FAIL]; the last line is "REF OK" when all pass:
  * DICOM pixels equal pydicom's apply_modality_lut + apply_voi_lut (scaled to 0..255,
    MONOCHROME1 inverted) on uncompressed files: the phantom's variants and files written
    here with pydicom (signed pixels, rescale, VOI LUT Sequence, Modality LUT Sequence,
    SIGMOID and LINEAR_EXACT windows, several windows, the full and minmax options);
  * compressed DICOMs (JPEG lossless, JPEG-LS, RLE, JPEG baseline) equal the same reference
    on the file decompressed by DCMTK's own tools (dcmdjpeg, dcmdjpls, dcmdrle);
  * JPEG files equal PIL's decode (gray; colour through the 0.299/0.587/0.114 luma);
  * unsupported DICOMs are refused with the reason named (JPEG 2000 with its UID,
    multi-frame, colour, no pixel data);
  * masks and labels of every data set kind equal this script's reading of the same
    annotation files (RSNA and NIH boxes with the paper's box rule, SIIM relative RLE,
    VinDr reader agreement, CheXlocalize COCO RLE decoded here from its definition).
"""
import os
import subprocess
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

TMP, TEST_BIN, SALCHECK = sys.argv[1], sys.argv[2], sys.argv[3]
RES = 64
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"[ok]   {name}")
    else:
        failed += 1
        print(f"[FAIL] {name} {detail}")


# ------------------------------------------------------------------ DICOM pixels

def render_ref(ds, window="voi"):
    """Gray 0..255 of a single-frame MONOCHROME DICOM, the way io/dicom.h documents it."""
    arr = ds.pixel_array
    m = apply_modality_lut(arr, ds).astype(np.float64)
    has_voi = "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)
    if window == "voi" and has_voi:
        if "VOILUTSequence" in ds:
            depth = int(ds.VOILUTSequence[0].LUTDescriptor[2])
            out = apply_voi_lut(m.astype(np.int64), ds).astype(np.float64) * 255.0 / (2 ** depth - 1)
        else:
            bs = int(ds.BitsStored)
            if int(ds.PixelRepresentation) == 0:
                y_min, y_max = 0.0, 2.0 ** bs - 1
            else:
                y_min, y_max = -(2.0 ** (bs - 1)), 2.0 ** (bs - 1) - 1
            if "RescaleSlope" in ds and "RescaleIntercept" in ds:
                y_min = y_min * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                y_max = y_max * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            y = apply_voi_lut(m, ds, prefer_lut=False).astype(np.float64)
            out = (y - y_min) / (y_max - y_min) * 255.0
    elif window == "minmax":
        lo, hi = m.min(), m.max()
        out = (m - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(m)
    else:  # full range of the stored bits through the modality transform
        if "ModalityLUTSequence" in ds:
            lo, hi = 0.0, 2.0 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
        else:
            bs = int(ds.BitsStored)
            s_lo, s_hi = (0.0, 2.0 ** bs - 1) if int(ds.PixelRepresentation) == 0 else \
                (-(2.0 ** (bs - 1)), 2.0 ** (bs - 1) - 1)
            slope = float(ds.get("RescaleSlope", 1.0))
            icpt = float(ds.get("RescaleIntercept", 0.0))
            lo, hi = sorted((s_lo * slope + icpt, s_hi * slope + icpt))
        out = (m - lo) * 255.0 / (hi - lo)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 255.0 - out
    return out


def salcheck_decode(path, window="voi"):
    out = os.path.join(TMP, "decoded.raw")
    r = subprocess.run([TEST_BIN, "--decode", path, window, out], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()
    with open(out, "rb") as f:
        w, h = map(int, f.readline().split())
        px = np.frombuffer(f.read(), dtype=np.float32)
    return px.reshape(h, w), ""


def compare_dicom(name, path, ref_path=None, window="voi"):
    ds = pydicom.dcmread(ref_path or path)
    ref = render_ref(ds, window)
    got, err = salcheck_decode(path, window)
    if got is None:
        check(name, False, f"salcheck refused it: {err}")
        return
    diff = np.abs(got.astype(np.float64) - ref).max() if got.shape == ref.shape else np.inf
    check(f"{name} ({window})", diff <= 1e-3, f"max |diff| {diff:.3g}")


def new_dicom(path, pixels, bits_stored, signed=False, mono1=False, **attrs):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if mono1 else "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16 if bits_stored > 8 else 8
    ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    for k, v in attrs.items():
        setattr(ds, k, v)
    dtype = (np.int16 if signed else np.uint16) if bits_stored > 8 else np.uint8
    ds.PixelData = pixels.astype(dtype).tobytes()
    ds.save_as(path, write_like_original=False)
    return path


def lut_item(n, first, depth, data):
    item = Dataset()
    item.add_new(0x00283002, "US", [n, first, depth])  # LUTDescriptor
    item.add_new(0x00283006, "US", [int(v) for v in data])  # LUTData
    return item


def dicom_checks():
    rng = np.random.default_rng(7)
    # the phantom's own uncompressed variants
    for rel in ["dcm-explicit-8-0", "dcm-implicit-8-1", "dcm-explicit-12-0", "dcm-implicit-16-1"]:
        p = os.path.join(TMP, rel, "stage_2_train_images", "phantom-000003.dcm")
        compare_dicom(f"phantom {rel}", p)
        compare_dicom(f"phantom {rel}", p, window="minmax")
    d = os.path.join(TMP, "pydicom")
    os.makedirs(d, exist_ok=True)
    img12 = rng.integers(0, 4096, size=(40, 56))
    imgs = rng.integers(-2048, 2048, size=(40, 56))
    files = [
        ("signed 12-bit, rescale, window", new_dicom(f"{d}/signed.dcm", imgs, 12, signed=True,
                                                     RescaleSlope="0.5", RescaleIntercept="100",
                                                     WindowCenter="150", WindowWidth="900")),
        ("12-bit, two windows (first used)", new_dicom(f"{d}/two.dcm", img12, 12, WindowCenter=["2000", "500"],
                                                        WindowWidth=["1000", "300"])),
        ("12-bit MONOCHROME1, LINEAR_EXACT", new_dicom(f"{d}/exact.dcm", img12, 12, mono1=True,
                                                        WindowCenter="1800", WindowWidth="2200",
                                                        VOILUTFunction="LINEAR_EXACT")),
        ("16-bit SIGMOID", new_dicom(f"{d}/sigmoid.dcm", rng.integers(0, 65536, size=(40, 56)), 16,
                                     WindowCenter="30000", WindowWidth="20000", VOILUTFunction="SIGMOID")),
        ("16-bit rescale, no window", new_dicom(f"{d}/full.dcm", rng.integers(0, 65536, size=(40, 56)), 16,
                                                RescaleSlope="2", RescaleIntercept="-1024")),
        ("10-bit MONOCHROME1, no window", new_dicom(f"{d}/ten.dcm", rng.integers(0, 1024, size=(40, 56)), 10,
                                                    mono1=True)),
    ]
    voi = new_dicom(f"{d}/voilut.dcm", img12, 12)
    ds = pydicom.dcmread(voi)
    # 16-bit entries: pydicom 2.3 indexes an 8-bit LUT with 8-bit indices, which wrap past 255
    ds.VOILUTSequence = [lut_item(3000, 500, 16, np.linspace(0, 65535, 3000).round())]
    ds.save_as(voi, write_like_original=False)
    files.append(("12-bit VOI LUT Sequence", voi))
    mod = new_dicom(f"{d}/modlut.dcm", rng.integers(0, 1024, size=(40, 56)), 10)
    ds = pydicom.dcmread(mod)
    ds.ModalityLUTSequence = [lut_item(900, 50, 16, (np.arange(900) ** 1.3).astype(int))]
    ds.save_as(mod, write_like_original=False)
    files.append(("10-bit Modality LUT Sequence", mod))
    for name, path in files:
        for window in ("voi", "full", "minmax"):
            compare_dicom(name, path, window=window)

    # compressed: DCMTK's command-line decoders give the file pydicom reads
    tools = {"jpeg-lossless": "dcmdjpeg", "jpeg-baseline": "dcmdjpeg", "jpeg-ls": "dcmdjpls", "rle": "dcmdrle"}
    for rel in ["dcm-jpeg-lossless-16-1", "dcm-jpeg-lossless-12-0", "dcm-jpeg-ls-12-1", "dcm-jpeg-ls-16-0",
                "dcm-rle-16-1", "dcm-rle-8-0", "dcm-jpeg-baseline"]:
        src = os.path.join(TMP, rel, "stage_2_train_images", "phantom-000004.dcm")
        syntax = next(k for k in tools if rel.startswith("dcm-" + k))
        dst = os.path.join(d, rel + ".dcm")
        r = subprocess.run([tools[syntax], src, dst], capture_output=True, text=True)
        if r.returncode != 0:
            check(f"{tools[syntax]} {rel}", False, r.stderr)
            continue
        compare_dicom(f"compressed {rel} vs {tools[syntax]}", src, ref_path=dst)

    # refused, with the reason
    enc = new_dicom(f"{d}/j2k.dcm", img12, 12)
    ds = pydicom.dcmread(enc)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.is_implicit_VR, ds.is_little_endian = False, True
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
    ds["PixelData"].VR = "OB"
    ds.save_as(enc, write_like_original=False)
    multi = new_dicom(f"{d}/multi.dcm", np.zeros((80, 56)), 12, NumberOfFrames=2)
    ds = pydicom.dcmread(multi)
    ds.Rows = 40
    ds.save_as(multi, write_like_original=False)
    rgb = new_dicom(f"{d}/rgb.dcm", np.zeros((40, 168)), 8)
    ds = pydicom.dcmread(rgb)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Columns, ds.PlanarConfiguration = 3, "RGB", 56, 0
    ds.save_as(rgb, write_like_original=False)
    nopix = new_dicom(f"{d}/nopix.dcm", img12, 12)
    ds = pydicom.dcmread(nopix)
    del ds.PixelData
    ds.save_as(nopix, write_like_original=False)
    for name, path, words in [("JPEG 2000", enc, ["JPEG 2000", "1.2.840.10008.1.2.4.90"]),
                              ("multi-frame", multi, ["multi-frame", "2 frames"]),
                              ("colour", rgb, ["colour", "RGB"]),
                              ("no pixel data", nopix, ["no pixel data"])]:
        got, err = salcheck_decode(path)
        check(f"refuses {name}", got is None and all(w in err for w in words), f"got: {err!r}")


# -------------------------------------------------------------------------- JPEG

def jpeg_checks():
    for i in (0, 5):
        p = os.path.join(TMP, "jpeg", "images", f"phantom-{i:06d}.jpg")
        ref = np.asarray(Image.open(p)).astype(np.float64)
        got, err = salcheck_decode(p)
        check(f"JPEG gray {i} equals PIL", got is not None and np.array_equal(got, ref), err)
    rng = np.random.default_rng(3)
    p = os.path.join(TMP, "colour.jpg")
    Image.fromarray(rng.integers(0, 256, size=(30, 41, 3), dtype=np.uint8)).save(p, quality=90)
    rgb = np.asarray(Image.open(p).convert("RGB")).astype(np.float64)
    ref = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    got, err = salcheck_decode(p)
    diff = np.abs(got - ref).max() if got is not None else np.inf
    check("JPEG colour equals PIL RGB + luma", diff <= 1e-3, f"max |diff| {diff} {err}")


# ----------------------------------------------------------------- data set masks

def area_weights(n_in, n_out):
    """Rows: output cells; weight = overlap of [j, j+1) with [i*s, (i+1)*s) / s (OpenCV INTER_AREA)."""
    s = n_in / n_out
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        a, b = i * s, (i + 1) * s
        for j in range(int(np.floor(a)), min(n_in, int(np.ceil(b)))):
            w[i, j] = (min(b, j + 1) - max(a, j)) / s
    return w


def pixel_to_grid(mask):
    h, w = mask.shape
    cells = area_weights(h, RES) @ mask.astype(np.float64) @ area_weights(w, RES).T
    return (cells >= 0.5 - 1e-6).astype(np.uint8)


def box_cells(v, length, src):
    lo, hi = int(RES * v / (src - 1)), int(RES * (v + length) / (src - 1))
    return max(lo, 0), min(hi, RES - 1)


def boxes_to_grid(boxes, src_w, src_h):
    m = np.zeros((RES, RES), np.uint8)
    for x, y, w, h in boxes:
        x0, x1 = box_cells(x, w, src_w)
        y0, y1 = box_cells(y, h, src_h)
        m[y0:y1 + 1, x0:x1 + 1] = 1
    return m


def read_csv(path):
    with open(path) as f:
        rows = [[c.strip() for c in line.rstrip("\n").split(",")] for line in f if line.strip()]
    return rows[0], rows[1:]


def salcheck_masks(d, kind, k=1):
    out = os.path.join(TMP, "masks.bin")
    r = subprocess.run([TEST_BIN, "--masks", d, kind, str(RES), out, str(k)], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr
    res = {}
    with open(out, "rb") as f:
        while True:
            line = f.readline()
            if not line:
                break
            ident, label = line.decode().split()
            res[ident] = (int(label), np.frombuffer(f.read(RES * RES), np.uint8).reshape(RES, RES))
    return res, ""


def compare_masks(name, d, kind, ref, k=1):
    got, err = salcheck_masks(d, kind, k)
    if got is None:
        check(name, False, err)
        return
    bad = [i for i in ref if i not in got or got[i][0] != ref[i][0] or not np.array_equal(got[i][1], ref[i][1])]
    extra = [i for i in got if i not in ref]
    npos = sum(1 for v in ref.values() if v[0] == 1 and v[1].any())
    check(f"{name}: {len(ref)} entries ({npos} positive with a mask) equal", not bad and not extra and npos > 0,
          f"differ: {bad[:5]} extra: {extra[:5]}")


def image_size(path):
    if path.endswith((".dcm", ".dicom")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return int(ds.Columns), int(ds.Rows)
    return Image.open(path).size


def rsna_ref(d, labels, images, ext):
    head, rows = read_csv(os.path.join(d, labels))
    ref = {}
    for r in rows:
        pid = r[0]
        boxes = ref.setdefault(pid, [0, []])
        if r[5] == "1":
            boxes[0] = 1
            boxes[1].append(tuple(float(v) for v in r[1:5]))
    out = {}
    for pid, (label, boxes) in ref.items():
        w, h = image_size(os.path.join(d, images, pid + ext))
        out[pid] = (label, boxes_to_grid(boxes, w, h))
    return out


def siim_ref(d, image_path):
    head, rows = read_csv(os.path.join(d, "train-rle.csv"))
    acc = {}
    for ident, rle in rows:
        acc.setdefault(ident, [])
        if rle != "-1":
            acc[ident].append([int(v) for v in rle.split()])
    out = {}
    for ident, rles in acc.items():
        w, h = image_size(image_path(ident))
        flat = np.zeros(w * h, np.uint8)
        for v in rles:
            pos = 0
            for off, length in zip(v[0::2], v[1::2]):
                pos += off
                flat[pos:pos + length] = 1
                pos += length
        out[ident] = (1 if rles else 0, pixel_to_grid(flat.reshape(w, h).T))  # column-major
    return out


def nih_ref(d):
    _, entries = read_csv(os.path.join(d, "Data_Entry_2017.csv"))
    _, boxes = read_csv(os.path.join(d, "BBox_List_2017.csv"))
    out = {}
    for r in entries:
        ident = r[0][:-4]
        if "Pneumonia" in r[1].split("|"):
            out[ident] = [1, []]
        elif r[1] == "No Finding":
            out[ident] = [0, []]
    for r in boxes:
        if r[1] == "Pneumonia":
            out[r[0][:-4]][1].append(tuple(float(v) for v in r[2:6]))
    return {k: (v[0], boxes_to_grid(v[1], 1024, 1024)) for k, v in out.items()}


def vindr_ref(d, k):
    _, rows = read_csv(os.path.join(d, "annotations_train.csv"))
    per = {}
    for r in rows:
        per.setdefault(r[0], {})
        if r[2] == "Lung Opacity":
            x0, y0, x1, y1 = map(float, r[3:7])
            per[r[0]].setdefault(r[1], []).append((x0, y0, x1 - x0, y1 - y0))
    out = {}
    for ident, readers in per.items():
        w, h = image_size(os.path.join(d, "train", ident + ".dicom"))
        votes = sum(boxes_to_grid(b, w, h).astype(int) for b in readers.values()) if readers else 0
        out[ident] = (int(len(readers) >= k), (np.asarray(votes) >= k).astype(np.uint8) *
                      np.ones((RES, RES), np.uint8))
    return out


def coco_decode(counts, h, w):
    """COCO RLE (string or list) to an h x w mask, from the published definition."""
    if isinstance(counts, str):
        vals, p = [], 0
        while p < len(counts):
            x, k, more = 0, 0, True
            while more:
                c = ord(counts[p]) - 48
                x |= (c & 0x1F) << (5 * k)
                more = bool(c & 0x20)
                p += 1
                k += 1
                if not more and (c & 0x10):
                    x |= -1 << (5 * k)
            if len(vals) > 2:
                x += vals[-2]
            vals.append(x)
    else:
        vals = list(counts)
    flat = np.zeros(h * w, np.uint8)
    pos = 0
    for i, n in enumerate(vals):
        if i % 2:
            flat[pos:pos + n] = 1
        pos += n
    assert pos == h * w
    return flat.reshape(w, h).T  # Fortran order


def chex_ref(d):
    import json
    with open(os.path.join(d, "gt_segmentations_val.json")) as f:
        data = json.load(f)
    out = {}
    for ident, masks in data.items():
        m = masks["Airspace Opacity"]
        full = coco_decode(m["counts"], *m["size"])
        out[ident] = (int(full.any()), pixel_to_grid(full))
    return out


def mask_checks():
    j = os.path.join
    compare_masks("rsna PNG", j(TMP, "ref-png"), "rsna", rsna_ref(j(TMP, "ref-png"), "labels.csv", "images", ".png"))
    d = j(TMP, "dcm-explicit-8-0")
    compare_masks("rsna Kaggle DICOM", d, "rsna",
                  rsna_ref(d, "stage_2_train_labels.csv", "stage_2_train_images", ".dcm"))
    compare_masks("siim PNG", j(TMP, "siim-png"), "siim",
                  siim_ref(j(TMP, "siim-png"), lambda i: j(TMP, "siim-png", "images", i + ".png")))
    tree = {}
    for root, _, names in os.walk(j(TMP, "siim-dcm", "dicom-images-train")):
        for n in names:
            tree[n[:-4]] = j(root, n)
    compare_masks("siim DICOM tree", j(TMP, "siim-dcm"), "siim", siim_ref(j(TMP, "siim-dcm"), tree.__getitem__))
    nih = j(TMP, "nih")
    r = subprocess.run([SALCHECK, "phantom", "--out", nih, "--count", "30", "--size", "96", "--seed", "5",
                        "--format", "nih"], capture_output=True, text=True)
    check("salcheck phantom --format nih", r.returncode == 0, r.stderr)
    compare_masks("nih", nih, "nih", nih_ref(nih))
    for k in (1, 2, 3):
        compare_masks(f"vindr min_readers={k}", j(TMP, "vindr"), "vindr", vindr_ref(j(TMP, "vindr"), k), k)
    compare_masks("chexlocalize", j(TMP, "chex"), "chexlocalize", chex_ref(j(TMP, "chex")))


dicom_checks()
jpeg_checks()
mask_checks()
print(f"{passed} passed, {failed} failed")
if failed == 0:
    print("REF OK")
sys.exit(1 if failed else 0)
