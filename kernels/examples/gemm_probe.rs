//! Times one GEMM shape per variant: `cargo run --release -p jetrt-kernels --example gemm_probe -- M K N [reps]`.
use jetrt_kernels::cpu::gemm::{gemm, scratch_floats, BSource, Epilogue, MatRef};
use jetrt_kernels::cpu::Isa;
use jetrt_kernels::{Scratch, Serial};

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("a number")).collect();
    let (m, k, n, reps) = (a[0], a[1], a[2], a.get(3).copied().unwrap_or(20));
    let av = vec![0.5f32; m * k];
    let bv = vec![0.25f32; k * n];
    let mut c = vec![0.0f32; m * n];
    let scratch = Scratch::new(1, scratch_floats());
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        println!("{} ukr peak: {:.1} GFLOP/s", isa.name(), jetrt_kernels::cpu::gemm::probe_ukr_gflops(isa, 256, 200_000));
        let t = std::time::Instant::now();
        for _ in 0..reps {
            gemm(
                isa,
                &Serial,
                &scratch,
                MatRef::row_major(&av, m, k),
                BSource::Mat(MatRef::row_major(&bv, k, n)),
                &Epilogue::plain(),
                &mut c,
            );
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!("{}: {m}x{k}x{n}: {:.3} ms, {:.1} GFLOP/s", isa.name(), s * 1e3, 2.0 * (m * k * n) as f64 / s / 1e9);
    }
}
