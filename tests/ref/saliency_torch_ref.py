#!/usr/bin/python3
"""Reference saliency maps of a salcheck model file, in float64 PyTorch.

The graph interpreter is nn_torch_ref.py's (imported, not copied); this script
adds the saliency methods on top, written from their definitions
(docs/methods.md section 4) with torch autograd, so that the C methods can be
checked on the same weights and input:

  grad    d logit[target] / dx
  gxi     x * grad
  gbp     the input gradient with guided ReLUs
  ig      (x - b) * sum_k w_k grad(b + a_k (x - b)); a_k, w_k from numpy
          (np.linspace for the paper's rule, np.polynomial.legendre.leggauss
          for Gauss-Legendre), all path points as one batch
  gcam    ReLU(sum_c mean_ij(dY/dA_c) A_c) / max, then
          F.interpolate(bilinear, align_corners=False) to the input size
  gcampp  Grad-CAM++ with pytorch-grad-cam's weights, same normalization
  sg      mean over the given noise tensors e_j of grad(x + e_j)^2 (or grad)
  occl    mean over the windows covering a pixel of f(x) - f(x occluded)

Piecewise-linear decisions. A float32 engine and a float64 reference may
take different sides of a ReLU kink or a max-pool tie when the values are
within float32 rounding (and at a constant image, the IG baseline, every
pooling window is an exact tie): the gradient then moves, by far more than
1e-4. With --decisions-* the C test hands over, for every input of a
gradient batch, the engine's ReLU masks and max-pool argmax in node order;
the reference then follows those decisions, after checking that each one is
also a valid float64 decision (a differing ReLU sign or pool choice is only
accepted within 1e-4 of the node's scale of being a kink or a tie; otherwise
the script fails, since then the engine is wrong, not the rounding).

usage: saliency_torch_ref.py --model M.h5 --input X.f32 --target T --layer NODE
           [--ig-steps S --ig-rule linspace|gausslegendre|midpoint --baseline B.f32]
           [--noise E.f32 --samples N --squared 0|1]
           [--occ-window W --occ-stride S --occ-fill V]
           [--decisions-x D --decisions-ig D --decisions-sg D] --out OUT.f32
X.f32 is one input [C,H,W]; B.f32 the baseline [C,H,W]; E.f32 the noise [N,C,H,W].
OUT.f32 holds float32, in this order: logits [classes], grad, gxi, gbp, ig
[C,H,W] each, gcam, gcampp [H,W] each, sg [C,H,W] (when --noise), occl [H,W]
(when --occ-window).
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_torch_ref  # noqa: E402  (the shared graph interpreter)


class Decisions:
    """The engine's ReLU masks and max-pool argmax, consumed in node order."""

    TOL = 1e-4

    def __init__(self, path):
        self.raw = np.fromfile(path, dtype=np.uint8) if path else None
        self.pos = 0
        self.hard = 0  # decisions float64 would not take even allowing for rounding

    def take(self, count, dtype):
        nbytes = count * np.dtype(dtype).itemsize
        if self.pos + nbytes > self.raw.size:
            raise SystemExit("decision file too short")
        out = self.raw[self.pos:self.pos + nbytes].view(dtype)
        self.pos += nbytes
        return out

    def relu_mask(self, a):
        mask = torch.tensor(self.take(a.numel(), np.uint8).reshape(a.shape).astype(np.float64))
        ad = a.detach()
        scale = float(ad.abs().max()) or 1.0
        wrong = ((ad > 0).double() != mask) & (ad.abs() > self.TOL * scale)
        self.hard += int(wrong.sum())
        return mask

    def pool_index(self, a, y_shape, pad=(0, 0, 0, 0)):
        n, c = a.shape[:2]
        idx = torch.tensor(self.take(int(np.prod(y_shape)), np.int32).astype(np.int64))
        pl, pr, pt, pb = pad
        if any(pad):
            # engine index iy * w + ix in the unpadded plane -> the padded plane
            w = a.shape[3] - pl - pr
            idx = (idx // w + pt) * a.shape[3] + idx % w + pl
        idx = idx.reshape(n, c, -1)
        flat = a.detach().reshape(n, c, -1)
        chosen = flat.gather(2, idx)
        best = torch.nn.functional.max_pool2d(a.detach(), *self.pool_args).reshape(n, c, -1)
        scale = float(flat.abs().max()) or 1.0
        self.hard += int((chosen < best - self.TOL * scale).sum())
        return idx


class DecidedF:
    """torch.nn.functional for nn_torch_ref's interpreter, with ReLU and max
    pooling following the engine's decisions (everything else delegated)."""

    def __init__(self, dec):
        self.dec = dec

    def __getattr__(self, name):
        return getattr(F, name)

    def pad(self, a, pad, value=0.0):
        # The interpreter pads a max pool's input with -inf first; the engine's
        # argmax indexes the unpadded plane, so remember the padding.
        if value == -float("inf"):
            self.dec.pool_pad = pad
        return F.pad(a, pad, value=value)

    def relu(self, a):
        return a * self.dec.relu_mask(a)

    def max_pool2d(self, a, kernel, stride, ceil_mode=False):
        self.dec.pool_args = (kernel, stride, 0, 1, ceil_mode)
        y_shape = F.max_pool2d(a.detach(), kernel, stride, ceil_mode=ceil_mode).shape
        pl, pr, pt, pb = getattr(self.dec, "pool_pad", (0, 0, 0, 0))
        self.dec.pool_pad = (0, 0, 0, 0)
        idx = self.dec.pool_index(a, y_shape, (pl, pr, pt, pb))
        n, c = a.shape[:2]
        return a.reshape(n, c, -1).gather(2, idx).reshape(y_shape)


def decided_guided(dec):
    class GuidedDecided(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            mask = dec.relu_mask(a)
            ctx.save_for_backward(mask)
            return a * mask

        @staticmethod
        def backward(ctx, g):
            (mask,) = ctx.saved_tensors
            return g * (g > 0) * mask

    return GuidedDecided


def logit_and_grad(f, x, target, guided=False, keep=None, decisions=None):
    """Logits of the batch x, and d sum_i logit_i[target] / dx (plus kept node).
    decisions: a file of the engine's ReLU/max-pool decisions for this batch."""
    x = x.clone().detach().requires_grad_(True)
    plain_f, plain_guided = nn_torch_ref.F, nn_torch_ref.GuidedReLU
    dec = Decisions(decisions)
    if decisions:
        nn_torch_ref.F = DecidedF(dec)
        nn_torch_ref.GuidedReLU = decided_guided(dec)
    try:
        logits, kept = nn_torch_ref.run(f, x, guided, keep)
    finally:
        nn_torch_ref.F, nn_torch_ref.GuidedReLU = plain_f, plain_guided
    if decisions:
        if dec.pos != dec.raw.size:
            raise SystemExit("decision file %s: %d bytes left over"
                             % (decisions, dec.raw.size - dec.pos))
        if dec.hard:
            raise SystemExit("%s: %d engine decisions are not kinks or ties within %g"
                             % (decisions, dec.hard, Decisions.TOL))
    logits[:, target].sum().backward()
    return logits.detach(), x.grad.detach(), kept


def ig_nodes(rule, steps):
    if rule == "linspace":
        return np.linspace(0.0, 1.0, steps), np.full(steps, 1.0 / steps)
    if rule == "midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    if rule == "gausslegendre":
        t, w = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (t + 1.0), 0.5 * w
    raise SystemExit("unknown IG rule " + rule)


def cam(act, grad, plus, size):
    a, g = act[0], grad[0]  # [C, h, w]
    if not plus:
        weights = g.mean(dim=(1, 2))
    else:
        # pytorch-grad-cam GradCAMPlusPlus.get_cam_weights
        g2, g3 = g ** 2, g ** 3
        sum_a = a.sum(dim=(1, 2))
        aij = g2 / (2 * g2 + sum_a[:, None, None] * g3 + 1e-6)
        aij = torch.where(g != 0, aij, torch.zeros_like(aij))
        weights = (torch.clamp(g, min=0) * aij).sum(dim=(1, 2))
    c = torch.clamp((weights[:, None, None] * a).sum(dim=0), min=0)
    c = c / c.max()
    return F.interpolate(c[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--layer", required=True)
    ap.add_argument("--ig-steps", type=int, default=10)
    ap.add_argument("--ig-rule", default="linspace")
    ap.add_argument("--baseline")
    ap.add_argument("--noise")
    ap.add_argument("--samples", type=int, default=0)
    ap.add_argument("--squared", type=int, default=1)
    ap.add_argument("--occ-window", type=int, default=0)
    ap.add_argument("--occ-stride", type=int, default=1)
    ap.add_argument("--occ-fill", type=float, default=0.0)
    ap.add_argument("--decisions-x")
    ap.add_argument("--decisions-ig")
    ap.add_argument("--decisions-sg")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)  # tiny tensors; the test machine's cores are shared

    with h5py.File(a.model, "r") as f:
        c, h, w = (int(f.attrs[k]) for k in ("input_c", "input_h", "input_w"))
        x = torch.tensor(np.fromfile(a.input, dtype=np.float32).reshape(1, c, h, w),
                         dtype=torch.float64)
        t = a.target
        res = []

        logits, grad, kept = logit_and_grad(f, x, t, keep=a.layer, decisions=a.decisions_x)
        act, agrad = kept["node"].detach(), kept["node"].grad.detach()
        res += [logits[0], grad[0], (x * grad)[0]]
        res.append(logit_and_grad(f, x, t, guided=True, decisions=a.decisions_x)[1][0])

        if a.baseline:
            b = torch.tensor(np.fromfile(a.baseline, dtype=np.float32).reshape(1, c, h, w),
                             dtype=torch.float64)
        else:
            b = torch.full_like(x, -1.0)
        alphas, weights = ig_nodes(a.ig_rule, a.ig_steps)
        path = torch.cat([b + float(al) * (x - b) for al in alphas])
        _, gpath, _ = logit_and_grad(f, path, t, decisions=a.decisions_ig)
        wt = torch.tensor(weights, dtype=torch.float64)[:, None, None, None]
        res.append(((x - b) * (wt * gpath).sum(dim=0, keepdim=True))[0])

        res.append(cam(act, agrad, False, (h, w)))
        res.append(cam(act, agrad, True, (h, w)))

        if a.noise:
            e = torch.tensor(np.fromfile(a.noise, dtype=np.float32).reshape(a.samples, c, h, w),
                             dtype=torch.float64)
            _, gn, _ = logit_and_grad(f, x + e, t, decisions=a.decisions_sg)
            res.append((gn ** 2 if a.squared else gn).mean(dim=0))

        if a.occ_window:
            win, st = a.occ_window, a.occ_stride
            ny = -(-(h - win) // st) + 1 if win < h else 1
            nx = -(-(w - win) // st) + 1 if win < w else 1
            copies, boxes = [], []
            for iy in range(ny):
                for ix in range(nx):
                    y0, x0 = iy * st, ix * st
                    xo = x.clone()
                    xo[:, :, y0:y0 + win, x0:x0 + win] = a.occ_fill
                    copies.append(xo)
                    boxes.append((y0, x0))
            with torch.no_grad():
                lo, _ = nn_torch_ref.run(f, torch.cat(copies), False)
            total = torch.zeros(h, w, dtype=torch.float64)
            count = torch.zeros(h, w, dtype=torch.float64)
            for k, (y0, x0) in enumerate(boxes):
                total[y0:y0 + win, x0:x0 + win] += logits[0, t] - lo[k, t]
                count[y0:y0 + win, x0:x0 + win] += 1
            res.append(torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total)))

    np.concatenate([r.numpy().ravel() for r in res]).astype(np.float32).tofile(a.out)


if __name__ == "__main__":
    main()
