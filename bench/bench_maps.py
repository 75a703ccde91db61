#!/usr/bin/python3
"""bench_maps.py - whole saliency maps, salcheck next to PyTorch at its best.

The paper's eight methods with its parameters (docs/methods.md section 4: grad,
sg 25 samples, ig 10 steps, sig 25 x 10, gbp, gcam, ggcam, xrai 2 x 100 steps
plus its segmentation) and IG with 32 steps, each timed as one whole map of one
image, post-processing (P1/P2) included, on:

  onnx-*  torchvision 0.14's ResNet-50, DenseNet-121 (224) and InceptionV3 (299,
          320), random weights, 2 outputs, exported to ONNX and read by
          `salcheck import` (bench/bench_import.py's models);
  zoo-*   the zoo builders' ResNet-50, DenseNet-121 (torchvision layout, 224)
          and InceptionV3 (Keras layout, 299 and 320), built in C by
          BUILD/bench/bench_models --save (batch-norm statistics from random
          images); the 320 InceptionV3 is the 299 file with its input size
          attributes changed (the weights do not depend on it).

salcheck: `salcheck explain --method W,M` minus `salcheck explain --method W`,
by the CPU time of the process (getrusage of the child). W is a warm-up method
that runs one engine pass at the full batch (SmoothGrad with --sg-samples B, or
IG with --ig-steps B when M itself is SmoothGrad), so that both runs pay the
same setup: loading, the workspace, the first touch of its pages, the target's
forward pass, W's map and the output files. What is left is M's map in a warm
workspace, as every map but the first of an audit runs. Single-gradient methods
(grad, gbp, gcam, ggcam) run at --batch 1, the batched ones at --sal-batch. Maps
of up to 32 gradients take the median of --sal-reps runs of both commands per
round. The table also shows explain's own timer (the wall clock around the
method's computation, stored as /maps/<method>.attrs["seconds"]; no setup, no
post-processing), a check of the subtraction on a quiet machine, and its ratio
to PyTorch's best: for the single-input maps (0.1-0.3 s at 299-320 px) the
noise of the subtracted setup (about a second of CPU) exceeds the map itself,
and the timer's ratio is the one to read.

Both sides explain the same logit of the same input (the PNG read back, with
the model file's normalization); the last column is the Pearson correlation of
the two post-processed maps of the first round (1.000 where both compute the
same map; sg and sig draw their noise differently).

PyTorch 1.13 (eval, parameters without gradients, one thread) on the same
weights (torchvision's modules; tests/ref/zoo_torch_ref.py's Keras-layout
InceptionV3), methods written from the same definitions with the references'
functions (tests/ref: saliency_torch_ref.ig_nodes and .cam, nn_torch_ref's guided
ReLU, postproc_ref's P1/P2, xrai_ref's scikit-image segmentation and greedy
ranking). Its best configuration per method: NCHW or channels_last, and for
the batched methods the inputs in batches of 1/8/16/32 (capped at the map's
input count). grad/gbp/gcam/ggcam and ig/ig32/sg are timed in every
configuration; sig and xrai (250 and 200 gradients) in the configuration that
was best for ig32 in the same round (the same kind of work). PyTorch may pack
inputs of different noise copies (sig) or baselines (xrai) into one batch;
salcheck runs each IG of sig as its own batch of 10.

Rounds alternate salcheck and PyTorch per model; the tables give medians over
rounds. Below each table, the listed methods of the paper (all but ig32) of one image
together: in each round, salcheck's maps summed against the sum of PyTorch's best
configuration per method in that round, and the median of those per-round ratios
(the pairing within a round cancels most of a drifting host's speed). OpenBLAS picks its own kernels (OPENBLAS_CORETYPE removed).

usage: bench/bench_maps.py [--models onnx-resnet50,...|all] [--methods grad,...]
           [--rounds 3] [--sal-batch 16] [--torch-batches 1,8,16,32] [--seconds 1]
           [--bin build/salcheck] [--bench-models build/bench/bench_models]
           [--out build/bench-maps]
"""
import argparse
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_import import OPSET, loadavg, median, torch_env, torch_net, write_png  # noqa: E402
from bench_models import frozen, zoo_net  # noqa: E402

# key -> (source, architecture, input size)
MODELS = {
    "onnx-resnet50": ("onnx", "resnet50", 224),
    "onnx-densenet121": ("onnx", "densenet121", 224),
    "onnx-inception_v3-299": ("onnx", "inception_v3", 299),
    "onnx-inception_v3-320": ("onnx", "inception_v3", 320),
    "zoo-resnet50": ("zoo", "resnet50", 224),
    "zoo-densenet121": ("zoo", "densenet121", 224),
    "zoo-inceptionv3-299": ("zoo", "inceptionv3", 299),
    "zoo-inceptionv3-320": ("zoo", "inceptionv3", 320),
}

# name -> (salcheck method, extra explain options, input gradients per map or 0 for the
# single-gradient methods). The paper's parameters are explain's defaults.
METHODS = {
    "grad": ("grad", [], 0),
    "sg": ("sg", [], 25),
    "ig": ("ig", [], 10),
    "ig32": ("ig", ["--ig-steps", "32"], 32),
    "sig": ("sig", [], 250),
    "gbp": ("gbp", [], 0),
    "gcam": ("gcam", [], 0),
    "ggcam": ("ggcam", [], 0),
    "xrai": ("xrai", [], 200),
}
PAPER_ORDER = ["grad", "sg", "ig", "sig", "gbp", "gcam", "ggcam", "xrai", "ig32"]
SWEPT = ("ig32", "ig", "sg")  # timed by PyTorch in every batch configuration
SG_SAMPLES, SG_NOISE, IG_STEPS, SIG_SAMPLES, XRAI_STEPS = 25, 0.15, 10, 25, 100


# ---- preparation ----

def read_png_gray(path):
    """The 8-bit gray PNG that write_png wrote (one IDAT, filter 0 rows) as a list of rows."""
    with open(path, "rb") as f:
        data = f.read()
    pos, idat, size = 8, b"", 0
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            size = struct.unpack(">I", body[:4])[0]
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    return [list(raw[r * (size + 1) + 1:(r + 1) * (size + 1)]) for r in range(size)]


def prepare(key, out, binary, bench_models):
    """Model file for salcheck, weights for PyTorch and the test image, made once."""
    source, arch, size = MODELS[key]
    png = os.path.join(out, "image%d.png" % size)
    if not os.path.exists(png):
        write_png(png, size)
    if source == "onnx":
        import torch
        pt = os.path.join(out, arch + ".pt")
        onnx = os.path.join(out, "%s-%d.onnx" % (arch, size))
        h5 = os.path.join(out, "%s-%d.h5" % (arch, size))
        if not os.path.exists(pt):
            torch.save(torch_net(arch).state_dict(), pt)
        if not os.path.exists(onnx):
            net = torch_net(arch)
            net.load_state_dict(torch.load(pt))
            torch.onnx.export(net, torch.zeros(1, 3, size, size), onnx, opset_version=OPSET,
                              input_names=["input"], output_names=["logits"])
        if not os.path.exists(h5):
            subprocess.run([binary, "import", onnx, "-o", h5], check=True,
                           stdout=subprocess.DEVNULL)
        return {"h5": h5, "pt": pt, "png": png}
    base = os.path.join(out, "bench_%s.h5" % arch)
    if not os.path.exists(base):
        # bench_models writes the file before it measures; --seconds 0 keeps that short
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
                   OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        subprocess.run([bench_models, "--arch", arch, "--seconds", "0", "--save", out],
                       check=True, stdout=subprocess.DEVNULL, env=env)
    h5 = base
    if arch == "inceptionv3" and size != 299:
        import h5py
        import numpy as np
        h5 = os.path.join(out, "bench_%s-%d.h5" % (arch, size))
        if not os.path.exists(h5):
            shutil.copyfile(base, h5 + ".part")
            with h5py.File(h5 + ".part", "r+") as f:
                for attr in ("input_h", "input_w"):
                    old = f.attrs[attr]
                    f.attrs[attr] = np.bytes_(str(size)) if isinstance(old, bytes) else str(size)
            os.replace(h5 + ".part", h5)
    return {"h5": h5, "pt": None, "png": png}


# ---- the salcheck side ----

def explain_cpu(binary, files, methods, batch, options, out):
    """CPU seconds of one `salcheck explain` process writing out.h5."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env.pop("OPENBLAS_CORETYPE", None)
    cmd = [binary, "explain", "--model", files["h5"], "--image", files["png"], "--out",
           out, "--method", ",".join(methods), "--batch", str(batch)]
    cmd += options
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit("salcheck explain failed: %s\n%s" % (" ".join(cmd), p.stderr))
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def warmup_for(name, batch):
    """(warm-up method, its options): one engine pass at the full batch, with no
    parameter in common with the measured method."""
    if name == "sg":
        return "ig", ["--ig-steps", str(max(batch, 2))]
    return "sg", ["--sg-samples", str(batch)]


def salcheck_round(binary, files, methods, sal_batch, reps, out):
    """{method: (CPU seconds per map, batch, explain's own wall-clock timer)} for one
    round. The warm-up-only runs are measured once per (warm-up, batch) and shared by
    the methods; the maps of up to 32 gradients (0.1-10 s beside a setup of seconds)
    take the median of `reps` runs of each. Method M's map is left in out-M.h5."""
    import h5py
    base, base_runs, res = {}, {}, {}
    for name in methods:
        meth, opts, inputs = METHODS[name]
        batch = sal_batch if inputs else 1
        n = reps if inputs <= 32 else 1
        warm, wopts = warmup_for(name, batch)
        key = (warm, batch)
        if key not in base or len(base_runs[key]) < n:
            runs = base_runs.setdefault(key, [])
            runs += [explain_cpu(binary, files, [warm], batch, wopts, out + "-warm")
                     for _ in range(n - len(runs))]
            base[key] = median(runs)
        both = median([explain_cpu(binary, files, [warm, meth], batch, wopts + opts,
                                   out + "-" + name) for _ in range(n)])
        with h5py.File("%s-%s.h5" % (out, name), "r") as f:
            inner = float(f["maps"][meth].attrs["seconds"])
        res[name] = (both - base[key], batch, inner)
    return res, base


# ---- the PyTorch side (a worker process per model and round) ----

def torch_model(key, files):
    """(features(x), head(features)) of the PyTorch model with the benchmarked weights;
    features ends at the Grad-CAM layer (the last convolutional block)."""
    import torch
    import torch.nn.functional as F
    source, arch, _ = MODELS[key]
    if source == "onnx":
        net = torch_net(arch)
        net.load_state_dict(torch.load(files["pt"]))
        net = frozen(net)
    else:
        net = zoo_net(arch, files["h5"])
    m = net
    if arch.startswith("resnet"):
        def features(x):
            y = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            return m.layer4(m.layer3(m.layer2(m.layer1(y))))
        return net, features, lambda f: m.fc(torch.flatten(m.avgpool(f), 1))
    if arch.startswith("densenet"):
        return (net, lambda x: F.relu(m.features(x)),
                lambda f: m.classifier(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1)))
    if arch == "inceptionv3":  # Keras layout
        return net, m.features, lambda f: m.fc(f.mean(dim=(2, 3)))
    stages = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
              "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
              "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]

    def inception_features(x):
        for s in stages:
            x = getattr(m, s)(x)
        return x
    return net, inception_features, lambda f: m.fc(torch.flatten(m.avgpool(f), 1))


class TorchMaps:
    """The methods of docs/methods.md section 4 on one image, inputs in batches of `batch`."""

    def __init__(self, features, head, x, black):
        import torch
        self.torch = torch
        self.features, self.head, self.x = features, head, x
        self.black = black
        with torch.no_grad():
            self.target = int(head(features(x))[0].argmax())
        self.h, self.w = x.shape[2], x.shape[3]
        self.gen = torch.Generator().manual_seed(1)
        self.fmt = torch.contiguous_format
        self.batch = 1

    def grads(self, inputs):
        xg = inputs.detach().contiguous(memory_format=self.fmt).requires_grad_(True)
        self.head(self.features(xg))[:, self.target].sum().backward()
        return xg.grad

    def batched(self, count, make):
        """Input gradients of make(i0, i1) (the inputs i0..i1-1) in batches; yields (i0, grads)."""
        for i0 in range(0, count, self.batch):
            i1 = min(count, i0 + self.batch)
            yield i0, self.grads(make(i0, i1))

    def ig(self, x, base, steps):
        import saliency_torch_ref as sr
        t = self.torch
        alphas, weights = sr.ig_nodes("linspace", steps)
        a = t.tensor(alphas, dtype=t.float32).view(-1, 1, 1, 1)
        wt = t.tensor(weights, dtype=t.float32).view(-1, 1, 1, 1)
        acc = t.zeros_like(x[0])
        for i0, g in self.batched(steps, lambda i0, i1: base + a[i0:i1] * (x - base)):
            acc += (wt[i0:i0 + g.shape[0]] * g).sum(dim=0)
        return (x - base)[0] * acc

    def noise(self, count):
        t = self.torch
        sigma = SG_NOISE * float(self.x.max() - self.x.min())
        return t.randn((count,) + tuple(self.x.shape[1:]), generator=self.gen) * sigma

    def run(self, name):
        import numpy as np
        import postproc_ref as pp
        t, x = self.torch, self.x
        try:
            if name == "grad":
                return pp.p1(self.grads(x)[0].numpy())
            if name == "gbp":
                return pp.p1(self.guided()[0].numpy())
            if name == "gcam":
                return pp.p1(self.gradcam()[None].numpy())
            if name == "ggcam":
                return pp.p2(pp.p1(self.guided()[0].numpy()) * pp.p1(self.gradcam()[None].numpy()))
            if name == "sg":
                e = self.noise(SG_SAMPLES)
                acc = t.zeros_like(x[0])
                for _, g in self.batched(SG_SAMPLES, lambda i0, i1: x + e[i0:i1]):
                    acc += (g * g).sum(dim=0)
                return pp.p1((acc / SG_SAMPLES).numpy())
            if name in ("ig", "ig32"):
                base = self.black.expand_as(x)
                return pp.p1(self.ig(x, base, IG_STEPS if name == "ig" else 32).numpy())
            if name == "sig":
                return pp.p1(self.smoothgrad_ig().numpy())
            if name == "xrai":
                import xrai_ref
                attr = self.xrai_attribution()
                image = x[0].permute(1, 2, 0).numpy()
                small = xrai_ref.segmentation_input(image)
                masks = xrai_ref.dilated_masks(xrai_ref.label_images(small, (self.h, self.w)))
                out, _, _ = xrai_ref.greedy(attr.numpy(), masks)
                return pp.p1(out[None])
        except pp.Undefined:
            return np.full((self.h, self.w), np.nan)
        raise SystemExit("unknown method " + name)

    def guided(self):
        """Guided Backprop: every ReLU (module or functional) through nn_torch_ref's guided ReLU."""
        import nn_torch_ref
        import torch.nn.functional as F
        plain = F.relu
        F.relu = lambda a, inplace=False: nn_torch_ref.GuidedReLU.apply(a)
        try:
            return self.grads(self.x)
        finally:
            F.relu = plain

    def gradcam(self):
        """Grad-CAM: the features without a graph, the gradient of the head only."""
        import saliency_torch_ref as sr
        t = self.torch
        with t.no_grad():
            f = self.features(self.x.contiguous(memory_format=self.fmt))
        f = f.detach().requires_grad_(True)
        self.head(f)[0, self.target].backward()
        return sr.cam(f.detach(), f.grad, False, (self.h, self.w))

    def smoothgrad_ig(self):
        """sig: mean over noisy copies of IG(x + e)^2, the baseline not noised; all
        SIG_SAMPLES x IG_STEPS inputs packed into batches."""
        import saliency_torch_ref as sr
        t, x = self.torch, self.x
        e = self.noise(SIG_SAMPLES)
        alphas, weights = sr.ig_nodes("linspace", IG_STEPS)
        a = t.tensor(alphas, dtype=t.float32).repeat(SIG_SAMPLES).view(-1, 1, 1, 1)
        wt = t.tensor(weights, dtype=t.float32).repeat(SIG_SAMPLES).view(-1, 1, 1, 1)
        copy = t.arange(SIG_SAMPLES).repeat_interleave(IG_STEPS)
        base = self.black.expand_as(x)
        xn = x + e  # [SIG_SAMPLES, C, H, W]
        acc = t.zeros_like(xn)
        for i0, g in self.batched(SIG_SAMPLES * IG_STEPS,
                                  lambda i0, i1: base + a[i0:i1] * (xn[copy[i0:i1]] - base)):
            acc.index_add_(0, copy[i0:i0 + g.shape[0]], wt[i0:i0 + g.shape[0]] * g)
        ig = (xn - base) * acc
        return (ig * ig).mean(dim=0)

    def xrai_attribution(self):
        """IG with XRAI_STEPS steps from min(x) and max(x), averaged, max over channels;
        both baselines' inputs packed into batches."""
        import saliency_torch_ref as sr
        t, x = self.torch, self.x
        alphas, weights = sr.ig_nodes("linspace", XRAI_STEPS)
        a = t.tensor(alphas, dtype=t.float32).repeat(2).view(-1, 1, 1, 1)
        wt = t.tensor(weights, dtype=t.float32).repeat(2).view(-1, 1, 1, 1)
        bases = t.stack([t.full_like(x[0], float(x.min())), t.full_like(x[0], float(x.max()))])
        which = t.arange(2).repeat_interleave(XRAI_STEPS)
        acc = t.zeros_like(bases)
        for i0, g in self.batched(2 * XRAI_STEPS,
                                  lambda i0, i1: bases[which[i0:i1]] + a[i0:i1] *
                                  (x - bases[which[i0:i1]])):
            acc.index_add_(0, which[i0:i0 + g.shape[0]], wt[i0:i0 + g.shape[0]] * g)
        ig = (x - bases) * acc
        return (0.5 * (ig[0] + ig[1])).max(dim=0).values


def torch_input(key, files):
    """The test image as salcheck feeds it to the model (the model file's
    normalization, which `salcheck import` sets for torchvision models), and black."""
    import h5py
    import torch
    rows = read_png_gray(files["png"])
    gray = torch.tensor(rows, dtype=torch.float32)
    with h5py.File(files["h5"], "r") as f:
        v = f.attrs.get("normalize", b"inception")
        norm = (v.decode() if isinstance(v, bytes) else str(v)) or "inception"
    if norm not in ("imagenet", "inception"):
        raise SystemExit("%s: normalization %s not known to the benchmark" % (files["h5"], norm))
    if norm == "imagenet":
        mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        x = (gray / 255.0 - mean) / std
        black = ((0.0 - mean) / std).view(1, 3, 1, 1)
    else:
        x = (gray / 127.5 - 1.0).expand(3, -1, -1)
        black = torch.full((1, 3, 1, 1), -1.0)
    return x.unsqueeze(0).contiguous(), black


def torch_worker(args):
    import numpy as np
    import torch
    torch.set_num_threads(1)
    files = {"h5": args.h5, "pt": args.pt, "png": args.png}
    net, features, head = torch_model(args.model, files)
    x, black = torch_input(args.model, files)
    tm = TorchMaps(features, head, x, black)
    methods = [m for m in args.methods.split(",") if m]
    batches = [int(b) for b in args.torch_batches.split(",")]
    layouts = (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last))
    warmed, saved = set(), set()
    times = {}  # (method, layout, batch) -> seconds per map

    def timed(name, layout, fmt, batch):
        tm.fmt, tm.batch = fmt, batch
        if (layout, batch) not in warmed:  # the first pass at a shape sets up oneDNN
            tm.grads(x.expand(batch, -1, -1, -1))
            warmed.add((layout, batch))
        c0 = time.process_time()
        first, maps = tm.run(name), 1
        while time.process_time() - c0 < args.seconds:
            tm.run(name)
            maps += 1
        sec = (time.process_time() - c0) / maps
        if args.maps and name not in saved:
            np.save(os.path.join(args.maps, name + ".npy"), first)
            saved.add(name)
        times[(name, layout, batch)] = sec
        print("RESULT %s %s %d %.6f" % (name, layout, batch, sec), flush=True)

    def candidates(inputs):
        return sorted(set(min(b, inputs) for b in batches))

    for layout, fmt in layouts:
        net.to(memory_format=fmt)
        for name in methods:
            inputs = METHODS[name][2]
            if inputs == 0:
                timed(name, layout, fmt, 1)
            elif name in SWEPT:
                for b in candidates(inputs):
                    timed(name, layout, fmt, b)
    # sig and xrai: in the configuration that was best for ig32 (or ig, sg) in this round
    ref = [k for k in times if k[0] in SWEPT]
    pick = [k for k in ref if k[0] == "ig32"] or ref  # without any: NCHW, the largest batch
    best = min(pick, key=lambda k: times[k]) if pick else ("", "nchw", max(batches))
    for name in methods:
        if name in SWEPT or METHODS[name][2] == 0:
            continue
        layout, fmt = [lf for lf in layouts if lf[0] == best[1]][0]
        net.to(memory_format=fmt)
        timed(name, layout, fmt, min(best[2], METHODS[name][2]))


# ---- the driver ----

def compare_maps(methods, torch_dir, sal_prefix):
    """{method: Pearson r between the PyTorch map and salcheck's (both post-processed)},
    a check that both sides compute the same map; the noise of sg and sig is drawn
    differently, so their r is that of two noise draws."""
    import h5py
    import numpy as np
    out = {}
    for m in methods:
        tp, sp = os.path.join(torch_dir, m + ".npy"), "%s-%s.h5" % (sal_prefix, m)
        if not (os.path.exists(tp) and os.path.exists(sp)):
            continue
        a = np.load(tp).ravel()
        with h5py.File(sp, "r") as f:
            b = np.asarray(f["maps"][METHODS[m][0]]).ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 2 or a[ok].std() == 0 or b[ok].std() == 0:
            out[m] = "undefined (%s)" % ("constant or NaN map")
        else:
            out[m] = "%.3f" % np.corrcoef(a[ok], b[ok])[0, 1]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="all")
    ap.add_argument("--methods", default=",".join(PAPER_ORDER))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sal-batch", type=int, default=16)
    ap.add_argument("--sal-reps", type=int, default=3,
                    help="salcheck runs per round of each map of up to 32 gradients and of "
                         "its warm-up-only baseline")
    ap.add_argument("--torch-batches", default="1,8,16,32")
    ap.add_argument("--seconds", type=float, default=1.0,
                    help="PyTorch repeats a map until this much CPU time has passed (at least once)")
    build = os.environ.get("BUILD", "build")
    ap.add_argument("--bin", default=os.path.join(ROOT, build, "salcheck"))
    ap.add_argument("--bench-models", default=os.path.join(ROOT, build, "bench", "bench_models"))
    ap.add_argument("--out", default=os.path.join(ROOT, build, "bench-maps"))
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--h5")
    ap.add_argument("--pt")
    ap.add_argument("--png")
    ap.add_argument("--maps", help="worker: folder for each method's first map (.npy)")
    args = ap.parse_args()
    if args.worker:
        torch_worker(args)
        return
    keys = list(MODELS) if args.models == "all" else [k for k in args.models.split(",") if k]
    methods = [m for m in args.methods.split(",") if m]
    for k in keys:
        if k not in MODELS:
            raise SystemExit("unknown model %s; known: %s" % (k, ", ".join(MODELS)))
    for m in methods:
        if m not in METHODS:
            raise SystemExit("unknown method %s; known: %s" % (m, ", ".join(METHODS)))
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()
    print("load average at start: %s" % loadavg(), flush=True)
    prepared = {k: prepare(k, args.out, args.bin, args.bench_models) for k in keys}
    env = torch_env(args.bin)
    print("PyTorch's OpenBLAS kernels: %s" % env.get("OPENBLAS_CORETYPE", "its own choice"), flush=True)
    sal = {k: {m: [] for m in methods} for k in keys}
    setup = {k: [] for k in keys}
    tor = {k: {} for k in keys}
    tor_round = {k: {} for k in keys}  # method -> round -> PyTorch's best of that round
    agree = {}
    for rnd in range(args.rounds):
        for k in keys:
            files = prepared[k]
            res, base = salcheck_round(args.bin, files, methods, args.sal_batch, args.sal_reps,
                                       os.path.join(args.out, "sal-" + k))
            for m, (sec, batch, inner) in res.items():
                sal[k][m].append((sec, batch, inner))
                print("ROUND %d salcheck %s %s batch %d: %.3f s/map (CPU, setup subtracted); "
                      "explain's own timer %.3f s" % (rnd, k, m, batch, sec, inner), flush=True)
            for (warm, batch), sec in base.items():
                setup[k].append((warm, batch, sec))
                print("ROUND %d salcheck %s setup + %s warm-up, batch %d: %.2f s CPU"
                      % (rnd, k, warm, batch, sec), flush=True)
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", k,
                   "--h5", files["h5"], "--png", files["png"], "--methods", ",".join(methods),
                   "--torch-batches", args.torch_batches, "--seconds", str(args.seconds)]
            if files["pt"]:
                cmd += ["--pt", files["pt"]]
            maps_dir = os.path.join(args.out, "torch-maps-" + k)
            if rnd == 0:
                os.makedirs(maps_dir, exist_ok=True)
                cmd += ["--maps", maps_dir]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit("PyTorch worker failed:\n" + p.stderr)
            for line in p.stdout.splitlines():
                if line.startswith("RESULT"):
                    _, m, layout, batch, sec = line.split()
                    tor[k].setdefault(m, {}).setdefault((layout, int(batch)), []).append(float(sec))
                    per = tor_round[k].setdefault(m, {})
                    per[rnd] = min(per.get(rnd, float("inf")), float(sec))
                    print("ROUND %d pytorch %s %s %s batch %s: %.3f s/map"
                          % (rnd, k, m, layout, batch, float(sec)), flush=True)
            if rnd == 0:
                agree[k] = compare_maps(methods, maps_dir, os.path.join(args.out, "sal-" + k))
            print("load average: %s" % loadavg(), flush=True)
    print("load average at end: %s; %.0f s in all" % (loadavg(), time.time() - t_start), flush=True)
    for k in keys:
        source, arch, size = MODELS[k]
        print("\n#### %s (%s, %dx%d)\n" % (k, "torchvision via ONNX" if source == "onnx"
                                           else "zoo builder", size, size))
        print("| method | salcheck s/map (batch) | salcheck, explain's timer | PyTorch best s/map "
              "(config) | PyTorch NCHW / channels_last at batch 1 | salcheck / PyTorch best | "
              "explain's timer / PyTorch best | maps agree (Pearson r) |")
        print("|---|---|---|---|---|---|---|---|")
        for m in [m for m in PAPER_ORDER if m in methods]:
            s = median([v for v, _, _ in sal[k][m]])
            inner = median([v for _, _, v in sal[k][m]])
            sb = sal[k][m][0][1]
            configs = {c: median(v) for c, v in tor[k].get(m, {}).items()}
            if not configs:
                continue
            cfg, best = min(configs.items(), key=lambda kv: kv[1])
            rounds = len(tor[k][m][cfg])
            at1 = " / ".join("%.3f" % configs[(lay, 1)] if (lay, 1) in configs else "-"
                             for lay in ("nchw", "channels_last"))
            print("| %s | %.3f (%d) | %.3f | %.3f (batch %d, %s%s) | %s | %.2f | %.2f | %s |"
                  % (m, s, sb, inner, best, cfg[1], cfg[0].replace("_", " "),
                     "" if rounds == args.rounds else ", %d of %d rounds" % (rounds, args.rounds),
                     at1, s / best, inner / best, agree.get(k, {}).get(m, "-")))
        paper = [m for m in PAPER_ORDER if m in methods and m != "ig32" and m in tor_round[k]]
        if len(paper) > 1:
            # the methods of one image together: per round, salcheck's maps summed against the
            # sum of PyTorch's best configuration per method in the same round
            sums = []
            for rnd in range(args.rounds):
                if all(rnd in tor_round[k][m] and len(sal[k][m]) > rnd for m in paper):
                    s_sum = sum(sal[k][m][rnd][0] for m in paper)
                    i_sum = sum(sal[k][m][rnd][2] for m in paper)
                    t_sum = sum(tor_round[k][m][rnd] for m in paper)
                    sums.append((s_sum, i_sum, t_sum))
            if sums:
                print("\n%s of one image together (%d rounds): salcheck %.2f s (explain's timer "
                      "%.2f s), PyTorch's best per method %.2f s; ratio per round %s, median "
                      "**%.2f** (explain's timer: %s, median %.2f)"
                      % (", ".join(paper), len(sums), median([a for a, _, _ in sums]),
                         median([b for _, b, _ in sums]), median([c for _, _, c in sums]),
                         " ".join("%.2f" % (a / c) for a, _, c in sums),
                         median([a / c for a, _, c in sums]),
                         " ".join("%.2f" % (b / c) for _, b, c in sums),
                         median([b / c for _, b, c in sums])))
        warm = Counter((w, b) for w, b, _ in setup[k])
        for (w, b) in sorted(warm):
            print("\nsalcheck setup + one %s pass at batch %d (subtracted): %.2f s CPU (median)"
                  % (w, b, median([s for ww, bb, s in setup[k] if (ww, bb) == (w, b)])))


if __name__ == "__main__":
    main()
