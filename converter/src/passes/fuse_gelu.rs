//! Recognizes activations exporters write out in elementary ops and turns
//! each into one Activation step (which fuse_activation can then merge into
//! the Conv, Gemm or MatMul before it):
//!
//! - Gelu: `0.5 · x · (1 + erf(x / √2))` (or `x · 0.7071...`), the two
//!   multiplications in any order;
//! - SiLU: `x · sigmoid(x)`;
//! - HardSwish: `x · HardSigmoid(x)` with α = 1/6, β = 0.5.
//!
//! Returns the nodes removed, per activation (the report names each).

use super::pattern::{const_scalar, other_operand, replace_chain, Uses};
use crate::graph::{Graph, ValueId};
use jetrt_format::op::{Activation, BinaryOp, Op};

fn near(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * b.abs()
}

/// `(chain, x)` of a Gelu whose erf is node `i_erf`.
fn gelu_at(g: &Graph, u: &Uses, i_erf: usize) -> Option<(Vec<usize>, ValueId)> {
    let q = g.nodes[i_erf].inputs[0];
    let i_q = u.producer(q)?;
    u.only_reader(g, q)?;
    let qn = &g.nodes[i_q];
    let x = qn.inputs[0];
    let scaled = match qn.op {
        Op::Binary { op: BinaryOp::Div, act } if act.is_none() => {
            const_scalar(g, qn.inputs[1]).is_some_and(|c| near(c, std::f32::consts::SQRT_2))
        }
        Op::Binary { op: BinaryOp::Mul, act } if act.is_none() => {
            const_scalar(g, qn.inputs[1]).is_some_and(|c| near(c, std::f32::consts::FRAC_1_SQRT_2))
        }
        _ => false,
    };
    if !scaled || g.konst(x).is_some() {
        return None;
    }
    let er = g.nodes[i_erf].outputs[0];
    let i_add = u.only_reader(g, er)?;
    let one = other_operand(g, i_add, BinaryOp::Add, er)?;
    if const_scalar(g, one) != Some(1.0) {
        return None;
    }
    let a = g.nodes[i_add].outputs[0];
    let i_m1 = u.only_reader(g, a)?;
    let other = other_operand(g, i_m1, BinaryOp::Mul, a)?;
    let m1 = g.nodes[i_m1].outputs[0];
    let half = |v: ValueId| const_scalar(g, v) == Some(0.5);
    let mut chain = vec![i_q, i_erf, i_add, i_m1];
    if other == x {
        // (x · (1 + erf)) · 0.5
        let i_m2 = u.only_reader(g, m1)?;
        half(other_operand(g, i_m2, BinaryOp::Mul, m1)?).then_some(())?;
        chain.push(i_m2);
    } else if half(other) {
        // (0.5 · (1 + erf)) · x
        let i_m2 = u.only_reader(g, m1)?;
        (other_operand(g, i_m2, BinaryOp::Mul, m1)? == x).then_some(())?;
        chain.push(i_m2);
    } else {
        // (x · 0.5) · (1 + erf)
        let i_h = u.producer(other)?;
        u.only_reader(g, other)?;
        half(other_operand(g, i_h, BinaryOp::Mul, x)?).then_some(())?;
        chain.push(i_h);
    }
    // The result must have x's shape (no broadcasting hidden in the chain).
    let last = *chain.iter().max()?;
    (g.values[g.nodes[last].outputs[0]].shape == g.values[x].shape).then_some((chain, x))
}

/// `(chain, x, activation)` of `x · gate(x)` whose gate is node `i_gate`.
fn gated_at(g: &Graph, u: &Uses, i_gate: usize) -> Option<(Vec<usize>, ValueId, Activation)> {
    let act = match g.nodes[i_gate].op {
        Op::Activation(Activation::Sigmoid) => Activation::Silu,
        Op::Activation(Activation::HardSigmoid { alpha, beta }) if near(alpha, 1.0 / 6.0) && beta == 0.5 => Activation::HardSwish,
        _ => return None,
    };
    let x = g.nodes[i_gate].inputs[0];
    let s = g.nodes[i_gate].outputs[0];
    let i_mul = u.only_reader(g, s)?;
    (other_operand(g, i_mul, BinaryOp::Mul, s)? == x).then_some(())?;
    (g.values[g.nodes[i_mul].outputs[0]].shape == g.values[x].shape).then_some((vec![i_gate, i_mul], x, act))
}

/// Nodes removed by each kind of fusion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fused {
    pub gelu: usize,
    pub silu: usize,
    pub hard_swish: usize,
}

pub fn run(g: &mut Graph) -> Fused {
    let mut removed = Fused::default();
    loop {
        let u = Uses::new(g);
        let found = (0..g.nodes.len()).find_map(|i| match g.nodes[i].op {
            Op::Activation(Activation::Erf) => gelu_at(g, &u, i).map(|(c, x)| (c, x, Activation::Gelu)),
            Op::Activation(_) => gated_at(g, &u, i),
            _ => None,
        });
        let Some((chain, x, act)) = found else { break };
        let n = replace_chain(g, &chain, Op::Activation(act), vec![x]);
        match act {
            Activation::Gelu => removed.gelu += n,
            Activation::Silu => removed.silu += n,
            _ => removed.hard_swish += n,
        }
    }
    removed
}
