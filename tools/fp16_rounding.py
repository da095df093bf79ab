#!/usr/bin/env python3
"""What fp16 products should cost in accuracy, without a GPU.

`jetrt --fp16` on the GPU rounds the operands of tiled Conv, Gemm and MatMul
to fp16 and accumulates in fp32 (kernels/cuda/fp16.cu). This script does the
same rounding in onnxruntime on the CPU (a Cast to float16 and back in front
of every Conv/Gemm/MatMul input, weights rounded in place) for the models the
GPU check runs, filled with the same seeded weights, and prints the cosine to
the fp32 outputs: the figure the GPU check's fp16 comparison should reach
(tools/gpu_check.py asks >= 0.9999). Run it with the venv's python:

    .venv/bin/python tools/fp16_rounding.py
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fill_weights import fill_model  # noqa: E402

for name in ("resnet18", "mobilenet_v2"):
    m = onnx.load(os.path.join(HERE, 'models', 'torchvision', f'{name}_op17.onnx'))
    fill_model(m, seed=7)
    ops = {}
    for n in m.graph.node: ops[n.op_type] = ops.get(n.op_type, 0) + 1
    x = np.random.default_rng(7).standard_normal((1, 3, 224, 224)).astype(np.float32)
    inp = m.graph.input[0].name
    ref = ort.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider']).run(None, {inp: x})[0]
    # Round Conv/Gemm/MatMul operands (input and weight) to fp16, keep fp32 math.
    inits = {t.name: t for t in m.graph.initializer}
    new = []
    k = 0
    for n in m.graph.node:
        if n.op_type in ("Conv", "Gemm", "MatMul"):
            for i in (0, 1):
                src = n.input[i]
                if src in inits:
                    a = numpy_helper.to_array(inits[src])
                    inits[src].CopyFrom(numpy_helper.from_array(a.astype(np.float16).astype(np.float32), src))
                else:
                    h, f = f"_h{k}", f"_f{k}"; k += 1
                    new.append(helper.make_node("Cast", [src], [h], to=TensorProto.FLOAT16))
                    new.append(helper.make_node("Cast", [h], [f], to=TensorProto.FLOAT))
                    n.input[i] = f
        new.append(n)
    del m.graph.node[:]; m.graph.node.extend(new)
    so = ort.SessionOptions(); so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    y = ort.InferenceSession(m.SerializeToString(), so, providers=['CPUExecutionProvider']).run(None, {inp: x})[0]
    a, b = ref.ravel().astype(np.float64), y.ravel().astype(np.float64)
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    print(name, {o: c for o, c in ops.items() if o in ("BatchNormalization", "Conv", "Gemm")}, "max|y|", float(np.abs(a).max()),
          "maxdiff", float(np.abs(a - b).max()), "cosine", cos, "top1 same", int(a.argmax() == b.argmax()))
