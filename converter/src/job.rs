//! One whole conversion, as `jetc convert` and Python's `jetrt.convert` run
//! it: options as plain values → calibration and reference samples loaded,
//! the model converted, checked against boards, written atomically and
//! reopened to prove it validates; the report as JSON (the data: the CLI
//! renders its text from it).

use crate::quant::{CalibMethod, Precision, Progress, Prune, QuantOptions, QuantReport};
use crate::samples::{self, ImagePrep};
use crate::tensor::Tensor;
use crate::{ConvertError, ConvertOptions, IoInfo, Kernels, Report, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Random samples stand in for calibration data when none is given (int4
/// or pruning alone): this many.
const RANDOM_SAMPLES: usize = 8;

/// Where a job's news goes (samples loaded, a reference not stored): one
/// line at a time.
#[derive(Clone)]
pub struct Notes(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Notes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notes")
    }
}

impl Notes {
    /// Each line on stderr, indented under the tool's own.
    pub fn stderr() -> Notes {
        Notes(Arc::new(|line: &str| eprintln!("  {line}")))
    }
}

/// Draws `stage [#####.....] done/total` on stderr when it is a terminal;
/// otherwise one line per stage. (A progress-bar crate would bring a
/// terminal library for three lines of output.)
pub fn stderr_progress() -> Progress {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal();
    Progress(Arc::new(move |stage: &str, done: usize, total: usize| {
        let mut e = std::io::stderr().lock();
        if tty {
            let width = 30;
            let fill = (done * width).checked_div(total).unwrap_or(width);
            let _ = write!(e, "\r  {stage:<12} [{}{}] {done}/{total}", "#".repeat(fill), ".".repeat(width - fill));
            if done == total {
                let _ = writeln!(e);
            }
        } else if done == 0 || done == total {
            let _ = writeln!(e, "  {stage}: {done}/{total}");
        }
    }))
}

/// What to convert into what: the options of `jetc convert`, each named
/// after its flag.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Job {
    /// `--input-shape NAME=D0,D1,...`
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// `--bind NAME=FILE.npy`: inputs fixed to a value.
    pub bind: Vec<(String, Tensor)>,
    /// `--name`: the model name stored (default: the ONNX file's stem).
    pub name: Option<String>,
    /// `--golden N`: golden test vectors to store (0-16).
    pub golden: usize,
    pub precision: Precision,
    /// `--calib DIR`: a folder of `INPUT.K.npy` files or images.
    pub calib: Option<PathBuf>,
    pub calib_method: CalibMethod,
    pub calib_limit: usize,
    /// int4 weights that share one scale.
    pub group_size: usize,
    pub max_drop: Option<f64>,
    pub prune: Option<Prune>,
    /// How calibration and reference images become input tensors.
    pub image: ImagePrep,
    /// `--drift-ref DIR` (default: the calibration samples).
    pub drift_ref: Option<PathBuf>,
    pub drift_ref_limit: usize,
    pub no_drift_ref: bool,
    /// `--board`: refuse to write a model that does not fit these boards.
    pub boards: Vec<&'static jetrt_boards::Profile>,
    /// CUBIN images to store (`--cuda-arch`, compiled by the caller).
    pub kernel_images: Vec<jetrt_format::kernels::KernelImage>,
    /// The CPU kernels the converter runs the model on.
    pub kernels: Kernels,
    /// Calibration and evaluation progress.
    pub progress: Option<Progress>,
    pub notes: Option<Notes>,
}

impl Default for Job {
    fn default() -> Self {
        Job {
            input_shapes: Vec::new(),
            bind: Vec::new(),
            name: None,
            golden: 2,
            precision: Precision::Fp32,
            calib: None,
            calib_method: CalibMethod::Mse,
            calib_limit: 256,
            group_size: 32,
            max_drop: None,
            prune: None,
            image: ImagePrep::default(),
            drift_ref: None,
            drift_ref_limit: 1000,
            no_drift_ref: false,
            boards: Vec::new(),
            kernel_images: Vec::new(),
            kernels: Kernels::default(),
            progress: None,
            notes: None,
        }
    }
}

impl Job {
    fn note(&self, line: &str) {
        if let Some(n) = &self.notes {
            (n.0)(line);
        }
    }

    /// The options that fix the model's graph (before samples are loaded).
    pub fn convert_options(&self) -> ConvertOptions {
        ConvertOptions {
            input_shapes: self.input_shapes.clone(),
            name: self.name.clone(),
            bind: self.bind.clone(),
            quant: None,
            drift_ref: None,
            golden: self.golden,
            kernels: self.kernels,
        }
    }
}

/// A conversion done: the file is written and validates.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub report: Report,
    pub output: PathBuf,
    pub seconds: f64,
    pub onnx_bytes: u64,
    /// The written file's memory figures, as the runtime reads them.
    pub memory: jetrt::MemoryInfo,
}

fn bad(what: &str, reason: impl std::fmt::Display) -> ConvertError {
    ConvertError::Data { what: what.to_string(), reason: reason.to_string() }
}

/// Converts `model` into `output` as `job` asks.
pub fn run(model: &Path, output: &Path, job: &Job) -> Result<Outcome> {
    let t0 = std::time::Instant::now();
    if job.golden > jetrt_format::golden::MAX_VECTORS {
        return Err(bad(&format!("--golden {}", job.golden), format!("at most {} vectors", jetrt_format::golden::MAX_VECTORS)));
    }
    let mut opts = job.convert_options();
    let inputs = Inputs { model, opts: &job.convert_options(), known: std::cell::OnceCell::new() };
    opts.quant = quant_options(job, &inputs)?;
    opts.drift_ref = drift_samples(job, opts.quant.as_ref(), &inputs)?;
    let mut conv = crate::convert(model, &opts)?;
    conv.file.kernels = job.kernel_images.clone();
    if !job.boards.is_empty() {
        let bytes = conv.file.to_bytes();
        let m =
            jetrt::Model::from_bytes(&bytes).map_err(|e| ConvertError::Output(format!("the converted model does not validate: {e}")))?;
        let over: Vec<String> = job
            .boards
            .iter()
            .map(|p| jetrt::budget::board_budget(&m, p))
            .filter(|b| !b.fits())
            .map(|b| jetrt::budget::budget_message(&b, "the model"))
            .collect();
        if !over.is_empty() {
            return Err(ConvertError::Output(format!("{} not written: {}", output.display(), over.join("; "))));
        }
    }
    conv.write(output)?;
    let m = jetrt::Model::open(output)
        .map_err(|e| ConvertError::Output(format!("the written file {} does not validate: {e}", output.display())))?;
    Ok(Outcome {
        report: conv.report,
        output: output.to_path_buf(),
        seconds: t0.elapsed().as_secs_f64(),
        onnx_bytes: std::fs::metadata(model).map_or(0, |m| m.len()),
        memory: m.info().memory,
    })
}

/// The model's inputs as it will be converted, read from the ONNX file the
/// first time calibration or reference samples need them.
struct Inputs<'a> {
    model: &'a Path,
    opts: &'a ConvertOptions,
    known: std::cell::OnceCell<Vec<IoInfo>>,
}

impl Inputs<'_> {
    fn get(&self) -> Result<&[IoInfo]> {
        if let Some(v) = self.known.get() {
            return Ok(v);
        }
        let v = crate::model_inputs(self.model, self.opts)?;
        Ok(self.known.get_or_init(|| v))
    }
}

fn quant_options(job: &Job, inputs: &Inputs<'_>) -> Result<Option<QuantOptions>> {
    if job.precision == Precision::Fp32 && job.prune.is_none() {
        if job.max_drop.is_some() {
            return Err(bad("--max-drop", "applies to --precision int8/int4 or --prune"));
        }
        return Ok(None);
    }
    if job.group_size < 2 || !job.group_size.is_multiple_of(2) {
        return Err(bad(&format!("--group-size {}", job.group_size), "must be even and at least 2"));
    }
    let inputs = inputs.get()?;
    let (samples, random) = match &job.calib {
        Some(dir) => (samples::load("--calib", dir, inputs, &job.image, job.calib_limit)?, false),
        None if job.precision == Precision::Int8 => {
            return Err(bad("--precision int8", "needs calibration data: --calib DIR (a folder of INPUT.K.npy files or images)"));
        }
        None => (samples::random(inputs, RANDOM_SAMPLES)?, true),
    };
    job.note(&format!("calibration: {} sample(s){}", samples.len(), if random { " (random: no --calib given)" } else { "" }));
    Ok(Some(QuantOptions {
        precision: job.precision,
        method: job.calib_method,
        group_size: job.group_size,
        max_drop: job.max_drop,
        prune: job.prune,
        samples,
        random_samples: random,
        threads: 0,
        kernels: job.kernels,
        progress: job.progress.clone(),
    }))
}

/// The drift reference samples: `drift_ref`, else the calibration samples
/// (none when they are random stand-ins or `no_drift_ref`).
fn drift_samples(job: &Job, quant: Option<&QuantOptions>, inputs: &Inputs<'_>) -> Result<Option<Vec<Vec<Tensor>>>> {
    if job.no_drift_ref {
        return Ok(None);
    }
    let samples = match (&job.drift_ref, quant, &job.calib) {
        (Some(dir), _, _) => samples::load("--drift-ref", dir, inputs.get()?, &job.image, job.drift_ref_limit)?,
        (None, Some(qo), _) if !qo.random_samples => qo.samples.clone(),
        (None, None, Some(dir)) => samples::load("--calib", dir, inputs.get()?, &job.image, job.calib_limit)?,
        _ => return Ok(None),
    };
    let needed = crate::drift::MIN_SAMPLES;
    if samples.len() < needed {
        if job.drift_ref.is_some() {
            return Err(bad(
                "--drift-ref",
                format!("the drift reference needs at least {needed} samples, the folder has {}", samples.len()),
            ));
        }
        // Only implied by --calib: the file is still made, without one.
        job.note(&format!(
            "warning: no drift reference stored: the {} calibration sample(s) are fewer than the {needed} it needs (give more, or \
             --drift-ref DIR)",
            samples.len()
        ));
        return Ok(None);
    }
    job.note(&format!("drift reference: {} sample(s)", samples.len()));
    Ok(Some(samples))
}

impl Outcome {
    /// The report as `jetc convert --report` writes it.
    pub fn to_json(&self) -> Value {
        let r = &self.report;
        let file_bytes = self.memory.file_bytes as u64;
        let io =
            |v: &[IoInfo]| v.iter().map(|t| json!({"name": t.name, "dtype": t.dtype.numpy_name(), "shape": t.shape})).collect::<Vec<_>>();
        let mut obj = json!({
            "source": r.source.display().to_string(),
            "output": self.output.display().to_string(),
            "seconds": self.seconds,
            "opset": r.opset,
            "onnx_nodes": r.onnx_nodes,
            "folded_nodes": r.folded,
            "identity_nodes_removed": r.identities,
            "passes": r.passes.iter().map(|(p, n)| json!({"pass": p, "nodes": n})).collect::<Vec<_>>(),
            "steps": r.steps,
            "ops": r.ops,
            "inputs": io(&r.inputs),
            "outputs": io(&r.outputs),
            "weights_bytes": r.weights_bytes,
            "arena_bytes": r.arena_bytes,
            "intermediate_bytes": r.intermediate_bytes,
            "scratch_bytes_per_thread": self.memory.scratch_bytes_per_thread,
            "scratch_bytes_shared": self.memory.scratch_bytes_shared,
            "warnings": r.warnings,
            "file_bytes": file_bytes,
            "onnx_bytes": self.onnx_bytes,
            "fp32_weights_bytes": r.fp32_weights_bytes,
            "golden_vectors": r.golden,
            "golden_bytes": r.golden_bytes,
            "drift_reference": r.drift_ref.map(|(samples, tensors)| json!({"samples": samples, "tensors": tensors})),
        });
        if let Some(q) = &r.quant {
            obj["quantization"] = quant_json(q, r, self.onnx_bytes, file_bytes);
        }
        obj
    }
}

fn quant_json(q: &QuantReport, r: &Report, onnx_bytes: u64, file_bytes: u64) -> Value {
    json!({
        "precision": format!("{:?}", q.precision).to_lowercase(),
        "calib_method": q.method,
        "group_size": q.group_size,
        "prune": q.prune,
        "samples": q.samples,
        "random_samples": q.random_samples,
        "size": {
            "onnx_bytes": onnx_bytes,
            "fp32_weights_bytes": r.fp32_weights_bytes,
            "weights_bytes": r.weights_bytes,
            "file_bytes": file_bytes,
            "file_vs_onnx": file_bytes as f64 / onnx_bytes.max(1) as f64,
            "golden_bytes": r.golden_bytes,
            "file_without_golden_vs_onnx": file_bytes.saturating_sub(r.golden_bytes) as f64 / onnx_bytes.max(1) as f64,
        },
        "metric": q.metric,
        "drop": q.drop,
        "max_drop": q.max_drop,
        "kept_fp32": q.kept_fp32,
        "promoted_int8": q.promoted_int8,
        "pruned_channels": q.pruned_channels,
        "outputs": q.outputs.iter().map(|o| json!({
            "name": o.name,
            "cosine": o.agreement.cosine,
            "max_abs_error": o.agreement.max_abs,
            "snr_db": if o.agreement.snr_db.is_finite() { json!(o.agreement.snr_db) } else { json!(null) },
            "top1_agreement": o.agreement.top1,
            "top_boxes_agreement": o.agreement.top_boxes,
        })).collect::<Vec<_>>(),
        "layers": q.layers.iter().map(|l| json!({
            "name": l.name,
            "op": l.op,
            "shape": l.shape,
            "precision": l.precision.name(),
            "sensitivity": l.sensitivity,
            "sparsity": l.sparsity,
        })).collect::<Vec<_>>(),
    })
}
