//! Times a one-step Gemm model through a real session (its thread pool):
//! `cargo run --release -p jetrt --example gemm_step_probe -- M K N [reps]`.
use jetrt::{DType, Model, SessionOptions};
use jetrt_format::op::{Activation, Gemm, Op};
use jetrt_format::{FileBuilder, StepDef, StorageDef, TensorDef};

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("a number")).collect();
    let (m, k, n, reps) = (a[0], a[1], a[2], a.get(3).copied().unwrap_or(20));
    let mut fb = FileBuilder::default();
    let w: Vec<u8> = (0..k * n).flat_map(|i| ((i % 7) as f32 * 0.1).to_le_bytes()).collect();
    let off = fb.add_weight(&w);
    fb.tensors.push(TensorDef { name: "x".into(), dtype: DType::F32, shape: vec![m, k], storage: StorageDef::Arena { offset: 0 } });
    fb.tensors.push(TensorDef { name: "w".into(), dtype: DType::F32, shape: vec![k, n], storage: StorageDef::Weights { offset: off } });
    let y_off = ((m * k * 4) as u64).next_multiple_of(64);
    fb.tensors.push(TensorDef { name: "y".into(), dtype: DType::F32, shape: vec![m, n], storage: StorageDef::Arena { offset: y_off } });
    fb.arena_bytes = y_off + (m * n * 4) as u64;
    let gemm = Gemm { trans_a: false, trans_b: false, alpha: 1.0, beta: 1.0, act: Activation::None };
    fb.steps.push(StepDef { op: Op::Gemm(gemm), inputs: vec![0, 1], outputs: vec![2] });
    fb.inputs = vec![0];
    fb.outputs = vec![2];
    let model = Model::from_bytes(&fb.to_bytes()).expect("valid model");
    for threads in [1, 2] {
        let mut s = model.session(SessionOptions::default().with_threads(threads)).expect("session");
        s.run_loaded().expect("run");
        let t = std::time::Instant::now();
        for _ in 0..reps {
            s.run_loaded().expect("run");
        }
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        println!("{m}x{k}x{n} on {threads} threads: {:.3} ms, {:.1} GFLOP/s", secs * 1e3, 2.0 * (m * k * n) as f64 / secs / 1e9);
    }
}
