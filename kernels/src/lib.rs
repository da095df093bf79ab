//! jetrt's compute kernels.
//!
//! Kernels see slices, shapes, strides and parameters only: no graph, no file,
//! no I/O. `cpu` has one module per kind of op (`gemm`, `conv`, `int8`,
//! `packed`, `elementwise`, `softmax`, `pool`, `reduce`, `resize`, `layout`,
//! `strided`, ...), named like the `.cu` files of `cuda` that hold the same
//! ops for the GPU. Every op has a plain scalar version that defines what is
//! correct: the matrix product and convolution in [`cpu::reference`], the
//! others beside their fast versions; optimized variants (blocked GEMM with
//! AVX2/FMA, AVX-512 or NEON micro-kernels) are tested against it.
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
