//! aarch64 NEON micro-kernels.

use super::gemm::{Variant, MAX_TILE};
use std::arch::aarch64::*;

// A is packed: the kernel loads 8 rows of one column as two vectors.
pub(crate) const NEON: Variant =
    Variant { mr: 8, nr: 12, kc: 256, mc: 96, nc: 240, ukr: ukr_8x12, direct_a: false, ukr_store: None, ukr_edge: None, dot, de2 };

/// `dst[i] = src[2 i]`, four values a time through `ld2` (which splits
/// eight values into even and odd), the tail one by one: the stride-2 rows
/// of im2col and of the depthwise bands, without the portable loop's
/// `memcpy` calls for its tail.
fn de2(src: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    assert!(src.len() + 1 >= 2 * n, "deinterleave2: {} values for {n}", src.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i + 4 <= n && 2 * i + 8 <= src.len() {
        // SAFETY: NEON is part of every aarch64 target; src[2i .. 2i + 8]
        // and dst[i .. i + 4] are in bounds (the loop condition).
        unsafe { vst1q_f32(d.add(i), vld2q_f32(s.add(2 * i)).0) };
        i += 4;
    }
    for (j, v) in dst.iter_mut().enumerate().skip(i) {
        *v = src[2 * j];
    }
}

fn ukr_8x12(kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], acc: &mut [f32; MAX_TILE]) {
    // Packed A only (direct_a is false): column k is a[8k .. 8k + 8].
    assert!(rs == 1 && cs == 8, "the NEON kernel reads packed A");
    let (a, b) = (&a[..kc * 8], &b[..kc * 12]);
    // SAFETY: NEON is part of every aarch64 target this variant is selected
    // on (Isa::supported), and the slices above hold kc·8 and kc·12 floats.
    unsafe { ukr_8x12_neon(kc, a.as_ptr(), b.as_ptr(), acc) }
}

#[target_feature(enable = "neon")]
unsafe fn ukr_8x12_neon(kc: usize, mut a: *const f32, mut b: *const f32, acc: &mut [f32; MAX_TILE]) {
    let z = vdupq_n_f32(0.0);
    // 8 rows × 3 vectors of 4 columns: 24 accumulators, 3 B and 2 A registers.
    let mut c = [[z; 3]; 8];
    for _ in 0..kc {
        // SAFETY: a advances 8 and b 12 floats per step, kc steps in all,
        // inside the slices checked by the caller.
        unsafe {
            let b0 = vld1q_f32(b);
            let b1 = vld1q_f32(b.add(4));
            let b2 = vld1q_f32(b.add(8));
            let a0 = vld1q_f32(a);
            let a1 = vld1q_f32(a.add(4));
            macro_rules! row {
                ($r:expr, $av:expr, $lane:expr) => {
                    c[$r][0] = vfmaq_laneq_f32::<$lane>(c[$r][0], b0, $av);
                    c[$r][1] = vfmaq_laneq_f32::<$lane>(c[$r][1], b1, $av);
                    c[$r][2] = vfmaq_laneq_f32::<$lane>(c[$r][2], b2, $av);
                };
            }
            row!(0, a0, 0);
            row!(1, a0, 1);
            row!(2, a0, 2);
            row!(3, a0, 3);
            row!(4, a1, 0);
            row!(5, a1, 1);
            row!(6, a1, 2);
            row!(7, a1, 3);
            a = a.add(8);
            b = b.add(12);
        }
    }
    for (r, cr) in c.iter().enumerate() {
        for (q, v) in cr.iter().enumerate() {
            // SAFETY: r·12 + q·4 + 4 ≤ 96 ≤ 128.
            unsafe { vst1q_f32(acc.as_mut_ptr().add(r * 12 + q * 4), *v) };
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: NEON is always present on aarch64 where this is selected; reads
    // stay inside the first n floats of both slices.
    unsafe { dot_neon(&a[..n], &b[..n]) }
}

#[target_feature(enable = "neon")]
unsafe fn dot_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    // SAFETY (all loads below): i + 16 ≤ n, resp. i + 4 ≤ n, before each load.
    while i + 16 <= n {
        unsafe {
            for (l, sl) in s.iter_mut().enumerate() {
                *sl = vfmaq_f32(*sl, vld1q_f32(pa.add(i + 4 * l)), vld1q_f32(pb.add(i + 4 * l)));
            }
        }
        i += 16;
    }
    while i + 4 <= n {
        unsafe {
            s[0] = vfmaq_f32(s[0], vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
        }
        i += 4;
    }
    let v = vaddq_f32(vaddq_f32(s[0], s[1]), vaddq_f32(s[2], s[3]));
    let mut sum = vaddvq_f32(v);
    for j in i..n {
        sum += a[j] * b[j];
    }
    sum
}

/// Int8 4 × 4 dot-product tile with the dot-product extension's `sdot`
/// (four i8 × i8 products summed into each i32 lane).
///
/// `vdotq_s32` is still unstable in Rust (rust-lang/rust#117224), so the
/// instruction is written as inline assembly.
///
/// Safety: see [`super::int8`]'s `QKernel`; needs the dotprod feature.
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn qdot_4x4_sdot(kp: usize, a: &[*const i8], w: &[*const i8], acc: &mut [i32; 16]) {
    let mut c = [[vdupq_n_s32(0); 4]; 4];
    let mut k = 0;
    while k < kp {
        // SAFETY: every pointer addresses kp bytes; k + 16 ≤ kp (kp is a
        // multiple of 32).
        unsafe {
            let av = [vld1q_s8(a[0].add(k)), vld1q_s8(a[1].add(k)), vld1q_s8(a[2].add(k)), vld1q_s8(a[3].add(k))];
            for j in 0..4 {
                let wv = vld1q_s8(w[j].add(k));
                for i in 0..4 {
                    std::arch::asm!(
                        "sdot {acc:v}.4s, {a:v}.16b, {w:v}.16b",
                        acc = inout(vreg) c[i][j],
                        a = in(vreg) av[i],
                        w = in(vreg) wv,
                        options(pure, nomem, nostack),
                    );
                }
            }
        }
        k += 16;
    }
    for i in 0..4 {
        for j in 0..4 {
            acc[i * 4 + j] = vaddvq_s32(c[i][j]);
        }
    }
}
