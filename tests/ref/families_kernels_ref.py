#!/usr/bin/python3
"""References of tests/unit/test_families_kernels.c in PyTorch float64.

usage:
  families_kernels_ref.py ln IN.f32 N C H W EPS OUT.f64
      IN holds x [N, C, H, W], gamma [C], beta [C] and dy [N, C, H, W] (float32);
      ConvNeXt's channels-last layer norm y = permute(LayerNorm_C(permute(x, 0, 2, 3, 1)),
      0, 3, 1, 2) in float64; OUT gets y, dx = (dy . dy/dx), dgamma and dbeta.
  families_kernels_ref.py export OUT.onnx SPEC OPSET SEED
      SPEC "convnext": a small ConvNeXt of torchvision's own parts (CNBlock, LayerNorm2d:
      a 4x4 stem to 13 channels and its norm, two blocks, the downsampling norm and 2x2
      convolution to 22 channels, one block, pool, linear head), input 40 x 40;
      "fallback": a convolution, its output permuted to channels-last, LayerNorm, Linear,
      GELU, Linear, the residual added in channels-last, permuted back, pool, head,
      input 24 x 24. 2 classes, random weights from torch.manual_seed(SEED) with every
      norm weight and layer scale in [0.5, 1.5) and every bias N(0, 0.1); exported in
      eval mode at OPSET; the weights also go to OUT.pt.
  families_kernels_ref.py ref SPEC OUT.pt INPUT.f32 N TARGET REF.f64
      float64 results for the N images of INPUT (NCHW float32): per image the 2 logits
      and the input gradient of logit[TARGET].
"""
import sys

import numpy as np


def layer_norm_channels(args):
    import torch
    import torch.nn.functional as F
    in_path, n, c, h, w, eps, out = args
    n, c, h, w, eps = int(n), int(c), int(h), int(w), float(eps)
    v = np.fromfile(in_path, dtype=np.float32).astype(np.float64)
    size = n * c * h * w
    x = torch.tensor(v[:size].reshape(n, c, h, w), requires_grad=True)
    gamma = torch.tensor(v[size:size + c], requires_grad=True)
    beta = torch.tensor(v[size + c:size + 2 * c], requires_grad=True)
    dy = torch.tensor(v[size + 2 * c:2 * size + 2 * c].reshape(n, c, h, w))
    y = F.layer_norm(x.permute(0, 2, 3, 1), (c,), gamma, beta, eps).permute(0, 3, 1, 2)
    (y * dy).sum().backward()
    np.concatenate([y.detach().numpy().ravel(), x.grad.numpy().ravel(),
                    gamma.grad.numpy(), beta.grad.numpy()]).astype(np.float64).tofile(out)


def build(spec):
    import torch
    from torch import nn
    from torchvision.models.convnext import CNBlock, LayerNorm2d

    if spec == "convnext":
        net = nn.Sequential(
            nn.Conv2d(3, 13, 4, stride=4), LayerNorm2d(13, eps=1e-6),
            CNBlock(13, 1.0, 0.0), CNBlock(13, 1.0, 0.0),
            LayerNorm2d(13, eps=1e-6), nn.Conv2d(13, 22, 2, stride=2),
            CNBlock(22, 1.0, 0.0),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(22, 2))
        return net, 40

    class Fallback(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 9, 3, stride=3)
            self.norm = nn.LayerNorm(9, eps=1e-6)
            self.fc1 = nn.Linear(9, 20)
            self.fc2 = nn.Linear(20, 9)
            self.head = nn.Linear(9, 2)

        def forward(self, x):
            y = self.stem(x).permute(0, 2, 3, 1)
            z = self.fc2(nn.functional.gelu(self.fc1(self.norm(y)))) + y
            z = z.permute(0, 3, 1, 2)
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(z, 1), 1))
    if spec == "fallback":
        return Fallback(), 24
    raise SystemExit("unknown spec " + spec)


def perturb(net):
    import torch
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("layer_scale") or (p.dim() == 1 and name.endswith("weight")):
                p.uniform_(0.5, 1.5)  # layer scales and norm weights
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
    return net


def export(args):
    import torch
    out, spec, opset, seed = args
    torch.manual_seed(int(seed))
    net, size = build(spec)
    net = perturb(net).eval()
    torch.save(net.state_dict(), out[:-5] + ".pt")
    torch.onnx.export(net, torch.rand(1, 3, size, size), out, opset_version=int(opset))


def ref(args):
    import torch
    spec, pt, in_path, n, target, out = args
    net, size = build(spec)
    net.load_state_dict(torch.load(pt))
    net = net.double().eval()
    x = np.fromfile(in_path, dtype=np.float32).reshape(int(n), 3, size, size)
    rows = []
    for i in range(int(n)):
        xi = torch.tensor(x[i:i + 1], dtype=torch.float64, requires_grad=True)
        logits = net(xi)
        logits[0, int(target)].backward()
        rows.append(np.concatenate([logits.detach().numpy().ravel(), xi.grad.numpy().ravel()]))
    np.concatenate(rows).astype(np.float64).tofile(out)


COMMANDS = {"ln": (layer_norm_channels, 7), "export": (export, 4), "ref": (ref, 6)}

if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd not in COMMANDS or len(sys.argv) != 2 + COMMANDS[cmd][1]:
        raise SystemExit(__doc__)
    COMMANDS[cmd][0](sys.argv[2:])
