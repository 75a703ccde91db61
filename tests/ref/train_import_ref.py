#!/usr/bin/python3
"""SGD steps of an imported torchvision network, by torch.optim (float64).

usage: train_import_ref.py DIR SPEC SIZE SEED OPSET K N LR MOMENTUM WEIGHT_DECAY

SPEC: efficientnet_b0 (torchvision 0.14, 2 classes, batch norms calibrated as
in families_torch_ref.py), vit_small (torchvision's VisionTransformer at
SIZE, patch 8, 2 layers, 2 heads, width 16, MLP 32) or vit_b_16 (at SIZE,
patch 16); random weights from torch.manual_seed(SEED), the ViT's layer
norms, biases, class token and position embedding moved away from their
initial values as in vit_torch_ref.py.

Writes, with base DIR/trimp_SPEC_SIZE_oOPSET:
  .before.onnx  the network exported by torch.onnx.export at OPSET with
                training=TrainingMode.PRESERVE from eval mode (the batch norms
                stay BatchNormalization nodes: the EVAL default folds them
                into the convolutions, and a folded network has no batch
                norm left to train);
  .in.f32       K batches of N inputs (uniform in [-1, 1]), .lab.i32 their labels;
  .after.onnx   the same export after K steps of torch.optim.SGD(lr, momentum,
                weight_decay) on the mean softmax cross entropy, in float64,
                in training mode (batch norm on batch statistics, running
                statistics updated with momentum 0.1 and the unbiased
                variance) except Dropout and StochasticDepth, which stay off
                (salcheck's import treats them as the identity);
  .after32.onnx the same K steps in float32 (PyTorch's own float32 error
                sets the looser bound of the test);
  .loss.f64     the K losses in float64, then the K losses in float32.
Files newer than this script are reused when made with the same arguments (.args).
"""
import copy
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def build(spec, size, seed):
    import torch
    sys.path.insert(0, HERE)
    if spec == "efficientnet_b0":
        import families_torch_ref
        return families_torch_ref.build(spec, size, seed)
    import token_ref
    from torchvision.models.vision_transformer import VisionTransformer
    torch.manual_seed(seed)
    if spec == "vit_small":
        model = VisionTransformer(image_size=size, patch_size=8, num_layers=2, num_heads=2,
                                  hidden_dim=16, mlp_dim=32, num_classes=2)
    elif spec == "vit_b_16":
        model = VisionTransformer(image_size=size, patch_size=16, num_layers=12, num_heads=12,
                                  hidden_dim=768, mlp_dim=3072, num_classes=2)
    else:
        raise SystemExit("train_import_ref.py: unknown SPEC " + spec)
    return token_ref.perturb(model).eval()


def export(model, size, opset, path):
    import torch
    model.float().eval()
    torch.onnx.export(model, torch.zeros(1, 3, size, size), path, opset_version=opset,
                      training=torch.onnx.TrainingMode.PRESERVE, input_names=["image"],
                      output_names=["logits"])


def main():
    if len(sys.argv) != 11:
        raise SystemExit(__doc__)
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    directory, spec = sys.argv[1], sys.argv[2]
    size, seed, opset, k, n = (int(v) for v in sys.argv[3:8])
    lr, momentum, wd = (float(v) for v in sys.argv[8:11])
    base = os.path.join(directory, "trimp_%s_%d_o%d" % (spec, size, opset))
    outs = [base + s for s in (".before.onnx", ".in.f32", ".lab.i32", ".after.onnx", ".loss.f64",
                               ".after32.onnx")]
    script_time = os.path.getmtime(os.path.abspath(__file__))
    args = " ".join(sys.argv[2:]) + "\n"
    if all(os.path.exists(f) and os.path.getmtime(f) > script_time for f in outs) and \
            os.path.exists(base + ".args") and open(base + ".args").read() == args:
        print("reused %s" % base)
        return
    model = build(spec, size, seed)
    export(model, size, opset, outs[0])
    rng = np.random.default_rng([seed, size, sum(map(ord, spec))])
    x = rng.uniform(-1, 1, (k, n, 3, size, size)).astype(np.float32)
    y = np.array([[(i + s) % 2 for i in range(n)] for s in range(k)], dtype=np.int32)
    x.tofile(outs[1])
    y.tofile(outs[2])
    start = copy.deepcopy(model.state_dict())
    losses = []
    for dtype, path in ((torch.float64, outs[3]), (torch.float32, outs[5])):
        model.load_state_dict(start)
        model.to(dtype).train()
        for mod in model.modules():
            if type(mod).__name__ in ("Dropout", "StochasticDepth"):
                mod.eval()
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
        for s in range(k):
            opt.zero_grad()
            logits = model(torch.tensor(x[s], dtype=dtype))
            loss = F.cross_entropy(logits, torch.tensor(y[s], dtype=torch.int64))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        export(model, size, opset, path)
    np.array(losses, dtype=np.float64).tofile(outs[4])
    with open(base + ".args", "w") as f:
        f.write(args)
    print("exported %s: losses %s" % (base, " ".join("%.6f" % v for v in losses)))


if __name__ == "__main__":
    main()
