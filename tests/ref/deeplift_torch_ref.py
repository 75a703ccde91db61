#!/usr/bin/python3
"""Reference DeepLIFT (Rescale rule) of a salcheck model file, in float64
PyTorch, written from the published definition of Captum's DeepLift
(Shrikumar et al., ICML 2017; docs/methods.md section 4) for the engine's
sal_deeplift.c to be checked against.

As Captum does it: the input and the reference are run as one batch
[x; x0]; every nonlinearity's backward is replaced by a multiplier computed
from the two halves, the explained logit of both halves is differentiated,
and the attribution is (x - x0) times the gradient at x.
  ReLU      grad_in = grad_out * (y - y0) / (x - x0), or the ordinary
            gradient where |x - x0| < 1e-10;
  max pool  with M = max(y, y0): U = unpool(grad * (M - y0)) at the argmax
            of x plus unpool(grad * (y - M)) at the argmax of x0 (torch's
            max_unpool2d, as Captum: overlapping windows sharing an argmax
            do not add up, one value is written), the same U
            for both halves; grad_in = U / (x - x0), or the ordinary gradient
            where |x - x0| < 1e-10;
  everything else (conv, batch norm, dense, average pools, add, concat,
  flatten) is linear: autograd's gradient.
The explained output is the logit (a trailing softmax/sigmoid is left out).

Captum's write-unpooling loses what overlapping windows (3x3 stride 2)
send to a shared argmax, so its attribution does not sum to
logit(x) - logit(x0) there. The same walk with an additive unpooling (each
window's value added at its argmax, the Rescale rule of the max pool as a
whole) is run as well: its sum is the summation-to-delta check of the
definition, exact with or without overlap.

usage: deeplift_torch_ref.py --model M.h5 --input X.f32 --baseline B.f32
           --target T --out A.f32
A.f32: the logits of x [classes], the logits of x0 [classes], the
attribution [C,H,W] (Captum's), then the sum of the additive-unpooling
attribution (float32).
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_torch_ref  # noqa: E402  (graph parsing helpers)

EPS = 1e-10
ADDITIVE = [False]  # True: unpool by adding (the summation check), not Captum's write


def halves(t):
    a, b = t.chunk(2)
    return a, b


class RescaleReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        y = F.relu(a)
        ctx.save_for_backward(a, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, y = ctx.saved_tensors
        x, x0 = halves(a)
        yx, y0 = halves(y)
        din = torch.cat(2 * [x - x0])
        dout = torch.cat(2 * [yx - y0])
        plain = g * (a > 0).to(g.dtype)
        ratio = g * dout / torch.where(din == 0, torch.ones_like(din), din)
        return torch.where(din.abs() < EPS, plain, ratio)


class RescaleMaxPool(torch.autograd.Function):
    """Max pooling of an input already padded with -inf (no padding here)."""

    @staticmethod
    def forward(ctx, a, k, s, ceil):
        y, idx = F.max_pool2d(a, k, s, ceil_mode=ceil, return_indices=True)
        ctx.save_for_backward(a, y, idx)
        ctx.k, ctx.s = k, s
        return y

    @staticmethod
    def backward(ctx, g):
        a, y, idx = ctx.saved_tensors
        size = list(a.shape[-2:])

        def unpool(t):
            if ADDITIVE[0]:
                flat = torch.zeros(a.shape[0], a.shape[1], size[0] * size[1], dtype=t.dtype)
                flat.scatter_add_(2, idx.flatten(2), t.flatten(2))
                return flat.reshape(a.shape)
            return F.max_unpool2d(t, idx, ctx.k, ctx.s, output_size=size)

        x, x0 = halves(a)
        yx, y0 = halves(y)
        din = torch.cat(2 * [x - x0])
        mx = torch.max(yx, y0)
        dout = torch.cat([mx - y0, yx - mx])
        ux, uref = halves(unpool(g * dout))
        u = torch.cat(2 * [ux + uref])
        plain = unpool(g)
        plain = torch.cat(2 * [halves(plain)[0]])  # the ordinary gradient at x
        ratio = u / torch.where(din == 0, torch.ones_like(din), din)
        return torch.where(din.abs() < EPS, plain, ratio), None, None, None


def forward(f, x):
    """The graph on a batch, with the Rescale functions; returns the logits."""
    lines = [l.decode() if isinstance(l, bytes) else l for l in f["graph"][()]]
    nodes = [nn_torch_ref.parse(l) for l in lines]
    w = f["weights"]

    def param(name, kind):
        key = name.replace("/", "|")
        if key in w and kind in w[key]:
            return torch.tensor(np.asarray(w[key][kind]), dtype=x.dtype)
        return None

    outs = [x]
    last = len(nodes) - 1
    if nodes[last]["op"] in ("softmax", "sigmoid"):
        last = nn_torch_ref.ints(nodes[last]["in"])[0]
    for i, nd in enumerate(nodes[1:last + 1], 1):
        ins = [outs[j] for j in nn_torch_ref.ints(nd["in"])]
        a, op, name = ins[0], nd["op"], nd["name"]
        if op == "conv":
            sh, sw = nn_torch_ref.ints(nd["s"])
            pt, pb, pl, pr = nn_torch_ref.ints(nd["pad"])
            y = F.conv2d(F.pad(a, (pl, pr, pt, pb)), param(name, "weight"), param(name, "bias"),
                         stride=(sh, sw))
        elif op == "bn":
            y = F.batch_norm(a, param(name, "running_mean"), param(name, "running_var"),
                             param(name, "gamma"), param(name, "beta"), False, 0.0,
                             float(nd["eps"]))
        elif op == "relu":
            y = RescaleReLU.apply(a)
        elif op == "maxpool":
            kh, kw = nn_torch_ref.ints(nd["k"])
            sh, sw = nn_torch_ref.ints(nd["s"])
            pt, pb, pl, pr = nn_torch_ref.ints(nd["pad"])
            y = RescaleMaxPool.apply(F.pad(a, (pl, pr, pt, pb), value=-float("inf")), (kh, kw),
                                     (sh, sw), bool(int(nd["ceil"])))
        elif op == "avgpool":
            kh, kw = nn_torch_ref.ints(nd["k"])
            sh, sw = nn_torch_ref.ints(nd["s"])
            pt, pb, pl, pr = nn_torch_ref.ints(nd["pad"])
            if pt != pb or pl != pr:
                raise SystemExit("asymmetric average pool padding is not in this reference")
            y = F.avg_pool2d(a, (kh, kw), (sh, sw), padding=(pt, pl),
                             ceil_mode=bool(int(nd["ceil"])),
                             count_include_pad=bool(int(nd["cip"])))
        elif op == "gap":
            y = a.mean(dim=(2, 3), keepdim=True)
        elif op == "dense":
            y = F.linear(a.reshape(a.shape[0], -1), param(name, "weight"), param(name, "bias"))
            y = y.reshape(y.shape[0], -1, 1, 1)
        elif op == "concat":
            y = torch.cat(ins, dim=1)
        elif op == "add":
            y = ins[0] + ins[1]
        elif op == "flatten":
            y = a.reshape(a.shape[0], -1, 1, 1)
        else:
            raise SystemExit("no DeepLIFT rule for op " + op)
        outs.append(y)
    return outs[-1].reshape(x.shape[0], -1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    with h5py.File(a.model, "r") as f:
        c, h, w = (int(f.attrs[k]) for k in ("input_c", "input_h", "input_w"))

        def load(path):
            return torch.tensor(np.fromfile(path, dtype=np.float32).reshape(1, c, h, w),
                                dtype=torch.float64)

        x, x0 = load(a.input), load(a.baseline)
        attrs = []
        for additive in (False, True):
            ADDITIVE[0] = additive
            both = torch.cat([x, x0]).requires_grad_(True)
            logits = forward(f, both)
            logits[:, a.target].sum().backward()
            attrs.append((x - x0) * both.grad[:1])
        ADDITIVE[0] = False
    np.concatenate([logits[0].detach().numpy(), logits[1].detach().numpy(),
                    attrs[0][0].numpy().ravel(),
                    [float(attrs[1].sum())]]).astype(np.float32).tofile(a.out)


if __name__ == "__main__":
    main()
