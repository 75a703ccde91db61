#!/usr/bin/env python3
"""cell_split.py - split perf samples of `salcheck run` into the parts of a cell.

Reads `perf script -F comm,ip,sym,dso` (call graphs) on stdin and prints a
Markdown table: samples and share per part. A sample belongs to the first part
(in the order below) that one of its frames matches, so that a memcpy inside
XRAI's regions counts for XRAI and an OpenBLAS call for the engine. Used by
bench/cell_profile.sh (bench/README.md, "The rest of a cell").
"""
import re
import sys
from collections import Counter

PARTS = [
    ("XRAI regions (resize, Felzenszwalb, dilation, greedy)",
     re.compile(r"^(xrai_map|xrai_compute_masks|xrai_rank|felz_)")),
    ("post-processing (P1, P2, Guided Grad-CAM)", re.compile(r"^(sal_postprocess|postproc_|p1_double|p2_double)")),
    ("per-map metrics (localization family)", re.compile(r"^(loc_|run_checks_map)")),
    ("pair phase: similarities", re.compile(r"^(sim_|hog_|cx_emprt|ssim_)")),
    ("setup, once per rank: model files, workspaces, the results file's creation",
     re.compile(r"^(modelfile_|sal_ws_create|zoo_build|train_|nn_memplan|results_create|results_open|MPI_Init|ompi_mpi_init|_dl_)")),
    ("HDF5: results-file writes and map reads", re.compile(r"^(results_|H5)")),
    ("image loading", re.compile(r"^(image_loader_|imread_|png_)")),
    ("gradient engine (forward/backward, methods' compute)", re.compile(r"^(sal_|nn_|conv|gconv|pool|cblas_|sgemm|op_|bn_)")),
]
SETUP = 4
ENGINE = len(PARTS) - 1


def classify(frames):
    """frames: [(sym, dso)] leaf first."""
    hit = None
    for sym, dso in frames:
        for k, (_, rx) in enumerate(PARTS):
            if rx.match(sym) and (hit is None or k < hit):
                hit = k
    if hit is None:
        leaf_dso = frames[0][1] if frames else ""
        if "openblas" in leaf_dso:
            return ENGINE
        if any(sym in ("cmd_run", "main", "dl_main") for sym, _ in frames):
            return SETUP  # the run's own set-up code (copies of the base weights, ...)
    return hit


def main():
    counts = Counter()
    leaves = Counter()
    total = 0
    frames, comm = [], None

    def flush():
        nonlocal total, frames, comm
        if comm is not None and comm.startswith("salcheck"):
            k = classify(frames)
            counts[k] += 1
            total += 1
            if k is None and frames:
                leaves[frames[0][0]] += 1
        frames, comm = [], None

    for line in sys.stdin:
        if not line.strip():
            flush()
            continue
        if not line[0].isspace():
            flush()
            comm = line.split()[0]
            continue
        m = re.match(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(2))
            frames.append((sym, m.group(3)))
    flush()
    if not total:
        print("no samples of salcheck")
        return 1
    print(f"{total} samples of salcheck\n")
    print("| part | samples | share |")
    print("|---|---|---|")
    for k, (name, _) in list(enumerate(PARTS)) + [(None, ("other", None))]:
        print(f"| {name} | {counts[k]} | {100.0 * counts[k] / total:.2f} % |")
    rest = sum(counts[k] for k in range(ENGINE)) - counts[SETUP]
    print(f"\nnot the engine, per cell and pair (all but the engine, setup and other): "
          f"{100.0 * rest / total:.2f} %")
    if leaves:
        print("\nother, by leaf function: " + ", ".join(f"{s} {c}" for s, c in leaves.most_common(12)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
