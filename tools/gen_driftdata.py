#!/usr/bin/env python3
"""Test data for drift monitoring (tests/tests/drift.rs): a colour-digits classifier and
sample streams, undrifted and drifted.

    gen_driftdata.py OUT_DIR

Real data: scikit-learn's 8x8 handwritten digits, rendered in colour the way a camera would see
a printed digit: a bright warm stroke on a dark blue ground, each image with its own ink and
paper colour, lighting gain and sensor noise. A CNN (Conv-Relu-MaxPool-Conv-Relu-Flatten-Gemm-
Softmax, input `image` [N,3,8,8]) is trained on 60 % of the digits with plain numpy
(tools/make_example.py's layers), seeded, and checked against onnxruntime. The reference
samples and the streams are drawn (with fresh colours) from the other 40 %.

Writes OUT_DIR/:
  model.onnx                 the classifier (batch dimension "N")
  ref/image.K.npy            500 reference samples (held-out digits), for jetc --drift-ref
  stream.npy                 [20000,1,3,8,8] held-out digits, fresh colours: no drift
  drift_<kind>.npy           [400,1,3,8,8] held-out digits drifted by brightness, contrast,
                             blur, noise, channel_swap
  gradual.npy, gradual_clean.npy
                             [4000,1,3,8,8] the same held-out images with and without a
                             drift that grows linearly from nothing (dimming and blur)
  dir_ok/, dir_drift/        200 samples each as image.K.npy, for `jetrt drift --input-dir`
  meta.json                  accuracy, counts, drift parameters
"""

from __future__ import annotations

import json
import os
import sys

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_example as mx  # noqa: E402

SEED = 20261127
EPOCHS = 25
REF = 500
STREAM = 20000
DRIFTED = 400
GRADUAL = 4000
DIR_SAMPLES = 200


def colourize(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N,8,8] digits in [0,1] -> [N,1,3,8,8] colour images in [0,1]."""
    n = len(d)
    ground = np.array([0.15, 0.20, 0.45]) + rng.normal(0, 0.04, (n, 3))
    ink = np.array([0.95, 0.75, 0.25]) + rng.normal(0, 0.04, (n, 3))
    gain = rng.uniform(0.9, 1.1, (n, 1, 1, 1))
    img = ground[:, :, None, None] + (ink - ground)[:, :, None, None] * d[:, None, :, :]
    img = img * gain + rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)[:, None]


def blur(x: np.ndarray, strength: float) -> np.ndarray:
    """3x3 box blur mixed in with weight `strength` (edge-replicated)."""
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    box = sum(p[..., i : i + 8, j : j + 8] for i in range(3) for j in range(3)) / 9.0
    return (1 - strength) * x + strength * box


DRIFTS = {
    # kind: (function of (images, rng), description)
    "brightness": (lambda x, r: np.clip(x + 0.15, 0, 1), "+0.15 on every pixel (overexposure)"),
    "contrast": (lambda x, r: np.clip(0.5 + (x - 0.5) * 0.6, 0, 1), "contrast x0.6 about mid-grey"),
    "blur": (lambda x, r: blur(x, 1.0), "3x3 box blur (out of focus)"),
    "noise": (lambda x, r: np.clip(x + r.normal(0, 0.08, x.shape), 0, 1), "Gaussian noise, sigma 0.08"),
    "channel_swap": (lambda x, r: x[:, :, ::-1].copy(), "RGB read as BGR"),
}


class ColourNet(mx.Net):
    def __init__(self, rng):
        super().__init__(rng)
        self.p["conv1.weight"] = rng.standard_normal((8, 3, 3, 3)) * np.sqrt(2.0 / 27)


def train(x_tr, y_tr, rng):
    return mx.train(x_tr, y_tr, rng, net=ColourNet(rng), epochs=EPOCHS, halve_every=10, log=None)


def export(params):
    return mx.export(params, channels=3, name="colour_digits_cnn",
                     doc="8x8 colour-rendered digit classifier, trained by tools/gen_driftdata.py",
                     producer="jetrt tools/gen_driftdata.py")


def save_dir(path, images):
    os.makedirs(path, exist_ok=True)
    for k, img in enumerate(images):
        np.save(os.path.join(path, f"image.{k}.npy"), np.ascontiguousarray(img))


def main() -> None:
    out = sys.argv[1]
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    d = digits.images / 16.0
    y = digits.target.astype(np.int64)
    # The reference and the streams come from digits the model was not trained on (it is more
    # confident on those it was, so a reference from them would differ from any new data), and
    # from the same ones: a split of the few held-out digits would differ in its mix of classes
    # by chance (up to 2x for a class), a real shift in the class frequencies.
    order = rng.permutation(len(d))
    n_held = 2 * len(d) // 5
    te, tr = order[:n_held], order[n_held:]
    rf = te

    # Two colourings of each training digit.
    x_tr = np.concatenate([colourize(d[tr], rng), colourize(d[tr], rng)])[:, 0].astype(np.float64)
    y_tr = np.concatenate([y[tr], y[tr]])
    net = train(x_tr, y_tr, rng)
    params = {k: v.astype(np.float32) for k, v in net.p.items()}
    net.p = {k: v.astype(np.float64) for k, v in params.items()}
    x_te = colourize(d[te], rng)
    pred = net.forward(x_te[:, 0].astype(np.float64)).argmax(1)
    acc = float(np.mean(pred == y[te]))
    print(f"colour digits: test accuracy {acc * 100:.1f}%", file=sys.stderr)
    assert acc > 0.9, acc

    model = export(params)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (p_ort,) = sess.run(["probabilities"], {"image": x_te[:, 0]})
    assert np.array_equal(p_ort.argmax(1), pred), "onnxruntime and numpy disagree"

    os.makedirs(out, exist_ok=True)
    onnx.save(model, os.path.join(out, "model.onnx"))
    ref = colourize(d[rf][rng.integers(0, len(rf), REF)], rng)
    save_dir(os.path.join(out, "ref"), ref)

    def held_out(n):
        return colourize(d[te][rng.integers(0, len(te), n)], rng)

    np.save(os.path.join(out, "stream.npy"), held_out(STREAM))
    meta = {"accuracy": acc, "ref": REF, "stream": STREAM, "drifted": DRIFTED, "gradual": GRADUAL, "drifts": {}}
    for kind, (f, what) in DRIFTS.items():
        np.save(os.path.join(out, f"drift_{kind}.npy"), f(held_out(DRIFTED), rng).astype(np.float32))
        meta["drifts"][kind] = what

    # Gradual: dimming (gain from 1 down to 0.5) and blur (0 to 1), linear in the sample index.
    clean = held_out(GRADUAL)
    t = np.linspace(0, 1, GRADUAL, dtype=np.float64)[:, None, None, None, None]
    drifted = blur(clean * (1 - 0.5 * t), 1.0)
    drifted = (1 - t) * clean * (1 - 0.5 * t) + t * drifted
    np.save(os.path.join(out, "gradual_clean.npy"), clean)
    np.save(os.path.join(out, "gradual.npy"), drifted.astype(np.float32))
    meta["gradual_drift"] = "sample k of N: gain 1 - 0.5 k/N and a 3x3 box blur mixed in with weight k/N"

    save_dir(os.path.join(out, "dir_ok"), held_out(DIR_SAMPLES))
    save_dir(os.path.join(out, "dir_drift"), DRIFTS["brightness"][0](held_out(DIR_SAMPLES), rng).astype(np.float32))
    with open(os.path.join(out, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    print(f"drift data in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
