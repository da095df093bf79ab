//! jetrt, the runtime: memory-maps a `.jrt` file (made by `jetc` from an
//! ONNX model), validates every byte of it, allocates one arena of exactly
//! the size the file declares, and runs the plan on the CPU or, through
//! CUDA, on the GPU. Nothing is allocated while running.
//!
//! ```
//! use jetrt::{Model, SessionOptions, TensorMut, TensorRef};
//! # let bytes = jetrt::doc_example_model();
//! // Model::open("model.jrt") maps a file; from_bytes takes one in memory.
//! let model = Model::from_bytes(&bytes)?;
//! let info = model.info();
//! println!("{} inputs, arena {} bytes", info.inputs.len(), info.memory.arena_bytes);
//!
//! let mut session = model.session(SessionOptions::default())?;
//! let x = [-1.0f32, 2.0, -3.0, 4.0];
//! let mut y = [0.0f32; 4];
//! // By position; or by name, in any order: TensorRef::new(..).named("x").
//! session.run(&[TensorRef::new(&[1, 4], &x)], &mut [TensorMut::new(&mut y)])?;
//! assert_eq!(y, [0.0, 2.0, 0.0, 4.0]);
//!
//! // Or set inputs, run, and read outputs in place, by name.
//! session.set_input("x", TensorRef::new(&[1, 4], &x))?;
//! session.run_loaded()?;
//! assert_eq!(session.output("y")?.as_slice::<f32>()?, &[0.0, 2.0, 0.0, 4.0]);
//! # Ok::<(), jetrt::Error>(())
//! ```
//!
//! The parts: [`Model`] (open, [`Model::info`], sessions), [`Session`]
//! (run), [`SessionOptions`] (every setting; the library reads no
//! environment variable), [`TensorRef`]/[`TensorMut`] (the caller's
//! memory), [`Error`] (everything that can go wrong, naming the thing at
//! fault), [`monitor`] (drift on the device), [`golden`] (the file's own
//! test vectors), [`budget`] (whether a model fits a board), and [`host`]
//! (tools for the build machine). docs/ARCHITECTURE.md maps the code.

mod arena;
pub mod budget;
mod cpu;
mod cuda;
mod error;
pub mod golden;
pub mod host;
mod lower;
mod model;
pub mod monitor;
mod options;
mod session;
mod tensor;
#[cfg(test)]
mod test_util;

pub use arena::SharedArena;
pub use cpu::pool::available_threads;
pub use cuda::{first_usable as first_usable_gpu, probe as probe_gpus, CudaFallback, GpuInfo, MIN_COMPUTE_CAPABILITY};
pub use error::{Error, Result};
pub use jetrt_format::{DType, FormatError, SectionKind};
pub use jetrt_kernels::cpu::int8::QIsa;
pub use jetrt_kernels::cpu::{cpu_features, Isa};
pub use model::{KernelImageInfo, MemoryInfo, Model, ModelInfo, SectionInfo, StepInfo, TensorInfo};
pub use options::{Backend, CudaOptions, SessionOptions};
pub use session::{GpuMemory, Output, Session, SessionInfo};
pub use tensor::{Element, TensorId, TensorMut, TensorRef};

/// The jetrt version (crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A one-step model (`y = Relu(x)`, `x` of shape `[1, 4]`) built in memory,
/// for the examples in this documentation.
#[doc(hidden)]
pub fn doc_example_model() -> Vec<u8> {
    use jetrt_format::op::{Activation, Op};
    use jetrt_format::{FileBuilder, StepDef, StorageDef, TensorDef};
    let t =
        |name: &str, offset| TensorDef { name: name.into(), dtype: DType::F32, shape: vec![1, 4], storage: StorageDef::Arena { offset } };
    FileBuilder {
        tensors: vec![t("x", 0), t("y", 64)],
        steps: vec![StepDef { op: Op::Activation(Activation::Relu), inputs: vec![0], outputs: vec![1] }],
        inputs: vec![0],
        outputs: vec![1],
        arena_bytes: 128,
        ..Default::default()
    }
    .to_bytes()
}
