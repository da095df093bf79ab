//! The runtime's one error type.

use jetrt_format::{DType, FormatError};
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong opening or running a model. Messages name
/// the thing at fault (section, byte offset, tensor, step, op) and what was
/// expected versus found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // The io error is the source: printed once by error chains (`{:#}`).
    #[error("cannot read {path}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("cannot write {path}")]
    Write { path: PathBuf, source: std::io::Error },

    /// The model needs more memory than the machine can spare (figures in the message).
    #[error("{0}")]
    DoesNotFit(String),

    /// The file is not a valid `.jrt` file: what is wrong, and where.
    #[error(transparent)]
    Format(#[from] FormatError),

    #[error("the model takes {expected} inputs, {found} were given")]
    InputCount { expected: usize, found: usize },

    #[error("input {name:?}: expected dtype {expected:?}, got {found:?}")]
    InputDType { name: String, expected: DType, found: DType },

    #[error(
        "input {name:?}: got shape {found:?}, but this model was converted for {expected:?}; a .jrt file has fixed shapes, so convert the ONNX model again with jetc convert --input-shape {name}={}",
        dims_arg(found)
    )]
    InputShape { name: String, expected: Vec<usize>, found: Vec<usize> },

    #[error("input {name:?}: shape {shape:?} of {dtype:?} needs {expected} bytes, the buffer has {found}")]
    InputLength { name: String, shape: Vec<usize>, dtype: DType, expected: usize, found: usize },

    #[error("the model has {expected} outputs, {found} buffers were given")]
    OutputCount { expected: usize, found: usize },

    #[error("output {name:?}: expected a {expected_dtype:?} buffer of {expected} bytes, got {found_dtype:?} of {found} bytes")]
    OutputBuffer { name: String, expected_dtype: DType, expected: usize, found_dtype: DType, found: usize },

    #[error("no input named {name:?}; the model's inputs are {known:?}")]
    UnknownInput { name: String, known: Vec<String> },

    #[error("no output named {name:?}; the model's outputs are {known:?}")]
    UnknownOutput { name: String, known: Vec<String> },

    #[error("input {name:?} is given twice")]
    DuplicateInput { name: String },

    #[error("output {name:?} is asked for twice")]
    DuplicateOutput { name: String },

    #[error("output {name:?} is {dtype:?}, not {wanted:?}")]
    OutputDType { name: String, dtype: DType, wanted: DType },

    #[error("backend {backend} is not available: {reason}")]
    BackendUnavailable { backend: &'static str, reason: String },

    #[error("GPU error: {reason}")]
    Gpu { reason: String },

    #[error("invalid session options: {0}")]
    Options(String),

    #[error("the shared arena has {available} bytes; this model's memory plan needs {needed} (size it with SharedArena::for_models)")]
    ArenaTooSmall { needed: usize, available: usize },

    #[error(
        "the shared arena now holds another session's tensors: {what} (Session::run sets the inputs and copies the outputs in one go)"
    )]
    ArenaReused { what: String },

    #[error("output #{index} does not exist: the model has {count} outputs")]
    OutputIndex { index: usize, count: usize },

    #[error("step #{step} ({op}): index {index} is out of range for an axis of length {len} (check the input values)")]
    IndexOutOfRange { step: usize, op: &'static str, index: i64, len: usize },

    #[error("internal error in step #{step} ({op}): {reason}; please report this with the model file")]
    Internal { step: usize, op: &'static str, reason: String },
}

/// `1,3,224,224`, as `--input-shape` takes it.
fn dims_arg(d: &[usize]) -> String {
    d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

impl Error {
    /// The message with its causes after it, `: `-separated (what anyhow's
    /// `{:#}` prints): for the C and Python APIs, which have no error chains.
    pub fn chain(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        message
    }
}
