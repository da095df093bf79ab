#!/usr/bin/env python3
"""Benchmark models the project builds itself (no downloaded code or weights).

    gen_bench_models.py OUT_DIR

Writes OUT_DIR/regnetx_002.onnx, OUT_DIR/yolov8n_style.onnx and OUT_DIR/vit_tiny_style.onnx.

regnetx_002.onnx: a RegNetX-200MF-shaped network (stem 3x3/2 to 32 channels;
stages of widths 24, 56, 152, 368 and depths 1, 1, 4, 7; bottleneck blocks of 1x1, grouped
3x3 with groups of 8 channels, 1x1, BatchNormalization and ReLU, projection shortcuts; global
average pool and a 1000-way Gemm), batch 1, 224x224, seeded random weights. Its 60-odd
convolutions are small (most under 1 MFLOP at the late stages): a model of many small steps,
where thread-pool overhead shows. Built with onnx.helper from the architecture's published
description (Radosavovic et al., "Designing Network Design Spaces", 2020); opset 13.

yolov8n_style.onnx: a detector shaped like YOLOv8n as exported for deployment (width 0.25,
depth 0.33): Conv+SiLU (as Sigmoid and Mul, batch norm folded), C2f blocks (Split, bottlenecks,
Concat), SPPF (three chained 5x5 max pools), an FPN/PAN neck with nearest 2x Resize, and a
decoupled head per stride (8, 16, 32) with DFL (Reshape, Transpose, Softmax over 16 bins, a
fixed 1x1 Conv) and box decoding against the anchor grid, output [1, 84, anchors] (4 box
coordinates in pixels, 80 class scores). Written from the published architecture, none of
ultralytics' code or weights; seeded random weights; 1x3x320x320 by default (--size).

vit_tiny_style.onnx: a ViT-Tiny-shaped encoder (patch 16, width 192, 12 layers, 3 heads, MLP
768) as exporters write it: Conv patch embedding, class token Concat, position embedding,
pre-norm blocks of LayerNormalization, multi-head attention written out (MatMul, Reshape,
Transpose, scaled MatMul, Softmax, MatMul) and an MLP with erf GELU, a final LayerNorm and a
1000-way head on the class token. 1x3x224x224.
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


def yolov8n_style(size=320, classes=80):
    g = Graph(1)

    def const(kind, array):
        n = g.name(kind)
        g.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def node(op, inputs, n_out=1, **attrs):
        outs = [g.name(op.lower()) for _ in range(n_out)]
        g.nodes.append(helper.make_node(op, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(x, cin, cout, k=1, s=1, act=True):
        w = g.weight("w", (cout, cin, k, k), np.sqrt(2.0 / (cin * k * k)))
        b = g.weight("b", (cout,), 0.1)
        y = node("Conv", [x, w, b], kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4)
        return node("Mul", [y, node("Sigmoid", [y])]) if act else y

    def c2f(x, cin, cout, n, shortcut):
        c = cout // 2
        a, b = node("Split", [conv(x, cin, 2 * c), const("split", np.array([c, c], np.int64))], 2, axis=1)
        ys = [a, b]
        for _ in range(n):
            h = conv(conv(ys[-1], c, c, 3), c, c, 3)
            ys.append(node("Add", [ys[-1], h]) if shortcut else h)
        return conv(node("Concat", ys, axis=1), (2 + n) * c, cout)

    def sppf(x, cin, cout):
        h = conv(x, cin, cin // 2)
        p1 = node("MaxPool", [h], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
        p2 = node("MaxPool", [p1], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
        p3 = node("MaxPool", [p2], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
        return conv(node("Concat", [h, p1, p2, p3], axis=1), 2 * cin, cout)

    def up(x):
        return node("Resize", [x, "", const("scales", np.array([1, 1, 2, 2], np.float32))], mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    x = conv("images", 3, 16, 3, 2)
    x = conv(x, 16, 32, 3, 2)
    x = c2f(x, 32, 32, 1, True)
    x = conv(x, 32, 64, 3, 2)
    p3 = c2f(x, 64, 64, 2, True)
    x = conv(p3, 64, 128, 3, 2)
    p4 = c2f(x, 128, 128, 2, True)
    x = conv(p4, 128, 256, 3, 2)
    x = c2f(x, 256, 256, 1, True)
    p5 = sppf(x, 256, 256)
    h4 = c2f(node("Concat", [up(p5), p4], axis=1), 384, 128, 1, False)
    n3 = c2f(node("Concat", [up(h4), p3], axis=1), 192, 64, 1, False)
    n4 = c2f(node("Concat", [conv(n3, 64, 64, 3, 2), h4], axis=1), 192, 128, 1, False)
    n5 = c2f(node("Concat", [conv(n4, 128, 128, 3, 2), p5], axis=1), 384, 256, 1, False)
    bins, reg = 16, 64
    levels, anchors, strides = [], [], []
    for feat, c, stride in [(n3, 64, 8), (n4, 128, 16), (n5, 256, 32)]:
        side = size // stride
        box = conv(conv(conv(feat, c, reg, 3), reg, reg, 3), reg, 4 * bins, act=False)
        cls = conv(conv(conv(feat, c, 80, 3), 80, 80, 3), 80, classes, act=False)
        both = node("Concat", [box, cls], axis=1)
        levels.append(node("Reshape", [both, const("shape", np.array([1, 4 * bins + classes, side * side], np.int64))]))
        ys, xs = np.meshgrid(np.arange(side, dtype=np.float32) + 0.5, np.arange(side, dtype=np.float32) + 0.5, indexing="ij")
        anchors.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(side * side, stride, np.float32))
    a = sum(s * s for s in (size // 8, size // 16, size // 32))
    out = node("Concat", levels, axis=2)
    box, cls = node("Split", [out, const("split", np.array([4 * bins, classes], np.int64))], 2, axis=1)
    # DFL: a softmax over 16 distance bins, their expectation by a 1x1 Conv.
    d = node("Reshape", [box, const("shape", np.array([1, 4, bins, a], np.int64))])
    d = node("Softmax", [node("Transpose", [d], perm=[0, 2, 1, 3])], axis=1)
    d = node("Conv", [d, const("dfl", np.arange(bins, dtype=np.float32).reshape(1, bins, 1, 1))])
    d = node("Reshape", [d, const("shape", np.array([1, 4, a], np.int64))])
    lt, rb = node("Split", [d, const("split", np.array([2, 2], np.int64))], 2, axis=1)
    grid = const("anchors", np.concatenate(anchors, axis=1)[None])
    x1y1, x2y2 = node("Sub", [grid, lt]), node("Add", [grid, rb])
    centre = node("Mul", [node("Add", [x1y1, x2y2]), const("half", np.array(0.5, np.float32))])
    wh = node("Sub", [x2y2, x1y1])
    boxes = node("Mul", [node("Concat", [centre, wh], axis=1), const("strides", np.concatenate(strides)[None, None])])
    g.nodes.append(helper.make_node("Concat", [boxes, node("Sigmoid", [cls])], ["output0"], axis=1))
    graph = helper.make_graph(g.nodes, "yolov8n_style", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, a])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="jetrt gen_bench_models.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def vit_tiny_style(size=224, patch=16, dim=192, depth=12, heads=3, mlp=768, classes=1000):
    g = Graph(2)
    tokens = (size // patch) ** 2 + 1
    hd = dim // heads

    def const(kind, array):
        n = g.name(kind)
        g.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def node(op, inputs, **attrs):
        out = g.name(op.lower())
        g.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def shape(*dims):
        return const("shape", np.array(dims, np.int64))

    def linear(x, cin, cout):
        return node("Add", [node("MatMul", [x, g.weight("w", (cin, cout), np.sqrt(1.0 / cin))]), g.weight("b", (cout,), 0.02)])

    def norm(x):
        scale = const("ln_scale", (1.0 + g.rng.standard_normal(dim) * 0.05).astype(np.float32))
        return node("LayerNormalization", [x, scale, g.weight("ln_bias", (dim,), 0.02)], axis=-1, epsilon=1e-6)

    w = g.weight("patch_w", (dim, 3, patch, patch), np.sqrt(1.0 / (3 * patch * patch)))
    x = node("Conv", ["pixels", w, g.weight("patch_b", (dim,), 0.02)], kernel_shape=[patch, patch], strides=[patch, patch])
    x = node("Transpose", [node("Reshape", [x, shape(1, dim, tokens - 1)])], perm=[0, 2, 1])
    x = node("Concat", [g.weight("cls", (1, 1, dim), 0.02), x], axis=1)
    x = node("Add", [x, g.weight("pos", (1, tokens, dim), 0.02)])
    for _ in range(depth):
        h = norm(x)
        qkv = node("Reshape", [linear(h, dim, 3 * dim), shape(1, tokens, 3, heads, hd)])
        qkv = node("Transpose", [qkv], perm=[2, 0, 3, 1, 4])  # [3, 1, heads, tokens, hd]
        q, k, v = (node("Squeeze", [node("Gather", [qkv, const("i", np.array([i], np.int64))], axis=0), const("ax", np.array([0], np.int64))])
                   for i in range(3))
        att = node("Mul", [node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])]), const("scale", np.array(hd ** -0.5, np.float32))])
        o = node("MatMul", [node("Softmax", [att], axis=-1), v])  # [1, heads, tokens, hd]
        o = node("Reshape", [node("Transpose", [o], perm=[0, 2, 1, 3]), shape(1, tokens, dim)])
        x = node("Add", [x, linear(o, dim, dim)])
        h = linear(norm(x), dim, mlp)
        h = node("Mul", [node("Mul", [h, node("Add", [node("Erf", [node("Div", [h, const("sqrt2", np.array(np.sqrt(2.0), np.float32))])]),
                                                      const("one", np.array(1.0, np.float32))])]), const("half", np.array(0.5, np.float32))])
        x = node("Add", [x, linear(h, mlp, dim)])
    x = norm(x)
    cls = node("Squeeze", [node("Gather", [x, const("i", np.array([0], np.int64))], axis=1), const("ax", np.array([1], np.int64))])
    g.nodes.append(helper.make_node("Gemm", [cls, g.weight("head_w", (classes, dim), np.sqrt(1.0 / dim)), g.weight("head_b", (classes,), 0.01)],
                                    ["logits"], transB=1))
    graph = helper.make_graph(g.nodes, "vit_tiny_style", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="jetrt gen_bench_models.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=320, help="the detector's input side (a multiple of 32)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, model in [("regnetx_002", regnetx_002()), ("yolov8n_style", yolov8n_style(a.size)), ("vit_tiny_style", vit_tiny_style())]:
        path = os.path.join(a.out, f"{name}.onnx")
        onnx.save(model, path)
        print(path)


if __name__ == "__main__":
    main()
