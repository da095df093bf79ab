//! ONNX operators → jetrt ops, one file per family. Each translator checks
//! the attributes it understands, refuses what it does not with a reason,
//! and returns the values of the node's outputs.

mod conv;
mod elementwise;
mod gemm;
mod norm;
mod pool;
mod shape;

use super::import::{Ctx, N};
use crate::graph::ValueId;

pub(crate) type Translate = fn(&mut Ctx<'_>, &N<'_>) -> Result<Vec<ValueId>, String>;

/// Every ONNX operator the converter accepts, with its translator.
pub(crate) const OPERATORS: &[(&str, Translate)] = &[
    ("Add", elementwise::binary),
    ("AveragePool", pool::average_pool),
    ("BatchNormalization", norm::batch_normalization),
    ("Cast", shape::cast),
    ("Clip", elementwise::clip),
    ("Concat", shape::concat),
    ("Constant", shape::constant),
    ("ConstantOfShape", shape::constant_of_shape),
    ("Conv", conv::conv),
    ("Div", elementwise::binary),
    ("Dropout", shape::dropout),
    ("Flatten", shape::flatten),
    ("Gather", shape::gather),
    ("Gemm", gemm::gemm),
    ("GlobalAveragePool", pool::global_average_pool),
    ("GlobalMaxPool", pool::global_max_pool),
    ("Identity", shape::identity),
    ("LeakyRelu", elementwise::activation),
    ("LRN", norm::lrn),
    ("MatMul", gemm::matmul),
    ("Max", elementwise::variadic),
    ("MaxPool", pool::max_pool),
    ("Min", elementwise::variadic),
    ("Mul", elementwise::binary),
    ("Pow", elementwise::binary),
    ("Relu", elementwise::activation),
    ("Reshape", shape::reshape),
    ("Shape", shape::shape),
    ("Sigmoid", elementwise::activation),
    ("Softmax", norm::softmax),
    ("Squeeze", shape::squeeze),
    ("Sub", elementwise::binary),
    ("Sum", elementwise::variadic),
    ("Tanh", elementwise::activation),
    ("Transpose", shape::transpose),
    ("Unsqueeze", shape::unsqueeze),
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
