//! Depthwise convolutions (each output channel reads one input channel),
//! float and int8, two direct kernels:
//!
//! - small planes (output rows under 17 pixels, [`Blocked`]): eight
//!   channels at a time, one vector lane each, in a window of eight-lane
//!   pixels;
//! - the rest ([`DwPlan`]): one output plane at a time, over bands of the
//!   input copied into phase planes so that every tap of every output
//!   reads a contiguous run, whatever the stride, and output rows follow
//!   one another without padding to a vector width.
//!
//! Layout of a band ([`DwPlan`]): the band's input rows, zero-padded (or
//! padded with what a tap in the padding reads), split by row into
//! `stride_h` phases and by column into `stride_w` phases. Phase plane
//! `(ry, cx)` holds the padded rows `ry, ry + stride_h, ...` and, in each,
//! the padded columns `cx, cx + stride_w, ...`, `len` of them. Output
//! `(oy, ox)` is number `oy · len + ox` of the band's flat outputs, and its
//! tap `(ky, kx)` reads plane `(ky·dh mod sh, kx·dw mod sw)` at
//! `(oy + ky·dh div sh) · len + ox + kx·dw div sw`: flat output `f` reads
//! `f + offset(tap)`. So sixteen consecutive outputs are one vector per
//! tap, across row ends: on a 7×7 plane four vectors instead of seven
//! rows each padded to sixteen. Columns `out_w..len` of each row are
//! computed and dropped.
//!
//! The int8 convolution runs the same kernels on `x − zero point` as floats:
//! products of at most 255 · 127 and sums of them stay integers below
//! 2^24 for up to 518 taps, so every sum is exact, in any order, on every
//! variant: the i32 result. (The kernel multiplies and then adds, never
//! fused, for the float convolution's sake: every variant, generic
//! included, gives the same values, so calibration on one host matches
//! another; fused, the last bits moved PP-OCRv5 rec's int8 `--max-drop`
//! choice below its 0.99 cosine on AVX2 hosts.)

use super::conv::{Conv2dShape, ConvOp};
use super::{gemm, Activation, Isa};
use crate::{Parallel, Scratch, SharedMut};

/// Output pixels of one register chunk: one AVX-512 register, two AVX2
/// ones, four NEON ones.
const CHUNK: usize = 16;
/// Most chunks computed at once: independent accumulator chains, enough to
/// cover the multiply-add latency.
const GROUP: usize = 4;
/// Most floats of a band (phase planes and flat outputs) per worker: bands
/// of output rows are sized to stay within it (256 KiB, in L2), one output
/// row at the least.
const BAND_FLOATS: usize = 64 * 1024;
/// Most taps (a 16 × 16 kernel); larger depthwise kernels run the
/// reference convolution (float) or the int8 row loop.
pub(crate) const MAX_TAPS: usize = 256;

/// How a stride-2 row is split into its phases (the variant's, see
/// [`gemm::Variant::de2`]).
pub(crate) type Deinterleave = fn(&[f32], &mut [f32]);

/// Where a band's input rows come from.
pub(crate) trait DwRows {
    /// `dst[i]` = input row `iy`, column `start + i · step`, as a float.
    fn row(&self, iy: usize, start: usize, step: usize, dst: &mut [f32]);
    /// What a tap in the padding reads.
    fn pad(&self) -> f32;
}

/// One float input plane of `width` columns.
pub(crate) struct FloatRows<'a> {
    pub(crate) x: &'a [f32],
    pub(crate) width: usize,
    pub(crate) de2: Deinterleave,
}

impl DwRows for FloatRows<'_> {
    #[inline(always)]
    fn row(&self, iy: usize, start: usize, step: usize, dst: &mut [f32]) {
        let src = &self.x[iy * self.width..(iy + 1) * self.width];
        match step {
            1 => copy_short(&src[start..], dst),
            2 => (self.de2)(&src[start..], dst),
            _ => dst.iter_mut().zip(src[start..].iter().step_by(step)).for_each(|(d, &v)| *d = v),
        }
    }

    #[inline(always)]
    fn pad(&self) -> f32 {
        0.0
    }
}

/// Most column phases (`stride_w`) the kernel takes; wider strides run
/// the reference convolution (float) or the row kernel (int8).
pub(crate) const MAX_PHASES: usize = 16;

/// How [`plane`] lays out and computes a band of one input plane (module
/// doc), worked out once per convolution: the band's geometry, where each
/// tap reads and where the input lies in each column phase (divisions, per
/// plane, were a third of a 7×7 plane's time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DwPlan {
    /// Output rows per band.
    pub(crate) band: usize,
    /// Row and column phases (the strides).
    sh: usize,
    sw: usize,
    /// Rows of each phase plane.
    rows: usize,
    /// Floats per phase row.
    pub(crate) len: usize,
    /// Floats per phase plane: `rows · len` and room for the last chunk's
    /// reads past it.
    plane: usize,
    /// Per column phase, `(first, start, count)`: its entries
    /// `first..first + count` hold input columns `start, start + sw, ...`.
    cols: [(usize, usize, usize); MAX_PHASES],
    pub(crate) taps: usize,
    /// Where each tap reads, from a chunk's first output.
    pub(crate) offs: [usize; MAX_TAPS],
    /// How far past a chunk's start the taps read.
    pub(crate) reach: usize,
    /// Input planes a band holds, and floats per flat output.
    inputs: usize,
    lanes: usize,
    /// How a stride-2 float row is split (the variant's).
    pub(crate) de2: Deinterleave,
}

impl DwPlan {
    /// The plan, or `None` for kernels of more than [`MAX_TAPS`] taps or
    /// strides of more than [`MAX_PHASES`] columns.
    pub(crate) fn new(s: &Conv2dShape) -> Option<DwPlan> {
        Self::sized(s, 1, 1)
    }

    /// The plan for bands of `inputs` input planes at once and flat
    /// outputs of `lanes` floats each (a grouped convolution's channels:
    /// [`super::grouped`]).
    pub(crate) fn sized(s: &Conv2dShape, inputs: usize, lanes: usize) -> Option<DwPlan> {
        let (sh, sw) = (s.stride_h.max(1), s.stride_w.max(1));
        let (kh, kw) = (s.kernel_h.max(1), s.kernel_w.max(1));
        if kh * kw > MAX_TAPS || sw > MAX_PHASES {
            return None;
        }
        let reach_h = (kh - 1) * s.dilation_h / sh;
        let reach_w = (kw - 1) * s.dilation_w / sw;
        let len = s.out_w + reach_w;
        let plane = |band: usize| (band + reach_h) * len + CHUNK + reach_w;
        let floats = |band: usize| inputs * sh * sw * plane(band) + lanes * (band * len + CHUNK);
        // Whole plane if it fits, else the most rows that do (one at least).
        let out_h = s.out_h.max(1);
        let mut band = out_h;
        if floats(band) > BAND_FLOATS {
            let per_row = (inputs * sh * sw + lanes) * len.max(1);
            band = (BAND_FLOATS.saturating_sub(floats(0)) / per_row).clamp(1, out_h);
        }
        let plane = plane(band);
        let mut cols = [(0, 0, 0); MAX_PHASES];
        for (cx, col) in cols.iter_mut().enumerate().take(sw) {
            // Index i of column phase cx holds padded column i·sw + cx,
            // input column i·sw + cx − pad_left.
            let first = s.pad_left.saturating_sub(cx).div_ceil(sw);
            let start = first * sw + cx - s.pad_left;
            let count = if start >= s.in_w || first >= len { 0 } else { (s.in_w - start).div_ceil(sw).min(len - first) };
            *col = (first.min(len), start, count);
        }
        let taps = s.kernel_h * s.kernel_w;
        let mut offs = [0usize; MAX_TAPS];
        for (t, o) in offs.iter_mut().enumerate().take(taps) {
            let (r, c) = ((t / s.kernel_w) * s.dilation_h, (t % s.kernel_w) * s.dilation_w);
            *o = ((r % sh) * sw + c % sw) * plane + (r / sh) * len + c / sw;
        }
        let reach = offs[..taps].iter().max().copied().unwrap_or(0) + CHUNK;
        Some(DwPlan {
            band,
            sh,
            sw,
            rows: band + reach_h,
            len,
            plane,
            cols,
            taps,
            offs,
            reach,
            inputs,
            lanes,
            de2: super::layout::deinterleave2,
        })
    }

    /// Floats of one input plane's phase planes.
    pub(crate) fn phase_floats(&self) -> usize {
        self.sh * self.sw * self.plane
    }

    /// Scratch floats per worker: the phase planes and the flat outputs.
    pub(crate) fn floats(&self) -> usize {
        self.inputs * self.phase_floats() + self.lanes * (self.band * self.len + CHUNK)
    }

    /// The plan with the variant's stride-2 split.
    pub(crate) fn with_de2(self, de2: Deinterleave) -> DwPlan {
        DwPlan { de2, ..self }
    }

    /// Whether one band covers the plane: then where the padding lies is
    /// the same for every plane, and a task writes it once.
    pub(crate) fn one_band(&self, s: &Conv2dShape) -> bool {
        self.band >= s.out_h
    }
}

/// `dst = src` for short rows without a `memcpy` call: eight floats at a
/// time, the last eight overlapping (a call per row of a 7×7 plane cost
/// more than its arithmetic).
#[inline(always)]
pub(crate) fn copy_short(src: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    let src = &src[..n];
    let mut copy = |i: usize, w: usize| match w {
        8 => <&mut [f32; 8]>::try_from(&mut dst[i..i + 8]).map(|d| *d = src[i..i + 8].try_into().expect("8")).expect("8"),
        _ => <&mut [f32; 4]>::try_from(&mut dst[i..i + 4]).map(|d| *d = src[i..i + 4].try_into().expect("4")).expect("4"),
    };
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            copy(i, 8);
            i += 8;
        }
        copy(n - 8, 8);
    } else if n >= 4 {
        copy(0, 4);
        copy(n - 4, 4);
    } else {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = v;
        }
    }
}

/// Fills the phase planes of the band whose first output row is `oy0`
/// ([`DwPlan`]): one copy per input row and column phase and, if `pads`,
/// the padding value around them (a task whose planes are one band each
/// writes the padding once: it lies in the same places in every plane).
#[inline(always)]
pub(crate) fn fill<R: DwRows>(s: &Conv2dShape, p: &DwPlan, src: &R, oy0: usize, pads: bool, buf: &mut [f32]) {
    let (sh, sw, len) = (p.sh, p.sw, p.len);
    let pad = src.pad();
    // Padded row r of the band is input row top + r.
    let top = (oy0 * s.stride_h) as isize - s.pad_top as isize;
    for (cx, &(first, start, count)) in p.cols.iter().enumerate().take(sw) {
        for ry in 0..sh {
            let plane = &mut buf[(ry * sw + cx) * p.plane..][..p.plane];
            let (body, tail) = plane.split_at_mut(p.rows * len);
            if pads {
                tail.fill(pad);
            }
            for (i, row) in body.chunks_exact_mut(len).enumerate() {
                let iy = top + (i * sh + ry) as isize;
                if iy < 0 || iy >= s.in_h as isize || count == 0 {
                    if pads {
                        row.fill(pad);
                    }
                    continue;
                }
                if pads {
                    row[..first].fill(pad);
                    row[first + count..].fill(pad);
                }
                src.row(iy as usize, start, sw, &mut row[first..first + count]);
            }
        }
    }
}

/// Plane `q` of `task`: per band, the phase planes, then
/// the flat outputs in chunks of [`CHUNK`], [`GROUP`] at a time (each
/// chunk's accumulators start at `bias` and take every tap as a multiply
/// and an add over a contiguous run), then `task.emit` for each output row
/// with its `out_w` sums. `pads`: write the padding too (see [`fill`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn plane<T: DwTask>(s: &Conv2dShape, p: &DwPlan, task: &T, q: usize, pads: bool, buf: &mut [f32]) {
    let mut wk = [0.0f32; MAX_TAPS];
    let (src, bias) = task.source(q, &mut wk);
    assert!(buf.len() >= p.floats(), "depthwise: scratch too short");
    let taps = Taps { offs: &p.offs[..p.taps], w: &wk[..p.taps], reach: p.reach };
    let (phases, out) = buf[..p.floats()].split_at_mut(p.phase_floats());
    let mut oy0 = 0;
    while oy0 < s.out_h {
        let rows = p.band.min(s.out_h - oy0);
        fill(s, p, &src, oy0, pads || !p.one_band(s), phases);
        let chunks = (rows * p.len).div_ceil(CHUNK);
        if chunks < GROUP {
            for c in 0..chunks {
                group::<1>(phases, c * CHUNK, &taps, bias, out);
            }
        } else {
            // Groups of four chunks, the last one ending at the last chunk
            // (overlapping the one before: the same values again).
            let mut c = 0;
            while c < chunks {
                group::<GROUP>(phases, c.min(chunks - GROUP) * CHUNK, &taps, bias, out);
                c += GROUP;
            }
        }
        for r in 0..rows {
            task.emit(q, oy0 + r, &mut out[r * p.len..][..s.out_w]);
        }
        oy0 += rows;
    }
}

/// The taps of one plane: where each reads from a chunk's first output,
/// its weight, and how far past a chunk's start the taps read.
struct Taps<'a> {
    offs: &'a [usize],
    w: &'a [f32],
    reach: usize,
}

/// `NV` chunks of flat outputs from `f0` on, into `out[f0..]`.
#[inline(always)]
fn group<const NV: usize>(phases: &[f32], f0: usize, taps: &Taps<'_>, bias: f32, out: &mut [f32]) {
    // Every read below is inside the planes: one check for the group
    // instead of one per tap and chunk.
    assert!(f0 + (NV - 1) * CHUNK + taps.reach <= phases.len(), "depthwise: a tap reads past the band");
    let mut acc = [[bias; CHUNK]; NV];
    for (&off, &w) in taps.offs.iter().zip(taps.w) {
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: f0 + v·CHUNK + off + CHUNK ≤ f0 + (NV − 1)·CHUNK +
            // reach ≤ phases.len() (asserted above).
            let x: [f32; CHUNK] = unsafe { std::ptr::read_unaligned(phases.as_ptr().add(f0 + v * CHUNK + off) as *const [f32; CHUNK]) };
            for l in 0..CHUNK {
                a[l] += w * x[l];
            }
        }
    }
    for (o, a) in out[f0..f0 + NV * CHUNK].chunks_exact_mut(CHUNK).zip(&acc) {
        let o: &mut [f32; CHUNK] = o.try_into().expect("a chunk");
        *o = *a;
    }
}

/// A depthwise convolution's planes, by index: where each reads and where
/// its output rows go. A worker runs [`plane`] for each plane of a range
/// on the variant's registers, the padding written with the first plane
/// and wherever the padding value changes.
pub(crate) trait DwTask {
    type Rows<'r>: DwRows
    where
        Self: 'r;
    /// Plane `plane`'s input rows and bias; its weights (as floats) go
    /// into `w`.
    fn source(&self, plane: usize, w: &mut [f32; MAX_TAPS]) -> (Self::Rows<'_>, f32);
    /// What plane `plane`'s padding reads.
    fn pad(&self, plane: usize) -> f32;
    /// Planes `q0..q0 + lanes` (of one image) as floats, one after the
    /// other: in place, or converted into `tmp`.
    fn planes_f32<'s>(&'s self, q0: usize, lanes: usize, tmp: &'s mut [f32]) -> &'s [f32];
    /// Output rows `oy..` of plane `plane`, from their sums (one row, or
    /// the whole plane).
    fn emit(&self, plane: usize, oy: usize, sums: &mut [f32]);
    /// After the task's planes, all stored.
    fn finish(&self, planes: std::ops::Range<usize>);
}

/// Runs planes `planes` of `task` on `isa`'s registers.
#[inline(always)]
fn planes_on<T: DwTask>(isa: Isa, s: &Conv2dShape, p: &DwPlan, task: &T, planes: std::ops::Range<usize>, buf: &mut [f32]) {
    match isa {
        // SAFETY: the session chose a variant with these features, which
        // it does only where the CPU has them.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { planes_avx512(s, p, task, planes, buf) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => unsafe { planes_avx2(s, p, task, planes, buf) },
        _ => planes_generic(s, p, task, planes, buf),
    }
}

#[inline(always)]
fn planes_generic<T: DwTask>(s: &Conv2dShape, p: &DwPlan, task: &T, planes: std::ops::Range<usize>, buf: &mut [f32]) {
    let mut last_pad = None;
    for q in planes.clone() {
        let pad = task.pad(q).to_bits();
        plane(s, p, task, q, last_pad != Some(pad), buf);
        last_pad = Some(pad);
    }
    task.finish(planes);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn planes_avx512<T: DwTask>(s: &Conv2dShape, p: &DwPlan, task: &T, planes: std::ops::Range<usize>, buf: &mut [f32]) {
    planes_generic(s, p, task, planes, buf)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_avx2<T: DwTask>(s: &Conv2dShape, p: &DwPlan, task: &T, planes: std::ops::Range<usize>, buf: &mut [f32]) {
    planes_generic(s, p, task, planes, buf)
}

/// Channels the blocked kernel computes at once (one AVX2 register).
pub(crate) const LANES: usize = 8;
/// Output rows narrower than this run the blocked kernel, where its window
/// fits: a flat plane of 7 × 7 outputs is four chunks of sixteen with a
/// plane's fixed costs; eight such planes at once are 49 eight-lane
/// vectors with one block's. On an AVX2 host (conv_probe), 960 channels of
/// 7 × 7: 0.10 → 0.055 ms; 576 of 14 × 14: 0.14 → 0.12 ms; 576 of 14 × 14
/// at stride 2: 0.24 → 0.05 ms. At 28 × 28 it won on 3 × 3 and lost on
/// 5 × 5 and stride 2.
const BLOCK_MAX_W: usize = 17;
/// Most padded input pixels in the blocked kernel's window.
const BLOCK_PIXELS: usize = 1024;

/// The blocked kernel's geometry, worked out once per convolution: eight
/// channels of a small plane interleaved into one plane of eight-lane
/// pixels (a padded window of `ph × pw`), each tap one multiply and one add
/// of eight lanes, the outputs split back into their planes.
#[derive(Debug, Clone, Copy)]
struct Blocked {
    ph: usize,
    pw: usize,
    taps: usize,
    /// Where each tap reads, in pixels from an output's first.
    offs: [usize; MAX_TAPS],
    reach: usize,
}

impl Blocked {
    fn new(s: &Conv2dShape) -> Option<Blocked> {
        let taps = s.kernel_h * s.kernel_w;
        let span = |out: usize, stride: usize, k: usize, dil: usize| (out.max(1) - 1) * stride + (k.max(1) - 1) * dil + 1;
        let (ph, pw) = (span(s.out_h, s.stride_h, s.kernel_h, s.dilation_h), span(s.out_w, s.stride_w, s.kernel_w, s.dilation_w));
        if s.out_channels != s.groups || s.out_w >= BLOCK_MAX_W || taps > MAX_TAPS || ph * pw > BLOCK_PIXELS {
            return None;
        }
        let mut offs = [0usize; MAX_TAPS];
        for (t, o) in offs.iter_mut().enumerate().take(taps) {
            *o = (t / s.kernel_w) * s.dilation_h * pw + (t % s.kernel_w) * s.dilation_w;
        }
        let reach = offs[..taps].iter().max().copied().unwrap_or(0);
        Some(Blocked { ph, pw, taps, offs, reach })
    }

    /// Scratch floats per worker: the window, the interleaved input, the
    /// interleaved outputs, the interleaved weights, and eight planes as
    /// floats (the input converted, or the outputs split back).
    fn floats(&self, s: &Conv2dShape) -> usize {
        let (hw_in, hw_out) = (s.in_h * s.in_w, s.out_h * s.out_w);
        (self.ph * self.pw + hw_in + hw_out + self.taps + hw_in.max(hw_out)) * LANES
    }
}

/// `dst[j·8 + c] = src[c·stride + j]` for `lanes` rows `c`, the other lanes
/// zero: register transposes on AVX2 and NEON for eight lanes.
#[inline(always)]
fn interleave(isa: Isa, src: &[f32], stride: usize, lanes: usize, n: usize, dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if lanes == LANES && matches!(isa, Isa::Avx2Fma | Isa::Avx512) {
        // SAFETY: both variants imply AVX2, chosen only where the CPU has it.
        return unsafe { super::x86::interleave8(src, stride, n, dst) };
    }
    #[cfg(target_arch = "aarch64")]
    if lanes == LANES && isa == Isa::Neon {
        return super::neon::interleave8(src, stride, n, dst);
    }
    let _ = isa;
    for (j, px) in dst[..n * LANES].chunks_exact_mut(LANES).enumerate() {
        for (c, v) in px.iter_mut().enumerate() {
            *v = if c < lanes { src[c * stride + j] } else { 0.0 };
        }
    }
}

/// `dst[c·stride + j] = src[j·8 + c]` for `lanes` rows `c`.
#[inline(always)]
pub(crate) fn deinterleave(isa: Isa, src: &[f32], lanes: usize, n: usize, dst: &mut [f32], stride: usize) {
    #[cfg(target_arch = "x86_64")]
    if lanes == LANES && matches!(isa, Isa::Avx2Fma | Isa::Avx512) {
        // SAFETY: as in interleave.
        return unsafe { super::x86::deinterleave8(src, n, dst, stride) };
    }
    #[cfg(target_arch = "aarch64")]
    if lanes == LANES && isa == Isa::Neon {
        return super::neon::deinterleave8(src, n, dst, stride);
    }
    let _ = isa;
    for (j, px) in src[..n * LANES].chunks_exact(LANES).enumerate() {
        for (c, &v) in px.iter().enumerate().take(lanes) {
            dst[c * stride + j] = v;
        }
    }
}

/// Up to eight planes (`lanes`) of a small depthwise convolution with one
/// output channel per input channel ([`Blocked`]), from plane `q0` of
/// `task` on: the input planes interleaved into the window, the weights
/// and biases into lanes, the outputs split back and given to
/// `task.emit` a plane at a time. Sums in the order of [`plane`] (bias,
/// then the taps in order, multiplies and adds): the same values. `first`:
/// the task's first block, which zeroes the window (where the padding
/// lies is the same for every block after).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<T: DwTask>(
    isa: Isa,
    s: &Conv2dShape,
    b: &Blocked,
    task: &T,
    q0: usize,
    lanes: usize,
    pads: &mut Option<[u32; LANES]>,
    buf: &mut [f32],
) {
    let (hw_in, hw_out, win_px) = (s.in_h * s.in_w, s.out_h * s.out_w, b.ph * b.pw);
    let (win, rest) = buf.split_at_mut(win_px * LANES);
    let (inter, rest) = rest.split_at_mut(hw_in * LANES);
    let (out, rest) = rest.split_at_mut(hw_out * LANES);
    let (w8, rest) = rest.split_at_mut(b.taps * LANES);
    let (tmp, _) = rest.split_at_mut(LANES * hw_in.max(hw_out));
    // What each lane's padding reads: written where it changes (for the
    // float convolution and most int8 ones, once per task).
    let mut pad8 = [0.0f32; LANES];
    for (c, p) in pad8.iter_mut().enumerate().take(lanes) {
        *p = task.pad(q0 + c);
    }
    if *pads != Some(pad8.map(f32::to_bits)) {
        for px in win.chunks_exact_mut(LANES) {
            px.copy_from_slice(&pad8);
        }
        *pads = Some(pad8.map(f32::to_bits));
    }
    interleave(isa, task.planes_f32(q0, lanes, tmp), hw_in, lanes, hw_in, inter);
    // The input rows into the window, clipped to what the outputs read.
    let cols = s.in_w.min(b.pw.saturating_sub(s.pad_left));
    for iy in 0..s.in_h.min(b.ph.saturating_sub(s.pad_top)) {
        let at = ((iy + s.pad_top) * b.pw + s.pad_left) * LANES;
        copy_short(&inter[iy * s.in_w * LANES..], &mut win[at..at + cols * LANES]);
    }
    let mut b8 = [0.0f32; LANES];
    let mut wk = [0.0f32; MAX_TAPS];
    w8.fill(0.0);
    for (c, bc) in b8.iter_mut().enumerate().take(lanes) {
        *bc = task.source(q0 + c, &mut wk).1;
        for (t, &v) in wk[..b.taps].iter().enumerate() {
            w8[t * LANES + c] = v;
        }
    }
    let (win, w8) = (&*win, &*w8);
    for oy in 0..s.out_h {
        let p0 = oy * s.stride_h * b.pw;
        if s.out_w < 4 {
            for ox in 0..s.out_w {
                block_group::<1>(win, p0 + ox * s.stride_w, s.stride_w, b, w8, b8, &mut out[(oy * s.out_w + ox) * LANES..]);
            }
            continue;
        }
        // Groups of four outputs, the last one ending at the row's end
        // (overlapping the one before: the same values again). Groups of
        // three compiled to lane inserts and blends.
        let mut ox = 0;
        while ox < s.out_w {
            let at = ox.min(s.out_w - 4);
            block_group::<4>(win, p0 + at * s.stride_w, s.stride_w, b, w8, b8, &mut out[(oy * s.out_w + at) * LANES..]);
            ox += 4;
        }
    }
    deinterleave(isa, out, lanes, hw_out, tmp, hw_out);
    for c in 0..lanes {
        task.emit(q0 + c, 0, &mut tmp[c * hw_out..(c + 1) * hw_out]);
    }
}

/// `NV` consecutive outputs of a row of the blocked kernel, the first
/// reading window pixel `p0`, the next `step` pixels further.
#[inline(always)]
fn block_group<const NV: usize>(win: &[f32], p0: usize, step: usize, b: &Blocked, w8: &[f32], b8: [f32; LANES], out: &mut [f32]) {
    // One check for every read below.
    assert!((p0 + (NV - 1) * step + b.reach + 1) * LANES <= win.len(), "depthwise: a tap reads past the window");
    let mut acc = [b8; NV];
    for (&off, wt) in b.offs[..b.taps].iter().zip(w8.chunks_exact(LANES)) {
        let wt: &[f32; LANES] = wt.try_into().expect("eight lanes");
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: (p0 + v·step + off + 1)·LANES ≤ win.len() (asserted).
            let x: [f32; LANES] =
                unsafe { std::ptr::read_unaligned(win.as_ptr().add((p0 + v * step + off) * LANES) as *const [f32; LANES]) };
            for l in 0..LANES {
                a[l] += wt[l] * x[l];
            }
        }
    }
    for (o, a) in out[..NV * LANES].chunks_exact_mut(LANES).zip(&acc) {
        let o: &mut [f32; LANES] = o.try_into().expect("eight lanes");
        *o = *a;
    }
}

/// The blocked kernel over blocks `blocks` (image-major, eight channels
/// each) of `task` on `isa`'s registers, then `task.finish` over their
/// planes.
fn blocks_on<T: DwTask>(isa: Isa, s: &Conv2dShape, b: &Blocked, task: &T, blocks: std::ops::Range<usize>, buf: &mut [f32]) {
    match isa {
        // SAFETY: the session chose a variant with these features, which
        // it does only where the CPU has them (AVX-512 implies AVX2).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma | Isa::Avx512 => unsafe { blocks_avx2(isa, s, b, task, blocks, buf) },
        _ => blocks_generic(isa, s, b, task, blocks, buf),
    }
}

#[inline(always)]
fn blocks_generic<T: DwTask>(isa: Isa, s: &Conv2dShape, b: &Blocked, task: &T, blocks: std::ops::Range<usize>, buf: &mut [f32]) {
    let per_image = s.out_channels.div_ceil(LANES);
    let plane = |t: usize| (t / per_image) * s.out_channels + (t % per_image) * LANES;
    let mut pads = None;
    for t in blocks.clone() {
        let c0 = (t % per_image) * LANES;
        block(isa, s, b, task, plane(t), LANES.min(s.out_channels - c0), &mut pads, buf);
    }
    task.finish(plane(blocks.start)..plane(blocks.end));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn blocks_avx2<T: DwTask>(isa: Isa, s: &Conv2dShape, b: &Blocked, task: &T, blocks: std::ops::Range<usize>, buf: &mut [f32]) {
    blocks_generic(isa, s, b, task, blocks, buf)
}

/// Runs `task` on the workers: blocks of eight planes where the blocked
/// kernel takes the convolution, else ranges of planes.
pub(crate) fn run<T: DwTask + Sync>(isa: Isa, par: &dyn Parallel, scratch: &Scratch, s: &Conv2dShape, plan: &DwPlan, task: &T) {
    let planes = s.batch * s.out_channels;
    let values = planes * s.out_h * s.out_w * plan.taps;
    if let Some(b) = Blocked::new(s) {
        let blocks = s.batch * s.out_channels.div_ceil(LANES);
        let (per, tasks) = crate::split_units(par, values, blocks);
        par.run(tasks, &|t, worker| {
            let range = t * per..((t + 1) * per).min(blocks);
            scratch.with(worker, |buf| blocks_on(isa, s, &b, task, range, buf));
        });
        return;
    }
    let (per, tasks) = crate::split_units(par, values, planes);
    par.run(tasks, &|t, worker| {
        let range = t * per..((t + 1) * per).min(planes);
        scratch.with(worker, |buf| planes_on(isa, s, plan, task, range, buf));
    });
}

/// Scratch floats per worker a depthwise convolution needs (0 where it
/// runs the reference convolution).
pub(crate) fn scratch_floats(s: &Conv2dShape) -> usize {
    let blocked = Blocked::new(s).map_or(0, |b| b.floats(s));
    DwPlan::new(s).map_or(0, |p| p.floats()).max(blocked)
}

/// The float convolution's planes: input `x`, weights `w`, bias, output.
struct FloatTask<'a> {
    s: &'a Conv2dShape,
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    act: Activation,
    de2: Deinterleave,
    y: SharedMut<'a, f32>,
}

impl DwTask for FloatTask<'_> {
    type Rows<'r>
        = FloatRows<'r>
    where
        Self: 'r;

    #[inline(always)]
    fn source(&self, q: usize, w: &mut [f32; MAX_TAPS]) -> (FloatRows<'_>, f32) {
        let s = self.s;
        let (n, oc) = (q / s.out_channels, q % s.out_channels);
        let (hw_in, khw) = (s.in_h * s.in_w, s.kernel_h * s.kernel_w);
        let ic = oc / (s.out_channels / s.groups);
        let rows = FloatRows { x: &self.x[(n * s.in_channels + ic) * hw_in..][..hw_in], width: s.in_w, de2: self.de2 };
        w[..khw].copy_from_slice(&self.w[oc * khw..(oc + 1) * khw]);
        (rows, self.bias.map_or(0.0, |b| b[oc]))
    }

    #[inline(always)]
    fn pad(&self, _plane: usize) -> f32 {
        0.0
    }

    #[inline(always)]
    fn planes_f32<'s>(&'s self, q0: usize, lanes: usize, _tmp: &'s mut [f32]) -> &'s [f32] {
        let s = self.s;
        let (n, oc) = (q0 / s.out_channels, q0 % s.out_channels);
        let hw_in = s.in_h * s.in_w;
        &self.x[(n * s.in_channels + oc) * hw_in..][..lanes * hw_in]
    }

    #[inline(always)]
    fn emit(&self, q: usize, oy: usize, sums: &mut [f32]) {
        // SAFETY: the task of plane q alone writes its rows.
        let rows = unsafe { self.y.slice_mut((q * self.s.out_h + oy) * self.s.out_w, sums.len()) };
        copy_short(sums, rows);
    }

    #[inline(always)]
    fn finish(&self, planes: std::ops::Range<usize>) {
        let hw = self.s.out_h * self.s.out_w;
        // The task's planes, contiguous and hot in cache, in one pass.
        // SAFETY: this task alone wrote them.
        self.act.apply_slice(unsafe { self.y.slice_mut(planes.start * hw, planes.len() * hw) });
    }
}

/// Float depthwise convolution, planes split over the workers. Same
/// arguments as [`super::conv::conv2d`].
pub(crate) fn depthwise(op: &ConvOp<'_>, y: &mut [f32]) {
    let ConvOp { isa, par, scratch, s, x, w, bias, act } = *op;
    let Some(plan) = DwPlan::new(s) else {
        // Kernels of more than 16 × 16 taps, strides over 16: rare enough
        // for the definition.
        return super::reference::conv2d(s, x, w, bias, act, y);
    };
    assert!(scratch.floats_per_worker() >= scratch_floats(s) && scratch.workers() >= par.workers(), "depthwise: scratch too small");
    let plan = DwPlan { de2: gemm::variant(isa).de2, ..plan };
    let planes = s.batch * s.out_channels;
    let hw_out = s.out_h * s.out_w;
    let task = FloatTask { s, x, w, bias, act, de2: plan.de2, y: SharedMut::new(&mut y[..planes * hw_out]) };
    run(isa, par, scratch, s, &plan, &task);
}
