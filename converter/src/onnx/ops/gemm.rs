//! Gemm and MatMul.

use super::super::import::{Ctx, N};
use crate::graph::ValueId;
use jetrt::ops::{Activation, Gemm, Op};

pub(crate) fn gemm(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let (a, b, c) = (n.input(0)?, n.input(1)?, n.opt_input(2));
    let op = Op::Gemm(Gemm {
        trans_a: n.int("transA", 0) != 0,
        trans_b: n.int("transB", 0) != 0,
        alpha: n.float("alpha", 1.0),
        beta: n.float("beta", 1.0),
        act: Activation::None,
    });
    let mut inputs = vec![a, b];
    inputs.extend(c);
    Ok(vec![cx.node(n.name.clone(), op, inputs)?])
}

/// MatMul of a 2-D (or N-D, flattened) A by a 2-D B, as a Gemm.
pub(crate) fn matmul(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let (a, b) = (n.input(0)?, n.input(1)?);
    let (sa, sb) = (cx.shape(a).to_vec(), cx.shape(b).to_vec());
    if sb.len() != 2 || sa.len() < 2 {
        return Err(format!("MatMul of shapes {sa:?} × {sb:?} is not supported yet (A must be at least 2-D and B 2-D)"));
    }
    let k = sa[sa.len() - 1];
    let rows: usize = sa[..sa.len() - 1].iter().product();
    let a2 = cx.reshape(n.temp("as_2d"), a, vec![rows, k]);
    let op = Op::Gemm(Gemm { trans_a: false, trans_b: false, alpha: 1.0, beta: 1.0, act: Activation::None });
    if sa.len() == 2 {
        return Ok(vec![cx.node(n.name.clone(), op, vec![a2, b])?]);
    }
    let y2 = cx.node(n.temp("gemm"), op, vec![a2, b])?;
    let mut out = sa[..sa.len() - 1].to_vec();
    out.push(sb[1]);
    Ok(vec![cx.reshape(n.name.clone(), y2, out)])
}
