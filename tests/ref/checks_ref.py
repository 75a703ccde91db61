#!/usr/bin/python3
"""Reference for the model checks (workers/checks) with PyTorch, SciPy and scikit-image.

Written from the published definitions (docs/methods.md, "Checks beyond the
paper"): RISE's deletion/insertion (CausalMetric: step = ceil(HW/K) pixels,
ceil(HW/step)+1 probabilities, trapezoid area; blur = conv2d with
gaussian_filter(impulse 11x11, sigma 5), zero padding 5), ROAD's noisy linear
imputation (one sparse system per channel solved by scipy.sparse.linalg.spsolve,
neighbour weights 1/6 direct, 1/12 diagonal), the random-logit test (SSIM of
the vanilla-gradient maps of two classes) and max/avg sensitivity (vanilla
gradient, P1 post-processing). The model runs in float64 through
nn_torch_ref.run on the salcheck model file.

usage: checks_ref.py MODEL.h5 X.f32 MAP.f32 TARGET OTHER STEPS DEL_FILL INS_START PROB
                     PERCENTS(comma) ROAD_NOISE.f32 SENS_NOISE.f32 N_SENS OUT.f64
OUT.f64: deletion, insertion, road_morf, road_lerf, random_logit, max_sens,
avg_sens, then the deletion curve, then ROAD's imputed images [2, P, C, H, W].
"""
import os
import sys

import h5py
import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.sparse.linalg
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_torch_ref  # noqa: E402
import postproc_ref  # noqa: E402

NEIGHBOURS = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
              ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]


def probabilities(f, xs, target, prob):
    with torch.no_grad():
        logits = nn_torch_ref.run(f, torch.tensor(np.asarray(xs), dtype=torch.float64), False)[0]
    if prob == "sigmoid":
        return torch.sigmoid(logits[:, target]).numpy()
    return F.softmax(logits, dim=1)[:, target].numpy()


def substrate(kind, x, black):
    if kind == "zero":
        return np.zeros_like(x)
    if kind == "black":
        return np.full_like(x, black)
    if kind == "mean":
        return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).copy()
    impulse = np.zeros((11, 11))
    impulse[5, 5] = 1
    k = scipy.ndimage.gaussian_filter(impulse, 5)
    c = x.shape[0]
    kern = np.zeros((c, c, 11, 11))
    for i in range(c):
        kern[i, i] = k
    return F.conv2d(torch.tensor(x[None]), torch.tensor(kern), padding=5)[0].numpy()


def curve(f, start, finish, order, steps, target, prob):
    hw = order.size
    step = (hw + steps - 1) // steps
    n = (hw + step - 1) // step
    xs = []
    cur = start.copy()
    c = start.shape[0]
    flat_c, flat_f = cur.reshape(c, -1), finish.reshape(c, -1)
    for i in range(n + 1):
        xs.append(cur.copy())
        idx = order[step * i: step * (i + 1)]
        flat_c[:, idx] = flat_f[:, idx]
    p = probabilities(f, xs, target, prob)
    return (p.sum() - p[0] / 2 - p[-1] / 2) / n, p


def impute(x, removed, noise):
    c, h, w = x.shape
    flat = removed.ravel()
    unknown = np.flatnonzero(flat)
    var = -np.ones(h * w, dtype=int)
    var[unknown] = np.arange(unknown.size)
    a = scipy.sparse.lil_matrix((unknown.size, unknown.size))
    b = np.zeros((unknown.size, c))
    total = np.zeros(unknown.size)
    for k, pix in enumerate(unknown):
        py, px = divmod(pix, w)
        for (dy, dx), wt in NEIGHBOURS:
            ny, nx = py + dy, px + dx
            if not (0 <= ny < h and 0 <= nx < w):
                continue
            total[k] += wt
            j = ny * w + nx
            if flat[j]:
                a[k, var[j]] -= wt
            else:
                b[k] += wt * x[:, ny, nx]
    a.setdiag(total)
    sol = scipy.sparse.linalg.spsolve(scipy.sparse.csc_matrix(a), b).reshape(unknown.size, c)
    out = x.reshape(c, -1).copy()
    out[:, unknown] = sol.T + noise.reshape(c, -1)[:, unknown]
    return out.reshape(x.shape)


def grad_map(f, x, target):
    xt = torch.tensor(x[None], dtype=torch.float64, requires_grad=True)
    logits = nn_torch_ref.run(f, xt, False)[0]
    logits[0, target].backward()
    return postproc_ref.p1(xt.grad[0].numpy())


def ssim(a, b):
    from skimage.metrics import structural_similarity
    s = structural_similarity(a, b, win_size=7, data_range=2.0, full=True)[1]
    return s[3:-3, 3:-3].mean()


def main():
    (model, xpath, mpath, target, other, steps, del_fill, ins_start, prob, percents, road_noise,
     sens_noise, n_sens, out) = sys.argv[1:15]
    target, other, steps, n_sens = int(target), int(other), int(steps), int(n_sens)
    percents = [int(p) for p in percents.split(",")]
    with h5py.File(model, "r") as f:
        c, h, w = (int(f.attrs[k]) for k in ("input_c", "input_h", "input_w"))
        x = np.fromfile(xpath, dtype=np.float32).astype(np.float64).reshape(c, h, w)
        m = np.fromfile(mpath, dtype=np.float32).reshape(h * w)
        order = np.argsort(-m, kind="stable")
        black = -1.0
        dele, dcurve = curve(f, x, substrate(del_fill, x, black), order, steps, target, prob)
        ins, _ = curve(f, substrate(ins_start, x, black), x, order, steps, target, prob)
        noise = np.fromfile(road_noise, dtype=np.float32).astype(np.float64)
        noise = noise.reshape(2, len(percents), c, h, w)
        road, images = [], []
        for lerf in (0, 1):
            xs = []
            for k, p in enumerate(percents):
                count = int(np.floor(p * h * w / 100.0))
                sel = order[::-1][:count] if lerf else order[:count]
                removed = np.zeros(h * w, dtype=bool)
                removed[sel] = True
                xs.append(impute(x, removed.reshape(h, w), noise[lerf, k]))
            images += xs
            road.append(probabilities(f, [xi.astype(np.float32) for xi in xs], target, prob).mean())
        e0 = grad_map(f, x, target)
        rl = ssim(e0, grad_map(f, x, other))
        d = np.fromfile(sens_noise, dtype=np.float32).astype(np.float64).reshape(n_sens, c, h, w)
        ratios = []
        for s in range(n_sens):
            xp = (x.astype(np.float32) + d[s].astype(np.float32)).astype(np.float64)
            ratios.append(np.linalg.norm(grad_map(f, xp, target) - e0) / np.linalg.norm(e0))
        res = [dele, ins, road[0], road[1], rl, max(ratios), np.mean(ratios)]
        res = np.concatenate([np.asarray(res), dcurve, np.asarray(images).ravel()])
    res.astype(np.float64).tofile(out)


if __name__ == "__main__":
    main()
