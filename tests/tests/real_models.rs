//! Real exported models against onnxruntime (tools/gen_realmodels.py →
//! target/testdata/real): torchvision ResNet-18, MobileNet v2/v3,
//! EfficientNet-B0 and a 4-layer transformer encoder exported by torch.onnx
//! at opsets 13 and 17 (weights seeded random), a YOLOv8n-style detector, a
//! RegNetX-like network and a ViT-Tiny-style encoder of our own generator
//! (tools/gen_bench_models.py),
//! and the PP-OCRv5 det/rec/cls models with their trained weights (real
//! PaddlePaddle exports).
//!
//! Each is converted from its symbolic-shape ONNX with `--input-shape`,
//! run, and compared by max abs error and cosine similarity. Two of them are
//! also converted for a second shape, and the first file refuses that shape
//! with an error naming the shape it was built for.

use anyhow::{Context, Result};
use jetrt::{Model, TensorRef};
use jetrt_converter::{convert, parse_input_shape, ConvertOptions};
use jetrt_tests::{compare, require_testdata, Comparison};
use jetrt_tools::npy;
use serde::Deserialize;
use std::path::Path;

/// Cosine similarity every output must reach.
const MIN_COSINE: f64 = 0.99999;
/// Max abs error allowed, relative to max(1, the largest |reference|).
const MAX_ABS_REL: f64 = 5e-4;

#[derive(Deserialize)]
struct Entry {
    name: String,
    file: String,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    source: String,
    inputs: Vec<Entry>,
    outputs: Vec<Entry>,
    input_shapes: Vec<String>,
    other_shape: Option<String>,
}

/// Converts `dir/model.onnx` for `shape`, runs it on `prefix`input_0.npy and
/// compares with `prefix`expected_K.npy. Returns the comparisons and the
/// model file.
fn run(dir: &Path, case: &Case, shape: &str, prefix: &str, tmp: &Path) -> Result<(Vec<(Comparison, f64)>, std::path::PathBuf)> {
    let input = &case.inputs[0].name;
    let opts = ConvertOptions {
        input_shapes: vec![parse_input_shape(&format!("{input}={shape}"))?],
        kernels: jetrt_tests::kernels(),
        ..Default::default()
    };
    let conv = convert(&dir.join("model.onnx"), &opts).with_context(|| format!("converting {} for {shape}", case.name))?;
    let path = tmp.join(format!("{}_{}.jrt", case.name, shape.replace(',', "x")));
    conv.write(&path)?;
    let model = Model::open(&path)?;
    let mut session = model.session(jetrt_tests::session_options().with_threads(2))?;
    let a = npy::read(&dir.join(format!("{prefix}{}", case.inputs[0].file)))?;
    session.set_input(input, TensorRef::from_bytes(a.dtype, &a.shape, &a.data))?;
    session.run_loaded()?;
    let outputs = model.outputs();
    let mut out = Vec::new();
    for e in &case.outputs {
        let want = npy::read(&dir.join(format!("{prefix}{}", e.file)))?.to_f32().context("float output")?;
        let i = outputs.iter().position(|t| t.name == e.name).with_context(|| format!("no output {:?}", e.name))?;
        let output = session.output(i).context("output")?;
        let got = output.as_slice::<f32>()?;
        let scale = want.iter().fold(1.0f64, |m, &v| m.max(v.abs() as f64));
        out.push((compare(&e.name, got, &want, 0.0, f64::INFINITY), scale));
    }
    Ok((out, path))
}

#[test]
fn real_exported_models_match_onnxruntime() {
    let Some(td) = require_testdata("real_models") else { return };
    let root = td.join("real");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("index.json")).expect("real/index.json")).unwrap();
    let names: Vec<String> = index["cases"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(names.len() >= 16, "only {} real-model cases", names.len());
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for name in &names {
        let dir = root.join(name);
        let case: Case = serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
        let shape = case.input_shapes[0].split_once('=').unwrap().1.to_string();
        let mut shapes = vec![(shape.clone(), "")];
        if let Some(o) = &case.other_shape {
            shapes.push((o.clone(), "other_"));
        }
        let mut first_file = None;
        for (shape, prefix) in &shapes {
            match run(&dir, &case, shape, prefix, tmp.path()) {
                Ok((results, file)) => {
                    first_file.get_or_insert(file);
                    for (c, scale) in results {
                        report.push(format!(
                            "{name} [{shape}] {}: max abs {:.2e} (of {scale:.3}), cosine {:.7}",
                            c.output, c.max_abs, c.cosine
                        ));
                        if c.cosine < MIN_COSINE || c.max_abs > MAX_ABS_REL * scale || c.len == 0 {
                            failures.push(format!(
                                "{name} [{shape}] ({}): {} max abs {:.3e}, cosine {:.7}",
                                case.source, c.output, c.max_abs, c.cosine
                            ));
                        }
                    }
                }
                Err(e) => failures.push(format!("{name} [{shape}]: {e:#}")),
            }
        }
        // The file built for the first shape refuses the second, saying why.
        if let (Some(other), Some(file)) = (&case.other_shape, first_file) {
            let model = Model::open(&file).unwrap();
            let mut s = model.session(jetrt_tests::session_options()).unwrap();
            let a = npy::read(&dir.join(format!("other_{}", case.inputs[0].file))).unwrap();
            let e = s.set_input(0, TensorRef::from_bytes(a.dtype, &a.shape, &a.data)).err();
            let msg = e.map(|e| e.to_string()).unwrap_or_default();
            if !(msg.contains(&format!("converted for [{}]", shape.replace(',', ", "))) && msg.contains(&format!("={other}"))) {
                failures.push(format!("{name}: feeding shape {other} to the file built for {shape} gave: {msg:?}"));
            }
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{} failing:\n{}", failures.len(), failures.join("\n"));
}

/// The default golden vectors take a few percent of the weights at most
/// (a detector's image and raw boxes would take more than its weights),
/// and the device's check passes on them: inputs made from seeds, large
/// outputs sampled.
#[test]
fn default_golden_vectors_are_small_and_verify() {
    let Some(td) = require_testdata("real_models") else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (name, shape) in [("yolov8n_style", "images=1,3,320,320"), ("mobilenet_v2_op17", "input=1,3,224,224")] {
        let dir = td.join("real").join(name);
        let mut job = jetrt_converter::job::Job::default();
        job.input_shapes = vec![parse_input_shape(shape).unwrap()];
        job.kernels = jetrt_tests::kernels();
        let out = tmp.path().join(format!("{name}.jrt"));
        let done = jetrt_converter::job::run(&dir.join("model.onnx"), &out, &job).unwrap();
        let r = &done.report;
        assert_eq!(r.golden, 2, "{name}");
        assert!(
            r.golden_bytes * 100 <= r.weights_bytes * 3,
            "{name}: golden vectors {} B beside {} B of weights",
            r.golden_bytes,
            r.weights_bytes
        );
        let model = Model::open(&out).unwrap();
        let checks = jetrt::golden::check(&mut model.session(jetrt_tests::session_options().with_threads(2)).unwrap()).unwrap();
        assert_eq!(checks.len(), 2 * model.outputs().len(), "{name}");
        assert!(checks.iter().all(|c| c.pass), "{name}: {checks:?}");
        eprintln!(
            "{name}: {} golden vectors in {} B, weights {} B, file {} B",
            r.golden, r.golden_bytes, r.weights_bytes, done.memory.file_bytes
        );
    }
}
