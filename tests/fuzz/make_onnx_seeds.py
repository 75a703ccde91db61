#!/usr/bin/python3
"""Small ONNX models for the ONNX import fuzz corpus (python3-torch, python3-onnx).

usage: make_onnx_seeds.py DIR
A few-kilobyte CNN with the layers the importer maps (Conv, BatchNormalization,
Relu, MaxPool, AveragePool, Concat, Add, GlobalAveragePool, Flatten, Gemm,
Softmax) exported by torch.onnx.export at opsets 11 and 17, and a graph with
Sigmoid and Reshape built with onnx.helper.
"""
import os
import sys

import numpy as np


def torch_models(directory):
    import torch
    import torch.nn as nn
    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            self.a = nn.Conv2d(4, 4, 1)
            self.b = nn.Sequential(nn.AvgPool2d(3, 1, 1), nn.Conv2d(4, 4, 3, padding=1))
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            y = self.stem(x)
            y = torch.cat([self.a(y) + y, self.b(y)], 1)
            y = torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1)
            return torch.softmax(self.head(y), 1)

    model = Tiny().eval()
    for opset in (11, 17):
        torch.onnx.export(model, torch.zeros(1, 3, 16, 16), os.path.join(directory, "tiny_op%d.onnx" % opset),
                          opset_version=opset, input_names=["image"], output_names=["prob"])


def helper_model(directory):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "w")
    d = numpy_helper.from_array(rng.standard_normal((2, 2)).astype(np.float32), "d")
    shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="block1/conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="block1/relu"),
             helper.make_node("ReduceMean", ["r"], ["m"], name="pool", axes=[2, 3], keepdims=1),
             helper.make_node("Reshape", ["m", "shape"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "d"], ["y"], name="dense"),
             helper.make_node("Sigmoid", ["y"], ["p"], name="prob")]
    graph = helper.make_graph(nodes, "helper", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 2])], [w, d, shape])
    model = helper.make_model(graph, producer_name="salcheck-fuzz", opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, os.path.join(directory, "helper_op13.onnx"))


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    torch_models(sys.argv[1])
    helper_model(sys.argv[1])
