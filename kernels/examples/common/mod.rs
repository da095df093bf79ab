//! What the probes share.
use jetrt_kernels::Parallel;

/// Scoped threads, dynamically claiming tasks: good enough to time
/// multi-millisecond calls.
pub struct Threads(pub usize);

impl Parallel for Threads {
    fn workers(&self) -> usize {
        self.0
    }
    fn run(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for w in 0..self.0 {
                let next = &next;
                s.spawn(move || loop {
                    let t = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if t >= tasks {
                        break;
                    }
                    f(t, w);
                });
            }
        });
    }
}
