#!/usr/bin/env python3
"""Per-step times of jetrt against onnxruntime's per-node profile, on one model.

    tools/profile_vs_ort.py MODEL.onnx MODEL.jrt --shape 1,3,224,224 [--threads 1] [--iterations 40] [--top 25]

Runs onnxruntime with profiling (all graph optimizations, so its nodes are the
fused NCHWc ones) and `jetrt bench --profile --json` on the converted file, matches
each jetrt step to the onnxruntime nodes that produce its output (by output name;
onnxruntime's fused nodes carry their output's name), and prints the steps where
jetrt loses the most time: step, op, jetrt ms, onnxruntime ms, jetrt GFLOP/s, output.
Steps without a match show onnxruntime as "-" (it fused or removed them).

Needs the venv of tools/setup_venv.sh and `cargo build --release -p jetrt-tools`.
"""
import argparse
import collections
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ort_profile(model, shape, threads, iterations):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(os.environ.get("TMPDIR", "/tmp"), "jetrt_profile_vs_ort")
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    for _ in range(5):
        s.run(None, feed)
    # The warm-up runs are in the profile too: count every run.
    runs = 5 + iterations
    for _ in range(iterations):
        s.run(None, feed)
    path = s.end_profiling()
    per = collections.defaultdict(float)
    with open(path) as f:
        for e in json.load(f):
            name = e.get("name", "")
            if e.get("cat") == "Node" and name.endswith("_kernel_time"):
                per[name[: -len("_kernel_time")].removesuffix("_nchwc")] += e["dur"] / runs / 1000.0
    os.remove(path)
    return per


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx")
    ap.add_argument("jrt")
    ap.add_argument("--shape", required=True, help="the first input's shape, e.g. 1,3,224,224")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--jetrt", default=os.path.join(ROOT, "target", "release", "jetrt"))
    a = ap.parse_args()
    if not os.path.isfile(a.jetrt):
        sys.exit(f"{a.jetrt} not found: cargo build --release -p jetrt-tools")
    shape = [int(x) for x in a.shape.split(",")]
    per = ort_profile(a.onnx, shape, a.threads, a.iterations)
    out = subprocess.run(
        [a.jetrt, "bench", a.jrt, "--threads", str(a.threads), "--profile", "--json", "--iterations", str(a.iterations)],
        capture_output=True, text=True, check=True).stdout
    steps = json.loads(out)["profile"]["steps"]
    rows = []
    for st in steps:
        o = st["output"]
        match = [k for k in per if k == o or k.startswith(o + "_")]
        ort_ms = sum(per[k] for k in match) if match else None
        rows.append((st["ms"] - (ort_ms or 0.0), st, ort_ms))
    rows.sort(key=lambda r: -r[0])
    print(f"total per run: jetrt {sum(s['ms'] for s in steps):.2f} ms (steps), onnxruntime {sum(per.values()):.2f} ms (nodes), {a.threads} thread(s)")
    print("| step | op | jetrt ms | onnxruntime ms | jetrt GFLOP/s | output |")
    print("|---|---|---|---|---|---|")
    for _, st, ort_ms in rows[: a.top]:
        o = "-" if ort_ms is None else f"{ort_ms:.3f}"
        print(f"| {st['step']} | {st['op']} | {st['ms']:.3f} | {o} | {st['gflops']:.1f} | {st['output']} |")


if __name__ == "__main__":
    main()
