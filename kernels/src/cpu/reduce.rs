//! Reductions over any set of axes (ONNX Reduce*), and layer normalization.

/// What a reduction computes over its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    SumSquare,
    LogSum,
    LogSumExp,
}

impl ReduceOp {
    fn init(self) -> f32 {
        match self {
            ReduceOp::Max | ReduceOp::LogSumExp => f32::NEG_INFINITY,
            ReduceOp::Min => f32::INFINITY,
            ReduceOp::Prod => 1.0,
            _ => 0.0,
        }
    }
}

/// Reduces `x` of shape `dims` over the axes whose bit is set in `axes`;
/// `y` holds one value per kept position (row-major over the kept axes).
/// Empty windows give the op's identity (0 for sums, −∞ for Max, ...).
pub fn reduce(op: ReduceOp, x: &[f32], dims: &[usize], axes: u32, y: &mut [f32]) {
    let rank = dims.len();
    // Output strides over the input's axes: 0 on reduced axes.
    let mut ostride = [0usize; 8];
    let mut acc = 1;
    for a in (0..rank).rev() {
        if axes & (1 << a) == 0 {
            ostride[a] = acc;
            acc *= dims[a];
        }
    }
    let window: usize = (0..rank).filter(|a| axes & (1 << a) != 0).map(|a| dims[a]).product();
    y.iter_mut().for_each(|v| *v = op.init());
    let each = |f: &mut dyn FnMut(usize, f32)| {
        let mut idx = [0usize; 8];
        let mut o = 0usize;
        for &v in x {
            f(o, v);
            for a in (0..rank).rev() {
                idx[a] += 1;
                o += ostride[a];
                if idx[a] < dims[a] {
                    break;
                }
                o -= ostride[a] * dims[a];
                idx[a] = 0;
            }
        }
    };
    match op {
        ReduceOp::Sum | ReduceOp::Mean | ReduceOp::LogSum => each(&mut |o, v| y[o] += v),
        ReduceOp::Max => each(&mut |o, v| {
            if v > y[o] || v.is_nan() {
                y[o] = v
            }
        }),
        ReduceOp::Min => each(&mut |o, v| {
            if v < y[o] || v.is_nan() {
                y[o] = v
            }
        }),
        ReduceOp::Prod => each(&mut |o, v| y[o] *= v),
        ReduceOp::L1 => each(&mut |o, v| y[o] += v.abs()),
        ReduceOp::L2 | ReduceOp::SumSquare => each(&mut |o, v| y[o] += v * v),
        // One pass with the running log-sum-exp of each window:
        // ln(e^a + e^b) = max(a, b) + ln(1 + e^−|a − b|), which never
        // overflows however large the inputs.
        ReduceOp::LogSumExp => each(&mut |o, v| {
            let a = y[o];
            y[o] = if a == f32::NEG_INFINITY {
                v
            } else if v.is_nan() || a.is_nan() {
                f32::NAN
            } else if a == v {
                // Also right for +∞ + +∞, where a − v would be NaN.
                a + std::f32::consts::LN_2
            } else {
                a.max(v) + (-(a - v).abs()).exp().ln_1p()
            };
        }),
    }
    match op {
        ReduceOp::Mean => {
            let n = window as f32;
            y.iter_mut().for_each(|v| *v /= n);
        }
        ReduceOp::L2 => y.iter_mut().for_each(|v| *v = v.sqrt()),
        ReduceOp::LogSum => y.iter_mut().for_each(|v| *v = v.ln()),
        _ => {}
    }
}

/// ONNX LayerNormalization: each of `outer` rows of `n` values is
/// normalized to mean 0, variance 1 (population), then scaled and shifted
/// elementwise (`scale` and `bias` hold `n` values, or 1 broadcast).
pub fn layer_norm(outer: usize, n: usize, epsilon: f32, scale: &[f32], bias: Option<&[f32]>, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { layer_norm_avx2(outer, n, epsilon, scale, bias, x, y) };
    }
    layer_norm_any(outer, n, epsilon, scale, bias, x, y)
}

/// [`layer_norm`] on 256-bit registers (the same arithmetic).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn layer_norm_avx2(outer: usize, n: usize, epsilon: f32, scale: &[f32], bias: Option<&[f32]>, x: &[f32], y: &mut [f32]) {
    layer_norm_any(outer, n, epsilon, scale, bias, x, y)
}

/// `Σ f(v)` over `row` in f64, in eight running sums (one sum is a chain of
/// dependent additions: LayerNorm was 8 % of ViT-Tiny's time).
#[inline(always)]
fn sum8(row: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().sum::<f64>() + chunks.remainder().iter().map(|&v| f(v)).sum::<f64>()
}

#[inline(always)]
fn layer_norm_any(outer: usize, n: usize, epsilon: f32, scale: &[f32], bias: Option<&[f32]>, x: &[f32], y: &mut [f32]) {
    let (scale_all, bias_all) = (scale.len() == n, bias.is_some_and(|b| b.len() == n));
    let bias = bias.unwrap_or(&[0.0]);
    for r in 0..outer {
        let row = &x[r * n..(r + 1) * n];
        let out = &mut y[r * n..(r + 1) * n];
        let mean = sum8(row, |v| v as f64) / n as f64;
        let var = sum8(row, |v| (v as f64 - mean) * (v as f64 - mean)) / n as f64;
        let inv = 1.0 / (var + epsilon as f64).sqrt();
        for (j, (o, &v)) in out.iter_mut().zip(row).enumerate() {
            let s = if scale_all { scale[j] } else { scale[0] };
            let b = if bias_all { bias[j] } else { bias[0] };
            *o = (((v as f64 - mean) * inv) as f32) * s + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_any_axes() {
        // [2, 3, 2]
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut y = vec![0.0; 2 * 2];
        reduce(ReduceOp::Sum, &x, &[2, 3, 2], 0b010, &mut y);
        assert_eq!(y, [6.0, 9.0, 24.0, 27.0]);
        let mut y = vec![0.0; 3];
        reduce(ReduceOp::Max, &x, &[2, 3, 2], 0b101, &mut y);
        assert_eq!(y, [7.0, 9.0, 11.0]);
        let mut y = vec![0.0; 1];
        reduce(ReduceOp::Mean, &x, &[2, 3, 2], 0b111, &mut y);
        assert_eq!(y, [5.5]);
        let mut y = vec![0.0; 2];
        reduce(ReduceOp::LogSumExp, &[1000.0, 1000.0, 0.0, 0.0], &[2, 2], 0b10, &mut y);
        assert!((y[0] - (1000.0 + 2f32.ln())).abs() < 1e-3 && (y[1] - 2f32.ln()).abs() < 1e-6, "{y:?}");
        let mut y = vec![0.0; 2];
        reduce(ReduceOp::LogSumExp, &[f32::INFINITY, 1.0, 3.0, 90.0], &[2, 2], 0b10, &mut y);
        let want = 90.0 + (1.0 + (3.0f32 - 90.0).exp()).ln();
        assert!(y[0] == f32::INFINITY && (y[1] - want).abs() < 1e-4, "{y:?}");
    }

    #[test]
    fn layer_norm_normalizes_rows() {
        let x = [1.0, 2.0, 3.0, 4.0, -1.0, -1.0];
        let mut y = [0.0; 6];
        layer_norm(2, 3, 0.0, &[2.0], Some(&[1.0]), &x, &mut y);
        let s = (2.0f32 / 3.0).sqrt();
        let want = [1.0 - 2.0 / s, 1.0, 1.0 + 2.0 / s];
        for (a, b) in y[..3].iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
        assert!(y[3..].iter().all(|v| v.is_finite()));
    }
}
