//! Folds a ChannelAffine (a BatchNormalization, or a per-channel Mul/Add)
//! into the convolution or Gemm before it: `W'[o] = W[o] · s[o]`,
//! `b'[o] = b[o] · s[o] + t[o]` (for a Gemm, o is the output column: B's
//! column, or row when B is transposed, and C is scaled by β too). Returns
//! the steps removed.

use crate::graph::Graph;
use crate::tensor::Tensor;
use jetrt_format::op::{Activation, Op};

pub fn run(g: &mut Graph) -> usize {
    fold_into_conv(g) + fold_into_gemm(g)
}

fn fold_into_gemm(g: &mut Graph) -> usize {
    let mut folded = 0;
    loop {
        let consumers = g.consumers();
        let producers = g.producers();
        let found = g.nodes.iter().enumerate().find_map(|(j, aff)| {
            let Op::ChannelAffine { act } = aff.op else { return None };
            let y = aff.inputs[0];
            let i = producers[y]?;
            let gemm = &g.nodes[i];
            let Op::Gemm(gm) = gemm.op else { return None };
            let n = g.values[y].shape[1];
            // C, if any, must be a per-column bias ([N] or [1, N]).
            let c_ok = gemm.inputs.get(2).is_none_or(|&c| g.konst(c).is_some_and(|t| t.numel() == n && t.shape.last() == Some(&n)));
            let foldable = gm.act == Activation::None
                && c_ok
                && consumers[y].len() == 1
                && !g.is_output(y)
                && g.konst(gemm.inputs[1]).is_some()
                && aff.inputs[1..].iter().all(|&v| g.konst(v).is_some());
            foldable.then_some((i, j, act))
        });
        let Some((i, j, act)) = found else { break };
        let gemm = g.nodes[i].clone();
        let aff = g.nodes[j].clone();
        let Op::Gemm(mut gm) = gemm.op else { break };
        let (Some(b), Some(s), Some(t)) = (g.konst(gemm.inputs[1]), g.konst(aff.inputs[1]), g.konst(aff.inputs[2])) else { break };
        let (s, t) = (s.floats(), t.floats());
        let b_shape = b.shape.clone();
        let mut bv = b.floats();
        let cols = b_shape[1];
        for (r, row) in bv.chunks_mut(cols).enumerate() {
            for (c, x) in row.iter_mut().enumerate() {
                *x *= s[if gm.trans_b { r } else { c }];
            }
        }
        let c_old = match gemm.inputs.get(2).and_then(|&v| g.konst(v)) {
            Some(c) => c.floats(),
            None => vec![0.0; s.len()],
        };
        let cv: Vec<f32> = c_old.iter().zip(s.iter().zip(&t)).map(|(c, (s, t))| gm.beta * c * s + t).collect();
        let bn = g.add_const(format!("{}/folded_b", gemm.name), Tensor::f32(b_shape, bv));
        let cn = g.add_const(format!("{}/folded_c", gemm.name), Tensor::f32(vec![cv.len()], cv));
        gm.beta = 1.0;
        gm.act = act;
        let node = &mut g.nodes[i];
        node.op = Op::Gemm(gm);
        node.inputs = vec![gemm.inputs[0], bn, cn];
        node.outputs = aff.outputs.clone();
        g.nodes.remove(j);
        folded += 1;
    }
    folded
}

fn fold_into_conv(g: &mut Graph) -> usize {
    let mut folded = 0;
    loop {
        let consumers = g.consumers();
        let producers = g.producers();
        let found = g.nodes.iter().enumerate().find_map(|(j, aff)| {
            let Op::ChannelAffine { act } = aff.op else { return None };
            let y = aff.inputs[0];
            let i = producers[y]?;
            let conv = &g.nodes[i];
            let Op::Conv2d(c) = conv.op else { return None };
            let foldable = c.act == Activation::None
                && consumers[y].len() == 1
                && !g.is_output(y)
                && conv.inputs[1..].iter().all(|&v| g.konst(v).is_some())
                && aff.inputs[1..].iter().all(|&v| g.konst(v).is_some());
            foldable.then_some((i, j, act))
        });
        let Some((i, j, act)) = found else { break };
        let conv = g.nodes[i].clone();
        let aff = g.nodes[j].clone();
        let (Some(w), Some(s), Some(t)) = (g.konst(conv.inputs[1]), g.konst(aff.inputs[1]), g.konst(aff.inputs[2])) else { break };
        let (s, t) = (s.floats(), t.floats());
        let w_shape = w.shape.clone();
        let per_out = w.numel() / w_shape[0].max(1);
        let mut wv = w.floats();
        for (o, chunk) in wv.chunks_mut(per_out).enumerate() {
            chunk.iter_mut().for_each(|x| *x *= s[o]);
        }
        let b = match conv.inputs.get(2).and_then(|&v| g.konst(v)) {
            Some(b) => b.floats(),
            None => vec![0.0; s.len()],
        };
        let bv: Vec<f32> = b.iter().zip(s.iter().zip(&t)).map(|(b, (s, t))| b * s + t).collect();
        let wn = g.add_const(format!("{}/folded_w", conv.name), Tensor::f32(w_shape, wv));
        let bn = g.add_const(format!("{}/folded_b", conv.name), Tensor::f32(vec![bv.len()], bv));
        let Op::Conv2d(mut c) = conv.op else { break };
        c.act = act;
        let node = &mut g.nodes[i];
        node.op = Op::Conv2d(c);
        node.inputs = vec![conv.inputs[0], wn, bn];
        node.outputs = aff.outputs.clone();
        g.nodes.remove(j);
        folded += 1;
    }
    folded
}
