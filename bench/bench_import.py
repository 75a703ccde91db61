#!/usr/bin/python3
"""bench_import.py - imported torchvision families: salcheck next to PyTorch at its best.

For each family (torchvision 0.14 architecture, random weights, 2 outputs, exported
to ONNX and read by `salcheck import`), the cost of one input gradient:

  salcheck  the slope of `salcheck explain --method ig --batch B` (B = 1, 8)
            between --steps-lo and --steps-hi IG steps (CPU time of the process, so
            the workspace setup and the writing of the map cancel out; the short
            run takes at least B steps, so that both touch every buffer of a full
            batch: with fewer, the slope also carries the first touch of the
            rest, about 70 ms a gradient for ViT-B/16 at batch 16 from 8 steps);
  PyTorch   one input gradient of the same weights (model(x)[:, 1].sum().backward()
            in eval mode) at batch 1, 8 and 16, NCHW and channels_last: its best
            of the six (CPU time inside the process, after a warm-up).

Both run one thread (OPENBLAS_NUM_THREADS / torch.set_num_threads(1)); salcheck
runs with OPENBLAS_CORETYPE removed from the environment so that OpenBLAS picks
its own kernels (salcheck restarts itself with a better set where OpenBLAS does
not know the CPU, nn/blas_core.h). Debian's PyTorch does its BLAS work in the
same OpenBLAS, so it runs with the set that `salcheck --blas-core` names, if any
(torch_env): PyTorch at its best on that CPU too. Rounds alternate salcheck and
PyTorch per family, so a change of the machine's load hits both alike; the
tables give the median over rounds.

A family may name its input size: inception_v3@320 (default 299 for InceptionV3,
224 for the others).

usage: bench/bench_import.py [--families efficientnet_b0,convnext_tiny,vit_b_16]
           [--rounds 3] [--seconds 4] [--steps-lo 8] [--steps-hi 40] [--batches 1,8]
           [--bin build/salcheck] [--out build/bench-import] [--paired LAYOUT:BATCH]

--paired channels_last:8,nchw:8 times PyTorch in those configurations only
(every layout x batch combination of them), right after salcheck in each round,
and reports each round's ratio to the round's best of them and their median: on a
virtual machine whose speed drifts by tens of percent between minutes, the
ratio of two runs a few seconds apart is steadier than the ratio of medians.
With bench_peak built (build/bench/bench_peak, `make bench`), every timed run
(salcheck's IG runs, each PyTorch configuration) is also bracketed by a 25 ms
measurement of the core's FP32 peak, and the paired table adds each round's
ratio of the times multiplied by the peak of their moment ("peak-weighted"):
the work in units of the core's speed, which cancels a drift of the host's
speed between the runs of a round (on this kind of VM, 90-160 GFLOPS within
one minute).
"""
import argparse
import os
import resource
import struct
import subprocess
import sys
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"inception_v3": 299}
OPSET = 13


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def write_png(path, size):
    """A smooth 8-bit gray test image (a radiograph-like bright ellipse on black)."""
    rows = []
    c = (size - 1) / 2.0
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            r = ((x - c) / (0.42 * size)) ** 2 + ((y - c) / (0.47 * size)) ** 2
            v = 0 if r > 1 else int(40 + 180 * (1 - r) * (0.6 + 0.4 * ((x * 7 + y * 3) % 17) / 16))
            row.append(v)
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))


def family_size(spec):
    """("inception_v3", 320) from "inception_v3@320"; the default size without @."""
    name, _, size = spec.partition("@")
    return name, int(size) if size else SIZES.get(name, 224)


def torch_net(family):
    import torch
    import torchvision
    torch.manual_seed(7)
    kw = {"weights": None, "num_classes": 2}
    if family == "inception_v3":
        kw.update(aux_logits=False, init_weights=True)
    net = getattr(torchvision.models, family)(**kw)
    return net.eval()


def prepare(family, out, binary):
    """Export (once) the family to ONNX with its weights saved for PyTorch, import it."""
    import torch
    family, size = family_size(family)
    tag = family if size == SIZES.get(family, 224) else "%s_%d" % (family, size)
    onnx = os.path.join(out, tag + ".onnx")
    pt = os.path.join(out, family + ".pt")
    h5 = os.path.join(out, tag + ".h5")
    png = os.path.join(out, "image%d.png" % size)
    if not os.path.exists(png):
        write_png(png, size)
    if not os.path.exists(pt) or not os.path.exists(onnx):
        net = torch_net(family)
        if os.path.exists(pt):  # the same weights at every input size
            net.load_state_dict(torch.load(pt))
        else:
            torch.save(net.state_dict(), pt)
        torch.onnx.export(net, torch.zeros(1, 3, size, size), onnx, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"])
    if not os.path.exists(h5):
        subprocess.run([binary, "import", onnx, "-o", h5], check=True,
                       stdout=subprocess.DEVNULL)
    return size, pt, h5, png


def torch_env(binary):
    """The environment of the PyTorch workers: one thread, and OpenBLAS's kernel
    set pinned to the one salcheck would restart with (Debian's PyTorch runs its
    BLAS calls in OpenBLAS, which falls back to SSE3 kernels on a CPU it does not
    know), unless the caller pinned one."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if not env.get("OPENBLAS_CORETYPE"):
        env.pop("OPENBLAS_CORETYPE", None)
        core = subprocess.run([binary, "--blas-core"], capture_output=True, text=True,
                              env=env).stdout.strip()
        if core:
            env["OPENBLAS_CORETYPE"] = core
    return env


def core_peak(peak_bin):
    """The core's FP32 peak now (GFLOPS, bench/bench_peak.c), or None without it."""
    if not peak_bin:
        return None
    p = subprocess.run([peak_bin], capture_output=True, text=True)
    return float(p.stdout) if p.returncode == 0 else None


def weighted(t, p0, p1):
    """A time multiplied by the mean peak before and after it (None without them)."""
    return t * 0.5 * (p0 + p1) if p0 and p1 else None


def salcheck_cpu(binary, h5, png, steps, batch, out, peak_bin=None):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env.pop("OPENBLAS_CORETYPE", None)
    cmd = [binary, "explain", "--model", h5, "--image", png, "--out",
           os.path.join(out, "map"), "--method", "ig", "--ig-steps", str(steps), "--batch", str(batch),
           "--raw"]
    p0 = core_peak(peak_bin)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - w0
    if p.returncode != 0:
        raise SystemExit("salcheck explain failed:\n" + p.stderr)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return cpu, wall, weighted(cpu, p0, core_peak(peak_bin))


def torch_worker(args):
    import torch
    torch.set_num_threads(1)
    family, size = family_size(args.family)
    net = torch_net(family)
    net.load_state_dict(torch.load(args.pt))
    for p in net.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(1)
    x16 = torch.rand(16, 3, size, size, generator=gen) * 2 - 1
    for layout in args.layouts.split(","):
        cl = layout == "channels_last"
        model = net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        for batch in (int(b) for b in args.torch_batches.split(",")):
            x = x16[:batch].contiguous(
                memory_format=torch.channels_last if cl else torch.contiguous_format)

            def run():
                xg = x.clone().requires_grad_(True)
                model(xg)[:, 1].sum().backward()

            run()
            maps, iters = 0, 0
            p0 = core_peak(args.peak_bin)
            w0, c0 = time.perf_counter(), time.process_time()
            while iters < 2 or time.perf_counter() - w0 < args.seconds:
                run()
                maps += batch
                iters += 1
            cpu = time.process_time() - c0
            w = weighted(1000 * cpu / maps, p0, core_peak(args.peak_bin))
            print("RESULT %s %d %.6f %s" % (layout, batch, 1000 * cpu / maps,
                                            "%.6f" % w if w else "-"), flush=True)


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="efficientnet_b0,convnext_tiny,vit_b_16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--steps-lo", type=int, default=8)
    ap.add_argument("--steps-hi", type=int, default=40)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "salcheck"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-import"))
    ap.add_argument("--paired", metavar="LAYOUT:BATCH[,...]",
                    help="time PyTorch in these configurations only (its best ones, from a full "
                         "run), right after salcheck in every round, and report the median of the "
                         "rounds' ratios to the round's best of them: on a machine whose speed "
                         "drifts between minutes")
    ap.add_argument("--peak-bin", default=os.path.join(ROOT, "build", "bench", "bench_peak"),
                    help="bench_peak binary (the core's peak beside every timed run); "
                         "'' for plain times only")
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--layouts", default="nchw,channels_last")
    ap.add_argument("--torch-batches", default="1,8,16")
    ap.add_argument("--family")
    ap.add_argument("--pt")
    args = ap.parse_args()
    if args.peak_bin and not os.access(args.peak_bin, os.X_OK):
        args.peak_bin = ""
    if args.worker:
        torch_worker(args)
        return
    os.makedirs(args.out, exist_ok=True)
    families = [f for f in args.families.split(",") if f]
    prepared = {f: prepare(f, args.out, args.bin) for f in families}
    env = torch_env(args.bin)
    batches = [int(b) for b in args.batches.split(",")]
    if max(batches) >= args.steps_hi:
        sys.exit("--steps-hi %d: must exceed every batch (%s): the short run takes at least "
                 "one full batch" % (args.steps_hi, args.batches))
    sal, tor = {f: {b: [] for b in batches} for f in families}, {f: {} for f in families}
    ratios, wratios = {}, {}
    print("load average at start: %s" % loadavg(), flush=True)
    print("core peak beside every timed run: %s" % (args.peak_bin or "no (plain times only)"),
          flush=True)
    print("PyTorch's OpenBLAS kernels: %s" % env.get("OPENBLAS_CORETYPE", "its own choice"), flush=True)
    for rnd in range(args.rounds):
        for f in families:
            size, pt, h5, png = prepared[f]
            wsal = {}
            for b in batches:
                steps_lo = max(args.steps_lo, b)
                lo, _, wlo = salcheck_cpu(args.bin, h5, png, steps_lo, b, args.out,
                                          args.peak_bin)
                hi, _, whi = salcheck_cpu(args.bin, h5, png, args.steps_hi, b, args.out,
                                          args.peak_bin)
                ms = 1000 * (hi - lo) / (args.steps_hi - steps_lo)
                sal[f][b].append(ms)
                if wlo and whi:
                    wsal[b] = 1000 * (whi - wlo) / (args.steps_hi - steps_lo)
                print("ROUND %d salcheck %s batch %d: %.1f ms/gradient (IG %d: %.2f s, IG %d: "
                      "%.2f s CPU)" % (rnd, f, b, ms, steps_lo, lo, args.steps_hi, hi),
                      flush=True)
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--family", f,
                   "--pt", pt, "--seconds", str(args.seconds), "--peak-bin", args.peak_bin]
            if args.paired:
                cfgs = [c.split(":") for c in args.paired.split(",")]
                cmd += ["--layouts", ",".join(sorted(set(c[0] for c in cfgs))),
                        "--torch-batches", ",".join(sorted(set(c[1] for c in cfgs)))]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit("PyTorch worker failed:\n" + p.stderr)
            wtor = {}
            for line in p.stdout.splitlines():
                if line.startswith("RESULT"):
                    _, layout, batch, ms, wms = line.split()
                    tor[f].setdefault((layout, int(batch)), []).append(float(ms))
                    if wms != "-":
                        wtor[(layout, int(batch))] = float(wms)
                    print("ROUND %d pytorch %s %s batch %s: %.1f ms/gradient"
                          % (rnd, f, layout, batch, float(ms)), flush=True)
            if args.paired:  # the best of the listed configurations in this round
                t = min(tor[f][(c[0], int(c[1]))][-1] for c in cfgs)
                wt = [wtor.get((c[0], int(c[1]))) for c in cfgs]
                wt = min(wt) if all(wt) else None
                for b in batches:
                    ratios.setdefault((f, b), []).append(sal[f][b][-1] / t)
                    if wt and b in wsal:
                        wratios.setdefault((f, b), []).append(wsal[b] / wt)
                    print("ROUND %d ratio %s batch %d: %.3f%s" % (
                        rnd, f, b, ratios[(f, b)][-1],
                        ", peak-weighted %.3f" % wratios[(f, b)][-1] if wt and b in wsal else ""),
                        flush=True)
    print("load average at end: %s" % loadavg(), flush=True)
    print()
    print("| family | input | batch | salcheck ms/gradient | PyTorch ms/gradient, NCHW / "
          "channels_last | PyTorch best of batch 1/8/16 (config) | salcheck / PyTorch best |")
    print("|---|---|---|---|---|---|---|")
    for f in families:
        size = prepared[f][0]
        cfg, best = min(((k, median(v)) for k, v in tor[f].items()), key=lambda kv: kv[1])
        for b in batches:
            s = median(sal[f][b])
            nchw = median(tor[f].get(("nchw", b), [float("nan")]))
            cl = median(tor[f].get(("channels_last", b), [float("nan")]))
            print("| %s | %d | %d | %.1f | %.1f / %.1f | %.1f (batch %d, %s) | %.2f |"
                  % (f, size, b, s, nchw, cl, best, cfg[1], cfg[0].replace("_", " "), s / best))
    if args.paired:
        print()
        print("| family | salcheck batch | rounds' ratios salcheck / PyTorch %s | median |"
              % args.paired)
        print("|---|---|---|---|")
        for f in families:
            for b in batches:
                r = ratios[(f, b)]
                print("| %s | %d | %s | **%.2f** |" % (f, b, " ".join("%.2f" % x for x in r),
                                                       median(r)))
        if wratios:
            print()
            print("| family | salcheck batch | rounds' peak-weighted ratios | median |")
            print("|---|---|---|---|")
            for (f, b), r in wratios.items():
                print("| %s | %d | %s | **%.2f** |" % (f, b, " ".join("%.2f" % x for x in r),
                                                       median(r)))


if __name__ == "__main__":
    main()
