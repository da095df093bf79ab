//! x86-64 AVX2 + FMA micro-kernels.

use super::gemm::{check_panel, Variant};
use std::arch::x86_64::*;

pub(crate) const AVX2_FMA: Variant = Variant { mr: 6, nr: 16, kc: 256, mc: 96, nc: 256, ukr: ukr_6x16, direct_a: true, dot };

fn ukr_6x16(kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], acc: &mut [f32; 128]) {
    check_panel(a, 6, kc, rs, cs);
    let b = &b[..kc * 16];
    // SAFETY: this variant is only selected when AVX2 and FMA are detected
    // (Isa::supported); the A panel lies inside `a` (checked above) and B
    // holds kc·16 floats.
    unsafe { ukr_6x16_avx2(kc, a.as_ptr(), rs, cs, b.as_ptr(), acc) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn ukr_6x16_avx2(kc: usize, mut a: *const f32, rs: usize, cs: usize, mut b: *const f32, acc: &mut [f32; 128]) {
    let mut c = [[_mm256_setzero_ps(); 2]; 6];
    let offs = [0, rs, 2 * rs, 3 * rs, 4 * rs, 5 * rs];
    for _ in 0..kc {
        // SAFETY: a advances cs and b 16 floats per step, kc steps in all;
        // row r of A is at a + r·rs: inside the slices checked by the caller.
        unsafe {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (r, cr) in c.iter_mut().enumerate() {
                let ar = _mm256_broadcast_ss(&*a.add(offs[r]));
                cr[0] = _mm256_fmadd_ps(ar, b0, cr[0]);
                cr[1] = _mm256_fmadd_ps(ar, b1, cr[1]);
            }
            a = a.add(cs);
            b = b.add(16);
        }
    }
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: rows r·16 .. r·16+16 lie inside the 128-float tile.
        unsafe {
            _mm256_storeu_ps(acc.as_mut_ptr().add(r * 16), cr[0]);
            _mm256_storeu_ps(acc.as_mut_ptr().add(r * 16 + 8), cr[1]);
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: selected only when AVX2 and FMA are detected; reads stay
    // inside the first n floats of both slices.
    unsafe { dot_avx2(&a[..n], &b[..n]) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads below): i + 32 ≤ n, resp. i + 8 ≤ n, before each load.
    while i + 32 <= n {
        unsafe {
            for (l, sl) in s.iter_mut().enumerate() {
                *sl = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8 * l)), _mm256_loadu_ps(pb.add(i + 8 * l)), *sl);
            }
        }
        i += 32;
    }
    while i + 8 <= n {
        unsafe {
            s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s[0]);
        }
        i += 8;
    }
    let v = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
    let mut lanes = [0.0f32; 8];
    // SAFETY: lanes holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
    let mut sum = lanes.iter().sum::<f32>();
    for j in i..n {
        sum += a[j] * b[j];
    }
    sum
}
