//! The session's thread pool: persistent workers that help with the tasks
//! of one kernel call at a time, without allocating, and that never make
//! the caller wait for a thread that is not running.
//!
//! Why not rayon: rayon's injector queue allocates blocks as jobs are pushed,
//! and `Session::run` must not allocate.
//!
//! How a call runs. The caller publishes the job (its closure and task
//! count) and opens a gate; it then claims tasks itself from a shared
//! counter. A worker that is awake passes the gate (one atomic
//! compare-and-swap that counts it in) and claims tasks too. When no task
//! is left the caller closes the gate and waits only for the workers that
//! passed it, each of which holds at most the task it is running. A worker
//! that wakes after that finds the gate closed and goes back to waiting:
//! it never touched the job. So when a core is taken by another process (a
//! camera pipeline, ROS, a second model), a descheduled worker costs the
//! caller nothing; the old pool waited at every step until every worker had
//! checked in, one scheduler time slice each.
//!
//! Idle workers spin for a few microseconds (kernel calls follow each other
//! that closely), then yield the core for a while, then park on a condition
//! variable; the caller signals it only when someone is parked. Waiting
//! for the workers that joined, the caller spins briefly and then yields,
//! so that a worker sharing its core gets it. A helper still busy long
//! after the caller ran out of tasks was descheduled mid-task; the calls
//! after that run on the caller alone, for 2 ms, doubling while helpers
//! keep stalling (up to 256 ms), back to helpers as soon as they keep up.
//!
//! Which steps use the pool at all is the cost model's call
//! ([`super::cost`]), made once per session.

use jetrt_kernels::Parallel;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Task = dyn Fn(usize, usize) + Sync;

/// The closure of the current job, its lifetime erased. Dereferenced only
/// by a worker that passed the gate, and the caller does not return (or
/// publish another job) before every such worker has left (see
/// `ThreadPool::run`).
#[derive(Clone, Copy)]
struct JobPtr(*const Task);

/// The job a caller publishes: written only while the gate is closed and
/// empty, read only by workers that passed it.
struct Job {
    f: Option<JobPtr>,
    tasks: usize,
}

/// The gate's open bit; the bits below count the workers inside.
const OPEN: u64 = 1 << 32;

/// Spin iterations of an idle worker before it starts yielding (a few
/// microseconds).
const IDLE_SPINS: u32 = 2_000;
/// How long an idle worker yields its core before parking.
const IDLE_YIELD: Duration = Duration::from_micros(100);
/// Spin iterations of the caller waiting for workers before it yields.
const WAIT_SPINS: u32 = 200;
/// A helper that keeps the caller waiting this long (and longer than half
/// the caller's own share of the call) was descheduled: nanoseconds.
const STALL_NS: u64 = 100_000;
/// How long calls then run on the caller alone before helpers are tried
/// again: from about one scheduler time slice of the process that took the
/// core, doubling while helpers keep stalling, up to a few inferences.
const SOLO_MIN_NS: u64 = 2_000_000;
const SOLO_MAX_NS: u64 = 256_000_000;

struct Shared {
    job: UnsafeCell<Job>,
    /// [`OPEN`] while the current job takes helpers, plus their count.
    gate: AtomicU64,
    /// Bumped for every job; idle workers watch it.
    epoch: AtomicU64,
    next: AtomicUsize,
    panicked: AtomicBool,
    /// Workers parked on `wake`.
    sleepers: AtomicUsize,
    shutdown: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    /// Calls run on the caller alone until this time (nanoseconds since
    /// the pool started), after a helper stalled.
    solo_until: AtomicU64,
    /// The last time alone (nanoseconds), 0 once helpers kept up again.
    solo_ns: AtomicU64,
    /// Tests: workers stall before the gate, as descheduled threads do.
    #[cfg(test)]
    stalled: AtomicBool,
}

// SAFETY: `job` is written only by the one caller inside `run` (guarded by
// `busy`) while no worker is inside the gate, and read only by workers
// inside it; the gate's acquire/release orders the two (see `run`).
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw closure pointer is only used under that protocol.
unsafe impl Send for Shared {}

pub struct ThreadPool {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    threads: usize,
    /// A caller is inside `run` (a second, concurrent one runs serially).
    busy: AtomicBool,
    start: Instant,
}

impl ThreadPool {
    /// A pool of `threads` threads in all: the caller and `threads − 1`
    /// workers.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: UnsafeCell::new(Job { f: None, tasks: 0 }),
            gate: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            solo_until: AtomicU64::new(0),
            solo_ns: AtomicU64::new(0),
            #[cfg(test)]
            stalled: AtomicBool::new(false),
        });
        let mut handles = Vec::with_capacity(threads - 1);
        let started = Arc::new(AtomicUsize::new(0));
        for worker in 1..threads {
            let s = Arc::clone(&shared);
            let started = Arc::clone(&started);
            let h = std::thread::Builder::new().name(format!("jetrt-worker-{worker}")).spawn(move || {
                started.fetch_add(1, Ordering::Release);
                worker_loop(&s, worker)
            })?;
            handles.push(h);
        }
        // The threads' own start-up (its stack guard, its name) allocates:
        // done before the session exists, not during its first runs.
        while started.load(Ordering::Acquire) < threads - 1 {
            std::thread::yield_now();
        }
        Ok(ThreadPool { shared, handles, threads, busy: AtomicBool::new(false), start: Instant::now() })
    }
}

impl ThreadPool {
    fn since_start(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// Claims and runs tasks of `f` until none is left.
fn claim_tasks(s: &Shared, f: &(dyn Fn(usize, usize) + Sync), tasks: usize, worker: usize) {
    loop {
        let t = s.next.fetch_add(1, Ordering::Relaxed);
        if t >= tasks {
            break;
        }
        f(t, worker);
    }
}

/// Counts a worker in if the gate is open.
fn pass_gate(s: &Shared) -> bool {
    let mut g = s.gate.load(Ordering::Relaxed);
    while g & OPEN != 0 {
        match s.gate.compare_exchange_weak(g, g + 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => g = now,
        }
    }
    false
}

/// Waits until the epoch moves past `seen` (or shutdown): spins, yields,
/// then parks.
fn wait_for_job(s: &Shared, seen: u64) {
    let changed = || s.epoch.load(Ordering::Acquire) != seen || s.shutdown.load(Ordering::Acquire);
    for _ in 0..IDLE_SPINS {
        if changed() {
            return;
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    while start.elapsed() < IDLE_YIELD {
        if changed() {
            return;
        }
        std::thread::yield_now();
    }
    let mut guard = s.lock.lock().unwrap_or_else(|p| p.into_inner());
    s.sleepers.fetch_add(1, Ordering::SeqCst);
    while s.epoch.load(Ordering::SeqCst) == seen && !s.shutdown.load(Ordering::SeqCst) {
        guard = s.wake.wait(guard).unwrap_or_else(|p| p.into_inner());
    }
    s.sleepers.fetch_sub(1, Ordering::SeqCst);
}

fn worker_loop(s: &Shared, worker: usize) {
    let mut seen = 0u64;
    loop {
        wait_for_job(s, seen);
        if s.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = s.epoch.load(Ordering::Acquire);
        #[cfg(test)]
        while s.stalled.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if !pass_gate(s) {
            continue; // the caller finished without us
        }
        // SAFETY: inside the gate the job is not written (see `run`), and
        // its closure outlives our stay.
        let (f, tasks) = unsafe {
            let job = &*s.job.get();
            (job.f, job.tasks)
        };
        if let Some(JobPtr(f)) = f {
            // SAFETY: as above.
            let f = unsafe { &*f };
            if catch_unwind(AssertUnwindSafe(|| claim_tasks(s, f, tasks, worker))).is_err() {
                s.panicked.store(true, Ordering::Release);
            }
        }
        s.gate.fetch_sub(1, Ordering::Release);
    }
}

impl Parallel for ThreadPool {
    fn workers(&self) -> usize {
        self.threads
    }

    fn run(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        let s = &*self.shared;
        let solo = self.threads == 1 || tasks <= 1 || self.since_start() < s.solo_until.load(Ordering::Relaxed);
        if solo || self.busy.swap(true, Ordering::Acquire) {
            for t in 0..tasks {
                f(t, 0);
            }
            return;
        }
        // SAFETY: only the lifetime changes. Workers use the pointer only
        // inside the gate, and this function closes the gate and waits for
        // it to empty before returning; the job is cleared before then.
        let job = JobPtr(unsafe { std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), &'static Task>(f) } as *const Task);
        // SAFETY: the gate is closed and empty (the previous call left it
        // so), so no worker reads the job while it is written.
        unsafe { *s.job.get() = Job { f: Some(job), tasks } };
        s.next.store(0, Ordering::Relaxed);
        s.gate.store(OPEN, Ordering::Release);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|p| p.into_inner());
            s.wake.notify_all();
        }
        let working = self.since_start();
        let caller = catch_unwind(AssertUnwindSafe(|| claim_tasks(s, f, tasks, 0)));
        // No task left to claim: close the gate, wait for those inside.
        let mut inside = s.gate.fetch_and(!OPEN, Ordering::AcqRel) & !OPEN;
        let mut spins = 0;
        let mut waiting = None;
        let mut stalled = false;
        while inside != 0 {
            if spins < WAIT_SPINS {
                std::hint::spin_loop();
                spins += 1;
            } else {
                let now = self.since_start();
                let since = *waiting.get_or_insert(now);
                // A helper still busy long after the caller ran out of
                // work was descheduled mid-task (its core is taken):
                // calls run on the caller alone for a while, then try
                // again.
                let worked = since.saturating_sub(working);
                if now - since > STALL_NS.max(worked / 2) && !stalled {
                    stalled = true;
                    // Each stall in a row doubles the time alone.
                    let solo = (s.solo_ns.load(Ordering::Relaxed) * 2).clamp(SOLO_MIN_NS, SOLO_MAX_NS);
                    s.solo_ns.store(solo, Ordering::Relaxed);
                    s.solo_until.store(now + solo, Ordering::Relaxed);
                }
                std::thread::yield_now();
            }
            inside = s.gate.load(Ordering::Acquire);
        }
        if !stalled {
            // The helpers kept up: the next stall starts from the shortest.
            s.solo_ns.store(0, Ordering::Relaxed);
        }
        // SAFETY: the gate is closed and empty.
        unsafe { (*s.job.get()).f = None };
        self.busy.store(false, Ordering::Release);
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
            let _guard = self.shared.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.shutdown.store(true, Ordering::SeqCst);
            self.shared.epoch.fetch_add(1, Ordering::SeqCst);
            self.shared.wake.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// The threads this process may really run on: its CPU affinity mask
/// (`taskset`, `sched_setaffinity`, a container's cpuset) and its cgroup
/// CPU quota (`docker --cpus`, a systemd `CPUQuota=`), whichever is
/// smaller, as the standard library reads them on Linux; at least 1. Not
/// the number of online cores: on a board where the camera pipeline is
/// pinned to two of six cores, the model gets four.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_on_a_valid_worker() {
        let pool = ThreadPool::new(3).unwrap();
        for tasks in [0, 1, 2, 7, 100] {
            for _ in 0..50 {
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                let busy: Vec<AtomicBool> = (0..3).map(|_| AtomicBool::new(false)).collect();
                pool.run(tasks, &|t, w| {
                    assert!(w < 3);
                    assert!(!busy[w].swap(true, Ordering::SeqCst), "worker {w} runs two tasks at once");
                    hits[t].fetch_add(1, Ordering::Relaxed);
                    busy[w].store(false, Ordering::SeqCst);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
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

    /// A call does not wait for a worker that never started it: with the
    /// workers stalled before the gate (as threads whose core was taken
    /// are), the caller does every task and returns; the old pool hung
    /// here until each worker had checked in.
    #[test]
    fn the_caller_finishes_alone_when_no_worker_comes() {
        let pool = ThreadPool::new(4).unwrap();
        pool.shared.stalled.store(true, Ordering::Release);
        let count = AtomicUsize::new(0);
        for _ in 0..100 {
            pool.run(16, &|_, w| {
                assert_eq!(w, 0, "only the caller runs while the workers are stalled");
                count.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(count.load(Ordering::Relaxed), 1600);
        // Released, the late workers find the gate closed and touch nothing.
        pool.shared.stalled.store(false, Ordering::Release);
        let count = AtomicUsize::new(0);
        pool.run(16, &|_, _| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 16);
    }

    /// Calls after parking wake the workers again.
    #[test]
    fn parked_workers_help_again() {
        let pool = ThreadPool::new(2).unwrap();
        std::thread::sleep(IDLE_YIELD * 20);
        let helped = AtomicBool::new(false);
        // Until a deadline, not a number of calls: a worker woken late
        // (a loaded host) makes the pool run alone for a while, and calls
        // of small tasks can all fit in that while.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            pool.run(64, &|_, w| {
                if w == 1 {
                    helped.store(true, Ordering::Relaxed);
                }
                std::hint::black_box((0..std::hint::black_box(2000u64)).sum::<u64>());
            });
            if helped.load(Ordering::Relaxed) {
                break;
            }
        }
        assert!(helped.load(Ordering::Relaxed), "the worker never joined a call");
    }
}
