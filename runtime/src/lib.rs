//! jetrt, the runtime: memory-maps a `.jrt` file, validates every byte of
//! it, allocates one arena of exactly the size the file declares, and runs
//! the plan. Nothing is allocated while running.
//!
//! ```no_run
//! use jetrt::{Model, SessionOptions, TensorRef, TensorMut};
//! let model = Model::open("model.jrt")?;
//! let mut session = model.session(SessionOptions::default())?;
//! let input = vec![0.0f32; 1 * 3 * 224 * 224];
//! let mut probs = vec![0.0f32; 1000];
//! session.run(&[TensorRef::f32(&[1, 3, 224, 224], &input)], &mut [TensorMut::f32(&mut probs)])?;
//! # Ok::<(), jetrt::Error>(())
//! ```

mod arena;
pub mod budget;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod drift;
mod error;
mod exec;
pub mod golden;
mod model;

pub use arena::SharedArena;
pub use error::{Error, Result};
pub use jetrt_format::{DType, FormatError, SectionKind, Shape};
/// How a Quantize step rounds one value (`x · inv_scale`, round half to
/// even, saturating): the converter computes with it what the runtime will.
pub use jetrt_kernels::cpu::qgemm::quantize_one;
pub use jetrt_kernels::cpu::qgemm::QIsa;
pub use jetrt_kernels::cpu::{cpu_features, Isa};
pub use model::{
    default_kernels, Backend, KernelImageInfo, Model, Output, OutputF32, SectionInfo, Session, SessionOptions, StepInfo, TensorInfo,
    TensorMut, TensorRef, INT8_KERNELS_ENV, KERNELS_ENV,
};

/// The jetrt version (crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
