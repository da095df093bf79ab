//! Helpers the pattern passes share: who produces and who reads a value,
//! constant scalars, and replacing a matched chain by one node.

use crate::graph::{Graph, ValueId};
use jetrt_format::op::{BinaryOp, Op};

/// Producers and consumers of every value, computed once per match.
pub(crate) struct Uses {
    consumers: Vec<Vec<usize>>,
    producers: Vec<Option<usize>>,
}

impl Uses {
    pub fn new(g: &Graph) -> Self {
        Uses { consumers: g.consumers(), producers: g.producers() }
    }

    pub fn producer(&self, v: ValueId) -> Option<usize> {
        self.producers[v]
    }

    /// The one node reading `v`, if exactly one does and `v` is not a graph
    /// output (so `v` may disappear when the chain is fused).
    pub fn only_reader(&self, g: &Graph, v: ValueId) -> Option<usize> {
        match self.consumers[v].as_slice() {
            [one] if !g.is_output(v) => Some(*one),
            _ => None,
        }
    }

    /// The nodes reading `v` (a node reading it twice is there twice).
    pub fn readers(&self, v: ValueId) -> &[usize] {
        &self.consumers[v]
    }
}

/// The value of a constant whose elements are all equal (a scalar in any
/// shape), as f32.
pub(crate) fn const_scalar(g: &Graph, v: ValueId) -> Option<f32> {
    let t = g.konst(v)?;
    let f = t.floats();
    let first = *f.first()?;
    f.iter().all(|&x| x == first).then_some(first)
}

/// If node `i` is `Binary op` with `x` as one operand, the other operand.
pub(crate) fn other_operand(g: &Graph, i: usize, op: BinaryOp, x: ValueId) -> Option<ValueId> {
    let n = &g.nodes[i];
    match n.op {
        Op::Binary { op: o, act } if o == op && act.is_none() => {
            if n.inputs[0] == x {
                Some(n.inputs[1])
            } else if n.inputs[1] == x && matches!(op, BinaryOp::Add | BinaryOp::Mul) {
                Some(n.inputs[0])
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Replaces the matched nodes `chain` (the last one computes the result)
/// by one node `op` on `inputs`, keeping the last node's place and output.
/// Returns how many nodes went.
pub(crate) fn replace_chain(g: &mut Graph, chain: &[usize], op: Op, inputs: Vec<ValueId>) -> usize {
    let last = *chain.iter().max().expect("a chain has nodes");
    g.nodes[last].op = op;
    g.nodes[last].inputs = inputs;
    let mut gone: Vec<usize> = chain.iter().copied().filter(|&i| i != last).collect();
    gone.sort_unstable();
    gone.dedup();
    for &i in gone.iter().rev() {
        g.nodes.remove(i);
    }
    gone.len()
}
