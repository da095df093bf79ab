//! aarch64 NEON micro-kernels.

use super::gemm::{check_panel, Variant, MAX_TILE};
use std::arch::aarch64::*;

// A is read where it lies (a weight matrix, rows contiguous), as on x86:
// packing it cost one pass over the weights per block of columns, most of
// the time of layers with few output pixels (7×7 maps). Partial panels and
// A that is not in place are packed; the kernel takes both.
pub(crate) const NEON: Variant = Variant {
    mr: 8,
    nr: 12,
    kc: 256,
    mc: 96,
    nc: 240,
    ukr: ukr_8x12,
    direct_a: true,
    ukr_store: None,
    ukr_edge: None,
    ukr_narrow: None,
    dot,
    de2,
};

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
    check_panel(a, 8, kc, rs, cs);
    let b = &b[..kc * 12];
    // SAFETY: NEON is part of every aarch64 target this variant is selected
    // on (Isa::supported); the A panel lies inside `a` (checked above) and
    // B holds kc·12 floats.
    unsafe {
        if rs == 1 && cs == 8 {
            ukr_8x12_packed(kc, a.as_ptr(), b.as_ptr(), acc)
        } else {
            ukr_8x12_strided(kc, a.as_ptr(), rs, cs, b.as_ptr(), acc)
        }
    }
}

/// Packed A: column k is `a[8k .. 8k + 8]`, two vectors, multiplied by
/// element (`fmla v.4s, v.4s, v.s[lane]`).
#[target_feature(enable = "neon")]
unsafe fn ukr_8x12_packed(kc: usize, mut a: *const f32, mut b: *const f32, acc: &mut [f32; MAX_TILE]) {
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
    store_8x12(&c, acc);
}

/// A read in place: row r of column k is `a[r·rs + k·cs]`, one `ld1r`
/// (load and broadcast) per row and column. 8 broadcasts and 3 B loads
/// per 24 `fmla`: 11 loads in the shadow of 12 cycles of two FMA pipes.
#[target_feature(enable = "neon")]
unsafe fn ukr_8x12_strided(kc: usize, mut a: *const f32, rs: usize, cs: usize, mut b: *const f32, acc: &mut [f32; MAX_TILE]) {
    let z = vdupq_n_f32(0.0);
    let mut c = [[z; 3]; 8];
    let offs = [0, rs, 2 * rs, 3 * rs, 4 * rs, 5 * rs, 6 * rs, 7 * rs];
    for _ in 0..kc {
        // SAFETY: a advances cs and b 12 floats per step, kc steps in all;
        // row r of A is at a + r·rs: inside the slices checked by the caller.
        unsafe {
            let b0 = vld1q_f32(b);
            let b1 = vld1q_f32(b.add(4));
            let b2 = vld1q_f32(b.add(8));
            for (r, cr) in c.iter_mut().enumerate() {
                let ar = vld1q_dup_f32(a.add(offs[r]));
                cr[0] = vfmaq_f32(cr[0], b0, ar);
                cr[1] = vfmaq_f32(cr[1], b1, ar);
                cr[2] = vfmaq_f32(cr[2], b2, ar);
            }
            a = a.add(cs);
            b = b.add(12);
        }
    }
    store_8x12(&c, acc);
}

#[inline(always)]
fn store_8x12(c: &[[float32x4_t; 3]; 8], acc: &mut [f32; MAX_TILE]) {
    for (r, cr) in c.iter().enumerate() {
        for (q, v) in cr.iter().enumerate() {
            // SAFETY: r·12 + q·4 + 4 ≤ 96 ≤ MAX_TILE.
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
    // Fixed arrays: the loop indexes them without bounds checks.
    let (a, w) = (rows4(a), rows4(w));
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

/// The 4 × 4 transpose of `r` (rows to columns): pairs of lanes by
/// `trn1`/`trn2`, then pairs of pairs by their 64-bit halves.
#[inline(always)]
fn transpose_4x4(r: [float32x4_t; 4]) -> [float32x4_t; 4] {
    // SAFETY: NEON is part of every aarch64 target.
    unsafe {
        let (t0, t1) = (vtrn1q_f32(r[0], r[1]), vtrn2q_f32(r[0], r[1]));
        let (t2, t3) = (vtrn1q_f32(r[2], r[3]), vtrn2q_f32(r[2], r[3]));
        let d = |v: float32x4_t| vreinterpretq_f64_f32(v);
        let f = |v: float64x2_t| vreinterpretq_f32_f64(v);
        [f(vtrn1q_f64(d(t0), d(t2))), f(vtrn1q_f64(d(t1), d(t3))), f(vtrn2q_f64(d(t0), d(t2))), f(vtrn2q_f64(d(t1), d(t3)))]
    }
}

/// `dst[j·8 + c] = src[c·stride + j]` for eight rows `c` and `n` pixels
/// `j`: the depthwise blocked kernel's interleave, four pixels at a time
/// through two 4 × 4 register transposes, the last `n mod 4` one by one.
pub(crate) fn interleave8(src: &[f32], stride: usize, n: usize, dst: &mut [f32]) {
    assert!(n == 0 || (src.len() >= 7 * stride + n && dst.len() >= 8 * n), "interleave8: slices too short");
    let mut j = 0;
    while j + 4 <= n {
        // SAFETY: rows c·stride + j .. + 4 ≤ 7·stride + n and dst
        // (j + 4)·8 ≤ 8n are inside the slices (asserted).
        unsafe {
            let r: [float32x4_t; 8] = std::array::from_fn(|c| vld1q_f32(src.as_ptr().add(c * stride + j)));
            let lo = transpose_4x4([r[0], r[1], r[2], r[3]]);
            let hi = transpose_4x4([r[4], r[5], r[6], r[7]]);
            for i in 0..4 {
                vst1q_f32(dst.as_mut_ptr().add((j + i) * 8), lo[i]);
                vst1q_f32(dst.as_mut_ptr().add((j + i) * 8 + 4), hi[i]);
            }
        }
        j += 4;
    }
    for j in j..n {
        for c in 0..8 {
            dst[j * 8 + c] = src[c * stride + j];
        }
    }
}

/// `dst[c·stride + j] = src[j·8 + c]`: the inverse of [`interleave8`].
pub(crate) fn deinterleave8(src: &[f32], n: usize, dst: &mut [f32], stride: usize) {
    assert!(n == 0 || (dst.len() >= 7 * stride + n && src.len() >= 8 * n), "deinterleave8: slices too short");
    let mut j = 0;
    while j + 4 <= n {
        // SAFETY: as in interleave8, the other way round.
        unsafe {
            let lo = transpose_4x4(std::array::from_fn(|i| vld1q_f32(src.as_ptr().add((j + i) * 8))));
            let hi = transpose_4x4(std::array::from_fn(|i| vld1q_f32(src.as_ptr().add((j + i) * 8 + 4))));
            for c in 0..4 {
                vst1q_f32(dst.as_mut_ptr().add(c * stride + j), lo[c]);
                vst1q_f32(dst.as_mut_ptr().add((c + 4) * stride + j), hi[c]);
            }
        }
        j += 4;
    }
    for j in j..n {
        for c in 0..8 {
            dst[c * stride + j] = src[j * 8 + c];
        }
    }
}

/// The four row pointers of an int8 tile.
#[inline(always)]
fn rows4(p: &[*const i8]) -> [*const i8; 4] {
    p[..4].try_into().expect("an int8 tile has four rows")
}

/// Int8 4 × 4 tile with the matrix-multiply extension's `smmla`: each
/// instruction multiplies two rows of 8 bytes by two rows of 8 bytes (a
/// 2 × 2 block of sums, 32 products, twice `sdot`'s 16). The four
/// activation and four weight rows are paired by their 64-bit halves
/// (`zip1`/`zip2`), and the 2 × 2 blocks are the tile's sums as they are:
/// no horizontal additions at the end (sdot's tile needs sixteen), which
/// matters for the short K of pointwise layers.
///
/// `vmmlaq_s32` is unstable in Rust (stdarch_neon_i8mm), so the
/// instruction is written as inline assembly.
///
/// Safety: see [`super::int8`]'s `QKernel` (K in multiples of 16 bytes);
/// needs the i8mm feature.
#[target_feature(enable = "neon,i8mm")]
pub(crate) unsafe fn qdot_4x4_smmla(kp: usize, a: &[*const i8], w: &[*const i8], acc: &mut [i32; 16]) {
    // c[p][q]: activation rows 2p, 2p+1 by weight rows 2q, 2q+1, as
    // [a₂ₚ·w₂q, a₂ₚ·w₂q₊₁, a₂ₚ₊₁·w₂q, a₂ₚ₊₁·w₂q₊₁].
    let (a, w) = (rows4(a), rows4(w));
    let mut c = [[vdupq_n_s32(0); 2]; 2];
    // Bytes 0..8 of rows x and y in one vector, and bytes 8..16 in another.
    let pair = |x: int8x16_t, y: int8x16_t| {
        let (x, y) = (vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y));
        [vreinterpretq_s8_s64(vzip1q_s64(x, y)), vreinterpretq_s8_s64(vzip2q_s64(x, y))]
    };
    let mut k = 0;
    while k < kp {
        // SAFETY: every pointer addresses kp bytes; k + 16 ≤ kp (kp is a
        // multiple of 16).
        unsafe {
            let ap = [pair(vld1q_s8(a[0].add(k)), vld1q_s8(a[1].add(k))), pair(vld1q_s8(a[2].add(k)), vld1q_s8(a[3].add(k)))];
            let wp = [pair(vld1q_s8(w[0].add(k)), vld1q_s8(w[1].add(k))), pair(vld1q_s8(w[2].add(k)), vld1q_s8(w[3].add(k)))];
            for (cp, app) in c.iter_mut().zip(&ap) {
                for (cpq, wpq) in cp.iter_mut().zip(&wp) {
                    for h in 0..2 {
                        std::arch::asm!(
                            "smmla {acc:v}.4s, {a:v}.16b, {w:v}.16b",
                            acc = inout(vreg) *cpq,
                            a = in(vreg) app[h],
                            w = in(vreg) wpq[h],
                            options(pure, nomem, nostack),
                        );
                    }
                }
            }
        }
        k += 16;
    }
    for (p, cp) in c.iter().enumerate() {
        for (q, v) in cp.iter().enumerate() {
            let mut s = [0i32; 4];
            // SAFETY: s holds four i32.
            unsafe { vst1q_s32(s.as_mut_ptr(), *v) };
            acc[2 * p * 4 + 2 * q..][..2].copy_from_slice(&s[..2]);
            acc[(2 * p + 1) * 4 + 2 * q..][..2].copy_from_slice(&s[2..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The register transposes against their definition, on pixel counts
    /// with and without a tail, and back again.
    #[test]
    fn interleave8_round_trips() {
        for (n, stride) in [(0, 3), (1, 1), (3, 5), (4, 4), (7, 9), (16, 16), (49, 53)] {
            let src: Vec<f32> = (0..7 * stride + n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let mut got = vec![f32::NAN; 8 * n];
            interleave8(&src, stride, n, &mut got);
            for j in 0..n {
                for c in 0..8 {
                    assert_eq!(got[j * 8 + c].to_bits(), src[c * stride + j].to_bits(), "n {n} stride {stride} pixel {j} lane {c}");
                }
            }
            let mut back = vec![f32::NAN; 7 * stride + n];
            deinterleave8(&got, n, &mut back, stride);
            for c in 0..8 {
                for j in 0..n {
                    assert_eq!(back[c * stride + j].to_bits(), src[c * stride + j].to_bits(), "n {n} stride {stride} back {c},{j}");
                }
            }
        }
    }
}
