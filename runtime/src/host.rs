//! Host-side tools, for the converter and the build machine rather than
//! the device: building a drift reference from calibration runs, compiling
//! the GPU kernels ahead of time, and the int8 rounding rule the converter
//! must share with the kernels. A device program needs none of these.

pub use crate::monitor::reference::ReferenceBuilder;
/// How a Quantize step rounds one value (`x · inv_scale`, round half to
/// even, saturating): the converter computes with it what the runtime will.
pub use jetrt_kernels::cpu::int8::quantize_one;
/// Architectures `jetson` stands for: Xavier (72), Orin (87), Thor (110).
pub use jetrt_kernels::cuda::JETSON_ARCHS;

#[cfg(feature = "cuda")]
pub use crate::cuda::nvrtc::{search_description as nvrtc_search_description, Nvrtc};
#[cfg(feature = "cuda")]
pub use crate::cuda::{compile_kernels, cubin_prefix, source_hash};

/// The kernels' CUDA source, as one translation unit.
pub fn kernel_source() -> String {
    jetrt_kernels::cuda::source()
}
