//! ONNX operators → jetrt ops, one file per family. Each translator checks
//! the attributes it understands, refuses what it does not with a reason,
//! and returns the values of the node's outputs.

mod conv;
mod elementwise;
mod gemm;
mod logic;
mod norm;
mod pool;
mod reduce;
mod resize;
mod shape;

use super::import::{Ctx, N};
use crate::graph::ValueId;

pub(crate) type Translate = fn(&mut Ctx<'_>, &N<'_>) -> Result<Vec<ValueId>, String>;

/// Every ONNX operator the converter accepts, with its translator
/// (`jetc operators` and docs/OPERATORS.md list them).
pub(crate) const OPERATORS: &[(&str, Translate)] = &[
    ("Abs", elementwise::activation),
    ("Add", elementwise::binary),
    ("And", logic::logic),
    ("AveragePool", pool::average_pool),
    ("BatchNormalization", norm::batch_normalization),
    ("Cast", shape::cast),
    ("CastLike", shape::cast_like),
    ("Ceil", elementwise::activation),
    ("Celu", elementwise::activation),
    ("Clip", elementwise::clip),
    ("Concat", shape::concat),
    ("Constant", shape::constant),
    ("ConstantOfShape", shape::constant_of_shape),
    ("Conv", conv::conv),
    ("ConvTranspose", conv::conv_transpose),
    ("Cos", elementwise::activation),
    ("Div", elementwise::binary),
    ("Dropout", shape::dropout),
    ("Elu", elementwise::activation),
    ("Equal", logic::compare),
    ("Erf", elementwise::activation),
    ("Exp", elementwise::activation),
    ("Expand", shape::expand),
    ("Flatten", shape::flatten),
    ("Floor", elementwise::activation),
    ("Gather", shape::gather),
    ("GatherElements", shape::gather_elements),
    ("Gelu", elementwise::activation),
    ("Gemm", gemm::gemm),
    ("GlobalAveragePool", pool::global_average_pool),
    ("GlobalMaxPool", pool::global_max_pool),
    ("Greater", logic::compare),
    ("GreaterOrEqual", logic::compare),
    ("HardSigmoid", elementwise::activation),
    ("HardSwish", elementwise::activation),
    ("Identity", shape::identity),
    ("IsInf", logic::float_class),
    ("IsNaN", logic::float_class),
    ("LayerNormalization", norm::layer_normalization),
    ("LeakyRelu", elementwise::activation),
    ("Less", logic::compare),
    ("LessOrEqual", logic::compare),
    ("Log", elementwise::activation),
    ("LRN", norm::lrn),
    ("MatMul", gemm::matmul),
    ("Max", elementwise::variadic),
    ("MaxPool", pool::max_pool),
    ("Min", elementwise::variadic),
    ("Mish", elementwise::activation),
    ("Mod", elementwise::binary),
    ("Mul", elementwise::binary),
    ("Neg", elementwise::activation),
    ("Not", logic::logic),
    ("Or", logic::logic),
    ("Pad", shape::pad),
    ("Pow", elementwise::binary),
    ("PRelu", elementwise::binary),
    ("Range", shape::range),
    ("Reciprocal", elementwise::activation),
    ("ReduceL1", reduce::reduce),
    ("ReduceL2", reduce::reduce),
    ("ReduceLogSum", reduce::reduce),
    ("ReduceLogSumExp", reduce::reduce),
    ("ReduceMax", reduce::reduce),
    ("ReduceMean", reduce::reduce),
    ("ReduceMin", reduce::reduce),
    ("ReduceProd", reduce::reduce),
    ("ReduceSum", reduce::reduce),
    ("ReduceSumSquare", reduce::reduce),
    ("Relu", elementwise::activation),
    ("Reshape", shape::reshape),
    ("Resize", resize::resize),
    ("Round", elementwise::activation),
    ("Selu", elementwise::activation),
    ("Shape", shape::shape),
    ("Sigmoid", elementwise::activation),
    ("Sign", elementwise::activation),
    ("Sin", elementwise::activation),
    ("Size", shape::size),
    ("Slice", shape::slice),
    ("Softmax", norm::softmax),
    ("Softplus", elementwise::activation),
    ("Softsign", elementwise::activation),
    ("Split", shape::split),
    ("Sqrt", elementwise::activation),
    ("Squeeze", shape::squeeze),
    ("Sub", elementwise::binary),
    ("Sum", elementwise::variadic),
    ("Tanh", elementwise::activation),
    ("ThresholdedRelu", elementwise::activation),
    ("Tile", shape::tile),
    ("Transpose", shape::transpose),
    ("Unsqueeze", shape::unsqueeze),
    ("Upsample", resize::resize),
    ("Where", shape::where_),
    ("Xor", logic::logic),
];

pub(crate) fn lookup(op: &str) -> Option<Translate> {
    OPERATORS.iter().find(|(name, _)| *name == op).map(|(_, f)| *f)
}

/// Normalises a possibly negative axis for a tensor of rank `rank`.
pub(crate) fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r.max(1) {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(v as usize)
}

/// Converts ONNX integer attributes (kernel sizes, strides, ...) to usize.
pub(crate) fn usizes(v: &[i64], what: &str) -> Result<Vec<usize>, String> {
    v.iter().map(|&x| usize::try_from(x).map_err(|_| format!("{what} {v:?} has a negative value"))).collect()
}
