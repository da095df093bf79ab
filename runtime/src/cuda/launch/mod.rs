//! Lowering for the GPU: each step to its kernel launches, or the reason
//! it runs on the CPU. One table ([`table`]) answers both, from the plan,
//! the options and the GPU's size alone: pure, built with or without the
//! `cuda` feature, so `jetc inspect --device cuda` and
//! [`Model::cuda_fallbacks`](crate::Model::cuda_fallbacks) say exactly what
//! a session will do, and tests check every launch against the kernels'
//! signatures without a GPU. A session resolves the launches once, at
//! start (exec.rs): kernel names to functions, [`Buf`]s to device
//! addresses.
//!
//! - `args`: parameters as the `.cu` files declare them, and the code
//!   tables they take.
//! - `split`: split-K of the convolutions that cannot fill the GPU.
//! - `tables`: what the steps read besides their operands (Resize taps,
//!   sparse row lookups), uploaded once.

mod args;
mod split;
mod table;
mod tables;

pub(crate) use args::{Arg, Buf};

use crate::lower::Program;
use crate::options::CudaOptions;

/// Kernels that exist but have not yet run on a GPU run only with
/// [`CudaOptions::unverified_kernels`]: per-tensor Quantize, Dequantize,
/// int8 MaxPool, Cast, ConvTranspose, Resize, LRN, sparse weights. Off by
/// default until tools/gpu-check.sh (which turns them on) has shown them to
/// agree with the CPU on a GPU. int8 Conv/Gemm, QuantizeChannels and
/// Gather passed it on an H200 (bit for bit with the CPU) and run by
/// default.
pub(crate) const UNVERIFIED: &str =
    "its GPU kernel is not yet verified on a GPU: CudaOptions::unverified_kernels (JETRT_CUDA_UNVERIFIED=1) runs it";

/// What turns on the fp16 kernels, not yet run on a GPU.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) const UNVERIFIED_FP16: &str = "CudaOptions::unverified_kernels (JETRT_CUDA_UNVERIFIED=1) runs them";

/// The GPU a plan is lowered for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// Streaming multiprocessors (split-K fills them).
    pub sms: usize,
    /// Tiled convolutions and products multiply in fp16.
    pub fp16: bool,
}

/// One kernel launch, its pointers not yet resolved.
#[derive(Debug, Clone)]
pub(crate) struct KernelLaunch {
    pub name: &'static str,
    pub grid: (u32, u32, u32),
    pub block: u32,
    pub args: Vec<Arg>,
}

/// What a step enqueues.
#[derive(Debug, Clone)]
pub(crate) enum LaunchSpec {
    Kernel(KernelLaunch),
    /// A device-to-device copy of `len` bytes.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    Copy {
        dst: Buf,
        src: Buf,
        len: usize,
    },
}

/// Where a step runs.
#[derive(Debug, Clone)]
pub(crate) enum Lowering {
    Gpu(Vec<LaunchSpec>),
    /// On the CPU, its operands copied through host memory; why.
    Cpu(String),
}

/// A plan lowered for a GPU, and what its launches need of the session.
#[derive(Debug)]
pub(crate) struct Lowered {
    pub steps: Vec<Lowering>,
    /// The bytes [`Buf::Table`] offsets point into.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub tables: Vec<u8>,
    /// Split-K workspace values (f32 or i32): the most any step needs.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub workspace: usize,
    /// Whether a step reports through the Gather error word.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub gather_err: bool,
}

/// Lowers every step of `plan` (whose constants are `weights`).
pub(crate) fn lower(plan: &Program, weights: &[u8], options: &CudaOptions, target: Target) -> Lowered {
    let mut out = Lowered { steps: Vec::with_capacity(plan.steps.len()), tables: Vec::new(), workspace: 0, gather_err: false };
    for si in 0..plan.steps.len() {
        let before = out.tables.len();
        let mut cx = table::Cx { plan, si, weights, options, target: &target, tables: &mut out.tables, workspace: 0, gather_err: false };
        let lowered = cx.lower();
        let (workspace, gather_err) = (cx.workspace, cx.gather_err);
        match lowered {
            Ok(launches) => {
                if launches.is_empty() {
                    out.tables.truncate(before);
                }
                out.workspace = out.workspace.max(workspace);
                out.gather_err |= gather_err;
                out.steps.push(Lowering::Gpu(launches));
            }
            Err(reason) => {
                out.tables.truncate(before);
                out.steps.push(Lowering::Cpu(reason));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
