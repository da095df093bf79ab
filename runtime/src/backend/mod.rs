//! Backends. The CPU backend is always there; the CUDA backend is built with
//! the `cuda` feature.
pub use crate::model::Backend;
