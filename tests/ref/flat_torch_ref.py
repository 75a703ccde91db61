#!/usr/bin/python3
"""Saliency maps of a salcheck model file in plain PyTorch, for inputs with flat regions.

Unlike saliency_torch_ref.py --decisions-*, every ReLU and max pool here takes
PyTorch's OWN decision (max pooling: the first maximal element of the window
in scan order; ReLU: gradient 0 at exactly 0), in float64 and in float32, so
that tests/unit/test_flat.c can hold the C engine to PyTorch on images whose
flat regions make exact ties: black borders, black bars around a letterboxed
radiograph, a constant image, and the constant IG baseline (alpha = 0).

usage: flat_torch_ref.py --model M.h5 --input X.f32 --n N --targets T1,T2,...
           --layer NODE --dtype float64|float32 --baselines B.f32
           --ig-steps S --sig-noise E.f32 --sig-samples K --xrai-steps S2
           [--xrai-map] [--channels-last] --out OUT.f32
X.f32 holds N inputs [C,H,W]; B.f32 the N IG baselines (black in the model's
input convention); E.f32 the N*K SmoothGrad-of-IG noise tensors [C,H,W] the C
method draws. For each input, OUT.f32 holds (float32): logits [classes],
grad, gbp, ig [C,H,W] each, gcam [H,W], sig [C,H,W], the XRAI attribution
[H,W] (IG from the constant min(x) and max(x) images, averaged, max over
channels), and with --xrai-map also the Guided Grad-CAM map [H,W] (P1(gbp) *
P1(gcam), the raw map whose post-processing is P2) and the XRAI map [H,W] (xrai_ref.py's regions on that
attribution); NaN fills a map that is undefined. --channels-last runs the
convolutions on channels-last operands: PyTorch's other CPU path, whose
float32 rounding differs, so that the test can take PyTorch float32's own
error as the larger of its two standard layouts (a single float32 run may
happen to miss, or hit, a near-tie that any float32 summation order flips).
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_torch_ref  # noqa: E402
import postproc_ref  # noqa: E402
import saliency_torch_ref as sref  # noqa: E402
import xrai_ref  # noqa: E402


def ig(f, x, b, t, steps):
    alphas, weights = sref.ig_nodes("linspace", steps)
    path = torch.cat([b + float(al) * (x - b) for al in alphas])
    _, g, _ = sref.logit_and_grad(f, path, t)
    wt = torch.tensor(weights, dtype=x.dtype)[:, None, None, None]
    return ((x - b) * (wt * g).sum(dim=0, keepdim=True))[0]


def main():
    ap = argparse.ArgumentParser()
    for k in ("--model", "--input", "--targets", "--layer", "--baselines", "--sig-noise",
              "--out"):
        ap.add_argument(k, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--ig-steps", type=int, default=10)
    ap.add_argument("--sig-samples", type=int, default=1)
    ap.add_argument("--xrai-steps", type=int, default=10)
    ap.add_argument("--xrai-map", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    if a.channels_last:
        nn_torch_ref.MEMORY_FORMAT = torch.channels_last
    torch.set_num_threads(1)
    dt = getattr(torch, a.dtype)
    targets = [int(t) for t in a.targets.split(",")]
    res = []
    with h5py.File(a.model, "r") as f:
        c, h, w = (int(f.attrs[k]) for k in ("input_c", "input_h", "input_w"))
        xs = np.fromfile(a.input, dtype=np.float32).reshape(a.n, 1, c, h, w)
        bs = np.fromfile(a.baselines, dtype=np.float32).reshape(a.n, 1, c, h, w)
        es = np.fromfile(a.sig_noise, dtype=np.float32).reshape(a.n, a.sig_samples, 1, c, h, w)
        for i in range(a.n):
            x, b, t = torch.tensor(xs[i], dtype=dt), torch.tensor(bs[i], dtype=dt), targets[i]
            logits, grad, kept = sref.logit_and_grad(f, x, t, keep=a.layer)
            gbp = sref.logit_and_grad(f, x, t, guided=True)[1][0]
            gcam = sref.cam(kept["node"].detach(), kept["node"].grad.detach(), False, (h, w))
            sig = torch.zeros_like(x[0])
            for j in range(a.sig_samples):
                sig += ig(f, x + torch.tensor(es[i, j], dtype=dt), b, t, a.ig_steps) ** 2
            sig /= a.sig_samples
            lo, hi = torch.full_like(x, float(x.min())), torch.full_like(x, float(x.max()))
            attr = (0.5 * (ig(f, x, lo, t, a.xrai_steps) + ig(f, x, hi, t, a.xrai_steps))).amax(0)
            maps = [logits[0], grad[0], gbp, ig(f, x, b, t, a.ig_steps), gcam, sig, attr]
            if a.xrai_map:
                try:
                    gg = (postproc_ref.p1(gbp.double().numpy())
                          * postproc_ref.p1(gcam.double().numpy()[None]))
                except postproc_ref.Undefined:
                    gg = np.full((h, w), np.nan)
                img = np.moveaxis(xs[i, 0], 0, -1)
                img = img[:, :, 0] if c == 1 else img
                masks = xrai_ref.dilated_masks(
                    xrai_ref.label_images(xrai_ref.segmentation_input(img), (h, w)))
                xm = xrai_ref.greedy(attr.double().numpy().astype(np.float32), masks)[0]
                maps += [torch.tensor(gg), torch.tensor(xm)]
            res += [torch.as_tensor(m).detach().double().numpy().ravel() for m in maps]
    np.concatenate(res).astype(np.float32).tofile(a.out)


if __name__ == "__main__":
    main()
