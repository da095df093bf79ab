//! Int8 matrix kernels: i8 × i8 → i32 dot products, then a float epilogue
//! (bias, dequantize, activation) that writes float32 or requantizes to int8.
//!
//! Both operands are read along K: a row of activations (a row of A, or one
//! output pixel's patch of a convolution) against a row of weights
//! (`[out, Kp]`, K padded with zeros to a multiple of [`K_ALIGN`]). That is
//! the layout every dot-product instruction wants: AVX2 `vpmaddubsw`,
//! AVX-512 VNNI `vpdpbusd`, NEON `sdot`.
//!
//! x86's instructions multiply unsigned by signed bytes. With
//! `|a| · (w · sign(a)) = a · w` the activation side is made unsigned
//! (`|a|` ≤ 128 fits a u8) and the weight side carries the sign; weights are
//! symmetric, in −127..=127, so `w · sign(a)` never overflows and a pair of
//! products (≤ 2 · 128 · 127 = 32512) never saturates `vpmaddubsw`'s i16.

use super::Activation;
use crate::{Parallel, Scratch, SharedMut};

mod depthwise;
mod direct;
mod panel;
mod quantize;
pub use super::pool::max_pool2d_i8;
use depthwise::{dw_padded, pad_plane, qdepthwise};
use panel::{gather_panel, panel_block, uses_panel};
pub use quantize::{dequantize, quantize, quantize_channels, quantize_channels_par, quantize_one, quantize_par};

/// K of every weight row is padded to a multiple of this (with zeros).
/// The micro-kernels step 32 bytes at a time; the rest of a row (under 32)
/// is summed in the driver, so rows need not be padded further (a
/// 120-wide row stays 120 bytes, not 128: the file stays small).
pub const K_ALIGN: usize = 4;

/// Most bytes a micro-kernel consumes per step (the tail buffers' size).
const MAX_STEP: usize = 64;

/// Output pixels a convolution task gathers into one patch block.
pub(crate) const PIXEL_BLOCK: usize = 64;
/// Rows of A a GEMM task copies (padded) into scratch at a time.
const ROW_BLOCK: usize = 16;

/// The int8 kernel variant, chosen at run time from the CPU's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QIsa {
    /// Portable Rust, any machine.
    Portable,
    /// x86-64 AVX2 (`vpmaddubsw` + `vpmaddwd`).
    Avx2,
    /// x86-64 AVX-512 VNNI on 512-bit registers (`vpdpbusd`; needs
    /// AVX512F, AVX512BW and AVX512VNNI).
    Avx512Vnni,
    /// aarch64 with the dot-product extension (`sdot`; Jetson Xavier and
    /// Orin have it).
    NeonDot,
    /// aarch64 with the int8 matrix-multiply extension (`smmla`: a 2×8 by
    /// 8×2 product per instruction; Jetson Thor's Neoverse V3AE has it,
    /// Orin's Cortex-A78AE does not).
    NeonI8mm,
}

impl QIsa {
    /// Every variant, best first.
    pub const ALL: [QIsa; 5] = [QIsa::Avx512Vnni, QIsa::Avx2, QIsa::NeonI8mm, QIsa::NeonDot, QIsa::Portable];

    /// The best variant this machine supports.
    pub fn detect() -> QIsa {
        Self::ALL.into_iter().find(|q| q.supported()).unwrap_or(QIsa::Portable)
    }

    pub fn supported(self) -> bool {
        match self {
            QIsa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            QIsa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            QIsa::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            QIsa::NeonDot => std::arch::is_aarch64_feature_detected!("dotprod"),
            #[cfg(target_arch = "aarch64")]
            QIsa::NeonI8mm => std::arch::is_aarch64_feature_detected!("i8mm"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QIsa::Portable => "portable",
            QIsa::Avx2 => "avx2",
            QIsa::Avx512Vnni => "avx512vnni",
            QIsa::NeonDot => "neon_dotprod",
            QIsa::NeonI8mm => "neon_i8mm",
        }
    }
}

/// Largest tile (activation rows × weight rows) of any variant.
pub(crate) const MAX_QTILE: usize = 16;

/// `acc[i * mw + j] = Σ_k a[i][k] · w[j][k]` over `kp` bytes (a multiple
/// of the variant's `step`) for `ma` activation rows and `mw` weight rows,
/// given by pointers; plus `128 · Σ_k w[j][k]` for a `shifted` variant.
/// Safety: every pointer addresses `kp` readable bytes; weights lie in
/// −127..=127; the variant's instructions are supported.
pub(crate) type QKernel = unsafe fn(kp: usize, a: &[*const i8], w: &[*const i8], acc: &mut [i32; MAX_QTILE]);

struct QVariant {
    ma: usize,
    mw: usize,
    /// `ukr` takes K in multiples of this many bytes (at most
    /// [`MAX_STEP`]); the rest of a row goes through a zero-padded copy.
    step: usize,
    /// `ukr` reads activations as `a + 128` (unsigned), so its sums carry
    /// `128 · Σ w` that [`dot_block`] takes off.
    shifted: bool,
    ukr: QKernel,
}

fn qvariant(q: QIsa) -> QVariant {
    match q {
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx2 => QVariant { ma: 2, mw: 4, step: 32, shifted: false, ukr: super::x86::qdot_2x4_avx2 },
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx512Vnni => QVariant { ma: 4, mw: 4, step: K_ALIGN, shifted: true, ukr: super::x86::qdot_4x4_vnni512 },
        #[cfg(target_arch = "aarch64")]
        QIsa::NeonDot => QVariant { ma: 4, mw: 4, step: 32, shifted: false, ukr: super::neon::qdot_4x4_sdot },
        #[cfg(target_arch = "aarch64")]
        QIsa::NeonI8mm => QVariant { ma: 4, mw: 4, step: 16, shifted: false, ukr: super::neon::qdot_4x4_smmla },
        _ => QVariant { ma: 4, mw: 4, step: 32, shifted: false, ukr: qdot_portable },
    }
}

/// Portable micro-kernel: 4 × 4 dot products.
unsafe fn qdot_portable(kp: usize, a: &[*const i8], w: &[*const i8], acc: &mut [i32; MAX_QTILE]) {
    let mw = w.len();
    // SAFETY: the caller guarantees kp readable bytes behind every pointer.
    let rows = |p: &[*const i8]| -> [&[i8]; 4] {
        let mut out: [&[i8]; 4] = [&[]; 4];
        for (o, &ptr) in out.iter_mut().zip(p) {
            *o = unsafe { std::slice::from_raw_parts(ptr, kp) };
        }
        out
    };
    let (ar, wr) = (rows(a), rows(w));
    for i in 0..a.len() {
        for j in 0..mw {
            acc[i * mw + j] = dot_i8(ar[i], wr[j]);
        }
    }
}

/// Plain dot product of two byte rows, in i32.
#[inline]
pub fn dot_i8(a: &[i8], w: &[i8]) -> i32 {
    // Sixteen i32 lanes per chunk keep the compiler's vectorizer busy and
    // the sum exact (i32 cannot overflow for K < 2^17).
    let mut lanes = [0i32; 16];
    let (ca, cw) = (a.chunks_exact(16), w.chunks_exact(16));
    let (ta, tw) = (ca.remainder(), cw.remainder());
    for (x, y) in ca.zip(cw) {
        for l in 0..16 {
            lanes[l] += x[l] as i32 * y[l] as i32;
        }
    }
    lanes.iter().sum::<i32>() + ta.iter().zip(tw).map(|(&x, &y)| x as i32 * y as i32).sum::<i32>()
}

/// `out[i * os_a + j * os_w] = Σ_k a[i][k] · w[j][k]` for `na` activation
/// rows (`a`, stride `kp`) and `nw` weight rows (`w`, stride `kp`).
#[allow(clippy::too_many_arguments)]
fn dot_block(q: QIsa, kp: usize, a: &[i8], na: usize, w: &[i8], nw: usize, out: &mut [i32], os_a: usize, os_w: usize) {
    assert!(a.len() >= na * kp && w.len() >= nw * kp, "dot_block: operands too short");
    assert!(na == 0 || nw == 0 || out.len() > (na - 1) * os_a + (nw - 1) * os_w, "dot_block: output too short");
    let v = qvariant(q);
    assert!(q.supported(), "int8 variant {} is not supported here", q.name());
    let main = kp - kp % v.step;
    let mut acc = [0i32; MAX_QTILE];
    let mut tail_acc = [0i32; MAX_QTILE];
    let mut pa = [std::ptr::null::<i8>(); 4];
    let mut pw = [std::ptr::null::<i8>(); 4];
    // The last K % step bytes of each row, zero-padded to one whole step,
    // so the micro-kernel does the tail too.
    let tail = kp - main;
    let mut wt = [[0i8; MAX_STEP]; 4];
    let mut at = [[0i8; MAX_STEP]; 4];
    let mut pwt = [std::ptr::null::<i8>(); 4];
    let mut pat = [std::ptr::null::<i8>(); 4];
    // What a shifted kernel adds to a weight row's sums: 128 · Σ w, once
    // over the row (a padded tail's zeros add nothing), computed once per
    // weight tile.
    let mut shift = [0i32; 4];
    let mut j0 = 0;
    while j0 < nw {
        let mw = v.mw.min(nw - j0);
        set_tile(w, j0, mw, v.mw, kp, main, &mut pw, &mut wt, &mut pwt);
        if v.shifted {
            for (j, sh) in shift.iter_mut().enumerate().take(mw) {
                *sh = 128 * row_sum(q, &w[(j0 + j) * kp..(j0 + j + 1) * kp]);
            }
        }
        let mut i0 = 0;
        while i0 < na {
            let ma = v.ma.min(na - i0);
            set_tile(a, i0, ma, v.ma, kp, main, &mut pa, &mut at, &mut pat);
            if main > 0 {
                // SAFETY: every pointer addresses a whole row of kp ≥ main
                // bytes inside `a` or `w` (asserted above); main is a
                // multiple of the step; the variant is supported.
                unsafe { (v.ukr)(main, &pa[..v.ma], &pw[..v.mw], &mut acc) };
            } else {
                acc.fill(0);
            }
            if tail > 0 {
                // SAFETY: the tail buffers hold MAX_STEP ≥ step bytes each.
                unsafe { (v.ukr)(v.step, &pat[..v.ma], &pwt[..v.mw], &mut tail_acc) };
            }
            for i in 0..ma {
                for j in 0..mw {
                    let t = if tail > 0 { tail_acc[i * v.mw + j] } else { 0 };
                    let sh = if v.shifted { shift[j] } else { 0 };
                    out[(i0 + i) * os_a + (j0 + j) * os_w] = acc[i * v.mw + j] + t - sh;
                }
            }
            i0 += ma;
        }
        j0 += mw;
    }
}

/// Σ of a row of weight bytes, in i32, for variant `q`'s kernels.
fn row_sum(q: QIsa, w: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if q == QIsa::Avx512Vnni {
        assert!(q.supported(), "int8 variant {} is not supported here", q.name());
        // SAFETY: supported (asserted).
        return unsafe { super::x86::row_sum_vnni512(w) };
    }
    let _ = q;
    w.iter().map(|&x| x as i32).sum()
}

/// Points `ptrs[..slots]` at rows `first .. first + count` of `src` (rows
/// of `kp` bytes; a short tile repeats its last row, whose results are
/// dropped) and copies each row's bytes from `main` on into `tails`,
/// zero-padded, with `tail_ptrs` at them.
#[allow(clippy::too_many_arguments)]
fn set_tile(
    src: &[i8],
    first: usize,
    count: usize,
    slots: usize,
    kp: usize,
    main: usize,
    ptrs: &mut [*const i8; 4],
    tails: &mut [[i8; MAX_STEP]; 4],
    tail_ptrs: &mut [*const i8; 4],
) {
    for t in 0..slots {
        let row = (first + t.min(count - 1)) * kp;
        ptrs[t] = src[row..].as_ptr();
        if main < kp {
            tails[t][..kp - main].copy_from_slice(&src[row + main..row + kp]);
            tail_ptrs[t] = tails[t].as_ptr();
        }
    }
}

/// Where a quantized layer's output goes.
pub enum QOut<'a> {
    F32(&'a mut [f32]),
    /// Requantized: `q = clamp(round(y / scale) + zero_point)`.
    I8 {
        y: &'a mut [i8],
        scale: f32,
        zero_point: i8,
    },
}

/// Per output channel: `y = act(acc · deq + bias)`. The bias is a float:
/// as an int32 in units of `deq` (TFLite's choice) it overflows when a
/// layer's weights or input scale are tiny.
#[derive(Debug, Clone, Copy)]
pub struct QEpilogue<'a> {
    pub bias: &'a [f32],
    pub deq: &'a [f32],
    pub act: Activation,
}

/// How one output row's accumulators become floats: one scale and bias for
/// the row (a convolution's output channel) or one per column (a GEMM's).
#[derive(Clone, Copy)]
enum RowScale<'a> {
    One { deq: f32, bias: f32 },
    Cols { deq: &'a [f32], bias: &'a [f32] },
}

/// `row = act(acc · deq + bias)`, stored to the output at element `at`
/// (as floats, or quantized). Dispatched on the int8 variant: compiled for
/// the baseline these loops ran on 4 lanes, and the quantizing store alone
/// was a quarter of MobileNet v2's int8 time on an AVX-512 host. Multiplies
/// and adds, not fused: the same values on every variant.
///
/// Safety: `at .. at + row.len()` belongs to the calling task.
#[allow(clippy::too_many_arguments)]
unsafe fn finish_row(q: QIsa, acc: &[i32], scale: RowScale<'_>, act: Activation, row: &mut [f32], out: &SharedOut<'_>, at: usize) {
    match q {
        // SAFETY: the session chose the variant, which it does only where
        // the CPU has its features; the range is the caller's promise.
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx512Vnni => unsafe { finish_row_avx512(acc, scale, act, row, out, at) },
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx2 => unsafe { finish_row_avx2(acc, scale, act, row, out, at) },
        // SAFETY: as above.
        _ => unsafe { finish_row_any(acc, scale, act, row, out, at) },
    }
}

#[inline(always)]
unsafe fn finish_row_any(acc: &[i32], scale: RowScale<'_>, act: Activation, row: &mut [f32], out: &SharedOut<'_>, at: usize) {
    let n = row.len();
    let acc = &acc[..n];
    match scale {
        RowScale::One { deq, bias } => row.iter_mut().zip(acc).for_each(|(o, &a)| *o = a as f32 * deq + bias),
        RowScale::Cols { deq, bias } => {
            for ((o, &a), (&d, &b)) in row.iter_mut().zip(acc).zip(deq[..n].iter().zip(&bias[..n])) {
                *o = a as f32 * d + b;
            }
        }
    }
    act.apply_slice(row);
    // SAFETY: forwarded.
    unsafe { store(out, at, row) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn finish_row_avx512(acc: &[i32], scale: RowScale<'_>, act: Activation, row: &mut [f32], out: &SharedOut<'_>, at: usize) {
    // SAFETY: forwarded.
    unsafe { finish_row_any(acc, scale, act, row, out, at) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn finish_row_avx2(acc: &[i32], scale: RowScale<'_>, act: Activation, row: &mut [f32], out: &SharedOut<'_>, at: usize) {
    // SAFETY: forwarded.
    unsafe { finish_row_any(acc, scale, act, row, out, at) }
}

/// Writes `vals` (floats of one output row, already through the epilogue) to
/// the output at element `at`.
///
/// Safety: `at .. at + vals.len()` belongs to the calling task.
#[inline(always)]
unsafe fn store(out: &SharedOut<'_>, at: usize, vals: &[f32]) {
    match out {
        SharedOut::F32(s) => unsafe { s.slice_mut(at, vals.len()) }.copy_from_slice(vals),
        SharedOut::I8 { y, inv, zp } => {
            let dst = unsafe { y.slice_mut(at, vals.len()) };
            dst.iter_mut().zip(vals).for_each(|(q, &v)| *q = quantize_one(v, *inv, *zp));
        }
    }
}

enum SharedOut<'a> {
    F32(SharedMut<'a, f32>),
    I8 { y: SharedMut<'a, i8>, inv: f32, zp: i8 },
}

impl<'a> SharedOut<'a> {
    fn new(out: QOut<'a>) -> Self {
        match out {
            QOut::F32(y) => SharedOut::F32(SharedMut::new(y)),
            QOut::I8 { y, scale, zero_point } => SharedOut::I8 { y: SharedMut::new(y), inv: 1.0 / scale, zp: zero_point },
        }
    }
    fn len(&self) -> usize {
        match self {
            SharedOut::F32(s) => s.len(),
            SharedOut::I8 { y, .. } => y.len(),
        }
    }
}

/// The geometry of an int8 convolution (the float one's, plus the padded K).
pub use super::conv::Conv2dShape;

/// Scratch floats per worker [`qconv2d`] needs.
pub fn qconv_scratch_floats(s: &Conv2dShape) -> usize {
    if s.is_depthwise() {
        // The window kernel's (AVX-512 VBMI, or the row loop) or the float
        // kernel's, whichever is larger: sized for every variant.
        let (rows, stride) = dw_padded(s);
        let windows = s.out_w.next_multiple_of(16) + (rows * stride).div_ceil(4);
        return windows.max(super::depthwise::scratch_floats(s));
    }
    let kp = conv_kp(s);
    let mg = s.out_channels / s.groups;
    let padded = padded_input(s).map_or(0, |(_, bytes)| bytes.div_ceil(4));
    // The GEMM path's, or the grouped kernel's (narrow groups).
    ((PIXEL_BLOCK * kp).div_ceil(4) + mg * PIXEL_BLOCK + PIXEL_BLOCK + padded).max(super::grouped::scratch_floats(s))
}

/// Output maps up to this many pixels gather from a padded copy of their
/// input (see [`padded_input`]).
const PADDED_MAX_PIXELS: usize = 4 * PIXEL_BLOCK;
/// The most bytes of such a copy.
const PADDED_MAX_BYTES: usize = 512 * 1024;

/// For a small padded map, the shape of a padded copy of one group's input
/// (no padding left: every window lies inside) and its bytes. On a 7×7 map
/// with 3×3 windows, 24 of 49 pixels touch the border, and a border pixel
/// takes the per-byte gather: on ResNet-18's layer4 the gather was as slow
/// as the dot products. Copying the input once into a padded plane per
/// task is cheap next to that.
fn padded_input(s: &Conv2dShape) -> Option<(Conv2dShape, usize)> {
    if s.is_depthwise() || (s.pad_top == 0 && s.pad_left == 0) || s.out_h * s.out_w > PADDED_MAX_PIXELS || s.out_h == 0 || s.out_w == 0 {
        return None;
    }
    let ph = (s.in_h + s.pad_top).max((s.out_h - 1) * s.stride_h + (s.kernel_h - 1) * s.dilation_h + 1);
    let pw = (s.in_w + s.pad_left).max((s.out_w - 1) * s.stride_w + (s.kernel_w - 1) * s.dilation_w + 1);
    let bytes = (s.in_channels / s.groups) * ph * pw;
    (bytes <= PADDED_MAX_BYTES).then_some((Conv2dShape { in_h: ph, in_w: pw, pad_top: 0, pad_left: 0, ..*s }, bytes))
}

/// Fills `dst` (`cg` planes of `ps.in_h × ps.in_w`) from the `cg` planes of
/// `xg` (shape `s`), each plane's padding with `pad(c)`.
fn pad_planes(s: &Conv2dShape, ps: &Conv2dShape, cg: usize, xg: &[i8], pad: &dyn Fn(usize) -> i8, dst: &mut [i8]) {
    let (hw, phw) = (s.in_h * s.in_w, ps.in_h * ps.in_w);
    for c in 0..cg {
        pad_plane(s, &xg[c * hw..(c + 1) * hw], pad(c), ps.in_w, &mut dst[c * phw..(c + 1) * phw]);
    }
}

/// K of a convolution's weight rows, padded to [`K_ALIGN`], except for
/// depthwise convolutions, whose direct kernel needs no padding (a 3×3
/// row stays 9 bytes, not 32).
pub fn conv_kp(s: &Conv2dShape) -> usize {
    let k = (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
    if s.is_depthwise() {
        k
    } else {
        k.next_multiple_of(K_ALIGN)
    }
}

/// Int8 convolution. `x`: i8 NCHW with zero point `x_zp`; `x_pad`: the
/// value padding reads in each input channel (`x_zp` for all when `None`;
/// a converter that shifts channels before quantizing them stores where
/// each channel's zero went); `w`: i8 `[M, Kp]`; `bias`/`deq` per output
/// channel, the bias already holding `−x_zp · Σ_k w[m][k]` (see module doc
/// of the converter).
#[allow(clippy::too_many_arguments)]
pub fn qconv2d(
    q: QIsa,
    par: &dyn Parallel,
    scratch: &Scratch,
    s: &Conv2dShape,
    x: &[i8],
    x_zp: i8,
    x_pad: Option<&[i8]>,
    w: &[i8],
    ep: &QEpilogue<'_>,
    out: QOut<'_>,
) {
    let out = SharedOut::new(out);
    let hw_out = s.out_h * s.out_w;
    assert!(out.len() >= s.batch * s.out_channels * hw_out, "qconv2d: output too short");
    assert!(x_pad.is_none_or(|p| p.len() >= s.in_channels), "qconv2d: padding values too short");
    let direct = direct::ByteConv { s, x, zp: x_zp, x_pad, w, kp: conv_kp(s), ep, out: &out };
    if s.is_depthwise() {
        return qdepthwise(q, par, scratch, &direct);
    }
    if super::grouped::fits(s) {
        return super::grouped::run(direct::float_isa(q), par, scratch, s, &direct);
    }
    let (cg, mg) = (s.in_channels / s.groups, s.out_channels / s.groups);
    let kp = conv_kp(s);
    let k = cg * s.kernel_h * s.kernel_w;
    assert!(w.len() >= s.out_channels * kp, "qconv2d: weights too short");
    let panel = uses_panel(q, s);
    let padded = if panel { None } else { padded_input(s) };
    let blocks = PixelBlocks::new(s, panel);
    // Fewer pixel blocks than workers (a late, small layer): split the
    // output channels too, so every worker has work; but no further: each
    // channel chunk gathers the block's patches again, and on ResNet-18's
    // layer4 (one block, K = 4608) six chunks instead of two made the
    // convolutions take twice as long (2.3 ms against 1.1 ms).
    let want = par.workers();
    let per_group = s.groups * blocks.count;
    let chunks = if per_group * s.batch >= want { 1 } else { want.div_ceil(per_group * s.batch).min(mg.div_ceil(16)).max(1) };
    let chunk = mg.div_ceil(chunks).next_multiple_of(4).min(mg);
    let chunks = mg.div_ceil(chunk);
    let per_image = per_group * chunks;
    let tasks = s.batch * per_image;
    let hw_in = s.in_h * s.in_w;
    let task = |t: usize, worker: usize| {
        let (n, r) = (t / per_image, t % per_image);
        let (g, r) = (r / (blocks.count * chunks), r % (blocks.count * chunks));
        let (b, ch) = (r / chunks, r % chunks);
        let (p0, np) = blocks.range(b);
        let (m0, mc) = (ch * chunk, chunk.min(mg - ch * chunk));
        let xg = &x[(n * s.in_channels + g * cg) * hw_in..][..cg * hw_in];
        scratch.with(worker, |buf| {
            let (patch_f, rest) = buf.split_at_mut((PIXEL_BLOCK * kp).div_ceil(4));
            let patch_bytes: &mut [i8] = bytemuck::cast_slice_mut::<f32, i8>(patch_f);
            let pad = |c: usize| x_pad.map_or(x_zp, |p| p[g * cg + c]);
            let (acc_f, rest) = rest.split_at_mut(mg * PIXEL_BLOCK);
            let (row_f, padded_f) = rest.split_at_mut(PIXEL_BLOCK);
            let acc: &mut [i32] = bytemuck::cast_slice_mut(&mut acc_f[..mc * PIXEL_BLOCK]);
            let wg = &w[(g * mg + m0) * kp..(g * mg + m0 + mc) * kp];
            if panel {
                let panel = &mut patch_bytes[..PIXEL_BLOCK * kp];
                gather_panel(s, xg, &pad, p0, np, k, kp, panel);
                panel_block(q, kp, panel, np, wg, mc, acc);
            } else {
                let patches = &mut patch_bytes[..np * kp];
                match padded {
                    Some((ps, bytes)) => {
                        let copy = &mut bytemuck::cast_slice_mut::<f32, i8>(padded_f)[..bytes];
                        pad_planes(s, &ps, cg, xg, &pad, copy);
                        gather_patches(&ps, copy, &pad, p0, np, k, kp, patches);
                    }
                    None => gather_patches(s, xg, &pad, p0, np, k, kp, patches),
                }
                dot_block(q, kp, patches, np, wg, mc, acc, 1, PIXEL_BLOCK);
            }
            let row = &mut row_f[..np];
            for m in 0..mc {
                let oc = g * mg + m0 + m;
                let scale = RowScale::One { deq: ep.deq[oc], bias: ep.bias[oc] };
                // SAFETY: task t alone writes pixels p0..p0+np of channels
                // m0..m0+mc of its group, in image n.
                unsafe { finish_row(q, &acc[m * PIXEL_BLOCK..], scale, ep.act, row, &out, (n * s.out_channels + oc) * hw_out + p0) };
            }
        });
    };
    par.run(tasks, &task);
}

/// How a convolution's output pixels are cut into blocks of at most
/// [`PIXEL_BLOCK`]: for the panel path, row by row (a block never crosses
/// a row, so each tap of the window reads one contiguous span of an input
/// line); for the row path, [`PIXEL_BLOCK`] consecutive pixels.
struct PixelBlocks {
    count: usize,
    /// Blocks per output row (0: blocks of PIXEL_BLOCK consecutive pixels).
    per_row: usize,
    width: usize,
    out_w: usize,
    len: usize,
}

impl PixelBlocks {
    fn new(s: &Conv2dShape, by_row: bool) -> Self {
        let len = s.out_h * s.out_w;
        if by_row {
            let per_row = s.out_w.div_ceil(PIXEL_BLOCK);
            let width = s.out_w.div_ceil(per_row);
            PixelBlocks { count: s.out_h * per_row, per_row, width, out_w: s.out_w, len }
        } else {
            PixelBlocks { count: len.div_ceil(PIXEL_BLOCK), per_row: 0, width: PIXEL_BLOCK, out_w: s.out_w, len }
        }
    }

    /// The first pixel and the number of pixels of block `b`.
    fn range(&self, b: usize) -> (usize, usize) {
        if self.per_row == 0 {
            let p0 = b * PIXEL_BLOCK;
            return (p0, PIXEL_BLOCK.min(self.len - p0));
        }
        let (oy, x0) = (b / self.per_row, (b % self.per_row) * self.width);
        (oy * self.out_w + x0, self.width.min(self.out_w - x0))
    }
}

/// Patch rows for output pixels `p0 .. p0 + np`: row `p` holds the K input
/// values the pixel's window covers (`pad(c)` in channel `c`'s padding),
/// then zeros up to `kp`.
#[allow(clippy::too_many_arguments)]
fn gather_patches(s: &Conv2dShape, xg: &[i8], pad: &dyn Fn(usize) -> i8, p0: usize, np: usize, k: usize, kp: usize, out: &mut [i8]) {
    let (h, w) = (s.in_h as isize, s.in_w as isize);
    let khw = s.kernel_h * s.kernel_w;
    let cg = k / khw;
    let plain = s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 && s.pad_left == 0;
    if khw == 1 && plain && s.out_h == s.in_h && s.out_w == s.in_w {
        // Pointwise: the patches are a transpose of the input block.
        let hw = s.in_h * s.in_w;
        for p in 0..np {
            out[p * kp + k..(p + 1) * kp].fill(0);
        }
        for c in 0..cg {
            let src = &xg[c * hw + p0..c * hw + p0 + np];
            for (p, &v) in src.iter().enumerate() {
                out[p * kp + c] = v;
            }
        }
        return;
    }
    let hw = s.in_h * s.in_w;
    let (span_y, span_x) = ((s.kernel_h - 1) * s.dilation_h, (s.kernel_w - 1) * s.dilation_w);
    // Output columns whose window lies inside the image horizontally.
    let ox_lo = s.pad_left.div_ceil(s.stride_w).min(s.out_w);
    let ox_hi = if s.in_w + s.pad_left > span_x { ((s.in_w + s.pad_left - span_x - 1) / s.stride_w + 1).min(s.out_w) } else { 0 };
    let mut p = 0;
    while p < np {
        let (oy, ox) = ((p0 + p) / s.out_w, (p0 + p) % s.out_w);
        let y0 = (oy * s.stride_h) as isize - s.pad_top as isize;
        let rows_inside = y0 >= 0 && y0 as usize + span_y < s.in_h;
        let run = (ox_hi.saturating_sub(ox)).min(np - p);
        if rows_inside && ox >= ox_lo && run > 0 {
            // A run of pixels whose whole window is inside the image (most
            // of them): no per-byte bounds test, and the common widths
            // copy as fixed-size arrays rather than through a memcpy call.
            // Pixel by pixel, so each patch row is written while it is in
            // cache.
            let first = y0 as usize * s.in_w + ox * s.stride_w - s.pad_left;
            let win = Window { cg, hw, kernel_h: s.kernel_h, line_step: s.dilation_h * s.in_w };
            for r in 0..run {
                let row = &mut out[(p + r) * kp..(p + r + 1) * kp];
                row[k..].fill(0);
                let base = first + r * s.stride_w;
                match (s.kernel_w, s.dilation_w) {
                    (1, _) => win.fill::<1>(row, xg, base),
                    (3, 1) => win.fill::<3>(row, xg, base),
                    (5, 1) => win.fill::<5>(row, xg, base),
                    (7, 1) => win.fill::<7>(row, xg, base),
                    (kw, dw) => {
                        for (i, d) in row[..k].chunks_exact_mut(kw).enumerate() {
                            let line = &xg[base + (i / s.kernel_h) * hw + (i % s.kernel_h) * win.line_step..];
                            d.iter_mut().zip(line.iter().step_by(dw)).for_each(|(o, &v)| *o = v);
                        }
                    }
                }
            }
            p += run;
            continue;
        }
        let row = &mut out[p * kp..(p + 1) * kp];
        row[k..].fill(0);
        let x0 = (ox * s.stride_w) as isize - s.pad_left as isize;
        for c in 0..cg {
            let plane = &xg[c * hw..(c + 1) * hw];
            let x_zp = pad(c);
            for ky in 0..s.kernel_h {
                let iy = y0 + (ky * s.dilation_h) as isize;
                let dst = &mut row[(c * s.kernel_h + ky) * s.kernel_w..][..s.kernel_w];
                if iy < 0 || iy >= h {
                    dst.fill(x_zp);
                    continue;
                }
                let line = &plane[(iy * w) as usize..((iy + 1) * w) as usize];
                for (kx, d) in dst.iter_mut().enumerate() {
                    let ix = x0 + (kx * s.dilation_w) as isize;
                    *d = if ix < 0 || ix >= w { x_zp } else { line[ix as usize] };
                }
            }
        }
        p += 1;
    }
}

/// A convolution window's lines in the input: `cg` channel planes of `hw`
/// bytes, `kernel_h` lines each, `line_step` bytes apart.
struct Window {
    cg: usize,
    hw: usize,
    kernel_h: usize,
    line_step: usize,
}

impl Window {
    /// One patch row: the `KW` contiguous taps of every line of the window
    /// whose top-left input is `xg[base]`, all inside the image.
    #[inline(always)]
    fn fill<const KW: usize>(&self, row: &mut [i8], xg: &[i8], base: usize) {
        let mut taps = row.chunks_exact_mut(KW);
        for c in 0..self.cg {
            let mut at = base + c * self.hw;
            for _ in 0..self.kernel_h {
                let src: &[i8; KW] = xg[at..at + KW].try_into().expect("KW bytes");
                let dst: &mut [i8; KW] = taps.next().expect("a tap per window line").try_into().expect("KW bytes");
                *dst = *src;
                at += self.line_step;
            }
        }
    }
}

/// Scratch floats per worker [`qgemm`] needs for N output columns and
/// padded K.
pub fn qgemm_scratch_floats(n: usize, kp: usize) -> usize {
    (ROW_BLOCK * kp).div_ceil(4) + ROW_BLOCK * n + n
}

/// Int8 GEMM: `y[i][j] = act((Σ_k a[i][k] · w[j][k] + bias[j]) · deq[j])`
/// for `a` i8 `[m, k]` (row-major, unpadded) and `w` i8 `[n, kp]`.
#[allow(clippy::too_many_arguments)]
pub fn qgemm(
    q: QIsa,
    par: &dyn Parallel,
    scratch: &Scratch,
    m: usize,
    k: usize,
    a: &[i8],
    w: &[i8],
    n: usize,
    ep: &QEpilogue<'_>,
    out: QOut<'_>,
) {
    let kp = k.next_multiple_of(K_ALIGN);
    assert!(a.len() >= m * k && w.len() >= n * kp && ep.bias.len() >= n && ep.deq.len() >= n, "qgemm: operands too short");
    let out = SharedOut::new(out);
    assert!(out.len() >= m * n, "qgemm: output too short");
    let row_blocks = m.div_ceil(ROW_BLOCK);
    // Few rows (a layer at batch 1): split the columns instead.
    let want = par.workers() * 3;
    let col_chunks = if row_blocks >= want { 1 } else { want.div_ceil(row_blocks).min(n.div_ceil(16)).max(1) };
    let col_step = n.div_ceil(col_chunks);
    let col_chunks = n.div_ceil(col_step.max(1)).max(1);
    let task = |t: usize, worker: usize| {
        let (rb, cb) = (t / col_chunks, t % col_chunks);
        let (i0, j0) = (rb * ROW_BLOCK, cb * col_step);
        let (mr, nc) = (ROW_BLOCK.min(m - i0), col_step.min(n - j0));
        scratch.with(worker, |buf| {
            let (af, rest) = buf.split_at_mut((ROW_BLOCK * kp).div_ceil(4));
            let ablk: &mut [i8] = &mut bytemuck::cast_slice_mut::<f32, i8>(af)[..mr * kp];
            for r in 0..mr {
                let dst = &mut ablk[r * kp..(r + 1) * kp];
                dst[..k].copy_from_slice(&a[(i0 + r) * k..(i0 + r + 1) * k]);
                dst[k..].fill(0);
            }
            let (acc_f, row_f) = rest.split_at_mut(ROW_BLOCK * n);
            let acc: &mut [i32] = bytemuck::cast_slice_mut(&mut acc_f[..mr * nc]);
            dot_block(q, kp, ablk, mr, &w[j0 * kp..(j0 + nc) * kp], nc, acc, nc, 1);
            let row = &mut row_f[..nc];
            for r in 0..mr {
                let scale = RowScale::Cols { deq: &ep.deq[j0..j0 + nc], bias: &ep.bias[j0..j0 + nc] };
                // SAFETY: task t alone writes rows i0..i0+mr, columns j0..j0+nc.
                unsafe { finish_row(q, &acc[r * nc..], scale, ep.act, row, &out, (i0 + r) * n + j0) };
            }
        });
    };
    par.run(row_blocks * col_chunks, &task);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TwoWorkers;

    fn bytes(len: usize, seed: u64, lo: i32, hi: i32) -> Vec<i8> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (lo + ((s >> 33) as i32).rem_euclid(hi - lo + 1)) as i8
            })
            .collect()
    }

    /// Every supported variant against the portable one, on extreme values
    /// (−128 activations, ±127 weights) and ragged tile edges.
    /// `JETRT_EXPECT_QISA=NAME[,NAME...]` (set by tools/test_aarch64.sh for
    /// qemu's `-cpu max`) fails the test unless those variants are among them.
    #[test]
    fn variants_match_portable() {
        let supported: Vec<&str> = QIsa::ALL.iter().filter(|q| q.supported()).map(|q| q.name()).collect();
        if let Ok(want) = std::env::var("JETRT_EXPECT_QISA") {
            for want in want.split(',') {
                assert!(supported.contains(&want), "expected the {want} int8 kernels here; supported: {supported:?}");
            }
        }
        for (na, nw, kp) in [(1, 1, 32), (3, 5, 64), (7, 9, 96), (16, 33, 320), (2, 4, 32), (3, 3, 4), (5, 6, 60), (9, 2, 124)] {
            let mut a = bytes(na * kp, 1, -128, 127);
            let w = bytes(nw * kp, 2, -127, 127);
            a[0] = -128;
            let mut want = vec![0; na * nw];
            dot_block(QIsa::Portable, kp, &a, na, &w, nw, &mut want, nw, 1);
            for (i, x) in want.iter().enumerate() {
                let (r, c) = (i / nw, i % nw);
                assert_eq!(*x, dot_i8(&a[r * kp..(r + 1) * kp], &w[c * kp..(c + 1) * kp]));
            }
            for q in QIsa::ALL.into_iter().filter(|q| q.supported()) {
                let mut got = vec![0; na * nw];
                dot_block(q, kp, &a, na, &w, nw, &mut got, nw, 1);
                assert_eq!(got, want, "{} on {na}×{nw}×{kp}", q.name());
            }
            eprintln!("int8 variants tested here: {:?}", QIsa::ALL.iter().filter(|q| q.supported()).map(|q| q.name()).collect::<Vec<_>>());
        }
    }

    /// The saturation case of `vpmaddubsw`: every product at its extreme.
    #[test]
    fn extremes_do_not_saturate() {
        let kp = 64;
        let a = vec![-128i8; kp];
        let w = vec![-127i8; kp];
        for q in QIsa::ALL.into_iter().filter(|q| q.supported()) {
            let mut got = [0i32];
            dot_block(q, kp, &a, 1, &w, 1, &mut got, 1, 1);
            assert_eq!(got[0], 128 * 127 * kp as i32, "{}", q.name());
        }
    }

    fn ref_conv(s: &Conv2dShape, x: &[i8], pad: &dyn Fn(usize) -> i8, w: &[i8], kp: usize, bias: &[f32], deq: &[f32]) -> Vec<f32> {
        let (cg, mg) = (s.in_channels / s.groups, s.out_channels / s.groups);
        let mut y = vec![0.0; s.batch * s.out_channels * s.out_h * s.out_w];
        for n in 0..s.batch {
            for oc in 0..s.out_channels {
                let g = oc / mg;
                for oy in 0..s.out_h {
                    for ox in 0..s.out_w {
                        let mut acc = 0i32;
                        for c in 0..cg {
                            for ky in 0..s.kernel_h {
                                for kx in 0..s.kernel_w {
                                    let iy = (oy * s.stride_h + ky * s.dilation_h) as isize - s.pad_top as isize;
                                    let ix = (ox * s.stride_w + kx * s.dilation_w) as isize - s.pad_left as isize;
                                    let inside = iy >= 0 && ix >= 0 && (iy as usize) < s.in_h && (ix as usize) < s.in_w;
                                    let xv = if inside {
                                        x[((n * s.in_channels + g * cg + c) * s.in_h + iy as usize) * s.in_w + ix as usize]
                                    } else {
                                        pad(g * cg + c)
                                    };
                                    acc += xv as i32 * w[oc * kp + (c * s.kernel_h + ky) * s.kernel_w + kx] as i32;
                                }
                            }
                        }
                        y[((n * s.out_channels + oc) * s.out_h + oy) * s.out_w + ox] = acc as f32 * deq[oc] + bias[oc];
                    }
                }
            }
        }
        y
    }

    fn shape(c: usize, m: usize, g: usize, hw: usize, k: usize, stride: usize, pad: usize) -> Conv2dShape {
        let out = (hw + 2 * pad - k) / stride + 1;
        Conv2dShape {
            batch: 2,
            in_channels: c,
            in_h: hw,
            in_w: hw + 1,
            out_channels: m,
            out_h: out,
            out_w: (hw + 1 + 2 * pad - k) / stride + 1,
            kernel_h: k,
            kernel_w: k,
            stride_h: stride,
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad,
            pad_left: pad,
            groups: g,
        }
    }

    /// `s` with input rows `in_w` wide (and its output rows to match).
    fn wide(s: Conv2dShape, in_w: usize) -> Conv2dShape {
        let span = (s.kernel_w - 1) * s.dilation_w + 1;
        Conv2dShape { in_w, out_w: (in_w + 2 * s.pad_left - span) / s.stride_w + 1, ..s }
    }

    #[test]
    fn conv_matches_reference() {
        for s in [
            shape(3, 5, 1, 9, 3, 1, 1),
            shape(8, 6, 2, 7, 3, 2, 1),
            shape(6, 6, 6, 10, 3, 1, 1),
            shape(4, 8, 4, 9, 5, 2, 2),
            shape(16, 4, 1, 12, 1, 1, 0),
            // Large enough for windows wholly inside the image, several
            // pixel blocks, and every tap width the gather special-cases.
            shape(3, 8, 1, 20, 7, 2, 3),
            shape(16, 12, 1, 14, 3, 1, 1),
            shape(8, 8, 1, 9, 1, 2, 0),
            shape(5, 4, 1, 12, 2, 1, 0),
            shape(6, 4, 1, 13, 5, 1, 2),
            // Rows cut into two blocks; few blocks, so output channels split.
            shape(4, 6, 1, 70, 3, 1, 1),
            shape(8, 40, 1, 5, 3, 1, 1),
            // Output rows of 32 pixels or more: the x86-64 panel path, with
            // each tap width, stride 2, dilation, K not a multiple of 4,
            // and blocks of 35, 36, 40 and 64 pixels.
            wide(shape(3, 8, 1, 9, 7, 2, 3), 70),
            wide(shape(16, 12, 1, 6, 3, 1, 1), 64),
            wide(Conv2dShape { dilation_h: 2, dilation_w: 2, out_h: 11, ..shape(4, 4, 1, 11, 3, 1, 2) }, 40),
            wide(shape(5, 4, 1, 6, 2, 1, 0), 40),
            wide(shape(8, 8, 1, 9, 1, 2, 0), 70),
            wide(shape(6, 4, 1, 7, 5, 1, 2), 36),
            Conv2dShape { dilation_h: 2, dilation_w: 2, out_h: 11, out_w: 12, ..shape(4, 4, 1, 11, 3, 1, 2) },
            // Depthwise as PP-OCR's rec model has them (the AVX-512 VBMI
            // window kernel where the CPU has it): 5×5 on rows of 80, a
            // stride of 2 along one axis, 7-wide, dilated, and 3×3 with a
            // ragged last chunk of 16 pixels.
            Conv2dShape { in_h: 6, in_w: 80, out_h: 6, out_w: 80, ..shape(8, 8, 8, 6, 5, 1, 2) },
            Conv2dShape { in_h: 6, in_w: 80, out_h: 6, out_w: 40, stride_h: 1, stride_w: 2, ..shape(4, 4, 4, 6, 3, 1, 1) },
            Conv2dShape { in_h: 12, in_w: 33, out_h: 6, out_w: 33, stride_h: 2, stride_w: 1, ..shape(3, 3, 3, 12, 5, 1, 2) },
            shape(3, 6, 3, 13, 7, 1, 3),
            Conv2dShape { dilation_h: 2, dilation_w: 2, out_h: 9, out_w: 10, ..shape(4, 4, 4, 9, 3, 1, 2) },
            shape(5, 5, 5, 21, 3, 1, 1),
            // Many small planes per task (the padding written once, again
            // where a channel's padding value changes), stride 2 on both
            // axes, a multiplier of 2, and a plane of several bands.
            shape(40, 40, 40, 7, 3, 1, 1),
            shape(24, 24, 24, 15, 3, 2, 1),
            shape(4, 8, 4, 9, 3, 1, 1),
            shape(2, 2, 2, 260, 3, 1, 1),
            // Narrow groups (the float grouped kernel on exact sums): 8 and
            // 8, 16 and 8 at stride 2, 4 and 4.
            shape(16, 16, 2, 9, 3, 1, 1),
            shape(32, 16, 2, 12, 3, 2, 1),
            shape(8, 8, 2, 7, 3, 1, 1),
        ] {
            let kp = conv_kp(&s);
            let k = (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
            let x = bytes(s.batch * s.in_channels * s.in_h * s.in_w, 3, -128, 127);
            let mut w = bytes(s.out_channels * kp, 4, -127, 127);
            for m in 0..s.out_channels {
                w[m * kp + k..(m + 1) * kp].fill(0);
            }
            let zp = -7i8;
            let bias: Vec<f32> = (0..s.out_channels).map(|i| i as f32 * 0.37 - 0.5).collect();
            let deq: Vec<f32> = (0..s.out_channels).map(|i| 0.001 * (i + 1) as f32).collect();
            // Padding reads the zero point, or a value per channel.
            let per_channel: Vec<i8> = (0..s.in_channels).map(|c| (c as i32 * 37 % 256 - 128) as i8).collect();
            for pads in [None, Some(&per_channel[..])] {
                let want = ref_conv(&s, &x, &|c| pads.map_or(zp, |p| p[c]), &w, kp, &bias, &deq);
                for q in QIsa::ALL.into_iter().filter(|q| q.supported()) {
                    let scratch = Scratch::new(2, qconv_scratch_floats(&s));
                    let mut y = vec![0.0f32; want.len()];
                    let ep = QEpilogue { bias: &bias, deq: &deq, act: Activation::None };
                    qconv2d(q, &TwoWorkers, &scratch, &s, &x, zp, pads, &w, &ep, QOut::F32(&mut y));
                    for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{} {s:?} at {i}: {a} vs {b}", q.name());
                    }
                    let mut yq = vec![0i8; want.len()];
                    qconv2d(q, &TwoWorkers, &scratch, &s, &x, zp, pads, &w, &ep, QOut::I8 { y: &mut yq, scale: 0.05, zero_point: 3 });
                    for (a, b) in yq.iter().zip(&want) {
                        // The depthwise kernel sums in another order: a value
                        // on a rounding boundary may land one step away.
                        assert!((*a as i32 - quantize_one(*b, 1.0 / 0.05, 3) as i32).abs() <= 1, "{a} vs {b}");
                    }
                }
            }
        }
    }

    /// The parallel quantizers give the serial ones' bytes on every
    /// supported variant, across piece edges (sizes not multiples of 64 or
    /// of the workers, planes of odd length).
    #[test]
    fn gemm_matches_reference() {
        for (m, k, n) in [(1usize, 64usize, 10usize), (5, 37, 19), (40, 100, 3), (17, 8, 130)] {
            let kp = k.next_multiple_of(K_ALIGN);
            let a = bytes(m * k, 5, -128, 127);
            let mut w = bytes(n * kp, 6, -127, 127);
            for j in 0..n {
                w[j * kp + k..(j + 1) * kp].fill(0);
            }
            let bias: Vec<f32> = (0..n).map(|i| 0.1 - i as f32 * 0.013).collect();
            let deq: Vec<f32> = (0..n).map(|i| 0.002 / (i + 1) as f32).collect();
            for q in QIsa::ALL.into_iter().filter(|q| q.supported()) {
                let scratch = Scratch::new(2, qgemm_scratch_floats(n, kp));
                let mut y = vec![0.0f32; m * n];
                let ep = QEpilogue { bias: &bias, deq: &deq, act: Activation::Relu };
                qgemm(q, &TwoWorkers, &scratch, m, k, &a, &w, n, &ep, QOut::F32(&mut y));
                for i in 0..m {
                    for j in 0..n {
                        let acc = dot_i8(&a[i * k..(i + 1) * k], &w[j * kp..j * kp + k]);
                        let want = (acc as f32 * deq[j] + bias[j]).max(0.0);
                        assert!((y[i * n + j] - want).abs() <= 1e-5 * want.abs().max(1.0), "{} {m}×{k}×{n}", q.name());
                    }
                }
            }
        }
    }
}
