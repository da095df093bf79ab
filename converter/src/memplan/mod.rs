//! The static memory plan: every run-time tensor gets an offset in one
//! arena, by liveness, with the greedy strategy of TFLite Micro's planner:
//! largest first, each at the lowest offset that does not collide with a
//! tensor already placed whose lifetime overlaps.

use crate::graph::{Graph, ValueId};
use jetrt_format::TENSOR_ALIGN;

/// A buffer to place: bytes and lifetime (first and last step it must
/// survive; −1 = before the first step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    pub bytes: u64,
    pub first: i64,
    pub last: i64,
}

/// Places `buffers`; returns (offsets, arena bytes). Offsets are multiples
/// of [`TENSOR_ALIGN`].
pub fn place(buffers: &[Buffer]) -> (Vec<u64>, u64) {
    let align = TENSOR_ALIGN as u64;
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by(|&a, &b| buffers[b].bytes.cmp(&buffers[a].bytes).then(buffers[a].first.cmp(&buffers[b].first)).then(a.cmp(&b)));
    let mut offsets = vec![0u64; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    let mut arena = 0u64;
    for &i in &order {
        let b = buffers[i];
        let size = b.bytes.next_multiple_of(align);
        // Ranges of placed buffers alive at the same time, by offset.
        let mut busy: Vec<(u64, u64)> = placed
            .iter()
            .filter(|&&j| buffers[j].first <= b.last && b.first <= buffers[j].last && buffers[j].bytes > 0)
            .map(|&j| (offsets[j], offsets[j] + buffers[j].bytes.next_multiple_of(align)))
            .collect();
        busy.sort_unstable();
        let mut at = 0u64;
        for (start, end) in busy {
            if start >= at + size {
                break;
            }
            at = at.max(end);
        }
        offsets[i] = at;
        if b.bytes > 0 {
            arena = arena.max(at + size);
        }
        placed.push(i);
    }
    (offsets, arena)
}

/// The arena plan of a graph: offsets of every run-time value (graph inputs
/// and node outputs), and the arena size.
pub struct MemoryPlan {
    pub offsets: Vec<Option<u64>>,
    pub arena_bytes: u64,
}

pub fn plan(g: &Graph) -> MemoryPlan {
    let n_nodes = g.nodes.len() as i64;
    let mut first = vec![None::<i64>; g.values.len()];
    let mut last = vec![i64::MIN; g.values.len()];
    for &v in &g.inputs {
        first[v] = Some(-1);
    }
    for (i, node) in g.nodes.iter().enumerate() {
        for &v in &node.outputs {
            first[v] = Some(i as i64);
        }
        for &v in &node.inputs {
            last[v] = last[v].max(i as i64);
        }
    }
    // Outputs live to the end; so do inputs, which a session may run on
    // again without setting them anew.
    for &v in g.outputs.iter().map(|(_, v)| v).chain(&g.inputs) {
        last[v] = n_nodes;
    }
    let ids: Vec<ValueId> = (0..g.values.len()).filter(|&v| first[v].is_some() && g.values[v].konst.is_none()).collect();
    let buffers: Vec<Buffer> = ids
        .iter()
        .map(|&v| {
            let f = first[v].unwrap_or(-1);
            Buffer { bytes: g.values[v].nbytes() as u64, first: f, last: last[v].max(f) }
        })
        .collect();
    let (offs, arena_bytes) = place(&buffers);
    let mut offsets = vec![None; g.values.len()];
    for (k, &v) in ids.iter().enumerate() {
        offsets[v] = Some(offs[k]);
    }
    MemoryPlan { offsets, arena_bytes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(buffers: &[Buffer]) {
        let (off, arena) = place(buffers);
        for (i, a) in buffers.iter().enumerate() {
            assert_eq!(off[i] % TENSOR_ALIGN as u64, 0);
            assert!(off[i] + a.bytes <= arena || a.bytes == 0);
            for (j, b) in buffers.iter().enumerate().skip(i + 1) {
                let live_together = a.first <= b.last && b.first <= a.last;
                let overlap = off[i] < off[j] + b.bytes && off[j] < off[i] + a.bytes && a.bytes > 0 && b.bytes > 0;
                assert!(!(live_together && overlap), "buffers {i} {a:?}@{} and {j} {b:?}@{} collide", off[i], off[j]);
            }
        }
        // Never worse than no reuse at all; never better than the busiest step.
        let sum: u64 = buffers.iter().map(|b| b.bytes.next_multiple_of(64)).sum();
        assert!(arena <= sum);
        let steps = buffers.iter().flat_map(|b| [b.first, b.last]).collect::<Vec<_>>();
        for s in steps {
            let live: u64 = buffers.iter().filter(|b| b.first <= s && s <= b.last).map(|b| b.bytes).sum();
            assert!(arena >= live);
        }
    }

    #[test]
    fn a_chain_reuses_memory() {
        // x -> a -> b -> c: only two are ever live at once.
        let bufs = [
            Buffer { bytes: 1000, first: -1, last: 0 },
            Buffer { bytes: 1000, first: 0, last: 1 },
            Buffer { bytes: 1000, first: 1, last: 2 },
            Buffer { bytes: 1000, first: 2, last: 3 },
        ];
        let (_, arena) = place(&bufs);
        assert_eq!(arena, 2 * 1024);
        check(&bufs);
    }

    proptest! {
        #[test]
        fn placements_never_collide(raw in proptest::collection::vec((0u64..5000, -1i64..20, 0i64..10), 0..60)) {
            let bufs: Vec<Buffer> = raw.into_iter().map(|(bytes, first, len)| Buffer { bytes, first, last: first + len }).collect();
            check(&bufs);
        }
    }
}
