#!/usr/bin/python3
"""Grouped and depthwise convolution in PyTorch float64, for tests/unit/test_gconv.c.

usage: gconv_torch_ref.py DIR CASE [CASE ...]
  CASE = name:n:c:h:w:oc:groups:kh:kw:sh:sw:pt:pb:pl:pr:bias
  reads DIR/gconv_NAME.{x,w,b,r}.f32 (input [n,c,h,w], weight [oc,c/groups,kh,kw],
  bias [oc], upstream gradient r of the output) and writes DIR/gconv_NAME.ref.f64:
  y = conv2d(pad(x), W, b, stride, groups), then dL/dx, dL/dW, dL/db of L = sum(r * y).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def run(directory, case):
    name, *dims = case.split(":")
    n, c, h, w, oc, groups, kh, kw, sh, sw, pt, pb, pl, pr, bias = (int(v) for v in dims)
    base = os.path.join(directory, "gconv_" + name)

    def load(suffix, shape):
        return torch.tensor(np.fromfile(base + suffix, dtype=np.float32).reshape(shape),
                            dtype=torch.float64, requires_grad=True)

    x = load(".x.f32", (n, c, h, w))
    weight = load(".w.f32", (oc, c // groups, kh, kw))
    b = load(".b.f32", (oc,)) if bias else None
    y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), weight, b, stride=(sh, sw), groups=groups)
    r = torch.tensor(np.fromfile(base + ".r.f32", dtype=np.float32).reshape(y.shape),
                     dtype=torch.float64)
    (y * r).sum().backward()
    parts = [y.detach(), x.grad, weight.grad] + ([b.grad] if bias else [])
    np.concatenate([p.numpy().ravel() for p in parts]).astype(np.float64).tofile(base + ".ref.f64")


def main():
    torch.set_num_threads(1)
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    for case in sys.argv[2:]:
        run(sys.argv[1], case)


if __name__ == "__main__":
    main()
