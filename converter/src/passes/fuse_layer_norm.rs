//! Recognizes LayerNormalization written out in elementary ops, as torch
//! (opset < 17) and Paddle export it:
//!
//! ```text
//! m = ReduceMean(x, last axes)   d = x − m   v = ReduceMean(d², same axes)
//! y = d / √(v + ε)   [· γ]   [+ β]
//! ```
//!
//! (`d²` as `Pow(d, 2)` or `d · d`) and turns it into one LayerNorm step.
//! Returns the nodes removed.

use super::pattern::{const_scalar, other_operand, replace_chain, Uses};
use crate::graph::{Graph, ValueId};
use crate::tensor::Tensor;
use jetrt_format::op::{Activation, BinaryOp, Op, ReduceOp};

/// The normalized axes as `axis..rank` if `mask` is such a suffix.
fn suffix_axis(mask: u32, rank: usize) -> Option<usize> {
    let axis = (0..rank).find(|&a| mask & (1 << a) != 0)?;
    ((axis..rank).fold(0u32, |m, a| m | 1 << a) == mask).then_some(axis)
}

/// A constant that only varies along the normalized axes, flattened to
/// their length.
fn affine_param(g: &Graph, c: ValueId, x_shape: &[usize], axis: usize) -> Option<Vec<f32>> {
    let t = g.konst(c)?;
    let norm = &x_shape[axis..];
    let n: usize = norm.iter().product();
    if t.shape.len() > x_shape.len() {
        return None;
    }
    let lead = x_shape.len() - t.shape.len();
    // Axes before `axis` must be 1; the normalized ones full or 1 (then
    // the value is broadcast).
    for (i, &d) in t.shape.iter().enumerate() {
        if lead + i < axis && d != 1 {
            return None;
        }
    }
    let v = t.floats();
    if v.len() == n {
        Some(v)
    } else if v.len() == 1 {
        Some(vec![v[0]; n])
    } else {
        None
    }
}

/// A match: the nodes, X, the first normalized axis, ε, γ and β.
struct Match {
    chain: Vec<usize>,
    x: ValueId,
    axis: usize,
    eps: f32,
    gamma: Option<ValueId>,
    beta: Option<ValueId>,
}

fn find(g: &Graph) -> Option<Match> {
    let u = Uses::new(g);
    for (i_m1, n) in g.nodes.iter().enumerate() {
        let Op::Reduce { op: ReduceOp::Mean, axes, keepdims: true } = n.op else { continue };
        let x = n.inputs[0];
        let rank = g.values[x].shape.len();
        let Some(axis) = suffix_axis(axes, rank) else { continue };
        let m1 = n.outputs[0];
        let Some(i_d) = u.only_reader(g, m1) else { continue };
        let dn = &g.nodes[i_d];
        if !(matches!(dn.op, Op::Binary { op: BinaryOp::Sub, act: Activation::None }) && dn.inputs == [x, m1]) {
            continue;
        }
        let d = dn.outputs[0];
        // d is read by the square and the division (twice by d·d).
        let (mut i_sq, mut i_div) = (None, None);
        for &r in u.readers(d) {
            let rn = &g.nodes[r];
            match rn.op {
                Op::Binary { op: BinaryOp::Pow, act: Activation::None }
                    if rn.inputs[0] == d && const_scalar(g, rn.inputs[1]) == Some(2.0) =>
                {
                    i_sq = Some(r)
                }
                Op::Binary { op: BinaryOp::Mul, act: Activation::None } if rn.inputs == [d, d] => i_sq = Some(r),
                Op::Binary { op: BinaryOp::Div, act: Activation::None } if rn.inputs[0] == d => i_div = Some(r),
                _ => {}
            }
        }
        let (Some(i_sq), Some(i_div)) = (i_sq, i_div) else { continue };
        let expected_reads = if g.nodes[i_sq].inputs == [d, d] { 3 } else { 2 };
        if u.readers(d).len() != expected_reads || g.is_output(d) {
            continue;
        }
        let sq = g.nodes[i_sq].outputs[0];
        let Some(i_v) = u.only_reader(g, sq) else { continue };
        if !matches!(g.nodes[i_v].op, Op::Reduce { op: ReduceOp::Mean, axes: a2, keepdims: true } if a2 == axes) {
            continue;
        }
        let v = g.nodes[i_v].outputs[0];
        let Some(i_e) = u.only_reader(g, v) else { continue };
        let Some(eps_v) = other_operand(g, i_e, BinaryOp::Add, v) else { continue };
        let Some(eps) = const_scalar(g, eps_v) else { continue };
        let e = g.nodes[i_e].outputs[0];
        let Some(i_s) = u.only_reader(g, e) else { continue };
        if !matches!(g.nodes[i_s].op, Op::Activation(Activation::Sqrt)) {
            continue;
        }
        let s = g.nodes[i_s].outputs[0];
        if u.only_reader(g, s) != Some(i_div) || g.nodes[i_div].inputs[1] != s {
            continue;
        }
        let mut chain = vec![i_m1, i_d, i_sq, i_v, i_e, i_s, i_div];
        let mut y = g.nodes[i_div].outputs[0];
        let x_shape = g.values[x].shape.clone();
        let (mut gamma, mut beta) = (None, None);
        if let Some(i_g) = u.only_reader(g, y) {
            if let Some(c) = other_operand(g, i_g, BinaryOp::Mul, y).filter(|&c| affine_param(g, c, &x_shape, axis).is_some()) {
                if g.values[g.nodes[i_g].outputs[0]].shape == x_shape {
                    gamma = Some(c);
                    chain.push(i_g);
                    y = g.nodes[i_g].outputs[0];
                }
            }
        }
        if let Some(i_b) = u.only_reader(g, y) {
            if let Some(c) = other_operand(g, i_b, BinaryOp::Add, y).filter(|&c| affine_param(g, c, &x_shape, axis).is_some()) {
                if g.values[g.nodes[i_b].outputs[0]].shape == x_shape {
                    beta = Some(c);
                    chain.push(i_b);
                }
            }
        }
        return Some(Match { chain, x, axis, eps, gamma, beta });
    }
    None
}

pub fn run(g: &mut Graph) -> usize {
    let mut removed = 0;
    while let Some(Match { chain, x, axis, eps, gamma, beta }) = find(g) {
        let x_shape = g.values[x].shape.clone();
        let n: usize = x_shape[axis..].iter().product();
        let name = g.nodes[*chain.iter().max().unwrap_or(&0)].name.clone();
        let scale = gamma.and_then(|c| affine_param(g, c, &x_shape, axis)).unwrap_or_else(|| vec![1.0; n]);
        let s = g.add_const(format!("{name}/ln_scale"), Tensor::f32(vec![n], scale));
        let mut inputs = vec![x, s];
        if let Some(b) = beta.and_then(|c| affine_param(g, c, &x_shape, axis)) {
            inputs.push(g.add_const(format!("{name}/ln_bias"), Tensor::f32(vec![n], b)));
        }
        removed += replace_chain(g, &chain, Op::LayerNorm { axis, epsilon: eps }, inputs);
    }
    removed
}
