//! Gemm and MatMul.

use super::super::import::{Ctx, N};
use crate::graph::ValueId;
use jetrt_format::op::{Activation, Gemm, Op};

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

/// MatMul with numpy semantics: by a 2-D B, a Gemm over A's rows (A
/// flattened to 2-D); otherwise a batched MatMul step. 1-D operands are
/// promoted to matrices and the added axis removed again.
pub(crate) fn matmul(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let (mut a, mut b) = (n.input(0)?, n.input(1)?);
    let (mut sa, mut sb) = (cx.shape(a).to_vec(), cx.shape(b).to_vec());
    if sa.is_empty() || sb.is_empty() {
        return Err("MatMul of a scalar is not defined".into());
    }
    let (a_vec, b_vec) = (sa.len() == 1, sb.len() == 1);
    if a_vec {
        sa.insert(0, 1);
        a = cx.reshape(n.temp("a_row"), a, sa.clone());
    }
    if b_vec {
        sb.push(1);
        b = cx.reshape(n.temp("b_col"), b, sb.clone());
    }
    if a_vec || b_vec || sb.len() != 2 {
        let y =
            cx.node(if a_vec || b_vec { n.temp("matmul") } else { n.name.clone() }, Op::MatMul { act: Activation::None }, vec![a, b])?;
        if !(a_vec || b_vec) {
            return Ok(vec![y]);
        }
        let mut out = cx.shape(y).to_vec();
        if b_vec {
            out.pop();
        }
        if a_vec {
            out.remove(out.len() - if b_vec { 1 } else { 2 });
        }
        return Ok(vec![cx.reshape(n.name.clone(), y, out)]);
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
