//! Softmax along one axis: `y = e^(x − max) / Σ e^(x − max)`.

/// e^x for x ≤ 0, within a few ulp, in plain arithmetic the compiler
/// vectorizes. `f32::exp` is a libm call per value: PP-OCRv5 rec's softmax
/// over 18 385 classes × 40 steps spent 5.7 ms in it. Cephes' expf
/// polynomial on `x − n·ln 2`, times `2^n` built from its bits; below
/// −87 (about the smallest normal float) it gives 0, and NaN stays NaN.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Comparisons, not f32::max/min (whose NaN rules keep LLVM from
    // vectorizing): NaN passes through and stays NaN.
    let c = if x < -87.0 { -87.0 } else { x };
    let c = if c > 0.0 { 0.0 } else { c };
    let n = (c * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = c - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n is an integer in [−126, 0]: 2^n is a normal float with exponent
    // field n + 127, read off the low bits of 2^23 + 127 + n (a float→int
    // cast would not vectorize).
    let scale = f32::from_bits(((n + 8_388_735.0).to_bits() & 0xff) << 23);
    let v = e * scale;
    if x < -87.0 {
        0.0
    } else {
        v
    }
}

/// [`softmax`] with its rows shared among the workers, each worker's
/// share compiled for AVX2 where `isa` says so (PP-OCRv5 rec's 40 × 18 385
/// softmax was one thread of baseline SSE2).
#[allow(clippy::too_many_arguments)]
pub fn softmax_par(isa: crate::cpu::Isa, par: &dyn crate::Parallel, outer: usize, n: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    let row = n * inner;
    assert!(x.len() >= outer * row && y.len() >= outer * row, "softmax: operands too short");
    let (per, tasks) = crate::split_units(par, outer * row, outer);
    if tasks <= 1 {
        return softmax_isa(isa, outer, n, inner, x, y);
    }
    let out = crate::SharedMut::new(y);
    par.run(tasks, &|t, _| {
        let (o0, count) = (t * per, per.min(outer - t * per));
        // SAFETY: task t alone writes rows o0 .. o0 + count (in bounds:
        // asserted above).
        let ys = unsafe { out.slice_mut(o0 * row, count * row) };
        softmax_isa(isa, count, n, inner, &x[o0 * row..][..count * row], ys);
    });
}

fn softmax_isa(isa: crate::cpu::Isa, outer: usize, n: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.avx2() {
        // SAFETY: the session chose a variant with AVX2 and FMA, which it
        // does only where the CPU has them.
        return unsafe { softmax_avx2(outer, n, inner, x, y) };
    }
    let _ = isa;
    softmax(outer, n, inner, x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_avx2(outer: usize, n: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    softmax(outer, n, inner, x, y)
}

#[inline(always)]
pub fn softmax(outer: usize, n: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    if inner == 1 {
        // Contiguous rows: each pass is a plain loop over a slice.
        // Eight running maxima and sums, so that the reductions vectorize
        // (one sequential accumulator is a chain of dependent adds).
        const L: usize = 8;
        for (xs, ys) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)).take(outer) {
            let mut m = [f32::NEG_INFINITY; L];
            let mut blocks = xs.chunks_exact(L);
            for b in &mut blocks {
                for l in 0..L {
                    m[l] = if b[l] > m[l] { b[l] } else { m[l] };
                }
            }
            let max = blocks.remainder().iter().chain(&m).fold(f32::NEG_INFINITY, |a, &v| a.max(v));
            let mut s = [0.0f32; L];
            let mut out = ys.chunks_exact_mut(L);
            for (o, b) in (&mut out).zip(xs.chunks_exact(L)) {
                for l in 0..L {
                    o[l] = exp_nonpositive(b[l] - max);
                    s[l] += o[l];
                }
            }
            let tail = xs.len() / L * L;
            let mut sum: f32 = s.iter().sum();
            for (o, &v) in out.into_remainder().iter_mut().zip(&xs[tail..]) {
                *o = exp_nonpositive(v - max);
                sum += *o;
            }
            let inv = 1.0 / sum;
            ys.iter_mut().for_each(|o| *o *= inv);
        }
        return;
    }
    // Along a strided axis: `inner` columns side by side, a chunk of them
    // at a time, so that every pass runs over contiguous values and
    // vectorizes (a column at a time strode through memory: DFL's softmax
    // over 16 bins × 8 400 columns took 1 ms). The same operations per
    // column, in the same order, as one column at a time.
    const CHUNK: usize = 256;
    for o in 0..outer {
        let plane = o * n * inner;
        let mut i0 = 0;
        while i0 < inner {
            let c = CHUNK.min(inner - i0);
            let (mut max, mut sum) = ([f32::NEG_INFINITY; CHUNK], [0.0f32; CHUNK]);
            for j in 0..n {
                let xs = &x[plane + j * inner + i0..][..c];
                for (m, &v) in max[..c].iter_mut().zip(xs) {
                    *m = m.max(v);
                }
            }
            for j in 0..n {
                let at = plane + j * inner + i0;
                for (((o, &v), &m), s) in y[at..at + c].iter_mut().zip(&x[at..at + c]).zip(&max[..c]).zip(&mut sum[..c]) {
                    let e = exp_nonpositive(v - m);
                    *o = e;
                    *s += e;
                }
            }
            for s in &mut sum[..c] {
                *s = 1.0 / *s;
            }
            for j in 0..n {
                let at = plane + j * inner + i0;
                y[at..at + c].iter_mut().zip(&sum[..c]).for_each(|(o, &inv)| *o *= inv);
            }
            i0 += c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_nonpositive(x) as f64, (x as f64).exp());
            worst = worst.max((got - want).abs() / want);
            x += 0.000_37;
        }
        assert!(worst < 4.0 * f32::EPSILON as f64, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    #[test]
    fn rows_sum_to_one_in_both_layouts() {
        let x: Vec<f32> = (0..24).map(|i| (i as f32 * 0.7).sin() * 5.0).collect();
        let (mut a, mut b) = (vec![0.0; 24], vec![0.0; 24]);
        softmax(4, 6, 1, &x, &mut a);
        // The same rows, transposed: axis of 6 with inner 4.
        let xt: Vec<f32> = (0..24).map(|k| x[(k % 4) * 6 + k / 4]).collect();
        softmax(1, 6, 4, &xt, &mut b);
        for r in 0..4 {
            let (xr, row) = (&x[r * 6..(r + 1) * 6], &a[r * 6..(r + 1) * 6]);
            let max = xr.iter().cloned().fold(f32::MIN, f32::max);
            let sum: f32 = xr.iter().map(|&v| (v - max).exp()).sum();
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            for j in 0..6 {
                assert!((row[j] - (xr[j] - max).exp() / sum).abs() < 1e-6);
                assert_eq!(row[j], b[j * 4 + r]);
            }
        }
    }

    /// Rows shared among two workers, on every supported ISA, give the
    /// single-threaded portable result (to rounding: the AVX2 build may
    /// order the sums differently).
    #[test]
    fn parallel_rows_match_serial() {
        use crate::cpu::Isa;
        for (outer, n, inner) in [(40, 1000, 1), (3, 7, 2000), (1, 40_000, 1)] {
            let x: Vec<f32> = (0..outer * n * inner).map(|i| (i as f32 * 0.013).sin() * 9.0).collect();
            let mut want = vec![0.0; x.len()];
            softmax(outer, n, inner, &x, &mut want);
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                let mut got = vec![f32::NAN; x.len()];
                softmax_par(isa, &crate::test_util::TwoWorkers, outer, n, inner, &x, &mut got);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= 1e-6 * w.abs().max(1e-6), "{isa:?} {outer}x{n}x{inner} at {i}: {g} vs {w}");
                }
            }
        }
    }
}
