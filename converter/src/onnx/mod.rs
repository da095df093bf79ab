//! ONNX import: protobuf decoding (prost, generated code in `pb.rs`),
//! tensor loading with external data, and translation of ONNX nodes into
//! jetrt ops with fixed shapes.

pub(crate) mod import;
pub(crate) mod ops;
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod pb;
pub(crate) mod tensor;

pub use import::{load_model, OnnxModel};
