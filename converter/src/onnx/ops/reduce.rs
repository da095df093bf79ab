//! Reductions (ReduceMean, ReduceSum, ...) and comparisons/logic on
//! constants.

use super::super::import::{Ctx, N};
use super::axis;
use crate::graph::ValueId;
use jetrt_format::op::{Op, ReduceOp};

pub(crate) fn reduce(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let op = match n.op {
        "ReduceSum" => ReduceOp::Sum,
        "ReduceMean" => ReduceOp::Mean,
        "ReduceMax" => ReduceOp::Max,
        "ReduceMin" => ReduceOp::Min,
        "ReduceProd" => ReduceOp::Prod,
        "ReduceL1" => ReduceOp::L1,
        "ReduceL2" => ReduceOp::L2,
        "ReduceSumSquare" => ReduceOp::SumSquare,
        "ReduceLogSum" => ReduceOp::LogSum,
        "ReduceLogSumExp" => ReduceOp::LogSumExp,
        other => return Err(format!("internal: {other} is not a reduction")),
    };
    let x = n.input(0)?;
    let rank = cx.shape(x).len();
    // Axes moved from an attribute to an input: ReduceSum at opset 13, the
    // others at 18.
    let from_input = n.opset >= if op == ReduceOp::Sum { 13 } else { 18 };
    let axes = if from_input { n.opt_input(1).map(|v| cx.const_ints(v, "axes")).transpose()? } else { n.ints("axes") };
    let keepdims = n.int("keepdims", 1) != 0;
    let axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?,
        _ if n.int("noop_with_empty_axes", 0) != 0 => return Ok(vec![x]),
        _ => (0..rank).collect(),
    };
    let mask = axes.iter().fold(0u32, |m, &a| m | 1 << a);
    Ok(vec![cx.node(n.name.clone(), Op::Reduce { op, axes: mask, keepdims }, vec![x])?])
}
