//! ONNX Resize (opsets 11–19 attributes) over the two innermost axes.
//!
//! The tensor is seen as `[planes, in_h, in_w]` and resized to
//! `[planes, out_h, out_w]`; the caller has checked that every other axis
//! keeps its length (scale 1, no ROI on it). Resize is separable: every
//! output coordinate of an axis reads a fixed number of input positions
//! (1 for nearest, 2 for linear, 4 for cubic) with fixed weights, so
//! [`axis_taps`] computes those taps once per axis when the model is opened
//! and [`resize2d`] only gathers.
//!
//! The coordinate transforms and border handling follow the ONNX
//! specification and its reference implementation
//! (`onnx/reference/ops/op_resize.py`), computed in f64 as it does:
//!
//! * the source coordinate `x_original` of output coordinate `x` uses the
//!   ONNX `scale` of the axis, not `out_len / in_len` (they differ when
//!   `scale · in_len` is not an integer); `output_width = scale · in_len` is
//!   the fractional output length that `align_corners` and
//!   `half_pixel_symmetric` use;
//! * a sample at `x_original` reads input positions `b`, `b + 1` (linear) or
//!   `b - 1 ..= b + 2` (cubic) with `b = ceil(x_original) - 1`, so that an
//!   integer coordinate reads its left neighbour with weight 0; positions
//!   outside the input are clamped to the edge (edge padding), or, with
//!   `exclude_outside`, get weight 0 and the others are renormalized.
//!
//! Where the reference and the specification disagree, or where results
//! would hinge on the last bit of a float, the choices are:
//!
//! * `pytorch_half_pixel` with an output length of 1 maps to coordinate 0,
//!   as the specification and onnxruntime say; the reference instead tests
//!   the fractional `scale · in_len == 1` and then uses −0.5 (the same
//!   result except for cubic), and for e.g. scale 0.3 on length 4 (output
//!   1, fractional 1.2) applies the half-pixel formula;
//! * `tf_crop_and_resize` divides by the integer output length minus one,
//!   as the specification and onnxruntime do (the reference's
//!   `scale · in_len` ignores the ROI, which the output length includes);
//! * when the f32 `scale` is the f32 rounding of `out_len / in_len` (always
//!   so when the model gave `sizes`), the exact ratio `out_len / in_len` is
//!   used instead, so that e.g. scale 0.6 on length 5 gives the same source
//!   coordinates as sizes 5 → 3 (the reference, given 0.6f32 =
//!   0.60000002, can fall on the other side of an integer);
//! * the input positions read follow from `x_original` itself; the
//!   reference derives them from `x_original + 2` (or `+ 1`), which loses
//!   the last bits, so at e.g. `3.0000000000000004` it reads positions 2, 3
//!   with the weights meant for 3, 4 (seen with `half_pixel_symmetric`);
//! * `exclude_outside` affects linear and cubic only: with nearest, the one
//!   position read is clamped to the edge, as in onnxruntime (the
//!   reference would output 0 there).
//!
//! Opset 10 has neither `coordinate_transformation_mode` nor
//! `nearest_mode`; its behaviour is that of `Asymmetric` coordinates with
//! the caller's choice of rounding. Antialiasing (opset 18+) and
//! `keep_aspect_ratio_policy` (which only changes the output length and the
//! scale the caller passes) are not handled here.

use crate::{Parallel, SharedMut};

/// How output values are interpolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    Nearest,
    Linear,
    Cubic,
}

/// ONNX `coordinate_transformation_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordTransform {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
}

/// ONNX `nearest_mode`: which input position a nearest-mode sample reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearestRound {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// The Resize attributes that matter to the kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizeParams {
    pub mode: ResizeMode,
    pub coord: CoordTransform,
    /// Used by [`ResizeMode::Nearest`] only.
    pub nearest: NearestRound,
    /// Used by [`ResizeMode::Cubic`] only.
    pub cubic_coeff_a: f32,
    pub exclude_outside: bool,
    /// Output value where `tf_crop_and_resize` samples outside the input.
    pub extrapolation_value: f32,
}

impl Default for ResizeParams {
    /// The ONNX attribute defaults.
    fn default() -> Self {
        Self {
            mode: ResizeMode::Nearest,
            coord: CoordTransform::HalfPixel,
            nearest: NearestRound::RoundPreferFloor,
            cubic_coeff_a: -0.75,
            exclude_outside: false,
            extrapolation_value: 0.0,
        }
    }
}

/// The input positions and weights every output coordinate of one axis
/// reads, built by [`axis_taps`].
#[derive(Debug, Clone, PartialEq)]
pub struct AxisTaps {
    in_len: usize,
    taps: usize,
    /// `out_len × taps` input positions, each inside `0..in_len`.
    index: Vec<usize>,
    /// `out_len × taps` weights.
    weight: Vec<f32>,
    /// Per output coordinate: the source lies outside the input
    /// (`tf_crop_and_resize` only) and the output is the extrapolation value.
    extrapolate: Vec<bool>,
}

impl AxisTaps {
    /// Input length the taps were built for.
    pub fn in_len(&self) -> usize {
        self.in_len
    }

    /// Output length.
    pub fn out_len(&self) -> usize {
        self.extrapolate.len()
    }

    /// Taps per output coordinate: 1 (nearest), 2 (linear) or 4 (cubic).
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// Input positions and weights read by output coordinate `o`.
    pub fn at(&self, o: usize) -> (&[usize], &[f32]) {
        let r = o * self.taps..(o + 1) * self.taps;
        (&self.index[r.clone()], &self.weight[r])
    }

    /// Whether output coordinate `o` takes the extrapolation value.
    pub fn extrapolates(&self, o: usize) -> bool {
        self.extrapolate[o]
    }
}

/// Source coordinate of output coordinate `x`, or `None` where
/// `tf_crop_and_resize` samples outside the input.
fn source_coord(coord: CoordTransform, x: f64, in_len: usize, out_len: usize, scale: f64, roi: (f32, f32)) -> Option<f64> {
    let in_f = in_len as f64;
    let out_w = scale * in_f;
    let xo = match coord {
        CoordTransform::HalfPixel => (x + 0.5) / scale - 0.5,
        CoordTransform::HalfPixelSymmetric => {
            let adjustment = out_len as f64 / out_w;
            let offset = in_f / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
        CoordTransform::PytorchHalfPixel => {
            if out_len > 1 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        CoordTransform::AlignCorners => {
            if out_w == 1.0 {
                0.0
            } else {
                x * (in_f - 1.0) / (out_w - 1.0)
            }
        }
        CoordTransform::Asymmetric => x / scale,
        CoordTransform::TfCropAndResize => {
            let (start, end) = (roi.0 as f64, roi.1 as f64);
            let xo = if out_len > 1 {
                start * (in_f - 1.0) + x * (end - start) * (in_f - 1.0) / (out_len as f64 - 1.0)
            } else {
                0.5 * (start + end) * (in_f - 1.0)
            };
            // NaN (a NaN ROI) extrapolates too.
            if !(0.0..=in_f - 1.0).contains(&xo) {
                return None;
            }
            xo
        }
    };
    Some(xo)
}

/// Keys' cubic convolution weights of positions `b - 1 ..= b + 2` for a
/// sample at `b + ratio`, as the ONNX reference writes them.
fn cubic_coeffs(ratio: f64, a: f64) -> [f64; 4] {
    let near = |t: f64| ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    let far = |t: f64| ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
    [far(ratio + 1.0), near(ratio), near(1.0 - ratio), far(2.0 - ratio)]
}

/// Taps of every output coordinate of one axis of length `in_len` resized
/// to `out_len`; built once, when the model is opened.
///
/// `scale` is the ONNX scale of the axis (`out_len / in_len` when the model
/// gave `sizes`); `roi` the normalized (start, end) of the axis, used by
/// `tf_crop_and_resize` only. `in_len` must be positive unless `out_len` is
/// 0, and `scale` positive.
pub fn axis_taps(p: &ResizeParams, in_len: usize, out_len: usize, scale: f32, roi: (f32, f32)) -> AxisTaps {
    assert!(in_len > 0 || out_len == 0, "Resize of an empty axis to length {out_len}");
    let taps = match p.mode {
        ResizeMode::Nearest => 1,
        ResizeMode::Linear => 2,
        ResizeMode::Cubic => 4,
    };
    let mut t = AxisTaps {
        in_len,
        taps,
        index: Vec::with_capacity(out_len * taps),
        weight: Vec::with_capacity(out_len * taps),
        extrapolate: Vec::with_capacity(out_len),
    };
    // The exact ratio when `scale` is its f32 rounding (see the module doc).
    let ratio = out_len as f64 / in_len.max(1) as f64;
    let scale = if ratio as f32 == scale { ratio } else { scale as f64 };
    let last = in_len as isize - 1;
    for o in 0..out_len {
        let Some(xo) = source_coord(p.coord, o as f64, in_len, out_len, scale, roi) else {
            t.extrapolate.push(true);
            t.index.extend(std::iter::repeat_n(0, taps));
            t.weight.extend(std::iter::repeat_n(0.0, taps));
            continue;
        };
        t.extrapolate.push(false);
        // b + ratio = xo with ratio in (0, 1]: an integer xo reads b + 1.
        let b = xo.ceil() - 1.0;
        let r = xo - b;
        let b = b as isize;
        if p.mode == ResizeMode::Nearest {
            let up = match p.nearest {
                _ if r == 1.0 => true,
                NearestRound::RoundPreferFloor => r > 0.5,
                NearestRound::RoundPreferCeil => r >= 0.5,
                NearestRound::Floor => false,
                NearestRound::Ceil => true,
            };
            t.index.push((b + up as isize).clamp(0, last) as usize);
            t.weight.push(1.0);
            continue;
        }
        let (first, mut w) = match p.mode {
            ResizeMode::Linear => (b, [1.0 - r, r, 0.0, 0.0]),
            _ => (b - 1, cubic_coeffs(r, p.cubic_coeff_a as f64)),
        };
        let w = &mut w[..taps];
        if p.exclude_outside {
            for (k, wk) in w.iter_mut().enumerate() {
                if !(0..=last).contains(&(first + k as isize)) {
                    *wk = 0.0;
                }
            }
            let sum: f64 = w.iter().sum();
            if sum != 0.0 {
                w.iter_mut().for_each(|wk| *wk /= sum);
            }
        }
        for (k, &wk) in w.iter().enumerate() {
            t.index.push((first + k as isize).clamp(0, last) as usize);
            t.weight.push(wk as f32);
        }
    }
    t
}

/// Widest input row blended on the stack; wider rows are read directly
/// (same arithmetic, same result).
const MAX_ROW: usize = 4096;

/// `Σ_k w[k] · v(k)` summed in tap order, starting from the first product
/// (so a single weight-1 tap copies exactly, −0.0 included).
#[inline(always)]
fn dot(w: &[f32], v: impl Fn(usize) -> f32) -> f32 {
    let mut acc = w[0] * v(0);
    for (k, &wk) in w.iter().enumerate().skip(1) {
        acc += wk * v(k);
    }
    acc
}

/// Resizes `planes` planes of `in_h × in_w` to `ty.out_len() ×
/// tx.out_len()`:
/// `y[p, oy, ox] = Σ_j wx_j · (Σ_i wy_i · x[p, iy_i, ix_j])` over the taps
/// `(iy_i, wy_i)` of `oy` in `ty` and `(ix_j, wx_j)` of `ox` in `tx`, or
/// `extrapolation_value` where either axis extrapolates.
///
/// The rows are interpolated first, then the columns, as the ONNX
/// reference does (in f32 here). Output rows are split among the workers;
/// the result does not depend on their number.
#[allow(clippy::too_many_arguments)]
pub fn resize2d(
    par: &dyn Parallel,
    planes: usize,
    in_h: usize,
    in_w: usize,
    ty: &AxisTaps,
    tx: &AxisTaps,
    extrapolation_value: f32,
    x: &[f32],
    y: &mut [f32],
) {
    assert_eq!(ty.in_len, in_h, "Resize: row taps built for another input height");
    assert_eq!(tx.in_len, in_w, "Resize: column taps built for another input width");
    let (out_h, out_w) = (ty.out_len(), tx.out_len());
    let hw_in = in_h * in_w;
    assert!(x.len() >= planes * hw_in, "Resize: input too short");
    let rows = planes * out_h;
    if rows == 0 || out_w == 0 {
        return;
    }
    let ys = SharedMut::new(&mut y[..rows * out_w]);
    let chunk = rows.div_ceil(par.workers() * 4).max(1);
    let tasks = rows.div_ceil(chunk);
    // Nearest along x (one tap of weight 1, nothing extrapolated): a
    // gather, or, at an integer factor (every YOLO and FPN upsample), each
    // input value repeated `factor` times. Per element through the taps,
    // YOLOv8n's 2× upsample took 0.78 ms, onnxruntime 0.06.
    let x_copy = tx.taps == 1 && tx.weight.iter().all(|&w| w == 1.0) && !tx.extrapolate.iter().any(|&e| e);
    let factor = out_w / in_w.max(1);
    let x_repeat = x_copy && factor >= 1 && out_w == in_w * factor && tx.index.iter().enumerate().all(|(o, &i)| i == o / factor);
    // Nearest along y: an output row whose source row is the previous
    // one's is a copy of it.
    let y_copy = ty.taps == 1 && ty.weight.iter().all(|&w| w == 1.0);
    par.run(tasks, &|t, _| {
        let (r0, r1) = (t * chunk, ((t + 1) * chunk).min(rows));
        // SAFETY: each task writes its own rows r0..r1.
        let out = unsafe { ys.slice_mut(r0 * out_w, (r1 - r0) * out_w) };
        let mut buf = [0.0f32; MAX_ROW];
        let mut prev: Option<(usize, usize)> = None;
        for (k, r) in (r0..r1).enumerate() {
            let (p, oy) = (r / out_h, r % out_h);
            let (done, rest) = out.split_at_mut(k * out_w);
            let yrow = &mut rest[..out_w];
            if ty.extrapolate[oy] {
                yrow.fill(extrapolation_value);
                prev = None;
                continue;
            }
            let xp = &x[p * hw_in..(p + 1) * hw_in];
            let (iy, wy) = ty.at(oy);
            if y_copy {
                if prev == Some((p, iy[0])) {
                    yrow.copy_from_slice(&done[(k - 1) * out_w..]);
                    continue;
                }
                prev = Some((p, iy[0]));
            }
            if x_copy && y_copy {
                let row = &xp[iy[0] * in_w..(iy[0] + 1) * in_w];
                if x_repeat {
                    match factor {
                        1 => yrow.copy_from_slice(row),
                        2 => {
                            for (pair, &v) in yrow.chunks_exact_mut(2).zip(row) {
                                pair[0] = v;
                                pair[1] = v;
                            }
                        }
                        f => {
                            for (run, &v) in yrow.chunks_exact_mut(f).zip(row) {
                                run.fill(v);
                            }
                        }
                    }
                } else {
                    for (o, &i) in yrow.iter_mut().zip(&tx.index) {
                        *o = row[i];
                    }
                }
                continue;
            }
            // The row Σ_i wy_i · x[iy_i, ..], when it fits (or is a copy).
            let row: Option<&[f32]> = if wy.len() == 1 && wy[0] == 1.0 {
                Some(&xp[iy[0] * in_w..(iy[0] + 1) * in_w])
            } else if in_w <= MAX_ROW {
                let row = &mut buf[..in_w];
                row.iter_mut().zip(&xp[iy[0] * in_w..(iy[0] + 1) * in_w]).for_each(|(o, &v)| *o = wy[0] * v);
                for (&i, &w) in iy.iter().zip(wy).skip(1) {
                    row.iter_mut().zip(&xp[i * in_w..(i + 1) * in_w]).for_each(|(o, &v)| *o += w * v);
                }
                Some(row)
            } else {
                None
            };
            for (ox, o) in yrow.iter_mut().enumerate() {
                if tx.extrapolate[ox] {
                    *o = extrapolation_value;
                    continue;
                }
                let (ix, wx) = tx.at(ox);
                *o = match row {
                    Some(row) => dot(wx, |j| row[ix[j]]),
                    None => dot(wx, |j| dot(wy, |i| xp[iy[i] * in_w + ix[j]])),
                };
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TwoWorkers;
    use crate::Serial;

    fn params(mode: ResizeMode, coord: CoordTransform) -> ResizeParams {
        ResizeParams { mode, coord, ..ResizeParams::default() }
    }

    /// Resizes `x` (`planes × in_h × in_w`) with per-axis (scale, roi) and
    /// checks Serial and two workers agree bit for bit.
    #[allow(clippy::too_many_arguments)]
    fn run(
        p: &ResizeParams,
        planes: usize,
        in_h: usize,
        in_w: usize,
        out: (usize, usize),
        scales: (f32, f32),
        roi_h: (f32, f32),
        roi_w: (f32, f32),
        x: &[f32],
    ) -> Vec<f32> {
        let ty = axis_taps(p, in_h, out.0, scales.0, roi_h);
        let tx = axis_taps(p, in_w, out.1, scales.1, roi_w);
        let mut y = vec![f32::NAN; planes * out.0 * out.1];
        resize2d(&Serial, planes, in_h, in_w, &ty, &tx, p.extrapolation_value, x, &mut y);
        let mut y2 = vec![f32::NAN; y.len()];
        resize2d(&TwoWorkers, planes, in_h, in_w, &ty, &tx, p.extrapolation_value, x, &mut y2);
        assert_eq!(y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), y2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        y
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "at {i}: {g} vs {w}\ngot  {got:?}\nwant {want:?}");
        }
    }

    const FULL: (f32, f32) = (0.0, 1.0);

    /// The values the Python generator used: `((i · 37) mod 23) / 4 − 2`.
    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 37) % 23) as f32 / 4.0 - 2.0).collect()
    }

    // Expected values below come from onnx 1.23's ReferenceEvaluator
    // (opset 19 Resize on [1, planes, h, w], same attributes, `sizes` where
    // the scale is written as a fraction).

    /// Nearest, asymmetric, floor; two planes, scales 2 × 1.5.
    #[test]
    fn nearest_asymmetric_floor() {
        let p = ResizeParams { nearest: NearestRound::Floor, ..params(ResizeMode::Nearest, CoordTransform::Asymmetric) };
        let got = run(&p, 2, 3, 4, (6, 6), (2.0, 1.5), FULL, FULL, &data(24));
        close(
            &got,
            &[
                -2.0, -2.0, 1.5, -0.75, -0.75, 2.75, -2.0, -2.0, 1.5, -0.75, -0.75, 2.75, 0.5, 0.5, -1.75, 1.75, 1.75, -0.5, 0.5, 0.5,
                -1.75, 1.75, 1.75, -0.5, 3.0, 3.0, 0.75, -1.5, -1.5, 2.0, 3.0, 3.0, 0.75, -1.5, -1.5, 2.0, -0.25, -0.25, 3.25, 1.0, 1.0,
                -1.25, -0.25, -0.25, 3.25, 1.0, 1.0, -1.25, 2.25, 2.25, 0.0, 3.5, 3.5, 1.25, 2.25, 2.25, 0.0, 3.5, 3.5, 1.25, -1.0, -1.0,
                2.5, 0.25, 0.25, -2.0, -1.0, -1.0, 2.5, 0.25, 0.25, -2.0,
            ],
        );
    }

    /// Nearest, half_pixel, round_prefer_ceil, upsampling 1.5 × 2.5 (ties at 0.5).
    #[test]
    fn nearest_half_pixel_ceil_up() {
        let p = ResizeParams { nearest: NearestRound::RoundPreferCeil, ..params(ResizeMode::Nearest, CoordTransform::HalfPixel) };
        let got = run(&p, 1, 2, 2, (3, 5), (1.5, 2.5), FULL, FULL, &data(4));
        close(&got, &[-2.0, -2.0, 1.5, 1.5, 1.5, -0.75, -0.75, 2.75, 2.75, 2.75, -0.75, -0.75, 2.75, 2.75, 2.75]);
    }

    /// Nearest, half_pixel, round_prefer_ceil, downsampling 0.6 × 0.45.
    #[test]
    fn nearest_half_pixel_ceil_down() {
        let p = ResizeParams { nearest: NearestRound::RoundPreferCeil, ..params(ResizeMode::Nearest, CoordTransform::HalfPixel) };
        let got = run(&p, 1, 5, 7, (3, 3), (0.6, 0.45), FULL, FULL, &data(35));
        close(&got, &[1.5, 2.75, -1.75, -1.25, 0.0, 1.25, 1.75, 3.0, -1.5]);
    }

    /// Nearest, align_corners, round_prefer_floor, sizes 3×3 → 5×5 (ties).
    #[test]
    fn nearest_align_corners_floor() {
        let p = params(ResizeMode::Nearest, CoordTransform::AlignCorners);
        let got = run(&p, 1, 3, 3, (5, 5), (5.0 / 3.0, 5.0 / 3.0), FULL, FULL, &data(9));
        close(
            &got,
            &[
                -2.0, -2.0, 1.5, 1.5, -0.75, -2.0, -2.0, 1.5, 1.5, -0.75, 2.75, 2.75, 0.5, 0.5, -1.75, 2.75, 2.75, 0.5, 0.5, -1.75, 1.75,
                1.75, -0.5, -0.5, 3.0,
            ],
        );
    }

    /// Linear, half_pixel, 2× upsampling.
    #[test]
    fn linear_half_pixel_up2() {
        let p = params(ResizeMode::Linear, CoordTransform::HalfPixel);
        let got = run(&p, 1, 3, 4, (6, 8), (2.0, 2.0), FULL, FULL, &data(12));
        close(
            &got,
            &[
                -2.0, -1.125, 0.625, 0.9375, -0.1875, 0.125, 1.875, 2.75, -1.375, -0.859375, 0.171875, 0.484375, 0.078125, 0.390625,
                1.421875, 1.9375, -0.125, -0.328125, -0.734375, -0.421875, 0.609375, 0.921875, 0.515625, 0.3125, 1.125, 0.5625, -0.5625,
                -0.609375, 0.421875, 0.734375, 0.328125, 0.125, 2.375, 1.8125, 0.6875, -0.078125, -0.484375, -0.171875, 0.859375, 1.375,
                3.0, 2.4375, 1.3125, 0.1875, -0.9375, -0.625, 1.125, 2.0,
            ],
        );
    }

    /// Linear, align_corners, sizes 3×4 → 5×7.
    #[test]
    fn linear_align_corners_sizes() {
        let p = params(ResizeMode::Linear, CoordTransform::AlignCorners);
        let got = run(&p, 1, 3, 4, (5, 7), (5.0 / 3.0, 7.0 / 4.0), FULL, FULL, &data(12));
        close(
            &got,
            &[
                -2.0, -0.25, 1.5, 0.375, -0.75, 1.0, 2.75, -0.75, -0.4375, -0.125, 0.1875, 0.5, 0.8125, 1.125, 0.5, -0.625, -1.75, 0.0,
                1.75, 0.625, -0.5, 1.75, 0.625, -0.5, -0.1875, 0.125, 0.4375, 0.75, 3.0, 1.875, 0.75, -0.375, -1.5, 0.25, 2.0,
            ],
        );
    }

    /// Linear, align_corners, scale 0.6 on 2×4: the fractional output width 2.4 divides (the ONNX backend case).
    #[test]
    fn linear_align_corners_down06() {
        let p = params(ResizeMode::Linear, CoordTransform::AlignCorners);
        let got = run(&p, 1, 2, 4, (1, 2), (0.6, 0.6), FULL, FULL, &data(8));
        close(&got, &[-2.0, -0.2500005]);
    }

    /// Linear, half_pixel, scale 0.6 on 4×5: the coordinates use 0.6, not 2/4.
    #[test]
    fn linear_half_pixel_down06() {
        let p = params(ResizeMode::Linear, CoordTransform::HalfPixel);
        let got = run(&p, 1, 4, 5, (2, 3), (0.6, 0.6), FULL, FULL, &data(20));
        close(&got, &[-0.7500001, -0.66666645, 1.3333337, -0.33333346, -0.2499998, 1.7500004]);
    }

    /// Linear, pytorch_half_pixel, sizes 4×4 → 3×1.
    #[test]
    fn linear_pytorch_half_pixel() {
        let p = params(ResizeMode::Linear, CoordTransform::PytorchHalfPixel);
        let got = run(&p, 1, 4, 4, (3, 1), (0.75, 0.25), FULL, FULL, &data(16));
        close(&got, &[-1.5833334, 1.75, 0.29166666]);
    }

    /// Linear, half_pixel_symmetric, scales 1.7 × 0.6 on 4×4.
    #[test]
    fn linear_half_pixel_symmetric() {
        let p = params(ResizeMode::Linear, CoordTransform::HalfPixelSymmetric);
        let got = run(&p, 1, 4, 4, (6, 2), (1.7, 0.6), FULL, FULL, &data(16));
        close(
            &got,
            &[
                0.2941177,
                0.43382344,
                -0.4901961,
                0.7769608,
                -0.48529416,
                0.7254902,
                0.98529404,
                -0.058823597,
                1.7230392,
                -0.11029418,
                2.0661767,
                0.23284318,
            ],
        );
    }

    /// Cubic (a = −0.75), half_pixel, scales 1.5 × 0.75.
    #[test]
    fn cubic_half_pixel() {
        let p = params(ResizeMode::Cubic, CoordTransform::HalfPixel);
        let got = run(&p, 1, 4, 4, (6, 3), (1.5, 0.75), FULL, FULL, &data(16));
        close(
            &got,
            &[
                -1.5953373,
                0.40755224,
                2.410442,
                -0.914885,
                0.27319336,
                0.8985006,
                0.66825384,
                -0.22585613,
                -0.050008353,
                2.5808475,
                -1.099989,
                1.40271,
                1.747495,
                0.78930664,
                0.39389014,
                0.08089468,
                2.974665,
                -1.1766281,
            ],
        );
    }

    /// Cubic (a = −0.5), exclude_outside, scales 1.5 × 0.8.
    #[test]
    fn cubic_exclude_outside() {
        let p = ResizeParams { cubic_coeff_a: -0.5, exclude_outside: true, ..params(ResizeMode::Cubic, CoordTransform::HalfPixel) };
        let got = run(&p, 1, 4, 5, (6, 4), (1.5, 0.8), FULL, FULL, &data(20));
        close(
            &got,
            &[
                -1.721247,
                0.8082597,
                1.5895095,
                0.68672186,
                -1.6018585,
                0.9276482,
                1.708898,
                0.8061103,
                -1.4131331,
                1.1163735,
                1.8976233,
                0.9948357,
                -1.2464662,
                1.2830405,
                2.0642903,
                1.1615026,
                -1.0577408,
                1.4717659,
                2.2530158,
                1.350228,
                -0.93835235,
                1.5911543,
                2.372404,
                1.4696164,
            ],
        );
    }

    /// Cubic (a = −0.75), asymmetric, 2× (taps past the right edge clamp).
    #[test]
    fn cubic_asymmetric() {
        let p = params(ResizeMode::Cubic, CoordTransform::Asymmetric);
        let got = run(&p, 1, 3, 3, (6, 6), (2.0, 2.0), FULL, FULL, &data(9));
        close(
            &got,
            &[
                -2.0,
                -0.0390625,
                1.5,
                0.703125,
                -0.75,
                -0.9609375,
                0.46875,
                1.0427246,
                1.09375,
                -0.2421875,
                -1.6953125,
                -1.9567871,
                2.75,
                1.8359375,
                0.5,
                -0.8359375,
                -1.75,
                -1.9609375,
                2.6953125,
                1.2421875,
                -0.09375,
                -0.04272461,
                0.53125,
                0.58984375,
                1.75,
                0.296875,
                -0.5,
                1.0390625,
                3.0,
                3.328125,
                1.65625,
                0.15258789,
                -0.59375,
                1.2148438,
                3.4453125,
                3.8239746,
            ],
        );
    }

    /// Linear, tf_crop_and_resize, ROI partly outside on both axes, extrapolation 10.
    #[test]
    fn tf_crop_linear() {
        let p = ResizeParams { extrapolation_value: 10.0, ..params(ResizeMode::Linear, CoordTransform::TfCropAndResize) };
        let got = run(&p, 1, 4, 4, (3, 3), (0.75, 0.75), (0.4, 1.2), (-0.3, 0.6), &data(16));
        close(&got, &[10.0, -0.012499921, 0.63000005, 10.0, 1.7224998, -0.049999774, 10.0, 10.0, 10.0]);
    }

    /// Nearest, tf_crop_and_resize, ROI partly outside on both axes, extrapolation −7.
    #[test]
    fn tf_crop_nearest() {
        let p = ResizeParams { extrapolation_value: -7.0, ..params(ResizeMode::Nearest, CoordTransform::TfCropAndResize) };
        let got = run(&p, 1, 4, 4, (4, 3), (1.0, 0.75), (-0.5, 0.9), (0.2, 1.3), &data(16));
        close(&got, &[-7.0, -7.0, -7.0, -7.0, -7.0, -7.0, -1.75, 1.75, -7.0, 3.25, 1.0, -7.0]);
    }

    #[test]
    fn pytorch_half_pixel_to_length_one_reads_position_zero() {
        // The specification's 0 (the onnx reference would sample at -0.5).
        let t = axis_taps(&params(ResizeMode::Cubic, CoordTransform::PytorchHalfPixel), 5, 1, 0.2, FULL);
        let (idx, w) = t.at(0);
        assert_eq!(idx, &[0, 0, 0, 1]);
        assert_eq!(w, &[0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn nearest_ignores_exclude_outside_and_clamps() {
        let p =
            ResizeParams { nearest: NearestRound::Floor, exclude_outside: true, ..params(ResizeMode::Nearest, CoordTransform::HalfPixel) };
        // Output 0 of 4 -> 8 samples at -0.25: floor reads -1, clamped to 0.
        let t = axis_taps(&p, 4, 8, 2.0, FULL);
        assert_eq!(t.at(0), (&[0usize][..], &[1.0f32][..]));
        assert_eq!(t.at(7), (&[3usize][..], &[1.0f32][..]));
    }

    #[test]
    fn scale_that_rounds_out_over_in_uses_the_exact_ratio() {
        // 0.6f32 is 0.60000002: output 1 of 5 -> 3 sits at 1.5 / 0.6 - 0.5 = 2
        // exactly, which floor must not turn into 1.
        let p = ResizeParams { nearest: NearestRound::Floor, ..params(ResizeMode::Nearest, CoordTransform::HalfPixel) };
        let t = axis_taps(&p, 5, 3, 0.6, FULL);
        assert_eq!((t.at(0).0, t.at(1).0, t.at(2).0), (&[0usize][..], &[2usize][..], &[3usize][..]));
    }

    #[test]
    fn weights_sum_to_one() {
        for mode in [ResizeMode::Nearest, ResizeMode::Linear, ResizeMode::Cubic] {
            for coord in [
                CoordTransform::HalfPixel,
                CoordTransform::HalfPixelSymmetric,
                CoordTransform::PytorchHalfPixel,
                CoordTransform::AlignCorners,
                CoordTransform::Asymmetric,
            ] {
                for exclude_outside in [false, true] {
                    let p = ResizeParams { exclude_outside, ..params(mode, coord) };
                    for (n, m, s) in [(7, 3, 0.45f32), (3, 10, 3.4), (1, 4, 4.0), (4, 1, 0.25), (6, 6, 1.0)] {
                        let t = axis_taps(&p, n, m, s, FULL);
                        for o in 0..m {
                            let (idx, w) = t.at(o);
                            assert!(idx.iter().all(|&i| i < n));
                            let sum: f32 = w.iter().sum();
                            assert!((sum - 1.0).abs() < 1e-6, "{p:?} {n}->{m}: {sum}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn nearest_copies_exactly() {
        let x = [-0.0f32, f32::INFINITY, 3.0, f32::MIN_POSITIVE];
        let p = params(ResizeMode::Nearest, CoordTransform::Asymmetric);
        let got = run(&p, 1, 2, 2, (4, 4), (2.0, 2.0), FULL, FULL, &x);
        let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3].iter().map(|&i: &usize| x[i].to_bits()).collect();
        assert_eq!(bits, want);
    }

    #[test]
    fn wide_rows_give_the_same_result_as_narrow_ones() {
        // Rows wider than the stack buffer take the direct path; the sum is
        // the same expression, so the result is bit-identical to resizing
        // the row alone.
        let (h, w) = (3, MAX_ROW + 37);
        let x = data(h * w);
        let p = params(ResizeMode::Cubic, CoordTransform::HalfPixel);
        let wide = run(&p, 1, h, w, (5, 9), (5.0 / 3.0, 9.0 / w as f32), FULL, FULL, &x);
        // The same columns taken out as a narrow input.
        let tx = axis_taps(&p, w, 9, 9.0 / w as f32, FULL);
        let cols: Vec<usize> = (0..9).flat_map(|o| tx.at(o).0.to_vec()).collect();
        let ty = axis_taps(&p, h, 5, 5.0 / 3.0, FULL);
        for oy in 0..5 {
            let (iy, wy) = ty.at(oy);
            for ox in 0..9 {
                let (_, wx) = tx.at(ox);
                let js = &cols[ox * 4..ox * 4 + 4];
                let v = dot(wx, |j| dot(wy, |i| x[iy[i] * w + js[j]]));
                assert_eq!(v.to_bits(), wide[oy * 9 + ox].to_bits());
            }
        }
        // And the buffered path agrees with that expression on narrow rows.
        let narrow_w = 40;
        let xn = data(h * narrow_w);
        let got = run(&p, 1, h, narrow_w, (5, 9), (5.0 / 3.0, 9.0 / 40.0), FULL, FULL, &xn);
        let tx = axis_taps(&p, narrow_w, 9, 9.0 / 40.0, FULL);
        for oy in 0..5 {
            let (iy, wy) = ty.at(oy);
            for ox in 0..9 {
                let (ix, wx) = tx.at(ox);
                let v = dot(wx, |j| dot(wy, |i| xn[iy[i] * narrow_w + ix[j]]));
                assert_eq!(v.to_bits(), got[oy * 9 + ox].to_bits());
            }
        }
    }

    #[test]
    fn integer_nearest_upsampling_repeats_values_and_rows() {
        // The fast paths: values repeated `f` times along x, rows copied
        // from the previous output row, across plane boundaries.
        let p = ResizeParams { nearest: NearestRound::Floor, ..params(ResizeMode::Nearest, CoordTransform::Asymmetric) };
        let (planes, h, w) = (5, 3, 7);
        let x = data(planes * h * w);
        for f in [2usize, 3] {
            let got = run(&p, planes, h, w, (h * f, w * f), (f as f32, f as f32), FULL, FULL, &x);
            for (i, &g) in got.iter().enumerate() {
                let (pl, oy, ox) = (i / (h * f * w * f), (i / (w * f)) % (h * f), i % (w * f));
                assert_eq!(g.to_bits(), x[pl * h * w + (oy / f) * w + ox / f].to_bits(), "factor {f} at {i}");
            }
        }
    }

    #[test]
    fn many_planes_split_across_workers() {
        let p = params(ResizeMode::Linear, CoordTransform::HalfPixel);
        let (planes, h, w) = (7, 5, 6);
        let x = data(planes * h * w);
        let got = run(&p, planes, h, w, (10, 3), (2.0, 0.5), FULL, FULL, &x);
        // Each plane resized alone gives the same numbers.
        for pl in 0..planes {
            let one = run(&p, 1, h, w, (10, 3), (2.0, 0.5), FULL, FULL, &x[pl * h * w..(pl + 1) * h * w]);
            assert_eq!(&got[pl * 30..(pl + 1) * 30], &one[..]);
        }
    }
}
