"""ops_onnx_ref.py - a small PyTorch network with the activations of
common/nn/ops (Hardswish, ReLU6, Hardsigmoid, SiLU as Sigmoid and Mul, a
squeeze-and-excitation gate as a broadcasting Mul), exported to ONNX,
and its float64 result (test_ops.c).

usage: ops_onnx_ref.py OUT.onnx OPSET INPUT.f32 TARGET REF.f64
Writes OUT.onnx (random weights, torch.manual_seed(5), eval mode); reads the
[1, 3, 16, 16] input; REF receives the 2 logits, then the input gradient of
logit[TARGET], in float64.
"""
import sys

import numpy as np
import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


def main():
    out, opset, inp, target, ref = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Hardswish(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU6(),
        nn.Conv2d(8, 8, 1), nn.SiLU(), SqueezeExcite(8),
        nn.Conv2d(8, 8, 1), nn.Hardsigmoid(),
        nn.Conv2d(8, 6, 3, padding=1), nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2)).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 16, 16), out, opset_version=opset)
    x = torch.from_numpy(np.fromfile(inp, dtype=np.float32).reshape(1, 3, 16, 16).astype(np.float64))
    x.requires_grad_(True)
    model = model.double()
    logits = model(x)
    logits[0, target].backward()
    np.concatenate([logits.detach().numpy().ravel(), x.grad.numpy().ravel()]).tofile(ref)


if __name__ == "__main__":
    main()
