//! Shared helpers for the end-to-end tests: finding the generated test data
//! (tools/gen_testdata.sh), running a case through jetc and jetrt, and
//! comparing with the onnxruntime outputs stored beside it.

pub mod onnx_build;

use anyhow::{bail, Context, Result};
use jetrt::{Model, SessionOptions, TensorRef};
use jetrt_converter::{convert, ConvertOptions};
use jetrt_tools::npy::{self, Array};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where tools/gen_testdata.sh writes: `$JETRT_TESTDATA`, else
/// `<workspace>/target/testdata`.
pub fn testdata_dir() -> PathBuf {
    match std::env::var_os("JETRT_TESTDATA") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testdata"),
    }
}

/// Session options as `jetrt` would make them here: the environment's
/// `JETRT_KERNELS`, `JETRT_INT8_KERNELS` and CUDA settings (so that
/// `JETRT_KERNELS=avx2_fma cargo test` runs every test on the AVX2 kernels).
pub fn session_options() -> SessionOptions {
    jetrt_tools::env::session_options().expect("the JETRT_* environment variables")
}

/// The converter's kernels as `jetc` would pick them here (see
/// [`session_options`]).
pub fn kernels() -> jetrt_converter::Kernels {
    jetrt_tools::env::converter_kernels().expect("JETRT_KERNELS / JETRT_INT8_KERNELS")
}

/// Whether missing data must fail the test (CI) rather than skip it.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The test data folder, or `None` (after saying so loudly) when it has not
/// been generated. Under CI=true missing data fails the test.
pub fn require_testdata(test: &str) -> Option<PathBuf> {
    let dir = testdata_dir();
    if dir.join("manifest.json").is_file() {
        return Some(dir);
    }
    let msg = format!("test data missing in {}: run tools/gen_testdata.sh (or the README's test command)", dir.display());
    if on_ci() {
        panic!("{test}: {msg}");
    }
    eprintln!("\n*** SKIPPED {test}: {msg} ***\n");
    None
}

/// `target/testdata/<sub>` for a test, or `None` (said loudly) when it has
/// not been generated; missing under CI=true fails the test. `marker` is a
/// file the generator writes last.
pub fn require_case(test: &str, sub: &str, marker: &str) -> Option<PathBuf> {
    let dir = require_testdata(test)?.join(sub);
    if dir.join(marker).is_file() {
        return Some(dir);
    }
    let msg = format!("{} missing: run tools/gen_testdata.sh", dir.join(marker).display());
    if on_ci() {
        panic!("{test}: {msg}");
    }
    eprintln!("\n*** SKIPPED {test}: {msg} ***\n");
    None
}

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub zoo: Vec<String>,
    pub zoo_random: Vec<String>,
    pub ops: Vec<String>,
    pub external: Vec<String>,
    pub external_bad: Vec<BadCase>,
}

#[derive(Debug, Deserialize)]
pub struct BadCase {
    pub path: String,
    pub expect: String,
}

pub fn manifest(dir: &Path) -> Manifest {
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json readable");
    serde_json::from_str(&text).expect("manifest.json well formed")
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    pub name: String,
    pub file: String,
}

#[derive(Debug, Deserialize)]
pub struct Case {
    pub name: String,
    pub inputs: Vec<Entry>,
    pub outputs: Vec<Entry>,
    pub rtol: f64,
    pub atol: f64,
    #[serde(default)]
    pub ops: Vec<String>,
}

/// How far one output is from its reference.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub output: String,
    pub max_abs: f64,
    pub cosine: f64,
    /// Elements outside `atol + rtol·|expected|`.
    pub mismatches: usize,
    pub len: usize,
}

/// Compares like numpy.allclose (NaN equal to NaN) and measures.
pub fn compare(output: &str, got: &[f32], want: &[f32], rtol: f64, atol: f64) -> Comparison {
    let (mut max_abs, mut dot, mut ng, mut nw, mut mismatches) = (0f64, 0f64, 0f64, 0f64, 0usize);
    for (&g, &w) in got.iter().zip(want) {
        let (g, w) = (g as f64, w as f64);
        let both_nan = (g.is_nan() && w.is_nan()) || (g.is_infinite() && g == w);
        let d = (g - w).abs();
        if !both_nan {
            // NaN against a number fails too.
            let within = d <= atol + rtol * w.abs();
            if !within {
                mismatches += 1;
            }
            if d.is_finite() {
                max_abs = max_abs.max(d);
            }
            if g.is_finite() && w.is_finite() {
                dot += g * w;
                ng += g * g;
                nw += w * w;
            }
        }
    }
    if got.len() != want.len() {
        mismatches += got.len().abs_diff(want.len());
    }
    let cosine = if ng == 0.0 && nw == 0.0 { 1.0 } else { dot / (ng.sqrt() * nw.sqrt()).max(f64::MIN_POSITIVE) };
    Comparison { output: output.into(), max_abs, cosine, mismatches, len: want.len() }
}

/// Reads a case folder.
pub fn read_case(dir: &Path) -> Result<Case> {
    let text = std::fs::read_to_string(dir.join("case.json")).with_context(|| format!("{}: no case.json", dir.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// Converts the case's model with jetc's library, writes and reopens the
/// `.jrt` with the runtime, runs it on the stored inputs and compares every
/// output with its stored reference.
pub fn run_case(dir: &Path, threads: usize) -> Result<Vec<Comparison>> {
    let case = read_case(dir)?;
    let conv = convert(&dir.join("model.onnx"), &ConvertOptions { kernels: kernels(), ..Default::default() })?;
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("model.jrt");
    conv.write(&path)?;
    let model = Model::open(&path)?;
    let mut session = model.session(session_options().with_threads(threads))?;
    for e in &case.inputs {
        let a = npy::read(&dir.join(&e.file))?;
        session.set_input(&e.name, TensorRef::from_bytes(a.dtype, &a.shape, &a.data))?;
    }
    session.run_loaded()?;
    let outputs = model.outputs();
    let mut out = Vec::new();
    for e in &case.outputs {
        let want = npy::read(&dir.join(&e.file))?;
        let Some(i) = outputs.iter().position(|t| t.name == e.name) else { bail!("the converted model has no output {:?}", e.name) };
        if outputs[i].shape != want.shape {
            bail!("output {:?}: shape {:?}, expected {:?}", e.name, outputs[i].shape, want.shape);
        }
        let got = Array { dtype: outputs[i].dtype, shape: outputs[i].shape.clone(), data: session.output(i).context("output")?.to_vec() };
        match (got.to_f32(), want.to_f32()) {
            (Some(g), Some(w)) => out.push(compare(&e.name, &g, &w, case.rtol, case.atol)),
            _ => {
                let same = got == want;
                out.push(Comparison { output: e.name.clone(), max_abs: 0.0, cosine: 1.0, mismatches: usize::from(!same), len: 1 });
            }
        }
    }
    Ok(out)
}
