//! Folds a ChannelAffine (`x · s[c] + t[c]`, no activation) into the
//! convolution that reads it: `W'[m][c] = W[m][c] · s[c]` and `b'[m] = b[m] +
//! Σ_c t[c] · Σ_{kh,kw} W[m][c]`. Exact only without zero padding (padded
//! positions would see 0 instead of t), so only unpadded convolutions take
//! it (pointwise ones, in practice: PP-LCNet's learnable affine blocks
//! before a 1×1 convolution). Returns the steps removed.

use crate::graph::Graph;
use crate::tensor::Tensor;
use jetrt_format::op::{Activation, Op};

pub fn run(g: &mut Graph) -> usize {
    let mut folded = 0;
    loop {
        let consumers = g.consumers();
        let found = g.nodes.iter().enumerate().find_map(|(j, aff)| {
            let Op::ChannelAffine { act: Activation::None } = aff.op else { return None };
            let y = aff.outputs[0];
            let [i] = consumers[y][..] else { return None };
            let conv = &g.nodes[i];
            let Op::Conv2d(c) = conv.op else { return None };
            let foldable = c.pads == [0; 4]
                && conv.inputs[0] == y
                && !g.is_output(y)
                && conv.inputs[1..].iter().all(|&v| g.konst(v).is_some() && consumers[v].len() == 1)
                && aff.inputs[1..].iter().all(|&v| g.konst(v).is_some());
            foldable.then_some((i, j))
        });
        let Some((i, j)) = found else { break };
        let conv = g.nodes[i].clone();
        let aff = g.nodes[j].clone();
        let Op::Conv2d(c) = conv.op else { break };
        let (Some(w), Some(s), Some(t)) = (g.konst(conv.inputs[1]), g.konst(aff.inputs[1]), g.konst(aff.inputs[2])) else { break };
        let (s, t) = (s.floats(), t.floats());
        let w_shape = w.shape.clone();
        let (m, cg, khw) = (w_shape[0], w_shape[1], w_shape[2] * w_shape[3]);
        let mg = m / c.groups.max(1);
        let mut wv = w.floats();
        let mut b = match conv.inputs.get(2).and_then(|&v| g.konst(v)) {
            Some(b) => b.floats(),
            None => vec![0.0; m],
        };
        for (o, bo) in b.iter_mut().enumerate() {
            for cl in 0..cg {
                let ic = (o / mg) * cg + cl;
                let taps = &mut wv[(o * cg + cl) * khw..(o * cg + cl + 1) * khw];
                *bo += t[ic] * taps.iter().sum::<f32>();
                taps.iter_mut().for_each(|x| *x *= s[ic]);
            }
        }
        let wn = g.add_const(format!("{}/affine_w", conv.name), Tensor::f32(w_shape, wv));
        let bn = g.add_const(format!("{}/affine_b", conv.name), Tensor::f32(vec![m], b));
        let node = &mut g.nodes[i];
        node.inputs = vec![aff.inputs[0], wn, bn];
        g.nodes.remove(j);
        folded += 1;
    }
    folded
}
