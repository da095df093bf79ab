#!/usr/bin/env python3
"""Trains the small digits CNN of the README's quick start and writes examples/digits/.

    py=$(tools/setup_venv.sh tools/requirements-examples.txt) && "$py" tools/make_example.py

The 8x8 digits data set ships with scikit-learn (used for nothing else). The network is trained
with plain numpy (im2col convolutions, hand-written backward pass, Adam), everything seeded,
BLAS single-threaded, so a rerun on the same machine writes the same files:

    image [N,1,8,8] in [0,1] -> Conv 3x3 pad 1 (8) -> Relu -> MaxPool 2x2 -> Conv 3x3 pad 1 (16)
    -> Relu -> Flatten -> Gemm (10) -> Softmax -> probabilities [N,10]

Writes examples/digits/model.onnx (opset 13, batch dimension "N"), digit_K.npy (three test
images, [1,1,8,8] float32) and README.md; checks the model with onnx.checker and onnxruntime.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # bitwise-reproducible BLAS sums

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "examples", "digits")
SEED = 20240611
EPOCHS = 40
BATCH = 32
LR = 3e-3
SAMPLES = 3


# ---- layers (float64 for training) ----------------------------------------------------------


def im2col(x: np.ndarray) -> np.ndarray:
    """[B,C,H,W] -> [B, C*9, H*W] for a 3x3 kernel, pad 1, stride 1."""
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((b, c, 3, 3, h, w), x.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, i, j] = xp[:, :, i : i + h, j : j + w]
    return cols.reshape(b, c * 9, h * w)


def col2im(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    b, c, h, w = shape
    cols = cols.reshape(b, c, 3, 3, h, w)
    xp = np.zeros((b, c, h + 2, w + 2), cols.dtype)
    for i in range(3):
        for j in range(3):
            xp[:, :, i : i + h, j : j + w] += cols[:, :, i, j]
    return xp[:, :, 1:-1, 1:-1]


def conv_fwd(x, w, b):
    cols = im2col(x)
    co = w.shape[0]
    y = np.einsum("ok,bkp->bop", w.reshape(co, -1), cols) + b[None, :, None]
    return y.reshape(x.shape[0], co, x.shape[2], x.shape[3]), cols


def conv_bwd(dy, cols, w, x_shape):
    bsz, co = dy.shape[:2]
    dy = dy.reshape(bsz, co, -1)
    dw = np.einsum("bop,bkp->ok", dy, cols).reshape(w.shape)
    db = dy.sum(axis=(0, 2))
    dcols = np.einsum("ok,bop->bkp", w.reshape(co, -1), dy)
    return col2im(dcols, x_shape), dw, db


def maxpool_fwd(x):
    b, c, h, w = x.shape
    r = x.reshape(b, c, h // 2, 2, w // 2, 2)
    y = r.max(axis=(3, 5))
    # one winner per window (the first maximum), as any max-pool backward picks
    flat = r.transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    mask = np.zeros_like(flat)
    np.put_along_axis(mask, flat.argmax(axis=-1)[..., None], 1.0, axis=-1)
    return y, mask


def maxpool_bwd(dy, mask):
    b, c, h2, w2 = dy.shape
    d = mask * dy[..., None]
    return d.reshape(b, c, h2, w2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h2 * 2, w2 * 2)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Net:
    def __init__(self, rng: np.random.Generator):
        def he(*shape):
            return rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))

        self.p = {
            "conv1.weight": he(8, 1, 3, 3),
            "conv1.bias": np.zeros(8),
            "conv2.weight": he(16, 8, 3, 3),
            "conv2.bias": np.zeros(16),
            "fc.weight": rng.standard_normal((10, 256)) * np.sqrt(1.0 / 256),  # [out, in]: Gemm transB=1
            "fc.bias": np.zeros(10),
        }

    def forward(self, x, train=False):
        p = self.p
        c1, cols1 = conv_fwd(x, p["conv1.weight"], p["conv1.bias"])
        r1 = np.maximum(c1, 0)
        m1, mask = maxpool_fwd(r1)
        c2, cols2 = conv_fwd(m1, p["conv2.weight"], p["conv2.bias"])
        r2 = np.maximum(c2, 0)
        f = r2.reshape(x.shape[0], -1)
        z = f @ p["fc.weight"].T + p["fc.bias"]
        if not train:
            return softmax(z)
        return z, (x, c1, cols1, mask, m1, c2, cols2, f)

    def grads(self, x, y):
        p = self.p
        z, (x, c1, cols1, mask, m1, c2, cols2, f) = self.forward(x, train=True)
        prob = softmax(z)
        loss = -np.mean(np.log(prob[np.arange(len(y)), y] + 1e-12))
        dz = prob
        dz[np.arange(len(y)), y] -= 1
        dz /= len(y)
        g = {"fc.weight": dz.T @ f, "fc.bias": dz.sum(0)}
        dr2 = (dz @ p["fc.weight"]).reshape(c2.shape) * (c2 > 0)
        dm1, g["conv2.weight"], g["conv2.bias"] = conv_bwd(dr2, cols2, p["conv2.weight"], m1.shape)
        dr1 = maxpool_bwd(dm1, mask) * (c1 > 0)
        _, g["conv1.weight"], g["conv1.bias"] = conv_bwd(dr1, cols1, p["conv1.weight"], x.shape)
        return loss, g


def train(x_tr, y_tr, rng, net: Net | None = None, epochs: int = EPOCHS, halve_every: int = 15, log=print) -> Net:
    """Adam on mini-batches; the learning rate halves every `halve_every` epochs."""
    net = net if net is not None else Net(rng)
    m = {k: np.zeros_like(v) for k, v in net.p.items()}
    v = {k: np.zeros_like(a) for k, a in net.p.items()}
    b1, b2, step = 0.9, 0.999, 0
    for epoch in range(epochs):
        order = rng.permutation(len(x_tr))
        lr = LR * (0.5 ** (epoch // halve_every))
        losses = []
        for s in range(0, len(order), BATCH):
            idx = order[s : s + BATCH]
            loss, g = net.grads(x_tr[idx], y_tr[idx])
            losses.append(loss)
            step += 1
            for k in net.p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                mh = m[k] / (1 - b1**step)
                vh = v[k] / (1 - b2**step)
                net.p[k] -= lr * mh / (np.sqrt(vh) + 1e-8)
        if log and (epoch % 10 == 9 or epoch == epochs - 1):
            log(f"epoch {epoch + 1:2d}: loss {np.mean(losses):.4f}")
    return net


# ---- export ---------------------------------------------------------------------------------


def export(params: dict[str, np.ndarray], channels: int = 1, name: str = "digits_cnn",
           doc: str = "8x8 handwritten digit classifier (scikit-learn digits), trained by tools/make_example.py",
           producer: str = "jetrt tools/make_example.py") -> onnx.ModelProto:
    inits = [numpy_helper.from_array(a, k) for k, a in params.items()]
    nodes = [
        helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["conv1"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"]),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv2"], ["relu2"]),
        helper.make_node("Flatten", ["relu2"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        inits,
        doc_string=doc,
    )
    opsets = [helper.make_opsetid("", 13)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets),
                              producer_name=producer)
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    x = (digits.images / 16.0).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    order = rng.permutation(len(x))
    n_test = len(x) // 5
    te, tr = order[:n_test], order[n_test:]

    net = train(x[tr], y[tr], rng)
    params = {k: v.astype(np.float32) for k, v in net.p.items()}
    net.p = {k: v.astype(np.float64) for k, v in params.items()}  # evaluate what gets exported

    x_te = x[te].astype(np.float32)
    prob_np = net.forward(x_te.astype(np.float64))
    pred_np = prob_np.argmax(1)
    acc = float(np.mean(pred_np == y[te]))
    print(f"test accuracy {acc * 100:.1f}% ({int(np.sum(pred_np == y[te]))}/{len(te)})")
    assert acc > 0.9, acc

    model = export(params)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (prob_ort,) = sess.run(["probabilities"], {"image": x_te})
    assert np.array_equal(prob_ort.argmax(1), pred_np), "onnxruntime and numpy predictions differ"
    np.testing.assert_allclose(prob_ort, prob_np, rtol=1e-4, atol=1e-5)

    # Sample images: the first test images of distinct labels that are classified confidently.
    samples = []
    for k in range(len(te)):
        label = int(y[te[k]])
        if pred_np[k] == label and prob_np[k].max() > 0.9 and label not in [s[1] for s in samples]:
            samples.append((k, label))
        if len(samples) == SAMPLES:
            break

    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.startswith("digit_") and name.endswith(".npy"):
            os.remove(os.path.join(OUT, name))
    onnx.save(model, os.path.join(OUT, "model.onnx"))
    labels = []
    for i, (k, label) in enumerate(samples):
        img = np.ascontiguousarray(x_te[k : k + 1])  # [1,1,8,8]
        np.save(os.path.join(OUT, f"digit_{i}.npy"), img, allow_pickle=False)
        (p,) = sess.run(["probabilities"], {"image": img})
        labels.append(label)
        print(f"digit_{i}.npy: label {label}, onnxruntime says {int(p.argmax())} ({p.max():.3f})")

    with open(os.path.join(OUT, "README.md"), "w") as fh:
        fh.write(
            "A 3.8k-parameter CNN (Conv-Relu-MaxPool-Conv-Relu-Flatten-Gemm-Softmax, opset 13, input `image` "
            "[N,1,8,8] in [0,1], output `probabilities` [N,10]) for scikit-learn's 8x8 handwritten digits, "
            f"{acc * 100:.1f}% accuracy on {len(te)} held-out images.\n"
            "Made by `tools/make_example.py` (trained with plain numpy, fixed seed); the sample images "
            + ", ".join(f"`digit_{i}.npy`" for i in range(len(labels)))
            + " ([1,1,8,8] float32) are labelled "
            + ", ".join(str(lab) for lab in labels)
            + ".\n"
        )
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
