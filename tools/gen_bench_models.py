#!/usr/bin/env python3
"""Benchmark models the project builds itself (no downloaded code or weights).

    gen_bench_models.py OUT_DIR

Writes OUT_DIR/regnetx_002.onnx: a RegNetX-200MF-shaped network (stem 3x3/2 to 32 channels;
stages of widths 24, 56, 152, 368 and depths 1, 1, 4, 7; bottleneck blocks of 1x1, grouped
3x3 with groups of 8 channels, 1x1, BatchNormalization and ReLU, projection shortcuts; global
average pool and a 1000-way Gemm), batch 1, 224x224, seeded random weights. Its 60-odd
convolutions are small (most under 1 MFLOP at the late stages): a model of many small steps,
where thread-pool overhead shows. Built with onnx.helper from the architecture's published
description (Radosavovic et al., "Designing Network Design Spaces", 2020); opset 13.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Graph:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, kind):
        self.n += 1
        return f"{kind}_{self.n}"

    def weight(self, kind, shape, scale):
        n = self.name(kind)
        self.inits.append(numpy_helper.from_array((self.rng.standard_normal(shape) * scale).astype(np.float32), n))
        return n

    def conv_bn(self, x, cin, cout, k, stride, groups, relu):
        fan_in = cin // groups * k * k
        w = self.weight("w", (cout, cin // groups, k, k), np.sqrt(2.0 / fan_in))
        y = self.name("conv")
        self.nodes.append(helper.make_node("Conv", [x, w], [y], kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[k // 2] * 4, group=groups))
        scale = self.weight("bn_scale", (cout,), 0.1)
        self.inits[-1] = numpy_helper.from_array((1.0 + self.rng.standard_normal(cout) * 0.1).astype(np.float32), scale)
        bias = self.weight("bn_bias", (cout,), 0.1)
        mean = self.weight("bn_mean", (cout,), 0.1)
        var = self.name("bn_var")
        self.inits.append(numpy_helper.from_array((1.0 + np.abs(self.rng.standard_normal(cout)) * 0.1).astype(np.float32), var))
        z = self.name("bn")
        self.nodes.append(helper.make_node("BatchNormalization", [y, scale, bias, mean, var], [z], epsilon=1e-5))
        if not relu:
            return z
        r = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [z], [r]))
        return r


def regnetx_002():
    g = Graph(0)
    x = g.conv_bn("input", 3, 32, 3, 2, 1, True)
    cin = 32
    for width, depth in zip([24, 56, 152, 368], [1, 1, 4, 7]):
        for i in range(depth):
            stride = 2 if i == 0 else 1
            groups = width // 8
            a = g.conv_bn(x, cin, width, 1, 1, 1, True)
            b = g.conv_bn(a, width, width, 3, stride, groups, True)
            c = g.conv_bn(b, width, width, 1, 1, 1, False)
            short = g.conv_bn(x, cin, width, 1, stride, 1, False) if (cin != width or stride != 1) else x
            s = g.name("add")
            g.nodes.append(helper.make_node("Add", [c, short], [s]))
            x = g.name("relu")
            g.nodes.append(helper.make_node("Relu", [s], [x]))
            cin = width
    p = g.name("pool")
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], [p]))
    f = g.name("flat")
    g.nodes.append(helper.make_node("Flatten", [p], [f], axis=1))
    w = g.weight("fc_w", (1000, cin), np.sqrt(1.0 / cin))
    b = g.weight("fc_b", (1000,), 0.01)
    g.nodes.append(helper.make_node("Gemm", [f, w, b], ["logits"], transB=1))
    graph = helper.make_graph(g.nodes, "regnetx_002", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="jetrt gen_bench_models.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "regnetx_002.onnx")
    onnx.save(regnetx_002(), path)
    print(path)


if __name__ == "__main__":
    main()
