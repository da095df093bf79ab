//! `jetrt.convert`: `jetc convert` as a function. Keyword arguments map
//! one to one onto the command's flags (`calib` is `--calib`), so the
//! messages, which name the flags, read the same from Python.

use crate::{bytes_of, info, variant, ConversionError, InvalidArgument};
use jetrt::{DType, Isa, QIsa};
use jetrt_converter::job::{self, Job, Notes};
use jetrt_converter::quant::{CalibMethod, Precision, Prune};
use jetrt_converter::tensor::{Data, Tensor};
use jetrt_converter::ConvertError;
use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// The converter's error as the matching Python exception, with its causes.
fn convert_err(e: ConvertError) -> PyErr {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        // Some messages already end with their cause.
        let cause = s.to_string();
        if !msg.ends_with(&cause) {
            msg.push_str(&format!(": {cause}"));
        }
        source = s.source();
    }
    match e {
        ConvertError::InputShapeArg { .. }
        | ConvertError::UnknownInput { .. }
        | ConvertError::ShapeMismatch { .. }
        | ConvertError::DynamicInputs { .. }
        | ConvertError::Data { .. } => InvalidArgument::new_err(msg),
        _ => ConversionError::new_err(msg),
    }
}

/// One float, or three (per channel).
fn triple(what: &str, v: &Bound<'_, PyAny>) -> PyResult<[f32; 3]> {
    if let Ok(x) = v.extract::<f32>() {
        return Ok([x; 3]);
    }
    v.extract::<[f32; 3]>().map_err(|_| InvalidArgument::new_err(format!("{what}: expected a number or three (R, G, B)")))
}

/// `{name: array}` → the tensors `--bind` would read from `.npy` files.
fn bind_values(py: Python<'_>, bind: &Bound<'_, PyDict>) -> PyResult<Vec<(String, Tensor)>> {
    let np = py.import("numpy")?;
    let mut out = Vec::new();
    for (k, v) in bind.iter() {
        let name: String = k.extract().map_err(|_| InvalidArgument::new_err("bind: the keys must be input names (str)"))?;
        let arr = np.call_method1("ascontiguousarray", (v,))?.cast_into::<PyUntypedArray>()?;
        let dtype_name = arr.dtype().to_string();
        let dtype = DType::ALL
            .into_iter()
            .find(|d| d.numpy_name() == dtype_name)
            .ok_or_else(|| InvalidArgument::new_err(format!("bind[{name:?}]: dtype {dtype_name} is not one jetrt takes")))?;
        let (p, n) = bytes_of(&arr);
        // SAFETY: a C-contiguous array of n bytes at p, held for this loop.
        let bytes = unsafe { std::slice::from_raw_parts(p, n) };
        let data = Data::from_le_bytes(dtype, bytes).ok_or_else(|| InvalidArgument::new_err(format!("bind[{name:?}]: bad data")))?;
        out.push((name, Tensor::new(arr.shape().to_vec(), data)));
    }
    Ok(out)
}

/// Converts the ONNX model at `model` into a `.jrt` file at `output`, as
/// `jetc convert` does (every keyword is that command's flag of the same
/// name), and returns the report `jetc convert --report` writes, as a dict.
/// Progress goes to stderr unless `quiet`. The GIL is released while it
/// converts.
#[pyfunction]
#[pyo3(signature = (
    model, output, *, input_shapes = None, bind = None, name = None, golden = 2, precision = "fp32", calib = None,
    calib_method = "mse", percentile = 99.99, calib_limit = 256, group_size = 32, max_drop = None, prune = None,
    resize = None, mean = None, std = None, layout = "nchw", bgr = false, drift_ref = None, drift_ref_limit = 1000,
    no_drift_ref = false, boards = None, cuda_arch = None, nvrtc = None, cpu_kernels = None, int8_kernels = None,
    quiet = false
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn convert<'py>(
    py: Python<'py>,
    model: PathBuf,
    output: PathBuf,
    input_shapes: Option<std::collections::BTreeMap<String, Vec<usize>>>,
    bind: Option<&Bound<'py, PyDict>>,
    name: Option<String>,
    golden: usize,
    precision: &str,
    calib: Option<PathBuf>,
    calib_method: &str,
    percentile: f64,
    calib_limit: usize,
    group_size: usize,
    max_drop: Option<f64>,
    prune: Option<&str>,
    resize: Option<[usize; 2]>,
    mean: Option<&Bound<'py, PyAny>>,
    std: Option<&Bound<'py, PyAny>>,
    layout: &str,
    bgr: bool,
    drift_ref: Option<PathBuf>,
    drift_ref_limit: usize,
    no_drift_ref: bool,
    boards: Option<&Bound<'py, PyAny>>,
    cuda_arch: Option<Vec<String>>,
    nvrtc: Option<Vec<PathBuf>>,
    cpu_kernels: Option<&str>,
    int8_kernels: Option<&str>,
    quiet: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let mut job = Job::default();
    job.input_shapes = input_shapes.unwrap_or_default().into_iter().collect();
    job.bind = bind.map(|b| bind_values(py, b)).transpose()?.unwrap_or_default();
    job.name = name;
    job.golden = golden;
    job.precision = match precision {
        "fp32" => Precision::Fp32,
        "int8" => Precision::Int8,
        "int4" => Precision::Int4,
        _ => return Err(InvalidArgument::new_err(format!("precision {precision:?}: expected \"fp32\", \"int8\" or \"int4\""))),
    };
    job.calib = calib;
    job.calib_method = match calib_method {
        "mse" => CalibMethod::Mse,
        "minmax" => CalibMethod::MinMax,
        "entropy" => CalibMethod::Entropy,
        "percentile" => CalibMethod::Percentile(percentile),
        _ => {
            return Err(InvalidArgument::new_err(format!(
                "calib_method {calib_method:?}: expected \"mse\", \"minmax\", \"entropy\" or \"percentile\""
            )))
        }
    };
    job.calib_limit = calib_limit;
    job.group_size = group_size;
    job.max_drop = max_drop;
    job.prune = prune.map(Prune::parse).transpose().map_err(InvalidArgument::new_err)?;
    job.image.resize = resize;
    job.image.mean = mean.map(|m| triple("mean", m)).transpose()?.unwrap_or([0.0; 3]);
    job.image.std = std.map(|s| triple("std", s)).transpose()?.unwrap_or([1.0; 3]);
    job.image.nhwc = match layout {
        "nchw" => false,
        "nhwc" => true,
        _ => return Err(InvalidArgument::new_err(format!("layout {layout:?}: expected \"nchw\" or \"nhwc\""))),
    };
    job.image.bgr = bgr;
    job.drift_ref = drift_ref;
    job.drift_ref_limit = drift_ref_limit;
    job.no_drift_ref = no_drift_ref;
    job.boards = boards.map(info::board_profiles).transpose()?.unwrap_or_default();
    job.kernels.cpu = variant("cpu_kernels", cpu_kernels, &Isa::ALL, Isa::name)?;
    job.kernels.int8 = variant("int8_kernels", int8_kernels, &QIsa::ALL, QIsa::name)?;
    if !quiet {
        job.progress = Some(job::stderr_progress());
        job.notes = Some(Notes::stderr());
    }
    let archs = jetrt::host::parse_cuda_archs("cuda_arch", &cuda_arch.unwrap_or_default()).map_err(InvalidArgument::new_err)?;
    let nvrtc = nvrtc.unwrap_or_default();
    let outcome = py.detach(move || -> PyResult<job::Outcome> {
        if !archs.is_empty() {
            compile_kernels(&mut job, &archs, &nvrtc)?;
        }
        job::run(&model, &output, &job).map_err(convert_err)
    })?;
    info::to_dict(py, &outcome.to_json())
}

/// The CUDA kernels for `archs`, into the file `job` writes.
#[cfg(feature = "cuda")]
fn compile_kernels(job: &mut Job, archs: &[u32], nvrtc: &[PathBuf]) -> PyResult<()> {
    let notes = job.notes.clone();
    let note = |line: &str| {
        if let Some(n) = &notes {
            (n.0)(line)
        }
    };
    job.kernel_images = jetrt::host::kernel_images(archs, nvrtc, None, &note).map_err(crate::Unavailable::new_err)?;
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn compile_kernels(_: &mut Job, _: &[u32], _: &[PathBuf]) -> PyResult<()> {
    Err(crate::Unavailable::new_err("cuda_arch: this build of jetrt has no CUDA support"))
}
