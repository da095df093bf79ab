//! Which steps a CUDA session runs on the CPU, and why: read off the one
//! lowering table (launch/table.rs), so it is what a session will do, in
//! any build, with or without a GPU or the `cuda` feature.

use super::launch::{lower, Lowering, Target};
use crate::lower::Program;
use crate::options::CudaOptions;

/// A step a CUDA session runs on the CPU, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CudaFallback {
    /// Its index in the plan.
    pub step: usize,
    pub op: &'static str,
    pub reason: String,
}

/// The steps of `plan` (whose constants are `weights`) a CUDA session
/// with `options` runs on the CPU. Which steps fall back does not depend
/// on the GPU's size, only how the others split.
pub(crate) fn fallbacks(plan: &Program, weights: &[u8], options: &CudaOptions) -> Vec<CudaFallback> {
    lower(plan, weights, options, Target { sms: 1, fp16: false })
        .steps
        .into_iter()
        .enumerate()
        .filter_map(|(i, l)| match l {
            Lowering::Gpu(_) => None,
            Lowering::Cpu(reason) => Some(CudaFallback { step: i, op: plan.steps[i].name, reason }),
        })
        .collect()
}
