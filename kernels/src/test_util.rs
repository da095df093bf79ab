//! Helpers the kernel tests share.

use crate::Parallel;

/// Two real threads, odd tasks on one and even on the other: enough to
/// show that a result does not depend on how tasks are split.
pub(crate) struct TwoWorkers;

impl Parallel for TwoWorkers {
    fn workers(&self) -> usize {
        2
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        std::thread::scope(|s| {
            s.spawn(|| (0..tasks).filter(|t| t % 2 == 1).for_each(|t| f(t, 1)));
            (0..tasks).filter(|t| t % 2 == 0).for_each(|t| f(t, 0));
        });
    }
}

/// Deterministic values in [-1, 1) (an LCG seeded by `seed`).
pub(crate) fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
