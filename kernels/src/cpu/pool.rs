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

/// `dst[i] = max_nan(b[i], a[i])` (`a` the running maximum, `b` the next
/// tap). Never in place: a running maximum updated in place
/// (`m = max_nan(v, m)`) becomes a masked store (`vmaskmovps`), which is
/// microcoded on AMD cores (ResNet-18's max pool took 0.8 ms on Zen 4,
/// onnxruntime 0.14).
#[inline(always)]
fn max_pair(dst: &mut [f32], a: &[f32], b: &[f32]) {
    let n = dst.len();
    let (a, b) = (&a[..n], &b[..n]);
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = max_nan(y, x);
    }
}

/// The maximum of `n` runs into `out`, in the order of [`max_nan`] over
/// them one by one, through the two buffers `t`.
#[inline(always)]
fn max_runs<'a>(n: usize, run: impl Fn(usize) -> &'a [f32], t: [&mut [f32]; 2], out: &mut [f32]) {
    let len = out.len();
    match n {
        0 => out.fill(f32::NEG_INFINITY),
        1 => out.copy_from_slice(&run(0)[..len]),
        _ => {
            let [mut cur, mut next] = t.map(|b| &mut b[..len]);
            for k in 1..n {
                let dst: &mut [f32] = if k == n - 1 { &mut *out } else { &mut *next };
                let prev: &[f32] = if k == 1 { run(0) } else { &*cur };
                max_pair(dst, prev, run(k));
                std::mem::swap(&mut cur, &mut next);
            }
        }
    }
}

/// Max pooling; padding never wins (it is skipped, not read as −∞ or 0),
/// and NaN propagates as in onnxruntime.
///
/// Separable: for each output row, the window's input rows are first
/// reduced to one row (a contiguous, vectorized pass), then each output
/// takes the maximum of its columns of that row.
pub fn max_pool2d(par: &dyn Parallel, s: &Pool2dShape, x: &[f32], y: &mut [f32]) {
    let (hw_in, hw) = (s.in_h * s.in_w, s.out_h * s.out_w);
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    let ys = SharedMut::new(&mut y[..s.planes * hw]);
    let chunk = s.planes.div_ceil(par.workers() * 4).max(1);
    let tasks = s.planes.div_ceil(chunk);
    par.run(tasks, &|t, _| {
        let planes = t * chunk..((t + 1) * chunk).min(s.planes);
        // SAFETY: each plane is written by exactly one task.
        let yt = unsafe { ys.slice_mut(planes.start * hw, planes.len() * hw) };
        let xt = &x[planes.start * hw_in..planes.end * hw_in];
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU has AVX2 (checked above).
            return unsafe { max_planes_avx2(s, xt, yt) };
        }
        max_planes(s, xt, yt)
    });
}

/// [`max_planes`] on 256-bit registers (the same comparisons).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_planes_avx2(s: &Pool2dShape, x: &[f32], y: &mut [f32]) {
    max_planes(s, x, y)
}

/// Planes of [`max_pool2d`], with their row buffers.
#[inline(always)]
fn max_planes(s: &Pool2dShape, x: &[f32], y: &mut [f32]) {
    let mut bufs = [[0.0f32; MAX_POOL_ROW]; 3];
    // Stride 2: the row's even and odd columns, so that every tap reads
    // a contiguous run.
    let mut halves = [[0.0f32; MAX_POOL_ROW / 2]; 2];
    let hw_in = s.in_h * s.in_w;
    for (xp, yp) in x.chunks_exact(hw_in.max(1)).zip(y.chunks_exact_mut((s.out_h * s.out_w).max(1))) {
        max_plane(s, xp, yp, &mut bufs, &mut halves);
    }
}

/// One plane of [`max_pool2d`].
#[inline(always)]
fn max_plane(s: &Pool2dShape, xp: &[f32], yp: &mut [f32], bufs: &mut [[f32; MAX_POOL_ROW]; 3], halves: &mut [[f32; MAX_POOL_ROW / 2]; 2]) {
    let span = (s.kernel_w - 1) * s.dilation_w;
    // Outputs whose window lies inside the row need no clipping.
    let inner_lo = s.pad_left.div_ceil(s.stride_w).min(s.out_w);
    let inner_hi =
        if s.in_w + s.pad_left > span { ((s.in_w + s.pad_left - span - 1) / s.stride_w + 1).clamp(inner_lo, s.out_w) } else { inner_lo };
    let [rowbuf, t0, t1] = bufs;
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
        // The window's rows reduced to one.
        let in_row = |k: usize| {
            let iy = iy0 + k * s.dilation_h;
            &xp[iy * s.in_w..(iy + 1) * s.in_w]
        };
        let row: &[f32] = if ny == 1 {
            in_row(0)
        } else {
            max_runs(ny, in_row, [&mut t0[..], &mut t1[..]], &mut rowbuf[..s.in_w]);
            &rowbuf[..s.in_w]
        };
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
        // Input column of output ox for tap kx: ox · stride + c − pad_left.
        let col = |kx: usize| lo * s.stride_w + kx * s.dilation_w - s.pad_left;
        match s.stride_w {
            1 => max_runs(s.kernel_w, |kx| &row[col(kx)..], [&mut t0[..], &mut t1[..]], inner),
            2 => {
                let [even, odd] = &mut *halves;
                let pairs = row.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    even[row.len() / 2] = *last;
                }
                for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                    *e = pair[0];
                    *o = pair[1];
                }
                let halves = &*halves;
                max_runs(s.kernel_w, |kx| &halves[col(kx) % 2][col(kx) / 2..], [&mut t0[..], &mut t1[..]], inner);
            }
            _ => {
                inner.fill(f32::NEG_INFINITY);
                for kx in 0..s.kernel_w {
                    inner.iter_mut().zip(row[col(kx)..].iter().step_by(s.stride_w)).for_each(|(m, &v)| *m = max_nan(v, *m));
                }
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
///
/// Planes split over the workers when there are enough values; each plane's
/// sum is the same whatever the split or the vector width.
pub fn global_avg_pool(par: &dyn Parallel, planes: usize, plane_len: usize, x: &[f32], y: &mut [f32]) {
    let (per, tasks) = crate::split_units(par, planes * plane_len, planes);
    let ys = SharedMut::new(&mut y[..planes]);
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    let task = |t: usize, _worker: usize| {
        let (p0, p1) = (t * per, ((t + 1) * per).min(planes));
        // SAFETY: each task writes only its planes' averages.
        let out = unsafe { ys.slice_mut(p0, p1 - p0) };
        let xs = &x[p0 * plane_len..p1 * plane_len];
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU has AVX2 (checked above).
            return unsafe { averages_avx2(plane_len, xs, out) };
        }
        averages(plane_len, xs, out)
    };
    if tasks == 1 {
        task(0, 0);
    } else {
        par.run(tasks, &task);
    }
}

/// [`averages`] on 256-bit registers (the same sums).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn averages_avx2(plane_len: usize, x: &[f32], out: &mut [f32]) {
    averages(plane_len, x, out)
}

/// The average of each plane of `x` (`plane_len` values each) into `out`.
#[inline(always)]
fn averages(plane_len: usize, x: &[f32], out: &mut [f32]) {
    for (p, o) in out.iter_mut().enumerate() {
        let v = &x[p * plane_len..(p + 1) * plane_len];
        *o = if plane_len == 0 { 0.0 } else { (sum_f64(v) / plane_len as f64) as f32 };
    }
}

/// The sum of `v` in f64, over eight running sums (one sum, added in
/// order, was a dependency chain of one addition per value: 7× slower
/// than onnxruntime on MobileNet v3's pools).
#[inline(always)]
fn sum_f64(v: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l] as f64;
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&a| a as f64).sum();
    acc.iter().sum::<f64>() + tail
}

/// Max pooling on int8 (the maximum of values sharing one scale is the
/// quantized maximum, so an int8 region runs through it unchanged). An
/// empty window gives −128.
pub fn max_pool2d_i8(par: &dyn Parallel, s: &Pool2dShape, x: &[i8], y: &mut [i8]) {
    let (hw_in, hw_out) = (s.in_h * s.in_w, s.out_h * s.out_w);
    let ys = SharedMut::new(&mut y[..s.planes * hw_out]);
    par.run(s.planes, &|p, _| {
        let xp = &x[p * hw_in..(p + 1) * hw_in];
        // SAFETY: task p alone writes plane p.
        let yp = unsafe { ys.slice_mut(p * hw_out, hw_out) };
        for oy in 0..s.out_h {
            let (iy0, ny) = window((oy * s.stride_h) as isize - s.pad_top as isize, s.kernel_h, s.dilation_h, s.in_h);
            for ox in 0..s.out_w {
                let (ix0, nx) = window((ox * s.stride_w) as isize - s.pad_left as isize, s.kernel_w, s.dilation_w, s.in_w);
                let mut m = i8::MIN;
                for ky in 0..ny {
                    let row = &xp[(iy0 + ky * s.dilation_h) * s.in_w..];
                    for kx in 0..nx {
                        m = m.max(row[ix0 + kx * s.dilation_w]);
                    }
                }
                yp[oy * s.out_w + ox] = m;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{max_pool2d, max_pool2d_i8, window, Pool2dShape};
    use crate::test_util::{data, TwoWorkers};
    use crate::Serial;

    #[test]
    fn global_average_is_the_mean_on_any_split() {
        // Enough values to split over two workers; plane lengths that are
        // and are not multiples of the eight running sums.
        for (planes, len) in [(96, 3136), (7, 13), (40, 49)] {
            let x = data(planes * len, 7);
            let mut one = vec![f32::NAN; planes];
            super::global_avg_pool(&Serial, planes, len, &x, &mut one);
            let mut two = vec![f32::NAN; planes];
            super::global_avg_pool(&TwoWorkers, planes, len, &x, &mut two);
            assert_eq!(one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), two.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            for (p, &got) in one.iter().enumerate() {
                let want = x[p * len..(p + 1) * len].iter().map(|&v| v as f64).sum::<f64>() / len as f64;
                assert!((got as f64 - want).abs() <= 1e-6 * want.abs().max(1e-3), "plane {p} of {len}: {got} vs {want}");
            }
        }
    }

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

    /// int8 max pooling is float max pooling on the same integers.
    #[test]
    fn max_pool_i8_matches_float() {
        let s = Pool2dShape {
            planes: 3,
            in_h: 7,
            in_w: 9,
            out_h: 4,
            out_w: 5,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 2,
            stride_w: 2,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 1,
            pad_bottom: 1,
            pad_right: 1,
        };
        let x: Vec<i8> = (0..3 * 63).map(|i| ((i * 97 + 31) % 256) as u8 as i8).collect();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut want = vec![0.0f32; 3 * 20];
        max_pool2d(&TwoWorkers, &s, &xf, &mut want);
        let mut got = vec![0i8; 3 * 20];
        max_pool2d_i8(&TwoWorkers, &s, &x, &mut got);
        assert_eq!(got.iter().map(|&v| v as f32).collect::<Vec<_>>(), want);
    }
}
