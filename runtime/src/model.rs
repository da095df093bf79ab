//! [`Model`]: an opened `.jrt` file, every byte validated and every step
//! lowered once, ready to make sessions from; and what it tells about
//! itself ([`ModelInfo`]).

use crate::error::{Error, Result};
use crate::lower::{self, Program};
use crate::options::SessionOptions;
use crate::session::Session;
use crate::tensor::TensorId;
use jetrt_format::reader::{self, Decoded};
use jetrt_format::tensors::Storage;
use jetrt_format::{DType, SectionKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
#[cfg(feature = "cuda")]
use std::sync::Mutex;

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
    plan: Program,
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
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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
        let plan = lower::lower(&d)?;
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

    /// What the model is: inputs and outputs, memory, what the file
    /// carries. Allocates (names and lists); call it once.
    pub fn info(&self) -> ModelInfo {
        let d = self.d();
        let memory = MemoryInfo {
            file_bytes: self.inner.bytes.as_slice().len(),
            arena_bytes: d.arena_bytes,
            intermediate_bytes: d.tensors.iter().filter(|t| t.storage == Storage::Arena).map(|t| t.nbytes).sum(),
            weights_bytes: d.weights.len(),
            scratch_bytes_per_thread: self.inner.plan.scratch_floats * 4,
            scratch_bytes_shared: self.inner.plan.shared_scratch_floats * 4,
        };
        ModelInfo {
            name: self.meta("name").map(str::to_string),
            path: self.inner.path.clone(),
            format_version: (d.header.major, d.header.minor),
            inputs: self.inputs(),
            outputs: self.outputs(),
            steps: d.steps.len(),
            memory,
            metadata: d.metadata.clone(),
            golden_vectors: d.golden.len(),
            drift_reference: d.drift.is_some(),
            kernel_images: d
                .kernels
                .iter()
                .map(|e| KernelImageInfo { arch: e.arch, nvrtc: e.nvrtc, source_hash: e.source_hash, bytes: e.range.len() })
                .collect(),
            sections: d
                .sections
                .list
                .iter()
                .map(|s| SectionInfo { kind: s.kind, offset: s.range.start as u64, len: s.range.len() as u64, checksum: s.checksum })
                .collect(),
        }
    }

    /// The model's inputs: names, element types, shapes.
    pub fn inputs(&self) -> Vec<TensorInfo> {
        self.d().inputs.iter().map(|&t| self.info_of(t)).collect()
    }

    /// The model's outputs: names, element types, shapes.
    pub fn outputs(&self) -> Vec<TensorInfo> {
        self.d().outputs.iter().map(|&t| self.info_of(t)).collect()
    }

    /// Value of a metadata key (`name`, `source`, `jetc_version`, ...).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.d().metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Name of tensor `index` of the file (the monitor's statistics name
    /// tensors by index).
    pub fn tensor_name(&self, index: usize) -> Option<&str> {
        self.inner.d.tensors.get(index).map(|t| t.name.as_str())
    }

    /// The drift reference statistics the converter stored, if any.
    pub fn drift_reference(&self) -> Option<&jetrt_format::drift::Reference> {
        self.inner.d.drift.as_ref()
    }

    /// Every step of the plan, for inspection and profiles.
    pub fn steps(&self) -> Vec<StepInfo> {
        let d = self.d();
        let names = |r: &std::ops::Range<usize>| d.operands[r.clone()].iter().map(|&t| d.tensors[t].name.clone()).collect();
        d.steps
            .iter()
            .zip(&self.inner.plan.steps)
            .map(|(s, p)| StepInfo { op: s.op.name(), inputs: names(&s.inputs), outputs: names(&s.outputs), macs: p.kind.macs() })
            .collect()
    }

    /// The steps a CUDA session with `options` would run on the CPU, and
    /// why. Answered from the plan alone (no GPU needed, whatever the
    /// build's features).
    pub fn cuda_fallbacks(&self, options: &SessionOptions) -> Vec<crate::CudaFallback> {
        crate::cuda::fallbacks(&self.inner.plan, self.weights(), &options.cuda)
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

    /// Allocates a session: the arena (once), the threads and their scratch.
    pub fn session(&self, options: SessionOptions) -> Result<Session> {
        Session::new(self.clone(), options)
    }

    /// Position of input `id` in the file's list of inputs.
    pub(crate) fn input_position(&self, id: TensorId<'_>) -> Result<usize> {
        let d = self.d();
        position(d, &d.inputs, id).ok_or_else(|| match id {
            TensorId::Name(name) => Error::UnknownInput { name: name.into(), known: names(d, &d.inputs) },
            TensorId::Index(i) => Error::InputCount { expected: d.inputs.len(), found: i + 1 },
        })
    }

    /// Position of output `id` in the file's list of outputs.
    pub(crate) fn output_position(&self, id: TensorId<'_>) -> Result<usize> {
        let d = self.d();
        position(d, &d.outputs, id).ok_or_else(|| match id {
            TensorId::Name(name) => Error::UnknownOutput { name: name.into(), known: names(d, &d.outputs) },
            TensorId::Index(index) => Error::OutputIndex { index, count: d.outputs.len() },
        })
    }

    pub(crate) fn plan(&self) -> &Program {
        &self.inner.plan
    }

    pub(crate) fn golden_entries(&self) -> &[jetrt_format::golden::GoldenEntry] {
        &self.d().golden
    }

    pub(crate) fn golden_bytes(&self, r: std::ops::Range<usize>) -> Option<&[u8]> {
        self.inner.bytes.as_slice().get(r)
    }

    /// The image for `arch` built from `source_hash`, if the file has it.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn kernel_image(&self, arch: u32, source_hash: u64) -> Option<&[u8]> {
        let e = self.d().kernels.iter().find(|e| e.arch == arch && e.source_hash == source_hash)?;
        self.inner.bytes.as_slice().get(e.range.clone())
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    pub(crate) fn weights(&self) -> &[u8] {
        &self.inner.bytes.as_slice()[self.d().weights.clone()]
    }
}

fn position(d: &Decoded, list: &[usize], id: TensorId<'_>) -> Option<usize> {
    match id {
        TensorId::Index(i) => (i < list.len()).then_some(i),
        TensorId::Name(name) => list.iter().position(|&t| d.tensors[t].name == name),
    }
}

fn names(d: &Decoded, list: &[usize]) -> Vec<String> {
    list.iter().map(|&t| d.tensors[t].name.clone()).collect()
}

/// What a model is and what it carries ([`Model::info`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The `name` metadata (the ONNX file's stem unless `jetc --name`).
    pub name: Option<String>,
    /// The file it was opened from (`None`: [`Model::from_bytes`]).
    pub path: Option<PathBuf>,
    /// (major, minor) format version of the file.
    pub format_version: (u16, u16),
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    /// Steps of the plan.
    pub steps: usize,
    pub memory: MemoryInfo,
    /// Every metadata key and value, in file order.
    pub metadata: Vec<(String, String)>,
    /// Golden test vectors the file carries (see [`crate::golden::check`]).
    pub golden_vectors: usize,
    /// Whether the file holds a drift reference (for [`crate::monitor`]).
    pub drift_reference: bool,
    /// The compiled GPU kernels the file carries (`jetc convert --cuda-arch`).
    pub kernel_images: Vec<KernelImageInfo>,
    pub sections: Vec<SectionInfo>,
}

/// A model's memory, exact: what a session allocates is known before it
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryInfo {
    pub file_bytes: usize,
    /// The arena every session allocates (all intermediate tensors, reused
    /// by the memory plan).
    pub arena_bytes: usize,
    /// Sum of the sizes of all arena tensors (what the arena would need
    /// with no reuse).
    pub intermediate_bytes: usize,
    /// The weights, used in place from the mapped file.
    pub weights_bytes: usize,
    /// Scratch each thread of a session allocates (packing buffers).
    pub scratch_bytes_per_thread: usize,
    /// Scratch a session allocates once for all its threads (weights that
    /// a kernel transforms on each run, such as Winograd's).
    pub scratch_bytes_shared: usize,
}

impl MemoryInfo {
    /// What a session with `threads` threads allocates: arena plus scratch.
    pub fn session_bytes(&self, threads: usize) -> usize {
        self.arena_bytes + threads.max(1) * self.scratch_bytes_per_thread + self.scratch_bytes_shared
    }
}
