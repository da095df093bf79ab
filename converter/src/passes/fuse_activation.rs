//! Fuses an activation step into the step that produces its input (Conv,
//! Gemm, elementwise, ChannelAffine), so it is applied while the result is
//! still in registers. Returns the steps removed.

use crate::graph::Graph;
use jetrt::ops::{Activation, Op};

fn act_slot(op: &mut Op) -> Option<&mut Activation> {
    match op {
        Op::Conv2d(c) => Some(&mut c.act),
        Op::Gemm(g) => Some(&mut g.act),
        Op::Binary { act, .. } | Op::ChannelAffine { act } => Some(act),
        _ => None,
    }
}

pub fn run(g: &mut Graph) -> usize {
    let mut fused = 0;
    loop {
        let consumers = g.consumers();
        let producers = g.producers();
        let found = g.nodes.iter().enumerate().find_map(|(j, n)| {
            let Op::Activation(a) = n.op else { return None };
            let x = n.inputs[0];
            let i = producers[x]?;
            let mut op = g.nodes[i].op.clone();
            let free = act_slot(&mut op).is_some_and(|s| s.is_none());
            (free && consumers[x].len() == 1 && !g.is_output(x)).then_some((i, j, a))
        });
        let Some((i, j, a)) = found else { break };
        let outputs = g.nodes[j].outputs.clone();
        if let Some(slot) = act_slot(&mut g.nodes[i].op) {
            *slot = a;
        }
        g.nodes[i].outputs = outputs;
        g.nodes.remove(j);
        fused += 1;
    }
    fused
}
