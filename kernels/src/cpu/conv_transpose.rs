//! ONNX ConvTranspose, 2-D, NCHW.
//!
//! As a GEMM and a scatter ([`conv_transpose2d`]): the products of every
//! input pixel with every (output channel, tap) are one matrix product
//! (`Wᵀ · X`, K = the group's input channels), computed a block of input
//! rows at a time into a shared scratch, then added to where each tap
//! lands (`oy = ih · stride_h − pad_top + ky · dilation_h`, likewise for
//! columns), each output channel by one task. Without the scratch, the
//! direct kernel: every output row owned by one task, which gathers into it
//! the contributions of the input rows and taps that map onto it. Either
//! way no two tasks write the same element and the sums do not depend on
//! the number of workers.

use super::gemm::{self, BSource, Epilogue, MatRef};
use super::Isa;
use crate::{Parallel, Scratch, SharedMut};

/// Geometry of a 2-D transposed convolution.
///
/// Weights are in ONNX layout `[in_channels, out_channels / groups,
/// kernel_h, kernel_w]`. `out_h` and `out_w` are the caller's (they already
/// account for `output_padding`, the end pads, `output_shape` or `auto_pad`;
/// see [`ConvTranspose2dShape::out_len`]); only the begin pads are needed
/// to place the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2dShape {
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

impl ConvTranspose2dShape {
    /// ONNX's output length along one axis:
    /// `stride · (in − 1) + output_padding + (kernel − 1) · dilation + 1 −
    /// pad_begin − pad_end`, or `None` if that is negative.
    pub fn out_len(
        in_len: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad_begin: usize,
        pad_end: usize,
        output_padding: usize,
    ) -> Option<usize> {
        let full = stride * in_len.saturating_sub(1) + output_padding + kernel.saturating_sub(1) * dilation + 1;
        full.checked_sub(pad_begin + pad_end)
    }
}

/// The input positions `i` in `0..in_len` whose output position
/// `i · stride + offset` lies in `0..out_len`: (first i, count).
#[inline(always)]
fn span(offset: isize, stride: usize, in_len: usize, out_len: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if offset >= 0 { 0 } else { (-offset + s - 1) / s };
    let last_out = out_len as isize - 1 - offset;
    if last_out < 0 {
        return (0, 0);
    }
    let hi = (last_out / s + 1).min(in_len as isize);
    if lo >= hi {
        (0, 0)
    } else {
        (lo as usize, (hi - lo) as usize)
    }
}

/// Most floats of one block of GEMM products (1 MiB): blocks of input rows
/// are sized to it, one row at the least.
const BLOCK_FLOATS: usize = 1 << 18;

impl ConvTranspose2dShape {
    /// Input rows per block of products, and the products' rows (output
    /// channels of a group × taps).
    fn block(&self) -> (usize, usize) {
        let m = self.out_channels / self.groups.max(1) * self.kernel_h * self.kernel_w;
        let rows = (BLOCK_FLOATS / (m * self.in_w).max(1)).clamp(1, self.in_h.max(1));
        (rows, m)
    }

    /// Scratch floats shared by the workers: one block of products.
    pub fn shared_scratch_floats(&self) -> usize {
        let (rows, m) = self.block();
        m * rows * self.in_w
    }

    /// Scratch floats per worker: the GEMM's packing.
    pub fn scratch_floats(&self) -> usize {
        let (rows, m) = self.block();
        gemm::scratch_floats_for(m, self.in_channels / self.groups.max(1), rows * self.in_w)
    }
}

fn check_shape(s: &ConvTranspose2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>) {
    assert!(
        s.groups > 0 && s.in_channels.is_multiple_of(s.groups) && s.out_channels.is_multiple_of(s.groups),
        "ConvTranspose: bad groups {s:?}"
    );
    assert!(s.stride_h > 0 && s.stride_w > 0 && s.dilation_h > 0 && s.dilation_w > 0, "ConvTranspose: zero stride or dilation {s:?}");
    let mg = s.out_channels / s.groups;
    assert!(x.len() >= s.batch * s.in_channels * s.in_h * s.in_w, "ConvTranspose: input too short");
    assert!(w.len() >= s.in_channels * mg * s.kernel_h * s.kernel_w, "ConvTranspose: weights too short");
    assert!(bias.is_none_or(|b| b.len() >= s.out_channels), "ConvTranspose: bias too short");
}

/// `y = ConvTranspose(x, w) + bias`, accumulated in f32: the GEMM and
/// scatter when `scratch` holds [`ConvTranspose2dShape::shared_scratch_floats`]
/// shared and [`ConvTranspose2dShape::scratch_floats`] per worker, else
/// [`conv_transpose2d_direct`] (on PP-OCRv5 det's 2×2 stride-2 upsamplers
/// the direct kernel ran at 4.5 GFLOP/s, 30 % of the model).
///
/// Each output element is `bias[oc]` plus, block by block of input rows and
/// tap by tap, the GEMM's sums over the group's input channels.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    isa: Isa,
    par: &dyn Parallel,
    scratch: &Scratch,
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    check_shape(s, x, w, bias);
    if scratch.shared_floats() < s.shared_scratch_floats()
        || scratch.floats_per_worker() < s.scratch_floats()
        || scratch.workers() < par.workers()
    {
        return conv_transpose2d_direct(par, s, x, w, bias, y);
    }
    let (cg, mg) = (s.in_channels / s.groups, s.out_channels / s.groups);
    let (kh, kw) = (s.kernel_h, s.kernel_w);
    let (hw_in, hw_out) = (s.in_h * s.in_w, s.out_h * s.out_w);
    let planes = s.batch * s.out_channels;
    if planes == 0 || hw_out == 0 {
        return;
    }
    let (block_rows, m) = s.block();
    let ys = SharedMut::new(&mut y[..planes * hw_out]);
    // One task per output channel (of the image and group) in every pass.
    let per_plane = |f: &(dyn Fn(usize, &mut [f32]) + Sync), first: usize, count: usize| {
        par.run(count, &|t, _| {
            // SAFETY: each task writes only its own plane.
            f(t, unsafe { ys.slice_mut((first + t) * hw_out, hw_out) });
        });
    };
    per_plane(&|p, yp| yp.fill(bias.map_or(0.0, |b| b[p % s.out_channels])), 0, planes);
    scratch.with_shared_buf(|cols| {
        for n in 0..s.batch {
            for g in 0..s.groups {
                let xg = &x[(n * s.in_channels + g * cg) * hw_in..][..cg * hw_in];
                // Wᵀ: the group's weights are [cg, mg · kh · kw], row-major.
                let wt = MatRef::row_major(&w[g * cg * m..(g + 1) * cg * m], cg, m).t();
                let mut iy0 = 0;
                while iy0 < s.in_h {
                    let iy1 = (iy0 + block_rows).min(s.in_h);
                    let nb = (iy1 - iy0) * s.in_w;
                    let b = MatRef { data: &xg[iy0 * s.in_w..], rows: cg, cols: nb, rs: hw_in, cs: 1 };
                    let cb = &mut cols[..m * nb];
                    gemm::gemm(isa, par, scratch, wt, BSource::Mat(b), &Epilogue::plain(), cb);
                    let cb = &*cb;
                    per_plane(
                        &|oc, yp| {
                            for ky in 0..kh {
                                for iy in iy0..iy1 {
                                    let oy = (iy * s.stride_h + ky * s.dilation_h) as isize - s.pad_top as isize;
                                    if oy < 0 || oy as usize >= s.out_h {
                                        continue;
                                    }
                                    let yrow = &mut yp[oy as usize * s.out_w..][..s.out_w];
                                    for kx in 0..kw {
                                        let off = (kx * s.dilation_w) as isize - s.pad_left as isize;
                                        let (iw0, count) = span(off, s.stride_w, s.in_w, s.out_w);
                                        if count == 0 {
                                            continue;
                                        }
                                        let ox0 = (iw0 as isize * s.stride_w as isize + off) as usize;
                                        let row = (oc * kh + ky) * kw + kx;
                                        let src = &cb[row * nb + (iy - iy0) * s.in_w + iw0..][..count];
                                        if s.stride_w == 1 {
                                            yrow[ox0..ox0 + count].iter_mut().zip(src).for_each(|(o, &v)| *o += v);
                                        } else {
                                            yrow[ox0..].iter_mut().step_by(s.stride_w).zip(src).for_each(|(o, &v)| *o += v);
                                        }
                                    }
                                }
                            }
                        },
                        n * s.out_channels + g * mg,
                        mg,
                    );
                    iy0 = iy1;
                }
            }
        }
    });
}

/// [`conv_transpose2d`] without scratch: output rows of every (image,
/// output channel) plane are split among the workers. Each output element
/// is `bias[oc]` plus, in order over `ky`, the group's input channels and
/// `kx`, every `x · w` that lands on it.
pub fn conv_transpose2d_direct(par: &dyn Parallel, s: &ConvTranspose2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    check_shape(s, x, w, bias);
    let (cg, mg) = (s.in_channels / s.groups, s.out_channels / s.groups);
    let hw_in = s.in_h * s.in_w;
    let rows = s.batch * s.out_channels * s.out_h;
    if rows == 0 || s.out_w == 0 {
        return;
    }
    let ys = SharedMut::new(&mut y[..rows * s.out_w]);
    let chunk = rows.div_ceil(par.workers() * 4).max(1);
    let tasks = rows.div_ceil(chunk);
    par.run(tasks, &|t, _| {
        let (r0, r1) = (t * chunk, ((t + 1) * chunk).min(rows));
        // SAFETY: each task writes its own rows r0..r1.
        let out = unsafe { ys.slice_mut(r0 * s.out_w, (r1 - r0) * s.out_w) };
        for (r, yrow) in (r0..r1).zip(out.chunks_exact_mut(s.out_w)) {
            let (plane, oy) = (r / s.out_h, r % s.out_h);
            let (n, oc) = (plane / s.out_channels, plane % s.out_channels);
            let (g, m) = (oc / mg, oc % mg);
            yrow.fill(bias.map_or(0.0, |b| b[oc]));
            for ky in 0..s.kernel_h {
                // Input row ih lands on oy when ih · stride_h = oy + pad_top − ky · dilation_h.
                let t = oy as isize + s.pad_top as isize - (ky * s.dilation_h) as isize;
                if t < 0 || !(t as usize).is_multiple_of(s.stride_h) || t as usize / s.stride_h >= s.in_h {
                    continue;
                }
                let ih = t as usize / s.stride_h;
                for c in 0..cg {
                    let ic = g * cg + c;
                    let xrow = &x[(n * s.in_channels + ic) * hw_in + ih * s.in_w..][..s.in_w];
                    let wk = &w[((ic * mg + m) * s.kernel_h + ky) * s.kernel_w..][..s.kernel_w];
                    for (kx, &wv) in wk.iter().enumerate() {
                        let off = (kx * s.dilation_w) as isize - s.pad_left as isize;
                        let (iw0, count) = span(off, s.stride_w, s.in_w, s.out_w);
                        if count == 0 {
                            continue;
                        }
                        let ox0 = (iw0 as isize * s.stride_w as isize + off) as usize;
                        let xs = &xrow[iw0..iw0 + count];
                        if s.stride_w == 1 {
                            yrow[ox0..ox0 + count].iter_mut().zip(xs).for_each(|(o, &v)| *o += wv * v);
                        } else {
                            yrow[ox0..].iter_mut().step_by(s.stride_w).zip(xs).for_each(|(o, &v)| *o += wv * v);
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{data, TwoWorkers};
    use crate::Serial;

    /// The definition, input-centric: every `x · w` scattered to where it
    /// lands, in f64.
    fn scatter(s: &ConvTranspose2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (cg, mg) = (s.in_channels / s.groups, s.out_channels / s.groups);
        let mut y = vec![0.0f64; s.batch * s.out_channels * s.out_h * s.out_w];
        for n in 0..s.batch {
            for ic in 0..s.in_channels {
                let g = ic / cg;
                for ih in 0..s.in_h {
                    for iw in 0..s.in_w {
                        let xv = x[((n * s.in_channels + ic) * s.in_h + ih) * s.in_w + iw] as f64;
                        for m in 0..mg {
                            let oc = g * mg + m;
                            for ky in 0..s.kernel_h {
                                for kx in 0..s.kernel_w {
                                    let oy = (ih * s.stride_h + ky * s.dilation_h) as isize - s.pad_top as isize;
                                    let ox = (iw * s.stride_w + kx * s.dilation_w) as isize - s.pad_left as isize;
                                    if oy < 0 || ox < 0 || oy as usize >= s.out_h || ox as usize >= s.out_w {
                                        continue;
                                    }
                                    let wv = w[((ic * mg + m) * s.kernel_h + ky) * s.kernel_w + kx] as f64;
                                    y[((n * s.out_channels + oc) * s.out_h + oy as usize) * s.out_w + ox as usize] += xv * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
        let plane = s.out_h * s.out_w;
        y.iter().enumerate().map(|(i, &v)| (v + bias.map_or(0.0, |b| b[(i / plane) % s.out_channels] as f64)) as f32).collect()
    }

    /// A shape from (in, out, groups) channels, input size, kernel, strides,
    /// dilations, pads (top, left, bottom, right) and output_padding, with
    /// out_h/out_w from the ONNX formula.
    #[allow(clippy::too_many_arguments)]
    fn shape(
        batch: usize,
        (in_channels, out_channels, groups): (usize, usize, usize),
        (in_h, in_w): (usize, usize),
        (kernel_h, kernel_w): (usize, usize),
        (stride_h, stride_w): (usize, usize),
        (dilation_h, dilation_w): (usize, usize),
        (pad_top, pad_left, pad_bottom, pad_right): (usize, usize, usize, usize),
        (op_h, op_w): (usize, usize),
    ) -> ConvTranspose2dShape {
        ConvTranspose2dShape {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            out_h: ConvTranspose2dShape::out_len(in_h, kernel_h, stride_h, dilation_h, pad_top, pad_bottom, op_h).unwrap(),
            out_w: ConvTranspose2dShape::out_len(in_w, kernel_w, stride_w, dilation_w, pad_left, pad_right, op_w).unwrap(),
            kernel_h,
            kernel_w,
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            pad_top,
            pad_left,
            groups,
        }
    }

    fn check(s: &ConvTranspose2dShape, with_bias: bool) {
        let mg = s.out_channels / s.groups;
        let x = data(s.batch * s.in_channels * s.in_h * s.in_w, 1);
        let w = data(s.in_channels * mg * s.kernel_h * s.kernel_w, 2);
        let b = data(s.out_channels, 3);
        let bias = with_bias.then_some(&b[..]);
        let want = scatter(s, &x, &w, bias);
        let terms = (s.in_channels / s.groups * s.kernel_h * s.kernel_w) as f32;
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let close = |got: &[f32], how: &str| {
            for (i, (g, v)) in got.iter().zip(&want).enumerate() {
                assert!((g - v).abs() <= 1e-6 * terms.sqrt().max(1.0) * 4.0, "{how} {s:?} at {i}: {g} vs {v}");
            }
        };
        let mut got = vec![f32::NAN; want.len()];
        conv_transpose2d_direct(&Serial, s, &x, &w, bias, &mut got);
        close(&got, "direct");
        let mut two = vec![f32::NAN; want.len()];
        conv_transpose2d_direct(&TwoWorkers, s, &x, &w, bias, &mut two);
        assert_eq!(bits(&got), bits(&two));
        // The GEMM and scatter, on every variant, one worker and two.
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let mut runs = Vec::new();
            for par in [&Serial as &dyn Parallel, &TwoWorkers] {
                let scratch = Scratch::with_shared(par.workers(), s.scratch_floats(), s.shared_scratch_floats());
                let mut y = vec![f32::NAN; want.len()];
                conv_transpose2d(isa, par, &scratch, s, &x, &w, bias, &mut y);
                close(&y, isa.name());
                runs.push(bits(&y));
            }
            assert_eq!(runs[0], runs[1], "{} {s:?}: one worker and two differ", isa.name());
        }
    }

    #[test]
    fn matches_scatter_definition() {
        let cases = [
            // Plain 3×3, stride 1, no pads.
            shape(1, (1, 1, 1), (3, 3), (3, 3), (1, 1), (1, 1), (0, 0, 0, 0), (0, 0)),
            // The usual 2× upsampler: 4×4 kernel, stride 2, pads 1.
            shape(2, (3, 4, 1), (5, 6), (4, 4), (2, 2), (1, 1), (1, 1, 1, 1), (0, 0)),
            // Stride 2 with output_padding 1 and pads 1 (3×3 kernel).
            shape(1, (2, 3, 1), (4, 5), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), (1, 1)),
            // Groups 2, dilation 2, asymmetric pads.
            shape(1, (4, 6, 2), (5, 4), (3, 2), (1, 1), (2, 2), (1, 0, 2, 3), (0, 0)),
            // Groups 3, strides (2, 3), dilations (1, 2), output_padding (1, 2).
            shape(2, (6, 9, 3), (3, 4), (3, 2), (2, 3), (1, 2), (0, 2, 1, 0), (1, 2)),
            // Depthwise, stride larger than the kernel (gaps get the bias only).
            shape(1, (3, 3, 3), (3, 3), (2, 2), (3, 4), (1, 1), (0, 0, 0, 0), (2, 3)),
            // Pads wider than the kernel span: only the middle survives.
            shape(1, (2, 2, 1), (6, 6), (3, 3), (1, 1), (1, 1), (3, 4, 3, 2), (0, 0)),
            // 1×1 kernel, stride 2: interleaves zeros.
            shape(1, (2, 3, 1), (3, 3), (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), (1, 1)),
            // Single-pixel input, wide dilation.
            shape(1, (2, 4, 2), (1, 1), (3, 3), (2, 2), (3, 2), (0, 0, 0, 0), (0, 0)),
            // Many rows, to be split inside planes.
            shape(1, (8, 2, 1), (17, 19), (5, 3), (2, 1), (1, 3), (2, 1, 1, 2), (1, 0)),
            // PP-OCRv5 det's upsampler (2×2, stride 2), and products too
            // large for one block (several blocks of input rows, whose
            // taps overlap in the output).
            shape(1, (16, 8, 1), (10, 12), (2, 2), (2, 2), (1, 1), (0, 0, 0, 0), (0, 0)),
            shape(2, (4, 64, 1), (7, 100), (4, 4), (2, 2), (1, 1), (1, 1, 1, 1), (0, 0)),
        ];
        for s in &cases {
            check(s, true);
            check(s, false);
        }
    }

    #[test]
    fn out_len_follows_onnx() {
        // 4×4 kernel, stride 2, pads 1: doubles.
        assert_eq!(ConvTranspose2dShape::out_len(7, 4, 2, 1, 1, 1, 0), Some(14));
        // 3×3, stride 2, pads 1, output_padding 1: doubles too.
        assert_eq!(ConvTranspose2dShape::out_len(7, 3, 2, 1, 1, 1, 1), Some(14));
        assert_eq!(ConvTranspose2dShape::out_len(1, 1, 1, 1, 1, 1, 0), None);
    }

    /// A small case checked against onnxruntime 1.32 (and a numpy scatter
    /// loop; onnx's reference evaluator rejects grouped weights): x [1, 2, 3, 3], w [2, 2, 3, 2], groups 2, strides (2, 1),
    /// dilations (1, 2), pads (1, 0, 0, 1), output_padding (1, 0), bias.
    #[test]
    fn matches_onnxruntime() {
        let s = shape(1, (2, 4, 2), (3, 3), (3, 2), (2, 1), (1, 2), (1, 0, 0, 1), (1, 0));
        assert_eq!((s.out_h, s.out_w), (7, 4));
        let x: Vec<f32> = (0..18).map(|i| ((i * 7) % 11) as f32 / 4.0 - 1.25).collect();
        let w: Vec<f32> = (0..24).map(|i| ((i * 5) % 13) as f32 / 8.0 - 0.75).collect();
        let b = [0.5f32, -1.0, 0.25, 2.0];
        let mut y = vec![f32::NAN; 4 * 7 * 4];
        conv_transpose2d_direct(&Serial, &s, &x, &w, Some(&b), &mut y);
        close(&y, ORT_Y);
        let scratch = Scratch::with_shared(2, s.scratch_floats(), s.shared_scratch_floats());
        conv_transpose2d(Isa::detect(), &TwoWorkers, &scratch, &s, &x, &w, Some(&b), &mut y);
        close(&y, ORT_Y);
    }

    /// The same geometry with one group, no bias and 3 output channels,
    /// where onnx's reference evaluator (which cannot run the grouped case)
    /// and onnxruntime agree exactly.
    #[test]
    fn matches_onnx_reference_one_group() {
        let s = shape(1, (2, 3, 1), (3, 3), (3, 2), (2, 1), (1, 2), (1, 0, 0, 1), (1, 0));
        let x: Vec<f32> = (0..18).map(|i| ((i * 7) % 11) as f32 / 4.0 - 1.25).collect();
        let w: Vec<f32> = (0..36).map(|i| ((i * 5) % 13) as f32 / 8.0 - 0.75).collect();
        let mut y = vec![f32::NAN; 3 * 7 * 4];
        conv_transpose2d_direct(&TwoWorkers, &s, &x, &w, None, &mut y);
        close(&y, ORT_Y_GROUP1);
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "at {i}: {g} vs {w}");
        }
    }

    const ORT_Y: &[f32] = &[
        -0.125, 0.75, 0.875, 0.25, -0.59375, 0.375, -0.09375, 0.84375, 1.125, 0.625, -0.5, 0.375, -0.09375, 0.53125, 1.96875, 0.6875, 1.0,
        0.5, -0.5, 0.5, 0.625, 0.5, 1.125, 0.5, 0.5, 0.5, 0.5, 0.5, -0.21875, -1.3125, -0.6875, -1.0, -2.09375, -0.75, -0.1875, -1.09375,
        -1.78125, -1.15625, -0.53125, -1.0, -0.46875, -0.84375, -1.3125, -1.09375, -1.625, -1.0, -0.375, -1.0, -0.375, -1.0, -2.0, -1.0,
        -1.0, -1.0, -1.0, -1.0, 0.15625, 0.28125, 0.78125, 0.125, 0.0, 0.25, 0.90625, 0.59375, 0.1875, 0.3125, 0.34375, 0.0, 0.0625,
        0.3125, -0.25, 0.75, 0.21875, 0.34375, 0.25, -0.125, 0.125, 0.625, -0.21875, 0.15625, 0.25, 0.25, 0.25, 0.25, 2.28125, 1.90625,
        1.0625, 2.15625, 2.375, 1.625, 3.28125, 1.96875, 2.1875, 1.8125, 2.15625, 2.3125, 2.1875, 1.4375, 3.0, 1.875, 2.09375, 1.71875,
        2.21875, 2.46875, 2.0, 2.0, 2.15625, 1.53125, 2.0, 2.0, 2.0, 2.0,
    ];

    const ORT_Y_GROUP1: &[f32] = &[
        -0.34375, 0.15625, -0.5625, -0.09375, -0.71875, -0.5, 0.6875, 0.3125, 0.8125, -0.0625, -0.84375, 0.1875, -0.40625, -0.53125,
        2.46875, 0.0625, 0.59375, -0.28125, -0.78125, 0.46875, 0.125, 0.0, 0.78125, -0.46875, 0.0, 0.0, 0.0, 0.0, 0.21875, -0.125, 1.15625,
        0.03125, -0.90625, 0.3125, -0.53125, -0.09375, -1.15625, 0.21875, -0.53125, 0.0625, 0.6875, 0.1875, -0.25, -0.03125, -0.8125,
        0.5625, -0.15625, 0.09375, 0.75, -0.375, -0.625, 0.375, 0.0, 0.0, 0.0, 0.0, -0.03125, 0.0, 0.03125, 0.15625, 0.53125, -0.09375,
        0.28125, -0.5, -0.28125, 0.09375, 0.59375, -0.0625, -0.65625, 0.09375, -0.9375, -0.53125, -0.1875, 0.1875, 0.46875, -0.28125,
        -0.65625, 0.46875, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
}
