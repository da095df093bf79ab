#!/usr/bin/env python3
"""Benchmarks jetrt against onnxruntime on the same model, inputs, thread count and machine.

    tools/bench_vs_ort.py MODEL.onnx [--threads N] [--iterations N] [--warmup N] [--jetrt PATH] [--jetc PATH]
        [--precision fp32|int8 [--calib-samples N]]

Converts MODEL.onnx with jetc, writes one deterministic input per model input (standard normal,
seed 0), then runs `jetrt bench --json` and onnxruntime (CPUExecutionProvider, intra_op_num_threads
= N, sequential execution, default graph optimisations) each in a fresh process, and prints a
markdown table and a JSON line. Load time is open/validate + session creation (jetrt) versus
InferenceSession construction (onnxruntime); peak RSS is the process's VmHWM. The two
runtimes run in alternating rounds (--rounds, default 3) and medians are reported, because a
shared machine drifts by tens of percent between minutes. onnxruntime runs
inside Python: the RSS of the interpreter with numpy and onnxruntime imported (before any session)
is reported as its baseline.
"""
import argparse, json, os, subprocess, sys, tempfile

ORT_CHILD = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort

def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024

model, feeds_path, threads, iters, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
feeds = dict(np.load(feeds_path))
baseline = rss()
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
t = time.perf_counter()
s = ort.InferenceSession(model, so, providers=['CPUExecutionProvider'])
load_ms = (time.perf_counter() - t) * 1e3
t = time.perf_counter(); s.run(None, feeds); first = (time.perf_counter() - t) * 1e3
for _ in range(warmup):
    s.run(None, feeds)
times = []
for _ in range(iters):
    t = time.perf_counter(); s.run(None, feeds); times.append((time.perf_counter() - t) * 1e3)
times.sort()
pct = lambda p: times[min(len(times) - 1, round(p / 100 * (len(times) - 1)))]
print(json.dumps({"load_ms": load_ms, "first_run_ms": first, "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
                  "mean_ms": sum(times) / len(times), "peak_rss_bytes": rss(), "baseline_rss_bytes": baseline,
                  "version": ort.__version__}))
"""


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--jetc", default=os.path.join(root, "target/release/jetc"))
    ap.add_argument("--jetrt", default=os.path.join(root, "target/release/jetrt"))
    ap.add_argument("--name", default=None)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of both runtimes (medians are reported)")
    ap.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                    help="fix a dynamic input's shape (passed to jetc; onnxruntime gets inputs of that shape)")
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32",
                    help="jetrt's precision (onnxruntime always runs the fp32 model: the issue's bar for int8 is "
                         "onnxruntime fp32); int8 calibrates on --calib-samples inputs of the benchmark's kind")
    ap.add_argument("--calib-samples", type=int, default=8)
    a = ap.parse_args()

    import numpy as np
    import onnx

    for tool in (a.jetc, a.jetrt):
        if not os.path.exists(tool):
            sys.exit(f"{tool} not found: run `cargo build --release -p jetrt-tools` first")
    work = tempfile.mkdtemp(prefix="jetrt-bench-")
    jrt = os.path.join(work, "model.jrt")
    shapes = {}
    for spec in a.input_shape:
        name, dims = spec.rsplit("=", 1)
        shapes[name] = [int(d) for d in dims.split(",")]
    m = onnx.load(a.model, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    graph_inputs = [i for i in m.graph.input if i.name not in inits]

    def sample(x, rng):
        shape = shapes.get(x.name) or [d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim]
        if x.type.tensor_type.elem_type == onnx.TensorProto.INT64:
            return rng.integers(0, 100, size=shape).astype(np.int64)  # token ids
        return rng.standard_normal(shape).astype(np.float32)

    convert = [a.jetc, "convert", a.model, "-o", jrt, "--quiet"] + [f"--input-shape={s}" for s in a.input_shape]
    if a.precision == "int8":
        # Calibration inputs drawn like the benchmark's input (other seeds):
        # the speed does not depend on how well the ranges fit.
        calib = os.path.join(work, "calib")
        os.makedirs(calib)
        for k in range(a.calib_samples):
            rng = np.random.default_rng(1000 + k)
            for x in graph_inputs:
                safe = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in x.name)
                np.save(os.path.join(calib, f"{safe}.{k}.npy"), sample(x, rng))
        convert += ["--precision", "int8", "--calib", calib]
    subprocess.run(convert, check=True)

    rng = np.random.default_rng(0)
    feeds, args = {}, []
    for k, x in enumerate(graph_inputs):
        v = sample(x, rng)
        p = os.path.join(work, f"input_{k}.npy")
        np.save(p, v)
        feeds[x.name] = v
        args += ["--input", f"{x.name}={p}"]
    feeds_path = os.path.join(work, "feeds.npz")
    np.savez(feeds_path, **feeds)

    # Rounds alternate the two runtimes, so that both see the same machine
    # conditions; each figure is the median over rounds, and the ratio is
    # the median of the per-round ratios.
    jets, orts = [], []
    for _ in range(a.rounds):
        jets.append(json.loads(subprocess.run([a.jetrt, "bench", jrt, "--json", "--threads", str(a.threads), "--iterations", str(a.iterations),
                                               "--warmup", str(a.warmup), "--device", "cpu"] + args, check=True, capture_output=True, text=True).stdout))
        orts.append(json.loads(subprocess.run([sys.executable, "-c", ORT_CHILD, a.model, feeds_path, str(a.threads), str(a.iterations), str(a.warmup)],
                                              check=True, capture_output=True, text=True).stdout))
    med = lambda xs: sorted(xs)[len(xs) // 2]
    def combine(runs):
        out = dict(runs[0])
        for key in ("load_ms", "first_run_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "peak_rss_bytes"):
            out[key] = med([r[key] for r in runs])
        return out
    jet, ort = combine(jets), combine(orts)
    ratio = med([j["p50_ms"] / o["p50_ms"] for j, o in zip(jets, orts)])
    name = (a.name or os.path.basename(a.model)) + (" int8" if a.precision == "int8" else "")
    mib = lambda b: f"{b / 2**20:.1f} MiB"
    print(f"| model | runtime | threads | load ms | first run ms | p50 ms | p90 ms | p99 ms | peak RSS |")
    print(f"|---|---|---|---|---|---|---|---|---|")
    print(f"| {name} | jetrt {jet['isa']} | {jet['threads']} | {jet['load_ms']:.1f} | {jet['first_run_ms']:.1f} | {jet['p50_ms']:.2f} | {jet['p90_ms']:.2f} | {jet['p99_ms']:.2f} | {mib(jet['peak_rss_bytes'])} |")
    print(f"| {name} | onnxruntime {ort['version']} | {a.threads} | {ort['load_ms']:.1f} | {ort['first_run_ms']:.1f} | {ort['p50_ms']:.2f} | {ort['p90_ms']:.2f} | {ort['p99_ms']:.2f} | {mib(ort['peak_rss_bytes'])} (Python baseline {mib(ort['baseline_rss_bytes'])}) |")
    print(f"p50 ratio jetrt/onnxruntime: {ratio:.2f} (median of {a.rounds} alternating rounds; per round: "
          + ", ".join(f"{j['p50_ms'] / o['p50_ms']:.2f}" for j, o in zip(jets, orts)) + ")")
    sys.stdout.flush()
    print(json.dumps({"model": name, "threads": a.threads, "precision": a.precision, "rounds": a.rounds, "jetrt": jet, "onnxruntime": ort, "p50_ratio_jetrt_over_ort": ratio}))


if __name__ == "__main__":
    main()
