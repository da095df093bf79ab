//! Folds a ChannelAffine (a BatchNormalization, or a per-channel Mul/Add)
//! into the convolution before it: `W'[o] = W[o] · s[o]`,
//! `b'[o] = b[o] · s[o] + t[o]`. Returns the steps removed.

use crate::graph::Graph;
use crate::tensor::Tensor;
use jetrt::ops::{Activation, Op};

pub fn run(g: &mut Graph) -> usize {
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
