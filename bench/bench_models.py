#!/usr/bin/python3
"""bench_models.py - salcheck next to PyTorch on the same machine and weights.

For ResNet-18, ResNet-50, DenseNet-121 (224x224) and InceptionV3 (299x299,
Keras layout), 2 classes: forward and forward + input gradient (one
vanilla-gradient map) at batch 1 and 8, and one 32-step Integrated-Gradients
map (4 batches of 8), each at 1 process x 1 thread and at 2 processes x 1
thread (salcheck: 2 MPI ranks; PyTorch: 2 processes), by the wall clock and
by the CPU clock. The C side is BUILD/bench/bench_models (bench_models.c);
it writes the model files that the PyTorch side loads (tests/ref/zoo_torch_ref.py
maps them onto torchvision's modules and the Keras-layout InceptionV3), so both
run the same weights. Measurements alternate (salcheck, PyTorch, salcheck 2
ranks, PyTorch 2 processes) per architecture, so that a load change on a
shared machine hits both alike.

usage: bench/bench_models.py [--archs resnet18,resnet50,densenet121,inceptionv3]
           [--seconds 3] [--bin build/bench/bench_models] [--coretype auto]
           [--out build/bench-models]
       bench/bench_models.py --sweep [--rounds N] [--archs ...]   (input gradients only:
           salcheck unfolded / BN-folded, PyTorch batch 1/8/16 x NCHW / channels_last)
--coretype also runs salcheck with OPENBLAS_CORETYPE set to that value, or
with it removed from the environment for "auto" (OpenBLAS then picks its
kernels itself: an environment that pins OPENBLAS_CORETYPE=Haswell on an
AVX-512 machine halves the GEMM speed).
Prints markdown tables; bench/README-models.md holds a run.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench_import import torch_env  # noqa: E402

# the salcheck binary that names the OpenBLAS kernel set for PyTorch (bench_import.torch_env)
SALCHECK = os.path.join(ROOT, os.environ.get("BUILD", "build"), "salcheck")

ARCHS = [("resnet18", 224), ("resnet50", 224), ("densenet121", 224), ("inceptionv3", 299)]
PLAN = [("forward", 1), ("forward", 8), ("gradient", 1), ("gradient", 8), ("ig32", 8)]
IG_STEPS, IG_BATCH = 32, 8


def parse_result(line):
    fields = dict(tok.split("=", 1) for tok in line.split()[1:])
    for k in list(fields):
        try:
            fields[k] = float(fields[k]) if "." in fields[k] else int(fields[k])
        except ValueError:
            pass
    return fields


# ---- the PyTorch worker ----

def frozen(model):
    """model in eval mode with its parameters out of autograd (input gradients only)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def zoo_net(arch, path):
    """The PyTorch module with the weights of a salcheck zoo model file (bench_models
    --save): torchvision's architecture, or tests/ref/zoo_torch_ref.py's Keras-layout
    InceptionV3; frozen. bench_maps.py loads its zoo models through this too."""
    import h5py
    import zoo_torch_ref as z
    z.no_init()
    with h5py.File(path, "r") as f:
        classes = int(f.attrs["num_classes"])
        if arch == "inceptionv3":
            model = z.KerasInceptionV3(classes)
            model.load_salcheck(f["weights"])
        else:
            import torchvision
            model = getattr(torchvision.models, arch)(weights=None, num_classes=classes)
            z.load_salcheck_weights(model, arch, f["weights"])
    return frozen(model)


def torch_model(arch, path, channels_last=False):
    model = zoo_net(arch, path)
    if channels_last:
        import torch
        model = model.to(memory_format=torch.channels_last)
    if arch == "inceptionv3":
        return lambda x: model.fc(model.features(x).mean(dim=(2, 3)))
    return model


def torch_sweep(args):
    """PyTorch's input gradient at batch 1/8/16, NCHW and channels_last: its best."""
    import torch
    torch.set_num_threads(1)
    size = dict(ARCHS)[args.arch]
    gen = torch.Generator().manual_seed(args.rank + 1)
    x16 = torch.rand(16, 3, size, size, generator=gen) * 2 - 1
    for layout in ("nchw", "channels_last"):
        cl = layout == "channels_last"
        model = torch_model(args.arch, args.model, cl)
        for batch in (1, 8, 16):
            x = x16[:batch]
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)

            def run():
                xg = x.clone().requires_grad_(True)
                model(xg)[:, 1].sum().backward()

            run()  # warm-up
            maps, iters = 0, 0
            w0, c0 = time.perf_counter(), time.process_time()
            while iters < 2 or time.perf_counter() - w0 < args.seconds:
                run()
                maps += batch
                iters += 1
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            print("RESULT impl=pytorch arch=%s task=gradient_%s batch=%d maps=%d wall=%.4f "
                  "cpu=%.4f" % (args.arch, layout, batch, maps, wall, cpu), flush=True)


def sweep(args):
    """--sweep: per architecture, salcheck's input gradient unfolded and with BN
    folded (bench_models --sweep) and PyTorch's at its best, one after the other."""
    os.makedirs(args.out, exist_ok=True)
    archs = [a for a in args.archs.split(",") if a]
    env = torch_env(SALCHECK)
    print("load average at start: %s" % loadavg(), flush=True)
    for rnd in range(args.rounds):
        for arch in archs:
            res, info = run_salcheck(args.bin, arch, args.seconds, 1, args.out, "auto",
                                     ["--sweep"])
            for (task, batch), r in sorted(res.items()):
                print("ROUND %d salcheck %s %s batch %d: %.1f ms/gradient (CPU clock), %.0f%% of "
                      "peak %.0f" % (rnd, arch, task, batch, 1000 / r["cpu"],
                                     100 * r["cpu"] * r["gflop"] / info["peak_gflops_per_core"],
                                     info["peak_gflops_per_core"]), flush=True)
            model = os.path.join(args.out, "bench_%s.h5" % arch)
            cmd = [sys.executable, __file__, "--worker", "--sweep", "--arch", arch, "--model",
                   model, "--seconds", str(args.seconds)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit("PyTorch worker failed:\n" + out.stderr)
            for line in out.stdout.splitlines():
                if line.startswith("RESULT"):
                    r = parse_result(line)
                    print("ROUND %d pytorch %s %s batch %d: %.1f ms/gradient (CPU clock)"
                          % (rnd, arch, r["task"], r["batch"], 1000 * r["cpu"] / r["maps"]),
                          flush=True)
    print("load average at end: %s" % loadavg(), flush=True)


def torch_worker(args):
    import torch
    torch.set_num_threads(1)
    model = torch_model(args.arch, args.model)
    size = dict(ARCHS)[args.arch]
    gen = torch.Generator().manual_seed(args.rank + 1)
    x8 = torch.rand(8, 3, size, size, generator=gen) * 2 - 1

    def run(task, batch):
        x = x8[:batch]
        if task == "forward":
            with torch.no_grad():
                model(x)
            return batch
        if task == "gradient":
            xg = x.clone().requires_grad_(True)
            out = model(xg)
            out[:, 1].sum().backward()
            return batch
        base = -torch.ones_like(x8[:1])
        for s0 in range(0, IG_STEPS, IG_BATCH):
            alphas = torch.arange(s0, s0 + IG_BATCH, dtype=torch.float32) / (IG_STEPS - 1)
            xs = (base + alphas.view(-1, 1, 1, 1) * (x8[:1] - base)).requires_grad_(True)
            out = model(xs)
            out[:, 1].sum().backward()
        return 1

    if args.ready:
        open(args.ready, "w").close()
        while not os.path.exists(args.go):
            time.sleep(0.01)
    for task, batch in PLAN:
        run(task, batch)  # warm-up
        maps, iters = 0, 0
        w0, c0 = time.perf_counter(), time.process_time()
        while iters < 2 or time.perf_counter() - w0 < args.seconds:
            maps += run(task, batch)
            iters += 1
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        print("RESULT impl=pytorch arch=%s task=%s batch=%d maps=%d wall=%.4f cpu=%.4f"
              % (args.arch, task, batch, maps, wall, cpu), flush=True)


def run_torch(arch, model_path, seconds, procs, workdir):
    """PyTorch with `procs` single-threaded processes started together."""
    env = torch_env(SALCHECK)
    go = os.path.join(workdir, "go")
    if os.path.exists(go):
        os.remove(go)
    children = []
    for rank in range(procs):
        ready = os.path.join(workdir, "ready%d" % rank)
        if os.path.exists(ready):
            os.remove(ready)
        cmd = [sys.executable, __file__, "--worker", "--arch", arch, "--model", model_path,
               "--seconds", str(seconds), "--rank", str(rank), "--ready", ready, "--go", go]
        children.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env), ready))
    while not all(os.path.exists(r) or p.poll() is not None for p, r in children):
        time.sleep(0.05)
    open(go, "w").close()
    per = {}
    for p, _ in children:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit("PyTorch worker failed for %s" % arch)
        for line in out.splitlines():
            if line.startswith("RESULT"):
                r = parse_result(line)
                key = (r["task"], r["batch"])
                acc = per.setdefault(key, {"maps": 0, "wall": 0.0, "rate_cpu": 0.0})
                acc["maps"] += r["maps"]
                acc["wall"] = max(acc["wall"], r["wall"])
                acc["rate_cpu"] += r["maps"] / r["cpu"]
    return {k: {"wall": v["maps"] / v["wall"], "cpu": v["rate_cpu"]} for k, v in per.items()}


def run_salcheck(binary, arch, seconds, ranks, save, coretype, extra=()):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    if coretype == "auto":
        env.pop("OPENBLAS_CORETYPE", None)
    elif coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    cmd = [binary, "--arch", arch, "--seconds", str(seconds)] + list(extra)
    if save:
        cmd += ["--save", save]
    if ranks > 1:
        cmd = ["mpirun", "--oversubscribe", "-np", str(ranks), "--bind-to", "none"] + cmd
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("bench_models failed:\n" + out.stdout + out.stderr)
    res, info = {}, {}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            r = parse_result(line)
            res[(r["task"], r["batch"])] = {"wall": r["maps_per_s_wall"],
                                            "cpu": r["maps_per_s_cpu"],
                                            "gflop": r["gflop_per_map"]}
        elif line.startswith("INFO"):
            info = parse_result(line)
    return res, info


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", default=",".join(a for a, _ in ARCHS))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--bin", default=os.path.join(ROOT, os.environ.get("BUILD", "build"),
                                                  "bench", "bench_models"))
    ap.add_argument("--coretype", default="")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-models"))
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--arch")
    ap.add_argument("--model")
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--ready")
    ap.add_argument("--go")
    ap.add_argument("--sweep", action="store_true",
                    help="input gradients only: salcheck unfolded and BN-folded at batch 8/16, "
                         "PyTorch at batch 1/8/16 with and without channels_last")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    if args.worker:
        return torch_sweep(args) if args.sweep else torch_worker(args)
    if args.sweep:
        return sweep(args)

    import torch
    os.makedirs(args.out, exist_ok=True)
    archs = [a for a in args.archs.split(",") if a]
    print("load average at start: %s" % loadavg(), flush=True)
    rows, info = [], {}
    for arch in archs:
        model_path = os.path.join(args.out, "bench_%s.h5" % arch)
        r = {}
        r["c1"], info = run_salcheck(args.bin, arch, args.seconds, 1, args.out, "")
        r["t1"] = run_torch(arch, model_path, args.seconds, 1, args.out)
        r["c2"], _ = run_salcheck(args.bin, arch, args.seconds, 2, None, "")
        r["t2"] = run_torch(arch, model_path, args.seconds, 2, args.out)
        if args.coretype:
            r["v1"], vinfo = run_salcheck(args.bin, arch, args.seconds, 1, None, args.coretype)
            r["v2"], _ = run_salcheck(args.bin, arch, args.seconds, 2, None, args.coretype)
            info["variant_core"] = vinfo.get("openblas_core", args.coretype)
        rows.append((arch, r))
        print("done %s (load %s)" % (arch, loadavg()), file=sys.stderr, flush=True)
    peak = info.get("peak_gflops_per_core", 0.0)
    print("\nCPU: %s; clock %.2f GHz (measured), FP32 peak %.0f GFLOPS per core "
          "(2 FMA x %d lanes x 2); OpenBLAS core %s; PyTorch %s (oneDNN), 1 thread per process; "
          "load average at end: %s\n"
          % (cpu_name(), info.get("ghz", 0), peak, info.get("lanes", 0),
             info.get("openblas_core", "?"), torch.__version__, loadavg()))
    for clock in ("cpu", "wall"):
        print_table(rows, clock, peak, info.get("variant_core", "") if args.coretype else "",
                    info.get("openblas_core", "?"))


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def print_table(rows, clock, peak, coretype, core):
    what = "CPU-clock" if clock == "cpu" else "wall-clock"
    print("### maps/s by the %s (ratio = salcheck / PyTorch; %% = of FP32 peak)\n" % what)
    head = ("| model | task | batch | salcheck (%s) 1x1 | PyTorch 1x1 | ratio | salcheck 2x1 | "
            "PyTorch 2x1 | ratio | %% peak salcheck / PyTorch (1x1) |" % core)
    sep = "|---|---|---|---|---|---|---|---|---|---|"
    if coretype:
        head += " salcheck (%s) 1x1 | ratio | 2x1 | ratio | %% peak |" % coretype
        sep += "---|---|---|---|---|"
    print(head)
    print(sep)
    for arch, r in rows:
        for task, batch in PLAN:
            key = (task, batch)
            c1, t1, c2, t2 = r["c1"][key], r["t1"][key], r["c2"][key], r["t2"][key]
            gflop = c1["gflop"]
            pc = 100 * c1[clock] * gflop / peak if peak else 0
            pt = 100 * t1[clock] * gflop / peak if peak else 0
            label = "IG 32 steps" if task == "ig32" else task
            line = ("| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% / %.0f%% |"
                    % (arch, label, batch, c1[clock], t1[clock], c1[clock] / t1[clock],
                       c2[clock], t2[clock], c2[clock] / t2[clock], pc, pt))
            if coretype:
                v1, v2 = r["v1"][key], r["v2"][key]
                line += (" %.2f | %.2f | %.2f | %.2f | %.0f%% |"
                         % (v1[clock], v1[clock] / t1[clock], v2[clock], v2[clock] / t2[clock],
                            100 * v1[clock] * gflop / peak if peak else 0))
            print(line)
    print()


if __name__ == "__main__":
    main()
