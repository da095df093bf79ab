//! The CUDA backend: the same plan and memory plan as the CPU backend, run
//! on an NVIDIA GPU through the driver API (cudarc, loaded at run time).
//!
//! - One device arena per arena (a session's own, or a
//!   [`SharedArena`](crate::SharedArena) several sessions take turns in),
//!   sized by the memory plan, and the weights uploaded once per model
//!   (every GPU session of a model reads the same copy; on an integrated
//!   GPU the mapped file itself, registered with the driver), all at
//!   session start; `run` allocates nothing.
//! - Kernels (`kernels/cuda/*.cu`) are CUBIN compiled by NVRTC, cached on
//!   disk by source hash, NVRTC version and architecture.
//! - A step without a GPU kernel runs on the CPU: its inputs are copied
//!   to the host arena, the CPU kernel runs, its outputs are copied back.
//!   `jetc inspect --device cuda` lists such steps and the session logs
//!   them at start.
//! - When no step falls back, the plan is captured once as a CUDA graph and
//!   replayed per run.
//!
//! The files: `launch` (the one table that lowers a step to launches or
//! says why it runs on the CPU: pure, in every build), `support` (the
//! fallbacks read off it), `compile` (CUBIN from the file, the cache or
//! NVRTC), `exec` (the session: start, launches resolved, graph, run),
//! `memory` (device arena and weights), `nvrtc` (NVRTC by path). Without
//! the `cuda` feature only `launch`, `support` and the GPU description are
//! built, and a CUDA session is refused with
//! [`Error::BackendUnavailable`].
//!
//! [`Error::BackendUnavailable`]: crate::Error::BackendUnavailable

#[cfg(feature = "cuda")]
mod compile;
#[cfg(feature = "cuda")]
mod exec;
pub(crate) mod launch;
#[cfg(feature = "cuda")]
mod memory;
#[cfg(feature = "cuda")]
pub mod nvrtc;
mod support;

#[cfg(feature = "cuda")]
pub use compile::{compile_kernels, cubin_prefix, source_hash};
#[cfg(feature = "cuda")]
pub(crate) use exec::GpuExec;
#[cfg(feature = "cuda")]
pub(crate) use memory::{GpuArena, GpuWeights};
pub(crate) use support::fallbacks;
pub use support::CudaFallback;

use crate::arena::Slot;
use crate::error::{Error, Result};
use crate::options::{Backend, SessionOptions};
#[cfg(feature = "cuda")]
use cudarc::driver::{result, sys};

/// Oldest compute capability the backend runs on (Volta). Jetson Nano
/// (5.3) and TX2 (6.2) stop at JetPack 4 and CUDA 10.2, below what the
/// driver bindings need: they run the CPU backend.
pub const MIN_COMPUTE_CAPABILITY: (i32, i32) = (7, 0);

/// A GPU as the CUDA driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    pub ordinal: usize,
    pub name: String,
    /// Compute capability (major, minor): (8, 7) for Orin, (9, 0) for H100.
    pub compute_capability: (i32, i32),
    pub total_memory: usize,
    /// CPU and GPU share DRAM (Jetson), rather than a discrete card.
    pub integrated: bool,
    pub multiprocessors: i32,
    /// The driver's CUDA version (major, minor).
    pub driver_version: (i32, i32),
}

impl GpuInfo {
    /// `sm_87` style name of the architecture.
    pub fn arch(&self) -> u32 {
        (self.compute_capability.0 * 10 + self.compute_capability.1) as u32
    }

    /// Why this GPU cannot run the backend, if it cannot.
    pub fn unsupported_reason(&self) -> Option<String> {
        (self.compute_capability < MIN_COMPUTE_CAPABILITY).then(|| {
            format!(
                "{} has compute capability {}.{}; jetrt's CUDA backend needs {}.{} or newer (Jetson Nano and TX2 run the CPU backend)",
                self.name, self.compute_capability.0, self.compute_capability.1, MIN_COMPUTE_CAPABILITY.0, MIN_COMPUTE_CAPABILITY.1
            )
        })
    }
}

/// Without the `cuda` feature there is no driver to ask.
#[cfg(not(feature = "cuda"))]
pub fn probe() -> Result<Vec<GpuInfo>, String> {
    Err(NO_CUDA.into())
}

#[cfg(not(feature = "cuda"))]
const NO_CUDA: &str = "this build of jetrt has no CUDA backend (it was built without the `cuda` feature); use the CPU backend";

/// Starts the GPU side of a session as `options` ask: `None` for a CPU
/// session (asked for, or Auto without a usable GPU).
#[cfg(feature = "cuda")]
pub(crate) fn start(model: &crate::Model, slot: &mut Slot, options: &SessionOptions) -> Result<Option<GpuExec>> {
    let d = model.d();
    let make = |slot: &mut Slot| GpuExec::new(model, model.plan(), d.arena_bytes, model.weights(), slot, options.fp16, &options.cuda);
    match options.backend {
        Backend::Cpu => Ok(None),
        Backend::Cuda => make(slot).map(Some).map_err(|reason| Error::BackendUnavailable { backend: "cuda", reason }),
        Backend::Auto => match make(slot) {
            Ok(g) => Ok(Some(g)),
            Err(reason) if options.fp16 => {
                Err(Error::Options(format!("fp16 runs on the GPU only, and the GPU cannot run this session: {reason}")))
            }
            Err(reason) => {
                log::debug!("no usable GPU ({reason}): running on the CPU");
                Ok(None)
            }
        },
    }
}

/// Without the `cuda` feature: a CPU session, or the reason there is none.
#[cfg(not(feature = "cuda"))]
pub(crate) fn start(_model: &crate::Model, _slot: &mut Slot, options: &SessionOptions) -> Result<Option<std::convert::Infallible>> {
    if options.backend == Backend::Cuda {
        return Err(Error::BackendUnavailable { backend: "cuda", reason: NO_CUDA.into() });
    }
    if options.fp16 {
        return Err(Error::Options(format!("fp16 runs on the GPU only: {NO_CUDA}")));
    }
    Ok(None)
}

#[cfg(feature = "cuda")]
pub(crate) fn driver_error(what: &str, e: result::DriverError) -> String {
    let name = e.error_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|_| format!("{:?}", e.0));
    let text = e.error_string().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{what}: {name} ({text})")
}

/// Loads the driver and lists the GPUs. Every failure (no libcuda, no
/// device, a driver too old) comes back as a message saying what is
/// missing; nothing panics.
#[cfg(feature = "cuda")]
pub fn probe() -> Result<Vec<GpuInfo>, String> {
    // SAFETY: only tries to dlopen the library under its usual names.
    if !unsafe { sys::is_culib_present() } {
        let mut names: Vec<String> = cudarc::get_lib_name_candidates("cuda").into_iter().filter(|n| n.starts_with("libcuda.so")).collect();
        names.dedup();
        return Err(format!(
            "the NVIDIA driver library libcuda was not found (looked for {} on the loader's path: LD_LIBRARY_PATH, /etc/ld.so.conf); \
             is the NVIDIA driver installed?",
            names.join(", ")
        ));
    }
    result::init().map_err(|e| driver_error("the CUDA driver did not start (cuInit)", e))?;
    let mut version = 0;
    // SAFETY: out-pointer.
    unsafe { sys::cuDriverGetVersion(&mut version) }.result().map_err(|e| driver_error("cuDriverGetVersion", e))?;
    let count = result::device::get_count().map_err(|e| driver_error("cannot count the GPUs", e))?;
    if count <= 0 {
        return Err("the CUDA driver is installed but sees no GPU".into());
    }
    let mut out = Vec::new();
    for ordinal in 0..count {
        let dev = result::device::get(ordinal).map_err(|e| driver_error("cuDeviceGet", e))?;
        let attr = |a| {
            // SAFETY: dev is a valid device handle.
            unsafe { result::device::get_attribute(dev, a) }.map_err(|e| driver_error("cuDeviceGetAttribute", e))
        };
        use sys::CUdevice_attribute::*;
        out.push(GpuInfo {
            ordinal: ordinal as usize,
            name: result::device::get_name(dev).map_err(|e| driver_error("cuDeviceGetName", e))?,
            compute_capability: (attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?, attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?),
            // SAFETY: as above.
            total_memory: unsafe { result::device::total_mem(dev) }.map_err(|e| driver_error("cuDeviceTotalMem", e))?,
            integrated: attr(CU_DEVICE_ATTRIBUTE_INTEGRATED)? != 0,
            multiprocessors: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
            driver_version: (version / 1000, (version % 1000) / 10),
        });
    }
    Ok(out)
}

/// GPU `ordinal` and its primary context, retained: the caller releases it
/// (`result::primary_ctx::release(dev)`) once, when done.
#[cfg(feature = "cuda")]
pub(crate) fn retain_primary(ordinal: usize) -> Result<(sys::CUdevice, sys::CUcontext), String> {
    let dev = result::device::get(ordinal as i32).map_err(|e| driver_error("cuDeviceGet", e))?;
    // SAFETY: dev is a valid device handle.
    let ctx = unsafe { result::primary_ctx::retain(dev) }.map_err(|e| driver_error("cannot create a CUDA context", e))?;
    Ok((dev, ctx))
}

/// The first GPU the backend can run on.
pub fn first_usable() -> Result<GpuInfo, String> {
    let gpus = probe()?;
    let mut reasons = Vec::new();
    for g in gpus {
        match g.unsupported_reason() {
            None => return Ok(g),
            Some(r) => reasons.push(r),
        }
    }
    Err(reasons.join("; "))
}
