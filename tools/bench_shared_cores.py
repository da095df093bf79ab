#!/usr/bin/env python3
"""jetrt and onnxruntime when the cores are shared, as on a Jetson running a camera pipeline.

    tools/bench_shared_cores.py [--models regnetx_002,resnet50] [--iterations N] [--rounds N]
                                [--jetrt PATH] [--jetc PATH] [--json OUT]

For each model (regnetx_002: many small steps, made by tools/gen_bench_models.py; resnet50: the
onnx model zoo's, random weights, from tools/gen_testdata.sh), p50 latency of jetrt and of
onnxruntime (CPUExecutionProvider, intra_op_num_threads = N, sequential) in five settings:

    quiet            1 and 2 threads, nothing else running
    one core         `taskset -c 0`, 1 and 2 threads: two threads share one core
    busy core        2 threads while another process spins on core 1 (`taskset -c 1`)
(cores 0 and 1 here mean the first two this process may use).

Each setting runs both runtimes in alternating rounds in fresh processes, and reports medians.
The checks of issue 26 are printed at the end: under `taskset -c 0`, jetrt at 2 threads within
1.3x of jetrt at 1; with a busy core, jetrt at 2 threads within 1.5x of onnxruntime at 2.
Needs 2 or more cores (`taskset` from util-linux) and `cargo build --release -p jetrt-tools`.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from bench_vs_ort import ORT_CHILD  # noqa: E402  (the same onnxruntime child process)

MODELS = {
    "regnetx_002": lambda: os.path.join(ROOT, "target/bench/regnetx_002.onnx"),
    "resnet50": lambda: os.path.join(ROOT, "target/testdata/zoo_random/light_resnet50/model.onnx"),
}

SETTINGS = [
    ("quiet", 1, None, False),
    ("quiet", 2, None, False),
    ("one core (taskset -c 0)", 1, "first", False),
    ("one core (taskset -c 0)", 2, "first", False),
    ("busy core 1", 2, None, True),
]


def prepare(name, path, work):
    import numpy as np
    import onnx

    if name == "regnetx_002" and not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools/gen_bench_models.py"), os.path.dirname(path)], check=True)
    if not os.path.exists(path):
        sys.exit(f"{path} missing: run tools/gen_testdata.sh")
    jrt = os.path.join(work, f"{name}.jrt")
    subprocess.run([ARGS.jetc, "convert", path, "-o", jrt, "--quiet"], check=True)
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(0)
    feeds, args = {}, []
    for k, x in enumerate(i for i in m.graph.input if i.name not in inits):
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim]
        v = rng.standard_normal(shape).astype(np.float32)
        p = os.path.join(work, f"{name}_input_{k}.npy")
        np.save(p, v)
        feeds[x.name] = v
        args += ["--input", f"{x.name}={p}"]
    feeds_path = os.path.join(work, f"{name}_feeds.npz")
    np.savez(feeds_path, **feeds)
    return jrt, args, feeds_path


def pinned(cmd, cpus):
    # "first": the first CPU this process may use (CPU 0 on an unpinned machine).
    if cpus == "first":
        cpus = str(CPUS[0])
    return (["taskset", "-c", cpus] if cpus else []) + cmd


def run_jetrt(jrt, args, threads, cpus):
    cmd = [ARGS.jetrt, "bench", jrt, "--json", "--threads", str(threads), "--iterations", str(ARGS.iterations),
           "--warmup", str(ARGS.warmup), "--device", "cpu"] + args
    return json.loads(subprocess.run(pinned(cmd, cpus), check=True, capture_output=True, text=True).stdout)["p50_ms"]


def run_ort(model, feeds, threads, cpus):
    cmd = [sys.executable, "-c", ORT_CHILD, model, feeds, str(threads), str(ARGS.iterations), str(ARGS.warmup)]
    return json.loads(subprocess.run(pinned(cmd, cpus), check=True, capture_output=True, text=True).stdout)["p50_ms"]


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="regnetx_002,resnet50")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jetc", default=os.path.join(ROOT, "target/release/jetc"))
    ap.add_argument("--jetrt", default=os.path.join(ROOT, "target/release/jetrt"))
    ap.add_argument("--json", default=None, help="also write the results here")
    ARGS = ap.parse_args()
    global CPUS
    CPUS = sorted(os.sched_getaffinity(0))
    if len(CPUS) < 2:
        sys.exit("needs 2 cores or more")
    for tool in (ARGS.jetc, ARGS.jetrt):
        if not os.path.exists(tool):
            sys.exit(f"{tool} not found: run `cargo build --release -p jetrt-tools` first")
    work = tempfile.mkdtemp(prefix="jetrt-shared-")
    med = lambda xs: sorted(xs)[len(xs) // 2]
    results = []
    print("| model | setting | threads | jetrt p50 ms | onnxruntime p50 ms | jetrt / onnxruntime |")
    print("|---|---|---|---|---|---|")
    for name in ARGS.models.split(","):
        path = MODELS[name]()
        jrt, args, feeds = prepare(name, path, work)
        for setting, threads, cpus, busy in SETTINGS:
            spinner = None
            if busy:
                spinner = subprocess.Popen(["taskset", "-c", str(CPUS[1]), sys.executable, "-c", "while True: pass"])
            try:
                jets, orts = [], []
                for _ in range(ARGS.rounds):
                    jets.append(run_jetrt(jrt, args, threads, cpus))
                    orts.append(run_ort(path, feeds, threads, cpus))
            finally:
                if spinner:
                    spinner.kill()
                    spinner.wait()
            j, o = med(jets), med(orts)
            ratio = med([a / b for a, b in zip(jets, orts)])
            results.append({"model": name, "setting": setting, "threads": threads, "jetrt_p50_ms": j, "ort_p50_ms": o, "ratio": ratio})
            print(f"| {name} | {setting} | {threads} | {j:.2f} | {o:.2f} | {ratio:.2f} |")
            sys.stdout.flush()
    print()
    ok = True
    for name in ARGS.models.split(","):
        r = {(x["setting"], x["threads"]): x for x in results if x["model"] == name}
        one = r[("one core (taskset -c 0)", 2)]["jetrt_p50_ms"] / r[("one core (taskset -c 0)", 1)]["jetrt_p50_ms"]
        busy = r[("busy core 1", 2)]["ratio"]
        for what, value, bound in [("taskset -c 0: 2 threads / 1 thread", one, 1.3), ("busy core: jetrt / onnxruntime at 2 threads", busy, 1.5)]:
            good = value <= bound
            ok &= good
            print(f"{name}: {what} = {value:.2f} (bound {bound}): {'ok' if good else 'OVER'}")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
