//! Parallel execution and per-worker scratch, as kernels see them.

use std::marker::PhantomData;
use std::sync::Mutex;

/// Runs independent tasks, possibly on several threads.
///
/// `run(tasks, f)` calls `f(task, worker)` once for every `task` in
/// `0..tasks` and returns when all calls have returned. `worker` is in
/// `0..workers()` and no two calls with the same `worker` run at the same
/// time, so a task may use the scratch buffer of its worker exclusively.
pub trait Parallel: Sync {
    fn workers(&self) -> usize;
    fn run(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync));
}

/// Values below which a pointwise step is not worth waking the workers
/// for, and the fewest values a task of one gets.
pub const PAR_GRAIN: usize = 16 * 1024;

/// How a pointwise step over `values` values, made of `units` independent
/// units (rows, planes, or the values themselves), is cut into tasks:
/// `(units per task, tasks)`. One task on one worker or under
/// 2·[`PAR_GRAIN`] values; otherwise about four tasks per worker, none
/// under [`PAR_GRAIN`] values.
pub fn split_units(par: &dyn Parallel, values: usize, units: usize) -> (usize, usize) {
    let units = units.max(1);
    if par.workers() == 1 || values < 2 * PAR_GRAIN {
        return (units, 1);
    }
    let per = units.div_ceil(par.workers() * 4).max((PAR_GRAIN * units).div_ceil(values)).max(1);
    (per, units.div_ceil(per))
}

/// Runs every task on the calling thread, in order.
#[derive(Debug, Default, Clone, Copy)]
pub struct Serial;

impl Parallel for Serial {
    fn workers(&self) -> usize {
        1
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        for t in 0..tasks {
            f(t, 0);
        }
    }
}

/// One scratch buffer per worker, allocated once (at session start) and
/// reused by every kernel call, and optionally one buffer shared by all
/// workers of a step (a kernel's transformed weights, which every task
/// reads).
///
/// Each buffer sits behind a mutex: a worker only ever locks its own, so the
/// lock is never contended and costs a few nanoseconds; it keeps access safe
/// without trusting the scheduler. The shared buffer is locked by the thread
/// that calls the kernel, which hands its tasks disjoint parts of it.
#[derive(Debug)]
pub struct Scratch {
    bufs: Vec<Mutex<Vec<f32>>>,
    floats: usize,
    shared: Mutex<Vec<f32>>,
}

impl Scratch {
    pub fn new(workers: usize, floats_per_worker: usize) -> Self {
        Self::with_shared(workers, floats_per_worker, 0)
    }

    /// Per-worker buffers and a shared one of `shared_floats`.
    pub fn with_shared(workers: usize, floats_per_worker: usize, shared_floats: usize) -> Self {
        let bufs = (0..workers.max(1)).map(|_| Mutex::new(vec![0.0f32; floats_per_worker])).collect();
        Self { bufs, floats: floats_per_worker, shared: Mutex::new(vec![0.0f32; shared_floats]) }
    }

    /// Floats in the shared buffer.
    pub fn shared_floats(&self) -> usize {
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Runs `f` with the shared buffer. Kernels call it from the thread
    /// that calls them, never from inside a task.
    pub fn with_shared_buf<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let mut guard = self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Floats available to each worker.
    pub fn floats_per_worker(&self) -> usize {
        self.floats
    }

    pub fn workers(&self) -> usize {
        self.bufs.len()
    }

    /// Bytes held in all buffers together.
    pub fn bytes(&self) -> usize {
        (self.bufs.len() * self.floats + self.shared_floats()) * std::mem::size_of::<f32>()
    }

    /// Runs `f` with the scratch buffer of `worker`.
    ///
    /// Panics if `worker` is out of range: that is a scheduler bug, not bad
    /// input.
    pub fn with<R>(&self, worker: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let mut guard = self.bufs[worker].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// A mutable slice shared by parallel tasks that write disjoint parts of it.
///
/// Kernels split an output among tasks by rectangles (rows × columns of a
/// matrix), which `chunks_mut` cannot express without allocating; this is the
/// one place where that sharing happens.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: SharedMut hands out only disjoint sub-slices (the caller of
// `slice_mut` promises it), so sharing it across threads is like sharing the
// `&mut [T]` it was made from split into parts.
unsafe impl<T: Send> Send for SharedMut<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    pub fn new(slice: &'a mut [T]) -> Self {
        Self { ptr: slice.as_mut_ptr(), len: slice.len(), _borrow: PhantomData }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A raw pointer to element `start` for writing a `rows × cols` tile
    /// with row stride `ld`, after checking the tile lies inside.
    ///
    /// # Safety
    /// The tile must not overlap anything another thread accesses while the
    /// pointer is used (the caller's partition of the output guarantees it).
    pub unsafe fn tile_ptr(&self, start: usize, rows: usize, cols: usize, ld: usize) -> *mut T {
        let end = rows.checked_sub(1).map_or(Some(start), |r| r.checked_mul(ld).and_then(|o| o.checked_add(start)?.checked_add(cols)));
        assert!(end.is_some_and(|e| e <= self.len), "SharedMut tile at {start} ({rows}x{cols}, ld {ld}) past {}", self.len);
        // SAFETY: start is in bounds (checked above).
        unsafe { self.ptr.add(start) }
    }

    /// The sub-slice `start..start + len`.
    ///
    /// # Safety
    /// No two slices obtained from the same `SharedMut` and alive at the same
    /// time may overlap. The range is bounds-checked (and panics if outside).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [T] {
        let end = start.checked_add(len).expect("SharedMut range overflows");
        assert!(end <= self.len, "SharedMut range {start}..{end} past {}", self.len);
        // SAFETY: in bounds (checked above); disjointness is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}
