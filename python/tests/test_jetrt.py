"""The jetrt Python package against onnxruntime, on real files.

Run by tools/test_python.sh (which builds and installs the wheel and sets
JETRT_JETC to the jetc binary); the models come from examples/digits and
tools/gen_testdata.sh. A missing model or tool fails under CI=true and is
skipped with its reason otherwise (pytest -rs prints it).
"""
import json
import os
import subprocess
import threading
import time

import numpy as np
import pytest

import jetrt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JETC = os.environ.get("JETRT_JETC", os.path.join(ROOT, "target", "debug", "jetc"))
REAL = os.path.join(ROOT, "target", "testdata", "real")


def need(path, what):
    if not os.path.exists(path):
        msg = f"{what} missing: {path} (tools/gen_testdata.sh, cargo build -p jetrt-tools)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def convert(onnx, out, shapes=()):
    need(JETC, "jetc")
    args = [JETC, "convert", onnx, "-o", out, "--quiet"] + [f"--input-shape={s}" for s in shapes]
    subprocess.run(args, check=True)
    return out


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    onnx = os.path.join(ROOT, "examples", "digits", "model.onnx")
    return onnx, convert(onnx, str(tmp_path_factory.mktemp("m") / "digits.jrt"), ["image=1,1,8,8"])


@pytest.fixture(scope="session")
def mobilenet(tmp_path_factory):
    d = os.path.join(REAL, "mobilenet_v3_small_op17")
    need(os.path.join(d, "model.onnx"), "MobileNet v3 test model")
    case = json.load(open(os.path.join(d, "case.json")))
    jrt = convert(os.path.join(d, "model.onnx"), str(tmp_path_factory.mktemp("m") / "mbv3.jrt"), case.get("input_shapes") or [])
    return d, jrt


def sample(d):
    return np.load(os.path.join(d, "input_0.npy"))


def test_describes_the_model(digits):
    sess = jetrt.InferenceSession(digits[1], device="cpu", threads=1)
    (inp,) = sess.get_inputs()
    (out,) = sess.get_outputs()
    assert (inp.name, inp.shape, inp.dtype, inp.type, inp.nbytes) == ("image", [1, 1, 8, 8], np.dtype("float32"), "tensor(float)", 256)
    assert (out.name, out.shape) == ("probabilities", [1, 10])
    info = sess.info()
    assert info["backend"] == "cpu" and info["threads"] == 1 and info["arena_bytes"] > 0


def test_matches_onnxruntime(digits, mobilenet):
    ort = pytest.importorskip("onnxruntime")
    onnx_digits, jrt_digits = digits
    x = np.load(os.path.join(ROOT, "examples", "digits", "digit_0.npy"))
    want = ort.InferenceSession(onnx_digits, providers=["CPUExecutionProvider"]).run(None, {"image": x})
    got = jetrt.InferenceSession(jrt_digits, device="cpu").run(None, {"image": x})
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-5)
    assert got[0].argmax() == 8  # the README's sample

    d, jrt = mobilenet
    x = sample(d)
    ref = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
    want = ref.run(None, {ref.get_inputs()[0].name: x})[0]
    sess = jetrt.InferenceSession(jrt, device="cpu")
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    cos = float(np.dot(got.ravel(), want.ravel()) / (np.linalg.norm(got) * np.linalg.norm(want)))
    assert cos > 0.9999, cos
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_output_names_and_run_into(digits):
    sess = jetrt.InferenceSession(digits[1], device="cpu")
    x = np.load(os.path.join(ROOT, "examples", "digits", "digit_1.npy"))
    (a,) = sess.run(["probabilities"], {"image": x})
    b = np.full((1, 10), np.nan, np.float32)
    assert sess.run_into({"image": x}, {"probabilities": b}) is None
    np.testing.assert_array_equal(a, b)
    with pytest.raises(jetrt.InvalidArgument, match="no output named"):
        sess.run(["logits"], {"image": x})
    with pytest.raises(jetrt.InvalidArgument, match="C-contiguous float32 array of shape"):
        sess.run_into({"image": x}, {"probabilities": np.empty((1, 10), np.float64)})
    ro = np.empty((1, 10), np.float32)
    ro.flags.writeable = False
    with pytest.raises(jetrt.InvalidArgument, match="read-only"):
        sess.run_into({"image": x}, {"probabilities": ro})


def test_contiguous_inputs_are_not_copied(digits):
    sess = jetrt.InferenceSession(digits[1], device="cpu")
    x = np.load(os.path.join(ROOT, "examples", "digits", "digit_2.npy"))
    (want,) = sess.run(None, {"image": x})
    assert sess.input_copies == 0
    (f,) = sess.run(None, {"image": np.asfortranarray(x.reshape(8, 8)).reshape(1, 1, 8, 8, order="A")})
    assert sess.input_copies == 1
    (lst,) = sess.run(None, {"image": x.tolist()})
    assert sess.input_copies == 1
    np.testing.assert_array_equal(f, want)
    np.testing.assert_array_equal(lst, want)


def test_every_bad_input_gets_its_error(digits, tmp_path):
    sess = jetrt.InferenceSession(digits[1], device="cpu")
    x = np.zeros((1, 1, 8, 8), np.float32)
    for feed, exc, pattern in [
        ({"image": x.astype(np.float64)}, jetrt.InvalidInput, r'input "image": expected dtype float32, got float64'),
        ({"image": x[..., :4]}, jetrt.InvalidInput, r"expected shape \[1, 1, 8, 8\], got \[1, 1, 8, 4\]"),
        ({"img": x}, jetrt.InvalidArgument, r'no input named "img"; the model\'s inputs are \["image"\]'),
        ({}, jetrt.InvalidInput, r'input "image" is missing'),
        ({1: x}, jetrt.InvalidArgument, "feed keys are input names"),
    ]:
        with pytest.raises(exc, match=pattern):
            sess.run(None, feed)
    for exc in (jetrt.InvalidInput, jetrt.InvalidArgument, jetrt.InvalidModel, jetrt.Unavailable, jetrt.RuntimeFailure):
        assert issubclass(exc, jetrt.Error)
    with pytest.raises(jetrt.InvalidModel, match="cannot read"):
        jetrt.InferenceSession(str(tmp_path / "missing.jrt"))
    corrupt = tmp_path / "corrupt.jrt"
    corrupt.write_bytes(open(digits[1], "rb").read()[:300])
    with pytest.raises(jetrt.InvalidModel):
        jetrt.InferenceSession(str(corrupt))
    with pytest.raises(jetrt.InvalidArgument, match="device"):
        jetrt.InferenceSession(digits[1], device="tpu")
    with pytest.raises(jetrt.InvalidArgument, match="no such kernel variant"):
        jetrt.InferenceSession(digits[1], cpu_kernels="sse9")
    ok, why = jetrt.cuda_available()
    if not ok:
        with pytest.raises(jetrt.Unavailable):
            jetrt.InferenceSession(digits[1], device="cuda")
        assert why


def test_two_threads_run_at_once(mobilenet):
    """The GIL is released while a model runs: two sessions on two threads overlap in time."""
    d, jrt = mobilenet
    x = sample(d)
    spans = {0: [], 1: []}

    def work(t):
        sess = jetrt.InferenceSession(jrt, device="cpu", threads=1)
        name = sess.get_inputs()[0].name
        for _ in range(8):
            a = time.perf_counter()
            sess.run(None, {name: x})
            spans[t].append((a, time.perf_counter()))

    threads = [threading.Thread(target=work, args=(t,)) for t in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    overlap = sum(max(0.0, min(b0, b1) - max(a0, a1)) for a0, b0 in spans[0] for a1, b1 in spans[1])
    busy = sum(b - a for a, b in spans[0])
    assert overlap > 0.25 * busy, f"runs overlapped {overlap * 1e3:.1f} ms of {busy * 1e3:.1f} ms"


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_100000_runs_keep_memory_flat(digits):
    sess = jetrt.InferenceSession(digits[1], device="cpu", threads=1)
    feed = {"image": np.load(os.path.join(ROOT, "examples", "digits", "digit_0.npy"))}
    for _ in range(2000):
        sess.run(None, feed)
    before = rss_bytes()
    for _ in range(100_000):
        sess.run(None, feed)
    grown = rss_bytes() - before
    assert grown < 2 << 20, f"RSS grew {grown} bytes over 100,000 runs"


def test_convert_matches_jetc_and_onnxruntime(digits, tmp_path):
    """jetrt.convert is jetc convert: the same file, the same report."""
    ort = pytest.importorskip("onnxruntime")
    onnx, by_jetc = digits
    out = tmp_path / "digits.jrt"
    report = jetrt.convert(onnx, out, input_shapes={"image": [1, 1, 8, 8]}, quiet=True)
    need(JETC, "jetc")
    subprocess.run([JETC, "convert", onnx, "-o", str(tmp_path / "cli.jrt"), "--input-shape=image=1,1,8,8", "--quiet",
                    "--report", str(tmp_path / "cli.json")], check=True)
    cli = json.load(open(tmp_path / "cli.json"))
    for key in ("steps", "ops", "inputs", "outputs", "weights_bytes", "arena_bytes", "file_bytes", "passes", "golden_vectors"):
        assert report[key] == cli[key], key
    assert report["output"] == str(out) and report["inputs"] == [{"name": "image", "dtype": "float32", "shape": [1, 1, 8, 8]}]
    x = np.load(os.path.join(ROOT, "examples", "digits", "digit_2.npy"))
    got = jetrt.InferenceSession(out, device="cpu").run(None, {"image": x})[0]
    want = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_convert_int8_with_calibration_data(tmp_path):
    d = os.path.join(ROOT, "target", "testdata", "quant", "digits_cnn")
    need(os.path.join(d, "meta.json"), "quantization test data")
    name = json.load(open(os.path.join(d, "meta.json")))["input"]
    out = tmp_path / "int8.jrt"
    shapes = {name: [1, 1, 8, 8]}
    # A value bound to no input is refused by name (the ndarray reaches the converter).
    with pytest.raises(jetrt.Error, match="no_such_input"):
        jetrt.convert(os.path.join(d, "model.onnx"), out, input_shapes=shapes, bind={"no_such_input": np.zeros(1, np.float32)}, quiet=True)
    report = jetrt.convert(os.path.join(d, "model.onnx"), out, input_shapes=shapes, precision="int8",
                           calib=os.path.join(d, "calib"), quiet=True)
    q = report["quantization"]
    assert q["precision"] == "int8" and q["samples"] == 64 and not q["random_samples"]
    assert q["outputs"][0]["cosine"] > 0.99, q["outputs"]
    assert report["drift_reference"] == {"samples": 64, "tensors": 2}
    assert report["file_bytes"] < report["onnx_bytes"]
    # Accuracy on the held-out set, against the labels.
    x, y = np.load(os.path.join(d, "test_x.npy")), np.load(os.path.join(d, "test_y.npy"))
    sess = jetrt.InferenceSession(out, device="cpu")
    shape = sess.get_inputs()[0].shape
    right = sum(int(sess.run(None, {name: xi.reshape(shape)})[0].argmax() == yi) for xi, yi in zip(x, y))
    meta = json.load(open(os.path.join(d, "meta.json")))
    assert right / len(y) >= meta["ort_int8_qdq_accuracy"] - 0.02, right / len(y)


def test_convert_errors_name_the_problem(digits, tmp_path):
    onnx = digits[0]
    out = tmp_path / "m.jrt"
    for kwargs, exc, pattern in [
        (dict(precision="int8"), jetrt.InvalidArgument, "needs calibration data"),
        (dict(precision="int3"), jetrt.InvalidArgument, "precision"),
        (dict(input_shapes={"img": [1, 1, 8, 8]}), jetrt.InvalidArgument, 'names "img"'),
        (dict(boards="jetson-imaginary"), jetrt.InvalidArgument, "no board"),
        (dict(calib_method="median"), jetrt.InvalidArgument, "calib_method"),
        (dict(prune="half"), jetrt.InvalidArgument, "--prune"),
        (dict(mean=(1, 2)), jetrt.InvalidArgument, "mean"),
        (dict(golden=99), jetrt.InvalidArgument, "--golden 99"),
        (dict(calib=str(tmp_path / "nowhere"), precision="int8"), jetrt.InvalidArgument, "cannot read the folder"),
    ]:
        with pytest.raises(exc, match=pattern):
            jetrt.convert(onnx, out, quiet=True, **{"input_shapes": {"image": [1, 1, 8, 8]}, **kwargs})
    assert not out.exists(), "a failed conversion writes nothing"
    with pytest.raises(jetrt.ConversionError, match="cannot read"):
        jetrt.convert(tmp_path / "missing.onnx", out, quiet=True)
    with pytest.raises(jetrt.ConversionError, match="cannot write .*nowhere") as e:
        jetrt.convert(onnx, tmp_path / "nowhere" / "m.jrt", input_shapes={"image": [1, 1, 8, 8]}, quiet=True)
    assert str(e.value).count("os error 2") == 1, e.value  # the cause once
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(jetrt.ConversionError, match="not a valid ONNX model"):
        jetrt.convert(garbage, out, quiet=True)
    assert issubclass(jetrt.ConversionError, jetrt.Error)


def test_model_info_memory_and_board_fit(digits):
    info = jetrt.model_info(digits[1], boards="all")
    assert info["inputs"][0]["shape"] == [1, 1, 8, 8] and info["memory"]["arena_bytes"] > 0
    assert info["memory"]["file_bytes"] == os.path.getsize(digits[1])
    assert info["metadata"]["name"] == "model" and info["golden_vectors"] == 2
    assert len(info["boards"]) > 5
    for b in info["boards"]:
        assert b["fits"] and b["needs_bytes"] <= b["spare_bytes"] and b["message"] is None, b
    nano = jetrt.model_info(digits[1], boards="jetson-nano")["boards"]
    assert [b["board"] for b in nano] == ["jetson-nano"]
    sess = jetrt.InferenceSession(digits[1], device="cpu", threads=1)
    assert sess.model_info()["memory"] == info["memory"] and "boards" not in sess.model_info()
    assert sess.info()["arena_bytes"] == info["memory"]["arena_bytes"]
    with pytest.raises(jetrt.InvalidArgument, match="no board"):
        jetrt.model_info(digits[1], boards=["jetson-orin-nano-8gb", "pi"])


def test_drift_monitor_raises_an_alarm_on_drifted_data(tmp_path):
    d = os.path.join(ROOT, "target", "testdata", "drift")
    need(os.path.join(d, "meta.json"), "drift test data")
    jrt = tmp_path / "colour.jrt"
    report = jetrt.convert(os.path.join(d, "model.onnx"), jrt, input_shapes={"image": [1, 3, 8, 8]},
                           drift_ref=os.path.join(d, "ref"), quiet=True)
    assert report["drift_reference"] == {"samples": 500, "tensors": 2}

    def replay(folder):
        sess = jetrt.InferenceSession(jrt, device="cpu", threads=1, monitor=True, drift_window=100)
        assert sess.drift()["ready"] is False
        for k in range(200):
            sess.run(None, {"image": np.load(os.path.join(d, folder, f"image.{k}.npy"))})
        return sess.drift()

    clean = replay("dir_ok")
    assert clean["ready"] and clean["samples"] == 200 and clean["window"] == 100
    assert clean["verdict"] != "alarm", clean
    drifted = replay("dir_drift")
    assert drifted["verdict"] == "alarm", drifted
    assert [t["name"] for t in drifted["tensors"]] == ["image", "probabilities"]
    assert max(t["psi"] for t in drifted["tensors"]) > max(t["psi"] for t in clean["tensors"])
    with pytest.raises(jetrt.InvalidArgument, match="monitor=True"):
        jetrt.InferenceSession(jrt, device="cpu").drift()
    with pytest.raises(jetrt.InvalidArgument, match="no drift reference"):
        jetrt.InferenceSession(jetrt.convert(os.path.join(d, "model.onnx"), tmp_path / "plain.jrt",
                                             input_shapes={"image": [1, 3, 8, 8]}, quiet=True)["output"], monitor=True)
