//! The CPU backend: the executor that runs a lowered program step by step,
//! and the thread pool its kernels split work over.

pub(crate) mod exec;
pub(crate) mod pool;
