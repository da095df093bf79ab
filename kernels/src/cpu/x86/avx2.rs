//! AVX2 + FMA micro-kernels (256-bit registers): the float matrix tile
//! (6 × 16), the dot product, and the int8 tiles through `vpmaddubsw`.

use crate::cpu::gemm::{check_panel, store_tile, TileAct, TileBias, TileMut, TileStore, Variant, MAX_TILE, NARROW};
use crate::cpu::int8::PIXEL_BLOCK;
use std::arch::x86_64::*;

pub(crate) const AVX2_FMA: Variant = Variant {
    mr: 6,
    nr: 16,
    kc: 256,
    mc: 96,
    nc: 256,
    ukr: ukr_6x16,
    direct_a: true,
    ukr_store: Some(ukr_6x16_store),
    ukr_edge: Some(ukr_edge_store),
    ukr_narrow: Some(ukr_narrow_store),
    dot,
    de2,
};

fn de2(src: &[f32], dst: &mut [f32]) {
    // SAFETY: the variant is chosen only where the CPU has AVX2.
    unsafe { deinterleave2(src, dst) }
}

/// `dst[i] = src[2 i]`, eight values a time from sixteen with one shuffle
/// and one lane permute, the tail (at most seven) one by one: the stride-2
/// rows of im2col and of the depthwise bands. The portable loop compiled
/// to scalar moves and `memcpy` calls for its tail: two thirds of a
/// stride-2 depthwise plane's time.
///
/// # Safety
/// The CPU must have AVX2. `src` must hold `2 · dst.len() − 1` values at
/// least (checked).
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn deinterleave2(src: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    assert!(src.len() + 1 >= 2 * n, "deinterleave2: {} values for {n}", src.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i + 8 <= n && 2 * i + 16 <= src.len() {
        // SAFETY: src[2i .. 2i + 16] and dst[i .. i + 8] are in bounds
        // (the loop condition).
        unsafe {
            let (a, b) = (_mm256_loadu_ps(s.add(2 * i)), _mm256_loadu_ps(s.add(2 * i + 8)));
            // a0 a2 b0 b2 | a4 a6 b4 b6, then the 64-bit pairs reordered.
            let even = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
            let even = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(even)));
            _mm256_storeu_ps(d.add(i), even);
        }
        i += 8;
    }
    for (j, v) in dst.iter_mut().enumerate().skip(i) {
        *v = src[2 * j];
    }
}

fn ukr_6x16(kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], acc: &mut [f32; MAX_TILE]) {
    check_panel(a, 6, kc, rs, cs);
    let b = &b[..kc * 16];
    // SAFETY: this variant is only selected when AVX2 and FMA are detected
    // (Isa::supported); the A panel lies inside `a` (checked above) and B
    // holds kc·16 floats.
    unsafe { ukr_6x16_avx2(kc, a.as_ptr(), rs, cs, b.as_ptr(), acc) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn ukr_6x16_avx2(kc: usize, a: *const f32, rs: usize, cs: usize, b: *const f32, acc: &mut [f32; MAX_TILE]) {
    // SAFETY: forwarded preconditions.
    let c = unsafe { mul_6x16(kc, a, rs, cs, b) };
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: rows r·16 .. r·16+16 lie inside the 128-float tile.
        unsafe {
            _mm256_storeu_ps(acc.as_mut_ptr().add(r * 16), cr[0]);
            _mm256_storeu_ps(acc.as_mut_ptr().add(r * 16 + 8), cr[1]);
        }
    }
}

/// The R × 8·NV product of an A panel (strides rs, cs) and a packed B
/// panel (16 floats per k, of which the first 8·NV are read), in
/// registers.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn mul_rx16<const R: usize, const NV: usize>(
    kc: usize,
    mut a: *const f32,
    rs: usize,
    cs: usize,
    mut b: *const f32,
) -> [[__m256; NV]; R] {
    let mut c = [[_mm256_setzero_ps(); NV]; R];
    let offs: [usize; R] = std::array::from_fn(|r| r * rs);
    for _ in 0..kc {
        // SAFETY: a advances cs and b 16 floats per step, kc steps in all;
        // row r of A is at a + r·rs: inside the slices checked by the caller.
        unsafe {
            let bv: [__m256; NV] = std::array::from_fn(|v| _mm256_loadu_ps(b.add(8 * v)));
            for (r, cr) in c.iter_mut().enumerate() {
                let ar = _mm256_broadcast_ss(&*a.add(offs[r]));
                for (cv, &bv) in cr.iter_mut().zip(&bv) {
                    *cv = _mm256_fmadd_ps(ar, bv, *cv);
                }
            }
            a = a.add(cs);
            b = b.add(16);
        }
    }
    c
}

/// The full tile's product.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn mul_6x16(kc: usize, a: *const f32, rs: usize, cs: usize, b: *const f32) -> [[__m256; 2]; 6] {
    // SAFETY: forwarded preconditions.
    unsafe { mul_rx16::<6, 2>(kc, a, rs, cs, b) }
}

/// The kernel and store for an edge tile of `rows` ≤ 6 rows (read where
/// they lie) and `cols` ≤ 16 columns: R rows and one register per row when
/// 8 columns do. The full kernel computed all 6 × 16 for them: the last
/// column of ResNet's 7 × 7 maps (49 = 3 · 16 + 1) cost as much as a
/// whole tile, a quarter of those layers.
#[allow(clippy::too_many_arguments)]
fn ukr_edge_store(rows: usize, cols: usize, kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], t: &TileMut, st: &TileStore) {
    assert!((1..=6).contains(&rows) && (1..=16).contains(&cols), "ukr_edge_store: {rows}×{cols} tile");
    check_panel(a, rows, kc, rs, cs);
    let b = &b[..kc * 16];
    let (a, b) = (a.as_ptr(), b.as_ptr());
    let mut acc = [0.0f32; MAX_TILE];
    macro_rules! go {
        ($($r:literal),*) => {
            match (rows, cols > 8) {
                $(
                    // SAFETY: AVX2 and FMA are detected (Isa::supported);
                    // the A panel and B are checked above.
                    ($r, false) => unsafe { edge_rx16::<$r, 1>(kc, a, rs, cs, b, &mut acc) },
                    ($r, true) => unsafe { edge_rx16::<$r, 2>(kc, a, rs, cs, b, &mut acc) },
                )*
                _ => unreachable!("rows checked above"),
            }
        };
    }
    go!(1, 2, 3, 4, 5, 6);
    store_tile(&acc, 16, rows, cols, t, st);
}

/// The kernel and store for an edge tile of `cols` ≤ [`NARROW`] columns
/// and `rows` ≤ 6 contiguous rows of A (`cs = 1`), as dot products along
/// K: B is given column by column (`b[c·kc + k]`). Eight k per vector and
/// every lane useful, where the broadcast kernel used one lane in sixteen
/// for a single column.
#[allow(clippy::too_many_arguments)]
fn ukr_narrow_store(rows: usize, cols: usize, kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], t: &TileMut, st: &TileStore) {
    assert!((1..=6).contains(&rows) && (1..=NARROW).contains(&cols) && cs == 1, "ukr_narrow_store: {rows}×{cols} tile, cs {cs}");
    check_panel(a, rows, kc, rs, 1);
    let b = &b[..kc * cols];
    let mut acc = [0.0f32; MAX_TILE];
    // Rows a pass takes: its sums, the B vectors and one A vector fit the
    // 16 registers.
    let per = if cols <= 2 { 6 } else { 2 };
    let mut r0 = 0;
    while r0 < rows {
        let n = per.min(rows - r0);
        let (ap, out) = (a[r0 * rs..].as_ptr(), &mut acc[r0 * 16..]);
        macro_rules! go {
            ($(($r:literal, $c:literal)),*) => {
                match (n, cols) {
                    // SAFETY: AVX2 and FMA are detected (Isa::supported);
                    // rows r0 .. r0 + n of the A panel and cols columns of
                    // kc floats of B are inside the slices (checked above).
                    $(($r, $c) => unsafe { dots_rxc::<$r, $c>(kc, ap, rs, b.as_ptr(), out) },)*
                    _ => unreachable!("{n} rows × {cols} columns"),
                }
            };
        }
        go!((1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (1, 3), (2, 3), (1, 4), (2, 4));
        r0 += n;
    }
    store_tile(&acc, 16, rows, cols, t, st);
}

/// `out[r·16 + c] = Σ_k a[r·rs + k] · b[c·kc + k]` for R rows and C
/// columns, eight k per vector, the rest one by one.
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_rxc<const R: usize, const C: usize>(kc: usize, a: *const f32, rs: usize, b: *const f32, out: &mut [f32]) {
    let mut s = [[_mm256_setzero_ps(); C]; R];
    let mut k = 0;
    while k + 8 <= kc {
        // SAFETY: k + 8 ≤ kc floats of each row and column (the caller's
        // bounds).
        unsafe {
            let bv: [__m256; C] = std::array::from_fn(|c| _mm256_loadu_ps(b.add(c * kc + k)));
            for (r, sr) in s.iter_mut().enumerate() {
                let av = _mm256_loadu_ps(a.add(r * rs + k));
                for (sc, &bc) in sr.iter_mut().zip(&bv) {
                    *sc = _mm256_fmadd_ps(av, bc, *sc);
                }
            }
        }
        k += 8;
    }
    for (r, sr) in s.iter().enumerate() {
        for (c, v) in sr.iter().enumerate() {
            let mut lanes = [0.0f32; 8];
            // SAFETY: lanes holds 8 floats; the tail reads stay below kc.
            unsafe {
                _mm256_storeu_ps(lanes.as_mut_ptr(), *v);
                let mut x = lanes.iter().sum::<f32>();
                for j in k..kc {
                    x += *a.add(r * rs + j) * *b.add(c * kc + j);
                }
                out[r * 16 + c] = x;
            }
        }
    }
}

/// [`mul_rx16`] into `acc` (rows of 16 floats).
#[target_feature(enable = "avx2,fma")]
unsafe fn edge_rx16<const R: usize, const NV: usize>(
    kc: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    acc: &mut [f32; MAX_TILE],
) {
    // SAFETY: forwarded preconditions.
    let c = unsafe { mul_rx16::<R, NV>(kc, a, rs, cs, b) };
    for (r, cr) in c.iter().enumerate() {
        for (v, x) in cr.iter().enumerate() {
            // SAFETY: r·16 + 8·v + 8 ≤ 96 ≤ MAX_TILE.
            unsafe { _mm256_storeu_ps(acc.as_mut_ptr().add(r * 16 + 8 * v), *x) };
        }
    }
}

fn ukr_6x16_store(kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], t: &TileMut, st: &TileStore) {
    check_panel(a, 6, kc, rs, cs);
    let b = &b[..kc * 16];
    // SAFETY: AVX2 and FMA are detected (Isa::supported); A and B are
    // checked above; TileMut points at a 6×16 tile of C owned by this task.
    unsafe { ukr_6x16_store_avx2(kc, a.as_ptr(), rs, cs, b.as_ptr(), t, st) }
}

/// The micro-kernel with the tile store in registers: accumulate, bias,
/// activation, store.
#[target_feature(enable = "avx2,fma")]
unsafe fn ukr_6x16_store_avx2(kc: usize, a: *const f32, rs: usize, cs: usize, b: *const f32, t: &TileMut, st: &TileStore) {
    // SAFETY: forwarded preconditions.
    let c = unsafe { mul_6x16(kc, a, rs, cs, b) };
    let zero = _mm256_setzero_ps();
    let (lo, hi) = match st.act {
        TileAct::Clip(lo, hi) => (_mm256_set1_ps(lo), _mm256_set1_ps(hi)),
        _ => (zero, zero),
    };
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: row r of the tile is t.ptr + r·ldc .. + 16, inside C and
        // owned by this task; a row bias holds 6 floats, a column bias 16.
        unsafe {
            let p = t.ptr.add(r * t.ldc);
            let (mut v0, mut v1) = (cr[0], cr[1]);
            if st.accumulate {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(p));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(p.add(8)));
            }
            match st.bias {
                TileBias::None => {}
                TileBias::Row(bias) => {
                    let bb = _mm256_broadcast_ss(&*bias.add(r));
                    v0 = _mm256_add_ps(v0, bb);
                    v1 = _mm256_add_ps(v1, bb);
                }
                TileBias::Col(bias) => {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias.add(8)));
                }
            }
            match st.act {
                TileAct::None => {}
                // max(v, 0): NaN becomes 0, as f32::max does in the
                // portable path.
                TileAct::Relu => {
                    v0 = _mm256_max_ps(v0, zero);
                    v1 = _mm256_max_ps(v1, zero);
                }
                // max(lo, v) then min(hi, ·) keep NaN, as Activation::Clip.
                TileAct::Clip(..) => {
                    v0 = _mm256_min_ps(hi, _mm256_max_ps(lo, v0));
                    v1 = _mm256_min_ps(hi, _mm256_max_ps(lo, v1));
                }
            }
            _mm256_storeu_ps(p, v0);
            _mm256_storeu_ps(p.add(8), v1);
        }
    }
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// Int8 2 × 4 dot-product tile, AVX2: `|a| · (w · sign(a))` through
/// `vpmaddubsw` (u8 × i8 → pairs in i16, never saturating for weights in
/// −127..=127) and `vpmaddwd` by ones (→ i32).
///
/// Safety: see [`crate::cpu::int8`]'s `QKernel`; needs AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn qdot_2x4_avx2(kp: usize, a: &[*const i8], w: &[*const i8], acc: &mut [i32; 16]) {
    let ones = _mm256_set1_epi16(1);
    let mut c = [[_mm256_setzero_si256(); 4]; 2];
    let mut k = 0;
    while k < kp {
        // SAFETY: every pointer addresses kp bytes; k + 32 ≤ kp.
        unsafe {
            let a0 = _mm256_loadu_si256(a[0].add(k) as *const __m256i);
            let a1 = _mm256_loadu_si256(a[1].add(k) as *const __m256i);
            let (u0, u1) = (_mm256_abs_epi8(a0), _mm256_abs_epi8(a1));
            for j in 0..4 {
                let wj = _mm256_loadu_si256(w[j].add(k) as *const __m256i);
                let p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(wj, a0));
                let p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(wj, a1));
                c[0][j] = _mm256_add_epi32(c[0][j], _mm256_madd_epi16(p0, ones));
                c[1][j] = _mm256_add_epi32(c[1][j], _mm256_madd_epi16(p1, ones));
            }
        }
        k += 32;
    }
    hsum_2x4(&c, acc);
}

/// The eight horizontal sums of a 2 × 4 tile of accumulators, with a tree
/// of `vphaddd` (one reduction for all eight instead of eight).
#[target_feature(enable = "avx2")]
pub(super) fn hsum_2x4(c: &[[__m256i; 4]; 2], acc: &mut [i32]) {
    assert!(acc.len() >= 8);
    // Pairwise adds leave, per 128-bit half, the partial sums of the
    // eight accumulators in order; adding the halves finishes them.
    let h01 = _mm256_hadd_epi32(c[0][0], c[0][1]);
    let h23 = _mm256_hadd_epi32(c[0][2], c[0][3]);
    let h45 = _mm256_hadd_epi32(c[1][0], c[1][1]);
    let h67 = _mm256_hadd_epi32(c[1][2], c[1][3]);
    let q0 = _mm256_hadd_epi32(h01, h23);
    let q1 = _mm256_hadd_epi32(h45, h67);
    let r0 = _mm_add_epi32(_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1));
    let r1 = _mm_add_epi32(_mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1));
    // SAFETY: acc holds at least 8 i32 (asserted); the two stores write
    // 0..4 and 4..8.
    unsafe {
        _mm_storeu_si128(acc.as_mut_ptr() as *mut __m128i, r0);
        _mm_storeu_si128(acc.as_mut_ptr().add(4) as *mut __m128i, r1);
    }
}

/// Int8 4 × 16 outer-product tile for the panel layout: per group of 4 K
/// bytes, 16 pixels' bytes (two vectors) times each weight row's 4 bytes
/// broadcast, through `|a| · (w · sign(a))` as in [`qdot_2x4_avx2`]. The
/// sums stay per lane (one lane per pixel): no horizontal sums.
///
/// Safety: needs AVX2; `panel + g·gs` addresses 64 readable bytes for every
/// g < kg, and every `w[m]` 4·kg bytes.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn qpanel_4x16_avx2(kg: usize, panel: *const i8, gs: usize, w: &[*const i8; 4], tile: &mut [[i32; 16]; 4]) {
    let ones = _mm256_set1_epi16(1);
    let mut c = [[_mm256_setzero_si256(); 2]; 4];
    for g in 0..kg {
        // SAFETY: within the bounds the caller guarantees.
        unsafe {
            let a0 = _mm256_loadu_si256(panel.add(g * gs) as *const __m256i);
            let a1 = _mm256_loadu_si256(panel.add(g * gs + 32) as *const __m256i);
            let (u0, u1) = (_mm256_abs_epi8(a0), _mm256_abs_epi8(a1));
            for (m, cm) in c.iter_mut().enumerate() {
                let wb = _mm256_set1_epi32(std::ptr::read_unaligned(w[m].add(4 * g) as *const i32));
                let p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(wb, a0));
                let p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(wb, a1));
                cm[0] = _mm256_add_epi32(cm[0], _mm256_madd_epi16(p0, ones));
                cm[1] = _mm256_add_epi32(cm[1], _mm256_madd_epi16(p1, ones));
            }
        }
    }
    for (t, cm) in tile.iter_mut().zip(&c) {
        // SAFETY: each tile row holds 16 i32.
        unsafe {
            _mm256_storeu_si256(t.as_mut_ptr() as *mut __m256i, cm[0]);
            _mm256_storeu_si256(t.as_mut_ptr().add(8) as *mut __m256i, cm[1]);
        }
    }
}

/// `dst[4p + j] = rows[j][p]` for `p < n`, 16 pixels per step.
///
/// Safety: needs AVX2; `n` is a multiple of 16, at most the rows' length,
/// and `dst` holds `4n` bytes.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn interleave4_avx2(rows: &[[i8; 2 * PIXEL_BLOCK]; 4], n: usize, dst: &mut [i8]) {
    assert!(n.is_multiple_of(16) && n <= PIXEL_BLOCK && dst.len() >= 4 * n);
    for p in (0..n).step_by(16) {
        // SAFETY: p + 16 ≤ n ≤ PIXEL_BLOCK bytes of each row; 4p + 64 ≤ 4n of dst.
        unsafe {
            let r: [__m128i; 4] = std::array::from_fn(|j| _mm_loadu_si128(rows[j].as_ptr().add(p) as *const __m128i));
            // Bytes of rows 0/1 and 2/3 paired, then the pairs paired.
            let (lo01, hi01) = (_mm_unpacklo_epi8(r[0], r[1]), _mm_unpackhi_epi8(r[0], r[1]));
            let (lo23, hi23) = (_mm_unpacklo_epi8(r[2], r[3]), _mm_unpackhi_epi8(r[2], r[3]));
            let out = [
                _mm_unpacklo_epi16(lo01, lo23),
                _mm_unpackhi_epi16(lo01, lo23),
                _mm_unpacklo_epi16(hi01, hi23),
                _mm_unpackhi_epi16(hi01, hi23),
            ];
            for (i, v) in out.iter().enumerate() {
                _mm_storeu_si128(dst.as_mut_ptr().add(4 * p + 16 * i) as *mut __m128i, *v);
            }
        }
    }
}

/// The 8 × 8 transpose of eight vectors: `out[j][c] = r[c][j]`.
#[inline(always)]
unsafe fn transpose_8x8(r: [__m256; 8]) -> [__m256; 8] {
    let lo = |a, b| _mm256_unpacklo_ps(a, b);
    let hi = |a, b| _mm256_unpackhi_ps(a, b);
    let (t0, t1, t2, t3) = (lo(r[0], r[1]), hi(r[0], r[1]), lo(r[2], r[3]), hi(r[2], r[3]));
    let (t4, t5, t6, t7) = (lo(r[4], r[5]), hi(r[4], r[5]), lo(r[6], r[7]), hi(r[6], r[7]));
    let (u0, u1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
    let (u2, u3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
    let (u4, u5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
    let (u6, u7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// `dst[j·8 + c] = src[c·stride + j]` for eight rows `c` of `n` values:
/// eight planes into one of eight-channel pixels, 8 × 8 blocks through
/// register transposes, the last `n mod 8` pixels one by one.
///
/// # Safety
/// The CPU must have AVX2. Bounds are checked.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn interleave8(src: &[f32], stride: usize, n: usize, dst: &mut [f32]) {
    assert!(n == 0 || (src.len() >= 7 * stride + n && dst.len() >= 8 * n), "interleave8: slices too short");
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: rows c·stride + j .. + 8 ≤ 7·stride + n and dst
        // (j + 8)·8 ≤ 8n are inside the slices (asserted).
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|c| _mm256_loadu_ps(src.as_ptr().add(c * stride + j)));
            for (i, v) in transpose_8x8(r).into_iter().enumerate() {
                _mm256_storeu_ps(dst.as_mut_ptr().add((j + i) * 8), v);
            }
        }
        j += 8;
    }
    for j in j..n {
        for c in 0..8 {
            dst[j * 8 + c] = src[c * stride + j];
        }
    }
}

/// `dst[c·stride + j] = src[j·8 + c]`: the inverse of [`interleave8`].
///
/// # Safety
/// The CPU must have AVX2. Bounds are checked.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn deinterleave8(src: &[f32], n: usize, dst: &mut [f32], stride: usize) {
    assert!(n == 0 || (dst.len() >= 7 * stride + n && src.len() >= 8 * n), "deinterleave8: slices too short");
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: as in interleave8, the other way round.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.as_ptr().add((j + i) * 8)));
            for (c, v) in transpose_8x8(r).into_iter().enumerate() {
                _mm256_storeu_ps(dst.as_mut_ptr().add(c * stride + j), v);
            }
        }
        j += 8;
    }
    for j in j..n {
        for c in 0..8 {
            dst[c * stride + j] = src[j * 8 + c];
        }
    }
}
