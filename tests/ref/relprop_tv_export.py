#!/usr/bin/python3
"""torchvision models at small sizes, exported to ONNX, for the LRP and
DeepLIFT parity of tests/unit/test_relprop.c on imported graphs.

usage: relprop_tv_export.py DIR SEED ARCH:SIZE [...]

ARCH is resnet18, densenet121 or vgg11_bn (num_classes=2, random weights from
torch.manual_seed(SEED)). vgg11_bn keeps torchvision's feature layers (eight
convolutions with batch norm and ReLU, five max pools) and the shape of its
classifier (dense, ReLU, dropout, dense, ReLU, dropout, dense) at width 64
after a global average pool: torchvision's 7 x 7 adaptive pool cannot be
exported below 224 px and its 25088 x 4096 dense layer would not keep the test
fast. Batch-norm statistics are those of the activations of random images
(the mean and variance of each batch norm's input, set before it runs: a
well-conditioned network, as a trained one is), then gamma and beta moved
away from 1 and 0. Exported in eval mode at opset 13 with a SIZE x SIZE input
to DIR/rptv_ARCH_SIZE.onnx. Files newer than this script are reused.
"""
import os
import sys


def build(arch, seed):
    import torch
    import torchvision
    torch.manual_seed(seed)
    if arch != "vgg11_bn":
        return getattr(torchvision.models, arch)(weights=None, num_classes=2)
    from torchvision.models import vgg
    features = vgg.make_layers(vgg.cfgs["A"], batch_norm=True)
    width = 64
    model = torch.nn.Sequential(
        features, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(512, width), torch.nn.ReLU(True), torch.nn.Dropout(),
        torch.nn.Linear(width, width), torch.nn.ReLU(True), torch.nn.Dropout(),
        torch.nn.Linear(width, 2))
    for mod in model.modules():  # torchvision's VGG initialization
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.zeros_(mod.bias)
        elif isinstance(mod, torch.nn.Linear):
            torch.nn.init.normal_(mod.weight, 0, 0.01)
            torch.nn.init.zeros_(mod.bias)
    return model


def calibrate(model, size):
    """Each batch norm's statistics from its own input on random images."""
    import torch
    hooks = []

    def stats(mod, inputs):
        a = inputs[0]
        mod.running_mean.copy_(a.mean(dim=(0, 2, 3)))
        mod.running_var.copy_(a.var(dim=(0, 2, 3)) + 1e-3)

    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            hooks.append(mod.register_forward_pre_hook(stats))
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    with torch.no_grad():
        model(torch.rand(8, 3, size, size) * 2 - 1)
    for h in hooks:
        h.remove()


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    import torch
    torch.set_num_threads(1)
    directory, seed = sys.argv[1], int(sys.argv[2])
    script = os.path.getmtime(os.path.abspath(__file__))
    for spec in sys.argv[3:]:
        arch, size = spec.split(":")
        size = int(size)
        path = os.path.join(directory, "rptv_%s_%d.onnx" % (arch, size))
        if os.path.exists(path) and os.path.getmtime(path) > script:
            continue
        model = build(arch, seed)
        calibrate(model, size)
        torch.onnx.export(model, torch.zeros(1, 3, size, size), path, opset_version=13,
                          input_names=["image"], output_names=["logits"])
        print("exported %s at %d px" % (arch, size))


if __name__ == "__main__":
    main()
