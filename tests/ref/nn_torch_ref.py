#!/usr/bin/python3
"""Reference forward/backward of a salcheck model file with PyTorch.

Reads the model file (h5py), interprets its /graph with torch.nn.functional in
float64, and writes what the C engine must reproduce:
  logits [n, classes], input gradient of logit[target] [n, c, h, w], the same
  with guided-backprop ReLUs, and activation/gradient at an optional node.

usage: nn_torch_ref.py MODEL.h5 INPUT.f32 N TARGETS(comma) OUT.f32 [NODE] [--masks=M.f32]
OUT.f32 holds, in order: logits, input grad, guided input grad, and when NODE
is given its activation and its gradient (all float32, row-major).

--masks=M.f32: the engine's ReLU decisions (for every relu node in graph
order, [N, C, H, W] of 1.0 where its output was positive, else 0.0). Each
ReLU then passes exactly what the engine passed, so a pre-activation within
float32 rounding of 0 that the engine's summation order put on the other
side does not decide the comparison. OUT.f32 then ends with two more values:
the number of decisions that differ from float64's, and the largest
|pre-activation| among them relative to the largest of its layer (0 if none),
which the caller bounds.
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F


# Memory layout of the convolutions' operands: torch.channels_last makes PyTorch
# take its other CPU convolution path (a different summation order), which
# flat_torch_ref.py uses to sample float32 rounding.
MEMORY_FORMAT = torch.contiguous_format


def parse(line):
    out = {}
    for tok in line.split(" "):
        k, _, v = tok.partition("=")
        out[k] = v
    return out


class GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.clamp(min=0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (g > 0) * (y > 0)


class MaskedReLU(torch.autograd.Function):
    """The ReLU with the decisions given: y = x * mask; guided or not."""

    @staticmethod
    def forward(ctx, x, mask, guided):
        ctx.save_for_backward(mask)
        ctx.guided = guided
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return (g * (g > 0) * mask if ctx.guided else g * mask), None, None


def ints(s):
    return [int(v) for v in s.split(",")]


def run(f, x, guided, keep=None, masks=None, flips=None):
    """masks: a MaskStream of the engine's decisions, one [N, C, H, W] block per
    relu node in graph order; flips: a list collecting (count, largest relative
    |pre-activation|) of the decisions that differ from this pass's."""
    lines = [l.decode() if isinstance(l, bytes) else l for l in f["graph"][()]]
    nodes = [parse(l) for l in lines]
    outs = [x]
    kept = {}
    w = f["weights"]

    def param(name, kind):
        key = name.replace("/", "|")
        if key in w and kind in w[key]:
            return torch.tensor(np.asarray(w[key][kind]), dtype=x.dtype)
        return None

    for nd in nodes[1:]:
        ins = [outs[i] for i in ints(nd["in"])]
        a = ins[0]
        op, name = nd["op"], nd["name"]
        if op == "conv":
            kh, kw = ints(nd["k"])
            sh, sw = ints(nd["s"])
            pt, pb, pl, pr = ints(nd["pad"])
            a = F.pad(a, (pl, pr, pt, pb))
            y = F.conv2d(a.contiguous(memory_format=MEMORY_FORMAT),
                         param(name, "weight").contiguous(memory_format=MEMORY_FORMAT),
                         param(name, "bias"), stride=(sh, sw))
        elif op == "bn":
            eps = float(nd["eps"])
            y = F.batch_norm(a, param(name, "running_mean"), param(name, "running_var"),
                             param(name, "gamma"), param(name, "beta"), False, 0.0, eps)
        elif op == "relu" and masks is not None:
            mask = torch.tensor(masks.take(a.numel()).reshape(a.shape), dtype=a.dtype)
            differ = mask != (a > 0).to(a.dtype)
            if flips is not None and bool(differ.any()):
                scale = float(a.detach().abs().max())
                flips.append((int(differ.sum()),
                              float(a.detach()[differ].abs().max()) / max(scale, 1e-300)))
            y = MaskedReLU.apply(a, mask, guided)
        elif op == "relu":
            y = GuidedReLU.apply(a) if guided else F.relu(a)
        elif op in ("maxpool", "avgpool"):
            kh, kw = ints(nd["k"])
            sh, sw = ints(nd["s"])
            pt, pb, pl, pr = ints(nd["pad"])
            ceil = bool(int(nd["ceil"]))
            if op == "maxpool":
                a = F.pad(a, (pl, pr, pt, pb), value=-float("inf"))
                y = F.max_pool2d(a, (kh, kw), (sh, sw), ceil_mode=ceil)
            elif pt == pb and pl == pr:
                y = F.avg_pool2d(a, (kh, kw), (sh, sw), padding=(pt, pl), ceil_mode=ceil,
                                 count_include_pad=bool(int(nd["cip"])))
            else:
                ap = F.pad(a, (pl, pr, pt, pb))
                s = F.avg_pool2d(ap, (kh, kw), (sh, sw), ceil_mode=ceil) * (kh * kw)
                if int(nd["cip"]):
                    y = s / (kh * kw)
                else:
                    ones = F.pad(torch.ones_like(a[:1, :1]), (pl, pr, pt, pb))
                    cnt = F.avg_pool2d(ones, (kh, kw), (sh, sw), ceil_mode=ceil) * (kh * kw)
                    y = s / cnt
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
        elif op == "softmax":
            y = F.softmax(a.reshape(a.shape[0], -1), dim=1).reshape(a.shape)
        elif op == "sigmoid":
            y = torch.sigmoid(a)
        else:
            raise SystemExit("unknown op " + op)
        if keep == name:
            y.retain_grad()
            kept["node"] = y
        outs.append(y)
    logits_idx = len(outs) - 1
    if nodes[-1]["op"] in ("softmax", "sigmoid"):
        logits_idx = ints(nodes[-1]["in"])[0]
    return outs[logits_idx].reshape(x.shape[0], -1), kept


class MaskStream:
    """The engine's decisions of M.f32, taken off in graph order."""

    def __init__(self, flat):
        self.flat, self.at = flat, 0

    def take(self, count):
        if self.at + count > self.flat.size:
            raise SystemExit("masks: %d values, the relu nodes take more" % self.flat.size)
        block = self.flat[self.at:self.at + count]
        self.at += count
        return block

    def left(self):
        return self.flat.size - self.at


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--masks=")]
    mask_path = next((a[len("--masks="):] for a in sys.argv[1:] if a.startswith("--masks=")), None)
    path, inp, n, targets, out = args[0:5]
    keep = args[5] if len(args) > 5 else None
    n = int(n)
    targets = [int(t) for t in targets.split(",")]
    with h5py.File(path, "r") as f:
        c, h, w = (int(f.attrs[k]) for k in ("input_c", "input_h", "input_w"))
        x0 = np.fromfile(inp, dtype=np.float32).reshape(n, c, h, w)
        res = []
        flips = []
        for guided in (False, True):
            x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
            masks = MaskStream(np.fromfile(mask_path, dtype=np.float32)) if mask_path else None
            logits, kept = run(f, x, guided, keep, masks, flips if not guided else None)
            sel = logits[torch.arange(n), torch.tensor(targets)].sum()
            sel.backward()
            if not guided:
                res.append(logits.detach().numpy().ravel())
            res.append(x.grad.numpy().ravel())
            if not guided and keep:
                node_act = kept["node"].detach().numpy().ravel()
                node_grad = kept["node"].grad.numpy().ravel()
        if keep:
            res += [node_act, node_grad]
        if mask_path:
            res.append(np.array([sum(k for k, _ in flips), max((r for _, r in flips), default=0.0)]))
            if masks.left():
                raise SystemExit("%s: %d values more than the relu nodes take" % (mask_path, masks.left()))
    np.concatenate(res).astype(np.float32).tofile(out)


if __name__ == "__main__":
    main()
