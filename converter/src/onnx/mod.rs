//! ONNX import: protobuf decoding (prost, generated code in `pb.rs`),
//! tensor loading with external data, and translation of ONNX nodes into
//! jetrt ops with fixed shapes.

pub(crate) mod import;
pub(crate) mod ops;
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod pb;
pub(crate) mod tensor;

pub use import::{load_model, OnnxModel};

/// The ONNX operators (default domain) jetrt converts, sorted by name.
pub fn supported_operators() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ops::OPERATORS.iter().map(|(name, _)| *name).collect();
    v.sort_unstable();
    v
}

/// The element types an operator takes at run time (constants of other
/// types are folded at conversion).
pub fn runtime_types(op: &str) -> &'static str {
    match op {
        "Identity" | "Dropout" | "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Slice" | "Split" | "Expand" | "Tile" => "any",
        "Cast" | "CastLike" => "float32, float64, int64, int32, int8, uint8, bool",
        "Gather" => "data: any; indices: int64, int32",
        "Where" => "condition: bool; X, Y: any",
        "Shape" | "Size" | "Range" | "Constant" | "ConstantOfShape" => "evaluated at conversion",
        // Comparisons and logic: on constants only (shapes, fixed masks).
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor" | "Not" | "IsNaN" | "IsInf"
        | "GatherElements" => "evaluated at conversion (constant inputs only)",
        _ => "float32",
    }
}
