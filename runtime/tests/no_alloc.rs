//! `Session::run` allocates nothing: counted through a global allocator
//! over repeated runs, single- and multi-threaded.
//!
//! A test binary of its own with its own `main` (`harness = false`): the
//! allocator counts every thread of the process, and libtest's threads
//! (output capture, timers) would otherwise be counted too.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    run_allocates_nothing();
    shared_arena_runs_allocate_nothing();
    drift_monitor_allocates_nothing();
    let model = jetrt::Model::from_bytes(&common::small_model().to_bytes()).unwrap();
    let backend = model.session(jetrt::SessionOptions::default()).unwrap().backend();
    println!("no_alloc: Session::run allocated nothing in 100 runs with 1, 2 and 4 threads ({} backend)", backend.name());
    println!("no_alloc: two sessions taking turns in one SharedArena allocated nothing in 100 runs");
    println!("no_alloc: the drift monitor allocated nothing observing 300 inferences (window 50)");
}

fn shared_arena_runs_allocate_nothing() {
    let a = jetrt::Model::from_bytes(&common::small_model_seeded(0, 0).to_bytes()).unwrap();
    let b = jetrt::Model::from_bytes(&common::small_model_seeded(3, 1024).to_bytes()).unwrap();
    let arena = jetrt::SharedArena::for_models(&[&a, &b]).unwrap();
    let opts = jetrt::SessionOptions::default().with_threads(2);
    let mut sessions =
        [jetrt::Session::with_arena(&a, &arena, opts.clone()).unwrap(), jetrt::Session::with_arena(&b, &arena, opts).unwrap()];
    let x = common::values(192, 5);
    let mut probs = vec![0.0f32; 10];
    let mut logits = vec![0.0f32; 10];
    let mut once = |s: &mut jetrt::Session| {
        s.run(&[jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)], &mut [jetrt::TensorMut::f32(&mut probs), jetrt::TensorMut::f32(&mut logits)])
            .unwrap();
        s.set_input(0, jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)).unwrap();
        s.run_loaded().unwrap();
        assert!((s.output(0).unwrap().as_slice::<f32>().unwrap().iter().sum::<f32>() - 1.0).abs() < 1e-5);
    };
    for s in &mut sessions {
        once(s);
    }
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..50 {
        for s in &mut sessions {
            once(s);
        }
    }
    COUNTING.store(false, Ordering::SeqCst);
    let n = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(n, 0, "{n} allocations during 100 runs in a shared arena");
}

fn run_allocates_nothing() {
    let model = jetrt::Model::from_bytes(&common::small_model().to_bytes()).unwrap();
    let x = common::values(192, 5);
    for threads in [1, 2, 4] {
        let mut s = model.session(jetrt::SessionOptions::default().with_threads(threads)).unwrap();
        let mut probs = vec![0.0f32; 10];
        let mut logits = vec![0.0f32; 10];
        let mut step_seconds = vec![0.0f64; model.steps().len()];
        // Warm up: first calls may touch lazily initialised state.
        for _ in 0..3 {
            s.run(
                &[jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)],
                &mut [jetrt::TensorMut::f32(&mut probs), jetrt::TensorMut::f32(&mut logits)],
            )
            .unwrap();
        }
        ALLOCS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..50 {
            s.run(
                &[jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)],
                &mut [jetrt::TensorMut::f32(&mut probs), jetrt::TensorMut::f32(&mut logits)],
            )
            .unwrap();
            s.run_profiled(&mut step_seconds).unwrap();
        }
        COUNTING.store(false, Ordering::SeqCst);
        let n = ALLOCS.load(Ordering::SeqCst);
        assert_eq!(n, 0, "{n} allocations during 100 runs with {threads} threads");
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

/// A small model with a drift reference built from its own runs.
fn monitored_model() -> jetrt::Model {
    let mut fb = common::small_model();
    let model = jetrt::Model::from_bytes(&fb.to_bytes()).unwrap();
    let mut s = model.session(jetrt::SessionOptions::default().with_threads(1)).unwrap();
    let mut b = jetrt::host::ReferenceBuilder::new(&model);
    for k in 0..40 {
        s.set_input(0, jetrt::TensorRef::f32(&[1, 3, 8, 8], &common::values(192, 1000 + k))).unwrap();
        s.run_loaded().unwrap();
        b.add(&s).unwrap();
    }
    fb.drift = Some(b.finish());
    jetrt::Model::from_bytes(&fb.to_bytes()).unwrap()
}

fn drift_monitor_allocates_nothing() {
    let model = monitored_model();
    let mut s = model.session(jetrt::SessionOptions::default().with_threads(2)).unwrap();
    let mut m = jetrt::monitor::Monitor::new(&model, jetrt::monitor::MonitorOptions { window: 50, ..Default::default() }).unwrap();
    let inputs: Vec<Vec<f32>> = (0..300).map(|k| common::values(192, 5000 + k)).collect();
    s.set_input(0, jetrt::TensorRef::f32(&[1, 3, 8, 8], &inputs[0])).unwrap();
    s.run_loaded().unwrap();
    m.observe(&s).unwrap();
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for x in &inputs {
        s.set_input(0, jetrt::TensorRef::f32(&[1, 3, 8, 8], x)).unwrap();
        s.run_loaded().unwrap();
        m.observe(&s).unwrap();
    }
    COUNTING.store(false, Ordering::SeqCst);
    let n = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(n, 0, "{n} allocations while the monitor watched 300 inferences");
    assert!(m.ready() && m.samples() == 301);
}
