//! A GPU session: context, stream, kernels, device arena and weights, the
//! plan lowered once (and captured as one CUDA graph when every step runs
//! on the GPU), and the run that replays it.

use super::compile::kernels_cubin;
use super::launch::{lower, Buf, LaunchSpec, Lowering, Target, UNVERIFIED_FP16};
use super::{driver_error, GpuInfo};
use crate::arena::{Loc, Slot};
use crate::cpu::exec::{self, Ctx};
use crate::lower::{Program, StepKind};
use crate::options::CudaOptions;
use cudarc::driver::{result, sys};
use std::ffi::c_void;

/// A launch resolved for this session.
pub(super) enum Launch {
    // `_params` owns the bytes `ptrs` point at: one 8-aligned buffer per
    // parameter (a pointer, a scalar in the low bytes, or a struct).
    Kernel { f: sys::CUfunction, grid: (u32, u32, u32), block: u32, _params: Vec<Vec<u64>>, ptrs: Vec<*mut c_void> },
    Copy { dst: u64, src: u64, len: usize },
}

pub(super) enum GpuStep {
    Launches(Vec<Launch>),
    Fallback,
}

/// A GPU session's state: context, stream, kernels, device arena and
/// weights, and the lowered plan.
pub(crate) struct GpuExec {
    pub(super) info: GpuInfo,
    pub(super) dev: sys::CUdevice,
    pub(super) ctx: sys::CUcontext,
    pub(super) stream: sys::CUstream,
    pub(super) module: sys::CUmodule,
    /// The device arena (owned by the arena's slot, which outlives this).
    pub(super) arena: u64,
    pub(super) weights: u64,
    /// The model's weights on the device, shared by its GPU sessions.
    pub(super) _weights_owner: Option<std::sync::Arc<super::GpuWeights>>,
    pub(super) steps: Vec<GpuStep>,
    pub(super) graph: Option<sys::CUgraphExec>,
    pub(super) fallbacks: usize,
    pub(super) device_bytes: usize,
    /// Split-K partial sums (sized for the largest split step).
    pub(super) workspace: u64,
    /// Where a GPU Gather records an index out of range: (step + 1, index);
    /// 0 when the plan has none on the GPU.
    pub(super) gather_err: u64,
    pub(super) gather_host: [u64; 2],
    /// The tables the steps read besides their operands (Resize taps,
    /// sparse row lookups), uploaded at start.
    pub(super) tables: u64,
    /// [`CudaOptions::sync_each_step`]: no graph, wait for each step and name the
    /// step an error comes from (for debugging, like CUDA_LAUNCH_BLOCKING).
    pub(super) sync_each: bool,
    /// Tiled convolutions and matrix products multiply in fp16
    /// (`jrt_conv_f16`, `jrt_gemm_f16`); the memory-bound ones (depthwise,
    /// ≤ 4 rows) stay fp32.
    pub(super) fp16: bool,
}

// SAFETY: the raw handles are owned by this value alone; every entry point
// makes the context current on the calling thread first.
unsafe impl Send for GpuExec {}

impl GpuExec {
    /// Starts the GPU side of a session: context, kernels, arena and
    /// weights on the device, the plan lowered (and captured as a graph
    /// when every step runs on the GPU).
    pub fn new(
        model: &crate::Model,
        plan: &Program,
        arena_bytes: usize,
        weights: &[u8],
        slot: &mut Slot,
        fp16: bool,
        options: &CudaOptions,
    ) -> Result<GpuExec, String> {
        let info = super::first_usable()?;
        if fp16 && !options.unverified_kernels {
            return Err(format!("the fp16 kernels compile for every architecture but have not yet run on a GPU: {UNVERIFIED_FP16}"));
        }
        // The primary context is released in Drop.
        let (dev, ctx) = super::retain_primary(info.ordinal)?;
        let mut g = GpuExec {
            info,
            dev,
            ctx,
            stream: std::ptr::null_mut(),
            module: std::ptr::null_mut(),
            arena: 0,
            weights: 0,
            _weights_owner: None,
            steps: Vec::new(),
            graph: None,
            fallbacks: 0,
            device_bytes: 0,
            workspace: 0,
            gather_err: 0,
            gather_host: [0; 2],
            tables: 0,
            sync_each: options.sync_each_step,
            fp16,
        };
        g.bind()?;
        // The arena's device side: made by the first GPU session on it.
        if slot.gpu.as_ref().is_some_and(|a| a.ordinal != g.info.ordinal) {
            return Err("the shared arena's device memory is on another GPU".into());
        }
        if slot.gpu.is_none() {
            slot.gpu = Some(super::GpuArena::new(&g.info, slot.arena.bytes_mut())?);
        }
        let device_arena = slot.gpu.as_ref().ok_or("no device arena")?;
        debug_assert!(device_arena.bytes >= arena_bytes);
        g.arena = device_arena.ptr;
        g.device_bytes = device_arena.bytes.max(1);
        let w = model.gpu_weights(|| super::GpuWeights::new(&g.info, weights, options.zero_copy))?;
        if w.ordinal != g.info.ordinal {
            return Err("this model's weights are on another GPU".into());
        }
        g.weights = w.ptr;
        g.device_bytes += w.device_bytes;
        let weights_in_place = w.in_place();
        g._weights_owner = Some(w);
        g.stream = result::stream::create(result::stream::StreamKind::NonBlocking).map_err(|e| driver_error("cuStreamCreate", e))?;
        let cubin = kernels_cubin(model, g.info.arch(), options)?;
        // SAFETY: cubin is a complete image, alive for the call.
        g.module = unsafe { result::module::load_data(cubin.as_ptr().cast()) }
            .map_err(|e| driver_error(&format!("cannot load the kernels for sm_{}", g.info.arch()), e))?;
        let target = Target { sms: g.info.multiprocessors.max(1) as usize, fp16 };
        let lowered = lower(plan, weights, options, target);
        g.workspace = g.alloc(lowered.workspace * 4, "a split-K workspace")?;
        g.gather_err = if lowered.gather_err { g.alloc(16, "the Gather error word")? } else { 0 };
        g.tables = g.alloc(lowered.tables.len(), "the steps' tables")?;
        if !lowered.tables.is_empty() {
            // SAFETY: a fresh allocation of the size copied.
            unsafe { result::memcpy_htod_sync(g.tables, &lowered.tables) }
                .map_err(|e| driver_error("cannot upload the steps' tables", e))?;
        }
        for (si, l) in lowered.steps.into_iter().enumerate() {
            let resolved = match l {
                Lowering::Gpu(launches) => g.resolve(plan, si, launches),
                Lowering::Cpu(reason) => Err(reason),
            };
            let s = match resolved {
                Ok(launches) => GpuStep::Launches(launches),
                Err(reason) => {
                    log::info!("cuda: step #{si} ({}) runs on the CPU: {reason}", plan.steps[si].name);
                    g.fallbacks += 1;
                    GpuStep::Fallback
                }
            };
            g.steps.push(s);
        }
        if g.fallbacks == 0 && !g.sync_each && options.graph {
            g.capture()?;
        }
        log::info!(
            "cuda: {} (sm_{}){}, arena {arena_bytes} B, weights {} B{}, {} of {} steps on the GPU{}",
            g.info.name,
            g.info.arch(),
            if g.fp16 { ", fp16 tensor-core products" } else { "" },
            weights.len(),
            if weights_in_place { " (used in place)" } else { "" },
            g.steps.len() - g.fallbacks,
            g.steps.len(),
            if g.graph.is_some() { ", replayed as one CUDA graph" } else { "" }
        );
        Ok(g)
    }

    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    pub fn fallback_steps(&self) -> usize {
        self.fallbacks
    }

    /// Whether convolutions and matrix products multiply in fp16.
    pub fn fp16(&self) -> bool {
        self.fp16
    }

    pub fn uses_graph(&self) -> bool {
        self.graph.is_some()
    }

    /// Bytes this session allocated on the device (arena and weights).
    pub fn device_bytes(&self) -> usize {
        self.device_bytes
    }

    /// Memory in use on the whole GPU (total − free, all processes and
    /// contexts), for reports.
    pub fn gpu_memory_in_use(&self) -> Option<usize> {
        self.bind().ok()?;
        let (free, total) = result::mem_get_info().ok()?;
        Some(total - free)
    }

    pub(super) fn bind(&self) -> Result<(), String> {
        // SAFETY: ctx is a retained primary context.
        unsafe { result::ctx::set_current(self.ctx) }.map_err(|e| driver_error("cuCtxSetCurrent", e))
    }

    /// `bytes` of device memory (0: none), counted in the session's.
    fn alloc(&mut self, bytes: usize, what: &str) -> Result<u64, String> {
        if bytes == 0 {
            return Ok(0);
        }
        // SAFETY: a plain allocation, freed in Drop.
        let p = unsafe { result::malloc_sync(bytes) }.map_err(|e| driver_error(&format!("cannot allocate {what} ({bytes} bytes)"), e))?;
        self.device_bytes += bytes;
        Ok(p)
    }

    /// The device address of `b` for step `si`.
    fn address(&self, plan: &Program, si: usize, b: Buf) -> u64 {
        let at = |loc: Loc, off: u64| if loc.in_arena { self.arena } else { self.weights } + loc.start as u64 + off;
        let step = &plan.steps[si];
        match b {
            Buf::Null => 0,
            Buf::Input(k, off) => plan.locs.get(step.inputs.start + k).filter(|_| k < step.inputs.len()).map_or(0, |&l| at(l, off)),
            Buf::Output(off) => at(plan.locs[step.outputs.start], off),
            Buf::Workspace => self.workspace,
            Buf::GatherErr => self.gather_err,
            Buf::Table(off) => self.tables + off,
        }
    }

    /// A step's launches with kernel names and buffers resolved.
    fn resolve(&self, plan: &Program, si: usize, launches: Vec<LaunchSpec>) -> Result<Vec<Launch>, String> {
        launches
            .into_iter()
            .map(|l| match l {
                LaunchSpec::Kernel(k) => {
                    let mut params: Vec<Vec<u64>> = k.args.iter().map(|a| a.words(|b| self.address(plan, si, b))).collect();
                    let ptrs = params.iter_mut().map(|p| p.as_mut_ptr().cast::<c_void>()).collect();
                    Ok(Launch::Kernel { f: self.func(k.name)?, grid: k.grid, block: k.block, _params: params, ptrs })
                }
                LaunchSpec::Copy { dst, src, len } => {
                    Ok(Launch::Copy { dst: self.address(plan, si, dst), src: self.address(plan, si, src), len })
                }
            })
            .collect()
    }

    fn func(&self, name: &str) -> Result<sys::CUfunction, String> {
        let c = std::ffi::CString::new(name).map_err(|_| "bad kernel name".to_string())?;
        // SAFETY: module is loaded; c is a valid C string.
        unsafe { result::module::get_function(self.module, c) }.map_err(|e| driver_error(&format!("kernel {name} not in the CUBIN"), e))
    }
}

impl GpuExec {
    pub(super) fn enqueue(&mut self, si: usize) -> Result<(), String> {
        let stream = self.stream;
        let GpuStep::Launches(ls) = &mut self.steps[si] else { return Ok(()) };
        for l in ls {
            match l {
                Launch::Kernel { f, grid, block, ptrs, .. } => {
                    // SAFETY: the parameters match the kernel's signature
                    // (built by `lower` for it) and point into live
                    // device memory of this session.
                    unsafe { result::launch_kernel(*f, *grid, (*block, 1, 1), 0, stream, ptrs) }
                        .map_err(|e| driver_error(&format!("launching step #{si}"), e))?;
                }
                Launch::Copy { dst, src, len } => {
                    // SAFETY: both ranges lie in this session's device memory.
                    unsafe { result::memcpy_dtod_async(*dst, *src, *len, stream) }.map_err(|e| driver_error("cuMemcpyDtoD", e))?;
                }
            }
        }
        Ok(())
    }

    /// Captures every step once as a CUDA graph.
    pub(super) fn capture(&mut self) -> Result<(), String> {
        // SAFETY: the stream is ours; the captured launches are valid as
        // for `enqueue`.
        unsafe {
            result::stream::begin_capture(self.stream, sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(|e| driver_error("cuStreamBeginCapture", e))?;
            let mut res = Ok(());
            for si in 0..self.steps.len() {
                res = self.enqueue(si);
                if res.is_err() {
                    break;
                }
            }
            let graph = result::stream::end_capture(self.stream).map_err(|e| driver_error("cuStreamEndCapture", e));
            res?;
            let graph = graph?;
            let exec = result::graph::instantiate(graph, sys::CUgraphInstantiate_flags(0));
            let _ = result::graph::destroy(graph);
            let exec = exec.map_err(|e| driver_error("cuGraphInstantiate", e))?;
            result::graph::upload(exec, self.stream).map_err(|e| driver_error("cuGraphUpload", e))?;
            self.graph = Some(exec);
        }
        Ok(())
    }

    pub(super) fn htod(&self, host: &[u8], loc: Loc) -> Result<(), String> {
        if loc.len == 0 || !loc.in_arena {
            return Ok(());
        }
        // SAFETY: loc lies inside both arenas (validated at open).
        unsafe { result::memcpy_htod_async(self.arena + loc.start as u64, &host[loc.start..loc.start + loc.len], self.stream) }
            .map_err(|e| driver_error("copy to the GPU", e))
    }

    pub(super) fn dtoh(&self, host: &mut [u8], loc: Loc) -> Result<(), String> {
        if loc.len == 0 || !loc.in_arena {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { result::memcpy_dtoh_async(&mut host[loc.start..loc.start + loc.len], self.arena + loc.start as u64, self.stream) }
            .map_err(|e| driver_error("copy from the GPU", e))
    }

    pub(super) fn sync(&self) -> Result<(), String> {
        // SAFETY: the stream is ours.
        unsafe { result::stream::synchronize(self.stream) }.map_err(|e| driver_error("running on the GPU", e))
    }

    /// Runs the plan: inputs (already in the host arena) up, every step,
    /// outputs down into the host arena. With `times`, synchronizes after
    /// each step and adds its seconds (no graph then).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        ctx: &Ctx<'_>,
        plan: &Program,
        host: &mut [u8],
        weights: &[u8],
        inputs: &[Loc],
        outputs: &[Loc],
        mut times: Option<&mut [f64]>,
    ) -> Result<(), crate::Error> {
        let gpu = |reason: String| crate::Error::Gpu { reason };
        self.bind().map_err(gpu)?;
        if self.gather_err != 0 {
            // SAFETY: 16 bytes of this session's device memory.
            unsafe { result::memset_d8_async(self.gather_err, 0, 16, self.stream) }.map_err(|e| gpu(driver_error("cuMemsetD8", e)))?;
        }
        for &l in inputs {
            self.htod(host, l).map_err(gpu)?;
        }
        match (self.graph, times.is_some()) {
            (Some(g), false) => {
                // SAFETY: the graph was instantiated on this context.
                unsafe { result::graph::launch(g, self.stream) }.map_err(|e| gpu(driver_error("cuGraphLaunch", e)))?
            }
            _ => {
                for si in 0..self.steps.len() {
                    let started = std::time::Instant::now();
                    if matches!(self.steps[si], GpuStep::Fallback) {
                        let step = &plan.steps[si];
                        for &l in &plan.locs[step.inputs.clone()] {
                            self.dtoh(host, l).map_err(gpu)?;
                        }
                        self.sync().map_err(gpu)?;
                        exec::run_step(ctx, plan, si, host, weights)?;
                        for &l in &plan.locs[step.outputs.clone()] {
                            self.htod(host, l).map_err(gpu)?;
                        }
                    } else {
                        self.enqueue(si).map_err(gpu)?;
                        if self.sync_each {
                            self.sync().map_err(|e| gpu(format!("step #{si} ({}): {e}", plan.steps[si].name)))?;
                        }
                    }
                    if let Some(t) = times.as_deref_mut() {
                        self.sync().map_err(gpu)?;
                        if let Some(slot) = t.get_mut(si) {
                            *slot += started.elapsed().as_secs_f64();
                        }
                    }
                }
            }
        }
        for &l in outputs {
            self.dtoh(host, l).map_err(gpu)?;
        }
        if self.gather_err != 0 {
            // SAFETY: 16 bytes into this value's own buffer; synchronized below.
            unsafe { result::memcpy_dtoh_async(&mut self.gather_host[..], self.gather_err, self.stream) }
                .map_err(|e| gpu(driver_error("cuMemcpyDtoH", e)))?;
        }
        self.sync().map_err(gpu)?;
        if self.gather_host[0] != 0 {
            // A Gather met an index out of range: the CPU backend's error.
            let (step, index) = ((self.gather_host[0] - 1) as usize, self.gather_host[1] as i64);
            self.gather_host = [0; 2];
            let len = match plan.steps.get(step).map(|s| &s.kind) {
                Some(StepKind::Gather { axis_len, .. }) => *axis_len,
                _ => 0,
            };
            let op = plan.steps.get(step).map_or("Gather", |s| s.name);
            return Err(crate::Error::IndexOutOfRange { step, op, index, len });
        }
        Ok(())
    }
}

impl Drop for GpuExec {
    fn drop(&mut self) {
        // SAFETY: every handle was created by this value and is released
        // once; errors while tearing down are ignored (nothing to do).
        unsafe {
            let _ = result::ctx::set_current(self.ctx);
            if !self.stream.is_null() {
                let _ = result::stream::synchronize(self.stream);
            }
            if let Some(g) = self.graph.take() {
                let _ = result::graph::exec_destroy(g);
            }
            if self.workspace != 0 {
                let _ = result::free_sync(self.workspace);
            }
            if self.gather_err != 0 {
                let _ = result::free_sync(self.gather_err);
            }
            if self.tables != 0 {
                let _ = result::free_sync(self.tables);
            }
            if !self.module.is_null() {
                let _ = result::module::unload(self.module);
            }
            if !self.stream.is_null() {
                let _ = result::stream::destroy(self.stream);
            }
            let _ = result::primary_ctx::release(self.dev);
        }
    }
}
