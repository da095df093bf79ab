//! Device memory that outlives one session: an arena's device side (shared
//! by the sessions of a [`SharedArena`](crate::SharedArena)) and a model's
//! weights (shared by every GPU session of one [`Model`](crate::Model)).

use super::{driver_error, GpuInfo};
use cudarc::driver::{result, sys};
use std::ffi::c_void;

/// The device side of an arena: device memory of the arena's size, and the
/// host arena pinned (page-locked) so that inputs, outputs and fallback
/// operands copy asynchronously. Made by the first GPU session on the
/// arena, freed with the arena.
pub(crate) struct GpuArena {
    dev: sys::CUdevice,
    ctx: sys::CUcontext,
    pub ordinal: usize,
    pub ptr: u64,
    pub bytes: usize,
    host_pinned: Option<*mut c_void>,
}

// SAFETY: the handles are owned by this value alone; every use makes the
// context current on the calling thread first.
unsafe impl Send for GpuArena {}

impl GpuArena {
    /// Allocates `host.len()` bytes on `info`'s GPU (zeroed) and pins `host`.
    /// `host` must outlive this value (the arena's slot drops this first).
    pub fn new(info: &GpuInfo, host: &mut [u8]) -> Result<GpuArena, String> {
        // Released in Drop.
        let (dev, ctx) = super::retain_primary(info.ordinal)?;
        let mut a = GpuArena { dev, ctx, ordinal: info.ordinal, ptr: 0, bytes: host.len(), host_pinned: None };
        // SAFETY: ctx is retained; plain allocation of the size given, freed
        // in Drop.
        unsafe {
            result::ctx::set_current(ctx).map_err(|e| driver_error("cuCtxSetCurrent", e))?;
            a.ptr = result::malloc_sync(a.bytes.max(1))
                .map_err(|e| driver_error(&format!("cannot allocate a device arena of {} bytes", a.bytes), e))?;
            result::memset_d8_sync(a.ptr, 0, a.bytes.max(1)).map_err(|e| driver_error("cuMemset", e))?;
        }
        if !host.is_empty() {
            // SAFETY: `host` outlives this value (see above) and is
            // unregistered in Drop.
            let r = unsafe { sys::cuMemHostRegister_v2(host.as_mut_ptr().cast(), host.len(), 0) };
            match r.result() {
                Ok(()) => a.host_pinned = Some(host.as_mut_ptr().cast()),
                Err(e) => log::warn!("{}; host copies stay pageable", driver_error("cannot pin the host arena", e)),
            }
        }
        Ok(a)
    }
}

impl Drop for GpuArena {
    fn drop(&mut self) {
        // SAFETY: the handles were made by this value and are released once;
        // errors while tearing down are ignored (nothing to do).
        unsafe {
            let _ = result::ctx::set_current(self.ctx);
            if let Some(p) = self.host_pinned.take() {
                let _ = sys::cuMemHostUnregister(p);
            }
            if self.ptr != 0 {
                let _ = result::free_sync(self.ptr);
            }
            let _ = result::primary_ctx::release(self.dev);
        }
    }
}

/// A model's weights as the GPU reads them: uploaded once per model (every
/// GPU session of the model uses the same copy), or, on an integrated GPU
/// (Jetson: CPU and GPU share DRAM), the mapped file itself registered with
/// the driver, so the board holds one copy, not two.
pub(crate) struct GpuWeights {
    dev: sys::CUdevice,
    ctx: sys::CUcontext,
    pub ordinal: usize,
    /// The device address of the first weight byte.
    pub ptr: u64,
    /// Device memory allocated for them (0 when used in place).
    pub device_bytes: usize,
    /// The registered host range, when used in place.
    registered: Option<*mut c_void>,
}

// SAFETY: as for GpuArena.
unsafe impl Send for GpuWeights {}
// SAFETY: after construction the value is only read (the device address),
// and Drop runs once, with exclusive access.
unsafe impl Sync for GpuWeights {}

/// Host page size assumed for registering weights in place (Linux on
/// aarch64 and x86-64 uses 4 KiB or a multiple of it; a range rounded to
/// 4 KiB stays inside a mapping, which is page-granular).
const PAGE: usize = 4096;

impl GpuWeights {
    /// `weights` on `info`'s GPU: in place on an integrated GPU when the
    /// driver accepts the registration and `zero_copy` is on
    /// ([`CudaOptions::zero_copy`](crate::CudaOptions::zero_copy)), else uploaded.
    pub fn new(info: &GpuInfo, weights: &[u8], zero_copy: bool) -> Result<GpuWeights, String> {
        // Released in Drop.
        let (dev, ctx) = super::retain_primary(info.ordinal)?;
        let mut w = GpuWeights { dev, ctx, ordinal: info.ordinal, ptr: 0, device_bytes: 0, registered: None };
        // SAFETY: ctx is retained.
        unsafe { result::ctx::set_current(ctx) }.map_err(|e| driver_error("cuCtxSetCurrent", e))?;
        let zero_copy = info.integrated && zero_copy && !weights.is_empty();
        if zero_copy {
            match register_in_place(weights) {
                Ok((base, dptr)) => {
                    w.registered = Some(base);
                    w.ptr = dptr;
                    log::info!("cuda: {} B of weights used in place (integrated GPU, host memory registered)", weights.len());
                    return Ok(w);
                }
                Err(e) => log::info!("cuda: weights cannot be used in place ({e}); uploading a copy"),
            }
        }
        // SAFETY: plain allocation and copy of the size given, freed in Drop.
        unsafe {
            w.ptr = result::malloc_sync(weights.len().max(1))
                .map_err(|e| driver_error(&format!("cannot allocate {} bytes of weights on the device", weights.len()), e))?;
            w.device_bytes = weights.len().max(1);
            if !weights.is_empty() {
                result::memcpy_htod_sync(w.ptr, weights).map_err(|e| driver_error("cannot upload the weights", e))?;
            }
        }
        Ok(w)
    }

    /// Whether the GPU reads the weights from the host mapping.
    pub fn in_place(&self) -> bool {
        self.registered.is_some()
    }
}

/// Registers the pages holding `bytes` read-only and mapped for the
/// device; returns (registered base, device address of `bytes[0]`).
fn register_in_place(bytes: &[u8]) -> Result<(*mut c_void, u64), String> {
    let start = bytes.as_ptr() as usize;
    let base = start & !(PAGE - 1);
    let end = (start + bytes.len()).div_ceil(PAGE) * PAGE;
    let flags = sys::CU_MEMHOSTREGISTER_DEVICEMAP | sys::CU_MEMHOSTREGISTER_READ_ONLY;
    // SAFETY: [base, end) lies in pages of the model's mapping (or heap
    // block), which the model keeps alive longer than any session using
    // these weights; the GPU only reads it (READ_ONLY). Unregistered in Drop.
    unsafe { sys::cuMemHostRegister_v2(base as *mut c_void, end - base, flags) }
        .result()
        .map_err(|e| driver_error("cuMemHostRegister", e))?;
    let mut dptr: sys::CUdeviceptr = 0;
    // SAFETY: base was registered with DEVICEMAP just above.
    let r = unsafe { sys::cuMemHostGetDevicePointer_v2(&mut dptr, base as *mut c_void, 0) };
    if let Err(e) = r.result() {
        // SAFETY: registered above.
        unsafe {
            let _ = sys::cuMemHostUnregister(base as *mut c_void);
        }
        return Err(driver_error("cuMemHostGetDevicePointer", e));
    }
    Ok((base as *mut c_void, dptr + (start - base) as u64))
}

impl Drop for GpuWeights {
    fn drop(&mut self) {
        // SAFETY: as for GpuArena.
        unsafe {
            let _ = result::ctx::set_current(self.ctx);
            if let Some(p) = self.registered.take() {
                let _ = sys::cuMemHostUnregister(p);
            } else if self.ptr != 0 {
                let _ = result::free_sync(self.ptr);
            }
            let _ = result::primary_ctx::release(self.dev);
        }
    }
}
