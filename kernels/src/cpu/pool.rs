//! Pooling over the two innermost axes of NCHW tensors.

use crate::{Parallel, SharedMut};

/// Geometry of a 2-D pooling: `planes` = batch × channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dShape {
    pub planes: usize,
    pub in_h: usize,
    pub in_w: usize,
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
    pub pad_bottom: usize,
    pub pad_right: usize,
}

fn per_plane(par: &dyn Parallel, s: &Pool2dShape, y: &mut [f32], f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let hw = s.out_h * s.out_w;
    let ys = SharedMut::new(&mut y[..s.planes * hw]);
    let chunk = s.planes.div_ceil(par.workers() * 4).max(1);
    let tasks = s.planes.div_ceil(chunk);
    par.run(tasks, &|t, _| {
        for p in t * chunk..((t + 1) * chunk).min(s.planes) {
            // SAFETY: each plane is written by exactly one task.
            f(p, unsafe { ys.slice_mut(p * hw, hw) });
        }
    });
}

/// The input positions `start, start + step, ...` (at most `k`) of a window
/// beginning at `origin` (possibly in the padding) that lie inside `0..len`:
/// (first index, count).
#[inline(always)]
pub(crate) fn window(origin: isize, k: usize, step: usize, len: usize) -> (usize, usize) {
    let step_i = step as isize;
    // Skip positions before 0.
    let skip = if origin < 0 { ((-origin) + step_i - 1) / step_i } else { 0 };
    let first = origin + skip * step_i;
    if skip as usize >= k || first >= len as isize {
        return (0, 0);
    }
    let room = (len as isize - 1 - first) / step_i + 1;
    (first as usize, (k - skip as usize).min(room as usize))
}

/// Widest input row the separable max pooling handles on the stack.
const MAX_POOL_ROW: usize = 4096;

#[inline(always)]
fn max_nan(a: f32, b: f32) -> f32 {
    // NaN propagates, as in onnxruntime.
    if a > b || a.is_nan() {
        a
    } else {
        b
    }
}

/// Max pooling; padding never wins (it is skipped, not read as −∞ or 0),
/// and NaN propagates as in onnxruntime.
///
/// Separable: for each output row, the window's input rows are first
/// reduced to one row (a contiguous, vectorized pass), then each output
/// takes the maximum of its columns of that row.
pub fn max_pool2d(par: &dyn Parallel, s: &Pool2dShape, x: &[f32], y: &mut [f32]) {
    let hw_in = s.in_h * s.in_w;
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    per_plane(par, s, y, &|p, yp| {
        let xp = &x[p * hw_in..(p + 1) * hw_in];
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU has AVX2 (checked above).
            return unsafe { max_plane_avx2(s, xp, yp) };
        }
        max_plane(s, xp, yp)
    });
}

/// [`max_plane`] on 256-bit registers (the same comparisons).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_plane_avx2(s: &Pool2dShape, xp: &[f32], yp: &mut [f32]) {
    max_plane(s, xp, yp)
}

/// One plane of [`max_pool2d`].
#[inline(always)]
fn max_plane(s: &Pool2dShape, xp: &[f32], yp: &mut [f32]) {
    let mut buf = [0.0f32; MAX_POOL_ROW];
    // Stride 2: the row's even and odd columns, so that every tap reads
    // a contiguous run.
    let mut halves = [[0.0f32; MAX_POOL_ROW / 2]; 2];
    let span = (s.kernel_w - 1) * s.dilation_w;
    // Outputs whose window lies inside the row need no clipping.
    let inner_lo = s.pad_left.div_ceil(s.stride_w).min(s.out_w);
    let inner_hi =
        if s.in_w + s.pad_left > span { ((s.in_w + s.pad_left - span - 1) / s.stride_w + 1).clamp(inner_lo, s.out_w) } else { inner_lo };
    for oy in 0..s.out_h {
        let oy0 = (oy * s.stride_h) as isize - s.pad_top as isize;
        let (iy0, ny) = window(oy0, s.kernel_h, s.dilation_h, s.in_h);
        let out = &mut yp[oy * s.out_w..(oy + 1) * s.out_w];
        if ny == 0 {
            out.fill(f32::NEG_INFINITY);
            continue;
        }
        if s.in_w > MAX_POOL_ROW {
            for (ox, o) in out.iter_mut().enumerate() {
                let ox0 = (ox * s.stride_w) as isize - s.pad_left as isize;
                let (ix0, nx) = window(ox0, s.kernel_w, s.dilation_w, s.in_w);
                let mut m = f32::NEG_INFINITY;
                for ky in 0..ny {
                    let row = &xp[(iy0 + ky * s.dilation_h) * s.in_w..];
                    for kx in 0..nx {
                        m = max_nan(row[ix0 + kx * s.dilation_w], m);
                    }
                }
                *o = m;
            }
            continue;
        }
        let row = &mut buf[..s.in_w];
        row.copy_from_slice(&xp[iy0 * s.in_w..(iy0 + 1) * s.in_w]);
        for ky in 1..ny {
            let iy = iy0 + ky * s.dilation_h;
            row.iter_mut().zip(&xp[iy * s.in_w..(iy + 1) * s.in_w]).for_each(|(m, &v)| *m = max_nan(v, *m));
        }
        let row = &buf[..s.in_w];
        // The edges, window by window.
        for ox in (0..inner_lo).chain(inner_hi..s.out_w) {
            let ox0 = (ox * s.stride_w) as isize - s.pad_left as isize;
            let (ix0, nx) = window(ox0, s.kernel_w, s.dilation_w, s.in_w);
            let mut m = f32::NEG_INFINITY;
            for kx in 0..nx {
                m = max_nan(row[ix0 + kx * s.dilation_w], m);
            }
            out[ox] = m;
        }
        // The interior, tap by tap over runs of outputs (the same order of
        // comparisons as window by window).
        let (lo, hi) = (inner_lo, inner_hi);
        if lo == hi {
            continue;
        }
        let inner = &mut out[lo..hi];
        inner.fill(f32::NEG_INFINITY);
        let split = s.stride_w == 2;
        if split {
            let [even, odd] = &mut halves;
            let pairs = row.chunks_exact(2);
            if let [last] = pairs.remainder() {
                even[row.len() / 2] = *last;
            }
            for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                *e = pair[0];
                *o = pair[1];
            }
        }
        for kx in 0..s.kernel_w {
            // Input column of output ox: ox · stride + c − pad_left.
            let c = lo * s.stride_w + kx * s.dilation_w - s.pad_left;
            if s.stride_w == 1 {
                inner.iter_mut().zip(&row[c..]).for_each(|(m, &v)| *m = max_nan(v, *m));
            } else if split {
                inner.iter_mut().zip(&halves[c % 2][c / 2..]).for_each(|(m, &v)| *m = max_nan(v, *m));
            } else {
                inner.iter_mut().zip(row[c..].iter().step_by(s.stride_w)).for_each(|(m, &v)| *m = max_nan(v, *m));
            }
        }
    }
}

/// Average pooling. With `count_include_pad` the divisor counts the window's
/// positions inside the padded input (not beyond it, as in ceil mode);
/// without, only positions inside the input.
pub fn avg_pool2d(par: &dyn Parallel, s: &Pool2dShape, count_include_pad: bool, x: &[f32], y: &mut [f32]) {
    let hw_in = s.in_h * s.in_w;
    per_plane(par, s, y, &|p, yp| {
        let xp = &x[p * hw_in..(p + 1) * hw_in];
        for oy in 0..s.out_h {
            let hs = (oy * s.stride_h) as isize - s.pad_top as isize;
            let he_pad = (hs + s.kernel_h as isize).min((s.in_h + s.pad_bottom) as isize);
            let (h0, h1) = (hs.max(0) as usize, (he_pad.min(s.in_h as isize)).max(0) as usize);
            for ox in 0..s.out_w {
                let ws = (ox * s.stride_w) as isize - s.pad_left as isize;
                let we_pad = (ws + s.kernel_w as isize).min((s.in_w + s.pad_right) as isize);
                let (w0, w1) = (ws.max(0) as usize, (we_pad.min(s.in_w as isize)).max(0) as usize);
                let mut sum = 0.0f32;
                for iy in h0..h1 {
                    sum += xp[iy * s.in_w + w0..iy * s.in_w + w1.max(w0)].iter().sum::<f32>();
                }
                let count = if count_include_pad {
                    ((he_pad - hs) * (we_pad - ws)).max(0) as usize
                } else {
                    h1.saturating_sub(h0) * w1.saturating_sub(w0)
                };
                yp[oy * s.out_w + ox] = if count == 0 { 0.0 } else { sum / count as f32 };
            }
        }
    });
}

/// Mean of each plane of `plane_len` values.
pub fn global_avg_pool(planes: usize, plane_len: usize, x: &[f32], y: &mut [f32]) {
    for (p, out) in y.iter_mut().enumerate().take(planes) {
        let v = &x[p * plane_len..(p + 1) * plane_len];
        let s: f64 = v.iter().map(|&a| a as f64).sum();
        *out = if plane_len == 0 { 0.0 } else { (s / plane_len as f64) as f32 };
    }
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn windows_clip_to_the_input() {
        // origin, kernel, dilation, length -> (first, count)
        assert_eq!(window(-1, 3, 1, 10), (0, 2));
        assert_eq!(window(0, 3, 1, 10), (0, 3));
        assert_eq!(window(8, 3, 1, 10), (8, 2));
        assert_eq!(window(-3, 3, 2, 10), (1, 1));
        assert_eq!(window(-4, 2, 1, 10), (0, 0));
        assert_eq!(window(12, 3, 1, 10), (0, 0));
        assert_eq!(window(-1, 3, 2, 3), (1, 1));
    }
}
