#!/usr/bin/python3
"""Reference training steps of a salcheck model file with PyTorch (float64).

Reads the model file (h5py), builds its /graph with torch.nn.functional over
leaf parameter tensors, and runs K steps of: forward in training mode (batch
norm on batch statistics, running statistics updated with the node's
momentum), mean softmax cross entropy (2+ logits) or binary cross entropy
with logits (1 logit), backward, then one step of torch.optim.SGD or
torch.optim.Adam. This is what common/train must reproduce.

usage: train_step_ref.py MODEL.h5 INPUTS.f32 LABELS.i32 K N OPTIMIZER OUT.f64
  OPTIMIZER  "sgd:LR:MOMENTUM:WEIGHT_DECAY" or "adam:LR:BETA1:BETA2:EPS:WEIGHT_DECAY"
  INPUTS     K*N samples of the model's input shape, float32
  LABELS     K*N int32 labels
OUT.f64 holds (float64): the K step losses, then every parameter tensor after
the K steps, nodes in graph order, kinds in the order weight, bias, gamma,
beta, running_mean, running_var (those the node has).
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

KINDS = ("weight", "bias", "gamma", "beta", "running_mean", "running_var")
TRAINABLE = ("weight", "bias", "gamma", "beta")


def parse(line):
    out = {}
    for tok in line.split(" "):
        k, _, v = tok.partition("=")
        out[k] = v
    return out


def ints(s):
    return [int(v) for v in s.split(",")]


def load(f):
    lines = [l.decode() if isinstance(l, bytes) else l for l in f["graph"][()]]
    nodes = [parse(l) for l in lines]
    params = {}
    w = f["weights"]
    for nd in nodes[1:]:
        key = nd["name"].replace("/", "|")
        if key not in w:
            continue
        for kind in KINDS:
            if kind in w[key]:
                t = torch.tensor(np.asarray(w[key][kind]), dtype=torch.float64)
                t.requires_grad_(kind in TRAINABLE)
                params[(nd["name"], kind)] = t
    return nodes, params


def forward(nodes, params, x):
    outs = [x]

    def p(name, kind):
        return params.get((name, kind))

    for nd in nodes[1:]:
        ins = [outs[i] for i in ints(nd["in"])]
        a = ins[0]
        op, name = nd["op"], nd["name"]
        if op == "conv":
            sh, sw = ints(nd["s"])
            pt, pb, pl, pr = ints(nd["pad"])
            y = F.conv2d(F.pad(a, (pl, pr, pt, pb)), p(name, "weight"), p(name, "bias"),
                         stride=(sh, sw))
        elif op == "bn":
            y = F.batch_norm(a, p(name, "running_mean"), p(name, "running_var"),
                             p(name, "gamma"), p(name, "beta"), True, float(nd["mom"]),
                             float(nd["eps"]))
        elif op == "relu":
            y = F.relu(a)
        elif op == "maxpool":
            kh, kw = ints(nd["k"])
            sh, sw = ints(nd["s"])
            pt, pb, pl, pr = ints(nd["pad"])
            y = F.max_pool2d(F.pad(a, (pl, pr, pt, pb), value=-float("inf")), (kh, kw),
                             (sh, sw), ceil_mode=bool(int(nd["ceil"])))
        elif op == "gap":
            y = a.mean(dim=(2, 3), keepdim=True)
        elif op == "dense":
            y = F.linear(a.reshape(a.shape[0], -1), p(name, "weight"), p(name, "bias"))
            y = y.reshape(y.shape[0], -1, 1, 1)
        elif op == "add":
            y = ins[0] + ins[1]
        elif op == "flatten":
            y = a.reshape(a.shape[0], -1, 1, 1)
        else:
            raise SystemExit("train_step_ref.py: unsupported op " + op)
        outs.append(y)
    return outs[-1].reshape(x.shape[0], -1)


def main():
    path, inp, lab, k, n, spec, out = sys.argv[1:8]
    k, n = int(k), int(n)
    with h5py.File(path, "r") as f:
        c, h, w = (int(f.attrs[a]) for a in ("input_c", "input_h", "input_w"))
        nodes, params = load(f)
    x_all = np.fromfile(inp, dtype=np.float32).reshape(k, n, c, h, w)
    y_all = np.fromfile(lab, dtype=np.int32).reshape(k, n)
    trainable = [t for (name, kind), t in params.items() if kind in TRAINABLE]
    parts = spec.split(":")
    if parts[0] == "sgd":
        lr, mom, wd = (float(v) for v in parts[1:4])
        opt = torch.optim.SGD(trainable, lr=lr, momentum=mom, weight_decay=wd)
    elif parts[0] == "adam":
        lr, b1, b2, eps, wd = (float(v) for v in parts[1:6])
        opt = torch.optim.Adam(trainable, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    else:
        raise SystemExit("train_step_ref.py: unknown optimizer " + spec)
    losses = []
    for step in range(k):
        x = torch.tensor(x_all[step], dtype=torch.float64)
        y = torch.tensor(y_all[step], dtype=torch.int64)
        opt.zero_grad()
        logits = forward(nodes, params, x)
        if logits.shape[1] == 1:
            loss = F.binary_cross_entropy_with_logits(logits[:, 0], y.to(torch.float64))
        else:
            loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    res = [np.array(losses, dtype=np.float64)]
    for nd in nodes[1:]:
        for kind in KINDS:
            t = params.get((nd["name"], kind))
            if t is not None:
                res.append(t.detach().numpy().ravel())
    np.concatenate(res).astype(np.float64).tofile(out)


if __name__ == "__main__":
    main()
