#!/usr/bin/env python3
"""jetrt against onnxruntime on every benchmark model, at 1 and 2 threads, as one table.

    tools/bench_models.py [--threads 1,2] [--precision fp32,int8] [--iterations N] [--rounds N] [--only NAME,...] [--json OUT]

Runs tools/bench_vs_ort.py (fresh processes, alternating rounds, medians) for each model:
the real-model cases of tools/gen_realmodels.py (ResNet-18, MobileNet v2 and v3,
EfficientNet-B0, the transformer encoder, PP-OCRv5 det, rec and cls, and the YOLOv8n-style
detector (320x320), RegNetX-like network and ViT-Tiny-style encoder of
tools/gen_bench_models.py; target/testdata/real)
and ResNet-50 (target/testdata/zoo_random),
and prints the table docs/PERFORMANCE.md records: model, threads, precision, jetrt p50,
onnxruntime p50, ratio. onnxruntime always runs the fp32 model: the bar for jetrt int8 is
onnxruntime fp32 (int8 calibrates on random inputs of the benchmark's kind: its speed, not its
accuracy, is measured here; tools/bench_quant.py measures both).
Needs tools/gen_testdata.sh and `cargo build --release -p jetrt-tools`.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL = ["resnet18_op17", "mobilenet_v2_op17", "mobilenet_v3_small_op17", "efficientnet_b0_op17", "transformer_encoder_op17",
        "ppocrv5_det", "ppocrv5_rec", "ppocrv5_cls", "yolov8n_style", "regnetx_002", "vit_tiny_style"]


def models():
    out = []
    for name in REAL:
        d = os.path.join(ROOT, "target/testdata/real", name)
        case = json.load(open(os.path.join(d, "case.json")))
        out.append((name.removesuffix("_op17"), os.path.join(d, "model.onnx"), case.get("input_shapes") or []))
    out.append(("resnet50", os.path.join(ROOT, "target/testdata/zoo_random/light_resnet50/model.onnx"), []))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", default="fp32", help="comma-separated: fp32, int8")
    ap.add_argument("--only", default=None, help="comma-separated model names")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None
    rows = []
    print("| model | threads | jetrt precision | jetrt p50 ms | onnxruntime fp32 p50 ms | jetrt / onnxruntime |")
    print("|---|---|---|---|---|---|")
    for name, path, shapes in models():
        if only and name not in only:
            continue
        if not os.path.exists(path):
            sys.exit(f"{path} missing: run tools/gen_testdata.sh")
        for prec in a.precision.split(","):
            for t in [int(x) for x in a.threads.split(",")]:
                cmd = [sys.executable, os.path.join(ROOT, "tools/bench_vs_ort.py"), path, "--threads", str(t), "--iterations", str(a.iterations),
                       "--rounds", str(a.rounds), "--name", name, "--precision", prec] + [f"--input-shape={s}" for s in shapes]
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode != 0:
                    # One model that does not convert (or run) at this
                    # precision is a row that says so, not a lost table.
                    why = (run.stderr.strip().splitlines() or ["?"])[-1]
                    rows.append({"model": name, "threads": t, "precision": prec, "error": why})
                    print(f"| {name} | {t} | {prec} | failed: {why} | | |")
                    sys.stdout.flush()
                    continue
                r = json.loads(run.stdout.strip().splitlines()[-1])
                row = {"model": name, "threads": t, "precision": prec, "jetrt_p50_ms": r["jetrt"]["p50_ms"], "ort_p50_ms": r["onnxruntime"]["p50_ms"],
                       "ratio": r["p50_ratio_jetrt_over_ort"]}
                rows.append(row)
                print(f"| {name} | {t} | {prec} | {row['jetrt_p50_ms']:.2f} | {row['ort_p50_ms']:.2f} | {row['ratio']:.2f} |")
                sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if any("error" in r for r in rows):
        sys.exit("some rows failed (see the table)")


if __name__ == "__main__":
    main()
