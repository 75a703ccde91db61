#!/usr/bin/python3
"""bench_memory.py - peak resident memory per rank of one batch of input
gradients, salcheck next to PyTorch.

For each architecture, in separate processes (so each peak is its own):
salcheck's BUILD/bench/bench_memory (zoo architecture, random weights, one
saliency workspace, one forward + backward to the input at the batch) and
PyTorch (torchvision's architecture in eval mode, 1 thread, the same batch,
input gradient of one logit). Both report VmHWM of /proc/self/status (the
interpreter and its libraries included for PyTorch, MPI/HDF5/OpenBLAS for
salcheck). Prints a Markdown table; bench/README.md holds a run.

usage: bench/bench_memory.py [--bin build/bench/bench_memory] [--batch 16]
           [--archs inceptionv3:320,inceptionv3:299,resnet50:224,densenet121:224]
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
    a = ap.parse_args()
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
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
