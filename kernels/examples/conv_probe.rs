//! Times one convolution per variant:
//! `cargo run --release -p jetrt-kernels --example conv_probe -- C H W M K STRIDE PAD [reps [groups]] [--isa NAME] [--threads N]`
//! (groups = C with M = C: a depthwise convolution; `--isa avx512` times one variant;
//! `--threads 2` on two scoped threads instead of the calling one).
//! A 3×3 stride-1 convolution is timed both ways, Winograd and direct.
//! Reports the fastest call: on a shared host the mean moves by a third between runs.
use jetrt_kernels::cpu::conv::{conv2d, out_len, Conv2dShape};
use jetrt_kernels::cpu::{Activation, Isa};
use jetrt_kernels::{Parallel, Scratch, Serial};

mod common;
use common::Threads;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = args.iter().position(|a| a == "--isa").map(|i| args.get(i + 1).expect("--isa NAME").clone());
    let way = args.iter().position(|a| a == "--way").map(|i| args.get(i + 1).expect("--way winograd|direct").clone());
    let threads: usize =
        args.iter().position(|a| a == "--threads").map_or(1, |i| args.get(i + 1).and_then(|t| t.parse().ok()).expect("--threads N"));
    let par: &dyn Parallel = if threads > 1 { &Threads(threads) } else { &Serial };
    let a: Vec<usize> = args.iter().take_while(|a| !a.starts_with("--")).map(|s| s.parse().expect("a number")).collect();
    let (c, h, w, m, k, st, p) = (a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
    let reps = a.get(7).copied().unwrap_or(20);
    let groups = a.get(8).copied().unwrap_or(1);
    let (oh, ow) = (out_len(h, k, st, 1, p, p, false).expect("fits"), out_len(w, k, st, 1, p, p, false).expect("fits"));
    let s = Conv2dShape {
        batch: 1,
        in_channels: c,
        in_h: h,
        in_w: w,
        out_channels: m,
        out_h: oh,
        out_w: ow,
        kernel_h: k,
        kernel_w: k,
        stride_h: st,
        stride_w: st,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: p,
        pad_left: p,
        groups,
    };
    let x = vec![0.5f32; c * h * w];
    let wt = vec![0.1f32; m * (c / groups) * k * k];
    let b = vec![0.0f32; m];
    let mut y = vec![0.0f32; m * oh * ow];
    // Without a shared scratch, conv2d computes directly.
    let direct = Scratch::new(threads, s.scratch_floats());
    let shared = Scratch::with_shared(threads, s.scratch_floats(), s.shared_scratch_floats());
    let ways: &[(&str, &Scratch)] =
        if s.shared_scratch_floats() > 0 { &[("winograd", &shared), ("direct", &direct)] } else { &[("", &direct)] };
    for isa in Isa::ALL.into_iter().filter(|i| i.supported() && only.as_deref().is_none_or(|o| o == i.name())) {
        for &(way, scratch) in ways.iter().filter(|(w, _)| way.as_deref().is_none_or(|o| o == *w)) {
            conv2d(isa, par, scratch, &s, &x, &wt, Some(&b), Activation::Relu, &mut y);
            let mut secs = f64::INFINITY;
            for _ in 0..reps {
                let t = std::time::Instant::now();
                conv2d(isa, par, scratch, &s, &x, &wt, Some(&b), Activation::Relu, &mut y);
                secs = secs.min(t.elapsed().as_secs_f64());
            }
            let rate = 2.0 * s.macs() as f64 / secs / 1e9;
            println!(
                "{} {way}: {:?} on {threads} threads: {:.3} ms (fastest of {reps}), {rate:.1} GFLOP/s (direct-equivalent)",
                isa.name(),
                (c, h, w, m, k, st, p),
                secs * 1e3
            );
        }
    }
}
