#!/usr/bin/python3
"""Reference forward/backward of a zoo architecture with the PyTorch model it imitates.

The C builders (common/nn/zoo_*.c) must equal, node for node:
  resnet18, resnet50, densenet121  torchvision.models.<arch>(num_classes=K)
  inceptionv3                      KerasInceptionV3 below, written from the
                                   Keras source (keras/applications/inception_v3.py)
This script builds that PyTorch model, loads the weights of a salcheck model
file into it by name (a torchvision state_dict key is "<node name>.<tensor>"),
and computes the logits, the input gradient of logit[target], and the
activation and gradient at the Grad-CAM layer.

Why the C engine's decisions: a float32 engine and a float64 reference
disagree on the sign of the few pre-activations that lie within float32
rounding of zero, and on the argmax of the few max-pool windows whose two
largest values are that close. Each such flip reroutes the gradient through
one unit, which changes the input gradient of a deep network by up to
percents (PyTorch float32 against PyTorch float64 shows the same). To judge
the engine's arithmetic rather than those coin tosses, the float64 pass takes
the C forward pass's decisions: MASKS.u8, one byte per ReLU output (1 when
positive), and ARGMAX.i32, the input offset within the plane of every
max-pool output, both in node order, which is the execution order of the
PyTorch model. A plain float32 PyTorch pass is computed as well: what a
PyTorch user gets, and how many decisions it takes differently.

usage: zoo_torch_ref.py ARCH MODEL.h5 INPUT.f32 N TARGETS(comma) MASKS.u8 ARGMAX.i32 OUT.f32
OUT.f32 holds, float32 row-major:
  float64 pass with the C masks: logits [n,K], input gradient [n,3,H,W],
      Grad-CAM activation [n,C,h,w] and its gradient [n,C,h,w];
  plain float32 PyTorch: logits [n,K], input gradient [n,3,H,W].
stdout: "params N" (the PyTorch model's parameter count), "relu_units N",
"flips_float32 N" (ReLU outputs whose sign float32 PyTorch decides otherwise),
"pool_windows N" and "pool_flips_float32 N" (the same for max-pool argmax).
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# salcheck tensor kind -> torch parameter/buffer suffix
KIND_TO_TORCH = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
                 "running_mean": "running_mean", "running_var": "running_var"}


class Decisions:
    """Every ReLU and max pool of the reference models goes through DECISIONS,
    in execution order.

    mode "plain": PyTorch's own decisions. "masked": the C engine's (ReLU
    on/off pattern, ReLU6's three sides, max-pool argmax). "record": PyTorch's own, counting where
    they differ from the C engine's.
    """

    def __init__(self):
        self.masks = self.argmax = None
        self.mode = "plain"
        self.flips = self.pool_flips = 0

    def start(self, mode):
        self.mode, self.mpos, self.apos = mode, 0, 0

    @staticmethod
    def _take(arr, pos, count, what):
        if arr is None or pos + count > arr.size:
            raise SystemExit("%s exhausted at offset %d: the graphs differ" % (what, pos))
        return arr[pos:pos + count]

    def relu(self, x):
        if self.mode == "plain":
            return F.relu(x)
        m = self._take(self.masks, self.mpos, x.numel(), "ReLU masks").reshape(x.shape)
        self.mpos += x.numel()
        if self.mode == "record":
            self.flips += int(((x.detach() > 0).numpy() != (m != 0)).sum())
            return F.relu(x)
        return x * torch.from_numpy(m.astype(np.float64)).to(x.dtype)

    @staticmethod
    def relu6_decision(v):
        """0: clipped at 0 (x <= 0), 1: passed, 2: clipped at 6 (x >= 6)."""
        return np.where(v <= 0, 0, np.where(v >= 6, 2, 1)).astype(np.uint8)

    def relu6(self, x):
        """ReLU6 (hardtanh(0, 6)): its mask byte is relu6_decision's."""
        if self.mode == "plain":
            return F.relu6(x)
        m = self._take(self.masks, self.mpos, x.numel(), "ReLU masks").reshape(x.shape)
        self.mpos += x.numel()
        if self.mode == "record":
            self.flips += int((self.relu6_decision(x.detach().numpy()) != m).sum())
            return F.relu6(x)
        on = torch.from_numpy((m == 1).astype(np.float64)).to(x.dtype)
        high = torch.from_numpy((m == 2).astype(np.float64)).to(x.dtype)
        return x * on + 6.0 * high

    def max_pool(self, x, kernel, stride, padding=0, ceil_mode=False):
        if self.mode == "plain":
            return F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
        y, idx = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode,
                              return_indices=True)
        n, c, oh, ow = y.shape
        a = self._take(self.argmax, self.apos, y.numel(), "max-pool argmax")
        self.apos += y.numel()
        a = torch.from_numpy(a.astype(np.int64)).reshape(n, c, oh * ow)
        if self.mode == "record":
            self.pool_flips += int((idx.reshape(n, c, -1) != a).sum())
            return y
        return x.reshape(n, c, -1).gather(2, a).reshape(n, c, oh, ow)

    def finish(self):
        if self.mode == "plain":
            return
        for arr, pos, what in ((self.masks, self.mpos, "ReLU mask"),
                               (self.argmax, self.apos, "max-pool argmax")):
            if arr is not None and pos != arr.size:
                raise SystemExit("%d %s values left over: the graphs differ" % (arr.size - pos, what))


DECISIONS = Decisions()


class DecisionReLU(nn.Module):
    def forward(self, x):
        return DECISIONS.relu(x)


class DecisionReLU6(nn.Module):
    def forward(self, x):
        return DECISIONS.relu6(x)


class DecisionMaxPool(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.k, self.s, self.p, self.ceil = pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode

    def forward(self, x):
        return DECISIONS.max_pool(x, self.k, self.s, self.p, self.ceil)


def route_decisions(model):
    """Route every nn.ReLU, nn.ReLU6 and nn.MaxPool2d of a torchvision model through DECISIONS."""
    for _, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(mod, child_name, DecisionReLU())
            elif isinstance(child, nn.ReLU6):
                setattr(mod, child_name, DecisionReLU6())
            elif isinstance(child, nn.MaxPool2d):
                setattr(mod, child_name, DecisionMaxPool(child))
    return model


class ConvBN(nn.Module):
    """Keras conv2d_bn: Conv2D(use_bias=False) + BatchNormalization(scale=False, eps=1e-3) + ReLU."""

    def __init__(self, cin, cout, kh, kw, stride=1, same=True):
        super().__init__()
        # Every "same" convolution of InceptionV3 has stride 1 and odd kernels,
        # so TensorFlow's same padding is symmetric: (k-1)/2 on each side.
        pad = ((kh - 1) // 2, (kw - 1) // 2) if same else (0, 0)
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=pad, bias=False)
        self.beta = nn.Parameter(torch.zeros(cout))
        self.register_buffer("running_mean", torch.zeros(cout))
        self.register_buffer("running_var", torch.ones(cout))

    def forward(self, x):
        x = self.conv(x)
        x = F.batch_norm(x, self.running_mean, self.running_var, None, self.beta, False, 0.0, 1e-3)
        return DECISIONS.relu(x)


def avg_same(x):
    """AveragePooling2D((3,3), strides=(1,1), padding='same'): TF excludes the padding."""
    return F.avg_pool2d(x, 3, 1, padding=1, count_include_pad=False)


class KerasInceptionV3(nn.Module):
    """InceptionV3 in the Keras layout; self.convs[i] is Keras' conv2d_<i> (+ its BN)."""

    def __init__(self, classes):
        super().__init__()
        self.convs = nn.ModuleList()
        self._build()
        self.fc = nn.Linear(2048, classes)

    def _c(self, cin, cout, kh, kw, stride=1, same=True):
        self.convs.append(ConvBN(cin, cout, kh, kw, stride, same))
        return len(self.convs) - 1

    def _build(self):
        c = self._c
        self.stem = [c(3, 32, 3, 3, 2, False), c(32, 32, 3, 3, 1, False), c(32, 64, 3, 3),
                     c(64, 80, 1, 1, 1, False), c(80, 192, 3, 3, 1, False)]
        self.a = []
        cin = 192
        for pool_f in (32, 64, 64):
            ids = [c(cin, 64, 1, 1), c(cin, 48, 1, 1), c(48, 64, 5, 5), c(cin, 64, 1, 1),
                   c(64, 96, 3, 3), c(96, 96, 3, 3), c(cin, pool_f, 1, 1)]
            self.a.append(ids)
            cin = 64 + 64 + 96 + pool_f
        self.ra = [c(cin, 384, 3, 3, 2, False), c(cin, 64, 1, 1), c(64, 96, 3, 3),
                   c(96, 96, 3, 3, 2, False)]
        cin = 384 + 96 + cin
        self.b = []
        for c7 in (128, 160, 160, 192):
            ids = [c(cin, 192, 1, 1), c(cin, c7, 1, 1), c(c7, c7, 1, 7), c(c7, 192, 7, 1),
                   c(cin, c7, 1, 1), c(c7, c7, 7, 1), c(c7, c7, 1, 7), c(c7, c7, 7, 1),
                   c(c7, 192, 1, 7), c(cin, 192, 1, 1)]
            self.b.append(ids)
            cin = 768
        self.rb = [c(cin, 192, 1, 1), c(192, 320, 3, 3, 2, False), c(cin, 192, 1, 1),
                   c(192, 192, 1, 7), c(192, 192, 7, 1), c(192, 192, 3, 3, 2, False)]
        cin = 320 + 192 + cin
        self.c8 = []
        for _ in range(2):
            ids = [c(cin, 320, 1, 1), c(cin, 384, 1, 1), c(384, 384, 1, 3), c(384, 384, 3, 1),
                   c(cin, 448, 1, 1), c(448, 384, 3, 3), c(384, 384, 1, 3), c(384, 384, 3, 1),
                   c(cin, 192, 1, 1)]
            self.c8.append(ids)
            cin = 2048

    def features(self, x):
        """Evaluated in Keras' layer-creation order (the order of the ReLU masks)."""
        v = self.convs
        s = self.stem
        x = v[s[2]](v[s[1]](v[s[0]](x)))
        x = DECISIONS.max_pool(x, 3, 2)
        x = v[s[4]](v[s[3]](x))
        x = DECISIONS.max_pool(x, 3, 2)
        for i in self.a:
            b1 = v[i[0]](x)
            b5 = v[i[2]](v[i[1]](x))
            b3 = v[i[5]](v[i[4]](v[i[3]](x)))
            bp = v[i[6]](avg_same(x))
            x = torch.cat([b1, b5, b3, bp], 1)
        r = self.ra
        x = torch.cat([v[r[0]](x), v[r[3]](v[r[2]](v[r[1]](x))), DECISIONS.max_pool(x, 3, 2)], 1)
        for i in self.b:
            b1 = v[i[0]](x)
            b7 = v[i[3]](v[i[2]](v[i[1]](x)))
            bd = v[i[8]](v[i[7]](v[i[6]](v[i[5]](v[i[4]](x)))))
            bp = v[i[9]](avg_same(x))
            x = torch.cat([b1, b7, bd, bp], 1)
        r = self.rb
        b3 = v[r[1]](v[r[0]](x))
        b7 = v[r[5]](v[r[4]](v[r[3]](v[r[2]](x))))
        x = torch.cat([b3, b7, DECISIONS.max_pool(x, 3, 2)], 1)
        for i in self.c8:
            b1 = v[i[0]](x)
            t = v[i[1]](x)
            b3 = torch.cat([v[i[2]](t), v[i[3]](t)], 1)
            t = v[i[5]](v[i[4]](x))
            bd = torch.cat([v[i[6]](t), v[i[7]](t)], 1)
            bp = v[i[8]](avg_same(x))
            x = torch.cat([b1, b3, bd, bp], 1)
        return x  # mixed10

    def load_salcheck(self, weights):
        """Keras names: conv2d[_i], batch_normalization[_i], predictions."""
        def sfx(i):
            return "" if i == 0 else "_%d" % i
        with torch.no_grad():
            for i, m in enumerate(self.convs):
                m.conv.weight.copy_(torch.from_numpy(weights["conv2d" + sfx(i)]["weight"][()]))
                bn = weights["batch_normalization" + sfx(i)]
                if "gamma" in bn:
                    raise SystemExit("batch_normalization%s has a scale; Keras has none" % sfx(i))
                m.beta.copy_(torch.from_numpy(bn["beta"][()]))
                m.running_mean.copy_(torch.from_numpy(bn["running_mean"][()]))
                m.running_var.copy_(torch.from_numpy(bn["running_var"][()]))
            self.fc.weight.copy_(torch.from_numpy(weights["predictions"]["weight"][()]))
            self.fc.bias.copy_(torch.from_numpy(weights["predictions"]["bias"][()]))


def no_init():
    """Skip torch's random initialization while building a model whose weights
    are loaded right after (it costs seconds on ResNet-50)."""
    import torch.nn.init as init
    for name in ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "constant_",
                 "xavier_uniform_", "trunc_normal_", "ones_", "zeros_"):
        setattr(init, name, lambda t, *a, **k: t)


def torchvision_model(arch, classes):
    import torchvision
    return route_decisions(getattr(torchvision.models, arch)(weights=None, num_classes=classes))


def load_salcheck_weights(model, arch, weights):
    """torchvision models: state_dict key = '<node name>.<torch tensor name>'."""
    state = {}
    for node in weights:
        for kind in weights[node]:
            key = node.replace("|", "/") + "." + KIND_TO_TORCH[kind]
            state[key] = torch.from_numpy(np.asarray(weights[node][kind]))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit("layout differs from torchvision %s: missing %s, unexpected %s"
                         % (arch, missing[:5], unexpected[:5]))


def forward(arch, model, x):
    """(logits, Grad-CAM feature map), the feature map kept for its gradient."""
    if arch == "inceptionv3":
        feats = model.features(x)
        feats.retain_grad()
        return model.fc(feats.mean(dim=(2, 3))), feats
    if arch.startswith("resnet"):
        m = model
        y = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        feats = m.layer4(m.layer3(m.layer2(m.layer1(y))))
        feats.retain_grad()
        return m.fc(torch.flatten(m.avgpool(feats), 1)), feats
    feats = DECISIONS.relu(model.features(x))  # densenet121: F.relu after norm5 (features.relu5)
    feats.retain_grad()
    return model.classifier(torch.flatten(F.adaptive_avg_pool2d(feats, 1), 1)), feats


def reference(arch, model, x0, targets, masks, argmax):
    """The OUT.f32 contents (list of arrays); DECISIONS counts the float32 flips."""
    DECISIONS.masks, DECISIONS.argmax = masks, argmax
    for p in model.parameters():
        p.requires_grad_(False)
    res = []
    for dtype, mode in ((torch.float64, "masked"), (torch.float32, "record")):
        model = model.to(dtype).eval()
        x = torch.tensor(x0, dtype=dtype, requires_grad=True)
        DECISIONS.start(mode)
        logits, feats = forward(arch, model, x)
        DECISIONS.finish()
        n = x0.shape[0]
        logits[torch.arange(n), torch.tensor(targets)].sum().backward()
        res += [logits.detach().numpy().ravel(), x.grad.numpy().ravel()]
        if dtype == torch.float64:
            res += [feats.detach().numpy().ravel(), feats.grad.numpy().ravel()]
    return res


def main():
    arch, path, inp, n, targets, mask_path, argmax_path, out = sys.argv[1:9]
    n = int(n)
    targets = [int(t) for t in targets.split(",")]
    no_init()
    with h5py.File(path, "r") as f:
        c, h, w = (int(f.attrs[k]) for k in ("input_c", "input_h", "input_w"))
        classes = int(f.attrs["num_classes"])
        weights = f["weights"]
        if arch == "inceptionv3":
            model = KerasInceptionV3(classes)
            model.load_salcheck(weights)
        else:
            model = torchvision_model(arch, classes)
            load_salcheck_weights(model, arch, weights)
    print("params %d" % sum(p.numel() for p in model.parameters()))
    x0 = np.fromfile(inp, dtype=np.float32).reshape(n, c, h, w)
    masks = np.fromfile(mask_path, dtype=np.uint8)
    argmax = np.fromfile(argmax_path, dtype=np.int32)
    res = reference(arch, model, x0, targets, masks, argmax)
    print("relu_units %d" % masks.size)
    print("flips_float32 %d" % DECISIONS.flips)
    print("pool_windows %d" % argmax.size)
    print("pool_flips_float32 %d" % DECISIONS.pool_flips)
    np.concatenate(res).astype(np.float32).tofile(out)


if __name__ == "__main__":
    main()
