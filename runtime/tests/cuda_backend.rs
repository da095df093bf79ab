//! The CUDA backend as a user meets it: on a machine without a GPU (CI),
//! `Backend::Cuda` is a clear error and `Backend::Auto` runs on the CPU; on
//! a machine with one, the GPU session gives the CPU's outputs.
#![cfg(feature = "cuda")]

mod common;

use jetrt::{Backend, Error, Model, SessionOptions, TensorMut, TensorRef};

fn run(model: &Model, backend: Backend) -> Result<(Backend, Vec<f32>, Vec<f32>), Error> {
    let mut s = model.session(SessionOptions::default().with_backend(backend).with_threads(1))?;
    let x = common::values(192, 5);
    let (mut probs, mut logits) = (vec![0.0f32; 10], vec![0.0f32; 10]);
    s.run(&[TensorRef::f32(&[1, 3, 8, 8], &x)], &mut [TensorMut::f32(&mut probs), TensorMut::f32(&mut logits)])?;
    Ok((s.backend(), probs, logits))
}

#[test]
fn cuda_runs_where_a_gpu_works_and_says_why_not_elsewhere() {
    let model = Model::from_bytes(&common::small_model().to_bytes()).unwrap();
    let (cpu_backend, cpu_probs, cpu_logits) = run(&model, Backend::Cpu).unwrap();
    assert_eq!(cpu_backend, Backend::Cpu);
    match jetrt::first_usable_gpu() {
        Err(why) => {
            eprintln!("no usable GPU here ({why}): checking the errors");
            match run(&model, Backend::Cuda) {
                Err(Error::BackendUnavailable { backend: "cuda", reason }) => {
                    assert_eq!(reason, why, "the session's error is the probe's");
                    let msg = Error::BackendUnavailable { backend: "cuda", reason }.to_string();
                    assert!(msg.starts_with("backend cuda is not available: "), "{msg}");
                }
                other => panic!("expected BackendUnavailable, got {:?}", other.map(|r| r.0)),
            }
            let (auto, probs, _) = run(&model, Backend::Auto).unwrap();
            assert_eq!(auto, Backend::Cpu, "auto falls back to the CPU");
            assert_eq!(probs, cpu_probs);
        }
        Ok(gpu) => {
            eprintln!("GPU {} (sm_{}): comparing with the CPU", gpu.name, gpu.arch());
            for backend in [Backend::Cuda, Backend::Auto] {
                let (b, probs, logits) = run(&model, backend).unwrap();
                assert_eq!(b, Backend::Cuda);
                for (g, c) in logits.iter().zip(&cpu_logits).chain(probs.iter().zip(&cpu_probs)) {
                    assert!((g - c).abs() <= 1e-4 * c.abs().max(1.0), "gpu {g} vs cpu {c}");
                }
            }
        }
    }
}

#[test]
fn no_driver_library_is_named_in_the_error() {
    // Without libcuda the message says which library is missing and where
    // it was looked for; with a driver the probe lists the GPUs.
    match jetrt::probe_gpus() {
        Err(e) if e.contains("libcuda") => assert!(e.contains("libcuda.so.1") && e.contains("LD_LIBRARY_PATH"), "{e}"),
        Err(e) => eprintln!("driver present but unusable: {e}"),
        Ok(gpus) => assert!(!gpus.is_empty()),
    }
}
