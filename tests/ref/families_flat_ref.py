#!/usr/bin/python3
"""torchvision families on images with flat regions, in plain PyTorch, for
tests/unit/test_families_flat.c.

usage: families_flat_ref.py DIR SIZE SEED INPUT.f32 N ARCH [...]

INPUT.f32 holds N images [3, SIZE, SIZE] (already in torchvision's ImageNet
convention; the first is the IG baseline's black image). ARCH is a
torchvision family built as families_torch_ref.py builds it (random weights,
2 classes, calibrated batch norms) or vit_small (train_import_ref.py's
two-layer ViT at SIZE, patch 8), its batch-norm statistics taken from the N
images and 8 random ones (calibrate). Each is exported in eval mode at opset 13 to
DIR/flatfam_ARCH_SIZE.onnx, and DIR/flatfam_ARCH_SIZE.ref.f32 gets, for each
image i: its target (the top float64 logit, as a float), then in float64,
float32 NCHW and float32 channels-last: the 2 logits, the input gradient of
the target logit, and Integrated Gradients (10 steps, linspace with alpha 0
included, from the black image). Every ReLU and max pool takes PyTorch's own
decision (the first maximal element of a window; no gradient at exactly 0):
on flat regions these are exact ties, which the engine must break the same
way. Files newer than this script and the input are reused.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
STEPS = 10


def build(arch, size, seed):
    if arch == "vit_small":
        import train_import_ref
        return train_import_ref.build(arch, size, seed)
    import families_torch_ref
    return families_torch_ref.build(arch, size, seed)


def calibrate(model, batch):
    """Batch-norm statistics of `batch` (the test images and random ones), each set
    before its layer runs in one eval-mode pass: the flat images are then inside the
    network's input distribution, as radiographs are for a network trained on them
    (statistics of random images alone leave channels whose tiny variance a flat
    image turns into float32 chaos: PyTorch float32 then differs from float64 by
    more than 100 % on EfficientNet and RegNet)."""
    import torch
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    def hook(mod, inputs):
        x = inputs[0].double()
        mod.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        mod.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))
    handles = [m.register_forward_pre_hook(hook) for m in norms]
    with torch.no_grad():
        model(batch)
    for h in handles:
        h.remove()


def grad_of(model, x, target):
    x = x.clone().requires_grad_(True)
    y = model(x)
    y[:, target].sum().backward()
    return y.detach(), x.grad.detach()


def maps(model, x, black, target, dtype, channels_last):
    import torch
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(dtype).to(memory_format=fmt)
    x = x.to(dtype).contiguous(memory_format=fmt)
    b = black.to(dtype)
    logits, g = grad_of(model, x, target)
    alphas = torch.linspace(0, 1, STEPS, dtype=torch.float64)
    path = torch.cat([b + float(a) * (x - b) for a in alphas]).contiguous(memory_format=fmt)
    _, gp = grad_of(model, path, target)
    ig = (x - b) * gp.mean(dim=0, keepdim=True)
    return [logits, g, ig]


def run(directory, size, seed, inp, n, arch, stamp):
    import torch
    base = os.path.join(directory, "flatfam_%s_%d" % (arch, size))
    if all(os.path.exists(base + s) and os.path.getmtime(base + s) > stamp
           for s in (".onnx", ".ref.f32")):
        print("reused %s" % arch)
        return
    model = build(arch, size, seed).eval()
    xs = torch.tensor(np.fromfile(inp, dtype=np.float32).reshape(n, 1, 3, size, size))
    calibrate(model, torch.cat([xs[:, 0], torch.rand(8, 3, size, size) * 2 - 1]))
    torch.onnx.export(model, torch.zeros(1, 3, size, size), base + ".onnx", opset_version=13,
                      input_names=["image"], output_names=["logits"])
    out = []
    for i in range(n):
        x = xs[i]
        with torch.no_grad():
            target = int(model.double()(x.double())[0].argmax())
        out.append(np.array([target], dtype=np.float64))
        for dtype, cl in ((torch.float64, False), (torch.float32, False), (torch.float32, True)):
            out += [t.detach().double().numpy().ravel()
                    for t in maps(model, x, xs[0], target, dtype, cl)]
    np.concatenate(out).astype(np.float32).tofile(base + ".ref.f32")
    print("exported %s" % arch)


def main():
    if len(sys.argv) < 7:
        raise SystemExit(__doc__)
    import torch
    torch.set_num_threads(1)
    directory, size, seed, inp, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        sys.argv[4], int(sys.argv[5])
    stamp = max(os.path.getmtime(os.path.abspath(__file__)), os.path.getmtime(inp))
    for arch in sys.argv[6:]:
        run(directory, size, seed, inp, n, arch, stamp)


if __name__ == "__main__":
    main()
