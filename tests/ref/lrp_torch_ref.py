#!/usr/bin/python3
"""Reference Layer-wise Relevance Propagation of a salcheck model file, in
float64 PyTorch, written from the definitions of Zennit's rules and
composites (Bach et al. 2015; Montavon et al. 2019; docs/methods.md section 4),
for the engine's LRP (workers/saliency/sal_lrp.c, lrp_rules.c) to be checked
against.

Canonizer (Zennit's SequentialMergeBatchNorm): a batch norm whose only input is
a convolution that feeds nothing else is merged into it,
W' = W g / sqrt(v + e), b' = (b - m) g / sqrt(v + e) + beta; any other batch
norm passes relevance through (Zennit's BatchNorm -> Pass).

Relevance starts at the explained logit, R = logit[target] (Zennit's
attr_output = one-hot * output), and flows down the graph node by node; a node
read by several others sums what they send back. With s(z) = z + eps sign(z)
(sign(0) = +1, Zennit's Stabilizer) and g = W^T (R / s(z)) the gradient-form
backward of the layer:
  epsilon      R_in = x * W^T (R / s(Wx + b))
  zplus        z = W+ x+ + W- x- + b+; R_in = x+ W+^T (R/s(z)) + x- W-^T (R/s(z))
  alphabeta    (alpha, beta) = (2, 1): positive part z = W+ x+ + W- x- + b+,
               negative part z = W- x+ + W+ x- + b-; R_in = alpha (x+ g_pp +
               x- g_np) - beta (x+ g_pn + x- g_nn)
  gamma        generalized: for outputs Wx + b > 0, z = (W + gW+) x+ +
               (W + gW-) x- (+ b + g b+), for outputs < 0 the same with W+
               and W- swapped; R_in = sum of input x gradient over the four parts
  flat         R_in = 1^T (R / s(1 * 1)): spread evenly over the receptive field
  zbox         z = Wx - W+ l - W- h (the bias cancels); R_in = x g - l g+ - h g-
  pass         ReLU, unmerged batch norm, flatten: R_in = R
  norm         add and average pools (global or not): R_in = x * d(op)^T (R / s(op(x)))
  gradient     max pool (to the argmax), concatenation (split)
Composites (Zennit's names): epsilon_plus_flat (first conv flat, other convs
zplus, dense epsilon), epsilon_gamma_box (first conv zbox with low/high the
input bounds (one per channel, as the engine takes them from the model's
normalization), other convs gamma 0.25, dense epsilon), epsilon_plus (convs
zplus, dense epsilon), epsilon_alpha2_beta1 (convs alphabeta, dense epsilon),
and epsilon (every conv and dense layer epsilon: LRP-0 as eps -> 0, which
equals gradient x input on a ReLU network, checked by --selfcheck).

usage: lrp_torch_ref.py --model M.h5 --input X.f32 --target T
           --composite NAME [--epsilon E] [--stabilizer S] [--gamma G]
           [--low L[,L...] --high H[,H...]] [--bias-free] [--spread NAME] --out R.f32
       lrp_torch_ref.py --model M.h5 --input X.f32 --selfcheck
--bias-free zeroes every bias and every batch norm's mean and beta first.
R.f32: the logits [classes] then the input relevance [C,H,W] (float32), one
relevance per composite when --composite lists several (comma-separated);
with --spread NAME, then the spread of NAME's map between this walk in
float32 and in float64, max |R32 - R64| / max |R64|: how far any float32
implementation of the same definition may land from the float64 map.
--selfcheck prints, per composite, sum(R_in) against the logit on the
bias-free model with epsilon = stabilizer = 1e-12 (conservation), and the
epsilon composite against autograd's gradient x input; exits 1 when either
is off by more than 1e-4 relative.
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nn_torch_ref  # noqa: E402  (graph parsing helpers)

COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_plus", "epsilon_alpha2_beta1",
              "epsilon")


def load_graph(f, bias_free):
    lines = [l.decode() if isinstance(l, bytes) else l for l in f["graph"][()]]
    nodes = [nn_torch_ref.parse(l) for l in lines]
    w = f["weights"]
    params = {}
    for nd in nodes[1:]:
        key = nd["name"].replace("/", "|")
        if key in w:
            params[nd["name"]] = {k: torch.tensor(np.asarray(w[key][k]), dtype=torch.float64)
                                  for k in w[key]}
    if bias_free:
        for nd in nodes[1:]:
            p = params.get(nd["name"], {})
            for k in ("bias", "running_mean", "beta"):
                if k in p:
                    p[k] = torch.zeros_like(p[k])
    return nodes, params


def canonize(nodes, params):
    """Merge each batch norm into the convolution that alone feeds it (and
    feeds nothing else). Returns {bn node index: conv node index}."""
    readers = {}
    for i, nd in enumerate(nodes[1:], 1):
        for j in nn_torch_ref.ints(nd["in"]):
            readers.setdefault(j, []).append(i)
    merged = {}
    for i, nd in enumerate(nodes[1:], 1):
        if nd["op"] != "bn":
            continue
        src = nn_torch_ref.ints(nd["in"])[0]
        if nodes[src]["op"] != "conv" or readers.get(src) != [i]:
            continue
        bn, conv = params[nd["name"]], params[nodes[src]["name"]]
        scale = bn["gamma"] / torch.sqrt(bn["running_var"] + float(nd["eps"]))
        w = conv["weight"] * scale[:, None, None, None]
        b = conv.get("bias", torch.zeros_like(scale))
        conv["weight"], conv["bias"] = w, (b - bn["running_mean"]) * scale + bn["beta"]
        merged[i] = src
    return merged


def stab(z, eps):
    return z + eps * torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))


class Layer:
    """A linear layer (conv or dense) as a function of (input, weight, bias)."""

    def __init__(self, nd, p):
        self.nd, self.weight, self.bias = nd, p["weight"], p.get("bias")
        if nd["op"] == "conv":
            self.pad = nn_torch_ref.ints(nd["pad"])
            self.stride = nn_torch_ref.ints(nd["s"])

    def __call__(self, x, w, b):
        if self.nd["op"] == "conv":
            pt, pb, pl, pr = self.pad
            return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=tuple(self.stride))
        y = F.linear(x.reshape(x.shape[0], -1), w, b)
        return y.reshape(y.shape[0], -1, 1, 1)


def vjp(fn, x, grad_out):
    x = x.detach().requires_grad_(True)
    out = fn(x)
    (g,) = torch.autograd.grad(out, x, grad_out, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def linear_rule(rule, layer, x, R, a):
    W, b = layer.weight, layer.bias
    zero = None if b is None else torch.zeros_like(b)
    pos, neg = (lambda t: t.clamp(min=0)), (lambda t: t.clamp(max=0))
    bp = None if b is None else pos(b)
    bn = None if b is None else neg(b)

    def part(inp, w, bias, scale):
        return vjp(lambda t: layer(t, w, bias), inp, scale)

    if rule == "epsilon":
        z = layer(x, W, b)
        return x * part(x, W, b, R / stab(z, a.epsilon))
    if rule == "zplus":
        z = layer(pos(x), pos(W), bp) + layer(neg(x), neg(W), zero)
        s = R / stab(z, a.stabilizer)
        return pos(x) * part(pos(x), pos(W), bp, s) + neg(x) * part(neg(x), neg(W), zero, s)
    if rule == "alphabeta":
        alpha, beta = 2.0, 1.0
        zp = layer(pos(x), pos(W), bp) + layer(neg(x), neg(W), zero)
        zn = layer(pos(x), neg(W), bn) + layer(neg(x), pos(W), zero)
        sp, sn = R / stab(zp, a.stabilizer), R / stab(zn, a.stabilizer)
        return (alpha * (pos(x) * part(pos(x), pos(W), bp, sp) + neg(x) * part(neg(x), neg(W), zero, sp))
                - beta * (pos(x) * part(pos(x), neg(W), bn, sn) + neg(x) * part(neg(x), pos(W), zero, sn)))
    if rule == "gamma":
        g = a.gamma
        w_up, w_dn = W + g * pos(W), W + g * neg(W)
        b_up = None if b is None else b + g * bp
        b_dn = None if b is None else b + g * bn
        out = layer(x, W, b)
        z_up = layer(pos(x), w_up, b_up) + layer(neg(x), w_dn, zero)
        z_dn = layer(pos(x), w_dn, b_dn) + layer(neg(x), w_up, zero)
        s_up = (out > 0).double() * R / stab(z_up, a.stabilizer)
        s_dn = (out < 0).double() * R / stab(z_dn, a.stabilizer)
        return (pos(x) * part(pos(x), w_up, b_up, s_up) + neg(x) * part(neg(x), w_dn, zero, s_up)
                + pos(x) * part(pos(x), w_dn, b_dn, s_dn) + neg(x) * part(neg(x), w_up, zero, s_dn))
    if rule == "flat":
        ones, w1 = torch.ones_like(x), torch.ones_like(W)
        z = layer(ones, w1, None)
        return part(ones, w1, None, R / stab(z, a.stabilizer))
    if rule == "zbox":
        low, high = bound(a.low, x), bound(a.high, x)
        z = layer(x, W, b) - layer(low, pos(W), bp) - layer(high, neg(W), bn)
        s = R / stab(z, a.stabilizer)
        return x * part(x, W, b, s) - low * part(low, pos(W), bp, s) - high * part(high, neg(W), bn, s)
    raise SystemExit("unknown rule " + rule)


def bound(values, x):
    """The z-box bound as a tensor like x: one value, or one per input channel."""
    v = torch.tensor([float(t) for t in str(values).split(",")], dtype=x.dtype)
    if v.numel() == 1:
        return torch.full_like(x, float(v[0]))
    return v.reshape(1, -1, 1, 1).expand_as(x).clone()


def rules_of(composite):
    """(first conv, other convs, dense) rules of a composite."""
    return {"epsilon_plus_flat": ("flat", "zplus", "epsilon"),
            "epsilon_gamma_box": ("zbox", "gamma", "epsilon"),
            "epsilon_plus": ("zplus", "zplus", "epsilon"),
            "epsilon_alpha2_beta1": ("alphabeta", "alphabeta", "epsilon"),
            "epsilon": ("epsilon", "epsilon", "epsilon")}[composite]


def forward(nodes, params, merged, x):
    outs = [x]
    for i, nd in enumerate(nodes[1:], 1):
        ins = [outs[j] for j in nn_torch_ref.ints(nd["in"])]
        op, a = nd["op"], ins[0]
        if op in ("conv", "dense"):
            L = Layer(nd, params[nd["name"]])
            y = L(a, L.weight, L.bias)
        elif op == "bn":
            if i in merged:
                y = a
            else:
                p = params[nd["name"]]
                y = F.batch_norm(a, p["running_mean"], p["running_var"], p["gamma"], p["beta"],
                                 False, 0.0, float(nd["eps"]))
        elif op == "relu":
            y = F.relu(a)
        elif op == "maxpool":
            y = pool_fn(nd)(a)
        elif op in ("avgpool", "gap"):
            y = pool_fn(nd)(a)
        elif op == "concat":
            y = torch.cat(ins, dim=1)
        elif op == "add":
            y = ins[0] + ins[1]
        elif op == "flatten":
            y = a.reshape(a.shape[0], -1, 1, 1)
        elif op in ("softmax", "sigmoid"):
            y = a  # the explained scalar is the logit before it
        else:
            raise SystemExit("unknown op " + op)
        outs.append(y)
    return outs


def pool_fn(nd):
    op = nd["op"]
    if op == "gap":
        return lambda t: t.mean(dim=(2, 3), keepdim=True)
    kh, kw = nn_torch_ref.ints(nd["k"])
    sh, sw = nn_torch_ref.ints(nd["s"])
    pt, pb, pl, pr = nn_torch_ref.ints(nd["pad"])
    ceil = bool(int(nd["ceil"]))
    if op == "maxpool":
        return lambda t: F.max_pool2d(F.pad(t, (pl, pr, pt, pb), value=-float("inf")), (kh, kw),
                                      (sh, sw), ceil_mode=ceil)
    cip = bool(int(nd["cip"]))
    if pt == pb and pl == pr:
        return lambda t: F.avg_pool2d(t, (kh, kw), (sh, sw), padding=(pt, pl), ceil_mode=ceil,
                                      count_include_pad=cip)
    raise SystemExit("asymmetric average pool padding is not in this reference")


def lrp(nodes, params, merged, x, target, composite, a):
    first_rule, conv_rule, dense_rule = rules_of(composite)
    first_conv = next(i for i, nd in enumerate(nodes) if nd["op"] == "conv")
    outs = forward(nodes, params, merged, x)
    last = len(nodes) - 1
    if nodes[last]["op"] in ("softmax", "sigmoid"):
        last = nn_torch_ref.ints(nodes[last]["in"])[0]
    logits = outs[last].reshape(x.shape[0], -1)
    rel = [None] * len(nodes)
    r0 = torch.zeros_like(outs[last])
    r0.reshape(x.shape[0], -1)[:, target] = logits[:, target]
    rel[last] = r0

    def send(j, r):
        rel[j] = r if rel[j] is None else rel[j] + r

    for i in range(last, 0, -1):
        R = rel[i]
        if R is None:
            continue
        nd = nodes[i]
        ins = nn_torch_ref.ints(nd["in"])
        op, xin = nd["op"], outs[ins[0]]
        if op in ("conv", "dense"):
            rule = dense_rule if op == "dense" else first_rule if i == first_conv else conv_rule
            send(ins[0], linear_rule(rule, Layer(nd, params[nd["name"]]), xin, R, a))
        elif op in ("relu", "bn", "flatten", "softmax", "sigmoid"):
            send(ins[0], R.reshape(xin.shape))
        elif op == "maxpool":
            send(ins[0], vjp(pool_fn(nd), xin, R))
        elif op in ("avgpool", "gap"):
            fn = pool_fn(nd)
            send(ins[0], xin * vjp(fn, xin, R / stab(fn(xin), a.stabilizer)))
        elif op == "add":
            s = R / stab(outs[ins[0]] + outs[ins[1]], a.stabilizer)
            send(ins[0], outs[ins[0]] * s)
            send(ins[1], outs[ins[1]] * s)
        elif op == "concat":
            start = 0
            for j in ins:
                c = outs[j].shape[1]
                send(j, R[:, start:start + c])
                start += c
        else:
            raise SystemExit("no LRP rule for op " + op)
    return logits, rel[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--target", type=int, default=-1)
    ap.add_argument("--composite", default="epsilon_plus_flat",
                    help="one of %s, or several separated by commas" % ", ".join(COMPOSITES))
    ap.add_argument("--epsilon", type=float, default=1e-6)
    ap.add_argument("--stabilizer", type=float, default=1e-6)
    ap.add_argument("--gamma", type=float, default=0.25)
    ap.add_argument("--low", default="-1", help="one value, or one per channel (comma-separated)")
    ap.add_argument("--high", default="1", help="one value, or one per channel (comma-separated)")
    ap.add_argument("--bias-free", action="store_true")
    ap.add_argument("--spread", help="also run this composite in float32 and append "
                    "max |R32 - R64| / max |R64| (the map's own conditioning)")
    ap.add_argument("--selfcheck", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(1)
    with h5py.File(a.model, "r") as f:
        c, h, w = (int(f.attrs[k]) for k in ("input_c", "input_h", "input_w"))
        x = torch.tensor(np.fromfile(a.input, dtype=np.float32).reshape(1, c, h, w),
                         dtype=torch.float64)
        if not a.selfcheck:
            if a.target < 0:
                raise SystemExit("--target is required")
            nodes, params = load_graph(f, a.bias_free)
            merged = canonize(nodes, params)
            parts, maps = [], {}
            for comp in a.composite.split(","):
                if comp not in COMPOSITES:
                    raise SystemExit("unknown composite " + comp)
                logits, R = lrp(nodes, params, merged, x, a.target, comp, a)
                maps[comp] = R
                parts += [logits[0].numpy()] if not parts else []
                parts.append(R[0].numpy().ravel())
            if a.spread:
                # the conditioning of one composite's map: the same walk in float32
                p32 = {k: {kk: vv.float() for kk, vv in v.items()} for k, v in params.items()}
                R64 = maps[a.spread]
                _, R32 = lrp(nodes, p32, merged, x.float(), a.target, a.spread, a)
                spread = float((R32.double() - R64).abs().max() / R64.abs().max())
                parts.append(np.array([spread]))
            np.concatenate(parts).astype(np.float32).tofile(a.out)
            return
        bad = 0
        a.epsilon = a.stabilizer = 1e-12
        nodes, params = load_graph(f, True)
        merged = canonize(nodes, params)
        with torch.no_grad():
            lo = forward(nodes, params, merged, x)
        t = int(torch.argmax(lo[-1].reshape(-1) if nodes[-1]["op"] not in ("softmax", "sigmoid")
                             else lo[nn_torch_ref.ints(nodes[-1]["in"])[0]].reshape(-1)))
        for comp in COMPOSITES:
            logits, R = lrp(nodes, params, merged, x, t, comp, a)
            total, logit = float(R.sum()), float(logits[0, t])
            err = abs(total - logit) / max(abs(logit), 1e-12)
            # alpha-beta conserves only where an output has both positive and
            # negative contributions; the other composites always (bias-free)
            limit = 1e-4 if comp != "epsilon_alpha2_beta1" else float("inf")
            print("      conservation %-21s sum R %.8f logit %.8f relative %.1e%s"
                  % (comp, total, logit, err, "" if err < limit else "  FAIL"))
            bad += err >= limit
        # LRP-0 (epsilon -> 0) on the model with its biases = gradient x input
        nodes, params = load_graph(f, False)
        merged = canonize(nodes, params)
        _, R = lrp(nodes, params, merged, x, t, "epsilon", a)
        xg = x.clone().requires_grad_(True)
        logits, _ = nn_torch_ref.run(f, xg, False)
        logits[0, t].backward()
        gxi = (x * xg.grad)[0]
        err = float((R[0] - gxi).abs().max() / gxi.abs().max())
        print("      epsilon composite (eps 1e-12) vs gradient x input: relative %.1e%s"
              % (err, "" if err < 1e-4 else "  FAIL"))
        bad += err >= 1e-4
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
