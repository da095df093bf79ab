//! Lowering a prepared plan to GPU launches, and running it.

use super::{driver_error, nvrtc::Nvrtc, GpuInfo};
use crate::arena::{Loc, Slot};
use crate::exec::{self, Ctx, GemmBias, Kernel, Packing, Plan};
use cudarc::driver::{result, sys};
use jetrt_format::MAX_RANK;
use jetrt_kernels::cpu::reference::AxisTaps;
use jetrt_kernels::cpu::Activation;
use std::ffi::c_void;
use std::path::PathBuf;

/// Threads per block of the elementwise kernels.
const BLOCK: u32 = 256;
/// Most blocks of a grid-stride launch.
const MAX_BLOCKS: usize = 65_535;

/// Whether a step runs on the GPU, and why not if not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSupport {
    Gpu,
    /// Runs on the CPU, its operands copied through host memory.
    Fallback(&'static str),
}

/// `(code, a, b)` of an activation as `jrt_act` in prelude.cuh takes it:
/// the file's own code table.
fn act_code(a: Activation) -> (i32, f32, f32) {
    let (code, [p0, p1]) = jetrt_format::codes::activation_code(a);
    (code as i32, p0, p1)
}

/// The code of a binary op as `jrt_binary` in elementwise.cu takes it: the
/// file's own.
fn binary_code(op: jetrt_kernels::cpu::reference::BinaryOp) -> i32 {
    jetrt_format::codes::BINARY_OPS.code(op) as i32
}

/// Whether GPU kernels not yet verified on a GPU run
/// (`JETRT_CUDA_UNVERIFIED=1`): per-tensor Quantize, Dequantize, int8
/// MaxPool, Cast, ConvTranspose. Off by default until tools/gpu-check.sh
/// (which turns them on) has shown them to agree with the CPU on a GPU.
/// int8 Conv/Gemm, QuantizeChannels and Gather passed it on an H200 (bit
/// for bit with the CPU) and run by default.
fn unverified_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("JETRT_CUDA_UNVERIFIED").is_ok_and(|v| v == "1"))
}

/// What turns on the fp16 kernels, not yet run on a GPU.
const UNVERIFIED_FP16: &str = "JETRT_CUDA_UNVERIFIED=1 runs them";

/// The fallback reason of a kernel that exists but is not yet verified.
const UNVERIFIED: &str = "its GPU kernel is not yet verified on a GPU: JETRT_CUDA_UNVERIFIED=1 runs it";

fn unverified() -> GpuSupport {
    if unverified_on() {
        GpuSupport::Gpu
    } else {
        GpuSupport::Fallback(UNVERIFIED)
    }
}

/// Which steps have a GPU kernel; the reason for the rest.
pub(crate) fn gpu_support(kernel: &Kernel) -> GpuSupport {
    match kernel {
        Kernel::Conv { .. }
        | Kernel::Gemm { .. }
        | Kernel::MatMul { .. }
        | Kernel::MaxPool(_)
        | Kernel::AvgPool(..)
        | Kernel::GlobalAvgPool { .. }
        | Kernel::Act(_)
        | Kernel::Binary { .. }
        | Kernel::Affine { .. }
        | Kernel::Softmax { .. }
        | Kernel::Concat { .. }
        | Kernel::Copy
        | Kernel::Transpose { .. } => GpuSupport::Gpu,
        Kernel::Strided { elem: 1 | 2 | 4 | 8, .. } => GpuSupport::Gpu,
        Kernel::Strided { .. } => GpuSupport::Fallback("element size other than 1, 2, 4 or 8 bytes"),
        Kernel::QConv { .. } | Kernel::QGemm { .. } | Kernel::QuantizeChannels { .. } => GpuSupport::Gpu,
        Kernel::Quantize { .. } | Kernel::Dequantize { .. } | Kernel::MaxPoolI8(_) => unverified(),
        Kernel::PackedGemm { rows: Packing::Q4 { .. }, .. } => GpuSupport::Gpu,
        Kernel::PackedConv { shape, rows: Packing::Q4 { .. }, .. } if shape.groups == 1 => GpuSupport::Gpu,
        Kernel::PackedGemm { rows: Packing::Sparse, .. } => unverified(),
        Kernel::PackedConv { shape, rows: Packing::Sparse, .. } if shape.groups == 1 => unverified(),
        Kernel::PackedConv { .. } => GpuSupport::Fallback("grouped convolution with packed weights"),
        Kernel::Reduce { .. } | Kernel::LayerNorm { .. } => GpuSupport::Gpu,
        Kernel::Where { elem: 1 | 2 | 4 | 8, .. } | Kernel::Pad { elem: 1 | 2 | 4 | 8, .. } => GpuSupport::Gpu,
        Kernel::Lrn { .. } => unverified(),
        Kernel::Gather { elem: 1 | 2 | 4 | 8, .. } => GpuSupport::Gpu,
        Kernel::Gather { .. } => GpuSupport::Fallback("element size other than 1, 2, 4 or 8 bytes"),
        Kernel::Cast { from, to } if cast_code(*from).is_some() && cast_code(*to).is_some() => unverified(),
        Kernel::Cast { .. } => GpuSupport::Fallback("no GPU kernel for this element type"),
        Kernel::Where { .. } | Kernel::Pad { .. } => GpuSupport::Fallback("element size other than 1, 2, 4 or 8 bytes"),
        Kernel::ConvTranspose { .. } => unverified(),
        Kernel::Resize { .. } => unverified(),
    }
}

/// Appends the tap tables of a Resize step to `host`, as
/// `jrt_resize2d_f32` reads them: for the rows, then the columns, the
/// input positions (i32, `out × taps`), their weights (f32) and whether
/// each output coordinate extrapolates (i32, `out`). Returns the six
/// tables' byte offsets.
fn resize_tables(host: &mut Vec<u8>, ty: &AxisTaps, tx: &AxisTaps) -> Result<[u64; 6], String> {
    let mut o = [0u64; 6];
    for (a, taps) in [ty, tx].into_iter().enumerate() {
        let outs = 0..taps.out_len();
        o[3 * a] = host.len() as u64;
        for k in outs.clone() {
            for &i in taps.at(k).0 {
                host.extend_from_slice(&fits(i)?.to_le_bytes());
            }
        }
        o[3 * a + 1] = host.len() as u64;
        for k in outs.clone() {
            for &w in taps.at(k).1 {
                host.extend_from_slice(&w.to_le_bytes());
            }
        }
        o[3 * a + 2] = host.len() as u64;
        for k in outs {
            host.extend_from_slice(&(taps.extrapolates(k) as i32).to_le_bytes());
        }
    }
    Ok(o)
}

/// Per mask byte of sparse weight rows (`mb` bytes each), the set bits
/// before it in its row: what `JrtSpRows` in kernels/cuda/sparse.cu adds
/// to the row's start to find a weight.
fn bits_before(mask: &[u8], mb: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(mask.len());
    for row in mask.chunks_exact(mb.max(1)) {
        let mut n = 0u32;
        for &b in row {
            out.push(n);
            n += b.count_ones();
        }
    }
    out
}

/// Matrix products with at most this many rows use the warp-per-output
/// kernel.
const GEMV_ROWS: i32 = 4;

/// Split-K for a tiled convolution that would give the GPU fewer than two
/// blocks per SM: `(splits, k per split)`, or `None` to run it whole.
fn conv_split(s: &jetrt_kernels::cpu::conv::Conv2dShape, sms: usize) -> Option<(usize, usize)> {
    let mg = s.out_channels / s.groups.max(1);
    if mg < 16 {
        return None; // the direct kernel
    }
    split_k(s, sms, s.in_channels / s.groups.max(1) * s.kernel_h * s.kernel_w, 16)
}

/// The split-K workspace a plan needs: the most any of its convolutions
/// (float or int8) splits into, in values of 4 bytes.
fn workspace_floats(plan: &Plan, sms: usize) -> usize {
    plan.steps
        .iter()
        .map(|s| match &s.kernel {
            Kernel::Conv { shape, .. } => split_floats(conv_split(shape, sms), shape),
            Kernel::QConv { shape, .. } => split_floats(qconv_split(shape, sms), shape),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Workspace values (f32 or i32) a split needs.
fn split_floats(split: Option<(usize, usize)>, s: &jetrt_kernels::cpu::conv::Conv2dShape) -> usize {
    split.map_or(0, |(n, _)| n * s.batch * s.out_channels * s.out_h * s.out_w)
}

/// The same for an int8 convolution: K is the padded row length, slices a
/// multiple of 32 (one step of its kernel).
fn qconv_split(s: &jetrt_kernels::cpu::conv::Conv2dShape, sms: usize) -> Option<(usize, usize)> {
    if s.is_depthwise() {
        return None;
    }
    split_k(s, sms, jetrt_kernels::cpu::qgemm::conv_kp(s), 32)
}

fn split_k(s: &jetrt_kernels::cpu::conv::Conv2dShape, sms: usize, k: usize, align: usize) -> Option<(usize, usize)> {
    let mg = s.out_channels / s.groups.max(1);
    let blocks = (s.out_h * s.out_w).div_ceil(64) * mg.div_ceil(64) * s.batch * s.groups;
    let target = 2 * sms;
    if blocks >= target || k < 256 {
        return None;
    }
    // Slices of at least 128 (8 steps of 16), a multiple of 16.
    let splits = target.div_ceil(blocks).min(k / 128).max(1);
    let kslice = k.div_ceil(splits).div_ceil(align) * align;
    let splits = k.div_ceil(kslice);
    (splits > 1).then_some((splits, kslice))
}

/// The element type codes of `jrt_cast` (layout.cu).
fn cast_code(d: jetrt_format::DType) -> Option<i32> {
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

/// The fields of `JrtConv` (prelude.cuh), in its order, of a convolution
/// or a transposed one (their shapes name the same fields alike).
macro_rules! jrt_conv_fields {
    ($s:expr) => {{
        let s = $s;
        [
            s.batch,
            s.in_channels,
            s.in_h,
            s.in_w,
            s.out_channels,
            s.out_h,
            s.out_w,
            s.kernel_h,
            s.kernel_w,
            s.stride_h,
            s.stride_w,
            s.dilation_h,
            s.dilation_w,
            s.pad_top,
            s.pad_left,
            s.groups,
        ]
    }};
}

/// Sizes as the kernels' 32-bit ints.
fn ints(v: &[usize]) -> Result<Vec<i32>, String> {
    v.iter().map(|&d| fits(d)).collect()
}

/// `JrtConv` (prelude.cuh) of a convolution.
fn conv_geo(s: &jetrt_kernels::cpu::conv::Conv2dShape) -> Result<Vec<i32>, String> {
    ints(&jrt_conv_fields!(s))
}

/// `JrtPool` (prelude.cuh) of a pooling.
fn pool_geo(s: &jetrt_kernels::cpu::reference::Pool2dShape) -> Result<Vec<i32>, String> {
    fits(s.planes * s.in_h * s.in_w)?;
    fits(s.planes * s.out_h * s.out_w)?;
    ints(&[
        s.planes,
        s.in_h,
        s.in_w,
        s.out_h,
        s.out_w,
        s.kernel_h,
        s.kernel_w,
        s.stride_h,
        s.stride_w,
        s.dilation_h,
        s.dilation_w,
        s.pad_top,
        s.pad_left,
        s.pad_bottom,
        s.pad_right,
    ])
}

/// (int8 output?, 1/scale, zero point) of a quantized op's output.
fn qout(o: &jetrt_format::op::QOutParams) -> (i32, f32, i32) {
    match *o {
        jetrt_format::op::QOutParams::F32 => (0, 0.0, 0),
        jetrt_format::op::QOutParams::I8 { scale, zero_point } => (1, 1.0 / scale, zero_point as i32),
    }
}

/// One kernel parameter: its bytes, 8-aligned (a pointer, a scalar in the
/// low bytes, or a struct).
type Param = Vec<u64>;

fn p_ptr(p: u64) -> Param {
    vec![p]
}
fn p_i32(v: i32) -> Param {
    vec![v as u32 as u64]
}
fn p_f32(v: f32) -> Param {
    vec![v.to_bits() as u64]
}
/// A struct of 32-bit fields, packed as C lays it out.
fn p_i32s(v: &[i32]) -> Param {
    v.chunks(2).map(|c| c[0] as u32 as u64 | (c.get(1).map_or(0, |&h| h as u32 as u64) << 32)).collect()
}

enum Launch {
    // `_params` owns the bytes `ptrs` point at.
    Kernel { f: sys::CUfunction, grid: (u32, u32, u32), block: u32, _params: Vec<Param>, ptrs: Vec<*mut c_void> },
    Copy { dst: u64, src: u64, len: usize },
}

enum GpuStep {
    Launches(Vec<Launch>),
    Fallback,
}

/// A GPU session's state: context, stream, kernels, device arena and
/// weights, and the lowered plan.
pub(crate) struct GpuExec {
    info: GpuInfo,
    dev: sys::CUdevice,
    ctx: sys::CUcontext,
    stream: sys::CUstream,
    module: sys::CUmodule,
    /// The device arena (owned by the arena's slot, which outlives this).
    arena: u64,
    weights: u64,
    /// The model's weights on the device, shared by its GPU sessions.
    _weights_owner: Option<std::sync::Arc<super::GpuWeights>>,
    steps: Vec<GpuStep>,
    graph: Option<sys::CUgraphExec>,
    fallbacks: usize,
    device_bytes: usize,
    /// Split-K partial sums (sized for the largest split step).
    workspace: u64,
    workspace_floats: usize,
    /// Where a GPU Gather records an index out of range: (step + 1, index);
    /// 0 when the plan has none on the GPU.
    gather_err: u64,
    gather_host: [u64; 2],
    /// The Resize steps' tap tables, uploaded at start; per step, the
    /// device addresses of (row positions, row weights, row extrapolates,
    /// the same for columns).
    tables: u64,
    resize_tables: Vec<Option<[u64; 6]>>,
    /// Per sparse step, the device address of its table of set bits
    /// before each mask byte.
    sparse_tables: Vec<Option<u64>>,
    /// `JETRT_CUDA_SYNC=1`: no graph, wait for each step and name the
    /// step an error comes from (for debugging, like CUDA_LAUNCH_BLOCKING).
    sync_each: bool,
    /// Tiled convolutions and matrix products multiply in fp16
    /// (`jrt_conv_f16`, `jrt_gemm_f16`); the memory-bound ones (depthwise,
    /// ≤ 4 rows) stay fp32.
    fp16: bool,
}

// SAFETY: the raw handles are owned by this value alone; every entry point
// makes the context current on the calling thread first.
unsafe impl Send for GpuExec {}

fn fits(v: usize) -> Result<i32, String> {
    i32::try_from(v).map_err(|_| format!("size {v} does not fit the GPU kernels' 32-bit indices"))
}

fn grid_for(n: usize) -> u32 {
    n.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32
}

/// Where cached CUBINs live: `$JETRT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/jetrt`, else `~/.cache/jetrt`; `cuda/` below it.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("JETRT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("jetrt")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/jetrt")))?;
    Some(base.join("cuda"))
}

/// File-name prefix of the CUBINs of this source for `arch`.
pub fn cubin_prefix(source: &str, arch: u32) -> String {
    format!("{:016x}-sm_{arch}", source_hash(source))
}

/// xxh3 of the kernel source: what a file's or the cache's images must be
/// built from to be used.
pub fn source_hash(source: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(source.as_bytes())
}

/// A cached CUBIN of this source for `arch` in `dir`: (bytes, NVRTC
/// version from its name).
fn cached_cubin(dir: &std::path::Path, source: &str, arch: u32) -> Option<(Vec<u8>, (u32, u32))> {
    let prefix = cubin_prefix(source, arch);
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix).and_then(|r| r.strip_prefix("-nvrtc")).and_then(|r| r.strip_suffix(".cubin")) else {
            continue;
        };
        let version = rest.split_once('.').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))).unwrap_or((0, 0));
        if let Ok(bytes) = std::fs::read(e.path()) {
            log::debug!("cuda: kernels for sm_{arch} from {}", e.path().display());
            return Some((bytes, version));
        }
    }
    None
}

/// The kernels compiled for `arch`: from the cache folder `dir` (jetrt's
/// own when `None`), else by the first of `libs` that compiles for it (the
/// NVRTC found on this machine when `libs` is empty), then cached.
/// Returns the CUBIN and the NVRTC version that made it.
pub fn compile_kernels(arch: u32, libs: &[Nvrtc], dir: Option<&std::path::Path>) -> Result<(Vec<u8>, (u32, u32)), String> {
    let source = jetrt_kernels::cuda::source();
    let dir = dir.map(|d| d.to_path_buf()).or_else(cache_dir);
    if let Some(hit) = dir.as_deref().and_then(|d| cached_cubin(d, &source, arch)) {
        return Ok(hit);
    }
    let found;
    let libs = if libs.is_empty() {
        found = [Nvrtc::find().map_err(|e| format!("no compiled kernels for sm_{arch} are cached and {e}"))?];
        &found[..]
    } else {
        libs
    };
    let mut errors = Vec::new();
    for nv in libs {
        let started = std::time::Instant::now();
        let cubin = match nv.compile_cubin(&source, "jetrt.cu", arch, &[]) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (maj, min) = nv.version();
        log::info!("cuda: compiled the kernels for sm_{arch} with NVRTC {maj}.{min} in {:.1} s", started.elapsed().as_secs_f64());
        if let Some(dir) = dir {
            let path = dir.join(format!("{}-nvrtc{maj}.{min}.cubin", cubin_prefix(&source, arch)));
            let tmp = dir.join(format!(".{}.{}.tmp", cubin_prefix(&source, arch), std::process::id()));
            let saved = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&tmp, &cubin)).and_then(|_| std::fs::rename(&tmp, &path));
            match saved {
                Ok(()) => log::debug!("cuda: cached {}", path.display()),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    log::warn!("cuda: cannot cache the kernels in {}: {e}", dir.display());
                }
            }
        }
        return Ok((cubin, (maj as u32, min as u32)));
    }
    Err(errors.join("\n"))
}

/// The kernels' CUBIN for `arch`: the file's own, else from the cache,
/// else compiled by NVRTC and cached.
fn kernels_cubin(model: &crate::Model, arch: u32) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    let source = jetrt_kernels::cuda::source();
    if let Some(img) = model.kernel_image(arch, source_hash(&source)) {
        log::debug!("cuda: kernels for sm_{arch} from the file");
        return Ok(img.into());
    }
    if !model.kernel_images().is_empty() {
        let have: Vec<String> = model.kernel_images().iter().map(|k| format!("sm_{}", k.arch)).collect();
        log::info!(
            "cuda: the file's kernels ({}) are not for this GPU (sm_{arch}) or this jetrt version; using the cache or NVRTC",
            have.join(", ")
        );
    }
    Ok(compile_kernels(arch, &[], None)?.0.into())
}

impl GpuExec {
    /// Starts the GPU side of a session: context, kernels, arena and
    /// weights on the device, the plan lowered (and captured as a graph
    /// when every step runs on the GPU).
    pub fn new(
        model: &crate::Model,
        plan: &Plan,
        arena_bytes: usize,
        weights: &[u8],
        slot: &mut Slot,
        fp16: bool,
    ) -> Result<GpuExec, String> {
        let info = super::first_usable()?;
        if fp16 && !unverified_on() {
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
            workspace_floats: 0,
            gather_err: 0,
            gather_host: [0; 2],
            tables: 0,
            resize_tables: Vec::new(),
            sparse_tables: Vec::new(),
            sync_each: std::env::var("JETRT_CUDA_SYNC").is_ok_and(|v| v == "1"),
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
        let w = model.gpu_weights(|| super::GpuWeights::new(&g.info, weights))?;
        if w.ordinal != g.info.ordinal {
            return Err("this model's weights are on another GPU".into());
        }
        g.weights = w.ptr;
        g.device_bytes += w.device_bytes;
        let weights_in_place = w.in_place();
        g._weights_owner = Some(w);
        g.stream = result::stream::create(result::stream::StreamKind::NonBlocking).map_err(|e| driver_error("cuStreamCreate", e))?;
        let cubin = kernels_cubin(model, g.info.arch())?;
        // SAFETY: cubin is a complete image, alive for the call.
        g.module = unsafe { result::module::load_data(cubin.as_ptr().cast()) }
            .map_err(|e| driver_error(&format!("cannot load the kernels for sm_{}", g.info.arch()), e))?;
        let sms = g.info.multiprocessors.max(1) as usize;
        let ws_floats = workspace_floats(plan, sms);
        if ws_floats > 0 {
            // SAFETY: a plain allocation, freed in Drop.
            g.workspace = unsafe { result::malloc_sync(ws_floats * 4) }
                .map_err(|e| driver_error(&format!("cannot allocate a split-K workspace of {} bytes", ws_floats * 4), e))?;
            g.device_bytes += ws_floats * 4;
            g.workspace_floats = ws_floats;
        }
        if plan.steps.iter().any(|s| matches!(s.kernel, Kernel::Gather { .. }) && gpu_support(&s.kernel) == GpuSupport::Gpu) {
            // SAFETY: a plain allocation, freed in Drop.
            g.gather_err = unsafe { result::malloc_sync(16) }.map_err(|e| driver_error("cuMemAlloc", e))?;
            g.device_bytes += 16;
        }
        g.upload_tables(plan, weights)?;
        for (si, step) in plan.steps.iter().enumerate() {
            let s = match gpu_support(&step.kernel) {
                GpuSupport::Gpu => match g.lower(plan, si) {
                    Ok(l) => GpuStep::Launches(l),
                    Err(reason) => {
                        log::info!("cuda: step #{si} ({}) runs on the CPU: {reason}", step.name);
                        GpuStep::Fallback
                    }
                },
                GpuSupport::Fallback(reason) => {
                    log::info!("cuda: step #{si} ({}) runs on the CPU: {reason}", step.name);
                    GpuStep::Fallback
                }
            };
            if matches!(s, GpuStep::Fallback) {
                g.fallbacks += 1;
            }
            g.steps.push(s);
        }
        if g.fallbacks == 0 && !g.sync_each && std::env::var("JETRT_CUDA_GRAPH").map_or(true, |v| v != "0") {
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

    fn bind(&self) -> Result<(), String> {
        // SAFETY: ctx is a retained primary context.
        unsafe { result::ctx::set_current(self.ctx) }.map_err(|e| driver_error("cuCtxSetCurrent", e))
    }

    /// Uploads, in one allocation, the tables the GPU steps need besides
    /// their operands: the tap tables of Resize steps (positions as i32,
    /// weights as f32, extrapolation flags as i32) and, for sparse
    /// weights, the set bits before each mask byte of its row (u32).
    fn upload_tables(&mut self, plan: &Plan, weights: &[u8]) -> Result<(), String> {
        let mut host: Vec<u8> = Vec::new();
        let mut offsets = vec![None; plan.steps.len()];
        let mut sparse = vec![None; plan.steps.len()];
        for (si, step) in plan.steps.iter().enumerate() {
            if gpu_support(&step.kernel) != GpuSupport::Gpu {
                continue;
            }
            let rows = match &step.kernel {
                Kernel::PackedGemm { k, n, rows: Packing::Sparse, .. } => Some((*n, *k)),
                Kernel::PackedConv { shape: s, rows: Packing::Sparse, .. } => {
                    Some((s.out_channels, s.in_channels * s.kernel_h * s.kernel_w))
                }
                _ => None,
            };
            if let Some((rows, k)) = rows {
                let mask = plan.locs[step.inputs.start + 1];
                let mb = k.div_ceil(8);
                // The mask is a constant of the file (checked when the model was opened).
                let bytes = (!mask.in_arena).then(|| weights.get(mask.start..mask.start + rows * mb)).flatten();
                let Some(bytes) = bytes else { continue };
                sparse[si] = Some(host.len() as u64);
                for n in bits_before(bytes, mb) {
                    host.extend_from_slice(&n.to_le_bytes());
                }
                continue;
            }
            let Kernel::Resize { ty, tx, .. } = &step.kernel else { continue };
            offsets[si] = Some(resize_tables(&mut host, ty, tx)?);
        }
        if host.is_empty() {
            return Ok(());
        }
        // SAFETY: a plain allocation of the size copied, freed in Drop.
        unsafe {
            self.tables = result::malloc_sync(host.len()).map_err(|e| driver_error("cannot allocate the Resize tables", e))?;
            result::memcpy_htod_sync(self.tables, &host).map_err(|e| driver_error("cannot upload the Resize tables", e))?;
        }
        self.device_bytes += host.len();
        let base = self.tables;
        self.resize_tables = offsets.into_iter().map(|o| o.map(|o| o.map(|off| base + off))).collect();
        self.sparse_tables = sparse.into_iter().map(|o| o.map(|off| base + off)).collect();
        Ok(())
    }

    /// A split step must fit the workspace allocated at start (a step
    /// that does not runs on the CPU rather than writing out of bounds).
    fn check_workspace(&self, floats: usize) -> Result<(), String> {
        if floats > self.workspace_floats {
            return Err(format!("split-K needs {floats} workspace values, {} were allocated", self.workspace_floats));
        }
        Ok(())
    }

    fn func(&self, name: &str) -> Result<sys::CUfunction, String> {
        let c = std::ffi::CString::new(name).map_err(|_| "bad kernel name".to_string())?;
        // SAFETY: module is loaded; c is a valid C string.
        unsafe { result::module::get_function(self.module, c) }.map_err(|e| driver_error(&format!("kernel {name} not in the CUBIN"), e))
    }

    fn ptr(&self, loc: Loc) -> u64 {
        if loc.in_arena {
            self.arena + loc.start as u64
        } else {
            self.weights + loc.start as u64
        }
    }

    fn launch(&self, name: &str, grid: (u32, u32, u32), block: u32, params: Vec<Param>) -> Result<Launch, String> {
        let mut params = params;
        let ptrs = params.iter_mut().map(|p| p.as_mut_ptr().cast::<c_void>()).collect();
        Ok(Launch::Kernel { f: self.func(name)?, grid, block, _params: params, ptrs })
    }

    /// A grid-stride launch over `n` items.
    fn flat(&self, name: &str, n: usize, params: Vec<Param>) -> Result<Launch, String> {
        self.launch(name, (grid_for(n), 1, 1), BLOCK, params)
    }

    /// The launches of step `si`.
    fn lower(&self, plan: &Plan, si: usize) -> Result<Vec<Launch>, String> {
        let step = &plan.steps[si];
        let ins = &plan.locs[step.inputs.clone()];
        let out = plan.locs[step.outputs.start];
        let i = |k: usize| ins.get(k).map_or(0, |&l| self.ptr(l));
        let y = self.ptr(out);
        let n_out = out.len / 4;
        let mut v = Vec::new();
        if out.len == 0 {
            return Ok(v);
        }
        match &step.kernel {
            Kernel::Conv { shape: s, act, bias } => {
                let (code, a, b) = act_code(*act);
                let geo = conv_geo(s)?;
                fits(s.batch * s.out_channels * s.out_h * s.out_w)?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let bias = if *bias { i(2) } else { 0 };
                let params = vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(bias), p_ptr(y), p_i32s(&geo), p_i32(code), p_f32(a), p_f32(b)];
                let mg = s.out_channels / s.groups;
                if mg < 16 {
                    v.push(self.flat("jrt_conv_direct_f32", n_out, params)?);
                } else {
                    let split = conv_split(s, self.info.multiprocessors.max(1) as usize);
                    let front = vec![p_ptr(bias), p_ptr(y)];
                    v.extend(self.tiled_conv(
                        (if self.fp16 { "jrt_conv_f16" } else { "jrt_conv_f32" }, "jrt_splitk_reduce_f32"),
                        s,
                        split,
                        params,
                        front,
                        vec![p_i32(code), p_f32(a), p_f32(b)],
                    )?);
                }
            }
            Kernel::Gemm { m, k, n, trans_a, trans_b, alpha, beta, act, bias } => {
                let (m, k, n) = (fits(*m)?, fits(*k)?, fits(*n)?);
                let (ars, acs) = if *trans_a { (1, m) } else { (k, 1) };
                let (brs, bcs) = if *trans_b { (1, k) } else { (n, 1) };
                let (bp, rs, cs) = match bias {
                    GemmBias::None => (0, 0, 0),
                    GemmBias::Col => (i(2), 0, 1),
                    GemmBias::Row => (i(2), 1, 0),
                    GemmBias::Strided { rs, cs } => (i(2), fits(*rs)?, fits(*cs)?),
                };
                v.push(self.gemm(i(0), i(1), bp, y, (m, n, k), (ars, acs, brs, bcs), (rs, cs), (*alpha, *beta), *act)?);
            }
            Kernel::MatMul { m, k, n, act, batches } => {
                let (mi, ki, ni) = (fits(*m)?, fits(*k)?, fits(*n)?);
                for (b, &(oa, ob)) in batches.iter().enumerate() {
                    let (pa, pb, py) = (i(0) + 4 * oa as u64, i(1) + 4 * ob as u64, y + 4 * (b * m * n) as u64);
                    v.push(self.gemm(pa, pb, 0, py, (mi, ni, ki), (ki, 1, ni, 1), (0, 0), (1.0, 1.0), *act)?);
                }
            }
            Kernel::MaxPool(s) | Kernel::AvgPool(s, _) => {
                let geo = pool_geo(s)?;
                let mut params = vec![p_ptr(i(0)), p_ptr(y), p_i32s(&geo)];
                if let Kernel::AvgPool(_, cip) = &step.kernel {
                    params.push(p_i32(i32::from(*cip)));
                    v.push(self.flat("jrt_avgpool_f32", n_out, params)?);
                } else {
                    v.push(self.flat("jrt_maxpool_f32", n_out, params)?);
                }
            }
            Kernel::GlobalAvgPool { planes, len } => {
                fits(planes * len)?;
                if *planes > MAX_BLOCKS {
                    return Err("too many planes for one grid".into());
                }
                let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(*planes)?), p_i32(fits(*len)?)];
                v.push(self.launch("jrt_global_avgpool_f32", (*planes as u32, 1, 1), 256, params)?);
            }
            Kernel::Act(act) => {
                let (code, a, b) = act_code(*act);
                v.push(self.flat(
                    "jrt_act_f32",
                    n_out,
                    vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n_out)?), p_i32(code), p_f32(a), p_f32(b)],
                )?);
            }
            Kernel::Binary { op, act, a: sa, b: sb, out: so } => {
                let (code, p0, p1) = act_code(*act);
                let n = p_i32(fits(n_out)?);
                let tail = [p_i32(binary_code(*op)), p_i32(code), p_f32(p0), p_f32(p1)];
                if sa == so && sb == so {
                    let mut params = vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(y), n];
                    params.extend(tail);
                    v.push(self.flat("jrt_binary_same_f32", n_out, params)?);
                } else {
                    let rank = so.rank();
                    let st_a = jetrt_kernels::cpu::reference::broadcast_strides(sa.dims(), rank);
                    let st_b = jetrt_kernels::cpu::reference::broadcast_strides(sb.dims(), rank);
                    let mut g = vec![rank as i32];
                    let mut dims = [1i32; MAX_RANK];
                    for (d, &x) in so.dims().iter().enumerate() {
                        dims[d] = fits(x)?;
                    }
                    g.extend(dims);
                    for st in [st_a, st_b] {
                        for &s in st.iter().take(MAX_RANK) {
                            g.push(fits(s as usize)?);
                        }
                    }
                    let mut params = vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(y), n, p_i32s(&g)];
                    params.extend(tail);
                    v.push(self.flat("jrt_binary_bcast_f32", n_out, params)?);
                }
            }
            Kernel::Affine { channels, inner, act, .. } => {
                let (code, a, b) = act_code(*act);
                let stride = |k: usize| i32::from(ins[k].len / 4 != 1);
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(y),
                    p_i32(fits(n_out)?),
                    p_i32(fits(*channels)?),
                    p_i32(fits((*inner).max(1))?),
                    p_i32(stride(1)),
                    p_i32(stride(2)),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                v.push(self.flat("jrt_affine_f32", n_out, params)?);
            }
            Kernel::Resize { planes, in_h, in_w, ty, tx, extrapolation } => {
                let t = self.resize_tables.get(si).copied().flatten().ok_or("its tables were not uploaded")?;
                fits(planes * in_h * in_w)?;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(y),
                    p_i32(fits(*planes)?),
                    p_i32(fits(*in_h)?),
                    p_i32(fits(*in_w)?),
                    p_i32(fits(ty.out_len())?),
                    p_i32(fits(tx.out_len())?),
                    p_ptr(t[0]),
                    p_ptr(t[1]),
                    p_ptr(t[2]),
                    p_i32(fits(ty.taps())?),
                    p_ptr(t[3]),
                    p_ptr(t[4]),
                    p_ptr(t[5]),
                    p_i32(fits(tx.taps())?),
                    p_f32(*extrapolation),
                ];
                v.push(self.flat("jrt_resize2d_f32", n_out, params)?);
            }
            Kernel::Lrn { p, batch, channels, inner } => {
                let before = (p.size - 1) / 2;
                let after = p.size - 1 - before;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(y),
                    p_i32(fits(*batch)?),
                    p_i32(fits(*channels)?),
                    p_i32(fits(*inner)?),
                    p_i32(fits(before)?),
                    p_i32(fits(after)?),
                    p_f32(p.alpha / p.size as f32),
                    p_f32(p.bias),
                    p_f32(p.beta),
                ];
                v.push(self.flat("jrt_lrn_f32", n_out, params)?);
            }
            Kernel::Softmax { outer, n, inner } => {
                fits(outer * n * inner)?;
                if *inner == 1 {
                    if *outer > MAX_BLOCKS {
                        return Err("too many rows for one grid".into());
                    }
                    let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(*outer)?), p_i32(fits(*n)?)];
                    v.push(self.launch("jrt_softmax_rows_f32", (*outer as u32, 1, 1), 256, params)?);
                } else {
                    let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(*outer)?), p_i32(fits(*n)?), p_i32(fits(*inner)?)];
                    v.push(self.launch("jrt_softmax_strided_f32", ((outer * inner).div_ceil(256) as u32, 1, 1), 256, params)?);
                }
            }
            Kernel::Concat { outer, inner, total } => {
                let row = fits(total * inner)?;
                let mut offset = 0usize;
                for l in ins {
                    let chunk = if *outer == 0 { 0 } else { l.len / 4 / outer };
                    if chunk > 0 {
                        let params = vec![
                            p_ptr(self.ptr(*l)),
                            p_ptr(y),
                            p_i32(fits(*outer)?),
                            p_i32(fits(chunk)?),
                            p_i32(row),
                            p_i32(fits(offset)?),
                        ];
                        v.push(self.flat("jrt_concat_4", outer * chunk, params)?);
                    }
                    offset += chunk;
                }
            }
            Kernel::Copy => {
                if i(0) != y && out.len > 0 {
                    v.push(Launch::Copy { dst: y, src: i(0), len: out.len });
                }
            }
            Kernel::Transpose { input, perm } => {
                let d = input.dims();
                let mut in_st = [0i64; MAX_RANK];
                let mut acc = 1i64;
                for a in (0..d.len()).rev() {
                    in_st[a] = acc;
                    acc *= d[a] as i64;
                }
                let mut st = [0i64; MAX_RANK];
                let mut out = [1usize; MAX_RANK];
                for a in 0..d.len() {
                    st[a] = in_st[perm[a]];
                    out[a] = d[perm[a]];
                }
                v.push(self.strided(4, i(0), y, 0, &st, &out[..d.len()])?);
            }
            Kernel::Strided { elem, base, strides, out: so } => {
                let st: Vec<i64> = strides.iter().map(|&s| s as i64).collect();
                v.push(self.strided(*elem, i(0), y, *base as i64, &st, so.dims())?);
            }
            Kernel::Quantize { scale, zp } => {
                let n = out.len;
                v.push(self.flat(
                    "jrt_quantize",
                    n,
                    vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n)?), p_f32(1.0 / scale), p_i32(*zp as i32)],
                )?);
            }
            Kernel::QuantizeChannels { inner, scale, zp } => {
                let n = out.len;
                let channels = (ins[1].len / 2).min(ins[2].len / 2);
                if channels == 0 || *inner == 0 {
                    return Ok(v);
                }
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(y),
                    p_i32(fits(n)?),
                    p_i32(fits(*inner)?),
                    p_i32(fits(channels)?),
                    p_f32(1.0 / scale),
                    p_i32(*zp as i32),
                ];
                v.push(self.flat("jrt_quantize_channels", n, params)?);
            }
            Kernel::Dequantize { scale, zp } => {
                v.push(self.flat(
                    "jrt_dequantize",
                    n_out,
                    vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n_out)?), p_f32(*scale), p_i32(*zp as i32)],
                )?);
            }
            Kernel::MaxPoolI8(s) => {
                v.push(self.flat("jrt_maxpool_i8", out.len, vec![p_ptr(i(0)), p_ptr(y), p_i32s(&pool_geo(s)?)])?);
            }
            Kernel::QConv { shape: s, x_zp, act, out: o } => {
                let (code, a, b) = act_code(*act);
                let (out_i8, inv, zp) = qout(o);
                let kp = jetrt_kernels::cpu::qgemm::conv_kp(s);
                let n = s.batch * s.out_channels * s.out_h * s.out_w;
                fits(n)?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let pad = if ins.len() > 4 { i(4) } else { 0 };
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(i(3)),
                    p_ptr(pad),
                    p_ptr(y),
                    p_i32s(&conv_geo(s)?),
                    p_i32(fits(kp)?),
                    p_i32(*x_zp as i32),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                    p_i32(out_i8),
                    p_f32(inv),
                    p_i32(zp),
                ];
                if s.is_depthwise() {
                    v.push(self.flat("jrt_qconv_dw", n, params)?);
                } else {
                    let split = qconv_split(s, self.info.multiprocessors.max(1) as usize);
                    let front = vec![p_ptr(i(2)), p_ptr(i(3)), p_ptr(y)];
                    let back = vec![p_i32(code), p_f32(a), p_f32(b), p_i32(out_i8), p_f32(inv), p_i32(zp)];
                    v.extend(self.tiled_conv(("jrt_qconv", "jrt_qsplitk_reduce"), s, split, params, front, back)?);
                }
            }
            Kernel::QGemm { m, k, n, act, out: o } => {
                let (code, a, b) = act_code(*act);
                let (out_i8, inv, zp) = qout(o);
                let kp = k.next_multiple_of(jetrt_kernels::cpu::qgemm::K_ALIGN);
                let warps = fits(m * n)? as u32;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(i(3)),
                    p_ptr(y),
                    p_i32(fits(*m)?),
                    p_i32(fits(*n)?),
                    p_i32(fits(*k)?),
                    p_i32(fits(kp)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                    p_i32(out_i8),
                    p_f32(inv),
                    p_i32(zp),
                ];
                v.push(self.launch("jrt_qgemm", (warps.div_ceil(8), 1, 1), 256, params)?);
            }
            Kernel::PackedGemm { m, k, n, act, rows: Packing::Q4 { group } } => {
                let (code, a, b) = act_code(*act);
                let bias = if ins.len() > 3 { i(3) } else { 0 };
                fits(m * k)?;
                fits(m * n)?;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(bias),
                    p_ptr(y),
                    p_i32(fits(*m)?),
                    p_i32(fits(*n)?),
                    p_i32(fits(*k)?),
                    p_i32(fits(*group)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                if *m <= GEMV_ROWS as usize {
                    v.push(self.launch("jrt_q4gemv", ((m * n).div_ceil(8) as u32, 1, 1), 256, params)?);
                } else {
                    if m.div_ceil(64) > 65_535 {
                        return Err("matrix too tall for one grid".into());
                    }
                    v.push(self.launch("jrt_q4gemm", (n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1), 256, params)?);
                }
            }
            Kernel::PackedConv { shape: s, act, rows: Packing::Q4 { group } } => {
                if s.groups != 1 {
                    return Err("grouped int4 convolution".into());
                }
                let (code, a, b) = act_code(*act);
                let bias = if ins.len() > 3 { i(3) } else { 0 };
                fits(s.batch * s.out_channels * s.out_h * s.out_w)?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(bias),
                    p_ptr(y),
                    p_i32s(&conv_geo(s)?),
                    p_i32(fits(*group)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                let grid = ((s.out_h * s.out_w).div_ceil(64) as u32, s.out_channels.div_ceil(64) as u32, fits(s.batch)? as u32);
                if grid.1 > 65_535 || grid.2 > 65_535 {
                    return Err("grid too large".into());
                }
                v.push(self.launch("jrt_q4conv", grid, 256, params)?);
            }
            Kernel::PackedGemm { m, k, n, act, rows: Packing::Sparse } => {
                let before = self.sparse_tables.get(si).copied().flatten().ok_or("its mask table was not made")?;
                let (code, a, b) = act_code(*act);
                let bias = if ins.len() > 4 { i(4) } else { 0 };
                fits(m * k)?;
                fits(m * n)?;
                if m.div_ceil(64) > 65_535 {
                    return Err("matrix too tall for one grid".into());
                }
                let nnz = (ins[2].len / 4) as u64;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(i(3)),
                    p_ptr(before),
                    p_ptr(nnz),
                    p_ptr(bias),
                    p_ptr(y),
                    p_i32(fits(*m)?),
                    p_i32(fits(*n)?),
                    p_i32(fits(*k)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                v.push(self.launch("jrt_spgemm", (n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1), 256, params)?);
            }
            Kernel::PackedConv { shape: s, act, rows: Packing::Sparse } => {
                if s.groups != 1 {
                    return Err("grouped sparse convolution".into());
                }
                let before = self.sparse_tables.get(si).copied().flatten().ok_or("its mask table was not made")?;
                let (code, a, b) = act_code(*act);
                let bias = if ins.len() > 4 { i(4) } else { 0 };
                fits(s.batch * s.out_channels * s.out_h * s.out_w)?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let nnz = (ins[2].len / 4) as u64;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(i(3)),
                    p_ptr(before),
                    p_ptr(nnz),
                    p_ptr(bias),
                    p_ptr(y),
                    p_i32s(&conv_geo(s)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                let grid = ((s.out_h * s.out_w).div_ceil(64) as u32, s.out_channels.div_ceil(64) as u32, fits(s.batch)? as u32);
                if grid.1 > 65_535 || grid.2 > 65_535 {
                    return Err("grid too large".into());
                }
                v.push(self.launch("jrt_spconv", grid, 256, params)?);
            }
            Kernel::Reduce { op, input, axes } => {
                use jetrt_kernels::cpu::reference::ReduceOp as R;
                let code = match op {
                    R::Sum => 0,
                    R::Mean => 1,
                    R::Max => 2,
                    R::Min => 3,
                    R::Prod => 4,
                    R::L1 => 5,
                    R::L2 => 6,
                    R::SumSquare => 7,
                    R::LogSum => 8,
                    R::LogSumExp => 9,
                };
                let d = input.dims();
                fits(d.iter().product())?;
                let window: usize = (0..d.len()).filter(|a| axes & (1 << a) != 0).map(|a| d[a]).product();
                let mut g = vec![d.len() as i32, *axes as i32];
                g.extend((0..MAX_RANK).map(|a| d.get(a).map_or(1, |&x| x as i32)));
                let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n_out)?), p_i32(fits(window)?), p_i32s(&g), p_i32(code)];
                v.push(self.flat("jrt_reduce_f32", n_out, params)?);
            }
            Kernel::LayerNorm { outer, n, epsilon, bias } => {
                if *outer > MAX_BLOCKS {
                    return Err("too many rows for one grid".into());
                }
                fits(outer * n)?;
                let stride = |k: usize| i32::from(ins[k].len / 4 != 1);
                let (bp, bs) = if *bias { (i(2), stride(2)) } else { (0, 0) };
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(bp),
                    p_ptr(y),
                    p_i32(fits(*outer)?),
                    p_i32(fits(*n)?),
                    p_i32(stride(1)),
                    p_i32(bs),
                    p_f32(*epsilon),
                ];
                v.push(self.launch("jrt_layernorm_f32", (*outer as u32, 1, 1), 256, params)?);
            }
            Kernel::Where { elem, strides, out: so } => {
                let n = so.dims().iter().product::<usize>();
                let mut g = vec![so.rank() as i32];
                g.extend((0..MAX_RANK).map(|a| so.dims().get(a).map_or(1, |&x| x as i32)));
                for st in strides {
                    for &s in st.iter().take(MAX_RANK) {
                        g.push(fits(s as usize)?);
                    }
                }
                fits(n)?;
                let name = ["jrt_where_1", "jrt_where_2", "jrt_where_4", "jrt_where_8"][elem.trailing_zeros() as usize & 3];
                let params = vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(i(2)), p_ptr(y), p_i32(n as i32), p_i32s(&g)];
                v.push(self.flat(name, n, params)?);
            }
            Kernel::Pad { elem, mode, input, begin, value, out: so } => {
                use jetrt_kernels::cpu::reference::PadMode as P;
                let code = match mode {
                    P::Constant => 0,
                    P::Reflect => 1,
                    P::Edge => 2,
                    P::Wrap => 3,
                };
                let n = so.dims().iter().product::<usize>();
                fits(n)?;
                let rank = so.rank();
                let mut g = vec![rank as i32, code];
                g.extend((0..MAX_RANK).map(|a| input.dims().get(a).map_or(1, |&x| x as i32)));
                g.extend((0..MAX_RANK).map(|a| if a < rank { begin[a] as i32 } else { 0 }));
                g.extend((0..MAX_RANK).map(|a| so.dims().get(a).map_or(1, |&x| x as i32)));
                let name = ["jrt_pad_1", "jrt_pad_2", "jrt_pad_4", "jrt_pad_8"][elem.trailing_zeros() as usize & 3];
                let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(n as i32), p_i32s(&g), vec![u64::from_le_bytes(*value)]];
                v.push(self.flat(name, n, params)?);
            }
            Kernel::Gather { elem, outer, axis_len, inner, wide } => {
                let n_idx = ins[1].len / if *wide { 8 } else { 4 };
                let n = outer * n_idx * inner;
                fits(n)?;
                fits(outer * axis_len * inner)?;
                if self.gather_err == 0 {
                    return Err("no error word".into());
                }
                let name = ["jrt_gather_1", "jrt_gather_2", "jrt_gather_4", "jrt_gather_8"][elem.trailing_zeros() as usize & 3];
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_i32(i32::from(*wide)),
                    p_ptr(y),
                    p_i32(fits(*outer)?),
                    p_i32(fits(n_idx)?),
                    p_i32(fits(*axis_len)?),
                    p_i32(fits(*inner)?),
                    p_ptr(self.gather_err),
                    p_i32(fits(si)?),
                ];
                v.push(self.flat(name, n, params)?);
            }
            Kernel::Cast { from, to } => {
                let (Some(f), Some(t)) = (cast_code(*from), cast_code(*to)) else { return Err("element type".into()) };
                let n = out.len / to.size();
                v.push(self.flat("jrt_cast", n, vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n)?), p_i32(f), p_i32(t)])?);
            }
            Kernel::ConvTranspose { shape: s, bias } => {
                let geo = ints(&jrt_conv_fields!(s))?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let bias = if *bias { i(2) } else { 0 };
                v.push(self.flat("jrt_conv_transpose_f32", n_out, vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(bias), p_ptr(y), p_i32s(&geo)])?);
            }
        }
        Ok(v)
    }

    /// A tiled convolution (`names.0`, given its parameters up to the
    /// split ones) over the grid (pixel tiles, channel tiles, images ×
    /// groups × splits); when `split` cuts K, the reduction `names.1`
    /// finishes, taking (workspace, `front`..., count, splits, channels,
    /// pixels, `back`...).
    fn tiled_conv(
        &self,
        names: (&str, &str),
        s: &jetrt_kernels::cpu::conv::Conv2dShape,
        split: Option<(usize, usize)>,
        mut params: Vec<Param>,
        front: Vec<Param>,
        back: Vec<Param>,
    ) -> Result<Vec<Launch>, String> {
        self.check_workspace(split_floats(split, s))?;
        let (splits, kslice) = split.unwrap_or((1, 0));
        let (p, mg) = (s.out_h * s.out_w, s.out_channels / s.groups);
        let n = s.batch * s.out_channels * p;
        let grid = (p.div_ceil(64) as u32, mg.div_ceil(64) as u32, fits(s.batch * s.groups * splits)? as u32);
        if grid.1 > 65_535 || grid.2 > 65_535 {
            return Err("grid too large".into());
        }
        params.extend([p_i32(splits as i32), p_i32(fits(kslice)?), p_ptr(if splits > 1 { self.workspace } else { 0 })]);
        let mut v = vec![self.launch(names.0, grid, 256, params)?];
        if splits > 1 {
            let mut reduce = vec![p_ptr(self.workspace)];
            reduce.extend(front);
            reduce.extend([p_i32(fits(n)?), p_i32(splits as i32), p_i32(fits(s.out_channels)?), p_i32(fits(p)?)]);
            reduce.extend(back);
            v.push(self.flat(names.1, n, reduce)?);
        }
        Ok(v)
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        a: u64,
        b: u64,
        bias: u64,
        y: u64,
        (m, n, k): (i32, i32, i32),
        (ars, acs, brs, bcs): (i32, i32, i32, i32),
        (rs, cs): (i32, i32),
        (alpha, beta): (f32, f32),
        act: Activation,
    ) -> Result<Launch, String> {
        fits(m as usize * n as usize)?;
        let (code, p0, p1) = act_code(act);
        let params = vec![
            p_ptr(a),
            p_ptr(b),
            p_ptr(bias),
            p_ptr(y),
            p_i32(m),
            p_i32(n),
            p_i32(k),
            p_i32(ars),
            p_i32(acs),
            p_i32(brs),
            p_i32(bcs),
            p_i32(rs),
            p_i32(cs),
            p_f32(alpha),
            p_f32(beta),
            p_i32(code),
            p_f32(p0),
            p_f32(p1),
        ];
        if m <= GEMV_ROWS {
            // One warp per output.
            return self.launch("jrt_gemv_f32", ((m as u32 * n as u32).div_ceil(8), 1, 1), 256, params);
        }
        let grid = ((n as u32).div_ceil(64), (m as u32).div_ceil(64), 1);
        if grid.1 > 65_535 {
            return Err("matrix too tall for one grid".into());
        }
        self.launch(if self.fp16 { "jrt_gemm_f16" } else { "jrt_gemm_f32" }, grid, 256, params)
    }

    fn strided(&self, elem: usize, x: u64, y: u64, base: i64, st: &[i64], out: &[usize]) -> Result<Launch, String> {
        let n: usize = out.iter().product();
        // JrtStrided: base, st[8] (i64), out[8], rank, pad (i32).
        let mut blob: Param = vec![base as u64];
        blob.extend((0..MAX_RANK).map(|a| st.get(a).copied().unwrap_or(0) as u64));
        let mut tail = [1i32; MAX_RANK + 2];
        for (a, &d) in out.iter().enumerate() {
            tail[a] = fits(d)?;
        }
        tail[MAX_RANK] = out.len() as i32;
        tail[MAX_RANK + 1] = 0;
        blob.extend(p_i32s(&tail));
        let name = match elem {
            1 => "jrt_strided_1",
            2 => "jrt_strided_2",
            4 => "jrt_strided_4",
            8 => "jrt_strided_8",
            _ => return Err(format!("element size {elem}")),
        };
        self.flat(name, n, vec![p_ptr(x), p_ptr(y), p_i32(fits(n)?), blob])
    }

    fn enqueue(&mut self, si: usize) -> Result<(), String> {
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
    fn capture(&mut self) -> Result<(), String> {
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

    fn htod(&self, host: &[u8], loc: Loc) -> Result<(), String> {
        if loc.len == 0 || !loc.in_arena {
            return Ok(());
        }
        // SAFETY: loc lies inside both arenas (validated at open).
        unsafe { result::memcpy_htod_async(self.arena + loc.start as u64, &host[loc.start..loc.start + loc.len], self.stream) }
            .map_err(|e| driver_error("copy to the GPU", e))
    }

    fn dtoh(&self, host: &mut [u8], loc: Loc) -> Result<(), String> {
        if loc.len == 0 || !loc.in_arena {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { result::memcpy_dtoh_async(&mut host[loc.start..loc.start + loc.len], self.arena + loc.start as u64, self.stream) }
            .map_err(|e| driver_error("copy from the GPU", e))
    }

    fn sync(&self) -> Result<(), String> {
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
        plan: &Plan,
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
            let len = match plan.steps.get(step).map(|s| &s.kernel) {
                Some(Kernel::Gather { axis_len, .. }) => *axis_len,
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

#[cfg(test)]
mod tests {
    use super::conv_split;
    use jetrt_kernels::cpu::conv::Conv2dShape;

    fn conv(c: usize, hw: usize, m: usize, k: usize) -> Conv2dShape {
        Conv2dShape {
            batch: 1,
            in_channels: c,
            in_h: hw,
            in_w: hw,
            out_channels: m,
            out_h: hw,
            out_w: hw,
            kernel_h: k,
            kernel_w: k,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: k / 2,
            pad_left: k / 2,
            groups: 1,
        }
    }

    /// The workspace is sized for every split step, float and int8 (an
    /// int8-only plan once got none, and its split steps wrote through a
    /// null pointer on the GPU).
    #[test]
    fn resize_from_the_tables_equals_the_cpu_bit_for_bit() {
        use jetrt_kernels::cpu::reference::{axis_taps, resize2d, CoordTransform as C, ResizeMode as M, ResizeParams};
        // jrt_resize2d_f32 in kernels/cuda/image.cu, step for step, on the
        // bytes uploaded (no FMA: Rust does not contract).
        fn kernel(
            t: &[u8],
            o: [u64; 6],
            planes: usize,
            (in_h, in_w): (usize, usize),
            (oh, ow): (usize, usize),
            taps: (usize, usize),
            ext: f32,
            x: &[f32],
        ) -> Vec<f32> {
            let i32_at = |off: u64, n: usize| i32::from_le_bytes(t[off as usize + 4 * n..off as usize + 4 * n + 4].try_into().unwrap());
            let f32_at = |off: u64, n: usize| f32::from_le_bytes(t[off as usize + 4 * n..off as usize + 4 * n + 4].try_into().unwrap());
            let (ty, tx) = taps;
            let mut y = vec![0.0; planes * oh * ow];
            for (idx, out) in y.iter_mut().enumerate() {
                let (ox, r) = (idx % ow, idx / ow);
                let (oy, p) = (r % oh, r / oh);
                if i32_at(o[2], oy) != 0 || i32_at(o[5], ox) != 0 {
                    *out = ext;
                    continue;
                }
                let xp = &x[p * in_h * in_w..];
                let mut acc = 0.0f32;
                for j in 0..tx {
                    let col = i32_at(o[3], ox * tx + j) as usize;
                    let mut v = f32_at(o[1], oy * ty) * xp[col + i32_at(o[0], oy * ty) as usize * in_w];
                    for i in 1..ty {
                        v += f32_at(o[1], oy * ty + i) * xp[col + i32_at(o[0], oy * ty + i) as usize * in_w];
                    }
                    acc = if j == 0 { f32_at(o[4], ox * tx) * v } else { acc + f32_at(o[4], ox * tx + j) * v };
                }
                *out = acc;
            }
            y
        }
        let (planes, in_h, in_w) = (3, 5, 7);
        let x: Vec<f32> = (0..planes * in_h * in_w).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        for (mode, coord, out, scales, roi) in [
            (M::Nearest, C::Asymmetric, (10, 14), (2.0, 2.0), (0.0, 1.0)),
            (M::Linear, C::HalfPixel, (8, 4), (1.6, 4.0 / 7.0), (0.0, 1.0)),
            (M::Cubic, C::AlignCorners, (9, 11), (1.8, 11.0 / 7.0), (0.0, 1.0)),
            (M::Linear, C::TfCropAndResize, (6, 6), (1.2, 6.0 / 7.0), (-0.25, 1.25)),
        ] {
            let p = ResizeParams { mode, coord, extrapolation_value: -9.0, ..ResizeParams::default() };
            let ty = axis_taps(&p, in_h, out.0, scales.0, roi);
            let tx = axis_taps(&p, in_w, out.1, scales.1, roi);
            let mut want = vec![0.0; planes * out.0 * out.1];
            resize2d(&jetrt_kernels::Serial, planes, in_h, in_w, &ty, &tx, p.extrapolation_value, &x, &mut want);
            let mut host = vec![0u8; 12]; // not at the start of the allocation
            let o = super::resize_tables(&mut host, &ty, &tx).unwrap();
            let got = kernel(&host, o, planes, (in_h, in_w), out, (ty.taps(), tx.taps()), p.extrapolation_value, &x);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{mode:?} {coord:?}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn sparse_lookups_find_what_the_cpu_decodes() {
        use jetrt_kernels::cpu::gemm::SpRef;
        // JrtSpRows::operator() in kernels/cuda/sparse.cu, step for step.
        fn lookup(mask: &[u8], values: &[f32], starts: &[u32], before: &[u32], mb: usize, row: usize, k: usize) -> f32 {
            let b = row * mb + (k >> 3);
            let (m, bit) = (mask[b] as u32, k & 7);
            if (m >> bit) & 1 == 0 {
                return 0.0;
            }
            let vi = starts[row] as u64 + before[b] as u64 + (m & ((1u32 << bit) - 1)).count_ones() as u64;
            values.get(vi as usize).copied().unwrap_or(0.0)
        }
        let (rows, k) = (5usize, 37usize);
        let mb = k.div_ceil(8);
        // A deterministic pattern with empty rows, full bytes and a ragged end.
        let mut mask = vec![0u8; rows * mb];
        let (mut values, mut starts) = (Vec::new(), vec![0u32]);
        for r in 0..rows {
            for c in 0..k {
                if r != 2 && (c * 7 + r * 3) % 5 < 3 {
                    mask[r * mb + c / 8] |= 1 << (c % 8);
                    values.push((r * 100 + c) as f32);
                }
            }
            starts.push(values.len() as u32);
        }
        let before = super::bits_before(&mask, mb);
        let sp = SpRef { mask: &mask, values: &values, row_start: &starts, rows, k };
        let mut row = vec![0.0; k];
        for r in 0..rows {
            sp.decode(r, 0, &mut row);
            for (c, &want) in row.iter().enumerate() {
                assert_eq!(lookup(&mask, &values, &starts, &before, mb, r, c), want, "row {r} column {c}");
            }
        }
        // A hostile row start past the values reads 0 on both.
        let bad = vec![0, 1000, 1000, 1000, 1000, 1000];
        let sp = SpRef { mask: &mask, values: &values, row_start: &bad, rows, k };
        sp.decode(1, 0, &mut row);
        assert!(row.iter().all(|&v| v == 0.0));
        assert!((0..k).all(|c| lookup(&mask, &values, &bad, &before, mb, 1, c) == 0.0));
    }

    #[test]
    fn the_workspace_covers_every_split_step() {
        use super::{qconv_split, split_floats, workspace_floats};
        use crate::exec::{Kernel, Plan, Prepared};
        use jetrt_format::op::QOutParams;
        use jetrt_kernels::cpu::Activation;
        let step = |kernel| Prepared { kernel, name: "step", inputs: 0..0, outputs: 0..0 };
        let (small, wide) = (conv(512, 7, 512, 3), conv(64, 56, 64, 3));
        let q = |shape| Kernel::QConv { shape, x_zp: 0, act: Activation::None, out: QOutParams::F32 };
        let f = |shape| Kernel::Conv { shape, act: Activation::None, bias: false };
        for steps in [vec![step(q(small)), step(q(wide))], vec![step(f(wide)), step(q(small))], vec![step(f(small))]] {
            let plan = Plan { steps, ..Default::default() };
            let have = workspace_floats(&plan, 132);
            assert!(have > 0);
            for s in &plan.steps {
                let need = match &s.kernel {
                    Kernel::Conv { shape, .. } => split_floats(conv_split(shape, 132), shape),
                    Kernel::QConv { shape, .. } => split_floats(qconv_split(shape, 132), shape),
                    _ => 0,
                };
                assert!(need <= have, "{need} > {have}");
            }
        }
        let plan = Plan { steps: vec![step(q(conv(64, 224, 64, 3)))], ..Default::default() };
        assert_eq!(workspace_floats(&plan, 132), 0, "a wide layer needs no split");
    }

    /// Structs of 32-bit fields reach the kernels as C lays them out.
    #[test]
    fn struct_parameters_pack_as_c_lays_them_out() {
        assert_eq!(super::p_i32s(&[1, -2, 3]), vec![1 | (0xffff_fffe << 32), 3]);
        assert_eq!(super::p_f32(1.5), vec![0x3fc0_0000]);
        assert_eq!(super::p_i32(-1), vec![0xffff_ffff]);
        let geo = super::conv_geo(&conv(3, 8, 4, 3)).unwrap();
        assert_eq!(geo.len(), 16, "JrtConv has 16 ints");
        assert_eq!(&geo[..7], &[1, 3, 8, 8, 4, 8, 8]);
    }

    #[test]
    fn small_layers_split_k_to_fill_the_gpu() {
        // ResNet-18's layer4 conv on 132 SMs: 8 blocks whole.
        let s = conv(512, 7, 512, 3);
        let (splits, kslice) = conv_split(&s, 132).unwrap();
        let k = 512 * 9;
        assert_eq!(kslice % 16, 0);
        assert!(splits * kslice >= k && (splits - 1) * kslice < k, "{splits} × {kslice} for {k}");
        assert!(8 * splits >= 132, "{splits} splits leave SMs idle");
        // A wide layer has blocks enough; a small K is not worth splitting;
        // depthwise layers use the direct kernel.
        assert_eq!(conv_split(&conv(64, 224, 64, 3), 132), None);
        assert_eq!(conv_split(&conv(16, 7, 512, 1), 132), None);
        let mut dw = conv(32, 7, 32, 3);
        dw.groups = 32;
        assert_eq!(conv_split(&dw, 132), None);
        // A small GPU (Orin Nano: 8 SMs) splits less.
        assert!(conv_split(&s, 8).map_or(1, |(n, _)| n) <= 2);
    }
}
