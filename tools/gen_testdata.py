#!/usr/bin/env python3
"""Generates the test cases that the Rust tests read (usually via tools/gen_testdata.sh).

    gen_testdata.py OUT_DIR

Every case is a folder:

    <case>/model.onnx
    <case>/case.json     {"name", "source", "inputs": [{"name", "file"}], "outputs": [{"name", "file"}],
                          "rtol", "atol", "opset", "ops"}
    <case>/input_K.npy, <case>/expected_K.npy   (plain .npy, C order, little-endian)

and OUT_DIR/manifest.json lists them by group:

    {"zoo": [...], "zoo_random": [...], "ops": [...], "external": [...],
     "external_bad": [{"path": "<folder>/model.onnx", "expect": "escape" | "missing"}]}

Groups:
  zoo/         the nine "light" model-zoo models shipped by the onnx package, with the input
               onnx's backend test runner generates and the output stored beside the model.
  zoo_random/  the same models with their ConstantOfShape weights (all 0.02) replaced by random
               initializers, plus the logits (input of the last Softmax) as an extra output;
               expected outputs from onnxruntime.
  ops/         small hand-built graphs, one op (or one fusion pattern) each; expected outputs
               from onnxruntime, cross-checked against onnx.reference (disagreements are printed).
  external/    a model with its weights in an external file, and three bad ones.

Everything is deterministic: every random array comes from np.random.default_rng with a seed
derived from the case name (crc32), and onnxruntime runs single-threaded without graph
optimizations.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

LIGHT_MODELS = [
    "light_bvlc_alexnet",
    "light_densenet121",
    "light_inception_v1",
    "light_inception_v2",
    "light_resnet50",
    "light_shufflenet",
    "light_squeezenet",
    "light_vgg19",
    "light_zfnet512",
]
# Rough cost order (largest first) so the process pool finishes early.
HEAVY_FIRST = [
    "light_vgg19",
    "light_zfnet512",
    "light_bvlc_alexnet",
    "light_resnet50",
    "light_inception_v2",
    "light_densenet121",
    "light_inception_v1",
    "light_shufflenet",
    "light_squeezenet",
]
LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
ONNX_SRC = f"onnx=={onnx.__version__}"


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


# --------------------------------------------------------------------------------------------
# common helpers


def ort_session(model: onnx.ModelProto | str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3  # quiet: the zoo models carry unused initializers
    src = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def ort_run(model, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> list[np.ndarray]:
    return ort_session(model).run(outputs, feeds)


def save_npy(path: str, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    np.save(path, arr, allow_pickle=False)


def default_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    raise ValueError("model has no default-domain opset")


def write_case(
    case_dir: str,
    name: str,
    source: str,
    model: onnx.ModelProto | str,
    inputs: list[tuple[str, np.ndarray]],
    outputs: list[tuple[str, np.ndarray]],
    rtol: float,
    atol: float,
    proto: onnx.ModelProto | None = None,
) -> None:
    """Writes one case folder. `model` is a ModelProto or the path of a file to copy (or the
    case's model.onnx itself, already written; `proto` then saves reading it back)."""
    os.makedirs(case_dir, exist_ok=True)
    dst = os.path.join(case_dir, "model.onnx")
    if isinstance(model, str):
        if os.path.abspath(model) != os.path.abspath(dst):
            shutil.copyfile(model, dst)
        if proto is None:
            proto = onnx.load(dst, load_external_data=False)
    else:
        onnx.save(model, dst)
        proto = model
    for oname, arr in outputs:
        if not np.all(np.isfinite(arr)):
            raise AssertionError(f"{name}: expected output {oname!r} is not finite")
    meta = {
        "name": name,
        "source": source,
        "inputs": [],
        "outputs": [],
        "rtol": rtol,
        "atol": atol,
        "opset": default_opset(proto),
        "ops": sorted({n.op_type for n in proto.graph.node}),
    }
    for k, (iname, arr) in enumerate(inputs):
        f = f"input_{k}.npy"
        save_npy(os.path.join(case_dir, f), arr)
        meta["inputs"].append({"name": iname, "file": f})
    for k, (oname, arr) in enumerate(outputs):
        f = f"expected_{k}.npy"
        save_npy(os.path.join(case_dir, f), arr)
        meta["outputs"].append({"name": oname, "file": f})
    with open(os.path.join(case_dir, "case.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")


def real_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in inits]


# --------------------------------------------------------------------------------------------
# a) zoo: the light models as onnx's backend test runner runs them


def generate_dummy_data(x: onnx.ValueInfoProto) -> np.ndarray:
    """onnx/backend/test/runner/__init__.py: generate_dummy_data(random=False)."""
    assert x.type.tensor_type.elem_type == TensorProto.FLOAT, x
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim)
    n = np.prod(shape)
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def zoo_case(out: str, model_name: str) -> tuple[str, str]:
    src = os.path.join(LIGHT_DIR, model_name + ".onnx")
    model = onnx.load(src)
    g = model.graph
    feeds = [(i.name, generate_dummy_data(i)) for i in real_inputs(g)]
    expected = []
    for k, o in enumerate(g.output):
        pb = os.path.join(LIGHT_DIR, f"{model_name}_output_{k}.pb")
        expected.append((o.name, numpy_helper.to_array(onnx.load_tensor(pb))))
    rtol, atol = 1e-3, 1e-7  # onnx.backend.test.loader defaults
    got = ort_run(src, dict(feeds))
    for (oname, want), have in zip(expected, got):
        np.testing.assert_allclose(
            have, want, rtol=rtol, atol=atol, err_msg=f"zoo/{model_name}: onnxruntime disagrees with {oname}"
        )
    rel = os.path.join("zoo", model_name)
    write_case(
        os.path.join(out, rel),
        model_name,
        f"{ONNX_SRC} onnx/backend/test/data/light/{model_name}.onnx; input as onnx's backend test "
        f"runner makes it (arange/n); expected = {model_name}_output_0.pb",
        src,
        feeds,
        expected,
        rtol,
        atol,
    )
    return rel, ""


# --------------------------------------------------------------------------------------------
# b) zoo_random: the light models with random weights

PASS_THROUGH = {"Unsqueeze", "Reshape", "Squeeze", "Identity", "Flatten"}
# ops between the last weighted layer and the logits that are positively homogeneous
# (f(s*x) = s*f(x) for s > 0), so scaling that layer's weight and bias scales the logits.
HOMOGENEOUS = {"Relu", "Reshape", "Flatten", "Dropout", "GlobalAveragePool", "AveragePool", "MaxPool", "Identity", "Squeeze"}


def zoo_random_case(out: str, model_name: str) -> tuple[str, str]:
    seed = seed_of("zoo_random/" + model_name)
    rng = np.random.default_rng(seed)
    model = onnx.load(os.path.join(LIGHT_DIR, model_name + ".onnx"))
    g = model.graph
    init = {t.name: t for t in g.initializer}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    producer: dict[str, onnx.NodeProto] = {}
    for n in g.node:
        for k, i in enumerate(n.input):
            consumers.setdefault(i, []).append((n, k))
        for o in n.output:
            producer[o] = n

    def final_uses(name: str) -> list[tuple[onnx.NodeProto, int]]:
        uses = []
        for n, k in consumers.get(name, []):
            if n.op_type in PASS_THROUGH and k == 0:
                uses += final_uses(n.output[0])
            else:
                uses.append((n, k))
        return uses

    def attr(n: onnx.NodeProto, name: str, default):
        for a in n.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    weights: dict[str, np.ndarray] = {}  # replaced tensors, in node order
    nodes = []
    for n in g.node:
        if n.op_type != "ConstantOfShape" or n.input[0] not in init:
            nodes.append(n)
            continue
        shape = tuple(int(d) for d in numpy_helper.to_array(init[n.input[0]]))
        uses = final_uses(n.output[0])
        kinds = {(u.op_type, k) for u, k in uses}
        if len(shape) == 4 and kinds == {("Conv", 1)}:
            fan_in = shape[1] * shape[2] * shape[3]  # [Co, Ci/g, kh, kw]
            arr = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        elif len(shape) in (2, 4) and kinds == {("Gemm", 1)}:
            (gemm, _), = uses
            if attr(gemm, "transB", 0):
                fan_in = int(np.prod(shape[1:]))  # B is [N, K] (inception_v1 reshapes [N,K,1,1])
            else:
                assert len(shape) == 2, (model_name, n.output[0])
                fan_in = shape[0]
            arr = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(1.0 / fan_in))
        elif len(shape) == 1:
            unit = all(
                (u.op_type == "BatchNormalization" and k in (1, 4)) or u.op_type == "Mul" for u, k in uses
            )
            arr = rng.uniform(0.5, 1.5, shape) if unit else rng.uniform(-0.1, 0.1, shape)
        else:
            raise AssertionError(f"{model_name}: no rule for ConstantOfShape {n.output[0]} {shape} used by {kinds}")
        weights[n.output[0]] = arr.astype(np.float32, copy=False)

    # Drop the shape initializers nothing reads any more.
    used = {i for n in nodes for i in n.input}
    kept_inits = [t for t in g.initializer if t.name in used]
    dropped = {t.name for t in g.initializer} - {t.name for t in kept_inits}
    kept_inputs = [i for i in g.input if i.name not in dropped]

    # The logits: input of the last Softmax; densenet121 has no Softmax, its output is the logits.
    softmaxes = [n for n in nodes if n.op_type == "Softmax"]
    orig_outputs = [o.name for o in g.output]
    logits = softmaxes[-1].input[0] if softmaxes else orig_outputs[0]
    out_names = orig_outputs + ([logits] if logits not in orig_outputs else [])

    # The last weighted layer before the logits, for rescaling.
    n = producer[logits]
    while n.op_type in HOMOGENEOUS:
        n = producer[n.input[0]]
    assert n.op_type in ("Gemm", "Conv"), (model_name, n.op_type)
    last_params = []
    for name in n.input[1:3]:
        while name not in weights and name not in init and producer[name].op_type in PASS_THROUGH:
            name = producer[name].input[0]  # inception_v1 reshapes its fc weight
        if name in init:  # a real bias from the zoo model: it must scale too
            weights[name] = numpy_helper.to_array(init[name]).copy()
            kept_inits = [t for t in kept_inits if t.name != name]
            kept_inputs = [i for i in kept_inputs if i.name != name]
        last_params.append(name)

    # The logits have the shape of the Softmax's output, which is the graph output.
    out_shape = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in g.output}
    if softmaxes:
        assert softmaxes[-1].output[0] == orig_outputs[0], model_name
        out_shape[logits] = out_shape[orig_outputs[0]]
    assert all(all(d > 0 for d in out_shape[o]) for o in out_names), (model_name, out_shape)

    m = onnx.ModelProto()
    m.CopyFrom(model)
    mg = m.graph
    del mg.node[:]
    mg.node.extend(nodes)
    del mg.initializer[:]
    mg.initializer.extend(kept_inits)
    for k, a in weights.items():  # like numpy_helper.from_array, without an extra copy of each tensor
        t = mg.initializer.add()
        t.name = k
        t.data_type = TensorProto.FLOAT
        t.dims.extend(a.shape)
        t.raw_data = a.astype("<f4", copy=False).tobytes()
    del mg.input[:]
    mg.input.extend(kept_inputs)
    # IR version 3: every initializer is also a graph input.
    mg.input.extend(helper.make_tensor_value_info(k, TensorProto.FLOAT, a.shape) for k, a in weights.items())
    for name in out_names[len(orig_outputs):]:
        mg.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, out_shape[name]))

    (inp,) = real_inputs(g)
    shape = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)
    x = rng.standard_normal(shape, dtype=np.float32)

    def check(res: list[np.ndarray]) -> tuple[float, float]:
        lg = res[out_names.index(logits)]
        flat = lg.reshape(lg.shape[0], -1)
        std = float(flat.std(axis=1).min())
        pmax = float(res[0].max()) if softmaxes else float("nan")
        return std, pmax

    rel = os.path.join("zoo_random", model_name)
    case_dir = os.path.join(out, rel)
    path = os.path.join(case_dir, "model.onnx")
    os.makedirs(case_dir, exist_ok=True)
    onnx.save(m, path)  # saved once and run from the file: vgg19 is 575 MB
    res = ort_run(path, {inp.name: x}, out_names)
    std, pmax = check(res)
    note = f"logits std {std:.3g}"
    # Keep the logits in a range where both they and the softmax are informative: std ~ 2.
    # Scaling the last layer's weight and bias scales the logits exactly (what follows it is
    # positively homogeneous).
    if not (0.5 <= std <= 4.0):
        s = np.float32(2.0 / std)
        for t in mg.initializer:
            if t.name in last_params:
                t.CopyFrom(numpy_helper.from_array(weights[t.name] * s, t.name))
        onnx.save(m, path)
        res = ort_run(path, {inp.name: x}, out_names)
        std, pmax = check(res)
        note += f" -> rescaled last layer by {s:.3g}: {std:.3g}"
    for name, r in zip(out_names, res):
        assert np.all(np.isfinite(r)), (model_name, name)
        assert list(r.shape) == out_shape[name], (model_name, name, r.shape)
    assert std > 1e-3, f"{model_name}: degenerate logits (std {std})"
    if softmaxes:
        assert pmax < 0.999, f"{model_name}: softmax output is one-hot (max {pmax})"
        note += f", softmax max {pmax:.3g}"

    write_case(
        case_dir,
        model_name + "_random",
        f"{ONNX_SRC} onnx/backend/test/data/light/{model_name}.onnx with ConstantOfShape weights replaced "
        f"by random initializers (tools/gen_testdata.py, seed {seed}); logits added as an output; "
        f"expected from onnxruntime {ort.__version__} CPU",
        path,
        [(inp.name, x)],
        list(zip(out_names, res)),
        1e-3,
        1e-4,
        proto=m,
    )
    return rel, note


# --------------------------------------------------------------------------------------------
# c) ops: small hand-built graphs


class Ops:
    """Collects and writes the ops cases."""

    def __init__(self, out: str):
        self.out = out
        self.cases: list[str] = []
        self.disagreements: list[str] = []
        self.rng = np.random.default_rng(0)

    # random data; every case calls begin() first so its arrays depend only on its name
    def begin(self, name: str) -> None:
        self.rng = np.random.default_rng(seed_of("ops/" + name))

    def normal(self, *shape, scale=1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def uniform(self, lo, hi, *shape) -> np.ndarray:
        return self.rng.uniform(lo, hi, shape).astype(np.float32)

    def he(self, *shape) -> np.ndarray:
        """Conv weight [Co, Ci/g, k...]."""
        return self.normal(*shape, scale=np.sqrt(2.0 / np.prod(shape[1:])))

    def nonzero(self, *shape) -> np.ndarray:
        """Values with |v| in [0.5, 2], for divisors."""
        sign = np.where(self.rng.random(shape) < 0.5, -1.0, 1.0)
        return (sign * self.rng.uniform(0.5, 2.0, shape)).astype(np.float32)

    def case(
        self,
        name: str,
        nodes: list[onnx.NodeProto],
        inputs: dict[str, np.ndarray],
        inits: dict[str, np.ndarray] | None = None,
        outputs: list[str] | None = None,
        opset: int = 13,
        rtol: float = 1e-4,
        atol: float = 1e-5,
        what: str = "",
    ) -> None:
        assert name not in {os.path.basename(c) for c in self.cases}, name
        inits = inits or {}
        outputs = outputs or list(nodes[-1].output)
        n_el = sum(a.size for a in inputs.values()) + sum(a.size for a in inits.values())
        assert n_el < 200_000, (name, n_el)

        def vi(k, a):
            return helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)

        opsets = [helper.make_opsetid("", opset)]
        ir_version = helper.find_min_ir_version_for(opsets)

        def make(out_vis):
            graph_inputs = [vi(k, a) for k, a in inputs.items()]
            if ir_version < 4:  # IR 3: every initializer must also be a graph input
                graph_inputs += [vi(k, a) for k, a in inits.items()]
            graph = helper.make_graph(
                nodes,
                name,
                graph_inputs,
                out_vis,
                [numpy_helper.from_array(a, k) for k, a in inits.items()],
            )
            return helper.make_model(
                graph,
                opset_imports=opsets,
                ir_version=ir_version,
                producer_name="jetrt tools/gen_testdata.py",
            )

        probe = make([helper.make_empty_tensor_value_info(o) for o in outputs])
        res = ort_run(probe, inputs, outputs)
        model = make([vi(o, r) for o, r in zip(outputs, res)])
        onnx.checker.check_model(model, full_check=True)

        # Cross-check onnxruntime against onnx's reference evaluator; report, don't fail.
        try:
            from onnx.reference import ReferenceEvaluator

            ref = ReferenceEvaluator(model, new_ops=reference_fixes(opset)).run(outputs, inputs)
            for o, a, b in zip(outputs, res, ref):
                if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=atol):
                    err = np.max(np.abs(a - b)) if a.shape == b.shape else f"shape {a.shape} vs {b.shape}"
                    self.disagreements.append(f"ops/{name}: onnx.reference differs from onnxruntime on {o}: {err}")
        except Exception as e:  # noqa: BLE001 - the reference evaluator is only advisory
            self.disagreements.append(f"ops/{name}: onnx.reference failed: {type(e).__name__}: {e}")

        rel = os.path.join("ops", name)
        write_case(
            os.path.join(self.out, rel),
            name,
            f"tools/gen_testdata.py ops{': ' + what if what else ''}; expected from onnxruntime {ort.__version__} CPU",
            model,
            list(inputs.items()),
            list(zip(outputs, res)),
            rtol,
            atol,
        )
        self.cases.append(rel)


def reference_fixes(opset: int) -> list[type]:
    """Replacements for onnx.reference kernels that are wrong in onnx 1.23.2 (checked by hand
    against numpy and onnxruntime, which agree):
      - BatchNormalization_9 runs in training mode (batch statistics) because momentum gets its
        schema default;
      - LRN loops over the batch dimension instead of the channels;
      - Softmax before opset 13 ignores the flatten-to-2-D semantics and takes the default axis
        of opset 13 (-1) instead of 1.
    """
    from onnx.reference.op_run import OpRun

    def attrs(node) -> dict:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    class BatchNormalization(OpRun):
        op_domain = ""

        def _run(self, x, scale, bias, mean, var, *_, **__):
            eps = attrs(self.onnx_node).get("epsilon", 1e-5)
            sh = (1, -1) + (1,) * (x.ndim - 2)
            y = (x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + eps) * scale.reshape(sh) + bias.reshape(sh)
            return (y.astype(x.dtype),)

    class LRN(OpRun):
        op_domain = ""

        def _run(self, x, *_, **__):
            a = attrs(self.onnx_node)
            size, alpha, beta, bias = a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0)
            sq = np.zeros(x.shape, np.float64)
            for c in range(x.shape[1]):
                lo, hi = max(0, c - (size - 1) // 2), min(x.shape[1], c + size // 2 + 1)
                sq[:, c] = np.sum(x[:, lo:hi].astype(np.float64) ** 2, axis=1)
            return ((x / (bias + alpha / size * sq) ** beta).astype(x.dtype),)

    class Softmax(OpRun):
        op_domain = ""

        def _run(self, x, *_, **__):
            axis = attrs(self.onnx_node).get("axis", 1 if opset < 13 else -1)
            axis %= x.ndim
            t = x.reshape(int(np.prod(x.shape[:axis])), -1) if opset < 13 else x
            ax = 1 if opset < 13 else axis
            e = np.exp(t - t.max(axis=ax, keepdims=True))
            return ((e / e.sum(axis=ax, keepdims=True)).reshape(x.shape).astype(x.dtype),)

    return [BatchNormalization, LRN, Softmax]


def N(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, **attrs)


def i64(*v):
    return np.array(v, dtype=np.int64)


def gen_ops(out: str) -> tuple[list[str], list[str]]:
    o = Ops(out)

    # ---- Conv -------------------------------------------------------------------------------
    def conv(name, x_shape, w_shape, bias=True, opset=11, **attrs):
        o.begin(name)
        x = o.normal(*x_shape)
        inits = {"w": o.he(*w_shape)}
        if bias:
            inits["b"] = o.uniform(-0.5, 0.5, w_shape[0])
        ins = ["x", "w"] + (["b"] if bias else [])
        o.case(name, [N("Conv", ins, ["y"], **attrs)], {"x": x}, inits, opset=opset)

    conv("conv_3x3_pad1", [1, 4, 10, 10], [8, 4, 3, 3], pads=[1, 1, 1, 1], opset=9)
    conv("conv_3x3_pad1_stride2", [1, 4, 11, 11], [8, 4, 3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    conv("conv_3x3_pad2_dilation2", [1, 3, 12, 12], [6, 3, 3, 3], pads=[2, 2, 2, 2], dilations=[2, 2])
    conv("conv_3x3_dilation_2x1_nopad", [1, 3, 12, 10], [6, 3, 3, 3], dilations=[2, 1])
    conv("conv_3x3_pads_asym", [1, 3, 9, 9], [5, 3, 3, 3], pads=[1, 0, 2, 1])
    conv("conv_3x3_stride2_pads_asym_tf", [1, 3, 10, 10], [5, 3, 3, 3], pads=[0, 0, 1, 1], strides=[2, 2])
    conv("conv_3x3_group2", [1, 8, 9, 9], [6, 4, 3, 3], pads=[1, 1, 1, 1], group=2)
    conv("conv_3x3_group4_stride2", [1, 8, 9, 9], [8, 2, 3, 3], pads=[1, 1, 1, 1], strides=[2, 2], group=4)
    conv("conv_3x3_depthwise", [1, 8, 10, 10], [8, 1, 3, 3], pads=[1, 1, 1, 1], group=8)
    conv("conv_3x3_depthwise_stride2_nobias", [1, 12, 11, 11], [12, 1, 3, 3], bias=False, pads=[1, 1, 1, 1],
         strides=[2, 2], group=12)
    conv("conv_3x3_depthwise_multiplier2", [1, 4, 8, 8], [8, 1, 3, 3], pads=[1, 1, 1, 1], group=4)
    conv("conv_3x3_nobias", [1, 4, 8, 8], [8, 4, 3, 3], bias=False, pads=[1, 1, 1, 1])
    conv("conv_1x1", [1, 16, 7, 7], [32, 16, 1, 1])
    conv("conv_1x1_stride2_nobias", [1, 16, 8, 8], [8, 16, 1, 1], bias=False, strides=[2, 2])
    conv("conv_7x7_stride2_pad3", [1, 3, 32, 32], [8, 3, 7, 7], pads=[3, 3, 3, 3], strides=[2, 2])
    conv("conv_5x5_pad2", [1, 6, 12, 12], [8, 6, 5, 5], pads=[2, 2, 2, 2])
    conv("conv_11x11_stride4", [1, 3, 47, 47], [8, 3, 11, 11], strides=[4, 4])  # alexnet conv1
    conv("conv_3x3_stride2_pad1_odd_13x11", [1, 3, 13, 11], [4, 3, 3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    conv("conv_5x3_kernel_odd_13x11", [1, 3, 13, 11], [4, 3, 5, 3], pads=[2, 1, 2, 1], strides=[1, 2])
    conv("conv_1x7_kernel", [1, 4, 9, 12], [4, 4, 1, 7], pads=[0, 3, 0, 3])  # inception_v3 style
    conv("conv_auto_pad_same_upper", [1, 3, 11, 9], [4, 3, 4, 3], auto_pad="SAME_UPPER", strides=[2, 1])
    conv("conv_auto_pad_same_lower", [1, 3, 11, 9], [4, 3, 4, 3], auto_pad="SAME_LOWER", strides=[2, 1])
    conv("conv_auto_pad_same_upper_2x2", [1, 3, 8, 8], [4, 3, 2, 2], auto_pad="SAME_UPPER")
    conv("conv_auto_pad_same_lower_2x2", [1, 3, 8, 8], [4, 3, 2, 2], auto_pad="SAME_LOWER")
    conv("conv_auto_pad_valid", [1, 3, 10, 9], [4, 3, 3, 3], auto_pad="VALID", strides=[2, 2])
    conv("conv_3x3_batch2", [2, 4, 9, 9], [6, 4, 3, 3], pads=[1, 1, 1, 1])
    conv("conv_3x3_no_attrs", [1, 3, 8, 8], [4, 3, 3, 3])  # kernel_shape inferred from W, pads 0
    conv("conv_kernel_shape_attr", [1, 3, 8, 8], [4, 3, 3, 3], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    conv("conv1d_k3_pad1", [2, 4, 20], [6, 4, 3], pads=[1, 1])
    conv("conv1d_k5_stride2_nobias", [1, 3, 21], [4, 3, 5], bias=False, strides=[2], pads=[2, 2])

    # ---- activations --------------------------------------------------------------------------
    def unary(name, op, opset=13, shape=(2, 3, 5, 7), scale=2.0, **attrs):
        o.begin(name)
        o.case(name, [N(op, ["x"], ["y"], **attrs)], {"x": o.normal(*shape, scale=scale)}, opset=opset)

    unary("relu", "Relu")
    unary("relu_opset6", "Relu", opset=6)
    unary("leaky_relu_alpha0.1", "LeakyRelu", alpha=0.1)
    unary("leaky_relu_default_alpha", "LeakyRelu", opset=6)
    unary("sigmoid", "Sigmoid", scale=4.0)
    unary("tanh", "Tanh", scale=2.0)
    unary("clip_opset6_attrs", "Clip", opset=6, min=-0.5, max=0.75)
    unary("clip_opset6_relu6", "Clip", opset=6, scale=4.0, min=0.0, max=6.0)

    def clip(name, opset, lo, hi):
        o.begin(name)
        inits = {}
        ins = ["x", "", ""]
        if lo is not None:
            inits["min"] = np.array(lo, np.float32)
            ins[1] = "min"
        if hi is not None:
            inits["max"] = np.array(hi, np.float32)
            ins[2] = "max"
        while ins[-1] == "":
            ins.pop()
        o.case(name, [N("Clip", ins, ["y"])], {"x": o.normal(2, 3, 5, 7, scale=2.0)}, inits, opset=opset)

    clip("clip_opset13_min_max_inputs", 13, -0.5, 0.75)
    clip("clip_opset11_min_max_inputs", 11, 0.0, 6.0)
    clip("clip_opset13_max_only", 13, None, 0.5)
    clip("clip_opset13_min_only", 13, -0.25, None)
    clip("clip_opset13_no_bounds", 13, None, None)

    # ---- MaxPool --------------------------------------------------------------------------------
    def pool(name, op, x_shape, opset=12, **attrs):
        o.begin(name)
        o.case(name, [N(op, ["x"], ["y"], **attrs)], {"x": o.normal(*x_shape)}, opset=opset)

    pool("maxpool_3x3_s2", "MaxPool", [1, 4, 13, 13], opset=9, kernel_shape=[3, 3], strides=[2, 2])
    pool("maxpool_3x3_s2_pad1", "MaxPool", [1, 4, 12, 12], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    pool("maxpool_3x3_s2_pads_asym", "MaxPool", [1, 4, 12, 12], kernel_shape=[3, 3], strides=[2, 2],
         pads=[0, 0, 1, 1])
    pool("maxpool_2x2_s2", "MaxPool", [2, 3, 10, 8], kernel_shape=[2, 2], strides=[2, 2])
    pool("maxpool_2x2_s2_odd_input", "MaxPool", [1, 3, 9, 7], kernel_shape=[2, 2], strides=[2, 2])
    pool("maxpool_3x3_s1_pad1", "MaxPool", [1, 4, 9, 9], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    pool("maxpool_3x3_s2_ceil", "MaxPool", [1, 4, 14, 14], opset=10, kernel_shape=[3, 3], strides=[2, 2],
         ceil_mode=1)
    pool("maxpool_2x2_s2_ceil_odd", "MaxPool", [1, 3, 9, 7], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    pool("maxpool_2x2_dilation2", "MaxPool", [1, 3, 10, 10], opset=10, kernel_shape=[2, 2], dilations=[2, 2])
    pool("maxpool_3x3_dilation2_s2_pad1", "MaxPool", [1, 3, 13, 12], kernel_shape=[3, 3], dilations=[2, 2],
         strides=[2, 2], pads=[1, 1, 1, 1])
    pool("maxpool_3x2_s1x2", "MaxPool", [1, 3, 9, 10], kernel_shape=[3, 2], strides=[1, 2])
    pool("maxpool_auto_pad_same_upper", "MaxPool", [1, 3, 9, 9], kernel_shape=[3, 3], strides=[2, 2],
         auto_pad="SAME_UPPER")
    pool("maxpool_1d_k3_s2", "MaxPool", [2, 3, 15], kernel_shape=[3], strides=[2])

    # ---- AveragePool ----------------------------------------------------------------------------
    pool("avgpool_3x3_s1_pad1_exclude_pad", "AveragePool", [1, 4, 9, 9], opset=11, kernel_shape=[3, 3],
         pads=[1, 1, 1, 1], count_include_pad=0)
    pool("avgpool_3x3_s1_pad1_include_pad", "AveragePool", [1, 4, 9, 9], opset=11, kernel_shape=[3, 3],
         pads=[1, 1, 1, 1], count_include_pad=1)
    pool("avgpool_2x2_s2_pads_asym_exclude_pad", "AveragePool", [1, 3, 9, 9], kernel_shape=[2, 2],
         strides=[2, 2], pads=[0, 0, 1, 1])
    pool("avgpool_3x3_s2_pads_asym_include_pad", "AveragePool", [1, 3, 10, 10], kernel_shape=[3, 3],
         strides=[2, 2], pads=[0, 0, 1, 1], count_include_pad=1)
    pool("avgpool_3x3_s2_ceil", "AveragePool", [1, 3, 14, 14], opset=10, kernel_shape=[3, 3], strides=[2, 2],
         ceil_mode=1)
    pool("avgpool_2x2_s2_ceil_odd", "AveragePool", [1, 3, 9, 7], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    pool("avgpool_7x7_s1_on_7x7", "AveragePool", [1, 16, 7, 7], opset=9, kernel_shape=[7, 7], strides=[1, 1])
    pool("avgpool_3x3_s2_pad1", "AveragePool", [1, 4, 12, 12], kernel_shape=[3, 3], strides=[2, 2],
         pads=[1, 1, 1, 1])
    pool("avgpool_3x3_s2_pad1_include_pad", "AveragePool", [1, 4, 11, 11], kernel_shape=[3, 3], strides=[2, 2],
         pads=[1, 1, 1, 1], count_include_pad=1)
    pool("avgpool_2x2_s2", "AveragePool", [2, 3, 8, 8], opset=9, kernel_shape=[2, 2], strides=[2, 2])
    pool("avgpool_1d_k3_s1_pad1", "AveragePool", [1, 3, 11], kernel_shape=[3], pads=[1, 1])

    # ---- GlobalAveragePool / GlobalMaxPool ------------------------------------------------------
    pool("global_avgpool", "GlobalAveragePool", [1, 8, 6, 6], opset=9)
    pool("global_avgpool_5x3_batch2", "GlobalAveragePool", [2, 4, 5, 3], opset=13)
    pool("global_avgpool_1x1", "GlobalAveragePool", [1, 10, 1, 1], opset=13)

    # ---- Gemm -----------------------------------------------------------------------------------
    def gemm(name, m, k, n, c_shape=None, trans_a=0, trans_b=1, opset=11, b_input=False, **attrs):
        o.begin(name)
        a = o.normal(*([k, m] if trans_a else [m, k]))
        b = o.normal(*([n, k] if trans_b else [k, n]), scale=np.sqrt(1.0 / k))
        inputs = {"a": a}
        inits = {}
        (inputs if b_input else inits)["b"] = b
        ins = ["a", "b"]
        if c_shape is not None:
            inits["c"] = o.uniform(-1.0, 1.0, *c_shape)
            ins.append("c")
        if trans_a:
            attrs["transA"] = 1
        if trans_b:
            attrs["transB"] = 1
        o.case(name, [N("Gemm", ins, ["y"], **attrs)], inputs, inits, opset=opset)

    gemm("gemm_transb_bias_n", 5, 37, 16, [16], opset=9)
    gemm("gemm_transa", 5, 37, 16, [16], trans_a=1, trans_b=0)
    gemm("gemm_transa_transb", 5, 37, 16, [16], trans_a=1, trans_b=1)
    gemm("gemm_no_trans", 5, 37, 16, [16], trans_b=0)
    gemm("gemm_alpha0.5_beta2", 5, 37, 16, [5, 16], alpha=0.5, beta=2.0)
    gemm("gemm_c_mxn", 5, 37, 16, [5, 16])
    gemm("gemm_c_1xn", 5, 37, 16, [1, 16])
    gemm("gemm_c_scalar", 5, 37, 16, [])
    gemm("gemm_c_mx1", 5, 37, 16, [5, 1])
    gemm("gemm_no_c", 5, 37, 16, None)
    gemm("gemm_no_c_opset13", 3, 24, 8, None, opset=13)
    gemm("gemm_m1_k100_n10", 1, 100, 10, [10], opset=9)
    gemm("gemm_m1_k1000_n100", 1, 1000, 100, [100])  # classifier-head sized
    gemm("gemm_m5_k64_n32", 5, 64, 32, [32])
    gemm("gemm_k_not_multiple_of_8", 3, 13, 7, [7])
    gemm("gemm_b_is_graph_input", 4, 19, 6, [6], b_input=True)

    # ---- shape ops ------------------------------------------------------------------------------
    def reshape(name, x_shape, shape, opset):
        o.begin(name)
        o.case(name, [N("Reshape", ["x", "shape"], ["y"])], {"x": o.normal(*x_shape)}, {"shape": i64(*shape)},
               opset=opset)

    reshape("reshape_0_minus1_opset5", [2, 3, 4, 5], [0, -1], 5)
    reshape("reshape_0_0_minus1", [2, 3, 4, 5], [0, 0, -1], 13)
    reshape("reshape_minus1_first", [2, 3, 4, 5], [-1, 4, 5], 13)
    reshape("reshape_explicit_4d_to_2d", [1, 8, 1, 1], [1, 8], 9)  # classifier-head pattern
    reshape("reshape_to_5d_shuffle", [1, 6, 4, 4], [1, 2, 3, 4, 4], 9)

    def simple(name, op, x_shape, opset, inits=None, extra_inputs=(), **attrs):
        o.begin(name)
        ins = ["x"] + list(extra_inputs)
        o.case(name, [N(op, ins, ["y"], **attrs)], {"x": o.normal(*x_shape)}, inits, opset=opset)

    simple("flatten_axis1", "Flatten", [2, 3, 4, 5], 9, axis=1)
    simple("flatten_axis2", "Flatten", [2, 3, 4, 5], 13, axis=2)
    simple("flatten_axis0", "Flatten", [2, 3, 4], 11, axis=0)
    simple("flatten_default_axis", "Flatten", [2, 8, 1, 1], 9)
    simple("squeeze_opset11_axes_attr", "Squeeze", [1, 3, 1, 5], 11, axes=[0, 2])
    simple("squeeze_opset11_no_axes", "Squeeze", [1, 3, 1, 5], 11)
    simple("squeeze_opset13_axes_input", "Squeeze", [1, 3, 1, 5], 13, {"axes": i64(-2)}, ["axes"])
    simple("unsqueeze_opset11_axes_attr", "Unsqueeze", [4], 11, axes=[1, 2])  # densenet [C] -> [C,1,1]
    simple("unsqueeze_opset9_axes_attr", "Unsqueeze", [3, 5], 9, axes=[0])
    simple("unsqueeze_opset13_axes_input", "Unsqueeze", [3, 4, 5], 13, {"axes": i64(0, 3)}, ["axes"])
    simple("unsqueeze_opset13_negative_axes", "Unsqueeze", [3, 4], 13, {"axes": i64(-1)}, ["axes"])
    simple("identity", "Identity", [2, 3, 4], 13)
    simple("dropout_opset9_ratio_attr", "Dropout", [2, 3, 4, 5], 9, ratio=0.5)
    simple("dropout_opset7", "Dropout", [2, 10], 7, ratio=0.4)
    simple("dropout_opset13_inference", "Dropout", [2, 3, 4, 5], 13)
    simple("dropout_opset13_ratio_input", "Dropout", [2, 3, 4, 5], 13, {"ratio": np.array(0.5, np.float32)},
           ["ratio"])
    simple("transpose_0231", "Transpose", [1, 3, 4, 5], 13, perm=[0, 2, 3, 1])
    simple("transpose_default_perm_reverse", "Transpose", [2, 3, 4], 13)
    simple("transpose_5d_channel_shuffle", "Transpose", [1, 2, 3, 4, 4], 9, perm=[0, 2, 1, 3, 4])
    simple("transpose_2d", "Transpose", [7, 5], 13, perm=[1, 0])

    # ---- Softmax --------------------------------------------------------------------------------
    simple("softmax_axis1_2d", "Softmax", [3, 10], 13, axis=1)
    simple("softmax_default_axis_opset9", "Softmax", [2, 100], 9)
    simple("softmax_axis1_4d_opset11_flatten", "Softmax", [1, 10, 2, 3], 11, axis=1)
    simple("softmax_axis1_4d_opset13_single_axis", "Softmax", [1, 10, 2, 3], 13, axis=1)
    simple("softmax_default_axis_4d_opset13", "Softmax", [1, 10, 2, 3], 13)  # default axis -1
    simple("softmax_axis_minus1", "Softmax", [2, 3, 7], 13, axis=-1)
    simple("softmax_squeezenet_4d_opset9", "Softmax", [1, 20, 1, 1], 9)
    o.begin("softmax_large_logits")
    o.case("softmax_large_logits", [N("Softmax", ["x"], ["y"], axis=1)], {"x": o.normal(2, 10, scale=50.0)})

    # ---- Concat ---------------------------------------------------------------------------------
    def concat(name, shapes, axis, opset=11):
        o.begin(name)
        inputs = {f"x{k}": o.normal(*s) for k, s in enumerate(shapes)}
        o.case(name, [N("Concat", list(inputs), ["y"], axis=axis)], inputs, opset=opset)

    concat("concat_axis0_2_inputs", [[2, 3, 4, 5], [1, 3, 4, 5]], 0)
    concat("concat_axis1_2_inputs_opset5", [[1, 3, 4, 5], [1, 5, 4, 5]], 1, opset=5)
    concat("concat_axis1_5_inputs", [[1, c, 4, 4] for c in (1, 2, 3, 4, 5)], 1)
    concat("concat_axis3_2_inputs", [[1, 2, 3, 4], [1, 2, 3, 6]], 3)
    concat("concat_axis_minus1_2_inputs", [[2, 3, 4], [2, 3, 5]], -1)
    concat("concat_axis_minus1_5_inputs", [[2, 3, k] for k in (1, 2, 3, 4, 5)], -1, opset=13)
    concat("concat_single_input", [[1, 3, 4, 4]], 1, opset=13)

    # ---- BatchNormalization ---------------------------------------------------------------------
    def bn_params(c):
        return {
            "scale": o.uniform(0.5, 1.5, c),
            "bias": o.uniform(-0.5, 0.5, c),
            "mean": o.uniform(-0.5, 0.5, c),
            "var": o.uniform(0.5, 1.5, c),
        }

    def bn(name, x_shape, opset, **attrs):
        o.begin(name)
        x = o.normal(*x_shape)
        o.case(name, [N("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], **attrs)], {"x": x},
               bn_params(x_shape[1]), opset=opset)

    bn("batchnorm_opset9", [2, 6, 5, 5], 9)
    bn("batchnorm_opset15", [2, 6, 5, 5], 15)
    bn("batchnorm_opset15_epsilon1e-3", [1, 6, 4, 3], 15, epsilon=1e-3)
    bn("batchnorm_opset14_2d", [4, 6], 14)
    bn("batchnorm_opset7_spatial", [1, 4, 5, 5], 7, spatial=1)

    # ---- LRN ------------------------------------------------------------------------------------
    # Inputs scaled so that the normalisation term is not negligible. Tolerance: default; the
    # pow(…, 0.75) stays well within rtol 1e-4 in float32.
    o.begin("lrn_size5_alexnet")
    o.case("lrn_size5_alexnet", [N("LRN", ["x"], ["y"], size=5, alpha=1e-4, beta=0.75, bias=1.0)],
           {"x": o.normal(1, 16, 7, 7, scale=30.0)}, opset=9)
    o.begin("lrn_size5_zfnet_bias2")
    o.case("lrn_size5_zfnet_bias2", [N("LRN", ["x"], ["y"], size=5, alpha=5e-4, beta=0.75, bias=2.0)],
           {"x": o.normal(1, 12, 6, 6, scale=30.0)}, opset=9)
    o.begin("lrn_size3_bias2")
    o.case("lrn_size3_bias2", [N("LRN", ["x"], ["y"], size=3, alpha=0.1, beta=0.75, bias=2.0)],
           {"x": o.normal(2, 8, 5, 5, scale=3.0)}, opset=13)
    # No even size: onnxruntime's CPU LRN rejects it (size % 2 == 1 is asserted).

    # ---- element-wise binary --------------------------------------------------------------------
    def rhs(op, *shape):
        return o.nonzero(*shape) if op == "Div" else o.normal(*shape)

    for op in ("Add", "Sub", "Mul", "Div"):
        lo = op.lower()
        name = f"{lo}_same_shape"
        o.begin(name)
        o.case(name, [N(op, ["a", "b"], ["y"])], {"a": o.normal(2, 3, 4, 5), "b": rhs(op, 2, 3, 4, 5)})
        name = f"{lo}_broadcast_const_c11"
        o.begin(name)
        o.case(name, [N(op, ["x", "c"], ["y"])], {"x": o.normal(2, 6, 4, 5)}, {"c": rhs(op, 6, 1, 1)})
        name = f"{lo}_scalar_const"
        o.begin(name)
        o.case(name, [N(op, ["x", "c"], ["y"])], {"x": o.normal(2, 3, 4)}, {"c": rhs(op)})
        name = f"{lo}_bidirectional_broadcast"
        o.begin(name)
        o.case(name, [N(op, ["a", "b"], ["y"])], {"a": o.normal(2, 1, 4), "b": rhs(op, 1, 3, 1)})
    o.begin("add_const_first_operand")
    o.case("add_const_first_operand", [N("Add", ["c", "x"], ["y"])], {"x": o.normal(1, 4, 3, 3)},
           {"c": o.normal(4, 1, 1)})
    o.begin("sub_const_first_operand")
    o.case("sub_const_first_operand", [N("Sub", ["c", "x"], ["y"])], {"x": o.normal(1, 4, 3, 3)},
           {"c": o.normal(1, 4, 1, 1)})
    o.begin("div_scalar_const_numerator")
    o.case("div_scalar_const_numerator", [N("Div", ["c", "x"], ["y"])], {"x": o.nonzero(2, 5)},
           {"c": np.array(3.0, np.float32)})
    o.begin("mul_opset7_broadcast")
    o.case("mul_opset7_broadcast", [N("Mul", ["x", "c"], ["y"])], {"x": o.normal(1, 6, 3, 3)},
           {"c": o.uniform(0.5, 1.5, 6, 1, 1)}, opset=7)

    def variadic(name, op, shapes, opset=13):
        o.begin(name)
        inputs = {f"x{k}": o.normal(*s) for k, s in enumerate(shapes)}
        o.case(name, [N(op, list(inputs), ["y"])], inputs, opset=opset)

    variadic("sum_1_input", "Sum", [[2, 3, 4]])
    variadic("sum_2_inputs_opset9", "Sum", [[1, 8, 5, 5]] * 2, opset=9)  # resnet/shufflenet shortcut
    variadic("sum_3_inputs", "Sum", [[2, 3, 4]] * 3)
    variadic("sum_3_inputs_broadcast", "Sum", [[2, 3, 4], [3, 1], [4]])
    variadic("max_3_inputs", "Max", [[2, 3, 4]] * 3)
    variadic("max_2_inputs_broadcast", "Max", [[2, 3, 4], [1, 4]])
    variadic("min_2_inputs", "Min", [[2, 3, 4]] * 2)
    variadic("min_3_inputs_broadcast", "Min", [[3, 1], [2, 3, 4], [4]])
    variadic("max_1_input", "Max", [[5, 6]])

    # ---- constants and shape arithmetic ---------------------------------------------------------
    o.begin("constant_of_shape_add")
    o.case(
        "constant_of_shape_add",
        [
            N("ConstantOfShape", ["shape"], ["c"], value=numpy_helper.from_array(np.array([0.25], np.float32))),
            N("Add", ["x", "c"], ["y"]),
        ],
        {"x": o.normal(1, 4, 5, 5)},
        {"shape": i64(1, 4, 5, 5)},
        opset=9,
        what="ConstantOfShape with a constant shape feeding Add (constant folding)",
    )
    o.begin("constant_of_shape_default_value_add")
    o.case(
        "constant_of_shape_default_value_add",
        [N("ConstantOfShape", ["shape"], ["c"]), N("Add", ["x", "c"], ["y"])],
        {"x": o.normal(2, 3)},
        {"shape": i64(3)},
        opset=13,
        what="ConstantOfShape without value attribute (zeros), broadcast in Add",
    )
    o.begin("constant_of_shape_conv_weight")
    o.case(
        "constant_of_shape_conv_weight",
        [
            N("ConstantOfShape", ["wshape"], ["w"], value=numpy_helper.from_array(np.array([0.02], np.float32))),
            N("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1]),
        ],
        {"x": o.normal(1, 3, 6, 6)},
        {"wshape": i64(4, 3, 3, 3), "b": o.uniform(-0.5, 0.5, 4)},
        opset=9,
        what="the light zoo models' weight pattern: ConstantOfShape(0.02) as Conv weight",
    )
    for opset in (11, 13):
        name = f"shape_gather_unsqueeze_concat_reshape_opset{opset}"
        o.begin(name)
        inits = {"idx0": np.array(0, np.int64), "minus1": i64(-1)}
        if opset >= 13:
            inits["axes0"] = i64(0)
            unsq = N("Unsqueeze", ["n", "axes0"], ["n1"])
        else:
            unsq = N("Unsqueeze", ["n"], ["n1"], axes=[0])
        o.case(
            name,
            [
                N("Shape", ["x"], ["s"]),
                N("Gather", ["s", "idx0"], ["n"], axis=0),
                unsq,
                N("Concat", ["n1", "minus1"], ["shape"], axis=0),
                N("Reshape", ["x", "shape"], ["y"]),
            ],
            {"x": o.normal(2, 3, 4, 5)},
            inits,
            opset=opset,
            what="exporter flatten pattern x.view(x.size(0), -1), static input shape",
        )

    # ---- fusion patterns ------------------------------------------------------------------------
    o.begin("fuse_conv_relu")
    o.case(
        "fuse_conv_relu",
        [N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["y"])],
        {"x": o.normal(1, 4, 8, 8)},
        {"w": o.he(8, 4, 3, 3), "b": o.uniform(-0.5, 0.5, 8)},
        opset=11,
    )
    o.begin("fuse_gemm_relu")
    o.case(
        "fuse_gemm_relu",
        [N("Gemm", ["a", "b", "c"], ["g"], transB=1), N("Relu", ["g"], ["y"])],
        {"a": o.normal(2, 50)},
        {"b": o.normal(20, 50, scale=np.sqrt(1 / 50)), "c": o.uniform(-0.5, 0.5, 20)},
        opset=11,
    )
    o.begin("fuse_conv_mul_add_relu")
    o.case(
        "fuse_conv_mul_add_relu",
        [
            N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            N("Mul", ["c", "s"], ["m"]),
            N("Add", ["m", "t"], ["a"]),
            N("Relu", ["a"], ["y"]),
        ],
        {"x": o.normal(1, 4, 7, 7)},
        {"w": o.he(6, 4, 3, 3), "s": o.uniform(0.5, 1.5, 6, 1, 1), "t": o.uniform(-0.5, 0.5, 6, 1, 1)},
        opset=9,
        what="densenet's scale pattern (there after BatchNormalization)",
    )
    o.begin("fuse_bn_mul_add_relu_conv_densenet")
    c = 6
    o.case(
        "fuse_bn_mul_add_relu_conv_densenet",
        [
            N("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"]),
            N("Unsqueeze", ["sw"], ["sw4"], axes=[1, 2]),
            N("Unsqueeze", ["sb"], ["sb4"], axes=[1, 2]),
            N("Mul", ["bn", "sw4"], ["m"]),
            N("Add", ["m", "sb4"], ["a"]),
            N("Relu", ["a"], ["r"]),
            N("Conv", ["r", "w"], ["y"], pads=[1, 1, 1, 1]),
        ],
        {"x": o.normal(1, c, 6, 6)},
        {**bn_params(c), "sw": o.uniform(0.5, 1.5, c), "sb": o.uniform(-0.5, 0.5, c), "w": o.he(4, c, 3, 3)},
        opset=9,
        what="densenet121 block: BN -> Mul(Unsqueeze(const)) -> Add(Unsqueeze(const)) -> Relu -> Conv",
    )
    o.begin("fuse_conv_bn_relu")
    o.case(
        "fuse_conv_bn_relu",
        [
            N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            N("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"]),
            N("Relu", ["bn"], ["y"]),
        ],
        {"x": o.normal(1, 4, 8, 8)},
        {"w": o.he(6, 4, 3, 3), "b": o.uniform(-0.5, 0.5, 6), **bn_params(6)},
        opset=9,
    )
    o.begin("fuse_conv_bn_nobias_opset15")
    o.case(
        "fuse_conv_bn_nobias_opset15",
        [
            N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
            N("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"], epsilon=1e-3),
        ],
        {"x": o.normal(1, 4, 9, 9)},
        {"w": o.he(6, 4, 3, 3), **bn_params(6)},
        opset=15,
    )
    o.begin("no_fuse_conv_output_is_graph_output")
    o.case(
        "no_fuse_conv_output_is_graph_output",
        [
            N("Conv", ["x", "w", "b"], ["conv_out"], pads=[1, 1, 1, 1]),
            N("BatchNormalization", ["conv_out", "scale", "bias", "mean", "var"], ["bn_out"]),
        ],
        {"x": o.normal(1, 4, 6, 6)},
        {"w": o.he(6, 4, 3, 3), "b": o.uniform(-0.5, 0.5, 6), **bn_params(6)},
        outputs=["bn_out", "conv_out"],
        opset=9,
        what="Conv -> BN where the conv output is also a graph output (must not be fused away)",
    )
    o.begin("no_fuse_conv_output_two_consumers")
    o.case(
        "no_fuse_conv_output_two_consumers",
        [
            N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            N("Relu", ["c"], ["r"]),
            N("Sigmoid", ["c"], ["s"]),
            N("Add", ["r", "s"], ["y"]),
        ],
        {"x": o.normal(1, 3, 6, 6)},
        {"w": o.he(4, 3, 3, 3), "b": o.uniform(-0.5, 0.5, 4)},
        opset=13,
        what="conv output read by two nodes: Relu must not be fused into the Conv",
    )
    o.begin("fuse_conv_bn_sum_relu_residual")
    o.case(
        "fuse_conv_bn_sum_relu_residual",
        [
            N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            N("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"]),
            N("Sum", ["bn", "x"], ["s"]),
            N("Relu", ["s"], ["y"]),
        ],
        {"x": o.normal(1, 6, 7, 7)},
        {"w": o.he(6, 6, 3, 3), **bn_params(6)},
        opset=9,
        what="resnet residual block tail",
    )
    o.begin("channel_shuffle_reshape_transpose_reshape")
    o.case(
        "channel_shuffle_reshape_transpose_reshape",
        [
            N("Reshape", ["x", "s5"], ["r5"]),
            N("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
            N("Reshape", ["t5", "s4"], ["y"]),
        ],
        {"x": o.normal(1, 12, 5, 5)},
        {"s5": i64(1, 3, 4, 5, 5), "s4": i64(1, 12, 5, 5)},
        opset=9,
        what="shufflenet channel shuffle (groups 3)",
    )
    o.begin("head_gap_reshape_gemm_softmax")
    o.case(
        "head_gap_reshape_gemm_softmax",
        [
            N("GlobalAveragePool", ["x"], ["g"]),
            N("Reshape", ["g", "shape"], ["f"]),
            N("Gemm", ["f", "w", "b"], ["logits"], transB=1),
            N("Softmax", ["logits"], ["prob"]),
        ],
        {"x": o.normal(1, 32, 7, 7)},
        {"shape": i64(1, -1), "w": o.normal(10, 32, scale=np.sqrt(1 / 32) * 4), "b": o.uniform(-0.1, 0.1, 10)},
        outputs=["prob", "logits"],
        opset=9,
        what="classifier head as in resnet50",
    )
    o.begin("head_conv_relu_gap_softmax_squeezenet")
    o.case(
        "head_conv_relu_gap_softmax_squeezenet",
        [
            N("Conv", ["x", "w", "b"], ["c"]),
            N("Relu", ["c"], ["r"]),
            N("GlobalAveragePool", ["r"], ["g"]),
            N("Softmax", ["g"], ["y"]),
        ],
        {"x": o.normal(1, 16, 5, 5)},
        {"w": o.he(10, 16, 1, 1), "b": o.uniform(-0.1, 0.1, 10)},
        opset=9,
        what="squeezenet classifier head (softmax on [1,C,1,1])",
    )
    o.begin("inception_branches_concat")
    o.case(
        "inception_branches_concat",
        [
            N("Conv", ["x", "w1", "b1"], ["c1"]),
            N("Relu", ["c1"], ["r1"]),
            N("Conv", ["x", "w3", "b3"], ["c3"], pads=[1, 1, 1, 1]),
            N("Relu", ["c3"], ["r3"]),
            N("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
            N("Concat", ["r1", "r3", "p"], ["y"], axis=1),
        ],
        {"x": o.normal(1, 4, 6, 6)},
        {"w1": o.he(3, 4, 1, 1), "b1": o.uniform(-0.5, 0.5, 3), "w3": o.he(5, 4, 3, 3),
         "b3": o.uniform(-0.5, 0.5, 5)},
        opset=9,
        what="inception module: parallel branches concatenated on channels",
    )

    return o.cases, o.disagreements


# --------------------------------------------------------------------------------------------
# d) external data


def gen_external(out: str) -> tuple[list[str], list[dict]]:
    name = "external_conv_relu"
    rng = np.random.default_rng(seed_of("external/" + name))
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    w = (rng.standard_normal((4, 3, 3, 3)) * np.sqrt(2 / 27)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, 4).astype(np.float32)
    opsets = [helper.make_opsetid("", 13)]
    graph = helper.make_graph(
        [N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["y"])],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model, full_check=True)
    (y,) = ort_run(model, {"x": x})

    ext = os.path.join(out, "external")
    ok = os.path.join(ext, "ok")
    write_case(ok, name, "tools/gen_testdata.py external: Conv+Relu with weights in ok/weights.bin; "
               f"expected from onnxruntime {ort.__version__} CPU", model, [("x", x)], [("y", y)], 1e-4, 1e-5)
    # Re-save model.onnx (written inline by write_case) with every tensor in weights.bin.
    onnx.save_model(model, os.path.join(ok, "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    ext_model = onnx.load(os.path.join(ok, "model.onnx"), load_external_data=False)
    for t in ext_model.graph.initializer:
        assert t.data_location == TensorProto.EXTERNAL and not t.HasField("raw_data"), t.name
    (y2,) = ort_run(os.path.join(ok, "model.onnx"), {"x": x})
    np.testing.assert_array_equal(y, y2)

    # A real weights.bin one level above escape_dotdot/, so the only reason to fail is the escape.
    shutil.copyfile(os.path.join(ok, "weights.bin"), os.path.join(ext, "weights.bin"))
    bad = []
    for case, location, expect in (
        ("escape_dotdot", "../weights.bin", "escape"),
        ("escape_abs", "/etc/hostname", "escape"),
        ("missing", "weights.bin", "missing"),
    ):
        m = onnx.ModelProto()
        m.CopyFrom(ext_model)
        for t in m.graph.initializer:
            for e in t.external_data:
                if e.key == "location":
                    e.value = location
        d = os.path.join(ext, case)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.onnx"), "wb") as fh:
            fh.write(m.SerializeToString())
        bad.append({"path": f"external/{case}/model.onnx", "expect": expect})
    return ["external/ok"], bad


# --------------------------------------------------------------------------------------------


def run_task(task: tuple[str, str, str]):
    kind, out, arg = task
    t0 = time.time()
    if kind == "zoo":
        rel, note = zoo_case(out, arg)
        return kind, [rel], note, time.time() - t0
    if kind == "zoo_random":
        rel, note = zoo_random_case(out, arg)
        return kind, [rel], note, time.time() - t0
    if kind == "ops":
        cases, disagreements = gen_ops(out)
        return kind, cases, disagreements, time.time() - t0
    if kind == "external":
        cases, bad = gen_external(out)
        return kind, cases, bad, time.time() - t0
    raise ValueError(kind)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out = os.path.abspath(sys.argv[1])
    t0 = time.time()
    # Build into a sibling folder and swap it in at the end, so a failed run leaves no
    # half-written tree behind.
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)

    tasks = [("zoo_random", tmp, m) for m in HEAVY_FIRST[:3]]
    tasks += [("ops", tmp, ""), ("external", tmp, "")]
    tasks += [("zoo_random", tmp, m) for m in HEAVY_FIRST[3:]]
    tasks += [("zoo", tmp, m) for m in HEAVY_FIRST]
    procs = max(1, min(4, os.cpu_count() or 1))
    manifest: dict[str, list] = {"zoo": [], "zoo_random": [], "ops": [], "external": [], "external_bad": []}
    notes = []
    with multiprocessing.get_context("fork").Pool(procs, maxtasksperchild=1) as pool:
        for kind, cases, extra, secs in pool.imap_unordered(run_task, tasks):
            manifest[kind] += cases
            if kind == "zoo_random":
                notes.append(f"  zoo_random/{os.path.basename(cases[0])}: {extra} ({secs:.1f}s)")
            elif kind == "ops":
                notes += [f"  warning: {d}" for d in extra]
                notes.append(f"  ops: {len(cases)} cases ({secs:.1f}s)")
            elif kind == "external":
                manifest["external_bad"] = extra
            elif kind == "zoo":
                notes.append(f"  zoo/{os.path.basename(cases[0])}: onnxruntime matches stored output ({secs:.1f}s)")
    for k in ("zoo", "zoo_random", "ops", "external"):
        manifest[k].sort()
        if k in ("zoo", "zoo_random"):
            assert len(manifest[k]) == len(LIGHT_MODELS), manifest[k]
    manifest["external_bad"].sort(key=lambda e: e["path"])
    with open(os.path.join(tmp, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")

    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    for line in sorted(notes):
        print(line, file=sys.stderr)
    counts = ", ".join(f"{k} {len(v)}" for k, v in manifest.items())
    print(f"gen_testdata: {counts} cases written to {out} in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
