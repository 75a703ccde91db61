"""ops_torch_ref.py - PyTorch float64 reference for the elementwise ops of
common/nn/ops (test_ops.c).

usage: ops_torch_ref.py X.f32 R.f32 OUT.f64 OP [OP ...]
X and R are float32 arrays of the same length (input values and upstream
gradient). For each OP, OUT receives y = f(x) and dx = d(sum r*y)/dx, both in
float64, op after op.
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

FUNCS = {
    "silu": F.silu,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "relu6": F.relu6,
    "gelu": lambda t: F.gelu(t, approximate="none"),
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
}


def main():
    x = np.fromfile(sys.argv[1], dtype=np.float32).astype(np.float64)
    r = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).astype(np.float64))
    parts = []
    for op in sys.argv[4:]:
        t = torch.tensor(x, requires_grad=True)
        y = FUNCS[op](t)
        (y * r).sum().backward()
        parts += [y.detach().numpy(), t.grad.numpy()]
    np.concatenate(parts).astype(np.float64).tofile(sys.argv[3])


if __name__ == "__main__":
    main()
