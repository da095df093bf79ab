#!/usr/bin/env python3
"""Models with real (trained) weights and labelled held-out data for the quantization and
pruning tests (tests/tests/quantization.rs).

    gen_quantdata.py OUT_DIR

OUT_DIR/digits_mlp: a 64-128-64-10 MLP trained here with scikit-learn's MLPClassifier on its
    bundled 8x8 digits (seeded, a few seconds), exported by hand as MatMul+Add+Relu ... Softmax
    (opset 13, input "x" [N,64] = pixels/16, output "probabilities" [N,10]).
OUT_DIR/digits_cnn: examples/digits/model.onnx (the README's CNN, trained by
    tools/make_example.py) with the held-out split that script used.

Each folder: model.onnx, calib/<input>.K.npy (64 training samples, batch 1), test_x.npy,
test_y.npy (the held-out split), and meta.json with the float accuracy (onnxruntime) and the
accuracy of onnxruntime's own int8 (quantize_static, QDQ, per-channel, same calibration
samples, MinMax) for comparison.
"""

import json
import os
import sys
import warnings

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20261127
CALIB = 64
EXAMPLE_SEED = 20240611  # tools/make_example.py's seed: its first draw is the split


def accuracy(model_path, x, y, name):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (p,) = sess.run(None, {name: x})
    return float(np.mean(p.argmax(1) == y))


def ort_int8(src, dst, calib, name):
    """onnxruntime's static int8: QDQ, per-channel weights, the same calibration samples."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: c} for c in calib])

        def get_next(self):
            return next(self.it, None)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)


def write_case(out, model, name, x_tr, x_te, y_te):
    os.makedirs(os.path.join(out, "calib"), exist_ok=True)
    path = os.path.join(out, "model.onnx")
    onnx.save(model, path)
    calib = [np.ascontiguousarray(x_tr[i : i + 1]) for i in range(CALIB)]
    for k, c in enumerate(calib):
        np.save(os.path.join(out, "calib", f"{name}.{k}.npy"), c, allow_pickle=False)
    np.save(os.path.join(out, "test_x.npy"), np.ascontiguousarray(x_te), allow_pickle=False)
    np.save(os.path.join(out, "test_y.npy"), y_te.astype(np.int64), allow_pickle=False)
    fp32 = accuracy(path, x_te, y_te, name)
    q = os.path.join(out, "ort_int8.onnx")
    ort_int8(path, q, calib, name)
    int8 = accuracy(q, x_te, y_te, name)
    meta = {"input": name, "test_samples": len(y_te), "ort_fp32_accuracy": fp32, "ort_int8_qdq_accuracy": int8,
            "onnx_bytes": os.path.getsize(path)}
    json.dump(meta, open(os.path.join(out, "meta.json"), "w"), indent=1)
    print(f"{os.path.basename(out)}: fp32 {fp32 * 100:.2f}%, onnxruntime int8 {int8 * 100:.2f}% on {len(y_te)} held-out")


def mlp(out):
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    n_test = int(len(x) * 0.3)
    te, tr = order[:n_test], order[n_test:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(128, 64), max_iter=300, random_state=SEED, alpha=1e-4)
        clf.fit(x[tr], y[tr])
    inits, nodes = [], []
    h = "x"
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"W{i}"), numpy_helper.from_array(b.astype(np.float32), f"B{i}")]
        nodes += [helper.make_node("MatMul", [h, f"W{i}"], [f"mm{i}"]), helper.make_node("Add", [f"mm{i}", f"B{i}"], [f"z{i}"])]
        h = f"z{i}"
        if i + 1 < len(clf.coefs_):
            nodes.append(helper.make_node("Relu", [h], [f"h{i}"]))
            h = f"h{i}"
    nodes.append(helper.make_node("Softmax", [h], ["probabilities"], axis=1))
    graph = helper.make_graph(nodes, "digits_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8,
                              producer_name="jetrt tools/gen_quantdata.py")
    onnx.checker.check_model(model, full_check=True)
    write_case(out, model, "x", x[tr], x[te], y[te])


def cnn(out):
    d = load_digits()
    x = (d.images / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(EXAMPLE_SEED).permutation(len(x))
    n_test = len(x) // 5
    te, tr = order[:n_test], order[n_test:]
    model = onnx.load(os.path.join(ROOT, "examples", "digits", "model.onnx"))
    write_case(out, model, "image", x[tr], x[te], y[te])


def main():
    out = sys.argv[1]
    mlp(os.path.join(out, "digits_mlp"))
    cnn(os.path.join(out, "digits_cnn"))


if __name__ == "__main__":
    main()
