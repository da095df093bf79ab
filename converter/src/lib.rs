//! jetc's library: ONNX import, shape fixing, graph passes, memory planning,
//! and writing `.jrt` files through the runtime's writer.

pub mod drift;
mod error;
pub mod golden;
pub mod graph;
pub mod job;
pub mod memplan;
pub mod npy;
pub mod onnx;
pub mod passes;
pub mod quant;
pub mod samples;
pub mod tensor;
mod write;

pub use error::{ConvertError, Result, Unsupported};
pub use onnx::import::{ImportOptions, ImportStats};

use jetrt::DType;
use jetrt_format::FileBuilder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `jetc convert` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// `--input-shape NAME=D0,D1,...`
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// Model name stored in the metadata (default: the file stem).
    pub name: Option<String>,
    /// `--bind NAME=FILE.npy`: inputs fixed to a value, folded as constants.
    pub bind: Vec<(String, tensor::Tensor)>,
    /// `--precision`, `--calib`, `--prune`, `--max-drop`: quantization and
    /// pruning, with the calibration samples.
    pub quant: Option<quant::QuantOptions>,
    /// Drift reference samples (`--drift-ref`, or the `--calib` samples):
    /// per sample, one tensor per model input. None: no reference stored.
    pub drift_ref: Option<Vec<Vec<tensor::Tensor>>>,
    /// Golden test vectors to store (`--golden N`): the first reference or
    /// calibration samples, else made-up inputs, with the converted model's
    /// outputs for them.
    pub golden: usize,
    /// The CPU kernels the converter runs the model on (calibration, drift
    /// reference, golden vectors): the best this machine has unless named,
    /// so that one host can reproduce another's conversion (`jetc` reads
    /// `JETRT_KERNELS` and `JETRT_INT8_KERNELS` into it).
    pub kernels: Kernels,
}

/// CPU kernel variants to run on instead of the best detected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kernels {
    pub cpu: Option<jetrt::Isa>,
    pub int8: Option<jetrt::QIsa>,
}

impl Kernels {
    /// Options of a CPU session with these kernels and `threads` threads:
    /// the converter's reference, with no GPU context for each of its many
    /// small graphs.
    pub fn session(self, threads: usize) -> jetrt::SessionOptions {
        jetrt::SessionOptions::default()
            .with_backend(jetrt::Backend::Cpu)
            .with_threads(threads)
            .with_cpu_kernels(self.cpu)
            .with_int8_kernels(self.int8)
    }
}

/// The inputs of the model as jetc will convert it (names, element types,
/// and shapes after `--input-shape` and `--bind`): what calibration data
/// must match.
pub fn model_inputs(path: &Path, opts: &ConvertOptions) -> Result<Vec<IoInfo>> {
    let model = onnx::load_model(path)?;
    let io = ImportOptions { input_shapes: opts.input_shapes.clone(), bind: opts.bind.clone(), keep_going: false };
    let (g, _) = onnx::import::translate(&model, &io)?;
    Ok(g.inputs
        .iter()
        .map(|&v| IoInfo { name: g.values[v].name.clone(), dtype: g.values[v].dtype, shape: g.values[v].shape.clone() })
        .collect())
}

/// `jetc convert --check`: everything in `path` that jetrt cannot convert,
/// every node at once (an empty list: the model converts).
pub fn check(path: &Path, opts: &ConvertOptions) -> Result<Vec<Unsupported>> {
    let model = onnx::load_model(path)?;
    let io = ImportOptions { input_shapes: opts.input_shapes.clone(), bind: opts.bind.clone(), keep_going: true };
    match onnx::import::translate(&model, &io) {
        Ok(_) => Ok(Vec::new()),
        Err(ConvertError::Unsupported { items }) => Ok(items),
        Err(e) => Err(e),
    }
}

/// A model input or output in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// What a conversion did and produced.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub source: PathBuf,
    pub opset: i64,
    pub onnx_nodes: usize,
    /// ONNX nodes evaluated at conversion (constant folding).
    pub folded: usize,
    /// Identity-like nodes dropped at import (Identity, Dropout, no-op Cast).
    pub identities: usize,
    /// (pass, nodes removed or fused) in the order the passes ran.
    pub passes: Vec<(&'static str, usize)>,
    pub steps: usize,
    pub ops: BTreeMap<String, usize>,
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    pub weights_bytes: u64,
    /// Weights before quantization and pruning (float32 as converted).
    pub fp32_weights_bytes: u64,
    pub arena_bytes: u64,
    /// Sum of all run-time tensors (the arena without reuse).
    pub intermediate_bytes: u64,
    pub warnings: Vec<String>,
    /// What quantization and pruning did, measured on the calibration data.
    pub quant: Option<quant::QuantReport>,
    /// (samples, tensors) of the drift reference stored, if one is.
    pub drift_ref: Option<(usize, usize)>,
    /// Golden test vectors stored.
    pub golden: usize,
    /// What they take in the file.
    pub golden_bytes: u64,
}

/// A converted model, not yet written.
pub struct Conversion {
    pub file: FileBuilder,
    pub report: Report,
}

impl Conversion {
    /// Writes the `.jrt` atomically (a failed write leaves `path` as it was).
    pub fn write(&self, path: &Path) -> Result<()> {
        self.file.write_file(path).map_err(|source| ConvertError::Write { path: path.to_path_buf(), source })
    }
}

/// Parses `NAME=D0,D1,...`.
pub fn parse_input_shape(arg: &str) -> Result<(String, Vec<usize>)> {
    let bad = |reason: &str| ConvertError::InputShapeArg { arg: arg.to_string(), reason: reason.to_string() };
    let (name, dims) = arg.rsplit_once('=').ok_or_else(|| bad("expected NAME=D0,D1,... (e.g. input=1,3,224,224)"))?;
    if name.is_empty() {
        return Err(bad("the input name is empty"));
    }
    let dims = if dims.trim().is_empty() {
        Vec::new()
    } else {
        dims.split(',')
            .map(|d| d.trim().parse::<usize>().map_err(|_| bad(&format!("{d:?} is not a dimension (a non-negative integer)"))))
            .collect::<Result<Vec<_>>>()?
    };
    Ok((name.to_string(), dims))
}

/// Converts an ONNX file: import with fixed shapes, optimize, plan memory.
pub fn convert(path: &Path, opts: &ConvertOptions) -> Result<Conversion> {
    let model = onnx::load_model(path)?;
    let (mut g, stats) = onnx::import::translate(
        &model,
        &ImportOptions { input_shapes: opts.input_shapes.clone(), bind: opts.bind.clone(), keep_going: false },
    )?;
    let quantizing = opts.quant.as_ref().is_some_and(|q| q.precision != quant::Precision::Fp32);
    let passes = passes::optimize(&mut g, quantizing);
    let const_bytes = |g: &graph::Graph| -> u64 {
        let mut used = vec![false; g.values.len()];
        g.nodes.iter().flat_map(|n| &n.inputs).for_each(|&v| used[v] = true);
        g.values.iter().zip(&used).filter(|(v, &u)| u && v.konst.is_some()).map(|(v, _)| v.nbytes() as u64).sum()
    };
    let fp32_weights_bytes = const_bytes(&g);
    let quant_report = match &opts.quant {
        Some(q) if q.precision != quant::Precision::Fp32 || q.prune.is_some() => Some(quant::run(&mut g, q)?),
        _ => None,
    };
    passes::compact_affine::run(&mut g);
    write::name_outputs(&mut g);
    let name = opts.name.clone().unwrap_or_else(|| path.file_stem().map_or("model".into(), |s| s.to_string_lossy().into_owned()));
    let p = &model.proto;
    let mut metadata = vec![
        ("name".to_string(), name),
        ("producer".to_string(), format!("jetc {}", env!("CARGO_PKG_VERSION"))),
        ("source".to_string(), path.file_name().map_or(String::new(), |s| s.to_string_lossy().into_owned())),
        (
            "source_producer".to_string(),
            format!("{} {}", p.producer_name.clone().unwrap_or_default(), p.producer_version.clone().unwrap_or_default())
                .trim()
                .to_string(),
        ),
        ("onnx_opset".to_string(), stats.opset.to_string()),
    ];
    if let Some(v) = p.model_version {
        metadata.push(("model_version".to_string(), v.to_string()));
    }
    let mut file = write::build(&g, metadata)?;
    if let Some(samples) = &opts.drift_ref {
        let threads = opts.quant.as_ref().map_or(0, |q| q.threads);
        file.drift = Some(drift::build(&file, samples, opts.kernels.session(threads)).map_err(ConvertError::Stored)?);
    }
    if opts.golden > 0 {
        let calib = opts.quant.as_ref().filter(|q| !q.random_samples).map(|q| q.samples.as_slice());
        let samples = opts.drift_ref.as_deref().or(calib);
        let inputs = golden::inputs(&file, samples, opts.golden);
        file.golden = golden::build(&file, inputs, opts.kernels.session(1)).map_err(ConvertError::Stored)?;
    }
    let io = |v: graph::ValueId, name: &str| IoInfo { name: name.to_string(), dtype: g.values[v].dtype, shape: g.values[v].shape.clone() };
    let mut warnings = Vec::new();
    if !stats.initializers_as_inputs.is_empty() {
        warnings.push(format!(
            "{} graph input(s) have initializers and are treated as constants (e.g. {:?})",
            stats.initializers_as_inputs.len(),
            stats.initializers_as_inputs[0]
        ));
    }
    let report = Report {
        source: path.to_path_buf(),
        opset: stats.opset,
        onnx_nodes: stats.onnx_nodes,
        folded: stats.folded,
        identities: stats.identities,
        passes,
        steps: g.nodes.len(),
        ops: write::op_counts(&g),
        inputs: g.inputs.iter().map(|&v| io(v, &g.values[v].name)).collect(),
        outputs: g.outputs.iter().map(|(n, v)| io(*v, n)).collect(),
        weights_bytes: file.weights.len() as u64,
        fp32_weights_bytes,
        arena_bytes: file.arena_bytes,
        intermediate_bytes: file
            .tensors
            .iter()
            .filter(|t| matches!(t.storage, jetrt_format::StorageDef::Arena { .. }))
            .map(|t| (t.shape.iter().product::<usize>() * t.dtype.size()) as u64)
            .sum(),
        warnings,
        quant: quant_report,
        drift_ref: file.drift.as_ref().map(|d| (d.samples, d.tensors.len())),
        golden: file.golden.len(),
        golden_bytes: file.golden.iter().map(|v| v.stored_bytes() as u64).sum(),
    };
    Ok(Conversion { file, report })
}
