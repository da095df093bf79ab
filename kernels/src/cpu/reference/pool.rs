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

/// Max pooling; padding never wins (it is skipped, not read as −∞ or 0).
pub fn max_pool2d(par: &dyn Parallel, s: &Pool2dShape, x: &[f32], y: &mut [f32]) {
    let hw_in = s.in_h * s.in_w;
    per_plane(par, s, y, &|p, yp| {
        let xp = &x[p * hw_in..(p + 1) * hw_in];
        for oy in 0..s.out_h {
            for ox in 0..s.out_w {
                let mut m = f32::NEG_INFINITY;
                for ky in 0..s.kernel_h {
                    let iy = (oy * s.stride_h + ky * s.dilation_h) as isize - s.pad_top as isize;
                    if iy < 0 || iy as usize >= s.in_h {
                        continue;
                    }
                    let row = &xp[iy as usize * s.in_w..(iy as usize + 1) * s.in_w];
                    for kx in 0..s.kernel_w {
                        let ix = (ox * s.stride_w + kx * s.dilation_w) as isize - s.pad_left as isize;
                        if ix < 0 || ix as usize >= s.in_w {
                            continue;
                        }
                        let v = row[ix as usize];
                        // NaN propagates, as in onnxruntime.
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                }
                yp[oy * s.out_w + ox] = m;
            }
        }
    });
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
