#!/usr/bin/python3
"""bench_memory.py - peak resident memory per rank of one batch of input
gradients, salcheck next to PyTorch.

For each architecture, in separate processes (so each peak is its own):
salcheck's BUILD/bench/bench_memory (zoo architecture, random weights, one
saliency workspace, one fused forward, as the maps run it, and the backward to
the input at the batch) and PyTorch (torchvision's architecture in eval mode,
1 thread, the same batch, input gradient of one logit). Both report VmHWM of /proc/self/status (the
interpreter and its libraries included for PyTorch, MPI/HDF5/OpenBLAS for
salcheck). Prints a Markdown table; bench/README.md holds a run.

usage: bench/bench_memory.py [--bin build/bench/bench_memory] [--batch 16]
           [--archs inceptionv3:320,inceptionv3:299,resnet50:224,densenet121:224]

The methods mode (--methods LIST): the whole process of one rank running the
methods on one image, InceptionV3 (the zoo's Keras layout, random weights, 2
classes) at --size, for each setting of --settings: "run" (the batch salcheck
run picks), "bN" (batch N), "budget:SIZE" (`[job] memory_per_rank = SIZE`,
e.g. 1G). salcheck: bench_memory --methods (MPI initialized, the base
parameters copied, one workspace, each method then post-processing).
PyTorch (1 thread, the same batch and input): tests/ref/zoo_torch_ref.py's
KerasInceptionV3 in float32 with its parameters frozen, the methods batched
as salcheck batches them, Grad-CAM's maps with tests/ref/saliency_torch_ref.py's
cam(), IG's nodes from its ig_nodes(), XRAI's regions with tests/ref/xrai_ref.py
(scikit-image's Felzenszwalb). --quick 1 (both sides) cuts the sample counts
to one full engine batch per method, which leaves the peak unchanged.

usage: bench/bench_memory.py --methods grad,sg,ig,sig,gbp,gcam,ggcam,xrai,random,sobel,avgmask
           [--size 320] [--settings run,b8,b16,budget:1G,budget:2G] [--quick 1]
"""
import argparse
import os
import subprocess
import sys

TORCH_CHILD = r"""
import sys, torch, torchvision
torch.set_num_threads(1)
arch, size, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if arch == "inceptionv3":
    m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                        num_classes=2)
else:
    m = getattr(torchvision.models, arch)(weights=None, num_classes=2)
m.eval()
x = torch.rand(batch, 3, size, size, requires_grad=True)
y = m(x)
y[:, 0].sum().backward()
hwm = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        hwm = int(line.split()[1]) * 1024
print("peak_mb=%.0f" % (hwm / 1048576.0))
"""


TORCH_METHODS_CHILD = r"""
import sys
import numpy as np
import scipy.ndimage
import torch
refdir, size, batch, methods, quick, inp = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                             sys.argv[4].split(","), int(sys.argv[5]), sys.argv[6])
sys.path.insert(0, refdir)
import saliency_torch_ref as S
import xrai_ref as X
import zoo_torch_ref as Z
torch.set_num_threads(1)


def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


class Guided(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        out = a.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (g > 0) * (out > 0)


model = Z.KerasInceptionV3(2).eval()
for q in model.parameters():
    q.requires_grad_(False)
x = torch.from_numpy(np.fromfile(inp, dtype=np.float32).reshape(1, 3, size, size))
with torch.no_grad():
    target = int(model.fc(model.features(x).mean(dim=(2, 3)))[0].argmax())


def grads(xb, guided=False):
    xb = xb.clone().requires_grad_(True)
    plain = Z.DECISIONS.relu
    if guided:
        Z.DECISIONS.relu = Guided.apply
    try:
        logits, feats = Z.forward("inceptionv3", model, xb)
    finally:
        Z.DECISIONS.relu = plain
    logits[:, target].sum().backward()
    return xb.grad, feats


def batched(make, n):
    # sum over the n inputs make(i) of weight(i) * gradient, batch inputs per pass
    for s in range(0, n, batch):
        idx = range(s, min(n, s + batch))
        g, _ = grads(torch.cat([make(i) for i in idx]))
        yield idx, g


def ig(xin, b, steps):
    alphas, w = S.ig_nodes("linspace", steps)
    acc = torch.zeros_like(xin)
    for idx, g in batched(lambda i: b + float(alphas[i]) * (xin - b), steps):
        acc += (torch.tensor(w[list(idx)], dtype=g.dtype)[:, None, None, None] * g).sum(0)
    return (xin - b) * acc


gen = torch.Generator().manual_seed(1)
sigma = 0.15 * float(x.max() - x.min())
sg_n = min(25, batch) if quick else 25
sig_n = 1 if quick else 25
xrai_steps = min(100, batch) if quick else 100
gb = None
print("start_mb=%.0f" % hwm())
for name in methods:
    if name == "grad":
        grads(x)
    elif name == "sg":
        noise = [torch.randn(x.shape, generator=gen) * sigma for _ in range(sg_n)]
        acc = torch.zeros_like(x)
        for _, g in batched(lambda i: x + noise[i], sg_n):
            acc += (g ** 2).sum(0)
    elif name == "ig":
        ig(x, torch.full_like(x, -1.0), 10)
    elif name == "sig":
        acc = torch.zeros_like(x)
        for j in range(sig_n):
            acc += ig(x + torch.randn(x.shape, generator=gen) * sigma, torch.full_like(x, -1.0), 10) ** 2
    elif name in ("gbp", "ggcam"):
        gb = grads(x, guided=True)[0][0].abs().amax(0)
    if name in ("gcam", "ggcam"):
        _, feats = grads(x)
        cam = S.cam(feats.detach(), feats.grad, False, (size, size))
        if name == "ggcam":
            norm = lambda a: (a - a.min()) / (a.max() - a.min())
            norm(norm(gb) * norm(cam))
    elif name == "xrai":
        attr = (ig(x, torch.full_like(x, float(x.min())), xrai_steps) +
                ig(x, torch.full_like(x, float(x.max())), xrai_steps)) / 2
        attr = attr[0].amax(0).numpy()
        small = X.segmentation_input(x[0].permute(1, 2, 0).numpy())
        masks = X.dilated_masks(X.label_images(small, (size, size)))
        X.greedy(attr, masks)
    elif name == "random":
        np.random.default_rng(1).random((size, size))
    elif name == "sobel":
        im = x[0, 0].numpy().astype(np.float64)
        np.hypot(scipy.ndimage.sobel(im, 0), scipy.ndimage.sobel(im, 1))
    elif name == "avgmask":
        np.zeros((size, size))
    print("method=%s peak_mb=%.0f" % (name, hwm()))
    sys.stdout.flush()
print("peak_mb=%.0f" % hwm())
"""


def size_mb(text):
    """'1G', '1536M', '2g' -> MB (as the job file reads memory_per_rank)."""
    unit = {"k": 1.0 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0 * 1024}
    t = text.strip().lower().rstrip("b")
    return float(t[:-1]) * unit[t[-1]] if t[-1] in unit else float(t) / 1048576.0


def methods_mode(a, env):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    refdir = os.path.join(root, "tests", "ref")
    inp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "bench_memory_x%d.f32" % os.getpid())
    print("| setting | batch | salcheck planned (MB) | salcheck peak (MB) | raised by "
          "| PyTorch peak (MB) | raised by | salcheck / PyTorch | peak / budget |")
    print("|---|---|---|---|---|---|---|---|---|")
    for setting in a.settings.split(","):
        cmd = [a.bin, "--methods", a.methods, "--arch", "inceptionv3", "--size", str(a.size),
               "--quick", str(a.quick), "--save-input", inp]
        budget = None
        if setting.startswith("budget:"):
            budget = size_mb(setting.split(":", 1)[1])
            cmd += ["--budget", "%.0f" % budget]
        elif setting.startswith("b"):
            cmd += ["--batch", setting[1:]]
        c = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if c.returncode != 0:
            sys.stderr.write(c.stdout + c.stderr)
            continue
        lines = c.stdout.splitlines()
        last = [ln for ln in lines if ln.startswith("batch=")][-1]
        batch = int(field(last, "batch"))

        def raiser(out):
            prev, best, who = 0.0, 0.0, "?"
            for ln in out:
                if ln.startswith("method="):
                    pk = float(field(ln, "peak_mb"))
                    if pk - prev > best:
                        best, who = pk - prev, field(ln, "method")
                    prev = pk
            return who

        t = subprocess.run(["/usr/bin/python3", "-c", TORCH_METHODS_CHILD, refdir, str(a.size),
                            str(batch), a.methods, str(a.quick), inp],
                           env=env, capture_output=True, text=True)
        if t.returncode != 0:
            sys.stderr.write(t.stderr)
        tl = t.stdout.splitlines()
        speak = float(field(last, "peak_mb"))
        tpeak = field(tl[-1], "peak_mb") if tl else "?"
        ratio = "%.2f" % (speak / float(tpeak)) if tpeak != "?" else "?"
        print("| %s | %d | %s | %.0f | %s | %s | %s | %s | %s |" % (
            setting, batch, field(last, "planned_mb"), speak, raiser(lines), tpeak, raiser(tl),
            ratio, "%.1f %%" % (100.0 * speak / budget) if budget else "-"))
        if a.verbose:
            sys.stderr.write(c.stdout + t.stdout)
        sys.stdout.flush()
    if os.path.exists(inp):
        os.remove(inp)


def field(line, key):
    for tok in line.split():
        if tok.startswith(key + "="):
            return tok.split("=", 1)[1]
    return "?"


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--bin", default=os.path.join(root, "build", "bench", "bench_memory"))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--archs", default="inceptionv3:320,inceptionv3:299,resnet50:224,densenet121:224")
    ap.add_argument("--methods")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--settings", default="run,b8,b16,budget:1G,budget:2G")
    ap.add_argument("--quick", type=int, default=1)
    ap.add_argument("--verbose", type=int, default=0)
    a = ap.parse_args()
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    if a.methods:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        methods_mode(a, env)
        return
    print("| model | input | batch | salcheck setup (s) | salcheck planned (MB) | salcheck peak (MB) "
          "| PyTorch peak (MB) |")
    print("|---|---|---|---|---|---|---|")
    for spec in a.archs.split(","):
        arch, size = spec.split(":")
        c = subprocess.run([a.bin, "--arch", arch, "--size", size, "--batch", str(a.batch)],
                           env=env, capture_output=True, text=True)
        t = subprocess.run(["/usr/bin/python3", "-c", TORCH_CHILD, arch, size, str(a.batch)],
                           env=env, capture_output=True, text=True)
        if c.returncode != 0 or t.returncode != 0:
            sys.stderr.write(c.stderr + t.stderr)
        print("| %s | %s | %d | %s | %s | %s | %s |" % (
            arch, size, a.batch, field(c.stdout, "setup_s"), field(c.stdout, "planned_mb"),
            field(c.stdout, "peak_mb"), field(t.stdout, "peak_mb")))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
