//! 2-D convolution (NCHW): blocked GEMM over an im2col that is never
//! materialized, Winograd for 3×3 stride-1 ([`super::winograd`]), and a
//! direct kernel for depthwise convolutions ([`super::depthwise`]).

use super::depthwise;
use super::gemm::{self, ASource, BSource, Bias, Epilogue, Im2col, MatRef};
use super::grouped;
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
            return depthwise::scratch_floats(self);
        }
        let g = self.groups.max(1);
        let direct = gemm::scratch_floats_for(
            self.out_channels / g,
            (self.in_channels / g) * self.kernel_h * self.kernel_w,
            self.out_h * self.out_w,
        );
        let direct = direct.max(grouped::scratch_floats(self));
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
    let op = ConvOp { isa, par, scratch, s, x, w, bias, act };
    if s.is_depthwise() {
        return depthwise::depthwise(&op, y);
    }
    if winograd::fits(s) && scratch.shared_floats() >= winograd::shared_floats(s) {
        return winograd::conv(&op, y);
    }
    if grouped::fits(s) {
        return grouped::conv(&op, y);
    }
    let (mg, k) = (s.out_channels / s.groups, (s.in_channels / s.groups) * s.kernel_h * s.kernel_w);
    let weights = |g: usize| ASource::Mat(MatRef::row_major(&w[g * mg * k..(g + 1) * mg * k], mg, k));
    conv2d_gemm(isa, par, scratch, s, x, &weights, bias, act, y);
}

/// One float convolution's operands, as [`conv2d`] hands them to the
/// direct kernel it picks (depthwise, grouped, Winograd); the output goes
/// beside them.
#[derive(Clone, Copy)]
pub(crate) struct ConvOp<'a> {
    pub(crate) isa: Isa,
    pub(crate) par: &'a dyn Parallel,
    pub(crate) scratch: &'a Scratch,
    pub(crate) s: &'a Conv2dShape,
    pub(crate) x: &'a [f32],
    pub(crate) w: &'a [f32],
    pub(crate) bias: Option<&'a [f32]>,
    pub(crate) act: Activation,
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
            // Many small planes per task, their rows run together in the
            // flat outputs; stride 2 on both axes with dilation; 5×5
            // stride 2 on 14×14.
            shape(2, 40, 7, 7, 40, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 40),
            shape(1, 20, 9, 9, 20, (3, 3), (2, 2), (2, 2), (2, 2, 2, 2), 20),
            shape(1, 24, 14, 14, 24, (5, 5), (2, 2), (1, 1), (2, 2, 2, 2), 24),
            // Narrow groups (the grouped kernel): 16 inputs and 8 outputs
            // per group at stride 2, 4 and 4 with dilation, and a plane
            // of several bands.
            shape(1, 32, 30, 30, 16, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 2),
            shape(2, 16, 11, 13, 16, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2), 4),
            shape(1, 16, 200, 150, 16, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 2),
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
