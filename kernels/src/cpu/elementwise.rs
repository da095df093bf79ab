//! Elementwise ops with numpy-style broadcasting.

use super::layout::MAX_RANK;
use crate::cpu::Activation;
use crate::{Parallel, SharedMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
    /// `a < 0 ? a · b : a` (ONNX PRelu, b the slope)
    PRelu,
    /// `a − b · floor(a / b)` with the sign of b (ONNX Mod, fmod = 0)
    Mod,
    /// C fmod: the sign of a (ONNX Mod, fmod = 1)
    Fmod,
}

impl BinaryOp {
    #[inline(always)]
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::PRelu => {
                if a < 0.0 {
                    a * b
                } else {
                    a
                }
            }
            BinaryOp::Mod => {
                let r = a % b;
                if r != 0.0 && (r < 0.0) != (b < 0.0) {
                    r + b
                } else {
                    r
                }
            }
            BinaryOp::Fmod => a % b,
            // ONNX Max/Min propagate NaN.
            BinaryOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            BinaryOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
            BinaryOp::Pow => a.powf(b),
        }
    }
}

/// Strides of `shape` broadcast to `out_shape` (right-aligned), 0 on
/// broadcast axes.
fn broadcast_strides(shape: &[usize], out_rank: usize) -> [usize; MAX_RANK] {
    let mut s = [0usize; MAX_RANK];
    let lead = out_rank - shape.len();
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        s[lead + i] = if shape[i] == 1 { 0 } else { acc };
        acc *= shape[i];
    }
    s
}

/// `out = act(op(a, b))` with `a` and `b` broadcast to `out_shape`.
///
/// Shapes must be broadcast-compatible with `out_shape` (validated when the
/// model is opened); ranks are at most [`MAX_RANK`].
pub fn binary(
    op: BinaryOp,
    act: Activation,
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out: &mut [f32],
    out_shape: &[usize],
) {
    // The activation is applied in a second pass over the output: inside
    // the loop its match (thirty kinds) would keep the loop from being
    // vectorized.
    macro_rules! go {
        ($op:expr) => {
            broadcast_loop(a, a_shape, b, b_shape, out, out_shape, |x, y| $op.apply(x, y))
        };
    }
    // One instantiation per op, so the inner loops are branch-free.
    match op {
        BinaryOp::Add => go!(BinaryOp::Add),
        BinaryOp::Sub => go!(BinaryOp::Sub),
        BinaryOp::Mul => go!(BinaryOp::Mul),
        BinaryOp::Div => go!(BinaryOp::Div),
        BinaryOp::Max => go!(BinaryOp::Max),
        BinaryOp::Min => go!(BinaryOp::Min),
        BinaryOp::Pow => go!(BinaryOp::Pow),
        BinaryOp::PRelu => go!(BinaryOp::PRelu),
        BinaryOp::Mod => go!(BinaryOp::Mod),
        BinaryOp::Fmod => go!(BinaryOp::Fmod),
    }
    let total: usize = out_shape.iter().product();
    act.apply_slice(&mut out[..total]);
}

#[inline(always)]
fn broadcast_loop(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out: &mut [f32],
    out_shape: &[usize],
    f: impl Fn(f32, f32) -> f32,
) {
    let rank = out_shape.len();
    let total: usize = out_shape.iter().product();
    if total == 0 {
        return;
    }
    let sa0 = broadcast_strides(a_shape, rank);
    let sb0 = broadcast_strides(b_shape, rank);
    // Merge adjacent axes that both operands walk the same way, so that the
    // inner loop runs as long as possible.
    let mut dims = [1usize; MAX_RANK];
    let mut sa = [0usize; MAX_RANK];
    let mut sb = [0usize; MAX_RANK];
    let mut r = 0;
    for i in 0..rank {
        if out_shape[i] == 1 {
            continue;
        }
        if r > 0 {
            let p = r - 1;
            let mergeable = sa[p] == sa0[i] * out_shape[i] && sb[p] == sb0[i] * out_shape[i];
            if mergeable {
                dims[p] *= out_shape[i];
                sa[p] = sa0[i];
                sb[p] = sb0[i];
                continue;
            }
        }
        dims[r] = out_shape[i];
        sa[r] = sa0[i];
        sb[r] = sb0[i];
        r += 1;
    }
    if r == 0 {
        out[0] = f(a[0], b[0]);
        return;
    }
    let inner = dims[r - 1];
    let (ia, ib) = (sa[r - 1], sb[r - 1]);
    let mut idx = [0usize; MAX_RANK];
    let mut o = 0;
    while o < total {
        let (mut oa, mut ob) = (0, 0);
        for ax in 0..r - 1 {
            oa += idx[ax] * sa[ax];
            ob += idx[ax] * sb[ax];
        }
        let dst = &mut out[o..o + inner];
        match (ia, ib) {
            (1, 1) => dst.iter_mut().zip(&a[oa..oa + inner]).zip(&b[ob..ob + inner]).for_each(|((d, &x), &y)| *d = f(x, y)),
            (1, 0) => {
                let y = b[ob];
                dst.iter_mut().zip(&a[oa..oa + inner]).for_each(|(d, &x)| *d = f(x, y));
            }
            (0, 1) => {
                let x = a[oa];
                dst.iter_mut().zip(&b[ob..ob + inner]).for_each(|(d, &y)| *d = f(x, y));
            }
            _ => {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = f(a[oa + j * ia], b[ob + j * ib]);
                }
            }
        }
        o += inner;
        let mut ax = r - 1;
        while ax > 0 {
            ax -= 1;
            idx[ax] += 1;
            if idx[ax] < dims[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
}

/// [`binary`] over several threads when both operands have the output's
/// shape (a residual connection): the flat range is cut into chunks.
pub fn binary_par(
    par: &dyn Parallel,
    op: BinaryOp,
    act: Activation,
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out: &mut [f32],
    out_shape: &[usize],
) {
    let total: usize = out_shape.iter().product();
    let (chunk, tasks) = crate::split_units(par, total, total);
    if a_shape != out_shape || b_shape != out_shape || tasks == 1 {
        return binary(op, act, a, a_shape, b, b_shape, out, out_shape);
    }
    let ys = SharedMut::new(&mut out[..total]);
    par.run(tasks, &|t, _| {
        let (lo, hi) = (t * chunk, ((t + 1) * chunk).min(total));
        // SAFETY: tasks write disjoint ranges lo..hi.
        let y = unsafe { ys.slice_mut(lo, hi - lo) };
        let n = [hi - lo];
        binary(op, act, &a[lo..hi], &n, &b[lo..hi], &n, y, &n);
    });
}

/// `y = act(x · scale[c] + shift[c])` for `x` of shape `[outer, channels, inner]`.
pub fn channel_affine(
    outer: usize,
    channels: usize,
    inner: usize,
    scale: &[f32],
    shift: &[f32],
    act: Activation,
    x: &[f32],
    y: &mut [f32],
) {
    affine_planes(0, outer * channels, channels, inner, scale, shift, act, x, y)
}

/// Planes `first .. first + count` of [`channel_affine`]; `x` and `y` start
/// at plane `first`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn affine_planes(
    first: usize,
    count: usize,
    channels: usize,
    inner: usize,
    scale: &[f32],
    shift: &[f32],
    act: Activation,
    x: &[f32],
    y: &mut [f32],
) {
    for p in 0..count {
        let c = (first + p) % channels.max(1);
        let base = p * inner;
        // One value stands for all channels.
        let at = |v: &[f32]| if v.len() == 1 { v[0] } else { v[c] };
        let (s, t) = (at(scale), at(shift));
        let out = &mut y[base..base + inner];
        out.iter_mut().zip(&x[base..base + inner]).for_each(|(d, &v)| *d = v * s + t);
        act.apply_slice(out);
    }
}

/// [`channel_affine`] with its planes shared among the workers, each
/// share compiled for AVX2 where `isa` says so.
#[allow(clippy::too_many_arguments)]
pub fn channel_affine_par(
    isa: crate::cpu::Isa,
    par: &dyn crate::Parallel,
    outer: usize,
    channels: usize,
    inner: usize,
    scale: &[f32],
    shift: &[f32],
    act: Activation,
    x: &[f32],
    y: &mut [f32],
) {
    let planes = outer * channels;
    assert!(x.len() >= planes * inner && y.len() >= planes * inner, "channel_affine: operands too short");
    let (per, tasks) = crate::split_units(par, planes * inner, planes);
    let out = crate::SharedMut::new(y);
    par.run(tasks, &|t, _| {
        let (p0, count) = (t * per, per.min(planes - t * per));
        // SAFETY: task t alone writes planes p0 .. p0 + count (in bounds:
        // asserted above).
        let ys = unsafe { out.slice_mut(p0 * inner, count * inner) };
        let xs = &x[p0 * inner..(p0 + count) * inner];
        #[cfg(target_arch = "x86_64")]
        if isa.avx2() {
            // SAFETY: the session chose a variant with AVX2 and FMA, which
            // it does only where the CPU has them.
            return unsafe { affine_planes_avx2(p0, count, channels, inner, scale, shift, act, xs, ys) };
        }
        let _ = isa;
        affine_planes(p0, count, channels, inner, scale, shift, act, xs, ys)
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn affine_planes_avx2(
    first: usize,
    count: usize,
    channels: usize,
    inner: usize,
    scale: &[f32],
    shift: &[f32],
    act: Activation,
    x: &[f32],
    y: &mut [f32],
) {
    affine_planes(first, count, channels, inner, scale, shift, act, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Planes shared among two workers give the serial result exactly.
    #[test]
    fn parallel_affine_matches_serial() {
        use crate::cpu::Isa;
        let (outer, channels, inner) = (2, 7, 3000);
        let x: Vec<f32> = (0..outer * channels * inner).map(|i| (i as f32 * 0.1).cos() * 3.0).collect();
        let scale: Vec<f32> = (0..channels).map(|c| 0.5 + c as f32).collect();
        let shift: Vec<f32> = (0..channels).map(|c| c as f32 - 2.0).collect();
        let mut want = vec![0.0; x.len()];
        channel_affine(outer, channels, inner, &scale, &shift, Activation::Relu, &x, &mut want);
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let mut got = vec![f32::NAN; x.len()];
            channel_affine_par(isa, &crate::test_util::TwoWorkers, outer, channels, inner, &scale, &shift, Activation::Relu, &x, &mut got);
            assert_eq!(got, want, "{isa:?}");
        }
    }

    #[test]
    fn broadcasting_follows_numpy() {
        // [2,1,3] + [1,2,1] -> [2,2,3]
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [10.0, 20.0];
        let mut out = [0.0; 12];
        binary(BinaryOp::Add, Activation::None, &a, &[2, 1, 3], &b, &[1, 2, 1], &mut out, &[2, 2, 3]);
        assert_eq!(out, [11.0, 12.0, 13.0, 21.0, 22.0, 23.0, 14.0, 15.0, 16.0, 24.0, 25.0, 26.0]);
        // scalar
        let mut out = [0.0; 6];
        binary(BinaryOp::Sub, Activation::Relu, &a, &[2, 3], &[3.0], &[], &mut out, &[2, 3]);
        assert_eq!(out, [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
        // per-channel [C,1,1] against [1,C,2,1]
        let mut out = [0.0; 4];
        binary(BinaryOp::Mul, Activation::None, &[1.0, 2.0, 3.0, 4.0], &[1, 2, 2, 1], &[10.0, 100.0], &[2, 1, 1], &mut out, &[1, 2, 2, 1]);
        assert_eq!(out, [10.0, 20.0, 300.0, 400.0]);
    }

    #[test]
    fn parallel_binary_matches_serial() {
        struct Two;
        impl crate::Parallel for Two {
            fn workers(&self) -> usize {
                2
            }
            fn run(&self, tasks: usize, f: &(dyn Fn(usize, usize) + Sync)) {
                std::thread::scope(|s| {
                    s.spawn(|| (1..tasks).step_by(2).for_each(|t| f(t, 1)));
                    (0..tasks).step_by(2).for_each(|t| f(t, 0));
                });
            }
        }
        let n = 100_003;
        let a: Vec<f32> = (0..n).map(|i| (i % 17) as f32 - 8.0).collect();
        let b: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 0.5).collect();
        let (mut x, mut y) = (vec![0.0; n], vec![0.0; n]);
        binary(BinaryOp::Add, Activation::Relu, &a, &[n], &b, &[n], &mut x, &[n]);
        binary_par(&Two, BinaryOp::Add, Activation::Relu, &a, &[n], &b, &[n], &mut y, &[n]);
        assert_eq!(x, y);
    }

    #[test]
    fn transpose_moves_axes() {
        let x: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut y = vec![0.0; 24];
        crate::cpu::layout::transpose(&x, &[2, 3, 4], &[2, 0, 1], &mut y);
        // y[k, i, j] = x[i, j, k]
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    assert_eq!(y[(k * 2 + i) * 3 + j], x[(i * 3 + j) * 4 + k]);
                }
            }
        }
    }
}
