//! The session's thread pool: persistent workers that run the tasks of one
//! kernel call at a time, without allocating.
//!
//! Why not rayon: rayon's injector queue allocates blocks as jobs are pushed,
//! and `Session::run` must not allocate. This pool hands workers a pointer to
//! the caller's closure and a shared task counter; the caller works too and
//! returns only when every worker has finished with the closure. Workers spin
//! briefly before sleeping, because kernel calls follow each other within
//! microseconds.

use jetrt_kernels::Parallel;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Task = dyn Fn(usize, usize) + Sync;

/// The closure of the current job, its lifetime erased. Only dereferenced
/// between the job's start and the moment the worker reports done, which is
/// before `run` returns (see `ThreadPool::run`).
#[derive(Clone, Copy)]
struct JobPtr(*const Task);
// SAFETY: the pointee is Sync, and it outlives every use (see above).
unsafe impl Send for JobPtr {}

struct State {
    job: Option<JobPtr>,
    tasks: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
    /// Bumped for every job; workers watch it.
    epoch: AtomicU64,
    next: AtomicUsize,
    /// Workers that have not finished the current job.
    remaining: AtomicUsize,
    panicked: AtomicBool,
}

/// Spin iterations before a waiting thread sleeps (tens of microseconds).
const SPIN: u32 = 20_000;

pub struct ThreadPool {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    threads: usize,
}

impl ThreadPool {
    /// A pool of `threads` threads in all: the caller and `threads − 1`
    /// workers.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State { job: None, tasks: 0, shutdown: false }),
            wake: Condvar::new(),
            done: Condvar::new(),
            epoch: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        });
        let mut handles = Vec::with_capacity(threads - 1);
        for worker in 1..threads {
            let s = Arc::clone(&shared);
            let h = std::thread::Builder::new().name(format!("jetrt-worker-{worker}")).spawn(move || worker_loop(&s, worker))?;
            handles.push(h);
        }
        Ok(ThreadPool { shared, handles, threads })
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn claim_tasks(s: &Shared, job: JobPtr, tasks: usize, worker: usize) {
    // SAFETY: the job pointer is valid until this worker decrements
    // `remaining`, which happens after this returns.
    let f = unsafe { &*job.0 };
    loop {
        let t = s.next.fetch_add(1, Ordering::Relaxed);
        if t >= tasks {
            break;
        }
        f(t, worker);
    }
}

fn worker_loop(s: &Shared, worker: usize) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0;
        while s.epoch.load(Ordering::Acquire) == seen && spins < SPIN {
            std::hint::spin_loop();
            spins += 1;
        }
        let (job, tasks) = {
            let mut st = lock(&s.state);
            while s.epoch.load(Ordering::Acquire) == seen && !st.shutdown {
                st = s.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.shutdown {
                return;
            }
            seen = s.epoch.load(Ordering::Acquire);
            (st.job, st.tasks)
        };
        if let Some(job) = job {
            if catch_unwind(AssertUnwindSafe(|| claim_tasks(s, job, tasks, worker))).is_err() {
                s.panicked.store(true, Ordering::Release);
            }
        }
        if s.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _st = lock(&s.state);
            s.done.notify_all();
        }
    }
}

impl Parallel for ThreadPool {
    fn workers(&self) -> usize {
        self.threads
    }

    fn run(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        if self.threads == 1 || tasks <= 1 {
            for t in 0..tasks {
                f(t, 0);
            }
            return;
        }
        let s = &*self.shared;
        // SAFETY (lifetime erasure): the pointer is stored for the workers
        // and this function does not return before all of them have
        // decremented `remaining`, i.e. stopped using it; it is cleared
        // before returning.
        // SAFETY: only the lifetime changes (see above).
        let job = JobPtr(unsafe { std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), &'static Task>(f) } as *const Task);
        {
            let mut st = lock(&s.state);
            st.job = Some(job);
            st.tasks = tasks;
            s.next.store(0, Ordering::Relaxed);
            s.remaining.store(self.threads - 1, Ordering::Relaxed);
            s.epoch.fetch_add(1, Ordering::AcqRel);
        }
        s.wake.notify_all();
        let caller = catch_unwind(AssertUnwindSafe(|| claim_tasks(s, job, tasks, 0)));
        let mut spins = 0;
        while s.remaining.load(Ordering::Acquire) != 0 && spins < SPIN {
            std::hint::spin_loop();
            spins += 1;
        }
        {
            let mut st = lock(&s.state);
            while s.remaining.load(Ordering::Acquire) != 0 {
                st = s.done.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.job = None;
        }
        if let Err(p) = caller {
            std::panic::resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::AcqRel) {
            panic!("a jetrt kernel panicked on a worker thread");
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.shared.state);
            st.shutdown = true;
            self.shared.epoch.fetch_add(1, Ordering::AcqRel);
        }
        self.shared.wake.notify_all();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_on_a_valid_worker() {
        let pool = ThreadPool::new(3).unwrap();
        for tasks in [0, 1, 2, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            pool.run(tasks, &|t, w| {
                assert!(w < 3);
                hits[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn a_panicking_task_panics_the_caller_and_the_pool_survives() {
        let pool = ThreadPool::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(8, &|t, _| assert!(t != 5, "task five"))));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(8, &|_, _| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 8);
    }
}
