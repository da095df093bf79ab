//! x86-64 AVX2 + FMA micro-kernels.

use super::gemm::{check_panel, TileAct, TileBias, TileMut, TileStore, Variant, MAX_TILE};
use super::int8::PIXEL_BLOCK;
use std::arch::x86_64::*;

pub(crate) const AVX2_FMA: Variant =
    Variant { mr: 6, nr: 16, kc: 256, mc: 96, nc: 256, ukr: ukr_6x16, direct_a: true, ukr_store: Some(ukr_6x16_store), dot };

/// AVX-512F: 12 rows × 32 columns (24 accumulators of 16 floats), B
/// panels of kc × 32. Blocks sized so a B panel (192 × 32 floats, 24 KiB)
/// and an A panel stay in a 48 KiB L1.
pub(crate) const AVX512: Variant =
    Variant { mr: 12, nr: 32, kc: 192, mc: 96, nc: 256, ukr: ukr_12x32, direct_a: true, ukr_store: Some(ukr_12x32_store), dot };

fn ukr_12x32(kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], acc: &mut [f32; MAX_TILE]) {
    check_panel(a, 12, kc, rs, cs);
    let b = &b[..kc * 32];
    // SAFETY: this variant is only selected when AVX-512F, AVX2 and FMA
    // are detected (Isa::supported); the A panel lies inside `a` (checked
    // above) and B holds kc·32 floats.
    unsafe { ukr_12x32_avx512(kc, a.as_ptr(), rs, cs, b.as_ptr(), acc) }
}

#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn ukr_12x32_avx512(kc: usize, a: *const f32, rs: usize, cs: usize, b: *const f32, acc: &mut [f32; MAX_TILE]) {
    // SAFETY: forwarded preconditions.
    let c = unsafe { mul_12x32(kc, a, rs, cs, b) };
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: rows r·32 .. r·32+32 lie inside the MAX_TILE-float tile.
        unsafe {
            _mm512_storeu_ps(acc.as_mut_ptr().add(r * 32), cr[0]);
            _mm512_storeu_ps(acc.as_mut_ptr().add(r * 32 + 16), cr[1]);
        }
    }
}

/// The 12×32 product of an A panel (strides rs, cs) and a packed B panel,
/// in registers.
#[target_feature(enable = "avx2,fma,avx512f")]
#[inline]
unsafe fn mul_12x32(kc: usize, mut a: *const f32, rs: usize, cs: usize, mut b: *const f32) -> [[__m512; 2]; 12] {
    let mut c = [[_mm512_setzero_ps(); 2]; 12];
    let offs: [usize; 12] = std::array::from_fn(|r| r * rs);
    for _ in 0..kc {
        // SAFETY: a advances cs and b 32 floats per step, kc steps in all;
        // row r of A is at a + r·rs: inside the slices checked by the caller.
        unsafe {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for (r, cr) in c.iter_mut().enumerate() {
                let ar = _mm512_set1_ps(*a.add(offs[r]));
                cr[0] = _mm512_fmadd_ps(ar, b0, cr[0]);
                cr[1] = _mm512_fmadd_ps(ar, b1, cr[1]);
            }
            a = a.add(cs);
            b = b.add(32);
        }
    }
    c
}

fn ukr_12x32_store(kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], t: &TileMut, st: &TileStore) {
    check_panel(a, 12, kc, rs, cs);
    let b = &b[..kc * 32];
    // SAFETY: AVX-512F, AVX2 and FMA are detected (Isa::supported); A and
    // B are checked above; TileMut points at a 12×32 tile of C owned by
    // this task.
    unsafe { ukr_12x32_store_avx512(kc, a.as_ptr(), rs, cs, b.as_ptr(), t, st) }
}

/// [`ukr_6x16_store_avx2`] on 512-bit registers: accumulate, bias,
/// activation, store, with the tile in registers.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn ukr_12x32_store_avx512(kc: usize, a: *const f32, rs: usize, cs: usize, b: *const f32, t: &TileMut, st: &TileStore) {
    // SAFETY: forwarded preconditions.
    let c = unsafe { mul_12x32(kc, a, rs, cs, b) };
    let zero = _mm512_setzero_ps();
    let (lo, hi) = match st.act {
        TileAct::Clip(lo, hi) => (_mm512_set1_ps(lo), _mm512_set1_ps(hi)),
        _ => (zero, zero),
    };
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: row r of the tile is t.ptr + r·ldc .. + 32, inside C and
        // owned by this task; a row bias holds 12 floats, a column bias 32.
        unsafe {
            let p = t.ptr.add(r * t.ldc);
            let (mut v0, mut v1) = (cr[0], cr[1]);
            if st.accumulate {
                v0 = _mm512_add_ps(v0, _mm512_loadu_ps(p));
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(p.add(16)));
            }
            match st.bias {
                TileBias::None => {}
                TileBias::Row(bias) => {
                    let bb = _mm512_set1_ps(*bias.add(r));
                    v0 = _mm512_add_ps(v0, bb);
                    v1 = _mm512_add_ps(v1, bb);
                }
                TileBias::Col(bias) => {
                    v0 = _mm512_add_ps(v0, _mm512_loadu_ps(bias));
                    v1 = _mm512_add_ps(v1, _mm512_loadu_ps(bias.add(16)));
                }
            }
            match st.act {
                TileAct::None => {}
                // max(v, 0) with 0 second: NaN becomes 0 (vmaxps returns
                // the second operand when either is NaN), as in the AVX2
                // kernel and f32::max.
                TileAct::Relu => {
                    v0 = _mm512_max_ps(v0, zero);
                    v1 = _mm512_max_ps(v1, zero);
                }
                // max(lo, v) then min(hi, ·) keep NaN, as Activation::Clip.
                TileAct::Clip(..) => {
                    v0 = _mm512_min_ps(hi, _mm512_max_ps(lo, v0));
                    v1 = _mm512_min_ps(hi, _mm512_max_ps(lo, v1));
                }
            }
            _mm512_storeu_ps(p, v0);
            _mm512_storeu_ps(p.add(16), v1);
        }
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

/// The 6×16 product of an A panel (strides rs, cs) and a packed B panel,
/// in registers.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn mul_6x16(kc: usize, mut a: *const f32, rs: usize, cs: usize, mut b: *const f32) -> [[__m256; 2]; 6] {
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
    c
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

/// Int8 2 × 4 dot-product tile, AVX2: `|a| · (w · sign(a))` through
/// `vpmaddubsw` (u8 × i8 → pairs in i16, never saturating for weights in
/// −127..=127) and `vpmaddwd` by ones (→ i32).
///
/// Safety: see [`super::int8`]'s `QKernel`; needs AVX2.
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

/// Int8 4 × 4 dot-product tile, AVX-512 VNNI on 512-bit registers.
/// Activation bytes are flipped to unsigned (`a ^ 0x80 = a + 128`), so one
/// `vpdpbusd` per pair of rows does each 64-byte step (no `abs`/`sign` as in
/// [`qdot_2x4_avx2`]: `vpdpbusd` sums in i32 and cannot saturate). The sums
/// come out as `Σ a·w + 128 · Σ w`; the caller subtracts `128 · Σ w`
/// (`QVariant::shifted`).
///
/// The last `kp % 64` bytes are read with masked loads (zeros past the
/// row), so `kp` may be any length and no tail is copied.
///
/// Safety: see [`super::int8`]'s `QKernel`; needs AVX512F, AVX512BW and
/// AVX512VNNI.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn qdot_4x4_vnni512(kp: usize, a: &[*const i8], w: &[*const i8], acc: &mut [i32; 16]) {
    assert!(a.len() >= 4 && w.len() >= 4);
    let flip = _mm512_set1_epi8(-128);
    let mut c = [[_mm512_setzero_si512(); 4]; 4];
    let mut k = 0;
    while k < kp {
        // All 64 bytes, or the row's last kp − k (masked loads read zeros
        // past it; a flipped zero, 128, meets a zero weight there).
        let mask: __mmask64 = if kp - k >= 64 { !0 } else { (1u64 << (kp - k)) - 1 };
        // SAFETY: every pointer addresses kp bytes; the mask covers only
        // bytes k .. kp, and masked-off bytes are not accessed.
        unsafe {
            let av: [__m512i; 4] = std::array::from_fn(|i| _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, a[i].add(k)), flip));
            for j in 0..4 {
                let wj = _mm512_maskz_loadu_epi8(mask, w[j].add(k));
                for (ci, ai) in c.iter_mut().zip(&av) {
                    ci[j] = _mm512_dpbusd_epi32(ci[j], *ai, wj);
                }
            }
        }
        k += 64;
    }
    // Halves added first (16 lanes → 8), then the 2 × 4 reduction twice.
    let half = |v: __m512i| _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v));
    let h: [[__m256i; 4]; 4] = std::array::from_fn(|i| std::array::from_fn(|j| half(c[i][j])));
    let (lo, hi) = acc.split_at_mut(8);
    hsum_2x4(&[h[0], h[1]], lo);
    hsum_2x4(&[h[2], h[3]], hi);
}

/// The eight horizontal sums of a 2 × 4 tile of accumulators, with a tree
/// of `vphaddd` (one reduction for all eight instead of eight).
#[target_feature(enable = "avx2")]
fn hsum_2x4(c: &[[__m256i; 4]; 2], acc: &mut [i32]) {
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

/// Σ of a row of weight bytes: one `vpdpbusd` against ones per 64 bytes
/// (the shifted kernels take `128 · Σ w` off once per row and block; in
/// baseline SSE2 the sums cost as much as the dot products they correct).
///
/// Safety: needs AVX512F, AVX512BW and AVX512VNNI.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn row_sum_vnni512(w: &[i8]) -> i32 {
    let ones = _mm512_set1_epi8(1);
    // Four independent sums: one chain of vpdpbusd waits on its latency.
    let mut acc = [_mm512_setzero_si512(); 4];
    let mut k = 0;
    while k + 256 <= w.len() {
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: k + 64·i + 64 ≤ k + 256 ≤ w.len().
            let v = unsafe { _mm512_loadu_si512(w.as_ptr().add(k + 64 * i) as *const _) };
            *a = _mm512_dpbusd_epi32(*a, ones, v);
        }
        k += 256;
    }
    while k < w.len() {
        let mask: __mmask64 = if w.len() - k >= 64 { !0 } else { (1u64 << (w.len() - k)) - 1 };
        // SAFETY: the mask covers bytes k .. w.len() only.
        let v = unsafe { _mm512_maskz_loadu_epi8(mask, w.as_ptr().add(k)) };
        acc[0] = _mm512_dpbusd_epi32(acc[0], ones, v);
        k += 64;
    }
    let s = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
    _mm512_reduce_add_epi32(s)
}

/// Int8 outer-product tile for the panel layout, AVX-512 VNNI: 4 weight
/// rows × `chunks` · 16 pixels (one register per 16 pixels, up to a whole
/// block), each weight row's 4 bytes of a group broadcast. The panel is
/// read as unsigned (`a ^ 0x80`), so the sums carry `128 · Σ w`, which the
/// caller takes off (as for [`qdot_4x4_vnni512`]).
///
/// Safety: needs AVX512F, AVX512BW and AVX512VNNI; `1 ≤ chunks ≤ 4`;
/// `panel + g·gs` addresses `64 · chunks` readable bytes for every g < kg,
/// and every `w[m]` 4·kg bytes.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn qpanel_4xn_vnni512(
    kg: usize,
    panel: *const i8,
    gs: usize,
    chunks: usize,
    w: &[*const i8; 4],
    tile: &mut [[i32; PIXEL_BLOCK]; 4],
) {
    // SAFETY: forwarded; each instance reads `NV` registers per group.
    unsafe {
        match chunks {
            1 => qpanel_vnni512::<1>(kg, panel, gs, w, tile),
            2 => qpanel_vnni512::<2>(kg, panel, gs, w, tile),
            3 => qpanel_vnni512::<3>(kg, panel, gs, w, tile),
            4 => qpanel_vnni512::<4>(kg, panel, gs, w, tile),
            _ => panic!("qpanel_4xn_vnni512: {chunks} chunks of 16 pixels (1 to 4)"),
        }
    }
}

#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn qpanel_vnni512<const NV: usize>(kg: usize, panel: *const i8, gs: usize, w: &[*const i8; 4], tile: &mut [[i32; PIXEL_BLOCK]; 4]) {
    let flip = _mm512_set1_epi8(-128);
    let mut c = [[_mm512_setzero_si512(); NV]; 4];
    for g in 0..kg {
        // SAFETY: within the bounds the caller guarantees.
        unsafe {
            let av: [__m512i; NV] =
                std::array::from_fn(|v| _mm512_xor_si512(_mm512_loadu_si512(panel.add(g * gs + 64 * v) as *const _), flip));
            for (m, cm) in c.iter_mut().enumerate() {
                let wb = _mm512_set1_epi32(std::ptr::read_unaligned(w[m].add(4 * g) as *const i32));
                for (cv, a) in cm.iter_mut().zip(&av) {
                    *cv = _mm512_dpbusd_epi32(*cv, *a, wb);
                }
            }
        }
    }
    for (t, cm) in tile.iter_mut().zip(&c) {
        for (v, cv) in cm.iter().enumerate() {
            // SAFETY: 16 · (v + 1) ≤ 64 = PIXEL_BLOCK i32 of the tile row.
            unsafe { _mm512_storeu_si512(t.as_mut_ptr().add(16 * v) as *mut _, *cv) };
        }
    }
}

/// Most groups of 4 taps in a kernel row [`dw_plane_vbmi`] takes.
pub(crate) const DW_MAX_GROUPS: usize = 4;
/// Most weight words (kernel rows × groups) [`dw_plane_vbmi`] takes.
pub(crate) const DW_MAX_WORDS: usize = 64;

/// Int8 depthwise convolution of one plane, AVX-512 VNNI + VBMI. For 16
/// output pixels at a time, each kernel row's taps in groups of 4: one
/// 64-byte load of the padded input row, one `vpermb` that lays out each
/// pixel's 4 tap bytes (`stride_w · l + dilation_w · j`), and one
/// `vpdpbusd` against the group's 4 weights broadcast. The bytes are read
/// as unsigned (`x ^ 0x80`), so `acc[ox] = Σ (x + 128) · w` over the window
/// (padding bytes included); `row_done(oy, acc)` gets each output row.
///
/// Safety: needs AVX512F, AVX512BW, AVX512VNNI and AVX512VBMI. The window
/// reach and sizes are asserted; `plane` is laid out as qgemm's
/// `dw_padded` says (rows of `stride` bytes).
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni,avx512vbmi")]
pub(crate) unsafe fn dw_plane_vbmi(
    plane: &[i8],
    stride: usize,
    s: &super::conv::Conv2dShape,
    wk: &[i8],
    acc: &mut [i32],
    row_done: &mut dyn FnMut(usize, &mut [i32]),
) {
    let (sw, dw, kw) = (s.stride_w, s.dilation_w, s.kernel_w);
    let groups = kw.div_ceil(4);
    let ow16 = s.out_w.next_multiple_of(16);
    assert!(groups <= DW_MAX_GROUPS && s.kernel_h * groups <= DW_MAX_WORDS && 15 * sw + dw * (4 * groups - 1) < 64);
    assert!(acc.len() >= ow16 && wk.len() >= s.kernel_h * kw);
    let last_row = (s.out_h.max(1) - 1) * s.stride_h + (s.kernel_h - 1) * s.dilation_h;
    assert!(stride >= (ow16 - 16) * sw + 64 && plane.len() >= (last_row + 1) * stride, "dw_plane_vbmi: plane too short");
    // Byte 4l + j of group g's window: tap 4g + j of pixel l.
    let idx: [__m512i; DW_MAX_GROUPS] = std::array::from_fn(|g| {
        let b: [u8; 64] = std::array::from_fn(|i| (sw * (i / 4) + dw * (4 * g + i % 4)).min(63) as u8);
        // SAFETY: b holds 64 bytes.
        unsafe { _mm512_loadu_si512(b.as_ptr() as *const _) }
    });
    // Weights of group g of kernel row ky as one word (zero past the row).
    let mut words = [0i32; DW_MAX_WORDS];
    for ky in 0..s.kernel_h {
        for g in 0..groups {
            let b: [u8; 4] = std::array::from_fn(|j| if 4 * g + j < kw { wk[ky * kw + 4 * g + j] as u8 } else { 0 });
            words[ky * groups + g] = i32::from_le_bytes(b);
        }
    }
    let flip = _mm512_set1_epi8(-128);
    for oy in 0..s.out_h {
        for c0 in (0..ow16).step_by(16) {
            let mut c = _mm512_setzero_si512();
            for ky in 0..s.kernel_h {
                let at = (oy * s.stride_h + ky * s.dilation_h) * stride + c0 * sw;
                // SAFETY: at + 64 ≤ (last_row + 1) · stride ≤ plane.len()
                // (asserted: c0 ≤ ow16 − 16 and stride ≥ (ow16 − 16)·sw + 64).
                let v = _mm512_xor_si512(unsafe { _mm512_loadu_si512(plane.as_ptr().add(at) as *const _) }, flip);
                for g in 0..groups {
                    let win = _mm512_permutexvar_epi8(idx[g], v);
                    c = _mm512_dpbusd_epi32(c, win, _mm512_set1_epi32(words[ky * groups + g]));
                }
            }
            // SAFETY: c0 + 16 ≤ ow16 ≤ acc.len() (asserted).
            unsafe { _mm512_storeu_si512(acc.as_mut_ptr().add(c0) as *mut _, c) };
        }
        row_done(oy, acc);
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
