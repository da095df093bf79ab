//! GEMM and convolution throughput per ISA variant.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use jetrt_kernels::cpu::conv::{conv2d, out_len, Conv2dShape};
use jetrt_kernels::cpu::gemm::{gemm, scratch_floats, BSource, Epilogue, MatRef};
use jetrt_kernels::cpu::{Activation, Isa};
use jetrt_kernels::{Scratch, Serial};

fn bench_gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    for &(m, k, n) in &[(64, 576, 3136), (256, 2304, 196), (1000, 2048, 1), (512, 512, 512)] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut out = vec![0.0f32; m * n];
        let scratch = Scratch::new(1, scratch_floats());
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            g.bench_with_input(BenchmarkId::new(isa.name(), format!("{m}x{k}x{n}")), &(), |bch, _| {
                bch.iter(|| {
                    gemm(
                        isa,
                        &Serial,
                        &scratch,
                        MatRef::row_major(&a, m, k),
                        BSource::Mat(MatRef::row_major(&b, k, n)),
                        &Epilogue::plain(),
                        &mut out,
                    )
                })
            });
        }
    }
    g.finish();
}

fn bench_conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d");
    let h = 56;
    let oh = out_len(h, 3, 1, 1, 1, 1, false).unwrap_or(h);
    let s = Conv2dShape {
        batch: 1,
        in_channels: 64,
        in_h: h,
        in_w: h,
        out_channels: 64,
        out_h: oh,
        out_w: oh,
        kernel_h: 3,
        kernel_w: 3,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 1,
        pad_left: 1,
        groups: 1,
    };
    let x = vec![0.5f32; 64 * h * h];
    let w = vec![0.1f32; 64 * 64 * 9];
    let mut y = vec![0.0f32; 64 * oh * oh];
    let scratch = Scratch::new(1, s.scratch_floats());
    g.throughput(Throughput::Elements(2 * s.macs()));
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        g.bench_function(BenchmarkId::new(isa.name(), "3x3_64x56x56"), |bch| {
            bch.iter(|| conv2d(isa, &Serial, &scratch, &s, &x, &w, None, Activation::Relu, &mut y))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_gemm, bench_conv);
criterion_main!(benches);
