//! What the package reports as plain dicts: a model's metadata, memory
//! figures and board fit (`jetrt.model_info`), and the drift monitor's
//! state (`InferenceSession.drift`). Built as JSON values, the same data
//! `jetc inspect --json` and `jetrt drift --json` print, then handed to
//! Python's `json` module.

use crate::{py_err, InvalidArgument};
use jetrt::Model;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{json, Value};

/// A JSON object as a Python dict.
pub(crate) fn to_dict<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyDict>> {
    Ok(py.import("json")?.call_method1("loads", (v.to_string(),))?.cast_into::<PyDict>()?)
}

/// Board profiles named by `boards`: "all", a name, or a list of names.
pub(crate) fn board_profiles(boards: &Bound<'_, PyAny>) -> PyResult<Vec<&'static jetrt_boards::Profile>> {
    let names: Vec<String> = match boards.extract::<String>() {
        Ok(all) if all == "all" => return Ok(jetrt_boards::PROFILES.iter().collect()),
        Ok(one) => vec![one],
        Err(_) => {
            boards.extract().map_err(|_| InvalidArgument::new_err("boards: expected \"all\", a board profile name, or a list of names"))?
        }
    };
    names
        .iter()
        .map(|n| {
            jetrt_boards::profiles::by_name(n).ok_or_else(|| {
                let known: Vec<&str> = jetrt_boards::PROFILES.iter().map(|p| p.name).collect();
                InvalidArgument::new_err(format!("boards: no board {n:?}; known: all, {}", known.join(", ")))
            })
        })
        .collect()
}

fn io(list: &[jetrt::TensorInfo]) -> Vec<Value> {
    list.iter().map(|t| json!({"name": t.name, "dtype": t.dtype.numpy_name(), "shape": t.shape})).collect()
}

/// `model` as a dict, with the fit on `boards` when given.
pub(crate) fn model_dict<'py>(py: Python<'py>, model: &Model, boards: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyDict>> {
    let profiles = boards.map(board_profiles).transpose()?;
    let i = model.info();
    let m = i.memory;
    let mut obj = json!({
        "name": i.name,
        "path": i.path.as_ref().map(|p| p.display().to_string()),
        "format_version": format!("{}.{}", i.format_version.0, i.format_version.1),
        "inputs": io(&i.inputs),
        "outputs": io(&i.outputs),
        "steps": i.steps,
        "metadata": i.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<String, Value>>(),
        "memory": {
            "file_bytes": m.file_bytes,
            "weights_bytes": m.weights_bytes,
            "arena_bytes": m.arena_bytes,
            "intermediate_bytes": m.intermediate_bytes,
            "scratch_bytes_per_thread": m.scratch_bytes_per_thread,
            "scratch_bytes_shared": m.scratch_bytes_shared,
        },
        "golden_vectors": i.golden_vectors,
        "drift_reference": i.drift_reference,
        "cuda_kernels": i.kernel_images.iter().map(|k| json!({"arch": k.arch, "bytes": k.bytes})).collect::<Vec<_>>(),
    });
    if let Some(profiles) = profiles {
        obj["boards"] = profiles
            .into_iter()
            .map(|p| {
                let b = jetrt::budget::board_budget(model, p);
                json!({
                    "board": b.board,
                    "fits": b.fits(),
                    "needs_bytes": b.needs_bytes(),
                    "spare_bytes": b.spare_bytes,
                    "file_bytes": b.needs.file_bytes,
                    "session_bytes": b.needs.session_bytes,
                    "gpu_bytes": b.needs.gpu_bytes,
                    "dram_bytes": b.dram_bytes,
                    "reserve_bytes": b.reserve_bytes,
                    "message": (!b.fits()).then(|| jetrt::budget::budget_message(&b, "the model")),
                })
            })
            .collect();
    }
    to_dict(py, &obj)
}

/// The metadata, inputs and outputs, memory figures of the `.jrt` file at
/// `path` and, with `boards` ("all", a board profile name or a list of
/// names), whether it fits each board's memory as `jetc inspect --board`
/// counts it. Makes no session.
#[pyfunction]
#[pyo3(signature = (path, boards = None))]
pub(crate) fn model_info<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    boards: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let model = py.detach(|| Model::open(&path)).map_err(py_err)?;
    model_dict(py, &model, boards)
}

/// The monitor's state as a dict.
pub(crate) fn drift_dict<'py>(py: Python<'py>, model: &Model, m: &jetrt::monitor::Monitor) -> PyResult<Bound<'py, PyDict>> {
    let tensors: Vec<Value> = m
        .stats()
        .map(|s| {
            json!({
                "name": model.tensor_name(s.tensor).unwrap_or("?"),
                "psi": s.psi,
                "ks": s.ks,
                "mean_shift": s.mean_shift,
                "verdict": s.verdict.name(),
                "worst_feature": s.worst.map(|f| f.name()),
            })
        })
        .collect();
    let obj = json!({
        "verdict": m.verdict().name(),
        "ready": m.ready(),
        "samples": m.samples(),
        "window": m.window(),
        "tensors": tensors,
    });
    to_dict(py, &obj)
}
