#!/usr/bin/python3
"""ONNX files for the importer tests, and the PyTorch results they must reproduce.

usage:
  onnx_torch_ref.py export DIR SEED ARCH:OPSET[:CLASSES] [...]
      torchvision ARCH (resnet18, resnet50, densenet121, vgg11_bn, alexnet,
      inception_v3 at 299 without its auxiliary head, ...) with random weights
      from torch.manual_seed(SEED) and batch-norm statistics calibrated on
      random images (as a trained network has them), exported in eval mode by
      torch.onnx.export at OPSET to DIR/onnx_ARCH.onnx; the weights also go to
      DIR/onnx_ARCH.pt for the reference pass.
  onnx_torch_ref.py ref ARCH DIR/onnx_ARCH.pt INPUT.f32 N TARGETS MASKS.u8 ARGMAX.i32 OUT.f32
      the outputs of zoo_torch_ref.py (float64 with the C engine's ReLU and
      max-pool decisions, then plain float32) for the torchvision model.
  onnx_torch_ref.py keras OUT.onnx INPUT.f32 TARGET REF.f32
      a small graph written the way tf2onnx writes Keras models (NHWC input
      and Transpose, Rescaling as Mul+Add, SAME_UPPER stride-2 convolution,
      BatchNormalization, VALID max pool, SAME average pool without the
      padding in the count, ZeroPadding2D as Pad, Concat layers mixed0 and
      mixed1, ReduceMean, MatMul+Add, Softmax, Identity, Dropout) and its
      float64 result on INPUT (NCHW): logits, input gradient of logit[TARGET],
      softmax output.
  onnx_torch_ref.py bad OUT.onnx
      a graph with an operator salcheck does not support (LeakyRelu).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def export(directory, seed, specs):
    import torch
    import torchvision
    torch.set_num_threads(1)
    for spec in specs:
        arch, opset, *rest = spec.split(":")
        kwargs = {"num_classes": int(rest[0])} if rest else {}
        size = 224
        if arch in ("inception_v3", "googlenet"):
            # the torchvision layout at its own resolution, without the training-only head
            size = 299 if arch == "inception_v3" else 224
            kwargs.update(aux_logits=False, init_weights=True)
        torch.manual_seed(int(seed))
        model = getattr(torchvision.models, arch)(weights=None, **kwargs)
        # Batch-norm statistics of real activations (cumulative over two batches),
        # then gamma/beta away from 1/0: BN folding in the export is then not trivial.
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.momentum = None
        model.train()
        with torch.no_grad():
            for _ in range(2):
                model(torch.rand(2, 3, size, size) * 2 - 1)
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)
        model.eval()
        path = os.path.join(directory, "onnx_%s.onnx" % arch)
        torch.onnx.export(model, torch.zeros(1, 3, size, size), path, opset_version=int(opset),
                          input_names=["image"], output_names=["logits"])
        torch.save(model.state_dict(), os.path.join(directory, "onnx_%s.pt" % arch))
        print("exported %s opset %s" % (arch, opset))


def ref(arch, state_path, inp, n, targets, mask_path, argmax_path, out):
    import torch
    import zoo_torch_ref as z
    z.no_init()
    state = torch.load(state_path)
    classes = state["fc.weight" if arch.startswith("resnet") else "classifier.weight"].shape[0]
    model = z.torchvision_model(arch, classes)
    model.load_state_dict(state)
    print("params %d" % sum(p.numel() for p in model.parameters()))
    n = int(n)
    x0 = np.fromfile(inp, dtype=np.float32).reshape(n, 3, 224, 224)
    masks = np.fromfile(mask_path, dtype=np.uint8)
    argmax = np.fromfile(argmax_path, dtype=np.int32)
    res = z.reference(arch, model, x0, [int(t) for t in targets.split(",")], masks, argmax)
    print("relu_units %d" % masks.size)
    print("flips_float32 %d" % z.DECISIONS.flips)
    print("pool_windows %d" % argmax.size)
    print("pool_flips_float32 %d" % z.DECISIONS.pool_flips)
    np.concatenate(res).astype(np.float32).tofile(out)


# ---- the Keras-style graph ----

H = W = 32  # odd 'same' padding at stride 2: 0 before, 1 after


def keras_weights():
    rng = np.random.default_rng(5)

    def conv(oc, c, kh, kw):
        return (rng.standard_normal((oc, c, kh, kw)) * np.sqrt(2.0 / (c * kh * kw))).astype(np.float32)

    def vec(c, lo, hi):
        return rng.uniform(lo, hi, c).astype(np.float32)

    w = {}
    w["scale"], w["offset"] = np.float32(1 / 127.5), np.float32(-1.0)
    w["c0"] = conv(8, 3, 3, 3)
    w["bn_mean"], w["bn_var"] = vec(8, -0.3, 0.3), vec(8, 0.5, 1.5)
    w["bn_gamma"], w["bn_beta"] = vec(8, 0.5, 1.5), vec(8, -0.2, 0.2)
    w["c1"], w["c1b"] = conv(6, 8, 1, 1), vec(6, -0.1, 0.1)
    w["c2"], w["c2b"] = conv(6, 8, 3, 3), vec(6, -0.1, 0.1)
    w["c3"], w["c3b"] = conv(4, 8, 1, 1), vec(4, -0.1, 0.1)
    w["c4"], w["c4b"] = conv(5, 16, 3, 3), vec(5, -0.1, 0.1)
    w["c5"], w["c5b"] = conv(7, 16, 1, 1), vec(7, -0.1, 0.1)
    w["dense"], w["dense_b"] = (rng.standard_normal((12, 3)) * 0.3).astype(np.float32), vec(3, -0.1, 0.1)
    return w


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def keras_reference(w, x_nchw, target):
    """float64 PyTorch of the same computation, written with explicit TF padding."""
    import torch
    import torch.nn.functional as F
    t = {k: torch.tensor(np.asarray(v), dtype=torch.float64) for k, v in w.items()}
    x = torch.tensor(x_nchw, dtype=torch.float64, requires_grad=True)
    y = x * t["scale"] + t["offset"]
    pt, pb = same_pads(H, 3, 2)
    pl, pr = same_pads(W, 3, 2)
    y = F.conv2d(F.pad(y, (pl, pr, pt, pb)), t["c0"], stride=2)
    y = F.batch_norm(y, t["bn_mean"], t["bn_var"], t["bn_gamma"], t["bn_beta"], False, 0.0, 1e-3)
    y = F.relu(y)
    y = F.max_pool2d(y, 3, 2)                                   # VALID
    b1 = F.relu(F.conv2d(y, t["c1"], t["c1b"]))
    b2 = F.relu(F.conv2d(F.pad(y, (1, 1, 1, 1)), t["c2"], t["c2b"]))
    bp = F.avg_pool2d(y, 3, 1, padding=1, count_include_pad=False)
    b3 = F.relu(F.conv2d(bp, t["c3"], t["c3b"]))
    m0 = torch.cat([b1, b2, b3], 1)                             # mixed0: 16 channels
    b4 = F.relu(F.conv2d(F.pad(m0, (1, 1, 1, 1)), t["c4"], t["c4b"]))
    b5 = F.relu(F.conv2d(m0, t["c5"], t["c5b"]))
    m1 = torch.cat([b4, b5], 1)                                 # mixed1: 12 channels
    g = m1.mean(dim=(2, 3))
    logits = g @ t["dense"] + t["dense_b"]
    prob = F.softmax(logits, dim=1)
    logits[0, target].backward()
    return logits.detach().numpy(), x.grad.numpy(), prob.detach().numpy()


def keras_graph(w):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    P = "StatefulPartitionedCall/model/"
    inits = []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def tensor_name(n):
        return n + ":0"

    nodes = []

    def node(op, name, inputs, **attrs):
        out = tensor_name(P + name)
        nodes.append(helper.make_node(op, inputs, [out], name=P + name, **attrs))
        return out

    x = "input_1"
    t = node("Transpose", "input_transpose/Transpose", [x], perm=[0, 3, 1, 2])
    t = node("Mul", "rescaling/mul", [t, init("scale", np.array(w["scale"], dtype=np.float32))])
    t = node("Add", "rescaling/add", [t, init("offset", np.array(w["offset"], dtype=np.float32))])
    t = node("Conv", "conv2d/Conv2D", [t, init("c0", w["c0"])], strides=[2, 2],
             kernel_shape=[3, 3], auto_pad="SAME_UPPER")
    t = node("BatchNormalization", "batch_normalization/FusedBatchNormV3",
             [t, init("g", w["bn_gamma"]), init("b", w["bn_beta"]), init("m", w["bn_mean"]),
              init("v", w["bn_var"])], epsilon=1e-3)
    t = node("Relu", "activation/Relu", [t])
    t = node("Identity", "activation/Identity", [t])
    pool = node("MaxPool", "max_pooling2d/MaxPool", [t], kernel_shape=[3, 3], strides=[2, 2],
                auto_pad="VALID")
    b1 = node("Conv", "conv2d_1/Conv2D", [pool, init("c1", w["c1"]), init("c1b", w["c1b"])],
              kernel_shape=[1, 1])
    b1 = node("Relu", "conv2d_1/Relu", [b1])
    b2 = node("Conv", "conv2d_2/Conv2D", [pool, init("c2", w["c2"])], kernel_shape=[3, 3],
              auto_pad="SAME_UPPER")
    b2 = node("Add", "conv2d_2/BiasAdd", [b2, init("c2b", w["c2b"].reshape(1, 6, 1, 1))])
    b2 = node("Relu", "conv2d_2/Relu", [b2])
    bp = node("AveragePool", "average_pooling2d/AvgPool", [pool], kernel_shape=[3, 3],
              strides=[1, 1], auto_pad="SAME_UPPER", count_include_pad=0)
    b3 = node("Conv", "conv2d_3/Conv2D", [bp, init("c3", w["c3"]), init("c3b", w["c3b"])],
              kernel_shape=[1, 1])
    b3 = node("Relu", "conv2d_3/Relu", [b3])
    m0 = node("Concat", "mixed0/concat", [b1, b2, b3], axis=1)
    pads = init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))
    p4 = node("Pad", "zero_padding2d/Pad", [m0, pads], mode="constant")
    b4 = node("Conv", "conv2d_4/Conv2D", [p4, init("c4", w["c4"]), init("c4b", w["c4b"])],
              kernel_shape=[3, 3], auto_pad="VALID")
    b4 = node("Relu", "conv2d_4/Relu", [b4])
    b5 = node("Conv", "conv2d_5/Conv2D", [m0, init("c5", w["c5"]), init("c5b", w["c5b"])],
              kernel_shape=[1, 1])
    b5 = node("Relu", "conv2d_5/Relu", [b5])
    m1 = node("Concat", "mixed1/concat", [b4, b5], axis=1)
    g = node("ReduceMean", "global_average_pooling2d/Mean", [m1], axes=[2, 3], keepdims=0)
    g = node("Dropout", "dropout/Identity", [g])
    d = node("MatMul", "dense/MatMul", [g, init("dense", w["dense"])])
    d = node("Add", "dense/BiasAdd", [d, init("dense_b", w["dense_b"])])
    out = node("Softmax", "dense/Softmax", [d], axis=-1)
    graph = helper.make_graph(
        nodes, "model", [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["unk__0", H, W, 3])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["unk__1", 3])], inits)
    model = helper.make_model(graph, producer_name="tf2onnx", producer_version="1.9.3",
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def keras(out, inp, target, ref_out):
    import onnx
    w = keras_weights()
    onnx.save(keras_graph(w), out)
    x = np.fromfile(inp, dtype=np.float32).reshape(1, 3, H, W)
    logits, grad, prob = keras_reference(w, x, int(target))
    np.concatenate([logits.ravel(), grad.ravel(), prob.ravel()]).astype(np.float32).tofile(ref_out)


def bad(out):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), dtype=np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="model/conv/Conv2D",
                              kernel_shape=[3, 3]),
             helper.make_node("LeakyRelu", ["c"], ["a"], name="model/leaky/LeakyRelu", alpha=0.1),
             helper.make_node("GlobalAveragePool", ["a"], ["y"], name="model/pool/Mean")]
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 16, 16])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 4, 1, 1])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), out)


def main():
    mode = sys.argv[1]
    if mode == "export":
        export(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif mode == "ref":
        ref(*sys.argv[2:10])
    elif mode == "keras":
        keras(*sys.argv[2:6])
    elif mode == "bad":
        bad(sys.argv[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
