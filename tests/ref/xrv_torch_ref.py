#!/usr/bin/python3
"""A TorchXRayVision-style DenseNet-121 for the multi-output tests, and its PyTorch results.

TorchXRayVision's DenseNet takes 1 input channel scaled to [-1024, 1024]
((2 * gray/255 - 1) * 1024) and has 18 outputs, one per pathology, each read
through a sigmoid. torchxrayvision itself is not in Debian; the model is built
here from torchvision's DenseNet-121 (the same layers: a 1-channel conv0,
a Linear(1024, 18) classifier) with a sigmoid after the classifier.

usage:
  xrv_torch_ref.py labels
      the 18 output names, comma-separated (TorchXRayVision's default pathologies)
  xrv_torch_ref.py export DIR SEED SIZE OPSET
      random weights from torch.manual_seed(SEED), batch-norm statistics
      calibrated on random [-1024, 1024] images, exported in eval mode at
      SIZE x SIZE to DIR/xrv_SIZE.onnx; the weights to DIR/xrv_SIZE.pt
  xrv_torch_ref.py ref DIR/xrv_SIZE.pt SIZE GRAY.f32 INPUT.f32 TARGET OUT.f32
      checks that INPUT (the C loader's tensor, [1,SIZE,SIZE]) is the xrv
      scaling of GRAY (0..255) and prints "input_err E"; then writes OUT:
      float64 logits [18], float64 input gradient of logit[TARGET] [SIZE*SIZE],
      float32 logits, float32 gradient, float64 sigmoid outputs [18]; all
      from PyTorch's own decisions (no tie forcing), as float32 values
"""
import os
import sys

import numpy as np

LABELS = ["Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema",
          "Emphysema", "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening",
          "Cardiomegaly", "Nodule", "Mass", "Hernia", "Lung Lesion", "Fracture",
          "Lung Opacity", "Enlarged Cardiomediastinum"]


def build(seed):
    import torch
    import torchvision

    class XrvDenseNet(torch.nn.Module):
        """torchvision DenseNet-121 with 1 input channel, 18 outputs and a sigmoid."""

        def __init__(self):
            super().__init__()
            base = torchvision.models.densenet121(weights=None, num_classes=len(LABELS))
            base.features.conv0 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3,
                                                  bias=False)
            self.features = base.features
            self.classifier = base.classifier

        def logits(self, x):
            out = torch.nn.functional.relu(self.features(x))
            out = torch.nn.functional.adaptive_avg_pool2d(out, (1, 1))
            return self.classifier(torch.flatten(out, 1))

        def forward(self, x):
            return torch.sigmoid(self.logits(x))

    torch.manual_seed(int(seed))
    return XrvDenseNet()


def export(directory, seed, size, opset):
    import torch
    torch.set_num_threads(1)
    model = build(seed)
    # batch-norm statistics of real activations on [-1024, 1024] inputs, then gamma/beta
    # away from 1/0 (the export folds nothing trivially)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 1, size, size) * 2048 - 1024)
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
        model.classifier.bias.uniform_(-0.5, 0.5)
    model.eval()
    base = os.path.join(directory, "xrv_%d" % size)
    torch.save(model.state_dict(), base + ".pt")
    torch.onnx.export(model, torch.zeros(1, 1, size, size), base + ".onnx", opset_version=opset,
                      input_names=["image"], output_names=["probabilities"])
    print("exported", base + ".onnx")


def ref(state, size, gray_path, input_path, target, out_path):
    import torch
    torch.set_num_threads(1)
    gray = np.fromfile(gray_path, dtype=np.float32).astype(np.float64)
    x_c = np.fromfile(input_path, dtype=np.float32).astype(np.float64)
    assert gray.size == size * size and x_c.size == size * size, "sizes"
    x_ref = (2.0 * (gray / 255.0) - 1.0) * 1024.0  # TorchXRayVision's normalize(img, 255)
    print("input_err %.3e" % (np.abs(x_c - x_ref).max() / 1024.0))
    model = build(0)
    model.load_state_dict(torch.load(state))
    model.eval()
    outs = []
    results = {}
    for dtype in (torch.float64, torch.float32):
        m = model.to(dtype)
        x = torch.tensor(x_c.reshape(1, 1, size, size), dtype=dtype, requires_grad=True)
        logits = m.logits(x)
        logits[0, target].backward()
        results[dtype] = (logits.detach().numpy().ravel(), x.grad.numpy().ravel(),
                          torch.sigmoid(logits).detach().numpy().ravel())
    l64, g64, p64 = results[torch.float64]
    l32, g32, _ = results[torch.float32]
    out = np.concatenate([l64, g64, l32, g32, p64]).astype(np.float32)
    out.tofile(out_path)
    print("logit %.6f probability %.6f" % (l64[target], p64[target]))


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "labels":
        print(",".join(LABELS))
    elif cmd == "export" and len(sys.argv) == 6:
        export(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "ref" and len(sys.argv) == 8:
        ref(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
