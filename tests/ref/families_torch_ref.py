#!/usr/bin/python3
"""torchvision's mobile and grouped-convolution families for tests/unit/test_families.c.

usage: families_torch_ref.py DIR SIZE SEED ARCH:OPSET[:methods] [...]

For each ARCH (resnext50_32x4d, mobilenet_v2, mobilenet_v3_small,
shufflenet_v2_x1_0, mnasnet0_5, efficientnet_b0, efficientnet_v2_s,
regnet_y_400mf): torchvision 0.14 with random weights from
torch.manual_seed(SEED), num_classes=2, batch-norm statistics of 32 random
images with the rest of the network in eval mode (then gamma and beta moved
away from 1 and 0: a well-conditioned network, as a trained one is), exported in eval mode
by torch.onnx.export with its defaults at OPSET and a SIZE x SIZE input to
DIR/fam_ARCH_SIZE_oOPSET.onnx. The input (uniform in [-1, 1] as the calibration images, keyed by SEED
and ARCH; drawn again when no logit has a Grad-CAM) goes to .in.f32, and the reference values to .ref.f32:
  logits and the input gradient of the top logit in float64, then the same
  in PyTorch float32 (its own error against float64 sets the looser bound);
  with ":methods", also for the top logit, float64 then float32:
  gbp  guided backprop: every nn.ReLU module passes grad * [grad > 0] * [out > 0]
       and nothing else is changed (Captum's GuidedBackprop and
       pytorch-grad-cam's GuidedBackpropReLUModel replace nn.ReLU only, so
       ReLU6, Hardswish, SiLU and the sigmoid gates keep their gradient);
  ig   (x - b) * mean_k g(b + a_k (x - b)), a_k = linspace(0, 1, 10), b = 0
       (the constant -1 image lies where these random networks are chaotic:
       there PyTorch float32 differs from float64 by more than 100%);
  gcam Grad-CAM at the output of the last feature stage (the map before
       global pooling): ReLU(sum_c mean_ij(dY/dA_c) A_c) / max, bilinear
       (align_corners=False) to the input size.
.meta holds "target T": the top logit, or with ":methods" the top logit
whose Grad-CAM is not zero everywhere. Files newer than this script are reused.
"""
import os
import sys

import numpy as np

STEPS = 10
BASELINE = 0.0


def feature_stage(arch, model):
    """The module whose output is the last spatial feature map."""
    if arch.startswith("resnext"):
        return model.layer4
    if arch.startswith("regnet"):
        return model.trunk_output
    if arch.startswith("shufflenet"):
        return model.conv5
    if arch.startswith("mnasnet"):
        return model.layers
    return model.features


def build(arch, size, seed):
    import torch
    import torchvision
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None, num_classes=2)
    # gamma and beta away from 1 and 0, then the statistics of each batch norm
    # set, in one eval-mode pass over 8 random images, to the mean and variance
    # of its input (set before it runs, so every later layer sees normalized
    # eval-mode activations): a well-conditioned network, as a trained one is.
    model.eval()
    norms = [mod for mod in model.modules() if isinstance(mod, torch.nn.BatchNorm2d)]

    def calibrate(mod, inputs):
        x = inputs[0].double()
        mod.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        mod.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))
    with torch.no_grad():
        for mod in norms:
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
        hooks = [mod.register_forward_pre_hook(calibrate) for mod in norms]
        model(torch.rand(8, 3, size, size) * 2 - 1)
        for h in hooks:
            h.remove()
    return model.eval()


class GuidedReLU(object):
    """autograd function: ReLU forward, grad * [grad > 0] * [out > 0] backward."""

    @staticmethod
    def make():
        import torch

        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x.clamp(min=0)
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, g):
                y, = ctx.saved_tensors
                return g * (g > 0).to(g.dtype) * (y > 0).to(g.dtype)

        class Module(torch.nn.Module):
            def forward(self, x):
                return Fn.apply(x)

        return Module


def guided_copy(model):
    import copy
    import torch
    guided = copy.deepcopy(model)
    module_cls = GuidedReLU.make()

    def swap(parent):
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.ReLU):
                setattr(parent, name, module_cls())
            else:
                swap(child)
    swap(guided)
    return guided


def input_grad(model, x, target):
    import torch
    x = x.clone().requires_grad_(True)
    y = model(x)
    y[:, target].sum().backward()
    return y.detach(), x.grad.detach()


def references(arch, model, x32, target, methods):
    """[logits, grad, (gbp, ig, gcam)] for one dtype."""
    import torch
    import torch.nn.functional as F
    out = []
    logits, grad = input_grad(model, x32, target)
    out += [logits, grad]
    if not methods:
        return out
    out.append(input_grad(guided_copy(model), x32, target)[1])
    b = torch.full_like(x32, BASELINE)
    alphas = torch.linspace(0, 1, STEPS, dtype=x32.dtype)
    path = torch.cat([b + a * (x32 - b) for a in alphas])
    _, g = input_grad(model, path, target)
    out.append((x32 - b) * g.mean(dim=0, keepdim=True))
    cam = grad_cam(arch, model, x32, target)
    cam = cam / cam.max()
    out.append(F.interpolate(cam, size=x32.shape[2:], mode="bilinear", align_corners=False))
    return [t.detach() for t in out]


def grad_cam(arch, model, x, target):
    """ReLU(sum_c mean_ij(dY/dA_c) A_c) at the last feature stage, not normalized."""
    import torch
    import torch.nn.functional as F
    saved = {}
    stage = feature_stage(arch, model)
    handle = stage.register_forward_hook(lambda m, i, o: saved.update(act=o))
    y = model(x)
    handle.remove()
    act = saved["act"]
    dA, = torch.autograd.grad(y[0, target], act)
    return F.relu((dA.mean(dim=(2, 3), keepdim=True) * act).sum(dim=1, keepdim=True))


def run(directory, size, seed, spec, script_time):
    import torch
    arch, opset, *rest = spec.split(":")
    methods = "methods" in rest
    base = os.path.join(directory, "fam_%s_%d_o%s" % (arch, size, opset))
    files = [base + s for s in (".onnx", ".in.f32", ".ref.f32", ".meta")]
    if all(os.path.exists(f) and os.path.getmtime(f) > script_time for f in files):
        meta = open(base + ".meta").read()
        if ("methods" in meta) == methods:
            print("reused %s opset %s" % (arch, opset))
            return
    model = build(arch, size, seed)
    torch.onnx.export(model, torch.zeros(1, 3, size, size), base + ".onnx",
                      opset_version=int(opset), input_names=["image"], output_names=["logits"])
    model.double()
    for attempt in range(8):
        # the input: another draw when no logit has a Grad-CAM (all of it negative)
        rng = np.random.default_rng([seed, sum(map(ord, arch)), attempt])
        x = rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        x64 = torch.tensor(x, dtype=torch.float64)
        with torch.no_grad():
            order = [int(k) for k in model(x64)[0].argsort(descending=True)]
        if methods:
            order = [k for k in order if float(grad_cam(arch, model, x64, k).max()) > 0]
        if order:
            break
    assert order, "%s: no input with a defined Grad-CAM in 8 draws" % arch
    target = order[0]
    x.tofile(base + ".in.f32")
    ref64 = references(arch, model, torch.tensor(x, dtype=torch.float64), target, methods)
    ref32 = references(arch, model.float(), torch.tensor(x), target, methods)
    parts = ref64[:2] + ref32[:2] + [t for pair in zip(ref64[2:], ref32[2:]) for t in pair]
    np.concatenate([p.numpy().astype(np.float64).ravel() for p in parts]).astype(
        np.float32).tofile(base + ".ref.f32")
    with open(base + ".meta", "w") as f:
        f.write("target %d\n%s" % (target, "methods\n" if methods else ""))
    print("exported %s opset %s" % (arch, opset))


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    import torch
    torch.set_num_threads(1)
    directory, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    script_time = os.path.getmtime(os.path.abspath(__file__))
    for spec in sys.argv[4:]:
        run(directory, size, seed, spec, script_time)


if __name__ == "__main__":
    main()
