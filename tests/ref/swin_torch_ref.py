#!/usr/bin/python3
"""Swin transformers for tests/unit/test_swin.c, and the PyTorch results they must reproduce.

usage:
  swin_torch_ref.py export OUT.onnx SPEC OPSET SEED
      SPEC "small" (torchvision's SwinTransformer at 32x32: patch 4, width 16,
      two stages of depth 2 with 2 and 4 heads, window 4, so that the first
      stage has four windows and a shifted block with its attention mask, and
      the second one window and no shift) or "swin_t" (torchvision swin_t at
      224); 2 classes, random weights from torch.manual_seed(SEED) with every
      layer norm, bias and relative position bias table moved away from its
      initial value; exported in eval mode by torch.onnx.export with its
      defaults at OPSET; the weights also go to OUT.pt.
  swin_torch_ref.py ref SPEC OUT.pt INPUT.f32 N TARGET REF.f64
      per image of INPUT (NCHW float32), in float64 then in float32 (PyTorch's
      own float32 error sets the looser bound of the test): the 2 logits, the
      input gradient of logit[TARGET], Integrated Gradients
      (x - b) * mean_k g(b + a_k (x - b)), a_k = linspace(0, 1, 10), b = 0, and
      Grad-CAM at the output of the last stage's norm (model.norm, [1, H, W, C]
      laid on its grid as pytorch-grad-cam's Swin reshape_transform does:
      permute to [1, C, H, W]): weights the grid mean of the gradient, ReLU,
      divided by its max, bilinear (align_corners=False) to the image size.
"""
import numpy as np

import token_ref


def build(spec):
    import torchvision
    from torchvision.models.swin_transformer import SwinTransformer
    if spec == "small":
        return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                               window_size=[4, 4], stochastic_depth_prob=0.0,
                               num_classes=2), 32
    if spec == "swin_t":
        return torchvision.models.swin_t(weights=None, num_classes=2), 224
    raise SystemExit("unknown spec " + spec)


def export(out, spec, opset, seed):
    import torch
    torch.manual_seed(int(seed))
    model, size = build(spec)
    token_ref.perturb(model, norms=("norm",),
                      embedded=lambda name: "relative_position_bias_table" in name, head="head")
    token_ref.export_onnx(model, size, out, opset)


def references(model, x, target, dtype):
    import torch
    import torch.nn.functional as F
    saved = {}

    def hook(module, inputs, output):
        saved["a"] = output
    handle = model.norm.register_forward_hook(hook)
    xi = x.clone().to(dtype).requires_grad_(True)
    logits = model(xi)
    act = saved["a"]
    grad_x, grad_a = torch.autograd.grad(logits[0, target], [xi, act])
    handle.remove()
    a, g = act[0].permute(2, 0, 1), grad_a[0].permute(2, 0, 1)   # [C, H, W]
    cam = torch.relu((g.mean(dim=(1, 2))[:, None, None] * a).sum(0))
    cam = cam / cam.max()
    size = x.shape[-1]
    cam = F.interpolate(cam[None, None], size=(size, size), mode="bilinear",
                        align_corners=False)[0, 0]
    alphas = torch.linspace(0, 1, 10, dtype=dtype)
    xd = x.to(dtype)
    path = torch.cat([a_k * xd for a_k in alphas]).requires_grad_(True)
    model(path)[:, target].sum().backward()
    ig = xd * path.grad.mean(dim=0, keepdim=True)
    return [t.detach().double().numpy().ravel() for t in (logits, grad_x, ig, cam)]


def ref(spec, path, input_path, n, target, out):
    import torch
    model, size = build(spec)
    model = token_ref.load(model, path, torch.float64)
    x = np.fromfile(input_path, dtype=np.float32).reshape(int(n), 3, size, size)
    rows = []
    for i in range(int(n)):
        xi = torch.tensor(x[i:i + 1])
        for dtype in (torch.float64, torch.float32):
            rows += references(model.to(dtype), xi, int(target), dtype)
    np.concatenate(rows).astype(np.float64).tofile(out)


if __name__ == "__main__":
    token_ref.command_line(__doc__, {"export": (export, 4), "ref": (ref, 6)})
