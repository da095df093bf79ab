//! Times one GEMM shape per variant, on 1 and 2 threads:
//! `cargo run --release -p jetrt-kernels --example gemm_probe -- M K N [reps]`.
use jetrt_kernels::cpu::gemm::{gemm, scratch_floats_for, BSource, Epilogue, MatRef};
use jetrt_kernels::cpu::Isa;
use jetrt_kernels::{Parallel, Scratch, Serial};

mod common;
use common::Threads;

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("a number")).collect();
    let (m, k, n, reps) = (a[0], a[1], a[2], a.get(3).copied().unwrap_or(20));
    let av = vec![0.5f32; m * k];
    let bv = vec![0.25f32; k * n];
    let mut c = vec![0.0f32; m * n];
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        println!("{} ukr peak: {:.1} GFLOP/s", isa.name(), jetrt_kernels::cpu::gemm::probe_ukr_gflops(isa, 256, 200_000));
        for threads in [1, 2] {
            let scratch = Scratch::new(threads, scratch_floats_for(m, k, n));
            let par: &dyn Parallel = if threads == 1 { &Serial } else { &Threads(threads) };
            // The fastest call: on a shared host the mean moves by a third
            // from one run to the next, the minimum much less.
            let mut s = f64::INFINITY;
            for _ in 0..reps {
                let t = std::time::Instant::now();
                gemm(
                    isa,
                    par,
                    &scratch,
                    MatRef::row_major(&av, m, k),
                    BSource::Mat(MatRef::row_major(&bv, k, n)),
                    &Epilogue::plain(),
                    &mut c,
                );
                s = s.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{}: {m}x{k}x{n} on {threads} threads: {:.3} ms (fastest of {reps}), {:.1} GFLOP/s",
                isa.name(),
                s * 1e3,
                2.0 * (m * k * n) as f64 / s / 1e9
            );
        }
    }
}
