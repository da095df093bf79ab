//! `Session::with_arena`: models of a pipeline take turns in one arena, the
//! size of the largest. Outputs equal those of sessions with their own
//! arenas, and a session never reads another session's tensors: an output
//! or a run after another session used the arena is an error.

mod common;

use jetrt::{Backend, Error, Model, Session, SessionOptions, SharedArena, TensorMut, TensorRef};

fn models() -> (Model, Model) {
    let a = Model::from_bytes(&common::small_model_seeded(0, 0).to_bytes()).unwrap();
    let b = Model::from_bytes(&common::small_model_seeded(7, 4096).to_bytes()).unwrap();
    (a, b)
}

fn cpu() -> SessionOptions {
    SessionOptions::default().with_backend(Backend::Cpu).with_threads(2)
}

fn run(s: &mut Session, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (mut probs, mut logits) = (vec![0.0f32; 10], vec![0.0f32; 10]);
    s.run(&[TensorRef::f32(&[1, 3, 8, 8], x)], &mut [TensorMut::f32(&mut probs), TensorMut::f32(&mut logits)]).unwrap();
    (probs, logits)
}

fn inputs(k: u32) -> Vec<f32> {
    common::values(192, 100 + k)
}

#[test]
fn a_pipeline_in_one_arena_gives_the_outputs_of_separate_arenas() {
    let (a, b) = models();
    assert!(b.info().memory.arena_bytes > a.info().memory.arena_bytes);
    let arena = SharedArena::for_models(&[&a, &b]).unwrap();
    assert_eq!(arena.bytes(), b.info().memory.arena_bytes, "the largest plan, not the sum");
    let mut sa = Session::with_arena(&a, &arena, cpu()).unwrap();
    let mut sb = Session::with_arena(&b, &arena, cpu()).unwrap();
    assert_eq!(arena.sessions(), 2);
    assert!(sa.info().shared_arena && sb.info().shared_arena);
    assert_eq!(sa.info().arena_bytes, b.info().memory.arena_bytes);
    let mut own_a = a.session(cpu()).unwrap();
    let mut own_b = b.session(cpu()).unwrap();
    assert!(!own_a.info().shared_arena);
    for k in 0..6 {
        let x = inputs(k);
        let (pa, la) = run(&mut sa, &x);
        // b reads a's output, as the second model of a pipeline does.
        let mut xb = x.clone();
        xb[..10].copy_from_slice(&pa);
        let (pb, lb) = run(&mut sb, &xb);
        assert_eq!((pa.clone(), la), run(&mut own_a, &x), "model a, sample {k}");
        assert_eq!((pb, lb), run(&mut own_b, &xb), "model b, sample {k}");
        assert_ne!(pa, run(&mut own_b, &x).0, "the two models differ");
    }
    drop(sb);
    assert_eq!(arena.sessions(), 1);
}

#[test]
fn reading_after_another_session_used_the_arena_is_an_error() {
    let (a, b) = models();
    let arena = SharedArena::for_models(&[&a, &b]).unwrap();
    let mut sa = Session::with_arena(&a, &arena, cpu()).unwrap();
    let mut sb = Session::with_arena(&b, &arena, cpu()).unwrap();
    let x = inputs(1);
    let (pa, _) = run(&mut sa, &x);
    assert_eq!(sa.output(0).unwrap().as_slice::<f32>().unwrap(), pa.as_slice(), "in place until another session runs");
    run(&mut sb, &x);
    let e = sa.output(0).unwrap_err();
    assert!(matches!(e, Error::ArenaReused { .. }), "{e:?}");
    assert!(e.to_string().contains("output \"probs\" was overwritten"), "{e}");
    // Inputs set, then another session runs: a's inputs are gone.
    sa.set_input(0, TensorRef::f32(&[1, 3, 8, 8], &x)).unwrap();
    run(&mut sb, &x);
    let e = sa.run_loaded().unwrap_err();
    assert!(e.to_string().contains("set this session's inputs again"), "{e}");
    // b takes the arena by setting an input: a's run must not use it.
    sa.set_input(0, TensorRef::f32(&[1, 3, 8, 8], &x)).unwrap();
    sb.set_input(0, TensorRef::f32(&[1, 3, 8, 8], &x)).unwrap();
    assert!(matches!(sa.run_loaded(), Err(Error::ArenaReused { .. })));
    // Set again: it runs, and gives what it gave before.
    sa.set_input(0, TensorRef::f32(&[1, 3, 8, 8], &x)).unwrap();
    sa.run_loaded().unwrap();
    assert_eq!(sa.output(0).unwrap().as_slice::<f32>().unwrap(), pa.as_slice());
    // A shared session must set its inputs after taking the arena.
    run(&mut sb, &x);
    let mut fresh = Session::with_arena(&a, &arena, cpu()).unwrap();
    let e = fresh.run_loaded().unwrap_err();
    assert!(e.to_string().contains("set this session's inputs again"), "{e}");
}

#[test]
fn an_arena_too_small_for_the_plan_is_refused() {
    let (a, b) = models();
    let arena = SharedArena::for_models(&[&a]).unwrap();
    let e = Session::with_arena(&b, &arena, cpu()).unwrap_err();
    assert!(
        matches!(e, Error::ArenaTooSmall { needed, available } if needed == b.info().memory.arena_bytes && available == a.info().memory.arena_bytes),
        "{e:?}"
    );
    assert!(e.to_string().contains("SharedArena::for_models"), "{e}");
    assert!(matches!(a.session(cpu()).unwrap().output(5), Err(Error::OutputIndex { index: 5, count: 2 })));
}

#[cfg(feature = "cuda")]
#[test]
fn on_a_gpu_the_device_arena_and_the_weights_are_shared() {
    let (a, b) = models();
    let opts = SessionOptions::default().with_backend(Backend::Cuda).with_threads(1);
    let arena = SharedArena::for_models(&[&a, &b]).unwrap();
    let Ok(gpu) = jetrt::first_usable_gpu() else {
        // No GPU: the GPU session is refused and leaves the arena as it was.
        let e = Session::with_arena(&a, &arena, opts).unwrap_err();
        assert!(matches!(e, Error::BackendUnavailable { backend: "cuda", .. }), "{e:?}");
        let mut sa = Session::with_arena(&a, &arena, cpu()).unwrap();
        assert_eq!(run(&mut sa, &inputs(0)), run(&mut a.session(cpu()).unwrap(), &inputs(0)));
        eprintln!("no usable GPU here: the shared device arena runs in tools/gpu-check.sh's test part on a GPU machine");
        return;
    };
    eprintln!("GPU {}: shared device arena", gpu.name);
    let mut sa = Session::with_arena(&a, &arena, opts.clone()).unwrap();
    let mut sb = Session::with_arena(&b, &arena, opts.clone()).unwrap();
    let mut own_a = a.session(cpu()).unwrap();
    let mut own_b = b.session(cpu()).unwrap();
    for k in 0..4 {
        let x = inputs(k);
        for (s, own) in [(&mut sa, &mut own_a), (&mut sb, &mut own_b)] {
            let (p, l) = run(s, &x);
            let (cp, cl) = run(own, &x);
            for (g, c) in p.iter().zip(&cp).chain(l.iter().zip(&cl)) {
                assert!((g - c).abs() <= 1e-4 * c.abs().max(1.0), "gpu {g} vs cpu {c}");
            }
        }
    }
    // A second session of the same model reads the same weights.
    let before = sa.info().gpu_memory.unwrap().in_use_bytes;
    let second = Session::with_arena(&a, &arena, opts).unwrap();
    let after = second.info().gpu_memory.unwrap().in_use_bytes;
    if let (Some(before), Some(after)) = (before, after) {
        eprintln!("second session of one model: {} B more in use on the GPU", after.saturating_sub(before));
    }
}
