#!/usr/bin/env python3
"""Per-call overhead of jetrt's Python `run` against the Rust API and onnxruntime's Python `run`.

    tools/bench_python_overhead.py [--calls N] [--rounds N]

On the digits model (examples/digits: a few thousand MACs, so a call is almost all
overhead), one thread each, in one process, alternating rounds; prints medians of the
per-round means in microseconds:
  - jetrt from Rust: `jetrt bench`, Session::run_loaded on inputs set once (the mean),
  - jetrt Python: InferenceSession.run(None, feed) and run_into (outputs preallocated),
  - onnxruntime Python: InferenceSession.run(None, feed).
Needs the wheel installed (tools/test_python.sh) and `cargo build --release -p jetrt-tools`.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def per_call(fn, calls):
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    import jetrt
    import onnxruntime as ort

    onnx = os.path.join(ROOT, "examples", "digits", "model.onnx")
    x = np.load(os.path.join(ROOT, "examples", "digits", "digit_0.npy"))
    with tempfile.TemporaryDirectory() as d:
        jrt = os.path.join(d, "digits.jrt")
        subprocess.run([os.path.join(ROOT, "target", "release", "jetc"), "convert", onnx, "-o", jrt, "--quiet",
                        "--input-shape=image=1,1,8,8"], check=True)
        sess = jetrt.InferenceSession(jrt, device="cpu", threads=1)
        out = {"probabilities": np.empty((1, 10), np.float32)}
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        ref = ort.InferenceSession(onnx, so, providers=["CPUExecutionProvider"])
        rows = {"jetrt Rust API (jetrt bench: run_loaded)": [], "jetrt Python run": [], "jetrt Python run_into": [], "onnxruntime Python run": []}
        for _ in range(a.rounds):
            b = subprocess.run([os.path.join(ROOT, "target", "release", "jetrt"), "bench", jrt, "--threads", "1", "--iterations",
                                str(a.calls), "--json"], capture_output=True, text=True, check=True)
            rows["jetrt Rust API (jetrt bench: run_loaded)"].append(json.loads(b.stdout)["mean_ms"] * 1e3)
            rows["jetrt Python run"].append(per_call(lambda: sess.run(None, {"image": x}), a.calls))
            rows["jetrt Python run_into"].append(per_call(lambda: sess.run_into({"image": x}, out), a.calls))
            rows["onnxruntime Python run"].append(per_call(lambda: ref.run(None, {"image": x}), a.calls))
    print(f"| call ({a.calls} calls, median of {a.rounds} rounds) | µs per call |")
    print("|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {statistics.median(v):.2f} |")


if __name__ == "__main__":
    main()
