#!/usr/bin/env python3
"""The GPU check: run on a machine with an NVIDIA GPU (see tools/gpu-check.sh).

1. conformance: every op case under --cases (default target/testdata/ops) is
   converted with jetc and run by jetrt on the cpu and the cuda backend; the
   outputs must agree with each other and with onnxruntime's expected output.
   node: the ONNX backend node cases of the ops in --node-ops (those the
   models below do not reach: Cast, ConvTranspose, Gather, ...), on both
   backends; the outputs must agree wherever the CPU agrees with onnx.
2. models: the torchvision graphs in tools/models/torchvision, filled with
   seeded random weights (fill_weights.py), converted, run on both backends
   and compared (max abs difference, cosine); ResNet-18 and MobileNet v2
   also as int8 and int4 files and pruned (weights stored sparse), and a small
   int8 CNN made here (int8 MaxPool); their fp32 files also with --fp16 on
   the GPU (opt-in: JETRT_CUDA_UNVERIFIED=1), cosine >= 0.9999 to the CPU
   (tools/fp16_rounding.py: the same rounding on the CPU gives 0.9999999
   for ResNet-18, 0.9999993 for MobileNet v2).
3. benchmarks: ResNet-18 and MobileNet v2 with `jetrt bench --device cuda`
   (fp32, --fp16, int8, int4)
   and with PyTorch (eager and CUDA graphs, fp32 and fp16) on the same GPU
   in the same run: p50 latency (input copied up and output copied down in
   both), GPU memory in use, and the time from process start to the first
   result.

Needs numpy and onnx; PyTorch + torchvision for the benchmark part (it is
skipped with a message without them). Writes a JSON summary to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def convert(jetc, onnx_path, jrt, shapes, extra=()):
    cmd = [jetc, "convert", onnx_path, "-o", jrt, "--quiet", *extra]
    for name, shape in shapes.items():
        cmd += ["--input-shape", f"{name}={','.join(str(d) for d in shape)}"]
    r = sh(cmd)
    if r.returncode != 0:
        raise RuntimeError(f"jetc convert failed: {r.stderr.strip()[-500:]}")


# fp16 on the GPU is opt-in until this script has passed on a GPU.
FP16_ENV = dict(os.environ, JETRT_CUDA_UNVERIFIED="1")


def run(jetrt, jrt, inputs, out_dir, device, extra=(), env=None):
    cmd = [jetrt, "run", jrt, "--output-dir", out_dir, "--device", device, *extra]
    for name, path in inputs.items():
        cmd += ["--input", f"{name}={path}"]
    t = time.perf_counter()
    r = sh(cmd, env=env)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"jetrt run --device {device} failed: {r.stderr.strip()[-800:]}")
    return wall


def sanitize(name):
    return "".join(c if (c.isalnum() or c in "_.-") else "_" for c in name)


def compare(a, b):
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    if a.size == 0:
        return 0.0, 1.0
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    return diff, cos


def conformance(args, tmp):
    root = args.cases
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "case.json")))
    passed, failed = 0, []
    for name in cases:
        d = os.path.join(root, name)
        case = json.load(open(os.path.join(d, "case.json")))
        try:
            inputs = {i["name"]: os.path.join(d, i["file"]) for i in case["inputs"]}
            shapes = {n: np.load(p).shape for n, p in inputs.items()}
            jrt = os.path.join(tmp, name + ".jrt")
            convert(args.jetc, os.path.join(d, "model.onnx"), jrt, shapes)
            outs = {}
            for dev in ("cpu", args.gpu):
                o = os.path.join(tmp, name + "." + dev)
                run(args.jetrt, jrt, inputs, o, dev)
                outs[dev] = o
            for spec in case["outputs"]:
                f = sanitize(spec["name"]) + ".npy"
                cpu, gpu = np.load(os.path.join(outs["cpu"], f)), np.load(os.path.join(outs[args.gpu], f))
                exp = np.load(os.path.join(d, spec["file"]))
                if cpu.dtype != gpu.dtype or cpu.shape != gpu.shape:
                    raise AssertionError(f"{spec['name']}: cpu {cpu.dtype}{cpu.shape} vs cuda {gpu.dtype}{gpu.shape}")
                if cpu.dtype.kind in "biu":
                    ok = np.array_equal(cpu, gpu)
                    tol = 0
                else:
                    scale = max(1.0, float(np.max(np.abs(cpu[np.isfinite(cpu)]), initial=0.0)))
                    tol = 1e-4 * scale + float(case.get("atol", 1e-5))
                    both_nan = np.isnan(cpu) & np.isnan(gpu)
                    ok = bool(np.all(both_nan | (np.abs(cpu.astype(np.float64) - gpu) <= tol) | (cpu == gpu)))
                if not ok:
                    diff, _ = compare(cpu, gpu) if cpu.dtype.kind == "f" else (None, None)
                    raise AssertionError(f"{spec['name']}: cuda differs from cpu (max abs diff {diff}, tolerance {tol})")
                if exp.shape == gpu.shape and gpu.dtype.kind == "f":
                    rtol, atol = float(case.get("rtol", 1e-4)), float(case.get("atol", 1e-5))
                    if not np.allclose(gpu, exp, rtol=max(rtol, 1e-4), atol=max(atol, 1e-4), equal_nan=True):
                        raise AssertionError(f"{spec['name']}: cuda differs from onnxruntime's expected output")
            passed += 1
        except Exception as e:  # one line per failing case, then go on
            failed.append({"case": name, "error": str(e)[:400]})
            print(f"  FAIL {name}: {str(e)[:300]}", flush=True)
    print(f"conformance: {passed} of {len(cases)} op cases agree on cuda and cpu", flush=True)
    return {"cases": len(cases), "passed": passed, "failed": failed}


# ONNX node test cases (target/testdata/onnx_node) of these ops run in the
# "node" part: ops whose GPU kernels the model checks do not reach.
NODE_OPS = "Cast,CastLike,ConvTranspose,Gather,Where,Pad,Expand,Tile,Split,Slice,LayerNormalization,Resize,Upsample"


def node_case(args, d, tmp):
    """One ONNX node case: converted with the first feed that converts (as
    tests/tests/conformance.rs does), run on the CPU and the GPU. Returns
    (status, detail): "pass", "skip" (does not convert, or the CPU itself
    disagrees with onnx, which the CPU conformance test covers) or "fail"."""
    case = json.load(open(os.path.join(d, "case.json")))
    name = case["name"]
    inputs = [(e["name"], os.path.join(d, e["file"])) for e in case["inputs"]]
    arrays = {n: np.load(p) for n, p in inputs}
    feeds = [
        lambda k, a: False,
        lambda k, a: a.dtype != np.float32,
        lambda k, a: k > 0,
        lambda k, a: True,
    ]
    jrt = os.path.join(tmp, name + ".jrt")
    for bound in feeds:
        cmd = [args.jetc, "convert", os.path.join(d, "model.onnx"), "-o", jrt, "--quiet"]
        fed = {}
        for k, (n, p) in enumerate(inputs):
            if bound(k, arrays[n]):
                cmd += ["--bind", f"{n}={p}"]
            else:
                cmd += ["--input-shape", f"{n}={','.join(str(x) for x in arrays[n].shape)}"]
                fed[n] = p
        if sh(cmd).returncode == 0:
            break
    else:
        return "skip", "does not convert"
    outs = {}
    for dev in ("cpu", args.gpu):
        o = os.path.join(tmp, name + "." + dev)
        try:
            run(args.jetrt, jrt, fed, o, dev)
        except RuntimeError as e:
            return ("skip" if dev == "cpu" else "fail"), str(e)[:300]
        outs[dev] = o
    for spec in case["outputs"]:
        f = sanitize(spec["name"]) + ".npy"
        exp = np.load(os.path.join(d, spec["file"]))
        cpu, gpu = np.load(os.path.join(outs["cpu"], f)), np.load(os.path.join(outs[args.gpu], f))
        if cpu.shape != exp.shape:
            return "skip", "cpu output shape differs from onnx's"
        if cpu.dtype.kind == "f" and not np.allclose(cpu, exp, rtol=case["rtol"], atol=case["atol"], equal_nan=True):
            return "skip", "cpu output differs from onnx's"
        if cpu.dtype != gpu.dtype or cpu.shape != gpu.shape:
            return "fail", f"{spec['name']}: cpu {cpu.dtype}{cpu.shape} vs cuda {gpu.dtype}{gpu.shape}"
        if cpu.dtype.kind == "f":
            tol = 1e-4 * max(1.0, float(np.max(np.abs(cpu[np.isfinite(cpu)]), initial=0.0))) + case["atol"]
            with np.errstate(invalid="ignore"):
                ok = bool(np.all((np.isnan(cpu) & np.isnan(gpu)) | (np.abs(cpu.astype(np.float64) - gpu) <= tol) | (cpu == gpu)))
        else:
            ok = np.array_equal(cpu, gpu)
        if not ok:
            return "fail", f"{spec['name']}: cuda differs from cpu"
    return "pass", ""


def guarded_node_case(args, d, tmp):
    try:
        return node_case(args, d, tmp)
    except ValueError as e:  # an element type numpy cannot read (float8, int4, ...)
        return "skip", str(e)[:200]


def node_cases(args, tmp):
    from concurrent.futures import ThreadPoolExecutor

    root = args.node_cases
    ops = set(args.node_ops.split(","))
    declared = {l.split()[0] for l in sh([args.jetc, "operators"]).stdout.splitlines()[1:] if l.strip()}
    dirs = []
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name, "case.json")
        if os.path.isfile(p):
            c = json.load(open(p))
            if set(c["ops"]) <= declared and set(c["ops"]) & ops:
                dirs.append(os.path.join(root, name))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda d: (os.path.basename(d), *guarded_node_case(args, d, tmp)), dirs))
    failed = [{"case": n, "error": e} for n, st, e in results if st == "fail"]
    for f in failed:
        print(f"  FAIL {f['case']}: {f['error']}", flush=True)
    passed = sum(st == "pass" for _, st, _ in results)
    skipped = sum(st == "skip" for _, st, _ in results)
    print(f"node cases ({args.node_ops}): {passed} agree on cuda and cpu, {len(failed)} differ, "
          f"{skipped} skipped (no conversion, or the CPU differs from onnx)", flush=True)
    per_op = {}
    for n, st, _ in results:
        for op in json.load(open(os.path.join(root, n, "case.json")))["ops"]:
            if op in ops and st == "pass":
                per_op[op] = per_op.get(op, 0) + 1
    print(f"  passed per op: {json.dumps(per_op)}", flush=True)
    return {"cases": len(dirs), "passed": passed, "skipped": skipped, "failed": failed, "passed_per_op": per_op}


def test_bins(args):
    """Rust test binaries built on the host (tools/gpu-test-bins.sh): each
    must pass, and must have taken its GPU branch (a line "GPU <name>: ...")."""
    out = []
    for name in sorted(os.listdir(args.test_bins)):
        path = os.path.join(args.test_bins, name)
        if not os.access(path, os.X_OK):
            continue
        r = sh([path, "--nocapture", "--test-threads", "1"], timeout=300)
        text = r.stdout + r.stderr
        ran_gpu = any(l.startswith("GPU ") for l in text.splitlines())
        ok = r.returncode == 0 and ran_gpu
        out.append({"test": name, "ok": ok, "rc": r.returncode, "gpu_branch": ran_gpu, "tail": text.strip()[-800:]})
        print(f"  test {name}: {'ok' if ok else 'FAILED'} (rc {r.returncode}, GPU branch {'taken' if ran_gpu else 'not taken'})", flush=True)
        if not ok:
            print(text.strip()[-1500:], flush=True)
        else:
            print("\n".join(l for l in text.splitlines() if "GPU" in l or "second session" in l)[-600:], flush=True)
    return out


SMALL_INT8 = "small_int8"


def small_int8_model(tmp):
    """Conv → Relu → Conv → Relu → MaxPool → Conv → Sigmoid → Gemm, made here
    with seeded weights: its int8 conversion has an int8 MaxPool, which the
    torchvision models' int8 files do not."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)

    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    inits = [w("w1", 16, 3, 3, 3), w("b1", 16), w("w2", 32, 16, 3, 3), w("b2", 32), w("w3", 32, 32, 1, 1), w("b3", 32),
             w("fw", 10, 32 * 8 * 8), w("fb", 10)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p2", "w3", "b3"], ["c3"]),
        helper.make_node("Sigmoid", ["c3"], ["s3"]),
        helper.make_node("Flatten", ["s3"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    g = helper.make_graph(nodes, SMALL_INT8, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    path = os.path.join(tmp, SMALL_INT8 + ".onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    calib = os.path.join(tmp, SMALL_INT8 + ".calib")
    os.makedirs(calib, exist_ok=True)
    for k in range(8):
        np.save(os.path.join(calib, f"x.{k}.npy"), rng.standard_normal((1, 3, 16, 16)).astype(np.float32))
    xp = os.path.join(tmp, SMALL_INT8 + ".input.npy")
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.save(xp, x)
    return path, "x", x, xp, calib


def diagnose(args, jrt, inputs, tmp):
    """After a failed GPU run: the step that fails (JETRT_CUDA_SYNC=1) and
    compute-sanitizer's report of the bad access, when it is installed."""
    cmd = [args.jetrt, "run", jrt, "--output-dir", os.path.join(tmp, "diag"), "--device", "cuda"]
    for name, path in inputs.items():
        cmd += ["--input", f"{name}={path}"]
    out = {}
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, JETRT_CUDA_SYNC="1"))
    out["sync_each"] = r.stderr.strip()[-600:]
    san = "compute-sanitizer"
    if subprocess.run(["which", san], capture_output=True).returncode == 0:
        r = subprocess.run([san, "--tool", "memcheck", "--show-backtrace", "no", *cmd], capture_output=True, text=True,
                           env=dict(os.environ, JETRT_CUDA_GRAPH="0"), timeout=120)
        lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
        out["sanitizer"] = "\n".join(lines[:30])
    print(f"  diagnosis: {json.dumps(out)}", flush=True)
    return out


def check_model(args, tmp, key, path, inp, x, xp, extra):
    try:
        jrt = os.path.join(tmp, key + ".jrt")
        convert(args.jetc, path, jrt, {inp: x.shape}, extra)
        outs, walls = {}, {}
        for dev in ("cpu", args.gpu):
            o = os.path.join(tmp, key + ".out." + dev)
            try:
                walls[dev] = run(args.jetrt, jrt, {inp: xp}, o, dev)
            except RuntimeError as e:
                if dev == "cuda":
                    return {"model": key, "ok": False, "error": str(e)[:600], "diagnosis": diagnose(args, jrt, {inp: xp}, tmp)}
                raise
            outs[dev] = o
        worst = (0.0, 1.0)
        for fname in sorted(os.listdir(outs["cpu"])):
            diff, cos = compare(np.load(os.path.join(outs["cpu"], fname)), np.load(os.path.join(outs[args.gpu], fname)))
            worst = (max(worst[0], diff), min(worst[1], cos))
        insp = json.loads(sh([args.jetc, "inspect", jrt, "--json", "--device", "cuda"]).stdout)
        # The golden vectors the converter stored (its CPU outputs) on the GPU.
        ver = sh([args.jetrt, "verify", jrt, "--json", "--device", args.gpu])
        golden = json.loads(ver.stdout).get("ok") if ver.stdout.strip() else False
        return {
            "model": key,
            "max_abs_diff": worst[0],
            "cosine": worst[1],
            "ok": worst[1] > 0.99999 and golden is True,
            "golden_ok": golden,
            "steps": insp["steps"],
            "cuda_fallbacks": len(insp.get("cuda_fallbacks", [])),
            "run_wall_s": walls,
        }
    except Exception as e:
        return {"model": key, "ok": False, "error": str(e)[:600]}


def fp16_check(args, tmp, key, inp, xp):
    """The fp32 file run with --fp16 on the GPU (tensor-core GEMM and conv on
    operands rounded to half, f32 accumulation) against the CPU's fp32 outputs."""
    jrt = os.path.join(tmp, key + ".jrt")
    fkey = key + "_fp16"
    if args.gpu != "cuda":
        return {"model": fkey, "ok": True, "skipped": "--fp16 needs the cuda backend"}
    try:
        o = os.path.join(tmp, fkey + ".out")
        wall = run(args.jetrt, jrt, {inp: xp}, o, "cuda", ["--fp16"], FP16_ENV)
        worst = (0.0, 1.0)
        ref = os.path.join(tmp, key + ".out.cpu")
        for fname in sorted(os.listdir(ref)):
            diff, cos = compare(np.load(os.path.join(ref, fname)), np.load(os.path.join(o, fname)))
            worst = (max(worst[0], diff), min(worst[1], cos))
        return {"model": fkey, "max_abs_diff": worst[0], "cosine": worst[1], "ok": worst[1] >= 0.9999, "run_wall_s": wall}
    except Exception as e:
        return {"model": fkey, "ok": False, "error": str(e)[:600]}


def model_checks(args, tmp):
    import onnx
    from fill_weights import fill_model

    src = os.path.join(ROOT, "tools", "models", "torchvision")
    results = []
    made = {}
    for f in sorted(os.listdir(src)):
        if not f.endswith("_op17.onnx"):
            continue
        name = f[: -len("_op17.onnx")]
        if args.models and name not in args.models.split(","):
            continue
        try:
            m = onnx.load(os.path.join(src, f))
            fill_model(m, seed=7)
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(m, path)
            inp = m.graph.input[0].name
            rng = np.random.default_rng(7)
            if name.startswith("transformer"):
                x = rng.integers(0, 1000, size=(1, 16)).astype(np.int64)
            else:
                x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
            xp = os.path.join(tmp, name + ".input.npy")
            np.save(xp, x)
            variants = [("fp32", [])]
            if name in ("resnet18", "mobilenet_v2"):
                # int8 with calibration samples (INPUT.K.npy), and int4 weights.
                calib = os.path.join(tmp, name + ".calib")
                os.makedirs(calib, exist_ok=True)
                for k in range(8):
                    np.save(os.path.join(calib, f"{sanitize(inp)}.{k}.npy"), rng.standard_normal(x.shape).astype(np.float32))
                variants += [("int8", ["--precision", "int8", "--calib", calib]), ("int4", ["--precision", "int4"])]
                # Pruned weights stored sparse (the GPU's sparse kernels).
                variants += [("sparse", ["--prune", "magnitude=0.6"])]
            for precision, extra in variants:
                key = name if precision == "fp32" else f"{name}_{precision}"
                r = check_model(args, tmp, key, path, inp, x, xp, extra)
                made[key] = (os.path.join(tmp, key + ".jrt"), inp, xp)
                print(f"  {json.dumps(r)}", flush=True)
                results.append(r)
                if precision == "fp32" and name in ("resnet18", "mobilenet_v2") and r.get("ok"):
                    r = fp16_check(args, tmp, key, inp, xp)
                    print(f"  {json.dumps(r)}", flush=True)
                    results.append(r)
            continue
        except Exception as e:
            r = {"model": name, "ok": False, "error": str(e)[:600]}
        print(f"  {json.dumps(r)}", flush=True)
        results.append(r)
    if not args.models or SMALL_INT8 in args.models.split(","):
        path, inp, x, xp, calib = small_int8_model(tmp)
        key = SMALL_INT8
        r = check_model(args, tmp, key, path, inp, x, xp, ["--precision", "int8", "--calib", calib])
        print(f"  {json.dumps(r)}", flush=True)
        results.append(r)
    return results, made


TORCH_BENCH = r"""
import sys, time, json
t_start = float(sys.argv[1])
import torch, torchvision
name, iters = sys.argv[2], int(sys.argv[3])
torch.backends.cudnn.benchmark = True
m = getattr(torchvision.models, name)(weights=None).eval().cuda()
x_host = torch.randn(1, 3, 224, 224).pin_memory()
with torch.inference_mode():
    y = m(x_host.cuda(non_blocking=True)).cpu()
first = time.time() - t_start
res = {"model": name, "first_result_s": first}
def bench(f, n):
    for _ in range(20): f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); torch.cuda.synchronize(); ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]
for dtype in ("fp32", "fp16"):
    mm = m if dtype == "fp32" else m.half()
    dt = torch.float32 if dtype == "fp32" else torch.float16
    xh = x_host.to(dt).pin_memory()
    out_host = torch.empty(1, 1000, dtype=dt).pin_memory()
    with torch.inference_mode():
        def eager():
            out_host.copy_(mm(xh.cuda(non_blocking=True)), non_blocking=True)
        res[f"eager_{dtype}_p50_ms"] = bench(eager, iters)
        xs = torch.empty(1, 3, 224, 224, dtype=dt, device="cuda")
        xs.copy_(xh)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3): ys = mm(xs)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            ys = mm(xs)
        def graphed():
            xs.copy_(xh, non_blocking=True); g.replay(); out_host.copy_(ys, non_blocking=True)
        res[f"graph_{dtype}_p50_ms"] = bench(graphed, iters)
free, total = torch.cuda.mem_get_info()
res["gpu_used_bytes"] = total - free
res["torch_allocated_peak_bytes"] = torch.cuda.max_memory_allocated()
print(json.dumps(res))
"""


def nvrtc_fallback(args, made, tmp):
    """A board whose cache lacks the kernels compiles them with its own NVRTC once."""
    if "resnet18" not in made:
        return None
    jrt, inp, xp = made["resnet18"]
    cache = os.path.join(tmp, "empty-cache")
    env = dict(os.environ, JETRT_CACHE_DIR=cache, RUST_LOG="info")
    runs = []
    for _ in range(2):
        t = time.perf_counter()
        r = subprocess.run([args.jetrt, "run", jrt, "--input", f"{inp}={xp}", "--output-dir", os.path.join(tmp, "nv"), "--device", "cuda"],
                           capture_output=True, text=True, env=env)
        runs.append({"rc": r.returncode, "wall_s": time.perf_counter() - t, "log": r.stderr.strip()[-600:]})
    cached = sorted(os.listdir(os.path.join(cache, "cuda"))) if os.path.isdir(os.path.join(cache, "cuda")) else []
    res = {"runs": runs, "cached": cached}
    print(f"  nvrtc fallback: {json.dumps(res)}", flush=True)
    return res


def benchmarks(args, made, tmp):
    out = []
    for name, tv in (("resnet18", "resnet18"), ("mobilenet_v2", "mobilenet_v2")):
        r = {"model": name}
        for precision in ("int8", "int4"):
            key = f"{name}_{precision}"
            if key in made:
                b = sh([args.jetrt, "bench", made[key][0], "--device", "cuda", "--json", "--iterations", str(args.iterations), "--warmup", "20"])
                if b.returncode == 0:
                    j = json.loads(b.stdout)
                    r[f"jetrt_cuda_{precision}_p50_ms"] = j["p50_ms"]
                    r[f"jetrt_cuda_{precision}_device"] = j.get("device_name")
                    r[f"jetrt_cuda_{precision}_gpu_session_bytes"] = j.get("gpu_session_bytes")
                    r[f"jetrt_{precision}_weights_bytes"] = j.get("weights_bytes")
                else:
                    r[f"jetrt_cuda_{precision}_error"] = b.stderr.strip()[-400:]
        if name in made:
            b = sh([args.jetrt, "bench", made[name][0], "--device", "cuda", "--fp16", "--json", "--iterations", str(args.iterations), "--warmup", "20"],
                   env=FP16_ENV)
            if b.returncode == 0:
                j = json.loads(b.stdout)
                r["jetrt_cuda_fp16_p50_ms"] = j["p50_ms"]
                r["jetrt_cuda_fp16_gpu_session_bytes"] = j.get("gpu_session_bytes")
            else:
                r["jetrt_cuda_fp16_error"] = b.stderr.strip()[-400:]
        if name in made:
            jrt, inp, xp = made[name]
            t = time.time()
            o = os.path.join(tmp, name + ".first")
            run(args.jetrt, jrt, {inp: xp}, o, "cuda")
            r["jetrt_first_result_s"] = time.time() - t
            prof = sh([args.jetrt, "bench", jrt, "--device", "cuda", "--iterations", "50", "--profile"], env=dict(os.environ, RUST_LOG="info"))
            print(prof.stdout, prof.stderr[-1500:], flush=True)
            for dev in ("cuda", "cpu"):
                b = sh([args.jetrt, "bench", jrt, "--device", dev, "--json", "--iterations", str(args.iterations), "--warmup", "20"])
                if b.returncode == 0:
                    j = json.loads(b.stdout)
                    r[f"jetrt_{dev}_fp32_p50_ms"] = j["p50_ms"]
                    r[f"jetrt_{dev}_device"] = j.get("device_name")
                    if dev == "cuda":
                        r["jetrt_gpu_used_bytes"] = j.get("gpu_used_bytes")
                        r["jetrt_gpu_session_bytes"] = j.get("gpu_session_bytes")
                else:
                    r[f"jetrt_{dev}_error"] = b.stderr.strip()[-400:]
        try:
            p = sh([sys.executable, "-c", TORCH_BENCH, str(time.time()), tv, str(args.iterations)], timeout=300)
            if p.returncode == 0:
                r["torch"] = json.loads(p.stdout.strip().splitlines()[-1])
            else:
                r["torch_error"] = p.stderr.strip()[-400:]
        except Exception as e:
            r["torch_error"] = str(e)[:300]
        print(f"  {json.dumps(r)}", flush=True)
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jetrt", default=os.path.join(ROOT, "target", "release", "jetrt"))
    ap.add_argument("--jetc", default=os.path.join(ROOT, "target", "release", "jetc"))
    ap.add_argument("--cases", default=os.path.join(ROOT, "target", "testdata", "ops"))
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--out", default="gpu-check.json")
    ap.add_argument("--models", default="", help="comma-separated models of tools/models/torchvision to check (default: all)")
    ap.add_argument("--gpu", default="cuda", help=argparse.SUPPRESS)  # "cpu" tests this script without a GPU
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: conformance,node,models,nvrtc,bench")
    ap.add_argument("--node-cases", default=os.path.join(ROOT, "target", "testdata", "onnx_node"),
                    help="the ONNX node test cases (tools/gen_testdata.sh makes them)")
    ap.add_argument("--node-ops", default=NODE_OPS, help="run the node cases that use any of these ops")
    ap.add_argument("--test-bins", default="", help="a folder of Rust test binaries to run (tools/gpu-test-bins.sh makes it)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    summary = {"info": sh([args.jetrt, "info", "--json"]).stdout}
    print(sh([args.jetrt, "info"]).stdout, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        if "conformance" not in skip:
            summary["conformance"] = conformance(args, tmp)
            print(f"  ({time.time() - t:.0f} s)", flush=True)
        if args.test_bins:
            summary["tests"] = test_bins(args)
        if "node" not in skip:
            summary["node"] = node_cases(args, tmp)
            print(f"  ({time.time() - t:.0f} s)", flush=True)
        made = {}
        if "models" not in skip:
            summary["models"], made = model_checks(args, tmp)
            print(f"  ({time.time() - t:.0f} s)", flush=True)
        if "models" not in skip and "nvrtc" not in skip:
            summary["nvrtc_fallback"] = nvrtc_fallback(args, made, tmp)
        if "bench" not in skip:
            summary["bench"] = benchmarks(args, made, tmp)
            print(f"  ({time.time() - t:.0f} s)", flush=True)
    with open(args.out, "w") as fh:
        json.dump(summary, fh, indent=1)
    bad = (summary.get("conformance", {}).get("failed") or []) + (summary.get("node", {}).get("failed") or [])
    bad += [m for m in summary.get("models", []) if not m.get("ok")]
    bad += [t for t in summary.get("tests", []) if not t["ok"]]
    print(f"gpu check: {'FAILED' if bad else 'passed'}; summary in {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
