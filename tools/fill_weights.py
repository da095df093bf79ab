#!/usr/bin/env python3
"""Strip and re-fill the weights of ONNX models kept in the repo.

Real exported models (tools/models/...) are committed with their large
weights *stripped*: every tensor with more than STRIP_MIN_ELEMS elements keeps
its name, dims and data_type but loses its data, and gets the doc_string
"jetrt:stripped" so a loader can tell it apart from a genuinely empty tensor.
Small tensors (shape constants, axes, scalars, ...) are kept as they are.

Before such a model is used (by a test or by onnxruntime for a reference
output), `fill_model` puts seeded random values back into every stripped
tensor. The values are chosen from how each tensor is *used* in the graph
(Conv / Gemm / MatMul weight, BatchNormalization scale / variance, embedding
table, ...) so activations stay bounded and outputs are finite and
non-degenerate. The same seed always gives the same bytes (numpy PCG64,
tensors visited in graph order).

Only numpy and onnx are needed (no torch).

Library:
    from fill_weights import strip_model, fill_model, is_stripped
CLI:
    fill_weights.py IN.onnx OUT.onnx --seed N     # fill stripped tensors
    fill_weights.py IN.onnx OUT.onnx --strip      # strip (for committing)

Both initializers and Constant nodes' `value` tensors are handled (some
exporters, e.g. Paddle2ONNX, keep every weight in a Constant node), also
inside subgraphs.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIPPED_MARK = "jetrt:stripped"
STRIP_MIN_ELEMS = 16  # tensors with MORE than this many elements get stripped

_DATA_FIELDS = (
    "raw_data",
    "float_data",
    "int32_data",
    "string_data",
    "int64_data",
    "double_data",
    "uint64_data",
)


# --------------------------------------------------------------------------
# walking the model


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def _tensors(model: onnx.ModelProto) -> Iterator[Tuple[onnx.GraphProto, str, TensorProto]]:
    """Every weight-like tensor: (graph, value name, tensor), in a fixed order."""
    for g in _graphs(model.graph):
        for init in g.initializer:
            yield g, init.name, init
        for node in g.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for attr in node.attribute:
                    if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                        yield g, node.output[0], attr.t


def _numel(t: TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


def is_stripped(t: TensorProto) -> bool:
    return t.doc_string == STRIPPED_MARK


# --------------------------------------------------------------------------
# strip


def strip_model(model: onnx.ModelProto, min_elems: int = STRIP_MIN_ELEMS) -> List[str]:
    """Clear the data of every tensor with more than `min_elems` elements, in place.

    Returns the names of the stripped tensors.
    """
    stripped = []
    for _g, name, t in _tensors(model):
        if _numel(t) <= min_elems or is_stripped(t):
            continue
        if t.data_location == TensorProto.EXTERNAL:
            raise ValueError(f"{name}: external data is not supported; load the model with its data first")
        for f in _DATA_FIELDS:
            t.ClearField(f)
        t.doc_string = STRIPPED_MARK
        stripped.append(name)
    return stripped


# --------------------------------------------------------------------------
# fill


def _consumers(graph: onnx.GraphProto) -> Dict[str, List[Tuple[onnx.NodeProto, int]]]:
    uses: Dict[str, List[Tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for i, inp in enumerate(node.input):
            if inp:
                uses.setdefault(inp, []).append((node, i))
    return uses


def _constant_names(graph: onnx.GraphProto) -> set:
    """Values that do not depend on the graph inputs (constants and what is computed from them only)."""
    names = {i.name for i in graph.initializer}
    for n in graph.node:  # nodes are topologically sorted
        if n.op_type == "Constant" or (n.input and all(not i or i in names for i in n.input)):
            names.update(o for o in n.output if o)
    return names


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


# passes values through unchanged (or reshaped), so look at what consumes their output
_PASS_THROUGH = {"Identity", "Cast", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand", "Slice", "Split"}


# What follows a weighted op decides the gain of its weights (std = gain / sqrt(fan_in)):
# variance-preserving ("He") for ReLU-like, more for the smooth ones that are ~x/2
# near 0 (HardSwish, SiLU, GELU), 1 for linear outputs (bottlenecks, logits),
# residual branches (the op's output meets a non-constant in an Add) and gates
# (Sigmoid / HardSigmoid). Tuned on tools/models/torchvision/ so that outputs
# stay finite, O(1..100), and depend visibly on the input.
GAIN_RELU = math.sqrt(2.0)
GAIN_SMOOTH = 1.9
GAIN_LINEAR = 1.0
_RELU_LIKE = {"Relu", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu"}
_SMOOTH = {"HardSwish", "Gelu", "Erf", "Softplus", "Mish", "Tanh"}
_BIAS_ADD = {"Add", "Identity", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "BatchNormalization"}
_AFFINE = {"Mul", "Sub", "Div"}  # by a constant: a learnable affine / scale after a conv


def _activation_gain(node: onnx.NodeProto, uses, consts) -> float:
    """Gain for the weights of `node` (Conv / Gemm / MatMul), from the op after it."""
    frontier = [o for o in node.output if o]
    for _ in range(6):  # step over a bias Add, BN, constant scale, reshape, ...
        nxt = []
        for v in frontier:
            consumers = uses.get(v, [])
            ops = {c.op_type for c, _ in consumers}
            if ops & _RELU_LIKE:
                return GAIN_RELU
            if ops & _SMOOTH:
                return GAIN_SMOOTH
            if "Sigmoid" in ops or "HardSigmoid" in ops:
                # x * sigmoid(x) (SiLU) / x * hardsigmoid(x) vs. a plain gate
                return GAIN_SMOOTH if "Mul" in ops else GAIN_LINEAR
            for c, _ in consumers:  # GELU decomposed before opset 20: Div(x, sqrt 2) -> Erf
                if c.op_type == "Div" and any(d.op_type == "Erf" for d, _ in uses.get(c.output[0], [])):
                    return GAIN_SMOOTH
            for c, i in consumers:
                others = [x for x in c.input if x and x != v]
                if c.op_type == "Add" and any(x not in consts for x in others):
                    return GAIN_LINEAR  # residual branch
                if len(ops) == 1 and (c.op_type in _BIAS_ADD or (c.op_type in _AFFINE and all(x in consts for x in others))):
                    nxt.extend(c.output)
        frontier = nxt
        if not frontier:
            break
    return GAIN_LINEAR


def _role(name: str, dims: List[int], uses, consts) -> Tuple[str, float]:
    """How to fill a float tensor, from its consumers (else its name and rank).

    ("fan_in", f): normal(0, gain/sqrt(f)), f already divided by the activation gain^2
    ("uniform", r): uniform(1-r, 1+r)   (scales, variances, divisors)
    ("table", s): normal(0, s)          (embedding tables)
    ("bias", _): normal(0, bias_std)    (biases, means, other 1-D)
    """
    todo = [name]
    seen = set()
    while todo:
        v = todo.pop(0)
        if v in seen:
            continue
        seen.add(v)
        for node, idx in uses.get(v, []):
            op = node.op_type
            if op in ("Conv",) and idx == 1 and len(dims) >= 3:
                return "fan_in", float(np.prod(dims[1:])) / _activation_gain(node, uses, consts) ** 2
            if op == "ConvTranspose" and idx == 1 and len(dims) >= 3:
                group = _attr(node, "group", 1)
                strides = _attr(node, "strides", [1] * (len(dims) - 2))
                fan = dims[0] / group * np.prod(dims[2:]) / max(1, int(np.prod(strides)))
                return "fan_in", float(max(fan, 1.0)) / _activation_gain(node, uses, consts) ** 2
            if op == "Gemm" and idx in (0, 1) and len(dims) == 2:
                trans = _attr(node, "transB" if idx == 1 else "transA", 0)
                fan = (dims[1] if trans else dims[0]) if idx == 1 else (dims[0] if trans else dims[1])
                return "fan_in", float(fan) / _activation_gain(node, uses, consts) ** 2
            if op == "MatMul" and len(dims) >= 2:
                fan = dims[-2] if idx == 1 else dims[-1]
                return "fan_in", float(fan) / _activation_gain(node, uses, consts) ** 2
            if op in ("Gather", "GatherElements") and idx == 0:
                return "table", 1.0
            if op == "BatchNormalization":
                if idx in (1, 4):  # scale, variance
                    return "uniform", 0.5
                return "bias", 0.0  # bias, mean
            if op in ("LayerNormalization", "InstanceNormalization", "GroupNormalization",
                      "SimplifiedLayerNormalization", "RMSNormalization"):
                if idx == 1:
                    return "uniform", 0.5
                return "bias", 0.0
            if op in ("Div", "Pow", "Sqrt"):
                return "uniform", 0.5  # keep divisors / exponents away from 0
            if op == "Mul":
                return "uniform", 0.5  # scale-like (decomposed LayerNorm gamma, layer scale, ...)
            if op in _PASS_THROUGH and idx == 0:
                todo.extend(o for o in node.output if o)
    lname = name.lower()
    if len(dims) <= 1:
        if "running_var" in lname or lname.endswith("var") or lname.endswith("variance"):
            return "uniform", 0.5
        if any(k in lname for k in ("norm", "ln", "bn")) and any(k in lname for k in ("weight", "gamma", "scale")):
            return "uniform", 0.5
        return "bias", 0.0
    return "fan_in", float(max(1, np.prod(dims[1:])))


_FLOAT_TYPES = {
    TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16,
}


def _random_for(t: TensorProto, name: str, uses, consts, rng: np.random.Generator,
                gain: float = 1.0, bias_std: float = 0.1) -> np.ndarray:
    """Random (float) or zero (integer / bool) values for tensor `t`, in its own dtype."""
    dims = list(t.dims)
    np_dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
    if t.data_type not in _FLOAT_TYPES:
        return np.zeros(dims, dtype=np_dtype)
    kind, p = _role(name, dims, uses, consts)
    if kind == "fan_in":
        a = rng.normal(0.0, gain / math.sqrt(p), size=dims)
    elif kind == "uniform":
        a = rng.uniform(1.0 - p, 1.0 + p, size=dims)
    elif kind == "table":
        a = rng.normal(0.0, p, size=dims)
    else:  # "bias"
        a = rng.normal(0.0, bias_std, size=dims)
    return a.astype(np.float32).astype(np_dtype)


def fill_model(model: onnx.ModelProto, seed: int, gain: float = 1.0, bias_std: float = 0.1) -> List[str]:
    """Fill every stripped tensor with seeded random values, in place.

    Floats: see _role (weights normal(0, gain * activation_gain / sqrt(fan_in)),
    norm scales / BN variances uniform(0.5, 1.5), biases / means normal(0, bias_std),
    embedding tables normal(0, 1)); integers and bools: zeros. Deterministic for
    a given seed. Returns the names of the filled tensors; their mark is removed.
    """
    rng = np.random.default_rng(seed)
    uses_by_graph: Dict[int, tuple] = {}
    filled = []
    for g, name, t in _tensors(model):
        if not is_stripped(t):
            continue
        if id(g) not in uses_by_graph:
            uses_by_graph[id(g)] = (_consumers(g), _constant_names(g))
        uses, consts = uses_by_graph[id(g)]
        arr = _random_for(t, name, uses, consts, rng, gain, bias_std)
        t.CopyFrom(numpy_helper.from_array(arr, name=t.name))
        filled.append(name)
    return filled


def fill_file(src: str, dst: str, seed: int, gain: float = 1.0, bias_std: float = 0.1) -> List[str]:
    model = onnx.load(src)
    filled = fill_model(model, seed, gain, bias_std)
    onnx.save(model, dst)
    return filled


def strip_file(src: str, dst: str, min_elems: int = STRIP_MIN_ELEMS) -> List[str]:
    model = onnx.load(src)
    stripped = strip_model(model, min_elems)
    onnx.save(model, dst)
    return stripped


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=0, help="RNG seed for filling (default 0)")
    ap.add_argument("--strip", action="store_true", help="strip weights instead of filling them")
    ap.add_argument("--min-elems", type=int, default=STRIP_MIN_ELEMS,
                    help="with --strip: keep tensors with at most this many elements (default 16)")
    ap.add_argument("--gain", type=float, default=1.0, help="extra factor on weight std (default 1)")
    ap.add_argument("--bias-std", type=float, default=0.1, help="std of biases / means (default 0.1)")
    args = ap.parse_args(argv)
    if args.strip:
        names = strip_file(args.input, args.output, args.min_elems)
        print(f"stripped {len(names)} tensors -> {args.output}")
    else:
        names = fill_file(args.input, args.output, args.seed, args.gain, args.bias_std)
        print(f"filled {len(names)} tensors (seed {args.seed}) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
