//! Comparisons and boolean logic. Exporters use them on shapes and masks
//! that are constants once shapes are fixed, so they are evaluated at
//! conversion; on run-time tensors they are refused.

use super::super::import::{Ctx, N};
use super::elementwise::broadcast_indices;
use crate::graph::ValueId;
use crate::tensor::{Data, Tensor};
use jetrt_format::shape::broadcast;

fn both_ints(a: &Tensor, b: &Tensor) -> Option<(Vec<i64>, Vec<i64>)> {
    Some((a.ints()?, b.ints()?))
}

pub(crate) fn compare(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let (a, b) = (n.input(0)?, n.input(1)?);
    let (Some(ta), Some(tb)) = (cx.konst(a), cx.konst(b)) else {
        return Err(format!("{} on tensors computed at run time is not supported (only on constants)", n.op));
    };
    if ta.dtype() != tb.dtype() {
        return Err(format!("operands have different element types ({:?} and {:?})", ta.dtype(), tb.dtype()));
    }
    let shape = broadcast(&ta.shape, &tb.shape).ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", ta.shape, tb.shape))?;
    let shape = shape.dims().to_vec();
    let (ia, ib) = (broadcast_indices(&ta.shape, &shape), broadcast_indices(&tb.shape, &shape));
    use std::cmp::Ordering;
    let order: Vec<Option<Ordering>> = match both_ints(ta, tb) {
        // Integers compare exactly (no detour through f64).
        Some((va, vb)) => ia.iter().zip(&ib).map(|(&i, &j)| Some(va[i].cmp(&vb[j]))).collect(),
        None => {
            let (va, vb) = (ta.data.to_f64(), tb.data.to_f64());
            ia.iter().zip(&ib).map(|(&i, &j)| va[i].partial_cmp(&vb[j])).collect()
        }
    };
    let out: Vec<bool> = order
        .iter()
        .map(|o| match n.op {
            "Equal" => *o == Some(Ordering::Equal),
            "Less" => *o == Some(Ordering::Less),
            "Greater" => *o == Some(Ordering::Greater),
            "LessOrEqual" => matches!(o, Some(Ordering::Less | Ordering::Equal)),
            _ => matches!(o, Some(Ordering::Greater | Ordering::Equal)),
        })
        .collect();
    Ok(vec![cx.add_const(n.name.clone(), Tensor::new(shape, Data::Bool(out)))])
}

/// IsNaN and IsInf on constants: folded (they guard attention masks in
/// exported transformers).
pub(crate) fn float_class(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let Some(t) = cx.konst(x) else {
        return Err(format!("{} on tensors computed at run time is not supported (only on constants)", n.op));
    };
    let (neg, pos) = (n.int("detect_negative", 1) != 0, n.int("detect_positive", 1) != 0);
    let out = t
        .data
        .to_f64()
        .iter()
        .map(|&v| if n.op == "IsNaN" { v.is_nan() } else { v.is_infinite() && ((v > 0.0 && pos) || (v < 0.0 && neg)) })
        .collect();
    Ok(vec![cx.add_const(n.name.clone(), Tensor::new(t.shape.clone(), Data::Bool(out)))])
}

fn bools(t: &Tensor) -> Result<&[bool], String> {
    match &t.data {
        Data::Bool(v) => Ok(v),
        other => Err(format!("expects bool tensors, got {:?}", other.dtype())),
    }
}

pub(crate) fn logic(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let inputs: Vec<ValueId> = (0..n.inputs.len()).map(|i| n.input(i)).collect::<Result<_, _>>()?;
    let tensors: Vec<&Tensor> = inputs
        .iter()
        .map(|&v| cx.konst(v).ok_or_else(|| format!("{} on tensors computed at run time is not supported (only on constants)", n.op)))
        .collect::<Result<_, _>>()?;
    let t = if n.op == "Not" {
        let a = tensors.first().ok_or("no input")?;
        Tensor::new(a.shape.clone(), Data::Bool(bools(a)?.iter().map(|x| !x).collect()))
    } else {
        let (ta, tb) = (tensors.first().ok_or("no input")?, tensors.get(1).ok_or("missing second input")?);
        let shape = broadcast(&ta.shape, &tb.shape).ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", ta.shape, tb.shape))?;
        let shape = shape.dims().to_vec();
        let (va, vb) = (bools(ta)?, bools(tb)?);
        let (ia, ib) = (broadcast_indices(&ta.shape, &shape), broadcast_indices(&tb.shape, &shape));
        let out = ia
            .iter()
            .zip(&ib)
            .map(|(&i, &j)| match n.op {
                "And" => va[i] && vb[j],
                "Or" => va[i] || vb[j],
                _ => va[i] ^ vb[j],
            })
            .collect();
        Tensor::new(shape, Data::Bool(out))
    };
    Ok(vec![cx.add_const(n.name.clone(), t)])
}
