//! `MatMul` followed by `Add` of a bias along the last axis becomes one
//! Gemm with that bias as C, added in the GEMM's epilogue. The MatMul has
//! already become a Gemm on A's rows (with a reshape around it when A has
//! more than two axes); the bias is moved into it, before the reshape.
//! Returns the nodes removed.

use super::pattern::{other_operand, Uses};
use crate::graph::{Graph, ValueId};
use crate::tensor::Tensor;
use jetrt_format::op::{BinaryOp, Op};

/// The bias as `[N]` if `c` is a constant varying only along the last axis
/// of a result `[.., N]`.
fn last_axis_bias(g: &Graph, c: ValueId, n: usize) -> Option<Vec<f32>> {
    let t = g.konst(c)?;
    let (last, lead) = t.shape.split_last()?;
    if lead.iter().any(|&d| d != 1) || !(*last == n || *last == 1) {
        return None;
    }
    let v = t.floats();
    Some(if v.len() == n { v } else { vec![v[0]; n] })
}

fn find(g: &Graph) -> Option<(usize, Option<usize>, usize, Vec<f32>)> {
    let u = Uses::new(g);
    for (i, n) in g.nodes.iter().enumerate() {
        let Op::Gemm(gm) = n.op else { continue };
        if n.inputs.len() != 2 || !gm.act.is_none() || gm.beta != 1.0 {
            continue;
        }
        let y = n.outputs[0];
        let cols = *g.values[y].shape.last()?;
        let Some(mut j) = u.only_reader(g, y) else { continue };
        let mut copy = None;
        let mut out = y;
        if matches!(g.nodes[j].op, Op::Copy) && g.values[g.nodes[j].outputs[0]].shape.last() == Some(&cols) {
            copy = Some(j);
            out = g.nodes[j].outputs[0];
            let Some(k) = u.only_reader(g, out) else { continue };
            j = k;
        }
        let Some(c) = other_operand(g, j, BinaryOp::Add, out) else { continue };
        if g.values[g.nodes[j].outputs[0]].shape != g.values[out].shape {
            continue;
        }
        if let Some(bias) = last_axis_bias(g, c, cols) {
            return Some((i, copy, j, bias));
        }
    }
    None
}

pub fn run(g: &mut Graph) -> usize {
    let mut removed = 0;
    while let Some((i, copy, add, bias)) = find(g) {
        let name = g.nodes[i].name.clone();
        let n = bias.len();
        let c = g.add_const(format!("{name}/bias"), Tensor::f32(vec![n], bias));
        g.nodes[i].inputs.push(c);
        let result = g.nodes[add].outputs.clone();
        match copy {
            Some(k) => g.nodes[k].outputs = result,
            None => g.nodes[i].outputs = result,
        }
        g.nodes.remove(add);
        removed += 1;
    }
    removed
}
