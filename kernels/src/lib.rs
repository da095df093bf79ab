//! jetrt's compute kernels.
//!
//! Kernels see slices, shapes, strides and parameters only: no graph, no file,
//! no I/O. Every op has a plain scalar version in [`cpu::reference`] that
//! defines what is correct; optimized variants (blocked GEMM with AVX2/FMA or
//! NEON micro-kernels) are tested against it.
//!
//! Work is spread over threads through the [`Parallel`] trait, which the
//! runtime implements with its own allocation-free pool; kernels never spawn
//! threads or allocate.

pub mod cpu;
pub mod cuda;
mod par;
#[cfg(test)]
mod test_util;

pub use par::{split_units, Parallel, Scratch, Serial, SharedMut, PAR_GRAIN};
