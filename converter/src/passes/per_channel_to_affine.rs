//! Turns `x · c`, `x + c`, `x − c` and `x / c` with a per-channel constant
//! `c` (shape `[C, 1, .., 1]` against `x` `[N, C, ..]`) into ChannelAffine
//! steps, then merges chains of them (BatchNormalization followed by a Mul
//! and an Add, as DenseNet exports have) into one. Returns the nodes removed
//! or rewritten.

use crate::graph::{Graph, ValueId};
use crate::tensor::Tensor;
use jetrt_format::op::{Activation, BinaryOp, Op};

/// Per-channel values of `c` broadcast against a tensor of shape `x`, if `c`
/// is constant along every axis but 1.
fn per_channel(g: &Graph, c: ValueId, x: &[usize]) -> Option<Vec<f32>> {
    let t = g.konst(c)?;
    if x.len() < 2 || t.shape.len() > x.len() {
        return None;
    }
    let channels = x[1];
    let lead = x.len() - t.shape.len();
    let mut along_channels = false;
    for (i, &d) in t.shape.iter().enumerate() {
        let axis = lead + i;
        if d == 1 {
            continue;
        }
        if axis == 1 && d == channels {
            along_channels = true;
        } else {
            return None;
        }
    }
    let v = t.floats();
    Some(if along_channels { v } else { vec![v[0]; channels] })
}

pub fn run(g: &mut Graph) -> usize {
    let mut changed = 0;
    for i in 0..g.nodes.len() {
        let Op::Binary { op, act: Activation::None } = g.nodes[i].op else { continue };
        let (a, b) = (g.nodes[i].inputs[0], g.nodes[i].inputs[1]);
        let out_shape = g.values[g.nodes[i].outputs[0]].shape.clone();
        let (x, c) = match op {
            BinaryOp::Mul | BinaryOp::Add if g.konst(a).is_some() && g.konst(b).is_none() => (b, a),
            BinaryOp::Mul | BinaryOp::Add | BinaryOp::Sub | BinaryOp::Div if g.konst(b).is_some() && g.konst(a).is_none() => (a, b),
            _ => continue,
        };
        if g.values[x].shape != out_shape {
            continue;
        }
        let Some(vals) = per_channel(g, c, &out_shape) else { continue };
        let n = vals.len();
        let (scale, shift): (Vec<f32>, Vec<f32>) = match op {
            BinaryOp::Mul => (vals, vec![0.0; n]),
            BinaryOp::Add => (vec![1.0; n], vals),
            BinaryOp::Sub => (vec![1.0; n], vals.iter().map(|v| -v).collect()),
            BinaryOp::Div => (vals.iter().map(|v| 1.0 / v).collect(), vec![0.0; n]),
            _ => continue,
        };
        let name = g.nodes[i].name.clone();
        let s = g.add_const(format!("{name}/scale"), Tensor::f32(vec![n], scale));
        let t = g.add_const(format!("{name}/shift"), Tensor::f32(vec![n], shift));
        g.nodes[i].op = Op::ChannelAffine { act: Activation::None };
        g.nodes[i].inputs = vec![x, s, t];
        changed += 1;
    }
    changed + merge_chains(g)
}

/// `affine2(affine1(x))` → one affine, when affine1's result is read only
/// by affine2.
fn merge_chains(g: &mut Graph) -> usize {
    let mut merged = 0;
    loop {
        let consumers = g.consumers();
        let producers = g.producers();
        let found = g.nodes.iter().enumerate().find_map(|(j, n2)| {
            let Op::ChannelAffine { .. } = n2.op else { return None };
            let mid = n2.inputs[0];
            let i = producers[mid]?;
            let n1 = &g.nodes[i];
            let is_plain_affine = matches!(n1.op, Op::ChannelAffine { act: Activation::None });
            (is_plain_affine && consumers[mid].len() == 1 && !g.is_output(mid)).then_some((i, j))
        });
        let Some((i, j)) = found else { break };
        let (s1, t1) = (g.konst(g.nodes[i].inputs[1]).map(|t| t.floats()), g.konst(g.nodes[i].inputs[2]).map(|t| t.floats()));
        let (s2, t2) = (g.konst(g.nodes[j].inputs[1]).map(|t| t.floats()), g.konst(g.nodes[j].inputs[2]).map(|t| t.floats()));
        let (Some(s1), Some(t1), Some(s2), Some(t2)) = (s1, t1, s2, t2) else { break };
        let scale: Vec<f32> = s1.iter().zip(&s2).map(|(a, b)| a * b).collect();
        let shift: Vec<f32> = t1.iter().zip(s2.iter().zip(&t2)).map(|(a, (b, c))| a * b + c).collect();
        let n = scale.len();
        let name = g.nodes[j].name.clone();
        let s = g.add_const(format!("{name}/scale"), Tensor::f32(vec![n], scale));
        let t = g.add_const(format!("{name}/shift"), Tensor::f32(vec![n], shift));
        let x = g.nodes[i].inputs[0];
        g.nodes[j].inputs = vec![x, s, t];
        g.nodes.remove(i);
        merged += 1;
    }
    merged
}
