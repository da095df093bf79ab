//! AVX-512 micro-kernels (512-bit registers): the float matrix tile
//! (12 × 32, AVX-512F), and the int8 tiles, row sums and depthwise planes
//! through `vpdpbusd` (VNNI) and `vpermb` (VBMI).

use super::avx2::{dot, hsum_2x4};
use crate::cpu::gemm::{check_panel, TileAct, TileBias, TileMut, TileStore, Variant, MAX_TILE};
use crate::cpu::int8::PIXEL_BLOCK;
use std::arch::x86_64::*;

/// AVX-512F: 12 rows × 32 columns (24 accumulators of 16 floats), B
/// panels of kc × 32. Blocks sized so a B panel (192 × 32 floats, 24 KiB)
/// and an A panel stay in a 48 KiB L1.
pub(crate) const AVX512: Variant = Variant {
    mr: 12,
    nr: 32,
    kc: 192,
    mc: 96,
    nc: 256,
    ukr: ukr_12x32,
    direct_a: true,
    ukr_store: Some(ukr_12x32_store),
    ukr_edge: Some(ukr_edge_store),
    ukr_narrow: None,
    dot,
    de2,
};

fn de2(src: &[f32], dst: &mut [f32]) {
    // SAFETY: the variant is chosen only where the CPU has AVX-512F.
    unsafe { deinterleave2(src, dst) }
}

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
    let c = unsafe { mul_rx32::<12, 2>(kc, a, rs, cs, b) };
    for (r, cr) in c.iter().enumerate() {
        // SAFETY: rows r·32 .. r·32+32 lie inside the MAX_TILE-float tile.
        unsafe {
            _mm512_storeu_ps(acc.as_mut_ptr().add(r * 32), cr[0]);
            _mm512_storeu_ps(acc.as_mut_ptr().add(r * 32 + 16), cr[1]);
        }
    }
}

/// The R×(16·NV) product of an A panel (strides rs, cs) and a packed B
/// panel (rows of 32 floats, of which the first 16·NV are read), in
/// registers.
#[target_feature(enable = "avx2,fma,avx512f")]
#[inline]
unsafe fn mul_rx32<const R: usize, const NV: usize>(
    kc: usize,
    mut a: *const f32,
    rs: usize,
    cs: usize,
    mut b: *const f32,
) -> [[__m512; NV]; R] {
    let mut c = [[_mm512_setzero_ps(); NV]; R];
    let offs: [usize; R] = std::array::from_fn(|r| r * rs);
    for _ in 0..kc {
        // SAFETY: a advances cs and b 32 floats per step, kc steps in all;
        // row r of A is at a + r·rs: inside the slices checked by the caller.
        unsafe {
            let bv: [__m512; NV] = std::array::from_fn(|v| _mm512_loadu_ps(b.add(16 * v)));
            for (r, cr) in c.iter_mut().enumerate() {
                let ar = _mm512_set1_ps(*a.add(offs[r]));
                for (cv, bv) in cr.iter_mut().zip(&bv) {
                    *cv = _mm512_fmadd_ps(ar, *bv, *cv);
                }
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

/// `avx2::ukr_6x16_store_avx2` on 512-bit registers: accumulate, bias,
/// activation, store, with the tile in registers.
#[target_feature(enable = "avx2,fma,avx512f")]
unsafe fn ukr_12x32_store_avx512(kc: usize, a: *const f32, rs: usize, cs: usize, b: *const f32, t: &TileMut, st: &TileStore) {
    // SAFETY: forwarded preconditions.
    unsafe { store_rows(&mul_rx32::<12, 2>(kc, a, rs, cs, b), t, st, !0) }
}

/// The fused kernel and store for an edge tile: `rows` ≤ 12 rows (read
/// where they lie, not from a zero-padded 12-row panel) and `cols` ≤ 32
/// columns (one register per row when 16 do, masked loads and stores for
/// the last). Edges were a third of the tiles of MobileNet's 16- to
/// 40-channel layers and of 7×7 and 14×14 maps.
#[allow(clippy::too_many_arguments)]
fn ukr_edge_store(rows: usize, cols: usize, kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], t: &TileMut, st: &TileStore) {
    assert!((1..=12).contains(&rows) && (1..=32).contains(&cols), "ukr_edge_store: {rows}×{cols} tile");
    check_panel(a, rows, kc, rs, cs);
    let b = &b[..kc * 32];
    let (a, b) = (a.as_ptr(), b.as_ptr());
    let mask: u16 = if cols.is_multiple_of(16) { !0 } else { (1u16 << (cols % 16)) - 1 };
    macro_rules! go {
        ($($r:literal),*) => {
            match (rows, cols > 16) {
                $(
                    // SAFETY: AVX-512F, AVX2 and FMA are detected
                    // (Isa::supported); the A panel and B are checked above;
                    // TileMut points at a rows × cols tile of C owned by this
                    // task.
                    ($r, false) => unsafe { store_rows(&mul_rx32::<$r, 1>(kc, a, rs, cs, b), t, st, mask) },
                    ($r, true) => unsafe { store_rows(&mul_rx32::<$r, 2>(kc, a, rs, cs, b), t, st, mask) },
                )*
                _ => unreachable!("rows checked above"),
            }
        };
    }
    go!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
}

/// Accumulate, bias, activation and store of R rows × 16·NV columns held
/// in registers; `mask` selects the columns of the last register (all 16
/// for a full tile): C and a column bias are read and written only there.
#[target_feature(enable = "avx2,fma,avx512f")]
#[inline]
unsafe fn store_rows<const R: usize, const NV: usize>(c: &[[__m512; NV]; R], t: &TileMut, st: &TileStore, mask: u16) {
    let zero = _mm512_setzero_ps();
    let (lo, hi) = match st.act {
        TileAct::Clip(lo, hi) => (_mm512_set1_ps(lo), _mm512_set1_ps(hi)),
        _ => (zero, zero),
    };
    let masks: [u16; NV] = std::array::from_fn(|v| if v + 1 == NV { mask } else { !0 });
    for (r, cr) in c.iter().enumerate() {
        for (v, (&cv, &m)) in cr.iter().zip(&masks).enumerate() {
            // SAFETY: the columns of row r that `m` selects, t.ptr + r·ldc
            // + 16·v .., lie inside C and are owned by this task; a row bias
            // holds R floats, a column bias the tile's columns; masked-off
            // lanes are not accessed.
            unsafe {
                let p = t.ptr.add(r * t.ldc + 16 * v);
                let mut x = cv;
                if st.accumulate {
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, p));
                }
                match st.bias {
                    TileBias::None => {}
                    TileBias::Row(bias) => x = _mm512_add_ps(x, _mm512_set1_ps(*bias.add(r))),
                    TileBias::Col(bias) => x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, bias.add(16 * v))),
                }
                match st.act {
                    TileAct::None => {}
                    // max(v, 0) with 0 second: NaN becomes 0 (vmaxps returns
                    // the second operand when either is NaN), as in the AVX2
                    // kernel and f32::max.
                    TileAct::Relu => x = _mm512_max_ps(x, zero),
                    // max(lo, v) then min(hi, ·) keep NaN, as Activation::Clip.
                    TileAct::Clip(..) => x = _mm512_min_ps(hi, _mm512_max_ps(lo, x)),
                }
                _mm512_mask_storeu_ps(p, m, x);
            }
        }
    }
}

/// Int8 4 × 4 dot-product tile, AVX-512 VNNI on 512-bit registers.
/// Activation bytes are flipped to unsigned (`a ^ 0x80 = a + 128`), so one
/// `vpdpbusd` per pair of rows does each 64-byte step (no `abs`/`sign` as in
/// [`super::avx2::qdot_2x4_avx2`]: `vpdpbusd` sums in i32 and cannot saturate). The sums
/// come out as `Σ a·w + 128 · Σ w`; the caller subtracts `128 · Σ w`
/// (`QVariant::shifted`).
///
/// The last `kp % 64` bytes are read with masked loads (zeros past the
/// row), so `kp` may be any length and no tail is copied.
///
/// Safety: see [`crate::cpu::int8`]'s `QKernel`; needs AVX512F, AVX512BW and
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
    s: &crate::cpu::conv::Conv2dShape,
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

/// `dst[i] = src[2 i]`, sixteen values a time from 32 with one permute, the
/// tail through masked loads and stores: the depthwise convolution's
/// stride-2 band fill (written as a plain loop, the compiler moved the
/// values one by one, and the tail's copies were `memcpy` calls: together
/// half of a stride-2 plane's time).
///
/// # Safety
/// The CPU must have AVX-512F. `src` must hold `2 · dst.len() − 1` values
/// at least (checked).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn deinterleave2(src: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    assert!(src.len() + 1 >= 2 * n, "deinterleave2: {} values for {n}", src.len());
    let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let mask = |k: usize| if k >= 16 { !0u16 } else { (1u16 << k) - 1 };
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i < n {
        let avail = src.len() - 2 * i;
        // SAFETY: masked-off lanes are not read or written (the pointers
        // are formed with wrapping arithmetic); the lanes read lie in
        // src[2i .. 2i + avail] and those written in dst[i .. n].
        unsafe {
            let lo = _mm512_maskz_loadu_ps(mask(avail), s.wrapping_add(2 * i));
            let hi = _mm512_maskz_loadu_ps(mask(avail.saturating_sub(16)), s.wrapping_add(2 * i + 16));
            _mm512_mask_storeu_ps(d.wrapping_add(i), mask(n - i), _mm512_permutex2var_ps(lo, idx, hi));
        }
        i += 16;
    }
}
