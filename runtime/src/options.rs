//! How a session runs: [`SessionOptions`] and [`Backend`]. Everything that
//! changes how the runtime behaves is a field here; the library reads no
//! environment variable (the `jetrt` command line reads `JETRT_*` and fills
//! these in).

use crate::error::{Error, Result};
use jetrt_kernels::cpu::int8::QIsa;
use jetrt_kernels::cpu::Isa;
use std::path::PathBuf;

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

/// A session's settings. Start from [`SessionOptions::default`] (the best
/// backend and kernels this machine has, one thread per core it may use) and change
/// what you need, with the `with_*` methods or by assigning fields:
///
/// ```
/// use jetrt::{Backend, SessionOptions};
/// let options = SessionOptions::default().with_backend(Backend::Cpu).with_threads(2);
/// assert_eq!(options.threads, 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SessionOptions {
    pub backend: Backend,
    /// Threads in all (the calling thread included); 0 = what the process
    /// may really use ([`available_threads`](crate::available_threads):
    /// its CPU affinity and cgroup quota, not the online cores).
    pub threads: usize,
    /// A CPU kernel variant instead of the best one detected: to compute
    /// on one machine what a machine without AVX-512 computes, say, as
    /// oneDNN's `ONEDNN_MAX_CPU_ISA` does (`JETRT_KERNELS` for the CLIs).
    pub cpu_kernels: Option<Isa>,
    /// An int8 kernel variant instead of the best one detected
    /// (`JETRT_INT8_KERNELS`).
    pub int8_kernels: Option<QIsa>,
    /// On the GPU, multiply convolutions and matrix products in fp16 on
    /// the tensor cores, accumulating in fp32 (TensorRT's `--fp16`);
    /// weights and activations stay fp32 in memory. The CPU backend has no
    /// fp16 path: a session asking for it that would run on the CPU is an
    /// error. Until a GPU check has run the fp16 kernels, they also need
    /// [`CudaOptions::unverified_kernels`].
    pub fp16: bool,
    /// Settings of the CUDA backend.
    pub cuda: CudaOptions,
}

impl SessionOptions {
    /// The defaults.
    pub fn new() -> SessionOptions {
        SessionOptions::default()
    }

    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    pub fn with_cpu_kernels(mut self, isa: Option<Isa>) -> Self {
        self.cpu_kernels = isa;
        self
    }

    pub fn with_int8_kernels(mut self, qisa: Option<QIsa>) -> Self {
        self.int8_kernels = qisa;
        self
    }

    pub fn with_fp16(mut self, fp16: bool) -> Self {
        self.fp16 = fp16;
        self
    }

    pub fn with_cuda(mut self, cuda: CudaOptions) -> Self {
        self.cuda = cuda;
        self
    }

    /// The kernel variants a session with these options uses: those named,
    /// else the best this machine supports. A variant this machine cannot
    /// run is an error that says which.
    pub fn kernels(&self) -> Result<(Isa, QIsa)> {
        let isa = self.cpu_kernels.unwrap_or_else(Isa::detect);
        let qisa = self.int8_kernels.unwrap_or_else(QIsa::detect);
        if !isa.supported() {
            return Err(Error::Options(format!("CPU variant {} is not supported on this machine", isa.name())));
        }
        if !qisa.supported() {
            return Err(Error::Options(format!("int8 variant {} is not supported on this machine", qisa.name())));
        }
        Ok((isa, qisa))
    }

    /// Threads a session with these options starts.
    pub(crate) fn thread_count(&self) -> usize {
        match self.threads {
            0 => crate::cpu::pool::available_threads(),
            n => n,
        }
    }
}

/// Settings of the CUDA backend (ignored by CPU sessions).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CudaOptions {
    /// Also run the GPU kernels no GPU check has verified yet (fp16, and
    /// those `Model::cuda_fallbacks` names as unverified), instead of
    /// running those steps on the CPU (`JETRT_CUDA_UNVERIFIED=1`).
    pub unverified_kernels: bool,
    /// Wait for every step and name the step a GPU error came from, instead
    /// of replaying the plan as one CUDA graph: for debugging
    /// (`JETRT_CUDA_SYNC=1`).
    pub sync_each_step: bool,
    /// Replay a plan with no CPU steps as one CUDA graph (default on;
    /// `JETRT_CUDA_GRAPH=0` turns it off).
    pub graph: bool,
    /// On a board whose GPU shares the memory (every Jetson), use the
    /// weights in place from the file mapping instead of copying them
    /// (default on; `JETRT_CUDA_ZERO_COPY=0`).
    pub zero_copy: bool,
    /// Where CUBINs compiled at run time are kept between runs; `None`
    /// compiles in every process (the CLI: `$JETRT_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/jetrt`, else `~/.cache/jetrt`).
    pub kernel_cache_dir: Option<PathBuf>,
    /// The NVRTC library to compile with; `None` searches the usual names
    /// and CUDA folders (`JETRT_NVRTC`).
    pub nvrtc: Option<PathBuf>,
}

impl Default for CudaOptions {
    fn default() -> Self {
        CudaOptions { unverified_kernels: false, sync_each_step: false, graph: true, zero_copy: true, kernel_cache_dir: None, nvrtc: None }
    }
}

impl CudaOptions {
    pub fn with_unverified_kernels(mut self, on: bool) -> Self {
        self.unverified_kernels = on;
        self
    }

    pub fn with_sync_each_step(mut self, on: bool) -> Self {
        self.sync_each_step = on;
        self
    }

    pub fn with_graph(mut self, on: bool) -> Self {
        self.graph = on;
        self
    }

    pub fn with_zero_copy(mut self, on: bool) -> Self {
        self.zero_copy = on;
        self
    }

    pub fn with_kernel_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.kernel_cache_dir = dir;
        self
    }

    pub fn with_nvrtc(mut self, path: Option<PathBuf>) -> Self {
        self.nvrtc = path;
        self
    }
}
