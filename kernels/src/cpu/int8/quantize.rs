//! Quantizing floats to int8 and back: one value, a tensor, a tensor per
//! channel (with a float16 scale and shift per channel, as a converter
//! folds a normalization into the quantizer), serial and shared among the
//! workers.

use super::QIsa;
use crate::{Parallel, SharedMut};

/// Quantizes one float: `clamp(round_half_even(x / scale) + zp, -128, 127)`.
///
/// `f32::round_ties_even` is a library call on x86-64 without SSE4.1 (the
/// baseline target), which made quantizing a tensor cost as much as the
/// convolution after it. Adding and subtracting 1.5·2^23 rounds half to
/// even in the FPU's default mode for |v| < 2^22, and vectorizes.
#[inline(always)]
// max/min, not clamp: clamp keeps a NaN, and a NaN must not reach the
// unchecked conversion below.
#[allow(clippy::manual_clamp)]
pub fn quantize_one(x: f32, inv_scale: f32, zp: i8) -> i8 {
    const MAGIC: f32 = 12_582_912.0;
    // NaN ends at the lowest level (max/min return the other operand).
    let v = (x * inv_scale).max(-512.0).min(512.0);
    let q = (((v + MAGIC) - MAGIC) + zp as f32).max(-128.0).min(127.0);
    // SAFETY: q is finite and within i32 (clamped above), so the
    // unchecked conversion (one vectorizable instruction) is exact.
    unsafe { q.to_int_unchecked::<i32>() as i8 }
}

/// `y[i] = quantize(x[i])`.
#[inline(always)]
pub fn quantize(x: &[f32], scale: f32, zp: i8, y: &mut [i8]) {
    let inv = 1.0 / scale;
    y.iter_mut().zip(x).for_each(|(q, &v)| *q = quantize_one(v, inv, zp));
}

/// Per channel: `y = clamp(round_half_even((x · mul[c] + add[c]) / scale) + zp)`,
/// with `mul` and `add` float16 bits; channel `c` of `x` is every
/// `inner` values in turn (NCHW: `inner` = H·W).
#[allow(clippy::too_many_arguments)]
pub fn quantize_channels(x: &[f32], mul: &[u16], add: &[u16], inner: usize, scale: f32, zp: i8, y: &mut [i8]) {
    quantize_planes(0, x, mul, add, inner, scale, zp, y)
}

/// [`quantize_channels`] from plane `first` on (`x` and `y` start there).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn quantize_planes(first: usize, x: &[f32], mul: &[u16], add: &[u16], inner: usize, scale: f32, zp: i8, y: &mut [i8]) {
    let c = mul.len().min(add.len());
    if c == 0 || inner == 0 {
        return;
    }
    let inv = 1.0 / scale;
    for (i, (xs, ys)) in x.chunks(inner).zip(y.chunks_mut(inner)).enumerate() {
        let f = |b: u16| half::f16::from_bits(b).to_f32();
        // Folded: (x·m + a)/s = x·(m/s) + a/s.
        let ch = (first + i) % c;
        let (m, a) = (f(mul[ch]) * inv, f(add[ch]) * inv);
        ys.iter_mut().zip(xs).for_each(|(q, &v)| *q = quantize_one(v * m + a, 1.0, zp));
    }
}

/// [`quantize`] shared among the workers (an activation quantized
/// between int8 regions: PP-OCRv5 rec has 25), compiled for AVX2 on x86.
pub fn quantize_par(q: QIsa, par: &dyn Parallel, x: &[f32], scale: f32, zp: i8, y: &mut [i8]) {
    let n = x.len().min(y.len());
    let (per, tasks) = crate::split_units(par, n, n.div_ceil(64));
    let per = per * 64;
    let out = SharedMut::new(y);
    par.run(tasks, &|t, _| {
        let (a, b) = (t * per, ((t + 1) * per).min(n));
        // SAFETY: task t alone writes a .. b (< n ≤ y.len()).
        let ys = unsafe { out.slice_mut(a, b - a) };
        match q {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: both x86 int8 variants imply AVX2, and the session
            // chose a variant this CPU supports.
            QIsa::Avx2 | QIsa::Avx512Vnni => unsafe { quantize_avx2(&x[a..b], scale, zp, ys) },
            _ => quantize(&x[a..b], scale, zp, ys),
        }
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(x: &[f32], scale: f32, zp: i8, y: &mut [i8]) {
    quantize(x, scale, zp, y)
}

/// [`quantize_channels`] shared among the workers, plane by plane.
#[allow(clippy::too_many_arguments)]
pub fn quantize_channels_par(
    q: QIsa,
    par: &dyn Parallel,
    x: &[f32],
    mul: &[u16],
    add: &[u16],
    inner: usize,
    scale: f32,
    zp: i8,
    y: &mut [i8],
) {
    let n = x.len().min(y.len());
    if inner == 0 {
        return;
    }
    let (per, tasks) = crate::split_units(par, n, n.div_ceil(inner));
    let out = SharedMut::new(y);
    par.run(tasks, &|t, _| {
        let (a, b) = (t * per * inner, ((t + 1) * per * inner).min(n));
        // SAFETY: task t alone writes a .. b (< n ≤ y.len()).
        let ys = unsafe { out.slice_mut(a, b - a) };
        match q {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in quantize_par.
            QIsa::Avx2 | QIsa::Avx512Vnni => unsafe { quantize_planes_avx2(t * per, &x[a..b], mul, add, inner, scale, zp, ys) },
            _ => quantize_planes(t * per, &x[a..b], mul, add, inner, scale, zp, ys),
        }
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn quantize_planes_avx2(first: usize, x: &[f32], mul: &[u16], add: &[u16], inner: usize, scale: f32, zp: i8, y: &mut [i8]) {
    quantize_planes(first, x, mul, add, inner, scale, zp, y)
}

/// `y[i] = (x[i] - zp) · scale`.
pub fn dequantize(x: &[i8], scale: f32, zp: i8, y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(o, &q)| *o = (q as i32 - zp as i32) as f32 * scale);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TwoWorkers;

    #[test]
    fn parallel_quantize_matches_serial() {
        for (planes, inner) in [(3, 5), (7, 5003), (40, 960)] {
            let x: Vec<f32> = (0..planes * inner).map(|i| (i as f32 * 0.37).sin() * 40.0).collect();
            let bits = |v: &[f32]| v.iter().map(|&f| half::f16::from_f32(f).to_bits()).collect::<Vec<u16>>();
            let (mul, add) = (bits(&[1.5, 0.25, 3.0]), bits(&[-2.0, 0.5, 7.0]));
            let (mut want, mut want_c) = (vec![0i8; x.len()], vec![0i8; x.len()]);
            quantize(&x, 0.3, -4, &mut want);
            quantize_channels(&x, &mul, &add, inner, 0.3, -4, &mut want_c);
            for q in QIsa::ALL.into_iter().filter(|q| q.supported()) {
                let (mut got, mut got_c) = (vec![99i8; x.len()], vec![99i8; x.len()]);
                quantize_par(q, &TwoWorkers, &x, 0.3, -4, &mut got);
                quantize_channels_par(q, &TwoWorkers, &x, &mul, &add, inner, 0.3, -4, &mut got_c);
                assert_eq!(got, want, "{} {planes}x{inner}", q.name());
                assert_eq!(got_c, want_c, "{} {planes}x{inner} per channel", q.name());
            }
        }
    }

    #[test]
    fn quantize_channels_matches_per_channel_quantize() {
        let (c, inner) = (3, 5);
        let x: Vec<f32> = (0..2 * c * inner).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let mul = [10.0f32, 0.5, 64.0];
        let add = [-3.0f32, 0.0, 17.5];
        let bits = |v: &[f32]| v.iter().map(|&f| half::f16::from_f32(f).to_bits()).collect::<Vec<u16>>();
        let mut y = vec![0i8; x.len()];
        quantize_channels(&x, &bits(&mul), &bits(&add), inner, 0.25, -5, &mut y);
        for (i, (&q, &v)) in y.iter().zip(&x).enumerate() {
            let ch = (i / inner) % c;
            let want = (((v * mul[ch] + add[ch]) / 0.25).round_ties_even() - 5.0).clamp(-128.0, 127.0) as i8;
            assert_eq!(q, want, "at {i}");
        }
    }

    #[test]
    fn quantize_round_trip() {
        let x = [-1.0f32, -0.01, 0.0, 0.024, 0.026, 1.0, 100.0];
        let mut q = [0i8; 7];
        quantize(&x, 0.05, -3, &mut q);
        assert_eq!(q, [-23, -3, -3, -3, -2, 17, 127]);
        let mut y = [0f32; 7];
        dequantize(&q, 0.05, -3, &mut y);
        assert!((y[0] + 1.0).abs() < 1e-6 && (y[6] - 6.5).abs() < 1e-5);
    }
}
