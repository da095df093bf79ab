//! The command-line contract of jetc and jetrt, on the example model the
//! repository ships (examples/digits, a small trained CNN).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn jetc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetc")).args(args).output().expect("jetc runs")
}

fn jetrt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetrt")).args(args).output().expect("jetrt runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "failed: {}", text(&o));
    o
}

fn fails(o: Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "expected exit code 1: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let error = err.split_once("error: ").map(|(_, e)| e).unwrap_or_default();
    assert!(error.contains(needle), "stderr has no `error: ...{needle}...`: {err}");
}

fn example(f: &str) -> String {
    root().join("examples/digits").join(f).display().to_string()
}

/// Converts the digits model into `dir`.
fn converted(dir: &Path) -> String {
    let out = dir.join("digits.jrt").display().to_string();
    ok(jetc(&["convert", &example("model.onnx"), "-o", &out, "--input-shape", "image=1,1,8,8"]));
    out
}

#[test]
fn help_on_every_command() {
    let o = ok(jetc(&["operators"]));
    let list = String::from_utf8_lossy(&o.stdout);
    for op in ["Conv", "LayerNormalization", "Resize", "ConvTranspose", "Gather"] {
        assert!(list.lines().any(|l| l.trim_start().starts_with(op)), "jetc operators lacks {op}: {list}");
    }
    // Logic runs on constants only, and says so.
    let and = list.lines().find(|l| l.trim_start().starts_with("And ")).expect("And listed");
    assert!(and.contains("constant inputs only"), "{and}");
    for args in [&["--help"][..], &["convert", "--help"], &["inspect", "--help"], &["operators", "--help"]] {
        let o = ok(jetc(args));
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage"));
    }
    for args in [&["--help"][..], &["run", "--help"], &["bench", "--help"], &["info", "--help"]] {
        let o = ok(jetrt(args));
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage"));
    }
    assert_eq!(jetc(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn convert_needs_the_dynamic_batch_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.jrt").display().to_string();
    fails(jetc(&["convert", &example("model.onnx"), "-o", &out]), "--input-shape");
    assert!(!Path::new(&out).exists(), "a failed conversion left a file");
    fails(jetc(&["convert", &example("model.onnx"), "-o", &out, "--input-shape", "image=1,2,8,8"]), "static shape");
    fails(jetc(&["convert", &example("model.onnx"), "-o", &out, "--input-shape", "img=1,1,8,8"]), "not an input of the model");
    let missing = jetc(&["convert", &example("nope.onnx"), "-o", &out]);
    // The reason once, not once per level of the error chain.
    assert_eq!(String::from_utf8_lossy(&missing.stderr).matches("os error 2").count(), 1, "{}", text(&missing));
    fails(missing, "cannot read");
}

#[test]
fn check_reports_without_writing() {
    let o = ok(jetc(&["convert", "--check", &example("model.onnx"), "--input-shape", "image=1,1,8,8"]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("every node converts"), "{}", text(&o));
    // A model with ops jetrt lacks: all listed, exit status 1, no file.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.onnx");
    let mut m = std::fs::read(example("model.onnx")).unwrap();
    // Rename every Relu to a (non-existent) op of the same length.
    let (from, to) = (b"Relu", b"Rulu");
    let mut hits = 0;
    for i in 0..m.len() - from.len() {
        if &m[i..i + from.len()] == from {
            m[i..i + from.len()].copy_from_slice(to);
            hits += 1;
        }
    }
    assert!(hits >= 2, "the example model has {hits} Relu strings");
    std::fs::write(&bad, m).unwrap();
    let o = jetc(&["convert", "--check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.matches("ai.onnx::Rulu").count() >= 2, "{out}");
    let o = jetc(&["convert", &example("model.onnx")]);
    assert!(o.status.code() == Some(2) && text(&o).contains("--output"), "{}", text(&o));
}

#[test]
fn convert_inspect_run_classify_the_digits() {
    let dir = tempfile::tempdir().unwrap();
    let jrt = converted(dir.path());
    let o = ok(jetc(&["inspect", &jrt, "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["inputs", "outputs", "ops", "weights_bytes", "arena_bytes", "intermediate_bytes"] {
        assert!(v.get(key).is_some(), "inspect --json lacks {key}: {v}");
    }
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 1, 8, 8]));
    assert!(v["arena_bytes"].as_u64().unwrap() <= v["intermediate_bytes"].as_u64().unwrap());
    let human = String::from_utf8_lossy(&ok(jetc(&["inspect", &jrt])).stdout).into_owned();
    assert!(human.contains("arena") && human.contains("intermediates"), "{human}");
    // What the CUDA backend would run: every step of this MLP has a GPU kernel.
    let v: serde_json::Value = serde_json::from_slice(&ok(jetc(&["inspect", &jrt, "--json", "--device", "cuda"])).stdout).unwrap();
    assert_eq!(v["cuda_fallbacks"], serde_json::json!([]), "{v}");
    let human = String::from_utf8_lossy(&ok(jetc(&["inspect", &jrt, "--device", "cuda"])).stdout).into_owned();
    assert!(human.contains("steps run on the GPU") && human.contains("one CUDA graph"), "{human}");

    // The README's labels: 8, 5, 3.
    for (k, label) in [(0, 8), (1, 5), (2, 3)] {
        let out = dir.path().join(format!("out{k}"));
        let input = format!("image={}", example(&format!("digit_{k}.npy")));
        ok(jetrt(&["run", &jrt, "--input", &input, "--output-dir", out.to_str().unwrap()]));
        let probs = jetrt_tools::npy::read(&out.join("probabilities.npy")).unwrap().to_f32().unwrap();
        let best = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(best, label, "digit_{k}: {probs:?}");
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn run_refuses_wrong_inputs_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let jrt = converted(dir.path());
    let out = dir.path().join("out").display().to_string();
    fails(jetrt(&["run", &jrt, "--output-dir", &out]), "missing input(s): image float32 [1, 1, 8, 8]");
    let wrong = dir.path().join("wrong.npy");
    jetrt_tools::npy::write(&wrong, &jetrt_tools::npy::Array::f32(vec![1, 8, 8], &[0.0; 64])).unwrap();
    fails(jetrt(&["run", &jrt, "--input", &format!("image={}", wrong.display()), "--output-dir", &out]), "expects shape [1, 1, 8, 8]");
    // The error says which shape the file was built for and how to get another.
    fails(
        jetrt(&["run", &jrt, "--input", &format!("image={}", wrong.display()), "--output-dir", &out]),
        "convert the ONNX model again with jetc convert --input-shape image=1,8,8",
    );
    let ints = dir.path().join("ints.npy");
    let a = jetrt_tools::npy::Array { dtype: jetrt::DType::I64, shape: vec![1, 1, 8, 8], data: vec![0; 512] };
    jetrt_tools::npy::write(&ints, &a).unwrap();
    fails(jetrt(&["run", &jrt, "--input", &format!("image={}", ints.display()), "--output-dir", &out]), "expects float32");
    fails(jetrt(&["run", &jrt, "--input", &format!("pixels={}", ints.display()), "--output-dir", &out]), "no input named \"pixels\"");
    // Without a usable GPU, --device cuda says why (here: no driver library).
    let cuda = jetrt(&["run", &jrt, "--input", &example("digit_0.npy"), "--output-dir", &out, "--device", "cuda"]);
    match jetrt::first_usable_gpu() {
        Err(why) => fails(cuda, &format!("backend cuda is not available: {why}")),
        Ok(_) => assert!(cuda.status.success(), "{}", String::from_utf8_lossy(&cuda.stderr)),
    }
    // fp16 is a GPU path: the CPU backend refuses it, and without a usable
    // GPU (or, until a GPU check has run them, without JETRT_CUDA_UNVERIFIED=1)
    // --device auto says why rather than running fp32 on the CPU.
    let digit = example("digit_0.npy");
    let run16 = |device: &str, unverified: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jetrt"));
        c.args(["run", &jrt, "--input", &digit, "--output-dir", &out, "--fp16", "--device", device]);
        if unverified {
            c.env("JETRT_CUDA_UNVERIFIED", "1");
        } else {
            c.env_remove("JETRT_CUDA_UNVERIFIED");
        }
        c.output().expect("jetrt runs")
    };
    fails(run16("cpu", true), "fp16 runs on the GPU only (device cuda or auto); the CPU backend computes in fp32");
    match jetrt::first_usable_gpu() {
        Err(why) => {
            fails(run16("auto", true), &format!("fp16 runs on the GPU only, and the GPU cannot run this session: {why}"));
            fails(run16("cuda", true), &format!("backend cuda is not available: {why}"));
        }
        Ok(_) => {
            fails(run16("cuda", false), "the fp16 kernels compile for every architecture but have not yet run on a GPU");
            ok(run16("cuda", true));
        }
    }
    // A corrupted file.
    let mut b = std::fs::read(&jrt).unwrap();
    let n = b.len();
    b[n - 10] ^= 0xff;
    let bad = dir.path().join("bad.jrt");
    std::fs::write(&bad, b).unwrap();
    fails(jetrt(&["run", bad.to_str().unwrap(), "--input", &example("digit_0.npy"), "--output-dir", &out]), "checksum mismatch");
}

#[test]
fn bench_reports_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let jrt = converted(dir.path());
    let o = ok(jetrt(&["bench", &jrt, "--iterations", "5", "--warmup", "1", "--threads", "2", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in
        ["load_ms", "first_run_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "iterations", "arena_bytes", "weights_bytes", "peak_rss_bytes"]
    {
        assert!(v.get(key).is_some(), "bench --json lacks {key}: {v}");
    }
    assert_eq!(v["iterations"], 5);
    assert!(v["p50_ms"].as_f64().unwrap() <= v["p99_ms"].as_f64().unwrap());
    let o = ok(jetrt(&["bench", &jrt, "--iterations", "3", "--input", &format!("image={}", example("digit_1.npy")), "--profile"]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("time by op"));
    fails(jetrt(&["bench", &jrt, "--iterations", "0"]), "at least 1");
}

/// `--threads 0` (the default) is what the process may use: pinned to one
/// CPU with `taskset`, one thread, however many cores the machine has.
#[test]
fn the_default_thread_count_follows_the_affinity_mask() {
    let dir = tempfile::tempdir().unwrap();
    let jrt = converted(dir.path());
    let threads = |o: Output| -> u64 { serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["threads"].as_u64().unwrap() };
    let args = ["bench", &jrt, "--iterations", "2", "--warmup", "0", "--json"];
    assert_eq!(threads(ok(jetrt(&args))), jetrt::available_threads() as u64);
    // One CPU this process may run on (a CI runner may be pinned away from 0).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let allowed = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap_or("0").trim();
    let cpu: String = allowed.chars().take_while(|c| c.is_ascii_digit()).collect();
    let pinned = match Command::new("taskset").args(["-c", &cpu, env!("CARGO_BIN_EXE_jetrt")]).args(args).output() {
        Ok(o) => o,
        Err(e) if !jetrt_tools_ci() => {
            return eprintln!("\n*** SKIPPED the_default_thread_count_follows_the_affinity_mask: no taskset ({e}) ***\n")
        }
        Err(e) => panic!("taskset (util-linux) is needed: {e}"),
    };
    assert_eq!(threads(ok(pinned)), 1);
}

fn jetrt_tools_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

#[test]
fn info_describes_the_machine() {
    let o = ok(jetrt(&["info", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["cpu", "board", "gpu", "l4t_release"] {
        assert!(v.get(key).is_some(), "info --json lacks {key}: {v}");
    }
    assert!(v["cpu"]["features"].is_array());
    // The GPU as CUDA sees it, or why there is none.
    let cuda = jetrt::probe_gpus();
    assert_eq!(v["gpu"]["cuda"].as_bool(), Some(cuda.is_ok()), "{v}");
    match cuda {
        Ok(gpus) => assert_eq!(v["gpu"]["devices"].as_array().map(Vec::len), Some(gpus.len())),
        Err(why) => assert_eq!(v["gpu"]["reason"].as_str(), Some(why.as_str())),
    }
    let text = String::from_utf8_lossy(&ok(jetrt(&["info"])).stdout).into_owned();
    assert!(text.contains("gpu:"), "{text}");
}

/// JETRT_KERNELS / JETRT_INT8_KERNELS pick the CPU kernels (to compute here
/// what a machine without AVX-512 computes); a name no variant has is refused.
#[test]
fn kernels_named_by_the_environment() {
    let with = |k: &str, q: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_jetrt"))
            .args(args)
            .env("JETRT_KERNELS", k)
            .env("JETRT_INT8_KERNELS", q)
            .output()
            .expect("jetrt runs")
    };
    let o = ok(with("generic", "portable", &["info", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cpu"]["kernels"], "generic", "{v}");
    assert_eq!(v["cpu"]["int8_kernels"], "portable", "{v}");
    fails(with("avx3", "", &["info"]), "JETRT_KERNELS=avx3 names no kernel variant; known: avx512, avx2_fma, neon, generic");
    fails(with("", "vnni", &["info"]), "JETRT_INT8_KERNELS=vnni names no kernel variant");
    // A variant this machine cannot run: NEON on x86, AVX-512 on aarch64.
    let foreign = if cfg!(target_arch = "x86_64") { "neon" } else { "avx512" };
    fails(with(foreign, "", &["info"]), &format!("CPU variant {foreign} is not supported on this machine"));
}

/// Calibration from a folder of images: decoded, resized, normalized, and
/// the int8 file runs; the report says how many samples it used.
#[test]
fn int8_from_png_images() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    for k in 0..5u32 {
        // 16×16 strokes, resized to the model's 8×8 by --resize.
        let img = image::RgbImage::from_fn(16, 16, |x, y| {
            let on = (x + k) % 5 < 2 || (y * 3 + k) % 7 == 0;
            image::Rgb(if on { [250, 250, 250] } else { [10, 10, 10] })
        });
        img.save(imgs.join(format!("img_{k}.png"))).unwrap();
    }
    let out = dir.path().join("d8.jrt").display().to_string();
    let report = dir.path().join("r.json");
    let imgs_s = imgs.display().to_string();
    let model = example("model.onnx");
    let convert = |extra: &[&str]| {
        let mut args = vec!["convert", model.as_str(), "-o", out.as_str(), "--input-shape", "image=1,1,8,8"];
        args.extend_from_slice(extra);
        jetc(&args)
    };
    let o = ok(convert(&["--precision", "int8", "--calib", &imgs_s, "--resize", "8,8", "--report", &report.display().to_string()]));
    assert!(text(&o).contains("precision: int8"), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let q = &r["quantization"];
    assert_eq!(q["samples"], 5);
    assert!(q["outputs"][0]["cosine"].as_f64().unwrap() > 0.9, "{q}");
    assert!(q["layers"].as_array().unwrap().iter().all(|l| l["precision"] == "int8"), "{q}");
    ok(jetrt(&[
        "run",
        &out,
        "--input",
        &format!("image={}", example("digit_0.npy")),
        "--output-dir",
        &dir.path().join("o").display().to_string(),
    ]));
    // A size the input cannot take, and a folder without samples, are errors
    // that say what is wrong.
    fails(convert(&["--precision", "int8", "--calib", &imgs_s, "--resize", "9,9"]), "--resize 9,9");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(convert(&["--precision", "int8", "--calib", &empty.display().to_string()]), "no .npy files");
    fails(convert(&["--precision", "int8"]), "needs calibration data");
    fails(convert(&["--prune", "half"]), "--prune");
}

/// `.venv/lib/python3.*/site-packages/<rel>` (tools/setup_venv.sh puts
/// NVRTC from PyPI there); fails under CI=true when missing.
#[cfg(all(feature = "cuda", target_arch = "x86_64"))]
fn venv_nvrtc(rel: &str) -> Option<String> {
    let found = std::fs::read_dir(root().join(".venv/lib"))
        .ok()
        .and_then(|d| d.flatten().map(|d| d.path().join("site-packages").join(rel)).find(|p| p.exists()));
    if found.is_none() {
        let msg = format!("{rel} is not in .venv (run tools/setup_venv.sh)");
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found.map(|p| p.display().to_string())
}

/// jetc compiles the CUDA kernels on the host and stores them in the file,
/// one CUBIN per architecture, each from an NVRTC that supports it.
#[cfg(all(feature = "cuda", target_arch = "x86_64"))]
#[test]
fn convert_embeds_cuda_kernels_for_jetson() {
    let (Some(nv12), Some(nv13)) = (venv_nvrtc("nvidia/cuda_nvrtc/lib/libnvrtc.so.12"), venv_nvrtc("nvidia/cu13/lib/libnvrtc.so.13"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("k.jrt").display().to_string();
    let model = example("model.onnx");
    let convert = |extra: &[&str]| {
        let mut args = vec!["convert", &model, "-o", &out, "--input-shape", "image=1,1,8,8"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_jetc")).args(&args).env("JETRT_CACHE_DIR", &cache).output().unwrap()
    };
    ok(convert(&["--cuda-arch", "jetson", "--nvrtc", &nv12, "--nvrtc", &nv13]));
    let v: serde_json::Value = serde_json::from_slice(&ok(jetc(&["inspect", &out, "--json"])).stdout).unwrap();
    let k = v["cuda_kernels"].as_array().unwrap();
    let got: Vec<(&str, &str)> = k.iter().map(|e| (e["arch"].as_str().unwrap(), &e["nvrtc"].as_str().unwrap()[..3])).collect();
    assert_eq!(got, vec![("sm_72", "12."), ("sm_87", "12."), ("sm_110", "13.")], "{v}");
    assert!(k.iter().all(|e| e["bytes"].as_u64().unwrap() > 10_000));
    // The CUBINs were cached: the second conversion compiles nothing.
    assert_eq!(std::fs::read_dir(cache.join("cuda")).unwrap().count(), 3);
    // The file still runs on the CPU.
    let o = dir.path().join("o").display().to_string();
    ok(jetrt(&["run", &out, "--input", &example("digit_0.npy"), "--output-dir", &o, "--device", "cpu"]));
    // CUDA 12 cannot build Thor's sm_110: the error says which NVRTC builds what.
    std::fs::remove_dir_all(&cache).unwrap();
    fails(convert(&["--cuda-arch", "110", "--nvrtc", &nv12]), "cannot compile the CUDA kernels for sm_110");
    fails(convert(&["--cuda-arch", "sm_9x"]), "--cuda-arch");
}

/// target/testdata/drift (tools/gen_testdata.sh makes it); fails under
/// CI=true when missing, says loudly what it skips otherwise.
fn drift_data() -> Option<PathBuf> {
    let d = root().join("target/testdata/drift");
    if d.join("meta.json").is_file() {
        return Some(d);
    }
    let msg = format!("{} missing: run tools/gen_testdata.sh", d.display());
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
    eprintln!("\n*** SKIPPED drift CLI test: {msg} ***\n");
    None
}

#[test]
fn drift_reference_replay_metrics_and_monitor() {
    let Some(data) = drift_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let jrt = tmp.path().join("colour.jrt").display().to_string();
    let model = data.join("model.onnx").display().to_string();
    let refdir = data.join("ref").display().to_string();
    let o = ok(jetc(&["convert", &model, "-o", &jrt, "--input-shape", "image=1,3,8,8", "--drift-ref", &refdir, "--name", "colour"]));
    assert!(text(&o).contains("drift:   reference of 500 samples for 2 tensor(s)"), "{}", text(&o));
    // Undrifted samples: not an alarm; drifted ones: an alarm, in the JSON
    // the issue specifies, and a metrics file node-exporter reads.
    let metrics = tmp.path().join("drift.prom");
    let replay = |dir: &str| -> serde_json::Value {
        let d = data.join(dir).display().to_string();
        let o = ok(jetrt(&["drift", &jrt, "--input-dir", &d, "--json", "--metrics-file", metrics.to_str().unwrap()]));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    };
    let clean = replay("dir_ok");
    assert_eq!(clean["samples"], 200);
    assert_ne!(clean["verdict"], "alarm", "{clean}");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("# TYPE jetrt_drift_psi gauge") && prom.contains("jetrt_drift_alarm{model=\"colour\"} 0"), "{prom}");
    let drifted = replay("dir_drift");
    assert_eq!(drifted["verdict"], "alarm", "{drifted}");
    assert!(drifted["first_alarm"].as_u64().unwrap() < 200);
    let tensors = drifted["tensors"].as_array().unwrap();
    let names: Vec<&str> = tensors.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["image", "probabilities"]);
    for t in tensors {
        for k in ["psi", "ks", "mean_shift"] {
            assert!(t[k].as_f64().unwrap() >= 0.0, "{t}");
        }
    }
    assert_eq!(tensors[0]["verdict"], "alarm");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("jetrt_drift_alarm{model=\"colour\"} 1"), "{prom}");
    assert!(prom.contains("jetrt_drift_verdict{model=\"colour\",tensor=\"image\"} 2"), "{prom}");
    let o = ok(jetc(&["inspect", &jrt]));
    assert!(text(&o).contains("drift reference: 500 samples for image, probabilities"), "{}", text(&o));
    // The table, and a clear error for too few samples.
    let o = ok(jetrt(&["drift", &jrt, "--input-dir", data.join("dir_ok").to_str().unwrap()]));
    assert!(text(&o).contains("psi") && text(&o).contains("verdict:"), "{}", text(&o));
    fails(
        jetrt(&["drift", &jrt, "--input-dir", data.join("dir_ok").to_str().unwrap(), "--drift-window", "500"]),
        "fewer than the drift window",
    );
    // run --monitor: where one inference lies; bench --monitor: the cost.
    let x = data.join("dir_ok/image.0.npy").display().to_string();
    let out = tmp.path().join("out").display().to_string();
    let o = ok(jetrt(&["run", &jrt, "--input", &x, "--output-dir", &out, "--monitor"]));
    assert!(text(&o).contains("roughness") && text(&o).contains("decile"), "{}", text(&o));
    let o = ok(jetrt(&["bench", &jrt, "--input", &x, "--iterations", "120", "--monitor", "--json"]));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(b["monitor"]["us_per_inference"].as_f64().unwrap() > 0.0, "{b}");
    // A file without a reference says how to get one.
    let plain = converted(tmp.path());
    fails(jetrt(&["drift", &plain, "--input-dir", data.join("dir_ok").to_str().unwrap()]), "no drift reference");
    fails(jetrt(&["bench", &jrt, "--monitor", "--psi", "0.3,0.1"]), "--psi");
}

#[test]
fn verify_runs_the_golden_vectors_the_converter_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let jrt = converted(tmp.path());
    let o = ok(jetrt(&["verify", &jrt]));
    assert!(text(&o).contains("2 golden vector(s)") && text(&o).contains("verified"), "{}", text(&o));
    let o = ok(jetrt(&["verify", &jrt, "--json", "--device", "cpu"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["outputs"].as_array().unwrap().len(), 2);
    let o = ok(jetc(&["inspect", &jrt, "--json"]));
    let i: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(i["golden_vectors"], 2);
    let none = tmp.path().join("none.jrt").display().to_string();
    ok(jetc(&["convert", &example("model.onnx"), "-o", &none, "--input-shape", "image=1,1,8,8", "--golden", "0"]));
    fails(jetrt(&["verify", &none]), "no golden vectors");
    fails(jetc(&["convert", &example("model.onnx"), "-o", &none, "--input-shape", "image=1,1,8,8", "--golden", "17"]), "--golden 17");
}

/// `jetrt info --root DIR` reads a board's files from a fixture tree laid
/// out as L4T lays them out (boards/tests/fixtures).
#[test]
fn info_reads_a_board_from_its_files() {
    let fx = root().join("boards/tests/fixtures");
    for (dir, board, l4t, mem_kb, gpus) in [
        ("jetson-orin-nano-devkit", "jetson-orin-nano-8gb", Some("R36.4.3"), 7802128u64, 1),
        ("jetson-xavier-nx-devkit", "jetson-xavier-nx", Some("R35.4.1"), 7796748, 0),
        ("generic-x86", "generic", None, 24576000, 0),
    ] {
        let o = ok(jetrt(&["info", "--root", &fx.join(dir).display().to_string(), "--json"]));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["board"], board, "{dir}: {v}");
        assert_eq!(v["l4t_release"].as_str(), l4t, "{dir}");
        assert_eq!(v["dram_bytes"].as_u64(), Some(mem_kb * 1024), "{dir}");
        assert!(v["cpu"]["cores"].as_u64().unwrap() >= 2 && v["cpu"]["model"].is_string(), "{dir}: {v}");
        assert_eq!(v["gpu"].as_array().map(Vec::len), Some(gpus), "{dir}: {v}");
    }
    let o = ok(jetrt(&["info", "--root", &fx.join("jetson-orin-nano-devkit").display().to_string()]));
    assert!(text(&o).contains("board:  jetson-orin-nano-8gb (Jetson Orin Nano 8GB"), "{}", text(&o));
    let o = ok(jetrt(&["info", "--root", &fx.join("jetson-nano-devkit").display().to_string()]));
    assert!(text(&o).contains("gpu:    Maxwell (sm_53, 128 CUDA cores), integrated (Tegra); jetrt runs the CPU backend"), "{}", text(&o));
    fails(jetrt(&["info", "--root", "/nonexistent-board-root"]), "not a folder");
}

/// `jetc inspect --board` compares a model's memory with what boards can spare.
#[test]
fn inspect_says_which_boards_a_model_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let jrt = converted(tmp.path());
    let o = ok(jetc(&["inspect", &jrt, "--board", "all", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let boards = v["boards"].as_array().unwrap();
    assert!(boards.len() >= 11, "{v}");
    for b in boards {
        assert_eq!(b["fits"], true, "the 20 KB digits model fits every board: {b}");
        assert!(b["needs_bytes"].as_u64().unwrap() >= v["file_bytes"].as_u64().unwrap());
    }
    let o = ok(jetc(&["inspect", &jrt, "--board", "jetson-nano"]));
    assert!(text(&o).contains("jetson-nano") && text(&o).contains("3.0 GiB spare: fits"), "{}", text(&o));
    fails(jetc(&["inspect", &jrt, "--board", "raspberry-pi"]), "no such board");
}

fn jetrt_on(board: &str, args: &[&str]) -> Output {
    let root = root().join("boards/tests/fixtures").join(board);
    Command::new(env!("CARGO_BIN_EXE_jetrt")).args(args).env("JETRT_ROOT", root).output().expect("jetrt runs")
}

/// `jetrt info --telemetry [--watch]` on fixture trees laid out as JetPack 6
/// (Orin Nano) and JetPack 4 (a hot Nano) lay out sysfs.
#[test]
fn info_reads_telemetry_from_a_board_s_files() {
    let o = ok(jetrt_on("jetson-orin-nano-devkit", &["info", "--telemetry", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &v["telemetry"];
    assert_eq!(t["power_mode"]["name"], "15W", "{t}");
    assert_eq!(t["rails"].as_array().map(Vec::len), Some(3), "{t}");
    assert_eq!(t["gpu"]["load_percent"].as_f64(), Some(14.3), "{t}");
    assert_eq!(t["emc_hz"].as_u64(), Some(2_133_000_000), "{t}");
    assert_eq!(t["thermal"].as_array().map(Vec::len), Some(9), "{t}");
    assert_eq!(t["throttling"].as_array().map(Vec::len), Some(0), "{t}");
    let o = ok(jetrt_on("jetson-nano-devkit", &["info", "--telemetry"]));
    let s = text(&o);
    assert!(s.contains("power mode: MAXN") && s.contains("POM_5V_IN 6.34") && s.contains("throttling: cooling device cpu-balanced"), "{s}");
    assert!(s.contains("memory (EMC): not readable"), "{s}");
    let o = ok(jetrt_on("jetson-nano-devkit", &["info", "--telemetry", "--watch", "0.05", "--count", "3"]));
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains("84.5 °C (CPU-therm)") && l.ends_with("THROTTLING")), "{lines:?}");
    let o = ok(jetrt_on("jetson-orin-nano-devkit", &["info", "--telemetry", "--watch", "0.05", "--count", "2", "--json"]));
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["seconds"].is_f64() && v["input_watts"].as_f64().unwrap() > 6.0, "{v}");
    }
    fails(jetrt(&["info", "--telemetry", "--watch", "0"]), "above 0");
}

/// `jetrt bench` reads the board before, during and after the measurement
/// and warns when it throttled.
#[test]
fn bench_warns_when_the_board_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let jrt = converted(dir.path());
    let o = ok(jetrt_on("jetson-nano-devkit", &["bench", &jrt, "--iterations", "3", "--warmup", "0", "--json"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning: the board throttled during the measurement") && err.contains("cpu-balanced"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["board"].as_str(), v["telemetry"]["throttled"].as_bool()), (Some("jetson-nano"), Some(true)), "{v}");
    assert!(v["telemetry"]["samples"].as_u64().unwrap() >= 2 && v["telemetry"]["peak_celsius"].as_f64() == Some(84.5), "{v}");
    let o = ok(jetrt_on("jetson-orin-nano-devkit", &["bench", &jrt, "--iterations", "3", "--warmup", "0"]));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    assert!(text(&o).contains("board: 51.2 -> 51.2 °C"), "{}", text(&o));
    assert!(text(&o).contains("power mode 15W, no throttling seen"), "{}", text(&o));
}

/// A model whose arena is larger than a board can spare: jetc convert
/// --board refuses to write it (and leaves what was there), jetrt refuses
/// to load it on that board, with the figures.
#[test]
fn memory_budgets_refuse_what_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.jrt");
    let big_s = big.display().to_string();
    std::fs::write(&big, b"an older file that must survive").unwrap();
    // 1.5 million 8x8 digits at once: a 3.9 GiB arena in a 19 KB file.
    let shape = "image=1500000,1,8,8";
    let onnx = example("model.onnx");
    let convert = |extra: &[&str]| {
        let mut a = vec!["convert", &onnx[..], "-o", &big_s, "--input-shape", shape, "--golden", "0", "-q"];
        a.extend_from_slice(extra);
        jetc(&a)
    };
    fails(convert(&["--board", "jetson-agx-orin-64gb", "--board", "jetson-nano"]), "not written: the model needs 3.9 GiB on jetson-nano");
    assert_eq!(std::fs::read(&big).unwrap(), b"an older file that must survive");
    fails(convert(&["--board", "jetson-pi"]), "no such board");
    ok(convert(&["--board", "jetson-agx-orin-64gb"]));
    let o = ok(jetc(&["inspect", &big_s, "--board", "all", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fits =
        |name: &str| v["boards"].as_array().unwrap().iter().find(|b| b["board"] == name).map(|b| (b["device"].clone(), b["fits"].clone()));
    assert_eq!(fits("jetson-nano"), Some(("cpu".into(), false.into())), "{v}");
    // On the GPU the device arena and the CUDA context come out of the same 8 GB.
    assert_eq!(fits("jetson-orin-nano-8gb"), Some(("cuda".into(), false.into())), "{v}");
    assert_eq!(fits("jetson-agx-orin-32gb"), Some(("cuda".into(), true.into())), "{v}");
    let npy = dir.path().join("x.npy").display().to_string();
    for args in [
        &["run", &big_s, "--input", &npy, "--output-dir", &dir.path().display().to_string()][..],
        &["bench", &big_s, "--iterations", "1"],
        &["serve", &big_s, "--http", "127.0.0.1:0"],
    ] {
        let o = jetrt_on("jetson-nano-devkit", args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(if args[0] == "serve" {
                "with 2 sessions needs 7.9 GiB on jetson-nano"
            } else {
                "big.jrt needs 3.9 GiB on jetson-nano"
            }) && err.contains("can spare 3.0 GiB")
                && err.contains("JETRT_MEMORY_CHECK=0"),
            "{args:?}: {err}"
        );
    }
    // On the CPU of an Orin Nano 8 GB it would fit: the check lets it through
    // to the next error (no input file here).
    fails(jetrt_on("jetson-orin-nano-devkit", &["run", &big_s, "--device", "cpu", "--input", &npy, "--output-dir", "/tmp"]), "x.npy");
}

/// The real GPIO and I2C openers (linux-embedded-hal) fail with the path
/// and the reason when the device is not there.
#[test]
fn pins_and_buses_that_are_not_there_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let jrt = converted(dir.path());
    fails(
        jetrt(&["serve", &jrt, "--http", "127.0.0.1:0", "--status-led", "/nonexistent/gpiochip9:3"]),
        "cannot open the GPIO chip /nonexistent/gpiochip9",
    );
    fails(jetrt(&["info", "--telemetry", "--i2c-temp", "/nonexistent/i2c-9:0x48"]), "cannot open the I2C bus /nonexistent/i2c-9");
    fails(jetrt(&["info", "--telemetry", "--i2c-temp", "i2c-1:0x80"]), "not a 7-bit address");
    // /dev/null opens but is no I2C adapter.
    fails(
        jetrt(&["info", "--telemetry", "--i2c-temp", "/dev/null:0x48"]),
        "/dev/null: ENOTTY: Not a typewriter (it is not an I2C adapter)",
    );
}

/// SIGTERM (what systemd sends) stops `jetrt serve` cleanly: it turns the
/// status LED off if it drives one, logs, and exits 0.
#[test]
fn serve_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let jrt = converted(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_jetrt"))
        .args(["serve", &jrt, "--http", "127.0.0.1:0", "--poll", "50ms", "--device", "cpu", "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on http://"), "{line}");
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("stopping on a signal after 0 requests"), "{err}");
}
