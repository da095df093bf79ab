//! BatchNormalization, LayerNormalization, LRN, Softmax.

use super::super::import::{Ctx, N};
use crate::graph::ValueId;
use crate::tensor::Tensor;
use jetrt_format::op::{Activation, BinaryOp, LrnParams, Op, ReduceOp};

/// Inference-mode BatchNormalization as a per-channel affine step:
/// `scale = γ / √(var + ε)`, `shift = β − mean · scale` (computed in f64).
pub(crate) fn batch_normalization(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    if n.n_outputs > 1 {
        return Err("training outputs (running mean/var) are not supported".into());
    }
    if n.int("training_mode", 0) != 0 {
        return Err("training_mode=1 is not supported".into());
    }
    if n.opset < 9 && n.int("spatial", 1) != 1 {
        return Err("spatial=0 is not supported".into());
    }
    let x = n.input(0)?;
    let eps = n.float("epsilon", 1e-5) as f64;
    let mut params = Vec::with_capacity(4);
    for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")] {
        let v = n.input(i)?;
        let t = cx.konst(v).ok_or_else(|| format!("{what} must be a constant"))?;
        params.push(t.data.to_f64());
    }
    let xs = cx.shape(x).to_vec();
    let c = *xs.get(1).ok_or("input must have a channel axis")?;
    if params.iter().any(|p| p.len() != c) {
        return Err(format!("parameters must have {c} values (one per channel)"));
    }
    let scale: Vec<f64> = (0..c).map(|i| params[0][i] / (params[3][i] + eps).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|i| (params[1][i] - params[2][i] * scale[i]) as f32).collect();
    let scale: Vec<f32> = scale.into_iter().map(|s| s as f32).collect();
    let s = cx.add_const(n.temp("scale"), Tensor::f32(vec![c], scale));
    let t = cx.add_const(n.temp("shift"), Tensor::f32(vec![c], shift));
    Ok(vec![cx.node(n.name.clone(), Op::ChannelAffine { act: Activation::None }, vec![x, s, t])?])
}

pub(crate) fn lrn(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let size = usize::try_from(n.int("size", 0)).ok().filter(|&s| s > 0).ok_or("size must be positive")?;
    let p = LrnParams { size, alpha: n.float("alpha", 1e-4), beta: n.float("beta", 0.75), bias: n.float("bias", 1.0) };
    Ok(vec![cx.node(n.name.clone(), Op::Lrn(p), vec![x])?])
}

pub(crate) fn softmax(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let rank = cx.shape(x).len();
    // Before opset 13, Softmax flattened every axis from `axis` (default 1)
    // into one; since, it works along one axis (default −1).
    let coerce_2d = n.opset < 13;
    let default = if coerce_2d { 1 } else { -1 };
    let axis = super::axis(n.int("axis", default), rank)?;
    Ok(vec![cx.node(n.name.clone(), Op::Softmax { axis, coerce_2d }, vec![x])?])
}

/// LayerNormalization (opset 17): normalizes over the axes from `axis` on.
pub(crate) fn layer_normalization(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let rank = cx.shape(x).len();
    let axis = super::axis(n.int("axis", -1), rank)?;
    let epsilon = n.float("epsilon", 1e-5);
    let count: usize = cx.shape(x)[axis..].iter().product();
    let mut inputs = vec![x];
    for (i, what) in [(1, "scale"), (2, "bias")] {
        let Some(v) = n.opt_input(i) else { continue };
        let numel: usize = cx.shape(v).iter().product();
        let v = if numel == count || numel == 1 {
            v
        } else {
            // A scale that broadcasts over the normalized axes: expand it
            // (a constant, folded) to one value per normalized element.
            let target = cx.shape(x)[axis..].to_vec();
            let shape = jetrt_format::Shape::new(&target).ok_or("rank too large")?;
            cx.node(n.temp(what), Op::Broadcast { shape }, vec![v]).map_err(|e| format!("{what}: {e}"))?
        };
        inputs.push(v);
    }
    let y = cx.node(n.name.clone(), Op::LayerNorm { axis, epsilon }, inputs)?;
    if n.n_outputs <= 1 {
        return Ok(vec![y]);
    }
    // Mean and 1/√(var + ε), when read, as steps of their own.
    let axes = (axis..rank).fold(0u32, |m, a| m | 1 << a);
    let mean_op = Op::Reduce { op: ReduceOp::Mean, axes, keepdims: true };
    let bin = |op| Op::Binary { op, act: Activation::None };
    let mean = cx.node(n.temp("mean"), mean_op.clone(), vec![x])?;
    let d = cx.node(n.temp("centered"), bin(BinaryOp::Sub), vec![x, mean])?;
    let sq = cx.node(n.temp("squared"), bin(BinaryOp::Mul), vec![d, d])?;
    let var = cx.node(n.temp("var"), mean_op, vec![sq])?;
    let eps = cx.add_const(n.temp("epsilon"), Tensor::f32(vec![], vec![epsilon]));
    let ve = cx.node(n.temp("var_eps"), bin(BinaryOp::Add), vec![var, eps])?;
    let sd = cx.node(n.temp("std"), Op::Activation(Activation::Sqrt), vec![ve])?;
    let inv = cx.node(n.temp("inv_std"), Op::Activation(Activation::Reciprocal), vec![sd])?;
    Ok(vec![y, mean, inv])
}
