//! `Model` (an opened, validated `.jrt` file) and `Session` (its arena,
//! threads and scratch, ready to run).

use crate::arena::{lock, Loc, SharedArena, Slot};
use crate::error::{Error, Result};
use crate::exec::{self, pool::ThreadPool, Ctx, Plan};
use jetrt_format::reader::{self, Decoded};
use jetrt_format::tensors::Storage;
use jetrt_format::{DType, SectionKind};
use jetrt_kernels::cpu::qgemm::QIsa;
use jetrt_kernels::cpu::Isa;
use jetrt_kernels::Scratch;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The bytes of a model file: mapped read-only, or (for
/// [`Model::from_bytes`]) copied into 64-byte aligned memory.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned { blocks: Vec<[u64; 8]>, len: usize },
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned { blocks, len } => &bytemuck::cast_slice(blocks)[..*len],
        }
    }
}

struct Inner {
    bytes: Bytes,
    d: Decoded,
    plan: Plan,
    path: Option<PathBuf>,
    /// The weights on the GPU while a GPU session of this model lives: one
    /// copy for all of them.
    #[cfg(feature = "cuda")]
    gpu_weights: Mutex<std::sync::Weak<crate::cuda::GpuWeights>>,
}

/// An opened `.jrt` model: mapped, every byte validated, ready to make
/// sessions from. Cheap to clone (shared).
#[derive(Clone)]
pub struct Model {
    inner: Arc<Inner>,
}

/// Name, element type and shape of a model input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    pub fn nbytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }
}

/// One step of the plan, for inspection.
#[derive(Debug, Clone)]
pub struct StepInfo {
    pub op: &'static str,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Multiply-accumulates of the step (convolutions and matrix products;
    /// 0 for the rest), for throughput reports.
    pub macs: u64,
}

/// One compiled GPU kernel image of a file, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImageInfo {
    /// 87 for sm_87.
    pub arch: u32,
    /// NVRTC (major, minor) that compiled it.
    pub nvrtc: (u32, u32),
    /// xxh3 of the kernel source it was compiled from; the runtime uses
    /// only images of its own source.
    pub source_hash: u64,
    pub bytes: usize,
}

/// One section of the file, for inspection.
#[derive(Debug, Clone)]
pub struct SectionInfo {
    pub kind: SectionKind,
    pub offset: u64,
    pub len: u64,
    pub checksum: u64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("path", &self.inner.path).field("steps", &self.inner.d.steps.len()).finish()
    }
}

impl Model {
    /// Maps `path` read-only and validates it (header, versions, section
    /// bounds and checksums, every tensor, step and arena offset).
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let bytes = if len == 0 {
            // An empty file cannot be mapped; let the header check name it.
            Bytes::Owned { blocks: Vec::new(), len: 0 }
        } else {
            // SAFETY: the mapping is read-only; jetrt replaces model files by
            // atomic rename (never in place), so the mapped file does not
            // change under us. A file truncated by someone else would fault,
            // which no safe API can prevent on a shared mapping.
            Bytes::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        Self::from_storage(bytes, Some(path.to_path_buf()))
    }

    /// Validates a model held in memory (copied into aligned memory first).
    pub fn from_bytes(data: &[u8]) -> Result<Model> {
        let mut blocks = vec![[0u64; 8]; data.len().div_ceil(64)];
        bytemuck::cast_slice_mut::<_, u8>(&mut blocks)[..data.len()].copy_from_slice(data);
        Self::from_storage(Bytes::Owned { blocks, len: data.len() }, None)
    }

    fn from_storage(bytes: Bytes, path: Option<PathBuf>) -> Result<Model> {
        let d = reader::decode(bytes.as_slice())?;
        let plan = exec::prepare(&d)?;
        log::debug!(
            "opened {}: {} tensors, {} steps, arena {} B, weights {} B",
            path.as_deref().map_or("<memory>".into(), |p| p.display().to_string()),
            d.tensors.len(),
            d.steps.len(),
            d.arena_bytes,
            d.weights.len()
        );
        Ok(Model {
            inner: Arc::new(Inner {
                bytes,
                d,
                plan,
                path,
                #[cfg(feature = "cuda")]
                gpu_weights: Mutex::new(std::sync::Weak::new()),
            }),
        })
    }

    /// The model's weights on the GPU: the copy a live GPU session already
    /// made, else a new one from `make`.
    #[cfg(feature = "cuda")]
    pub(crate) fn gpu_weights(
        &self,
        make: impl FnOnce() -> std::result::Result<crate::cuda::GpuWeights, String>,
    ) -> std::result::Result<Arc<crate::cuda::GpuWeights>, String> {
        let mut slot = self.inner.gpu_weights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = slot.upgrade() {
            return Ok(w);
        }
        let w = Arc::new(make()?);
        *slot = Arc::downgrade(&w);
        Ok(w)
    }

    pub(crate) fn d(&self) -> &Decoded {
        &self.inner.d
    }

    fn info_of(&self, t: usize) -> TensorInfo {
        let rec = &self.d().tensors[t];
        TensorInfo { name: rec.name.clone(), dtype: rec.dtype, shape: rec.shape.dims().to_vec() }
    }

    /// The drift reference statistics the converter stored, if any.
    pub fn drift_reference(&self) -> Option<&jetrt_format::drift::Reference> {
        self.inner.d.drift.as_ref()
    }

    /// Name of tensor `index` of the file.
    pub fn tensor_name(&self, index: usize) -> Option<&str> {
        self.inner.d.tensors.get(index).map(|t| t.name.as_str())
    }

    pub fn inputs(&self) -> Vec<TensorInfo> {
        self.d().inputs.iter().map(|&t| self.info_of(t)).collect()
    }

    pub fn outputs(&self) -> Vec<TensorInfo> {
        self.d().outputs.iter().map(|&t| self.info_of(t)).collect()
    }

    /// Index of the input called `name`.
    pub fn input_index(&self, name: &str) -> Result<usize> {
        let d = self.d();
        d.inputs
            .iter()
            .position(|&t| d.tensors[t].name == name)
            .ok_or_else(|| Error::UnknownInput { name: name.into(), known: d.inputs.iter().map(|&t| d.tensors[t].name.clone()).collect() })
    }

    pub fn metadata(&self) -> &[(String, String)] {
        &self.d().metadata
    }

    /// Value of a metadata key.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.d().metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Bytes of the arena every session allocates.
    pub fn arena_bytes(&self) -> usize {
        self.d().arena_bytes
    }

    /// Sum of the sizes of all arena tensors (what the arena would need with
    /// no reuse).
    pub fn intermediate_bytes(&self) -> usize {
        self.d().tensors.iter().filter(|t| t.storage == Storage::Arena).map(|t| t.nbytes).sum()
    }

    /// Bytes of the weights section (used in place from the mapping).
    pub fn weights_bytes(&self) -> usize {
        self.d().weights.len()
    }

    /// Scratch bytes each thread of a session needs (packing buffers).
    pub fn scratch_bytes_per_thread(&self) -> usize {
        self.inner.plan.scratch_floats * 4
    }

    /// Memory a session with `threads` threads allocates: arena plus scratch.
    pub fn session_bytes(&self, threads: usize) -> usize {
        self.arena_bytes() + threads.max(1) * self.scratch_bytes_per_thread()
    }

    pub fn file_bytes(&self) -> usize {
        self.inner.bytes.as_slice().len()
    }

    /// (major, minor) format version of the file.
    pub fn format_version(&self) -> (u16, u16) {
        (self.d().header.major, self.d().header.minor)
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    pub fn steps(&self) -> Vec<StepInfo> {
        let d = self.d();
        let names = |r: &std::ops::Range<usize>| d.operands[r.clone()].iter().map(|&t| d.tensors[t].name.clone()).collect();
        d.steps
            .iter()
            .zip(&self.inner.plan.steps)
            .map(|(s, p)| StepInfo { op: s.op.name(), inputs: names(&s.inputs), outputs: names(&s.outputs), macs: p.kernel.macs() })
            .collect()
    }

    /// The steps the CUDA backend runs on the CPU: (step, op, reason).
    #[cfg(feature = "cuda")]
    pub fn cuda_fallbacks(&self) -> Vec<(usize, &'static str, &'static str)> {
        self.inner
            .plan
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match crate::cuda::gpu_support(&s.kernel) {
                crate::cuda::GpuSupport::Gpu => None,
                crate::cuda::GpuSupport::Fallback(r) => Some((i, s.name, r)),
            })
            .collect()
    }

    /// Golden test vectors the file carries (see [`crate::golden::check`]).
    pub fn golden_vectors(&self) -> usize {
        self.d().golden.len()
    }

    pub(crate) fn golden_entries(&self) -> &[jetrt_format::golden::GoldenEntry] {
        &self.d().golden
    }

    pub(crate) fn golden_bytes(&self, r: std::ops::Range<usize>) -> Option<&[u8]> {
        self.inner.bytes.as_slice().get(r)
    }

    /// The compiled GPU kernels the file carries (`jetc convert
    /// --cuda-arch`): architecture, NVRTC version, source hash, bytes.
    pub fn kernel_images(&self) -> Vec<KernelImageInfo> {
        self.d()
            .kernels
            .iter()
            .map(|e| KernelImageInfo { arch: e.arch, nvrtc: e.nvrtc, source_hash: e.source_hash, bytes: e.range.len() })
            .collect()
    }

    /// The image for `arch` built from `source_hash`, if the file has it.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn kernel_image(&self, arch: u32, source_hash: u64) -> Option<&[u8]> {
        let e = self.d().kernels.iter().find(|e| e.arch == arch && e.source_hash == source_hash)?;
        self.inner.bytes.as_slice().get(e.range.clone())
    }

    pub fn sections(&self) -> Vec<SectionInfo> {
        self.d()
            .sections
            .list
            .iter()
            .map(|s| SectionInfo { kind: s.kind, offset: s.range.start as u64, len: s.range.len() as u64, checksum: s.checksum })
            .collect()
    }

    /// The bytes of a weight tensor, straight from the file mapping, or
    /// `None` if `name` is not a weight.
    pub fn weight(&self, name: &str) -> Option<&[u8]> {
        let d = self.d();
        let rec = d.tensors.iter().find(|t| t.name == name)?;
        match rec.storage {
            Storage::Weights { offset } => self.weights().get(offset..offset + rec.nbytes),
            Storage::Arena => None,
        }
    }

    fn weights(&self) -> &[u8] {
        &self.inner.bytes.as_slice()[self.d().weights.clone()]
    }

    /// Allocates a session: the arena (once), the threads and their scratch.
    pub fn session(&self, options: SessionOptions) -> Result<Session> {
        Session::new(self.clone(), options)
    }
}

/// Where a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The GPU when one works, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }
}

/// Names a CPU kernel variant (`jetrt info`'s "kernels": avx512, avx2_fma,
/// neon, generic) that sessions use instead of the best one detected when
/// [`SessionOptions::isa`] is unset: to compute on one machine what a
/// machine without AVX-512 computes, say, as oneDNN's `ONEDNN_MAX_CPU_ISA`
/// does. The converter's calibration runs the float model on these kernels
/// too, so it reproduces another host's `jetc convert --precision int8`.
pub const KERNELS_ENV: &str = "JETRT_KERNELS";
/// Names the int8 variant (`jetrt info`'s "int8": avx512vnni, avx2,
/// neon_dotprod, portable) as [`KERNELS_ENV`] does.
pub const INT8_KERNELS_ENV: &str = "JETRT_INT8_KERNELS";

/// The kernel variants a session uses when [`SessionOptions`] names none:
/// those [`KERNELS_ENV`] and [`INT8_KERNELS_ENV`] name, else the best this
/// machine supports. A name no variant has, or a variant this machine
/// cannot run, is an error that says which.
pub fn default_kernels() -> Result<(Isa, QIsa)> {
    let isa = kernels_from_env(KERNELS_ENV, &Isa::ALL, Isa::name)?.unwrap_or_else(Isa::detect);
    let qisa = kernels_from_env(INT8_KERNELS_ENV, &QIsa::ALL, QIsa::name)?.unwrap_or_else(QIsa::detect);
    check_kernels(isa, qisa)
}

fn check_kernels(isa: Isa, qisa: QIsa) -> Result<(Isa, QIsa)> {
    if !isa.supported() {
        return Err(Error::Options(format!("CPU variant {} is not supported on this machine", isa.name())));
    }
    if !qisa.supported() {
        return Err(Error::Options(format!("int8 variant {} is not supported on this machine", qisa.name())));
    }
    Ok((isa, qisa))
}

/// The variant `var` names, if it is set and not empty.
fn kernels_from_env<T: Copy>(var: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Result<Option<T>> {
    let want = std::env::var(var).unwrap_or_default();
    let want = want.trim();
    if want.is_empty() {
        return Ok(None);
    }
    match all.iter().find(|&&v| name(v) == want) {
        Some(&v) => Ok(Some(v)),
        None => {
            let known: Vec<_> = all.iter().map(|&v| name(v)).collect();
            Err(Error::Options(format!("{var}={want} names no kernel variant; known: {}", known.join(", "))))
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    pub backend: Backend,
    /// Threads in all (the calling thread included); 0 = one per core.
    pub threads: usize,
    /// Force a CPU kernel variant instead of the best one detected.
    pub isa: Option<Isa>,
    /// Force an int8 kernel variant instead of the best one detected.
    pub qisa: Option<QIsa>,
    /// On the GPU, multiply convolutions and matrix products in fp16 on
    /// the tensor cores, accumulating in fp32 (TensorRT's `--fp16`);
    /// weights and activations stay fp32 in memory. The CPU backend has no
    /// fp16 path: a session asking for it that would run on the CPU is an
    /// error. Until a GPU check has run the fp16 kernels, they also need
    /// `JETRT_CUDA_UNVERIFIED=1`.
    pub fp16: bool,
}

/// A model's input, as the caller hands it over.
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

impl<'a> TensorRef<'a> {
    pub fn f32(shape: &'a [usize], data: &'a [f32]) -> Self {
        TensorRef { dtype: DType::F32, shape, data: bytemuck::cast_slice(data) }
    }
}

/// A buffer for one output.
#[derive(Debug)]
pub struct TensorMut<'a> {
    pub dtype: DType,
    pub data: &'a mut [u8],
}

impl<'a> TensorMut<'a> {
    pub fn f32(data: &'a mut [f32]) -> Self {
        TensorMut { dtype: DType::F32, data: bytemuck::cast_slice_mut(data) }
    }
}

/// A model ready to run: one arena, allocated once (its own, or one shared
/// with other sessions: [`Session::with_arena`]); threads and their
/// scratch. `run` allocates nothing.
pub struct Session {
    // Dropped first: it releases the GPU resources of this session only
    // (the arena's device side belongs to the arena).
    #[cfg(feature = "cuda")]
    gpu: Option<crate::cuda::GpuExec>,
    model: Model,
    slot: Arc<Mutex<Slot>>,
    /// This session's mark on the arena (`Slot::holder`).
    id: u64,
    shared: bool,
    /// Which inputs were set since this session last took a shared arena.
    loaded: Vec<bool>,
    pool: ThreadPool,
    scratch: Scratch,
    isa: Isa,
    qisa: QIsa,
    input_locs: Vec<Loc>,
    output_locs: Vec<Loc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("isa", &self.isa)
            .field("threads", &self.threads())
            .field("arena_bytes", &self.arena_bytes())
            .field("shared_arena", &self.shared)
            .finish()
    }
}

/// The bytes of one output, read in place (from the arena, or from the
/// weights for a constant output). While it lives, sessions sharing the
/// arena wait to run.
pub struct Output<'a>(OutputBytes<'a>);

enum OutputBytes<'a> {
    Weights(&'a [u8]),
    Arena(MutexGuard<'a, Slot>, std::ops::Range<usize>),
}

impl std::ops::Deref for Output<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            OutputBytes::Weights(b) => b,
            OutputBytes::Arena(g, r) => &g.arena.bytes()[r.clone()],
        }
    }
}

impl std::fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Output({} bytes)", self.len())
    }
}

/// A float32 output read in place ([`Session::output_f32`]).
#[derive(Debug)]
pub struct OutputF32<'a>(Output<'a>);

impl std::ops::Deref for OutputF32<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // Checked when made: arena and weight offsets are 64-byte aligned.
        bytemuck::cast_slice(&self.0)
    }
}

/// Session ids (0 is "no session").
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

impl Session {
    fn new(model: Model, options: SessionOptions) -> Result<Session> {
        let slot = Slot::new(model.d().arena_bytes)?;
        Self::build(model, Arc::new(Mutex::new(slot)), false, options)
    }

    /// A session of `model` that uses `arena` instead of allocating its
    /// own: several models run one after another in one arena, the size of
    /// the largest (see [`SharedArena`]). Fails if `arena` is smaller than
    /// the model's memory plan.
    pub fn with_arena(model: &Model, arena: &SharedArena, options: SessionOptions) -> Result<Session> {
        let needed = model.d().arena_bytes;
        if arena.bytes() < needed {
            return Err(Error::ArenaTooSmall { needed, available: arena.bytes() });
        }
        Self::build(model.clone(), Arc::clone(&arena.slot), true, options)
    }

    fn build(model: Model, slot: Arc<Mutex<Slot>>, shared: bool, options: SessionOptions) -> Result<Session> {
        #[cfg(not(feature = "cuda"))]
        if options.backend == Backend::Cuda {
            return Err(Error::BackendUnavailable {
                backend: "cuda",
                reason: "this build of jetrt has no CUDA backend (it was built without the `cuda` feature); use the CPU backend".into(),
            });
        }
        #[cfg(not(feature = "cuda"))]
        if options.fp16 {
            return Err(Error::Options("fp16 runs on the GPU only, and this build of jetrt has no CUDA backend".into()));
        }
        if options.fp16 && options.backend == Backend::Cpu {
            return Err(Error::Options("fp16 runs on the GPU only (device cuda or auto); the CPU backend computes in fp32".into()));
        }
        let (isa, qisa) = match (options.isa, options.qisa) {
            (Some(isa), Some(qisa)) => check_kernels(isa, qisa)?,
            (isa, qisa) => {
                let (env_isa, env_qisa) = default_kernels()?;
                check_kernels(isa.unwrap_or(env_isa), qisa.unwrap_or(env_qisa))?
            }
        };
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let d = model.d();
        let scratch = Scratch::new(threads, model.inner.plan.scratch_floats);
        let pool = ThreadPool::new(threads).map_err(|e| Error::Options(format!("cannot start {threads} threads: {e}")))?;
        let input_locs = d.inputs.iter().map(|&t| exec::loc(d, t)).collect();
        let output_locs = d.outputs.iter().map(|&t| exec::loc(d, t)).collect();
        #[cfg(feature = "cuda")]
        let gpu = {
            let mut g = lock(&slot);
            match options.backend {
                Backend::Cpu => None,
                Backend::Cuda => Some(
                    crate::cuda::GpuExec::new(&model, &model.inner.plan, d.arena_bytes, model.weights(), &mut g, options.fp16)
                        .map_err(|reason| Error::BackendUnavailable { backend: "cuda", reason })?,
                ),
                Backend::Auto => {
                    match crate::cuda::GpuExec::new(&model, &model.inner.plan, d.arena_bytes, model.weights(), &mut g, options.fp16) {
                        Ok(g) => Some(g),
                        Err(reason) if options.fp16 => {
                            return Err(Error::Options(format!(
                                "fp16 runs on the GPU only, and the GPU cannot run this session: {reason}"
                            )));
                        }
                        Err(reason) => {
                            log::debug!("no usable GPU ({reason}): running on the CPU");
                            None
                        }
                    }
                }
            }
        };
        log::debug!(
            "session: cpu/{} with {threads} threads, arena {} B{}, scratch {} B",
            isa.name(),
            d.arena_bytes,
            if shared { " (shared)" } else { "" },
            scratch.bytes()
        );
        Ok(Session {
            #[cfg(feature = "cuda")]
            gpu,
            loaded: vec![false; d.inputs.len()],
            model,
            slot,
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            shared,
            pool,
            scratch,
            isa,
            qisa,
            input_locs,
            output_locs,
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The CPU kernel variant in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The int8 kernel variant in use.
    pub fn qisa(&self) -> QIsa {
        self.qisa
    }

    /// The backend this session runs on (never `Auto`).
    pub fn backend(&self) -> Backend {
        #[cfg(feature = "cuda")]
        if self.gpu.is_some() {
            return Backend::Cuda;
        }
        Backend::Cpu
    }

    /// Whether convolutions and matrix products multiply in fp16 (a GPU
    /// session asked for with [`SessionOptions::fp16`]).
    pub fn fp16(&self) -> bool {
        #[cfg(feature = "cuda")]
        if let Some(g) = &self.gpu {
            return g.fp16();
        }
        false
    }

    /// The GPU this session runs on, if it runs on one.
    #[cfg(feature = "cuda")]
    pub fn gpu(&self) -> Option<&crate::cuda::GpuInfo> {
        self.gpu.as_ref().map(|g| g.info())
    }

    /// Steps of the plan that run on the CPU in a GPU session (0 on the CPU
    /// backend).
    pub fn fallback_steps(&self) -> usize {
        #[cfg(feature = "cuda")]
        if let Some(g) = &self.gpu {
            return g.fallback_steps();
        }
        0
    }

    /// (bytes this session allocated on the GPU, bytes in use on the whole
    /// GPU) for a GPU session.
    #[cfg(feature = "cuda")]
    pub fn gpu_memory(&self) -> Option<(usize, Option<usize>)> {
        self.gpu.as_ref().map(|g| (g.device_bytes(), g.gpu_memory_in_use()))
    }

    /// Whether a GPU session replays its plan as one CUDA graph.
    pub fn uses_cuda_graph(&self) -> bool {
        #[cfg(feature = "cuda")]
        if let Some(g) = &self.gpu {
            return g.uses_graph();
        }
        false
    }

    pub fn threads(&self) -> usize {
        jetrt_kernels::Parallel::workers(&self.pool)
    }

    /// Bytes this session allocated (arena + scratch); a shared arena
    /// counts in full for each session using it.
    pub fn allocated_bytes(&self) -> usize {
        self.arena_bytes() + self.scratch.bytes()
    }

    /// Bytes of the arena this session runs in (its own, or the shared one).
    pub fn arena_bytes(&self) -> usize {
        lock(&self.slot).arena.len()
    }

    /// Whether this session runs in a [`SharedArena`].
    pub fn shares_arena(&self) -> bool {
        self.shared
    }

    /// Takes the arena for this session: on a shared arena another
    /// session's tensors are gone, and so are this session's inputs.
    fn take(&mut self, slot: &mut Slot) {
        if slot.holder != self.id {
            slot.holder = self.id;
            self.loaded.iter_mut().for_each(|l| *l = false);
        }
    }

    /// Checks that this session's inputs are in the arena (shared arenas).
    fn check_loaded(&self, slot: &Slot) -> Result<()> {
        if !self.shared {
            return Ok(());
        }
        if slot.holder != self.id {
            return Err(Error::ArenaReused { what: "set this session's inputs again before running it".into() });
        }
        if let Some(i) = self.loaded.iter().position(|l| !l) {
            let name = &self.model.d().tensors[self.model.d().inputs[i]].name;
            return Err(Error::ArenaReused { what: format!("input {name:?} was not set since this session took the arena") });
        }
        Ok(())
    }

    /// Copies input `index` into the arena after checking dtype, shape and
    /// length.
    pub fn set_input(&mut self, index: usize, input: TensorRef<'_>) -> Result<()> {
        self.check_input(index, &input)?;
        let loc = self.input_locs[index];
        let slot = Arc::clone(&self.slot);
        let mut g = lock(&slot);
        self.take(&mut g);
        g.arena.bytes_mut()[loc.start..loc.start + loc.len].copy_from_slice(input.data);
        self.loaded[index] = true;
        Ok(())
    }

    /// Checks input `index`'s dtype, shape and length against the model.
    fn check_input(&self, index: usize, input: &TensorRef<'_>) -> Result<()> {
        let d = &self.model.inner.d;
        let Some(&t) = d.inputs.get(index) else {
            return Err(Error::InputCount { expected: d.inputs.len(), found: index + 1 });
        };
        let rec = &d.tensors[t];
        if input.dtype != rec.dtype {
            return Err(Error::InputDType { name: rec.name.clone(), expected: rec.dtype, found: input.dtype });
        }
        if input.shape != rec.shape.dims() {
            return Err(Error::InputShape { name: rec.name.clone(), expected: rec.shape.dims().to_vec(), found: input.shape.to_vec() });
        }
        if input.data.len() != rec.nbytes {
            return Err(Error::InputLength {
                name: rec.name.clone(),
                shape: input.shape.to_vec(),
                dtype: input.dtype,
                expected: rec.nbytes,
                found: input.data.len(),
            });
        }
        Ok(())
    }

    /// Runs the plan on the inputs last set with [`Session::set_input`].
    pub fn run_loaded(&mut self) -> Result<()> {
        self.run_with(None)
    }

    fn run_with(&mut self, times: Option<&mut [f64]>) -> Result<()> {
        let slot = Arc::clone(&self.slot);
        let mut g = lock(&slot);
        self.check_loaded(&g)?;
        self.take(&mut g);
        self.run_in(&mut g, times)
    }

    /// Runs the plan in the (locked) arena.
    fn run_in(&mut self, slot: &mut Slot, times: Option<&mut [f64]>) -> Result<()> {
        let inner = &self.model.inner;
        let weights = &inner.bytes.as_slice()[inner.d.weights.clone()];
        let ctx = Ctx { isa: self.isa, qisa: self.qisa, par: &self.pool, scratch: &self.scratch };
        #[cfg(feature = "cuda")]
        if let Some(g) = &mut self.gpu {
            return g.run(&ctx, &inner.plan, slot.arena.bytes_mut(), weights, &self.input_locs, &self.output_locs, times);
        }
        exec::run_plan(&ctx, &inner.plan, slot.arena.bytes_mut(), weights, times)
    }

    /// Like [`Session::run_loaded`], adding each step's duration in seconds
    /// to `step_seconds[step]` (a slice of [`Model::steps`]`().len()`), for
    /// profiling. Allocates nothing either.
    pub fn run_profiled(&mut self, step_seconds: &mut [f64]) -> Result<()> {
        self.run_with(Some(step_seconds))
    }

    /// The bytes of output `index` after a run, read in place. On a shared
    /// arena, an error once another session has used the arena since.
    pub fn output(&self, index: usize) -> Result<Output<'_>> {
        let loc = *self.output_locs.get(index).ok_or(Error::OutputIndex { index, count: self.output_locs.len() })?;
        if !loc.in_arena {
            let inner = &self.model.inner;
            let w = &inner.bytes.as_slice()[inner.d.weights.clone()];
            return Ok(Output(OutputBytes::Weights(&w[loc.start..loc.start + loc.len])));
        }
        let g = lock(&self.slot);
        if self.shared && g.holder != self.id {
            let name = &self.model.d().tensors[self.model.d().outputs[index]].name;
            return Err(Error::ArenaReused {
                what: format!(
                    "output {name:?} was overwritten by another session's run; read it before running another model in the arena"
                ),
            });
        }
        Ok(Output(OutputBytes::Arena(g, loc.start..loc.start + loc.len)))
    }

    /// The bytes of a model input or output (by its index in the file)
    /// after a run, read in place; for the drift monitor.
    pub(crate) fn tensor_bytes(&self, tensor: usize) -> Result<Output<'_>> {
        let d = self.model.d();
        if let Some(i) = d.outputs.iter().position(|&t| t == tensor) {
            return self.output(i);
        }
        let i = d.inputs.iter().position(|&t| t == tensor).ok_or(Error::OutputIndex { index: tensor, count: d.outputs.len() })?;
        let loc = self.input_locs[i];
        let g = lock(&self.slot);
        if self.shared && g.holder != self.id {
            return Err(Error::ArenaReused { what: format!("input {:?} was overwritten by another session", d.tensors[tensor].name) });
        }
        Ok(Output(OutputBytes::Arena(g, loc.start..loc.start + loc.len)))
    }

    /// Output `index` as floats, read in place.
    pub fn output_f32(&self, index: usize) -> Result<OutputF32<'_>> {
        let d = &self.model.inner.d;
        let t = *d.outputs.get(index).ok_or(Error::OutputIndex { index, count: d.outputs.len() })?;
        if d.tensors[t].dtype != DType::F32 {
            return Err(Error::OutputDType { name: d.tensors[t].name.clone(), dtype: d.tensors[t].dtype });
        }
        let out = self.output(index)?;
        if bytemuck::try_cast_slice::<u8, f32>(&out).is_err() {
            return Err(Error::Internal { step: 0, op: "output", reason: format!("output {index} is not 4-byte aligned") });
        }
        Ok(OutputF32(out))
    }

    /// Sets every input, runs, and copies every output into `outputs`.
    /// Allocates nothing.
    pub fn run(&mut self, inputs: &[TensorRef<'_>], outputs: &mut [TensorMut<'_>]) -> Result<()> {
        let d = &self.model.inner.d;
        if inputs.len() != d.inputs.len() {
            return Err(Error::InputCount { expected: d.inputs.len(), found: inputs.len() });
        }
        if outputs.len() != d.outputs.len() {
            return Err(Error::OutputCount { expected: d.outputs.len(), found: outputs.len() });
        }
        for (i, o) in outputs.iter().enumerate() {
            let rec = &d.tensors[d.outputs[i]];
            if o.dtype != rec.dtype || o.data.len() != rec.nbytes {
                return Err(Error::OutputBuffer {
                    name: rec.name.clone(),
                    expected_dtype: rec.dtype,
                    expected: rec.nbytes,
                    found_dtype: o.dtype,
                    found: o.data.len(),
                });
            }
        }
        // One lock for the whole run: no other session can come between
        // the inputs, the run and the outputs.
        let slot = Arc::clone(&self.slot);
        let mut g = lock(&slot);
        self.take(&mut g);
        for (i, input) in inputs.iter().enumerate() {
            self.check_input(i, input)?;
            let loc = self.input_locs[i];
            g.arena.bytes_mut()[loc.start..loc.start + loc.len].copy_from_slice(input.data);
            self.loaded[i] = true;
        }
        self.run_in(&mut g, None)?;
        let weights = &self.model.inner.bytes.as_slice()[self.model.inner.d.weights.clone()];
        for (o, loc) in outputs.iter_mut().zip(&self.output_locs) {
            let src = if loc.in_arena { g.arena.bytes() } else { weights };
            o.data.copy_from_slice(&src[loc.start..loc.start + loc.len]);
        }
        Ok(())
    }
}
