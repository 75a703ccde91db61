#!/usr/bin/python3
"""Vision transformers for the token-tensor tests, and the PyTorch results they must reproduce.

usage:
  vit_torch_ref.py export OUT.onnx SPEC OPSET SEED
      SPEC "small" (torchvision's VisionTransformer at 32x32, patch 8, 2 layers,
      2 heads, width 16, MLP 32), "vit_b_16" (torchvision vit_b_16 at 224) or
      "channels_last" (a convolution and ConvNeXt's channels-last LayerNorm and
      MLP at 32x32; no CAM reference: zeros),
      2 classes, random weights from torch.manual_seed(SEED) with every layer
      norm, bias, the class token and the position embedding moved away from
      their initial values; exported in eval mode by torch.onnx.export at
      OPSET; the weights also go to OUT.pt.
  vit_torch_ref.py ref SPEC OUT.pt INPUT.f32 N TARGET REF.f32
      float64 results for the N images of INPUT (NCHW float32): per image the
      2 logits, the input gradient of logit[TARGET] and the Grad-CAM map at
      encoder.layers[-1].ln_1 (tokens on their patch grid with the class token
      dropped, as pytorch-grad-cam's reshape_transform lays them; weights the
      grid mean of the gradient; ReLU, divided by its max, bilinear upsampling
      with half-pixel centres to the image size: salcheck's CAM convention).
      For SPEC "small" five more maps on the same token grid follow, each
      then ReLU, divided by its max and resized the same way, from
      pytorch-grad-cam's definitions: LayerCAM sum_c relu(G) A, HiResCAM
      sum_c G A, XGrad-CAM w_c = sum_ij G A / (sum_ij A + 1e-7), Eigen-CAM
      (the centred [hw, C] activations projected on their first right
      singular vector, negated when |min| > |max|) and Score-CAM (each
      channel upsampled with align_corners=True, min-max normalized, masks
      the image; softmax over the channels of the target logits weights A).
  vit_torch_ref.py time SPEC OUT.pt BATCH REPEATS
      the median seconds of one input-gradient pass (forward and backward of
      one logit) of PyTorch float32 at BATCH, on the threads torch has.
"""
import time

import numpy as np

import token_ref


def channels_last_net():
    """A convolution, then ConvNeXt's channels-last pattern: permute to [N, H, W, C],
    LayerNorm, Linear, GELU, Linear, permute back, residual, global pool, head."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 4, stride=4)
            self.norm = nn.LayerNorm(8, eps=1e-6)
            self.fc1 = nn.Linear(8, 16)
            self.fc2 = nn.Linear(16, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            x = self.stem(x)
            y = self.fc2(nn.functional.gelu(self.fc1(self.norm(x.permute(0, 2, 3, 1)))))
            x = x + y.permute(0, 3, 1, 2)
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
    return Net()


def build(spec):
    import torchvision
    from torchvision.models.vision_transformer import VisionTransformer
    if spec == "channels_last":
        return channels_last_net(), 32
    if spec == "small":
        return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                 hidden_dim=16, mlp_dim=32, num_classes=2), 32
    if spec == "vit_b_16":
        return torchvision.models.vit_b_16(weights=None, num_classes=2), 224
    raise SystemExit("unknown spec " + spec)


def export(out, spec, opset, seed):
    import torch
    torch.manual_seed(int(seed))
    model, size = build(spec)
    token_ref.export_onnx(token_ref.perturb(model), size, out, opset)


def load(spec, path, dtype):
    model, size = build(spec)
    return token_ref.load(model, path, dtype), size


def ref(spec, path, input_path, n, target, out):
    import torch
    import torch.nn.functional as F
    model, size = load(spec, path, torch.float64)
    x = np.fromfile(input_path, dtype=np.float32).reshape(int(n), 3, size, size)
    saved = {}

    def hook(module, inputs, output):
        if output.requires_grad:  # not the Score-CAM passes
            output.retain_grad()
            saved["a"] = output
    if spec != "channels_last":
        model.encoder.layers[-1].ln_1.register_forward_hook(hook)
    rows = []
    for i in range(int(n)):
        xi = torch.tensor(x[i:i + 1], dtype=torch.float64, requires_grad=True)
        logits = model(xi)
        logits[0, int(target)].backward()
        if "a" not in saved:  # no token layer: no CAM reference
            rows.append(np.concatenate([logits.detach().numpy().ravel(),
                                        xi.grad.numpy().ravel(), np.zeros(size * size)]))
            continue
        a, g = saved["a"][0, 1:, :], saved["a"].grad[0, 1:, :]   # [tokens, C]
        grid = int(round(a.shape[0] ** 0.5))
        a = a.reshape(grid, grid, -1).permute(2, 0, 1)
        g = g.reshape(grid, grid, -1).permute(2, 0, 1)
        cams = [(g.mean(dim=(1, 2))[:, None, None] * a).sum(0)]
        if spec == "small":
            a, g = a.detach(), g.detach()
            cams.append((torch.relu(g) * a).sum(0))
            cams.append((g * a).sum(0))
            wx = (g * a).sum(dim=(1, 2)) / (a.sum(dim=(1, 2)) + 1e-7)
            cams.append((wx[:, None, None] * a).sum(0))
            flat = a.reshape(a.shape[0], -1).T
            flat = flat - flat.mean(dim=0)
            proj = (flat @ torch.linalg.svd(flat, full_matrices=False)[2][0]).reshape(grid, grid)
            cams.append(-proj if proj.min().abs() > proj.max().abs() else proj)
            up = F.interpolate(a[None], size=(size, size), mode="bilinear",
                               align_corners=True)[0]
            lo = up.amin(dim=(1, 2))[:, None, None]
            hi = up.amax(dim=(1, 2))[:, None, None]
            masks = (up - lo) / (hi - lo + 1e-8)
            with torch.no_grad():
                scores = model(xi.detach() * masks[:, None])[:, int(target)]
            cams.append((torch.softmax(scores, dim=0)[:, None, None] * a).sum(0))
        maps = []
        for cam in cams:
            cam = torch.relu(cam)
            cam = cam / cam.max()
            maps.append(F.interpolate(cam[None, None], size=(size, size), mode="bilinear",
                                      align_corners=False)[0, 0].detach().numpy().ravel())
        rows.append(np.concatenate([logits.detach().numpy().ravel(),
                                    xi.grad.numpy().ravel()] + maps))
    np.concatenate(rows).astype(np.float64).tofile(out)


def timing(spec, path, batch, repeats):
    import torch
    model, size = load(spec, path, torch.float32)
    x = torch.rand(int(batch), 3, size, size)
    times = []
    for _ in range(int(repeats)):
        xi = x.clone().requires_grad_(True)
        t0 = time.perf_counter()
        model(xi)[:, 0].sum().backward()
        times.append(time.perf_counter() - t0)
    print("%.6f" % float(np.median(times)))


if __name__ == "__main__":
    token_ref.command_line(__doc__, {"export": (export, 4), "ref": (ref, 6), "time": (timing, 4)})
