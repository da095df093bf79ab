//! 2-D convolution (NCHW): blocked GEMM over an im2col that is never
//! materialized, Winograd for 3×3 stride-1 ([`super::winograd`]), and a
//! direct kernel for depthwise convolutions.

use super::gemm::{self, ASource, BSource, Bias, Epilogue, Im2col, MatRef};
use super::packed::Rows;
use super::winograd;
use super::{Activation, Isa};
use crate::{Parallel, Scratch, SharedMut};

/// The geometry of one 2-D convolution. Weights are `[out_channels,
/// in_channels / groups, kernel_h, kernel_w]`; the padding at the bottom and
/// right is implied by the output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dShape {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub groups: usize,
}

/// Output length of a convolution or pooling window along one axis:
/// `floor((input + pads − dilation·(kernel − 1) − 1) / stride) + 1`, or
/// `ceil(...)` with `ceil_mode`. `None` when the window does not fit or a
/// value overflows.
pub fn out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil_mode: bool,
) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation.checked_mul(kernel - 1)?.checked_add(1)?;
    let padded = input.checked_add(pad_begin)?.checked_add(pad_end)?;
    let room = padded.checked_sub(span)?;
    let steps = if ceil_mode { room.div_ceil(stride) } else { room / stride };
    let mut out = steps.checked_add(1)?;
    // ONNX (and PyTorch): in ceil mode the last window must start inside the
    // input or the left padding, never entirely in the right padding.
    if ceil_mode && out > 1 && (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    Some(out)
}

impl Conv2dShape {
    /// Whether every input channel has its own filters (groups == in_channels).
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.in_channels && self.out_channels.is_multiple_of(self.groups)
    }

    fn is_pointwise(&self) -> bool {
        self.kernel_h == 1
            && self.kernel_w == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.out_h == self.in_h
            && self.out_w == self.in_w
    }

    /// Scratch floats per worker this convolution needs.
    pub fn scratch_floats(&self) -> usize {
        if self.is_depthwise() {
            // Small planes run the blocked kernel, on the stack.
            return if self.out_channels == self.groups && blocked_fits(self) { 0 } else { DwLayout::new(self).floats() };
        }
        let g = self.groups.max(1);
        let direct = gemm::scratch_floats_for(
            self.out_channels / g,
            (self.in_channels / g) * self.kernel_h * self.kernel_w,
            self.out_h * self.out_w,
        );
        if winograd::fits(self) {
            direct.max(winograd::scratch_floats(self))
        } else {
            direct
        }
    }

    /// Scratch floats shared by the workers (Winograd's transformed
    /// weights); without them, [`conv2d`] computes directly.
    pub fn shared_scratch_floats(&self) -> usize {
        if winograd::fits(self) {
            winograd::shared_floats(self)
        } else {
            0
        }
    }

    /// Multiply-accumulates per image, for cost reports.
    pub fn macs(&self) -> u64 {
        (self.out_channels * self.out_h * self.out_w) as u64
            * ((self.in_channels / self.groups.max(1)) * self.kernel_h * self.kernel_w) as u64
    }
}

/// `y = act(conv(x, w) + bias)`.
///
/// Slices must hold exactly the sizes the shape implies; callers (the
/// runtime) validate shapes when a model is opened.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    isa: Isa,
    par: &dyn Parallel,
    scratch: &Scratch,
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
) {
    if s.is_depthwise() {
        return depthwise(isa, par, scratch, s, x, w, bias, act, y);
    }
    if winograd::fits(s) && scratch.shared_floats() >= winograd::shared_floats(s) {
        return winograd::conv(isa, par, scratch, s, x, w, bias, act, y);
    }
    let (mg, k) = (s.out_channels / s.groups, (s.in_channels / s.groups) * s.kernel_h * s.kernel_w);
    let weights = |g: usize| ASource::Mat(MatRef::row_major(&w[g * mg * k..(g + 1) * mg * k], mg, k));
    conv2d_gemm(isa, par, scratch, s, x, &weights, bias, act, y);
}

/// A convolution with packed weights (`[M, K]` rows in int4 or sparse;
/// one group of channels), decoded panel by panel inside the GEMM.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_packed(
    isa: Isa,
    par: &dyn Parallel,
    scratch: &Scratch,
    s: &Conv2dShape,
    x: &[f32],
    w: Rows<'_>,
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
) {
    assert!(
        s.groups == 1 && w.rows() == s.out_channels && w.k() == s.in_channels * s.kernel_h * s.kernel_w,
        "conv2d_packed: weights {}×{} for {s:?}",
        w.rows(),
        w.k()
    );
    conv2d_gemm(isa, par, scratch, s, x, &|_| ASource::Packed(w), bias, act, y);
}

#[allow(clippy::too_many_arguments)]
fn conv2d_gemm<'w>(
    isa: Isa,
    par: &dyn Parallel,
    scratch: &Scratch,
    s: &Conv2dShape,
    x: &[f32],
    weights: &(dyn Fn(usize) -> ASource<'w> + Sync),
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
) {
    let (cg, mg) = (s.in_channels / s.groups, s.out_channels / s.groups);
    let (hw_in, hw_out) = (s.in_h * s.in_w, s.out_h * s.out_w);
    // Group g of image n: its weights, its input (as is for a pointwise
    // convolution, else as im2col) and its epilogue.
    let problem = |n: usize, g: usize| {
        let xg = &x[(n * s.in_channels + g * cg) * hw_in..][..cg * hw_in];
        let b = if s.is_pointwise() {
            BSource::Mat(MatRef::row_major(xg, cg, hw_in))
        } else {
            BSource::Im2col(Im2col {
                x: xg,
                channels: cg,
                h: s.in_h,
                w: s.in_w,
                kh: s.kernel_h,
                kw: s.kernel_w,
                sh: s.stride_h,
                sw: s.stride_w,
                dh: s.dilation_h,
                dw: s.dilation_w,
                pad_top: s.pad_top,
                pad_left: s.pad_left,
                oh: s.out_h,
                ow: s.out_w,
            })
        };
        let bias = match bias {
            Some(b) => Bias::Row(&b[g * mg..(g + 1) * mg]),
            None => Bias::None,
        };
        (weights(g), b, Epilogue { alpha: 1.0, beta: 1.0, bias, act })
    };
    let workers = par.workers();
    if workers > 1 && s.groups >= 2 * workers {
        // Many small groups (RegNet's group width 8: dozens of 8-row
        // products): the groups over the workers, each product on one
        // thread. Split inside each product instead, every group paid a
        // parallel call, and two threads gained 1.1x.
        let ys = SharedMut::new(&mut y[..s.batch * s.out_channels * hw_out]);
        par.run(s.batch * s.groups, &|t, worker| {
            let (n, g) = (t / s.groups, t % s.groups);
            let (a, b, ep) = problem(n, g);
            // SAFETY: task t alone writes group g's channels of image n.
            let c = SharedMut::new(unsafe { ys.slice_mut((n * s.out_channels + g * mg) * hw_out, mg * hw_out) });
            scratch.with(worker, |buf| gemm::gemm_cols(isa, a, b, &ep, &c, hw_out, (0, hw_out), buf));
        });
        return;
    }
    for n in 0..s.batch {
        for g in 0..s.groups {
            let (a, b, ep) = problem(n, g);
            let yg = &mut y[(n * s.out_channels + g * mg) * hw_out..][..mg * hw_out];
            gemm::gemm_any(isa, par, scratch, a, b, &ep, yg);
        }
    }
}

/// The output columns `lo..hi` whose input column `ox · stride + off` lies
/// inside `0..in_len` (one kernel tap of a row), or `None` if there are none.
pub(crate) fn tap_span(off: isize, stride: usize, in_len: usize, out_len: usize) -> Option<(usize, usize)> {
    let (sw, w) = (stride as isize, in_len as isize);
    let lo = if off >= 0 { 0 } else { ((-off) + sw - 1) / sw };
    let hi = if w - 1 - off < 0 { 0 } else { ((w - 1 - off) / sw + 1).min(out_len as isize) };
    (lo < hi).then_some((lo as usize, hi as usize))
}

/// Depthwise convolution: each output channel reads one input channel, so a
/// direct kernel beats any GEMM: eight channels at a time on planes of
/// short rows ([`depthwise_block`]), else each plane from padded bands
/// ([`dw_plane_padded`]). Same arguments as [`conv2d`].
#[allow(clippy::too_many_arguments)]
fn depthwise(
    isa: Isa,
    par: &dyn Parallel,
    scratch: &Scratch,
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
) {
    let mult = s.out_channels / s.groups;
    let (hw_in, hw_out) = (s.in_h * s.in_w, s.out_h * s.out_w);
    let khw = s.kernel_h * s.kernel_w;
    let planes = s.batch * s.out_channels;
    let yshared = SharedMut::new(&mut y[..planes * hw_out]);
    if mult == 1 && blocked_fits(s) {
        // Small planes: eight channels at a time, one vector lane each.
        let blocks = s.out_channels.div_ceil(LANES);
        let task = |t: usize, _worker: usize| {
            let (n, c0) = (t / blocks, (t % blocks) * LANES);
            let lanes = LANES.min(s.out_channels - c0);
            let xb = &x[(n * s.in_channels + c0) * hw_in..][..lanes * hw_in];
            let wb = &w[c0 * khw..(c0 + lanes) * khw];
            // SAFETY: each task writes only its own channels' planes.
            let yb = unsafe { yshared.slice_mut((n * s.out_channels + c0) * hw_out, lanes * hw_out) };
            #[cfg(target_arch = "x86_64")]
            if isa.avx2() {
                // SAFETY: the session chose a variant with AVX2 and FMA, which it does only where the CPU has them.
                return unsafe { depthwise_block_avx2(s, xb, wb, bias.map(|b| &b[c0..c0 + lanes]), act, yb) };
            }
            depthwise_block(s, xb, wb, bias.map(|b| &b[c0..c0 + lanes]), act, yb);
        };
        return par.run(s.batch * blocks, &task);
    }
    if khw > DW_MAX_TAPS {
        // Kernels of more than 16 × 16 taps: rare enough for the definition.
        return super::reference::conv2d(s, x, w, bias, act, y);
    }
    let lay = DwLayout { de2: gemm::variant(isa).de2, ..DwLayout::new(s) };
    assert!(scratch.floats_per_worker() >= lay.floats() && scratch.workers() >= par.workers(), "depthwise: scratch too small");
    let task = |p: usize, worker: usize| {
        let (n, oc) = (p / s.out_channels, p % s.out_channels);
        let ic = oc / mult;
        let xp = &x[(n * s.in_channels + ic) * hw_in..][..hw_in];
        let wk = &w[oc * khw..(oc + 1) * khw];
        let b = bias.map_or(0.0, |b| b[oc]);
        // SAFETY: each task writes only its own output plane p.
        let yp = unsafe { yshared.slice_mut(p * hw_out, hw_out) };
        scratch.with(worker, |buf| {
            match isa {
                // SAFETY: the session chose a variant with these features,
                // which it does only where the CPU has them.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { dw_plane_avx512(s, &lay, xp, wk, b, buf, yp) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2Fma => unsafe { dw_plane_avx2(s, &lay, xp, wk, b, buf, yp) },
                _ => dw_plane_padded(s, &lay, xp, wk, b, buf, yp),
            }
            // Once over the plane, hot in cache.
            act.apply_slice(yp);
        });
    };
    par.run(planes, &task);
}

/// Channels a blocked depthwise convolution computes at once.
const LANES: usize = 8;
/// Largest padded input window (pixels) of the blocked kernel, and most
/// taps: its buffers live on the stack (32 KiB and 1.5 KiB).
const BLOCK_PIXELS: usize = 1024;
const BLOCK_TAPS: usize = 49;

/// Rows narrower than this run the blocked kernel: a chunk of
/// [`DW_CHUNK`] outputs would be mostly past the row.
const BLOCK_MAX_W: usize = 10;

/// Whether the blocked kernel takes this convolution: planes small enough
/// that rows are short (where row-wise vectors are mostly remainder), and
/// the padded window and taps fit its buffers.
fn blocked_fits(s: &Conv2dShape) -> bool {
    let (ph, pw) = blocked_window(s);
    s.out_w < BLOCK_MAX_W && ph * pw <= BLOCK_PIXELS && s.kernel_h * s.kernel_w <= BLOCK_TAPS
}

/// Rows and columns of input (padding included) the outputs read.
fn blocked_window(s: &Conv2dShape) -> (usize, usize) {
    let span = |out: usize, stride: usize, k: usize, dil: usize| (out.max(1) - 1) * stride + (k.max(1) - 1) * dil + 1;
    (span(s.out_h, s.stride_h, s.kernel_h, s.dilation_h), span(s.out_w, s.stride_w, s.kernel_w, s.dilation_w))
}

/// [`depthwise_block`] on 256-bit registers (the same arithmetic).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_block_avx2(s: &Conv2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, act: Activation, y: &mut [f32]) {
    depthwise_block(s, x, w, bias, act, y)
}

/// Up to [`LANES`] channels of a depthwise convolution with one output
/// channel per input channel: the window copied channel-interleaved (and
/// zero-padded, so no tap needs a bounds check), every tap one multiply-add
/// of eight lanes, the outputs copied back to their planes. Sums in the
/// order of [`dw_plane_padded`] (bias, then taps row by row); padding adds
/// zeros.
#[inline(always)]
fn depthwise_block(s: &Conv2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, act: Activation, y: &mut [f32]) {
    let (hw_in, hw_out, khw) = (s.in_h * s.in_w, s.out_h * s.out_w, s.kernel_h * s.kernel_w);
    let lanes = x.len() / hw_in.max(1);
    let (ph, pw) = blocked_window(s);
    let mut win = [[0.0f32; LANES]; BLOCK_PIXELS];
    for r in 0..ph {
        let iy = r as isize - s.pad_top as isize;
        if iy < 0 || iy >= s.in_h as isize {
            continue;
        }
        for q in 0..pw {
            let ix = q as isize - s.pad_left as isize;
            if ix < 0 || ix >= s.in_w as isize {
                continue;
            }
            let at = iy as usize * s.in_w + ix as usize;
            for (c, v) in win[r * pw + q].iter_mut().enumerate().take(lanes) {
                *v = x[c * hw_in + at];
            }
        }
    }
    let mut taps = [[0.0f32; LANES]; BLOCK_TAPS];
    for (t, tap) in taps.iter_mut().enumerate().take(khw) {
        for (c, v) in tap.iter_mut().enumerate().take(lanes) {
            *v = w[c * khw + t];
        }
    }
    let mut b = [0.0f32; LANES];
    if let Some(bias) = bias {
        b[..lanes].copy_from_slice(&bias[..lanes]);
    }
    for oy in 0..s.out_h {
        for ox in 0..s.out_w {
            let mut acc = b;
            for ky in 0..s.kernel_h {
                let row = (oy * s.stride_h + ky * s.dilation_h) * pw + ox * s.stride_w;
                for kx in 0..s.kernel_w {
                    let (v, t) = (&win[row + kx * s.dilation_w], &taps[ky * s.kernel_w + kx]);
                    for l in 0..LANES {
                        acc[l] += t[l] * v[l];
                    }
                }
            }
            let o = oy * s.out_w + ox;
            for (c, &a) in acc.iter().enumerate().take(lanes) {
                y[c * hw_out + o] = a;
            }
        }
    }
    for c in 0..lanes {
        act.apply_slice(&mut y[c * hw_out..(c + 1) * hw_out]);
    }
}

/// Output pixels of one register chunk of the padded depthwise kernel:
/// one AVX-512 register, two AVX2 ones, four NEON ones.
const DW_CHUNK: usize = 16;
/// Most chunks computed at once: independent accumulator chains, enough to
/// cover the multiply-add latency.
const DW_GROUP: usize = 4;
/// Most floats of padded input per worker: bands of output rows are sized
/// to stay within it (256 KiB, in L2), one output row at the least.
const DW_BAND_FLOATS: usize = 64 * 1024;

/// How [`depthwise_padded`] lays out a band of one input plane: `rows`
/// rows of zero-padded input, each split into `stride_w` phases (phase q
/// holds the padded columns q, q + stride_w, ...) of `len` floats, so that
/// every tap of every output reads a contiguous run, whatever the stride.
#[derive(Debug, Clone, Copy)]
struct DwLayout {
    /// Output rows per band.
    band: usize,
    /// Input rows a band of `band` output rows reads.
    rows: usize,
    phases: usize,
    len: usize,
    /// How a stride-2 row is split into its phases (the variant's).
    de2: Deinterleave,
}

impl DwLayout {
    fn new(s: &Conv2dShape) -> DwLayout {
        let rows_for = |band: usize| (band - 1) * s.stride_h + (s.kernel_h.max(1) - 1) * s.dilation_h + 1;
        let phases = s.stride_w.max(1);
        let reach = ((s.kernel_w.max(1) - 1) * s.dilation_w) / phases;
        let len = s.out_w.next_multiple_of(DW_CHUNK) + reach;
        let per_row = phases * len;
        let out_h = s.out_h.max(1);
        // Whole plane if it fits, else the most rows that do (one at least).
        let mut band = out_h;
        if rows_for(band) * per_row > DW_BAND_FLOATS {
            band = ((DW_BAND_FLOATS / per_row).saturating_sub(rows_for(1)) / s.stride_h.max(1) + 1).min(out_h);
        }
        DwLayout { band, rows: rows_for(band), phases, len, de2: super::layout::deinterleave2 }
    }

    fn floats(&self) -> usize {
        self.rows * self.phases * self.len
    }
}

/// Copies the input rows band `oy0..` reads into `buf` as [`DwLayout`]
/// says, zeros where a tap falls in the padding: per phase, where the
/// input lies in it is the same for every row, so it is worked out once
/// (two divisions per row and phase, and a fill of the whole band, were
/// most of a small stride-2 plane's time); then one copy per input row and
/// phase, and zeros only around it.
#[inline(always)]
fn dw_fill(s: &Conv2dShape, lay: &DwLayout, x: &[f32], oy0: usize, buf: &mut [f32]) {
    let (sw, len) = (lay.phases, lay.len);
    let rows = 0..lay.rows;
    // Band rows with an input row: iy = oy0·stride + r − pad_top in 0..in_h.
    let top = (oy0 * s.stride_h) as isize - s.pad_top as isize;
    let r_lo = (-top).clamp(0, lay.rows as isize) as usize;
    let r_hi = (s.in_h as isize - top).clamp(r_lo as isize, lay.rows as isize) as usize;
    buf[rows.start * sw * len..r_lo * sw * len].fill(0.0);
    buf[r_hi * sw * len..rows.end * sw * len].fill(0.0);
    for q in 0..sw {
        // Index i of phase q holds padded column i·sw + q, input column
        // i·sw + q − pad_left: inputs at first..first + count.
        let first = s.pad_left.saturating_sub(q).div_ceil(sw);
        let start = first * sw + q - s.pad_left;
        let count = if start >= s.in_w || first >= len { 0 } else { (s.in_w - start).div_ceil(sw).min(len - first) };
        let first = first.min(len);
        for r in r_lo..r_hi {
            let iy = (top + r as isize) as usize;
            let src = &x[iy * s.in_w..(iy + 1) * s.in_w];
            let phase = &mut buf[(r * sw + q) * len..(r * sw + q + 1) * len];
            phase[..first].fill(0.0);
            phase[first + count..].fill(0.0);
            let dst = &mut phase[first..first + count];
            match sw {
                _ if count == 0 => {}
                1 => dst.copy_from_slice(&src[start..start + count]),
                2 => (lay.de2)(&src[start..], dst),
                _ => dst.iter_mut().zip(src[start..].iter().step_by(sw)).for_each(|(d, &v)| *d = v),
            }
        }
    }
}

/// Most taps [`dw_plane_padded`] takes (a 16 × 16 kernel); larger
/// depthwise kernels run the reference convolution.
const DW_MAX_TAPS: usize = 256;

/// How a stride-2 band fill splits a row (the variant's, see
/// [`gemm::Variant::de2`]).
type Deinterleave = fn(&[f32], &mut [f32]);

/// One depthwise output plane from padded bands: output rows in chunks of
/// [`DW_CHUNK`], grouped by up to [`DW_GROUP`] (across rows on small
/// planes, so the accumulator chains stay independent when a row is one
/// chunk); each group's accumulators start at the bias and take every tap
/// as a multiply and an add over contiguous runs of the band (not fused:
/// every variant, generic included, gives the same values, so calibration
/// on one host matches another; fused, the last bits moved PP-OCRv5 rec's
/// int8 `--max-drop` choice below its 0.99 cosine on AVX2 hosts),
/// then are stored once.
#[inline(always)]
fn dw_plane_padded(s: &Conv2dShape, lay: &DwLayout, x: &[f32], wk: &[f32], bias: f32, buf: &mut [f32], y: &mut [f32]) {
    let ow = s.out_w;
    let chunks = ow.div_ceil(DW_CHUNK);
    let row_floats = lay.phases * lay.len;
    let taps = s.kernel_h * s.kernel_w;
    assert!(taps <= DW_MAX_TAPS && wk.len() >= taps, "dw_plane_padded: {taps} taps");
    // Where tap (ky, kx) of output column 0 reads, from the band row of
    // its output row.
    let mut offs = [0usize; DW_MAX_TAPS];
    for (t, o) in offs.iter_mut().enumerate().take(taps) {
        let (ky, kx) = (t / s.kernel_w, t % s.kernel_w);
        let c = kx * s.dilation_w;
        *o = ky * s.dilation_h * row_floats + (c % lay.phases) * lay.len + c / lay.phases;
    }
    let taps = Taps { offs: &offs[..taps], w: &wk[..taps], reach: offs[..taps].iter().max().copied().unwrap_or(0) + DW_CHUNK };
    let mut at = [0usize; DW_GROUP];
    let mut yo = [0usize; DW_GROUP];
    let mut n = 0;
    let mut oy0 = 0;
    while oy0 < s.out_h {
        dw_fill(s, lay, x, oy0, buf);
        let band = &buf[..lay.floats()];
        for oy in oy0..(oy0 + lay.band).min(s.out_h) {
            let base = (oy - oy0) * s.stride_h * row_floats;
            for c in 0..chunks {
                (at[n], yo[n]) = (base + c * DW_CHUNK, oy * ow + c * DW_CHUNK);
                n += 1;
                if n == DW_GROUP {
                    dw_flush(&at[..n], &yo[..n], band, &taps, bias, ow, y);
                    n = 0;
                }
            }
        }
        dw_flush(&at[..n], &yo[..n], band, &taps, bias, ow, y);
        n = 0;
        oy0 += lay.band;
    }
}

/// The taps of one depthwise plane: where each reads in the band (from a
/// chunk's first), its weight, and how far past its start a chunk reads.
struct Taps<'a> {
    offs: &'a [usize],
    w: &'a [f32],
    reach: usize,
}

/// [`dw_group`] for the `at.len()` chunks gathered (a function, not a
/// closure: it must be inlined into the callers' target features).
#[inline(always)]
fn dw_flush(at: &[usize], yo: &[usize], band: &[f32], taps: &Taps<'_>, bias: f32, row_len: usize, y: &mut [f32]) {
    match at.len() {
        4 => dw_group::<4>(band, at, yo, taps, bias, row_len, y),
        3 => dw_group::<3>(band, at, yo, taps, bias, row_len, y),
        2 => dw_group::<2>(band, at, yo, taps, bias, row_len, y),
        1 => dw_group::<1>(band, at, yo, taps, bias, row_len, y),
        _ => {}
    }
}

/// `NV` chunks of output, each read from the band at `at[v]` (its first
/// tap) and stored in the plane at `yo[v]`.
#[inline(always)]
fn dw_group<const NV: usize>(band: &[f32], at: &[usize], yo: &[usize], taps: &Taps<'_>, bias: f32, row_len: usize, y: &mut [f32]) {
    let at: [usize; NV] = at.try_into().expect("NV chunks");
    // Every read below is inside the band: one check for the group
    // instead of one per tap and chunk.
    assert!(at.iter().all(|&a| a + taps.reach <= band.len()), "dw_group: a tap reads past the band");
    let mut acc = [[bias; DW_CHUNK]; NV];
    for (&off, &w) in taps.offs.iter().zip(taps.w) {
        for (a, &at) in acc.iter_mut().zip(&at) {
            // SAFETY: at + off + DW_CHUNK ≤ at + reach ≤ band.len()
            // (asserted above; reach is the largest offset plus a chunk).
            let v: [f32; DW_CHUNK] = unsafe { std::ptr::read_unaligned(band.as_ptr().add(at + off) as *const [f32; DW_CHUNK]) };
            for l in 0..DW_CHUNK {
                a[l] += w * v[l];
            }
        }
    }
    for (a, &yo) in acc.iter().zip(yo) {
        if yo + DW_CHUNK <= y.len() {
            // A whole chunk: one that runs past its row writes the start
            // of the next rows, which are stored later (chunks go in row
            // order).
            let o: &mut [f32; DW_CHUNK] = (&mut y[yo..yo + DW_CHUNK]).try_into().expect("a chunk");
            *o = *a;
        } else {
            // The plane's last chunk: only what is left of its row.
            let n = row_len - yo % row_len.max(1);
            y[yo..yo + n].copy_from_slice(&a[..n]);
        }
    }
}

/// [`dw_plane_padded`] on 512-bit registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dw_plane_avx512(s: &Conv2dShape, lay: &DwLayout, x: &[f32], wk: &[f32], bias: f32, buf: &mut [f32], y: &mut [f32]) {
    dw_plane_padded(s, lay, x, wk, bias, buf, y)
}

/// [`dw_plane_padded`] on 256-bit registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_plane_avx2(s: &Conv2dShape, lay: &DwLayout, x: &[f32], wk: &[f32], bias: f32, buf: &mut [f32], y: &mut [f32]) {
    dw_plane_padded(s, lay, x, wk, bias, buf, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::reference;
    use crate::Serial;
    use proptest::prelude::*;

    fn data(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn check(s: Conv2dShape, with_bias: bool) {
        let x = data(s.batch * s.in_channels * s.in_h * s.in_w, 1);
        let w = data(s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w, 2);
        let b = data(s.out_channels, 3);
        let bias = with_bias.then_some(&b[..]);
        let mut want = vec![0.0; s.batch * s.out_channels * s.out_h * s.out_w];
        reference::conv2d(&s, &x, &w, bias, Activation::Relu, &mut want);
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            // One worker and two (grouped convolutions split their groups
            // over the workers).
            for par in [&Serial as &dyn Parallel, &crate::test_util::TwoWorkers] {
                let scratch = Scratch::new(par.workers(), s.scratch_floats());
                let mut got = vec![f32::NAN; want.len()];
                conv2d(isa, par, &scratch, &s, &x, &w, bias, Activation::Relu, &mut got);
                let k = (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
                let tol = 1e-5 * (k as f32).sqrt().max(1.0) * 4.0;
                for (i, (g, wv)) in got.iter().zip(&want).enumerate() {
                    assert!((g - wv).abs() <= tol, "{isa:?} {} workers {s:?} at {i}: {g} vs {wv}", par.workers());
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn shape(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        oc: usize,
        k: (usize, usize),
        st: (usize, usize),
        d: (usize, usize),
        p: (usize, usize, usize, usize),
        g: usize,
    ) -> Option<Conv2dShape> {
        let out_h = out_len(h, k.0, st.0, d.0, p.0, p.2, false)?;
        let out_w = out_len(w, k.1, st.1, d.1, p.1, p.3, false)?;
        Some(Conv2dShape {
            batch: n,
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels: oc,
            out_h,
            out_w,
            kernel_h: k.0,
            kernel_w: k.1,
            stride_h: st.0,
            stride_w: st.1,
            dilation_h: d.0,
            dilation_w: d.1,
            pad_top: p.0,
            pad_left: p.1,
            groups: g,
        })
    }

    #[test]
    fn convolutions_match_reference() {
        let cases = [
            shape(1, 3, 13, 11, 8, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
            shape(2, 4, 9, 9, 6, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1), 2),
            shape(1, 6, 10, 7, 6, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2), 6),
            shape(1, 6, 10, 7, 12, (3, 3), (2, 1), (1, 1), (1, 0, 1, 2), 6),
            shape(1, 5, 8, 8, 7, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1),
            shape(1, 3, 23, 23, 16, (7, 7), (2, 2), (1, 1), (3, 3, 3, 3), 1),
            shape(1, 16, 5, 5, 33, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), 1),
            // More output pixels than one B block, so blocks start inside
            // rows, next to the padding.
            shape(1, 3, 30, 29, 7, (7, 7), (1, 1), (1, 1), (3, 3, 3, 3), 1),
            shape(1, 2, 41, 37, 5, (3, 3), (2, 2), (2, 1), (0, 4, 1, 4), 1),
            shape(2, 4, 24, 24, 6, (5, 5), (1, 1), (1, 1), (0, 0, 4, 4), 2),
            // Many groups of width 8 (RegNet), split over the workers;
            // and grouped 1×1.
            shape(1, 48, 9, 9, 48, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 6),
            shape(2, 32, 7, 5, 16, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 8),
            // A block (256 columns) starting on the last pixel of a row,
            // where the rightmost taps read only padding.
            shape(1, 2, 3, 257, 3, (1, 7), (1, 1), (1, 1), (0, 3, 0, 3), 1),
            // Depthwise on rows of 32 outputs or more (the row kernel, its
            // interior of 3, 5 and 7 taps, stride 2 from split rows, odd
            // widths, dilation, asymmetric padding) and with a multiplier.
            shape(1, 4, 6, 45, 4, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 4),
            shape(1, 3, 7, 70, 3, (5, 5), (2, 2), (1, 1), (2, 2, 2, 2), 3),
            shape(2, 2, 9, 50, 2, (7, 7), (1, 1), (2, 2), (6, 6, 6, 6), 2),
            shape(1, 2, 5, 77, 2, (3, 3), (2, 2), (1, 1), (0, 1, 1, 0), 2),
            shape(1, 2, 4, 600, 2, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 2),
            shape(1, 2, 6, 20, 4, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 2),
            // Planes too large for one padded band (bands of rows), a
            // stride of 3, and a 7-wide kernel dilated past a chunk.
            shape(1, 2, 300, 260, 2, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 2),
            shape(1, 1, 280, 290, 3, (5, 5), (2, 2), (1, 1), (2, 2, 2, 2), 1),
            shape(1, 2, 40, 100, 2, (3, 4), (3, 3), (1, 2), (0, 3, 2, 1), 2),
            shape(1, 2, 20, 90, 2, (7, 7), (1, 1), (3, 3), (9, 9, 9, 9), 2),
        ];
        for s in cases.into_iter().flatten() {
            check(s, true);
            check(s, false);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn random_convolutions_match_reference(
            n in 1usize..3, cg in 1usize..5, g in 1usize..4, mg in 1usize..6,
            h in 1usize..12, w in 1usize..12, kh in 1usize..4, kw in 1usize..4,
            sh in 1usize..3, sw in 1usize..3, dh in 1usize..3, dw in 1usize..3,
            pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), depthwise: bool, bias: bool,
        ) {
            let (c, oc, g) = if depthwise { (g, g * mg, g) } else { (cg * g, mg * g, g) };
            if let Some(s) = shape(n, c, h, w, oc, (kh, kw), (sh, sw), (dh, dw), pads, g) {
                check(s, bias);
            }
        }
    }

    #[test]
    fn output_lengths_follow_onnx() {
        assert_eq!(out_len(224, 7, 2, 1, 3, 3, false), Some(112));
        assert_eq!(out_len(112, 3, 2, 1, 0, 0, false), Some(55));
        assert_eq!(out_len(112, 3, 2, 1, 0, 0, true), Some(56));
        assert_eq!(out_len(5, 2, 2, 1, 0, 0, true), Some(3));
        assert_eq!(out_len(2, 3, 1, 1, 0, 0, false), None);
        assert_eq!(out_len(usize::MAX, 3, 1, 1, 1, 1, false), None);
    }
}
