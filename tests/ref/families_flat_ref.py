#!/usr/bin/python3
"""torchvision families on images with flat regions, in plain PyTorch, for
tests/unit/test_families_flat.c.

usage: families_flat_ref.py DIR SIZE SEED INPUT.f32 N ARCH [...]
       families_flat_ref.py follow SIZE SEED INPUT.f32 N ARCH IMAGE TARGET MASKS.u8 ARGMAX.i32 OUT.f32 [grad]

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

The follow form recomputes Integrated Gradients of image IMAGE (logit TARGET)
in float64 with the engine's ReLU and max-pool decisions of its 10 path
images (zoo_torch_ref.DECISIONS, written by the test in its node order for
the batch of path images): OUT.f32 gets that IG map, then the 2 logits of
each path image. It prints "relu_flips64 N", the ReLUs (and ReLU6s) where
float64's own decision differs from the engine's, "relu_flip64_size R", the largest
|input| among those relative to the RMS of its layer's input (a near-tie is
within float32's rounding of 0), and "relu_flips N" and "pool_flips N", the
decisions where PyTorch float32 on the same path differs from the engine's;
it exits non-zero when the decisions do not line up with the network.
With `grad` last, the same for the input gradient of image IMAGE alone (the
decisions of its own forward pass): OUT.f32 gets that gradient, then its 2
logits.
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


def calibrated(arch, size, seed, inp, n):
    """The network of ARCH with its batch norms calibrated (the same weights on every
    call: build seeds the generator, calibrate's random images follow), and the
    N input images [N, 1, 3, SIZE, SIZE]."""
    import torch
    model = build(arch, size, seed).eval()
    xs = torch.tensor(np.fromfile(inp, dtype=np.float32).reshape(n, 1, 3, size, size))
    calibrate(model, torch.cat([xs[:, 0], torch.rand(8, 3, size, size) * 2 - 1]))
    return model, xs


def follow(size, seed, inp, n, arch, image, target, mask_path, argmax_path, out, kind="ig"):
    """IG (or the gradient) of image `image` in float64 with the engine's decisions."""
    import torch
    import zoo_torch_ref as z
    model, xs = calibrated(arch, size, seed, inp, n)
    model = z.route_decisions(model)
    z.DECISIONS.masks = np.fromfile(mask_path, dtype=np.uint8)
    z.DECISIONS.argmax = np.fromfile(argmax_path, dtype=np.int32)
    seen = []  # (ReLU6?, float64 input) of every ReLU and ReLU6, in execution order
    hooks = [mod.register_forward_pre_hook(
        lambda mod, inp: seen.append((isinstance(mod, z.DecisionReLU6), inp[0].detach())))
        for mod in model.modules() if isinstance(mod, (z.DecisionReLU, z.DecisionReLU6))]
    res = []
    for dtype, mode in ((torch.float64, "masked"), (torch.float32, "record")):
        model = model.to(dtype).eval()
        x, b = xs[image].to(dtype), xs[0].to(dtype)
        alphas = torch.linspace(0, 1, STEPS, dtype=torch.float64) if kind == "ig" else [1.0]
        path = torch.cat([b + float(a) * (x - b) for a in alphas]).requires_grad_(True)
        z.DECISIONS.start(mode)
        logits = model(path)
        z.DECISIONS.finish()
        logits[:, target].sum().backward()
        if dtype == torch.float64:
            ig = (x - b) * path.grad.mean(dim=0, keepdim=True) if kind == "ig" else path.grad
            res = [ig.detach().numpy().ravel(), logits.detach().numpy().ravel()]
            for h in hooks:
                h.remove()
    # where float64's own sign differs from the engine's decision: how near 0 its
    # input is, relative to the RMS of that ReLU's input
    pos, flips64, nearest = 0, 0, 0.0
    for six, t in seen:
        v = t.numpy().ravel()
        mine = z.Decisions.relu6_decision(v) if six else (v > 0).astype(np.uint8)
        flip = mine != z.DECISIONS.masks[pos:pos + v.size]
        pos += v.size
        flips64 += int(flip.sum())
        if flip.any():  # the distance to the nearer threshold (0, or 6 for ReLU6)
            gap = np.minimum(np.abs(v), np.abs(v - 6.0)) if six else np.abs(v)
            nearest = max(nearest, float(gap[flip].max() / np.sqrt(np.mean(v * v))))
    print("relu_flips64 %d" % flips64)
    print("relu_flip64_size %.3g" % nearest)
    print("relu_flips %d" % z.DECISIONS.flips)
    print("pool_flips %d" % z.DECISIONS.pool_flips)
    np.concatenate(res).astype(np.float32).tofile(out)


def run(directory, size, seed, inp, n, arch, stamp):
    import torch
    base = os.path.join(directory, "flatfam_%s_%d" % (arch, size))
    if all(os.path.exists(base + s) and os.path.getmtime(base + s) > stamp
           for s in (".onnx", ".ref.f32")):
        print("reused %s" % arch)
        return
    model, xs = calibrated(arch, size, seed, inp, n)
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
    if sys.argv[1] == "follow":
        if len(sys.argv) not in (12, 13) or sys.argv[12:] not in ([], ["grad"]):
            raise SystemExit(__doc__)
        a = sys.argv[2:]
        follow(int(a[0]), int(a[1]), a[2], int(a[3]), a[4], int(a[5]), int(a[6]), a[7], a[8],
               a[9], *a[10:])
        return
    directory, size, seed, inp, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        sys.argv[4], int(sys.argv[5])
    stamp = max(os.path.getmtime(os.path.abspath(__file__)), os.path.getmtime(inp))
    for arch in sys.argv[6:]:
        run(directory, size, seed, inp, n, arch, stamp)


if __name__ == "__main__":
    main()
