//! Fuses an activation step into the step that produces its input (Conv,
//! Gemm, MatMul, elementwise, ChannelAffine), so it is applied while the result is
//! still in registers. Returns the steps removed.

use crate::graph::Graph;
use jetrt_format::op::{Activation, Op};

fn act_slot(op: &mut Op) -> Option<&mut Activation> {
    match op {
        Op::Conv2d(c) => Some(&mut c.act),
        Op::Gemm(g) => Some(&mut g.act),
        Op::MatMul { act } => Some(act),
        Op::Binary { act, .. } | Op::ChannelAffine { act } => Some(act),
        _ => None,
    }
}

pub fn run(g: &mut Graph) -> usize {
    let mut fused = 0;
    loop {
        let consumers = g.consumers();
        let producers = g.producers();
        // (producer, reshape between, activation node, activation)
        let found = g.nodes.iter().enumerate().find_map(|(j, n)| {
            let Op::Activation(a) = n.op else { return None };
            let x = n.inputs[0];
            let single = |v: usize| consumers[v].len() == 1 && !g.is_output(v);
            let mut i = producers[x]?;
            let mut copy = None;
            // An elementwise activation commutes with a reshape: look
            // through one (MatMul's A is flattened to rows and back).
            if matches!(g.nodes[i].op, Op::Copy) && single(x) {
                let y = g.nodes[i].inputs[0];
                copy = Some(i);
                i = producers[y]?;
                if !single(y) {
                    return None;
                }
            }
            let mut op = g.nodes[i].op.clone();
            let free = act_slot(&mut op).is_some_and(|s| s.is_none());
            (free && single(x)).then_some((i, copy, j, a))
        });
        let Some((i, copy, j, a)) = found else { break };
        let outputs = g.nodes[j].outputs.clone();
        if let Some(slot) = act_slot(&mut g.nodes[i].op) {
            *slot = a;
        }
        match copy {
            Some(k) => g.nodes[k].outputs = outputs,
            None => g.nodes[i].outputs = outputs,
        }
        g.nodes.remove(j);
        fused += 1;
    }
    fused
}
