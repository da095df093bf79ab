#!/usr/bin/env python3
"""Quantized jetrt against quantized onnxruntime: latency, size, memory and agreement, in one run
on one machine with the same threads and the same calibration data.

    tools/bench_quant.py MODEL.onnx --calib DIR --input-shape NAME=D0,... [--eval DIR]
        [--threads N] [--iterations N] [--rounds N] [--max-drop X] [--name NAME]

Variants: jetrt fp32, int8 (jetc --precision int8 --calib DIR --calib-method percentile
[--max-drop X]) and int4 (--precision int4 --calib DIR); onnxruntime fp32, int8 static
(quantize_static, QDQ, per-channel, same calibration samples, MinMax), int8 dynamic
(quantize_dynamic) and int4 (MatMulNBits, block 32). Models whose weights are Constant nodes
(PaddlePaddle exports) get them as initializers first, so that onnxruntime's quantizers see them.

Agreement: every variant's output on the --eval samples (default: the calibration samples)
against onnxruntime fp32: cosine similarity and top-1 agreement along the last axis. Timing:
`jetrt bench --json` and an onnxruntime child process per variant, alternating rounds, medians.
Prints a markdown table and a JSON line.
"""
import argparse, glob, json, os, subprocess, sys, tempfile, warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_vs_ort import ORT_CHILD  # noqa: E402


def main():
    root = os.path.dirname(HERE)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--calib", required=True)
    ap.add_argument("--eval", default=None, help="folder of input .npy files to compare outputs on (default: --calib)")
    ap.add_argument("--input-shape", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-drop", default=None)
    ap.add_argument("--name", default=None)
    a = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    sys.path.insert(0, HERE)
    from gen_ppocr_quant import with_initializers

    jetc, jetrt = os.path.join(root, "target/release/jetc"), os.path.join(root, "target/release/jetrt")
    work = tempfile.mkdtemp(prefix="jetrt-benchq-")
    name_in, dims = a.input_shape.rsplit("=", 1)
    calib = [np.load(p) for p in sorted(glob.glob(os.path.join(a.calib, "*.npy")))]
    evals = [np.load(p) for p in sorted(glob.glob(os.path.join(a.eval or a.calib, "*.npy")))][:16]

    # jetrt variants.
    jrts = {}
    for prec, extra in [("fp32", []), ("int8", ["--calib-method", "percentile"] + (["--max-drop", a.max_drop] if a.max_drop else [])), ("int4", ["--calib-method", "percentile"])]:
        out = os.path.join(work, f"{prec}.jrt")
        cmd = [jetc, "convert", a.model, "-o", out, "-q", f"--input-shape={a.input_shape}"]
        if prec != "fp32":
            cmd += ["--precision", prec, "--calib", a.calib] + extra
        subprocess.run(cmd, check=True)
        jrts[prec] = out

    # onnxruntime variants.
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    import onnx
    base = with_initializers(a.model, os.path.join(work, "fp32_init.onnx"))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name_in: c} for c in calib])

        def get_next(self):
            return next(self.it, None)

    onnxs = {"fp32": a.model}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnxs["int8 static QDQ"] = os.path.join(work, "ort_int8_static.onnx")
        quantize_static(base, onnxs["int8 static QDQ"], Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        onnxs["int8 dynamic"] = os.path.join(work, "ort_int8_dynamic.onnx")
        quantize_dynamic(base, onnxs["int8 dynamic"], weight_type=QuantType.QInt8)
        q = MatMulNBitsQuantizer(onnx.load(base), block_size=32, is_symmetric=True)
        q.process()
        onnxs["int4 MatMulNBits"] = os.path.join(work, "ort_int4.onnx")
        q.model.save_model_to_file(onnxs["int4 MatMulNBits"], use_external_data_format=False)

    # Agreement with onnxruntime fp32 on the eval samples.
    ref_sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    ref = [ref_sess.run(None, {name_in: x})[0] for x in evals]

    def agree(outs):
        a_, b_ = np.concatenate([r.ravel() for r in ref]).astype(np.float64), np.concatenate([o.ravel() for o in outs]).astype(np.float64)
        cos = float(a_ @ b_ / (np.linalg.norm(a_) * np.linalg.norm(b_) + 1e-30))
        top = float(np.mean(np.concatenate([(r.reshape(-1, r.shape[-1]).argmax(-1) == o.reshape(-1, o.shape[-1]).argmax(-1)) for r, o in zip(ref, outs)])))
        return cos, top

    rows = []
    feeds = os.path.join(work, "feeds.npz")
    np.savez(feeds, **{name_in: evals[0]})
    inp = os.path.join(work, "input.npy")
    np.save(inp, evals[0])
    for prec, path in jrts.items():
        outs = []
        for k, x in enumerate(evals):
            p = os.path.join(work, f"e{k}.npy")
            np.save(p, x)
            od = os.path.join(work, f"out_{prec}_{k}")
            subprocess.run([jetrt, "run", path, "--input", f"{name_in}={p}", "--output-dir", od, "--threads", "1"], check=True, capture_output=True)
            outs.append(np.load(sorted(glob.glob(os.path.join(od, "*.npy")))[0]))
        rows.append(("jetrt " + prec, path, agree(outs)))
    for label, path in onnxs.items():
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        rows.append(("onnxruntime " + label, path, agree([s.run(None, {name_in: x})[0] for x in evals])))

    # Timing, alternating rounds.
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    times = {r[0]: [] for r in rows}
    for _ in range(a.rounds):
        for label, path, _ in rows:
            if label.startswith("jetrt"):
                j = json.loads(subprocess.run([jetrt, "bench", path, "--json", "--threads", str(a.threads), "--iterations", str(a.iterations),
                                               "--warmup", str(a.warmup), "--device", "cpu", "--input", f"{name_in}={inp}"],
                                              check=True, capture_output=True, text=True).stdout)
            else:
                j = json.loads(subprocess.run([sys.executable, "-c", ORT_CHILD, path, feeds, str(a.threads), str(a.iterations), str(a.warmup)],
                                              check=True, capture_output=True, text=True).stdout)
            times[label].append(j)
    name = a.name or os.path.basename(a.model)
    onnx_bytes = os.path.getsize(a.model)
    print(f"| {name} | p50 ms | file | % of ONNX | peak RSS | cosine vs fp32 | top-1 agreement |")
    print("|---|---|---|---|---|---|---|")
    result = []
    for label, path, (cos, top) in rows:
        p50 = med([t["p50_ms"] for t in times[label]])
        rss = med([t["peak_rss_bytes"] for t in times[label]])
        size = os.path.getsize(path)
        base_rss = times[label][0].get("baseline_rss_bytes")
        rss_s = f"{rss / 2**20:.1f} MiB" + (f" (Python {base_rss / 2**20:.0f})" if base_rss else "")
        print(f"| {label} | {p50:.2f} | {size / 2**20:.2f} MiB | {100 * size / onnx_bytes:.1f}% | {rss_s} | {cos:.5f} | {100 * top:.2f}% |")
        result.append({"variant": label, "p50_ms": p50, "file_bytes": size, "peak_rss_bytes": rss, "cosine": cos, "top1_agreement": top})
    print(json.dumps({"model": name, "threads": a.threads, "rounds": a.rounds, "isa": times["jetrt fp32"][0].get("isa"), "results": result}))


if __name__ == "__main__":
    main()
