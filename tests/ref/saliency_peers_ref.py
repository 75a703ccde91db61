#!/usr/bin/python3
"""Reference maps of the peers' saliency methods on a salcheck model file, in
float64 PyTorch, written from the published definitions (pytorch-grad-cam's
CAM classes, the RISE authors' generate_masks/forward, Erion et al.'s
Expected Gradients) so that the C methods can be checked on the same weights
and input. The graph interpreter is nn_torch_ref.py's and the gradient with
the engine's ReLU/max-pool decisions is saliency_torch_ref.py's (imported).

  scorecam  A [K,h,w] at NODE; U_k = UpsamplingBilinear2d(A_k) (align_corners
            =True); M_k = (U_k - min) / (max - min + 1e-8); weights = softmax
            over k of logit[target](x * M_k); cam = sum_k w_k A_k
  layercam  sum_c relu(G) * A        (G = d logit[target] / dA)
  hirescam  sum_c G * A
  xgradcam  w_c = sum_ij G A / (sum_ij A + 1e-7); cam = sum_c w_c A_c
  eigencam  numpy SVD of A as [hw, C], columns centred, projection on VT[0],
            negated when |min| > |max| (get_2d_projection_with_sign_correction)
  every CAM then: ReLU, / max, F.interpolate(bilinear, align_corners=False)
  rise      masks from the given grids and shifts by skimage.transform.resize
            (order=1, mode='reflect', anti_aliasing=False), cropped; map =
            sum_i softmax(logits(x * M_i))[target] M_i / N / p
  eg        mean_j (x - b_j) * grad(b_j + alpha_j (x - b_j)), b_j and alpha_j
            as given (the C draws), all path points as one batch

usage: saliency_peers_ref.py --model M.h5 --input X.f32 --target T --layer NODE
           --rise-grids G.u8 --rise-shifts S.i32 --rise-cells s --rise-p p
           --eg-pool P.f32 --eg-pick I.i32 --eg-alpha A.f32
           [--decisions-x D --decisions-eg D] --out OUT.f32
OUT.f32 (float32): logits [classes], scorecam, layercam, hirescam, xgradcam,
eigencam, rise [H,W] each, eg [C,H,W], then the first RISE mask [H,W].
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from skimage.transform import resize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_torch_ref  # noqa: E402  (the shared graph interpreter)
import saliency_torch_ref  # noqa: E402  (the gradient with the engine's decisions)


def finish(cam, size):
    """pytorch-grad-cam's last steps as salcheck orders them: ReLU, / max, resize."""
    cam = torch.clamp(cam, min=0)
    cam = cam / cam.max()
    return F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def score_cam(f, x, act, target, size):
    up = torch.nn.UpsamplingBilinear2d(size=size)(act[None])[0]  # [K, H, W]
    flat = up.reshape(up.shape[0], -1)
    lo, hi = flat.min(dim=1)[0], flat.max(dim=1)[0]
    up = (up - lo[:, None, None]) / (hi - lo + 1e-8)[:, None, None]
    masked = x[0][None] * up[:, None]  # [K, C, H, W]
    scores = []
    with torch.no_grad():
        for i in range(0, masked.shape[0], 32):
            logits, _ = nn_torch_ref.run(f, masked[i:i + 32], False)
            scores.append(logits[:, target])
    w = torch.softmax(torch.cat(scores), dim=0)
    return (w[:, None, None] * act).sum(dim=0)


def eigen_projection(act):
    a = act.numpy()
    flat = a.reshape(a.shape[0], -1).transpose()
    flat = flat - flat.mean(axis=0)
    # pytorch-grad-cam asks for full_matrices=True; VT[0] is the same without,
    # and numpy's full SVD fails to converge on some rank-deficient inputs
    # (a centred 2 x 2 x 512 activation of ResNet-18 at 64 px).
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    proj = (flat @ vt[0, :]).reshape(a.shape[1:])
    if abs(proj.min()) > abs(proj.max()):
        proj = -proj
    return torch.tensor(proj)


def rise_masks(grids, shifts, s, h, w):
    cell = np.ceil(np.array([h, w]) / s).astype(int)
    up = (s + 1) * cell
    masks = np.empty((grids.shape[0], h, w))
    for i in range(grids.shape[0]):
        dy, dx = shifts[i]
        big = resize(grids[i].astype("float32"), up, order=1, mode="reflect",
                     anti_aliasing=False)
        masks[i] = big[dy:dy + h, dx:dx + w]
    return torch.tensor(masks)


def main():
    ap = argparse.ArgumentParser()
    for name in ("--model", "--input", "--layer", "--rise-grids", "--rise-shifts", "--eg-pool",
                 "--eg-pick", "--eg-alpha", "--out"):
        ap.add_argument(name, required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--rise-cells", type=int, required=True)
    ap.add_argument("--rise-p", type=float, required=True)
    ap.add_argument("--decisions-x")
    ap.add_argument("--decisions-eg")
    a = ap.parse_args()
    torch.set_num_threads(1)  # small tensors; the test machine's cores are shared

    with h5py.File(a.model, "r") as f:
        c, h, w = (int(f.attrs[k]) for k in ("input_c", "input_h", "input_w"))
        x = torch.tensor(np.fromfile(a.input, dtype=np.float32).reshape(1, c, h, w),
                         dtype=torch.float64)
        t = a.target
        res = []
        logits, _, kept = saliency_torch_ref.logit_and_grad(f, x, t, keep=a.layer,
                                                            decisions=a.decisions_x)
        act, grad = kept["node"].detach()[0], kept["node"].grad.detach()[0]
        res.append(logits[0])
        res.append(finish(score_cam(f, x, act, t, (h, w)), (h, w)))
        res.append(finish((torch.clamp(grad, min=0) * act).sum(dim=0), (h, w)))
        res.append(finish((grad * act).sum(dim=0), (h, w)))
        wx = (grad * act).sum(dim=(1, 2)) / (act.sum(dim=(1, 2)) + 1e-7)
        res.append(finish((wx[:, None, None] * act).sum(dim=0), (h, w)))
        res.append(finish(eigen_projection(act), (h, w)))

        s = a.rise_cells
        grids = np.fromfile(a.rise_grids, dtype=np.uint8).reshape(-1, s, s)
        shifts = np.fromfile(a.rise_shifts, dtype=np.int32).reshape(-1, 2)
        masks = rise_masks(grids, shifts, s, h, w)
        with torch.no_grad():
            lo, _ = nn_torch_ref.run(f, x * masks[:, None], False)
        prob = torch.softmax(lo, dim=1)[:, t] if lo.shape[1] > 1 else torch.sigmoid(lo[:, 0])
        res.append((prob[:, None, None] * masks).sum(dim=0) / masks.shape[0] / a.rise_p)

        pool = torch.tensor(np.fromfile(a.eg_pool, dtype=np.float32).reshape(-1, c, h, w),
                            dtype=torch.float64)
        pick = np.fromfile(a.eg_pick, dtype=np.int32)
        alpha = torch.tensor(np.fromfile(a.eg_alpha, dtype=np.float32).astype(np.float64))
        b = pool[torch.tensor(pick, dtype=torch.long)]
        path = b + alpha[:, None, None, None] * (x - b)
        _, gpath, _ = saliency_torch_ref.logit_and_grad(f, path, t, decisions=a.decisions_eg)
        res.append(((x - b) * gpath).mean(dim=0))
        res.append(masks[0])

    np.concatenate([r.numpy().ravel() for r in res]).astype(np.float32).tofile(a.out)


if __name__ == "__main__":
    main()
