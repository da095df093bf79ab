//! Quantization and pruning on models with trained weights and labelled
//! held-out data (tools/gen_quantdata.py → target/testdata/quant): a
//! digits MLP trained with scikit-learn and the README's digits CNN.
//!
//! Every precision and pruning mode is converted from the ONNX file with
//! calibration data, and its top-1 accuracy on the held-out split is
//! measured with the runtime and held to a bound against the float model;
//! the plans must really run in integer arithmetic (no float layer left
//! behind a quantize/dequantize pair), and the files must shrink.

use anyhow::{Context, Result};
use jetrt::{Model, TensorRef};
use jetrt_converter::quant::{CalibMethod, LayerPrecision, Precision, Prune, QuantOptions, QuantReport};
use jetrt_converter::{convert, model_inputs, parse_input_shape, ConvertOptions};
use jetrt_tools::{npy, samples};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Meta {
    input: String,
    ort_fp32_accuracy: f64,
    ort_int8_qdq_accuracy: f64,
}

fn case(test: &str, name: &str) -> Option<PathBuf> {
    jetrt_tests::require_case(test, &format!("quant/{name}"), "meta.json")
}

struct Converted {
    path: PathBuf,
    quant: Option<QuantReport>,
    weights: u64,
    fp32_weights: u64,
    ops: std::collections::BTreeMap<String, usize>,
}

fn convert_as(dir: &Path, shape: &str, precision: Precision, prune: Option<Prune>, max_drop: Option<f64>, tmp: &Path) -> Result<Converted> {
    let mut opts = ConvertOptions { input_shapes: vec![parse_input_shape(shape)?], kernels: jetrt_tests::kernels(), ..Default::default() };
    if precision != Precision::Fp32 || prune.is_some() {
        let inputs = model_inputs(&dir.join("model.onnx"), &opts)?;
        let samples = samples::load("--calib", &dir.join("calib"), &inputs, &Default::default(), 256)?;
        opts.quant = Some(QuantOptions {
            precision,
            method: CalibMethod::Entropy,
            prune,
            max_drop,
            samples,
            threads: 2,
            kernels: jetrt_tests::kernels(),
            ..Default::default()
        });
    }
    let conv = convert(&dir.join("model.onnx"), &opts)?;
    let tag = format!("{precision:?}_{}_{}", prune.map_or("none".into(), |p| p.name().replace([':', '='], "_")), max_drop.unwrap_or(0.0));
    let path = tmp.join(format!("{}_{tag}.jrt", dir.file_name().unwrap().to_string_lossy()));
    conv.write(&path)?;
    let r = conv.report;
    Ok(Converted { path, quant: r.quant, weights: r.weights_bytes, fp32_weights: r.fp32_weights_bytes, ops: r.ops })
}

/// Top-1 accuracy of a `.jrt` (input batch 1) on the held-out split.
fn accuracy(path: &Path, dir: &Path) -> Result<f64> {
    let x = npy::read(&dir.join("test_x.npy"))?;
    let y = npy::read(&dir.join("test_y.npy"))?;
    let labels: Vec<i64> = y.data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
    let model = Model::open(path)?;
    let shape = model.inputs()[0].shape.clone();
    let per = shape.iter().product::<usize>() * 4;
    let mut s = model.session(jetrt_tests::session_options().with_threads(2))?;
    let mut right = 0;
    for (i, &label) in labels.iter().enumerate() {
        s.set_input(0, TensorRef::from_bytes(jetrt::DType::F32, &shape, &x.data[i * per..(i + 1) * per]))?;
        s.run_loaded()?;
        let out = s.output(0).context("float output")?;
        let p = out.as_slice::<f32>()?;
        let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        right += usize::from(best as i64 == label);
    }
    Ok(right as f64 / labels.len() as f64)
}

fn meta(dir: &Path) -> Meta {
    serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap()
}

/// Only integer layers: every layer with weights became QConv2d/QGemm.
fn all_int8(c: &Converted) -> bool {
    ["Conv2d", "Conv2dAct", "Gemm", "GemmAct", "MatMul", "MatMulAct"].iter().all(|o| !c.ops.contains_key(*o))
        && c.ops.keys().any(|o| o.starts_with('Q'))
}

fn sparsity(q: &QuantReport) -> f64 {
    q.layers.iter().map(|l| l.sparsity).fold(1.0, f64::min)
}

struct Row {
    mode: String,
    accuracy: f64,
    weights: u64,
}

fn table(name: &str, fp32_weights: u64, rows: &[Row]) {
    eprintln!("\n{name}: held-out top-1 accuracy (jetrt runtime)");
    for r in rows {
        eprintln!(
            "  {:<28} {:>7.2}%   weights {:>7} B ({:.1}% of fp32)",
            r.mode,
            100.0 * r.accuracy,
            r.weights,
            100.0 * r.weights as f64 / fp32_weights as f64
        );
    }
}

#[test]
fn digits_mlp_precisions_and_pruning() -> Result<()> {
    let Some(dir) = case("digits_mlp_precisions_and_pruning", "digits_mlp") else { return Ok(()) };
    let m = meta(&dir);
    let tmp = tempfile::tempdir()?;
    let shape = format!("{}=1,64", m.input);
    let run = |p: Precision, prune: Option<Prune>, drop: Option<f64>| -> Result<(Converted, f64)> {
        let c = convert_as(&dir, &shape, p, prune, drop, tmp.path())?;
        let a = accuracy(&c.path, &dir)?;
        Ok((c, a))
    };
    let mut rows = Vec::new();
    let (fp32, acc32) = run(Precision::Fp32, None, None)?;
    assert!((acc32 - m.ort_fp32_accuracy).abs() < 1e-9, "fp32 {acc32} vs onnxruntime {}", m.ort_fp32_accuracy);
    rows.push(Row { mode: "fp32".into(), accuracy: acc32, weights: fp32.weights });

    let (int8, acc8) = run(Precision::Int8, None, None)?;
    rows.push(Row { mode: "int8".into(), accuracy: acc8, weights: int8.weights });
    assert!(all_int8(&int8), "int8 plan still has float layers: {:?}", int8.ops);
    assert!(acc8 >= acc32 - 0.005, "int8 loses {:.2} points", 100.0 * (acc32 - acc8));
    assert!(acc8 >= m.ort_int8_qdq_accuracy - 0.005, "int8 {acc8} vs onnxruntime's int8 {}", m.ort_int8_qdq_accuracy);
    assert!(int8.weights * 10 <= fp32.weights * 3, "int8 weights {} of {}", int8.weights, fp32.weights);

    let (int4, acc4) = run(Precision::Int4, None, None)?;
    rows.push(Row { mode: "int4".into(), accuracy: acc4, weights: int4.weights });
    assert_eq!(int4.ops.get("Q4Gemm"), Some(&3), "{:?}", int4.ops);
    assert!(acc4 >= acc32 - 0.015, "int4 loses {:.2} points", 100.0 * (acc32 - acc4));
    assert!(int4.weights * 5 <= fp32.weights, "int4 weights {} of {}", int4.weights, fp32.weights);

    for (prune, min_sparsity, max_loss) in
        [(Prune::Magnitude(0.5), 0.49, 0.02), (Prune::TwoFour, 0.49, 0.03), (Prune::Channels(0.25), 0.0, 0.03)]
    {
        let (c, acc) = run(Precision::Fp32, Some(prune), None)?;
        let q = c.quant.as_ref().context("pruning report")?;
        rows.push(Row { mode: format!("fp32 + {}", prune.name()), accuracy: acc, weights: c.weights });
        assert!(sparsity(q) >= min_sparsity, "{}: sparsity {}", prune.name(), sparsity(q));
        assert!(acc >= acc32 - max_loss, "{} loses {:.2} points", prune.name(), 100.0 * (acc32 - acc));
        if let Prune::Channels(_) = prune {
            assert!(q.pruned_channels > 0 && c.weights < fp32.weights, "channels: {} removed, {} B", q.pruned_channels, c.weights);
        } else {
            // Stored compactly: mask + values, run by SpGemm.
            assert_eq!(c.ops.get("SpGemm"), Some(&3), "{:?}", c.ops);
            assert!(c.weights * 10 <= fp32.weights * 6, "{}: {} of {} bytes", prune.name(), c.weights, fp32.weights);
        }
        // Pruning combines with quantization.
        let (c8, acc8p) = run(Precision::Int8, Some(prune), None)?;
        rows.push(Row { mode: format!("int8 + {}", prune.name()), accuracy: acc8p, weights: c8.weights });
        assert!(all_int8(&c8));
        assert!(acc8p >= acc32 - max_loss - 0.005, "int8 + {} loses {:.2} points", prune.name(), 100.0 * (acc32 - acc8p));
    }

    // --max-drop: an aggressive prune, then as many float layers as the
    // limit needs; the measured drop must end within it.
    let (c, acc) = run(Precision::Int4, Some(Prune::Magnitude(0.7)), Some(0.02))?;
    let q = c.quant.as_ref().unwrap();
    rows.push(Row {
        mode: format!("int4 + magnitude=0.7, max-drop 0.02 (fp32: {})", q.kept_fp32.len()),
        accuracy: acc,
        weights: c.weights,
    });
    assert!(q.drop <= 0.02, "drop {} after keeping {:?}", q.drop, q.kept_fp32);
    assert!(q.layers.iter().all(|l| l.sensitivity.is_some()));
    table("digits MLP", fp32.fp32_weights, &rows);
    Ok(())
}

#[test]
fn digits_cnn_int8_runs_in_integers() -> Result<()> {
    let Some(dir) = case("digits_cnn_int8_runs_in_integers", "digits_cnn") else { return Ok(()) };
    let m = meta(&dir);
    let tmp = tempfile::tempdir()?;
    let shape = format!("{}=1,1,8,8", m.input);
    let fp32 = convert_as(&dir, &shape, Precision::Fp32, None, None, tmp.path())?;
    let acc32 = accuracy(&fp32.path, &dir)?;
    assert!((acc32 - m.ort_fp32_accuracy).abs() < 1e-9);
    let int8 = convert_as(&dir, &shape, Precision::Int8, None, None, tmp.path())?;
    let acc8 = accuracy(&int8.path, &dir)?;
    // Conv → MaxPool → Conv → Flatten → Gemm stays int8 end to end: one
    // quantize step at the input (per channel or per tensor), no
    // Dequantize.
    assert!(all_int8(&int8), "{:?}", int8.ops);
    let quantizes = ["Quantize", "QuantizeChannels"].iter().map(|o| int8.ops.get(*o).copied().unwrap_or(0)).sum::<usize>();
    assert_eq!(quantizes, 1, "{:?}", int8.ops);
    assert!(!int8.ops.contains_key("Dequantize"));
    assert!(acc8 >= acc32 - 0.005, "int8 loses {:.2} points", 100.0 * (acc32 - acc8));
    let int4 = convert_as(&dir, &shape, Precision::Int4, None, None, tmp.path())?;
    let acc4 = accuracy(&int4.path, &dir)?;
    let q = int4.quant.as_ref().unwrap();
    assert!(q.layers.iter().any(|l| l.precision == LayerPrecision::Int4) && q.layers.iter().any(|l| l.precision == LayerPrecision::Int8));
    assert!(acc4 >= acc32 - 0.02, "int4 loses {:.2} points", 100.0 * (acc32 - acc4));
    // Magnitude pruning leaves the float convolutions sparse (SpConv2d).
    let sp = convert_as(&dir, &shape, Precision::Fp32, Some(Prune::Magnitude(0.3)), None, tmp.path())?;
    let acc_sp = accuracy(&sp.path, &dir)?;
    assert!(sp.ops.get("SpConv2d").is_some_and(|&n| n >= 1), "{:?}", sp.ops);
    assert!(acc_sp >= acc32 - 0.02, "magnitude=0.3 loses {:.2} points", 100.0 * (acc32 - acc_sp));
    table(
        "digits CNN",
        fp32.fp32_weights,
        &[
            Row { mode: "fp32".into(), accuracy: acc32, weights: fp32.weights },
            Row {
                mode: format!("int8 (onnxruntime int8: {:.2}%)", 100.0 * m.ort_int8_qdq_accuracy),
                accuracy: acc8,
                weights: int8.weights,
            },
            Row { mode: "int4 (Gemm int4, convs int8)".into(), accuracy: acc4, weights: int4.weights },
            Row { mode: "fp32 + magnitude=0.3 (sparse)".into(), accuracy: acc_sp, weights: sp.weights },
        ],
    );
    Ok(())
}
