//! Which lowered steps the CUDA backend runs on the GPU, and why the
//! others run on the CPU. Pure: answered from the plan and the options, so
//! `jetc inspect --device cuda` and [`Model::cuda_fallbacks`] work in any
//! build, with or without a GPU or the `cuda` feature.
//!
//! [`Model::cuda_fallbacks`]: crate::Model::cuda_fallbacks

use crate::lower::{Packing, Program, StepKind};
use crate::options::CudaOptions;

/// A step a CUDA session runs on the CPU, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CudaFallback {
    /// Its index in the plan.
    pub step: usize,
    pub op: &'static str,
    pub reason: &'static str,
}

/// The steps of `plan` a CUDA session with `options` runs on the CPU.
pub(crate) fn fallbacks(plan: &Program, options: &CudaOptions) -> Vec<CudaFallback> {
    plan.steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match gpu_support(&s.kind, options) {
            GpuSupport::Gpu => None,
            GpuSupport::Fallback(reason) => Some(CudaFallback { step: i, op: s.name, reason }),
        })
        .collect()
}

/// Whether a step runs on the GPU, and why not if not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GpuSupport {
    Gpu,
    /// Runs on the CPU, its operands copied through host memory.
    Fallback(&'static str),
}

// GPU kernels not yet verified on a GPU run only with
// [`CudaOptions::unverified_kernels`]: per-tensor Quantize, Dequantize, int8
// MaxPool, Cast, ConvTranspose. Off by default until tools/gpu-check.sh
// (which turns them on) has shown them to agree with the CPU on a GPU.
// int8 Conv/Gemm, QuantizeChannels and Gather passed it on an H200 (bit
// for bit with the CPU) and run by default.

/// What turns on the fp16 kernels, not yet run on a GPU.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) const UNVERIFIED_FP16: &str = "CudaOptions::unverified_kernels (JETRT_CUDA_UNVERIFIED=1) runs them";

/// The fallback reason of a kernel that exists but is not yet verified.
const UNVERIFIED: &str = "its GPU kernel is not yet verified on a GPU: CudaOptions::unverified_kernels (JETRT_CUDA_UNVERIFIED=1) runs it";

fn unverified(options: &CudaOptions) -> GpuSupport {
    if options.unverified_kernels {
        GpuSupport::Gpu
    } else {
        GpuSupport::Fallback(UNVERIFIED)
    }
}

/// Which steps have a GPU kernel; the reason for the rest.
pub(crate) fn gpu_support(kernel: &StepKind, options: &CudaOptions) -> GpuSupport {
    match kernel {
        StepKind::Conv { .. }
        | StepKind::Gemm { .. }
        | StepKind::MatMul { .. }
        | StepKind::MaxPool(_)
        | StepKind::AvgPool(..)
        | StepKind::GlobalAvgPool { .. }
        | StepKind::Act(_)
        | StepKind::Binary { .. }
        | StepKind::Affine { .. }
        | StepKind::Softmax { .. }
        | StepKind::Concat { .. }
        | StepKind::Copy
        | StepKind::Transpose { .. } => GpuSupport::Gpu,
        StepKind::Strided { elem: 1 | 2 | 4 | 8, .. } => GpuSupport::Gpu,
        StepKind::Strided { .. } => GpuSupport::Fallback("element size other than 1, 2, 4 or 8 bytes"),
        StepKind::QConv { .. } | StepKind::QGemm { .. } | StepKind::QuantizeChannels { .. } => GpuSupport::Gpu,
        StepKind::Quantize { .. } | StepKind::Dequantize { .. } | StepKind::MaxPoolI8(_) => unverified(options),
        StepKind::PackedGemm { rows: Packing::Q4 { .. }, .. } => GpuSupport::Gpu,
        StepKind::PackedConv { shape, rows: Packing::Q4 { .. }, .. } if shape.groups == 1 => GpuSupport::Gpu,
        StepKind::PackedGemm { rows: Packing::Sparse, .. } => unverified(options),
        StepKind::PackedConv { shape, rows: Packing::Sparse, .. } if shape.groups == 1 => unverified(options),
        StepKind::PackedConv { .. } => GpuSupport::Fallback("grouped convolution with packed weights"),
        StepKind::Reduce { .. } | StepKind::LayerNorm { .. } => GpuSupport::Gpu,
        StepKind::Where { elem: 1 | 2 | 4 | 8, .. } | StepKind::Pad { elem: 1 | 2 | 4 | 8, .. } => GpuSupport::Gpu,
        StepKind::Lrn { .. } => unverified(options),
        StepKind::Gather { elem: 1 | 2 | 4 | 8, .. } => GpuSupport::Gpu,
        StepKind::Gather { .. } => GpuSupport::Fallback("element size other than 1, 2, 4 or 8 bytes"),
        StepKind::Cast { from, to } if cast_code(*from).is_some() && cast_code(*to).is_some() => unverified(options),
        StepKind::Cast { .. } => GpuSupport::Fallback("no GPU kernel for this element type"),
        StepKind::Where { .. } | StepKind::Pad { .. } => GpuSupport::Fallback("element size other than 1, 2, 4 or 8 bytes"),
        StepKind::ConvTranspose { .. } => unverified(options),
        StepKind::Resize { .. } => unverified(options),
    }
}

/// The element type codes of `jrt_cast` (layout.cu).
pub(crate) fn cast_code(d: jetrt_format::DType) -> Option<i32> {
    use jetrt_format::DType as D;
    Some(match d {
        D::F32 => 0,
        D::F64 => 1,
        D::I64 => 2,
        D::I32 => 3,
        D::I8 => 4,
        D::U8 => 5,
        D::Bool => 6,
        _ => return None,
    })
}
