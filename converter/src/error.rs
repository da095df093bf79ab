//! The converter's one error type.

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

/// One thing in a model that jetrt cannot convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The node's name (or the tensor's, for an initializer or input).
    pub node: String,
    /// Op type, or "initializer" / "graph input".
    pub op: String,
    /// The op's domain ("ai.onnx" for the default) and the opset the model
    /// imports for it; `None` for tensors.
    pub domain: Option<(String, i64)>,
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.domain {
            Some((d, 0)) => write!(f, "node {:?} ({d}::{}, the model imports no opset of {d}): {}", self.node, self.op, self.reason),
            Some((d, opset)) => write!(f, "node {:?} ({d}::{}, opset {opset}): {}", self.node, self.op, self.reason),
            None if self.node.is_empty() => write!(f, "{}: {}", self.op, self.reason),
            None => write!(f, "{} {:?}: {}", self.op, self.node, self.reason),
        }
    }
}

fn list(items: &[Unsupported]) -> String {
    items.iter().map(|u| format!("\n  - {u}")).collect()
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    // The io error is the source: printed once by error chains (`{:#}`).
    #[error("cannot read {path}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path} is not a valid ONNX model: {reason}")]
    Decode { path: PathBuf, reason: String },

    #[error("tensor {tensor:?}: external data {location:?}: {reason}")]
    ExternalData { tensor: String, location: String, reason: String },

    #[error("tensor {tensor:?}: {reason}")]
    BadTensor { tensor: String, reason: String },

    #[error("the model uses {} thing(s) jetrt cannot convert:{}", items.len(), list(items))]
    Unsupported { items: Vec<Unsupported> },

    #[error("--input-shape {arg:?}: {reason}")]
    InputShapeArg { arg: String, reason: String },

    #[error("--input-shape names {name:?}, which is not an input of the model; its inputs are {known:?}")]
    UnknownInput { name: String, known: Vec<String> },

    #[error("input {input:?} has the static shape {model} in the model, but --input-shape gives {given:?}")]
    ShapeMismatch { input: String, model: String, given: Vec<usize> },

    #[error("the shapes of some inputs are not fixed; give them with --input-shape:{}", .items.iter().map(|s| format!("\n  - {s}")).collect::<String>())]
    DynamicInputs { items: Vec<String> },

    #[error("node {node:?} ({op}, opset {opset}) computing {outputs:?}: {reason}")]
    Node { node: String, op: String, opset: i64, outputs: Vec<String>, reason: String },

    #[error("the graph is malformed: {0}")]
    Graph(String),

    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },

    /// Data given to the converter (a `.npy` file, a folder of samples, an
    /// option's value) is unusable; `what` names it.
    #[error("{what}: {reason}")]
    Data { what: String, reason: String },

    /// The written file does not validate, or does not fit a board asked for.
    #[error("{0}")]
    Output(String),

    /// Building what the file carries besides the model (the drift
    /// reference, the golden vectors) failed.
    #[error("{0}")]
    Stored(String),
}
