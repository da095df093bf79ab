//! The CPU backend: the executor that runs a lowered program step by step,
//! the thread pool its kernels split work over, and the cost model that
//! says which steps are worth splitting.

pub(crate) mod cost;
pub(crate) mod exec;
pub(crate) mod pool;
