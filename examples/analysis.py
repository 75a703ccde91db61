#!/usr/bin/env python3
"""A salcheck results file in pandas, and one figure of the report redrawn in matplotlib.

    python3 examples/analysis.py RESULTS.h5 [--out ssim_states.png]

Needs Debian's python3-h5py, python3-pandas and python3-matplotlib (run it with
/usr/bin/python3 when another python3 comes first on PATH). To read the file of
a job that is still running, set HDF5_USE_FILE_LOCKING=FALSE.

As a module:

    import analysis
    df = analysis.tidy("results.h5")
    df[(df.metric == "auprc") & (df.variant == "A")].groupby("method").value.mean()

tidy() gives one row per value, only from finished cells and pairs (a partial
file gives what is done):
    method, variant, image, metric, value    /metrics/<metric>[m, v, i] (experiment "map")
    ... experiment, variant_b, image_b        /pairs/<similarity>[m, p]: variant/image are
                                              pair index columns 0-1, variant_b/image_b 2-3,
                                              metric is the similarity (ssim, spearman, ...)
"""
import argparse
import sys

import h5py
import numpy as np
import pandas as pd

# the report's series colours: matplotlib's tab10, then black and dark variants
PALETTE = ["C%d" % k for k in range(10)] + ["black", "#173c5a", "#804007", "#165016", "#6b1414",
                                             "#4a345f"]
EXPERIMENTS = ["cascading", "independent", "untrained", "label", "repeatability",
               "reproducibility", "baseline"]


def _names(f, path):
    return [x.decode() if isinstance(x, bytes) else str(x) for x in f[path][()]]


def _experiment_names(f):
    if "pairs/experiment_names" in f:
        return _names(f, "pairs/experiment_names")
    return EXPERIMENTS


def plan(f):
    """The plan: methods, variants (with kind, base, state), image ids."""
    variants = pd.DataFrame({
        "variant": _names(f, "variants/name"),
        "kind": _names(f, "variants/kind"),
        "base": _names(f, "variants/base"),
        "state": f["variants/state"][()],
    })
    return _names(f, "methods/name"), variants, _names(f, "images/id")


def tidy_metrics(f):
    """Per-map metrics of the done cells: method, variant, image, metric, value."""
    methods, variants, images = plan(f)
    done = f["status/done"][()].astype(bool) & f["status/planned"][()].astype(bool)  # [V, N]
    v_idx, i_idx = np.nonzero(done)
    frames = []
    for metric in sorted(f["metrics"].keys()):
        values = f["metrics"][metric][()]  # [M, V, N]
        for m, method in enumerate(methods):
            frames.append(pd.DataFrame({
                "method": method,
                "variant": variants.variant.to_numpy()[v_idx],
                "image": np.asarray(images, dtype=object)[i_idx],
                "metric": metric,
                "value": values[m, v_idx, i_idx],
            }))
    cols = ["method", "variant", "image", "metric", "value"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def tidy_pairs(f):
    """Similarities of the done pairs: method, variant, image, metric, value, experiment,
    variant_b, image_b."""
    methods, variants, images = plan(f)
    index = f["pairs/index"][()]
    exp = f["pairs/experiment"][()]
    done = f["status/pair_done"][()].astype(bool)
    names = _experiment_names(f)
    vnames = variants.variant.to_numpy()
    ids = np.asarray(images, dtype=object)
    sims = [k for k in sorted(f["pairs"].keys()) if k not in ("index", "experiment",
                                                              "experiment_names")]
    q = np.nonzero(done)[0]
    frames = []
    for sim in sims:
        values = f["pairs"][sim][()]  # [M, P]
        for m, method in enumerate(methods):
            frames.append(pd.DataFrame({
                "method": method,
                "variant": vnames[index[q, 0]],
                "image": ids[index[q, 1]],
                "metric": sim,
                "value": values[m, q],
                "experiment": [names[e] for e in exp[q]],
                "variant_b": vnames[index[q, 2]],
                "image_b": ids[index[q, 3]],
            }))
    cols = ["method", "variant", "image", "metric", "value", "experiment", "variant_b", "image_b"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def tidy(path):
    """One tidy DataFrame of /metrics and /pairs (see the module docstring)."""
    with h5py.File(path, "r") as f:
        per_map = tidy_metrics(f)
        per_map["experiment"] = "map"
        per_map["variant_b"] = None
        per_map["image_b"] = None
        pairs = tidy_pairs(f)
    return pd.concat([per_map, pairs], ignore_index=True)


def ssim_states_figure(path, out, similarity="ssim"):
    """Mean SSIM(state, original) per cascading state, one line per method, each method's
    randomization baseline dashed: the report's ssim_states_<model>.png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = tidy(path)
    with h5py.File(path, "r") as f:
        _, variants, _ = plan(f)
    sims = df[(df.metric == similarity)]
    cascading = sims[sims.experiment == "cascading"]
    if cascading.empty:
        raise SystemExit("%s: no cascading pair is done: nothing to draw" % path)
    model = cascading.variant_b.iloc[0]
    states = variants[(variants.kind == "cascading") & (variants.base == model)]
    states = states.sort_values("state")
    labels = ["original"] + [v.split("/")[-1].split(":")[-1] for v in states.variant]
    means = (cascading[cascading.variant_b == model]
             .groupby(["method", "variant"]).value.mean().unstack())
    base = sims[(sims.experiment == "baseline") & (sims.variant == model)]
    baseline = base.groupby("method").value.mean()

    fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
    methods = list(dict.fromkeys(df.method))
    for k, method in enumerate(methods):
        if method not in means.index:
            continue
        ys = [1.0] + [means.loc[method].get(v, np.nan) for v in states.variant]
        color = PALETTE[k % len(PALETTE)]
        ax.plot(range(len(ys)), ys, marker="o", color=color, label=method)
        if method in baseline.index:
            ax.axhline(baseline[method], color=color, linestyle="--", linewidth=1)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.set_xlabel("blocks re-initialized cumulatively, top first")
    ax.set_ylabel("mean %s to the original map" % similarity.upper())
    ax.set_title("Cascading randomization of %s (dashed: each method's baseline)" % model)
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.05)
    ax.grid(axis="y", color="0.9")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="a salcheck results file (finished or partial)")
    parser.add_argument("--out", default="ssim_states.png", help="the figure to write")
    args = parser.parse_args(argv)

    df = tidy(args.results)
    print("%d values: %d per-map metric values, %d pair similarities"
          % (len(df), (df.experiment == "map").sum(), (df.experiment != "map").sum()))
    auprc = df[df.metric == "auprc"]
    if not auprc.empty:
        print("\nmean AUPRC per method and model variant:")
        table = auprc.pivot_table(index="method", columns="variant", values="value",
                                  aggfunc="mean", sort=False)
        print(table.round(3).to_string())
    try:
        ssim_states_figure(args.results, args.out)
        print("\nwrote %s" % args.out)
    except SystemExit as e:
        print(e, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
