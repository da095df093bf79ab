//! Which steps are worth splitting over threads: a cost model from each
//! step's arithmetic and bytes, decided once when a session is built.
//!
//! Waking helpers and waiting for them costs a few microseconds, more
//! when a core is shared and a helper must be scheduled first. A step
//! whose whole work takes about that long runs faster on the calling
//! thread alone, and a model of many small steps (RegNetX, MobileNet's
//! late stages, the elementwise glue of a transformer) is mostly such
//! steps. The rates below are one core's, deliberately on the slow side
//! (a Cortex-A78AE more than an AVX-512 Xeon): a step misjudged small
//! loses a little speed-up; one misjudged large pays the overhead on a
//! step too short to gain.

use crate::lower::{Program, StepKind};

/// Multiply-adds (as 2 flops) per nanosecond of a dense float product.
const DENSE_FLOPS_PER_NS: f64 = 16.0;
/// Of a depthwise or narrow grouped convolution (memory-bound).
const GROUPED_FLOPS_PER_NS: f64 = 8.0;
/// Of an int8 product.
const INT8_OPS_PER_NS: f64 = 40.0;
/// Bytes read and written per nanosecond by everything else.
const BYTES_PER_NS: f64 = 8.0;

/// Steps estimated under this many nanoseconds on one thread run on one.
pub(crate) const PARALLEL_MIN_NS: f64 = 25_000.0;

/// Estimated single-thread nanoseconds of step `si`.
pub(crate) fn serial_ns(plan: &Program, si: usize) -> f64 {
    let step = &plan.steps[si];
    let bytes: usize = plan.locs[step.inputs.clone()].iter().chain(&plan.locs[step.outputs.clone()]).map(|l| l.len).sum();
    let memory = bytes as f64 / BYTES_PER_NS;
    let product = |m: usize, k: usize, n: usize| 2.0 * m as f64 * k as f64 * n as f64;
    let conv = |s: &jetrt_kernels::cpu::conv::Conv2dShape| {
        let k = s.in_channels / s.groups.max(1) * s.kernel_h * s.kernel_w;
        product(s.batch * s.out_channels, k, s.out_h * s.out_w)
    };
    let compute = match &step.kind {
        StepKind::Conv { shape, .. } | StepKind::PackedConv { shape, .. } => {
            let narrow = shape.out_channels / shape.groups.max(1) < 8;
            conv(shape) / if narrow { GROUPED_FLOPS_PER_NS } else { DENSE_FLOPS_PER_NS }
        }
        StepKind::QConv { shape, .. } => conv(shape) / INT8_OPS_PER_NS,
        StepKind::Gemm { m, k, n, .. } | StepKind::PackedGemm { m, k, n, .. } => product(*m, *k, *n) / DENSE_FLOPS_PER_NS,
        StepKind::MatMul { m, k, n, batches, .. } => batches.len() as f64 * product(*m, *k, *n) / DENSE_FLOPS_PER_NS,
        StepKind::QGemm { m, k, n, .. } => product(*m, *k, *n) / INT8_OPS_PER_NS,
        StepKind::ConvTranspose { shape: s, .. } => {
            let k = s.out_channels / s.groups.max(1) * s.kernel_h * s.kernel_w;
            product(s.batch * s.in_channels, k, s.in_h * s.in_w) / GROUPED_FLOPS_PER_NS
        }
        _ => 0.0,
    };
    compute + memory
}

/// Per step, whether a session of `threads` threads splits it over them.
pub(crate) fn parallel_steps(plan: &Program, threads: usize) -> Vec<bool> {
    (0..plan.steps.len()).map(|si| threads > 1 && serial_ns(plan, si) >= PARALLEL_MIN_NS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Loc;
    use crate::lower::Step;
    use jetrt_kernels::cpu::Activation;

    fn conv_plan(c: usize, hw: usize, m: usize, k: usize, groups: usize) -> Program {
        let s = crate::test_util::square_conv(c, hw, m, k, groups);
        let loc = |len| Loc { in_arena: true, start: 0, len };
        Program {
            steps: vec![Step {
                kind: StepKind::Conv { shape: s, act: Activation::None, bias: false },
                name: "Conv",
                inputs: 0..2,
                outputs: 2..3,
            }],
            locs: vec![loc(4 * c * hw * hw), loc(4 * m * c / groups * k * k), loc(4 * m * hw * hw)],
            scratch_floats: 0,
            shared_scratch_floats: 0,
        }
    }

    #[test]
    fn big_steps_split_and_small_ones_do_not() {
        // ResNet-50's 3x3 at 56x56 (231 MFLOP): split.
        assert_eq!(parallel_steps(&conv_plan(64, 56, 64, 3, 1), 2), vec![true]);
        // RegNetX-002's last-stage 1x1 at 7x7 (13 MFLOP): still split.
        assert_eq!(parallel_steps(&conv_plan(368, 7, 368, 1, 1), 2), vec![true]);
        // A 1x1 at 7x7 with 24 channels (56 kFLOP): one thread.
        assert_eq!(parallel_steps(&conv_plan(24, 7, 24, 1, 1), 2), vec![false]);
        // A depthwise 3x3 at 7x7: one thread.
        assert_eq!(parallel_steps(&conv_plan(96, 7, 96, 3, 96), 2), vec![false]);
        // Never with one thread.
        assert_eq!(parallel_steps(&conv_plan(64, 56, 64, 3, 1), 1), vec![false]);
    }
}
