//! Stores a ChannelAffine operand that holds one value for every channel
//! as that one value (`[1]`). Per-channel Mul and Add nodes with a scalar
//! constant (PP-LCNetV3's learnable affine blocks, a Mul without an Add)
//! become affines with `[C]` operands while the passes run, since those
//! read and merge them channel by channel; this runs last, before writing.
//! PP-OCRv5 rec holds about 60 of them.

use crate::graph::Graph;
use crate::tensor::Tensor;
use jetrt::DType;
use jetrt_format::op::Op;

/// Returns the operands made scalar.
pub fn run(g: &mut Graph) -> usize {
    let mut changed = 0;
    for i in 0..g.nodes.len() {
        if !matches!(g.nodes[i].op, Op::ChannelAffine { .. }) {
            continue;
        }
        for at in 1..=2 {
            let v = g.nodes[i].inputs[at];
            let Some(t) = g.konst(v).filter(|t| t.dtype() == DType::F32 && t.shape.len() == 1 && t.shape[0] > 1) else { continue };
            let vals = t.floats();
            if vals.iter().all(|&x| x.to_bits() == vals[0].to_bits()) {
                let name = format!("{}.uniform", g.values[v].name);
                g.nodes[i].inputs[at] = g.add_const(name, Tensor::f32(vec![1], vec![vals[0]]));
                changed += 1;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetrt_format::op::Activation;

    #[test]
    fn uniform_operands_become_one_value() {
        let mut g = Graph::default();
        let x = g.add_value("x", DType::F32, vec![1, 3, 2, 2]);
        let s = g.add_const("s", Tensor::f32(vec![3], vec![0.5; 3]));
        let t = g.add_const("t", Tensor::f32(vec![3], vec![0.0, 1.0, 2.0]));
        let y = g.add_value("y", DType::F32, vec![1, 3, 2, 2]);
        g.nodes.push(crate::graph::Node {
            name: "a".into(),
            op: Op::ChannelAffine { act: Activation::None },
            inputs: vec![x, s, t],
            outputs: vec![y],
        });
        assert_eq!(run(&mut g), 1);
        let n = &g.nodes[0];
        assert_eq!(g.konst(n.inputs[1]).unwrap().shape, vec![1]);
        assert_eq!(g.konst(n.inputs[1]).unwrap().floats(), vec![0.5]);
        assert_eq!(n.inputs[2], t, "a per-channel shift stays");
    }
}
