//! Activation functions that kernels apply to their results in place.

/// An elementwise activation, applied by the producing kernel (fused) or as a
/// step of its own.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    Clip {
        min: f32,
        max: f32,
    },
    Sigmoid,
    Tanh,
    /// `max(0, min(1, alpha·x + beta))`
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x · HardSigmoid(x)` with alpha 1/6, beta 1/2.
    HardSwish,
    /// `x · sigmoid(x)` (SiLU)
    Silu,
    /// `0.5 · x · (1 + erf(x/√2))`
    Gelu,
    /// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`
    GeluTanh,
    Erf,
    Sqrt,
    Exp,
    Log,
    Abs,
    Neg,
    Reciprocal,
    Floor,
    Ceil,
    /// Half to even, as ONNX Round.
    Round,
    Sign,
    Softplus,
    Softsign,
    Elu {
        alpha: f32,
    },
    Selu {
        alpha: f32,
        gamma: f32,
    },
    Celu {
        alpha: f32,
    },
    ThresholdedRelu {
        alpha: f32,
    },
    Mish,
    Sin,
    Cos,
}

impl Activation {
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { alpha } => {
                if x < 0.0 {
                    x * alpha
                } else {
                    x
                }
            }
            // ONNX Clip: min(max(x, min), max); NaN stays NaN.
            // min > max gives max, as min(max(x, min), max) does.
            Activation::Clip { min, max } => {
                let v = if x < min { min } else { x };
                if v > max {
                    max
                } else {
                    v
                }
            }
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => tanh(x),
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Silu => x * sigmoid(x),
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => {
                let c = (2.0 / std::f32::consts::PI).sqrt();
                0.5 * x * (1.0 + tanh(c * (x + 0.044715 * x * x * x)))
            }
            Activation::Erf => erf(x),
            Activation::Sqrt => x.sqrt(),
            Activation::Exp => exp(x),
            Activation::Log => x.ln(),
            Activation::Abs => x.abs(),
            Activation::Neg => -x,
            Activation::Reciprocal => 1.0 / x,
            Activation::Floor => x.floor(),
            Activation::Ceil => x.ceil(),
            Activation::Round => x.round_ties_even(),
            Activation::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            Activation::Softplus => softplus(x),
            Activation::Softsign => x / (1.0 + x.abs()),
            Activation::Elu { alpha } => {
                if x < 0.0 {
                    alpha * x.exp_m1()
                } else {
                    x
                }
            }
            Activation::Selu { alpha, gamma } => {
                if x <= 0.0 {
                    gamma * alpha * x.exp_m1()
                } else {
                    gamma * x
                }
            }
            Activation::Celu { alpha } => x.max(0.0) + (alpha * (x / alpha).exp_m1()).min(0.0),
            Activation::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            Activation::Mish => x * softplus(x).tanh(),
            Activation::Sin => x.sin(),
            Activation::Cos => x.cos(),
        }
    }

    /// Applies the activation to every element of `xs`: the same values
    /// as [`Activation::apply`], in loops the compiler vectorizes (on AVX2
    /// where the CPU has it; the arithmetic is the same, element by
    /// element, so the results do not depend on the vector width).
    pub fn apply_slice(self, xs: &mut [f32]) {
        if self.is_none() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            if std::arch::is_x86_feature_detected!("avx512f") && xs.len() >= 64 {
                // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked above).
                return unsafe { self.apply_slice_avx512(xs) };
            }
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            return unsafe { self.apply_slice_avx2(xs) };
        }
        self.apply_slice_any(xs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn apply_slice_avx512(self, xs: &mut [f32]) {
        self.apply_slice_any(xs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply_slice_avx2(self, xs: &mut [f32]) {
        self.apply_slice_any(xs)
    }

    #[inline(always)]
    fn apply_slice_any(self, xs: &mut [f32]) {
        // One loop per common kind, so each is a tight (vectorizable) loop
        // rather than a match per element.
        // A `for` loop, not `for_each`: LLVM may leave `for_each` out of
        // line (GELU's body is large), and out of line it is compiled
        // without the caller's target features, on 4 lanes (GELU was a
        // fifth of ViT-Tiny's time).
        macro_rules! each {
            ($f:expr) => {
                for x in xs.iter_mut() {
                    *x = $f(*x);
                }
            };
        }
        match self {
            Activation::None => {}
            Activation::Relu => each!(|x: f32| x.max(0.0)),
            // The parameters bound outside the loop: `self.apply` matches
            // per element, which kept these loops scalar (ReLU6 after a
            // depthwise convolution was a sixth of MobileNet v2).
            Activation::Clip { min, max } => each!(|x: f32| {
                let v = if x < min { min } else { x };
                if v > max {
                    max
                } else {
                    v
                }
            }),
            Activation::LeakyRelu { alpha } => each!(|x: f32| if x < 0.0 { x * alpha } else { x }),
            Activation::HardSigmoid { alpha, beta } => each!(|x: f32| (alpha * x + beta).clamp(0.0, 1.0)),
            Activation::HardSwish => each!(|x: f32| x * (x / 6.0 + 0.5).clamp(0.0, 1.0)),
            Activation::Sigmoid => each!(sigmoid),
            Activation::Silu => each!(|x: f32| x * sigmoid(x)),
            Activation::Tanh => each!(tanh),
            Activation::Gelu => each!(gelu),
            Activation::Erf => each!(erf),
            Activation::Exp => each!(exp),
            _ => each!(|x| self.apply(x)),
        }
    }

    pub fn is_none(self) -> bool {
        matches!(self, Activation::None)
    }
}

/// `ln(1 + e^x)` without overflow for large x.
#[inline(always)]
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

// The transcendental activations below are plain arithmetic on
// `exp_nonpositive` (Cephes' expf polynomial), so that the loops of
// `apply_slice` vectorize: `f32::exp` and libm's `erff` are calls per
// value, and SiLU through them was a third of EfficientNet-B0's time. Each
// stays within a few units in the last place of the libm value (the tests
// at the end hold them to it), NaN gives NaN, and ±inf their limits.

use super::softmax::exp_nonpositive;

/// `1 / (1 + e^−x)` from `e^−|x|`, which never overflows.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    let e = exp_nonpositive(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 {
        r
    } else {
        e * r
    }
}

/// `e^x` over the whole float range. Above 0, where the polynomial's range
/// reduction needs a non-positive argument: `e^x = (e^(x/2 − 64·ln 2) ·
/// 2^64)²`, the argument ≤ 0 up to 88.72, where `e^x` overflows (and this
/// gives `(2^64)² = inf`).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const TWO_64: f32 = 18_446_744_073_709_551_616.0;
    const LN_2_64: f32 = 44.361_42;
    let h = exp_nonpositive(0.5 * x - LN_2_64) * TWO_64;
    if x <= 0.0 || x.is_nan() {
        exp_nonpositive(x)
    } else {
        h * h
    }
}

/// `tanh(x) = sign(x) · (1 − e^−2|x|) / (1 + e^−2|x|)`, with the odd Taylor
/// polynomial near 0 where the difference would cancel.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let e = exp_nonpositive(-2.0 * a);
    let big = (1.0 - e) / (1.0 + e);
    let x2 = x * x;
    let small = a * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
    let t = if a < 0.0625 { small } else { big };
    if x.is_nan() {
        x
    } else {
        t.copysign(x)
    }
}

/// `erfc(z)` for `z ≥ 0`, within about 1.2e-7 relative everywhere
/// (Numerical Recipes' `erfcc`: Chebyshev fit in `t = 1/(1 + z/2)`; the
/// coefficients as published, rounded to f32 by the compiler).
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn erfc_nonnegative(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * exp_nonpositive(-z * z + p)
}

/// `2/√π · (x − x³/3 + x⁵/10 − x⁷/42 + x⁹/216 − x¹¹/1320)`: erf's Taylor
/// series, accurate below |x| = 0.5.
#[inline(always)]
fn erf_series(x: f32) -> f32 {
    let x2 = x * x;
    std::f32::consts::FRAC_2_SQRT_PI
        * x
        * (1.0 + x2 * (-1.0 / 3.0 + x2 * (1.0 / 10.0 + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0 + x2 * (-1.0 / 1320.0))))))
}

/// `erf(x)`: the Taylor series below |x| = 0.5 (relative accuracy near 0),
/// `1 − erfc(|x|)` above.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let series = erf_series(x);
    let tail = (1.0 - erfc_nonnegative(a)).copysign(x);
    if a < 0.5 {
        series
    } else if x.is_nan() {
        x
    } else {
        tail
    }
}

/// `0.5 · x · (1 + erf(x/√2))`, with `1 + erf` as `erfc` of the negative
/// side so that the left tail keeps its relative accuracy.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    // Both sides computed, then chosen: selects, not branches, so the
    // loop vectorizes.
    let small = 1.0 + erf_series(z);
    let c = erfc_nonnegative(a);
    let large = if z > 0.0 { 2.0 - c } else { c };
    let one_plus = if a < 0.5 { small } else { large };
    0.5 * x * one_plus
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest error, relative to `max(|want|, floor)`, over a sweep.
    fn worst(f: impl Fn(f32) -> f32, want: impl Fn(f64) -> f64, lo: f32, hi: f32, floor: f64) -> (f64, f32) {
        let mut worst = (0.0f64, 0.0f32);
        let n = 200_000;
        for i in 0..=n {
            let x = lo + (hi - lo) * i as f32 / n as f32;
            let w = want(x as f64);
            let e = (f(x) as f64 - w).abs() / w.abs().max(floor);
            if e > worst.0 {
                worst = (e, x);
            }
        }
        worst
    }

    #[test]
    fn fast_transcendentals_match_libm() {
        let erf64 = |x: f64| libm::erf(x);
        for (name, err, bound) in [
            ("sigmoid", worst(sigmoid, |x| 1.0 / (1.0 + (-x).exp()), -90.0, 90.0, 1e-20), 1e-6),
            ("silu", worst(|x| x * sigmoid(x), |x| x / (1.0 + (-x).exp()), -90.0, 90.0, 1e-20), 1e-6),
            ("tanh", worst(tanh, f64::tanh, -20.0, 20.0, 1e-20), 1e-6),
            ("tanh near 0", worst(tanh, f64::tanh, -0.1, 0.1, 1e-20), 1e-6),
            ("exp", worst(exp, f64::exp, -87.0, 88.5, 1e-20), 1e-6),
            ("erf", worst(erf, erf64, -6.0, 6.0, 1e-20), 1e-6),
            ("erf near 0", worst(erf, erf64, -1e-3, 1e-3, 1e-20), 1e-6),
            ("gelu", worst(gelu, |x| 0.5 * x * libm::erfc(-x / 2f64.sqrt()), -12.0, 12.0, 1e-20), 1e-5),
        ] {
            assert!(err.0 < bound, "{name}: relative error {:.2e} at {} (bound {bound:e})", err.0, err.1);
        }
        for f in [sigmoid, tanh, exp, erf, gelu] {
            assert!(f(f32::NAN).is_nan());
        }
        assert_eq!((sigmoid(f32::INFINITY), sigmoid(f32::NEG_INFINITY)), (1.0, 0.0));
        assert_eq!((tanh(f32::INFINITY), tanh(f32::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!((erf(f32::INFINITY), erf(f32::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!((exp(f32::INFINITY), exp(f32::NEG_INFINITY), exp(100.0)), (f32::INFINITY, 0.0, f32::INFINITY));
        assert_eq!(gelu(f32::INFINITY), f32::INFINITY);
    }

    /// The slice path (vectorized, on every width this CPU has) gives the
    /// scalar path's values bit for bit (a NaN may differ in its sign).
    #[test]
    fn slices_equal_elements() {
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.037).chain([f32::NAN, 0.0, -0.0, 1e-8, -1e-8]).collect();
        for act in [
            Activation::Sigmoid,
            Activation::Silu,
            Activation::Tanh,
            Activation::Gelu,
            Activation::GeluTanh,
            Activation::Erf,
            Activation::Exp,
        ] {
            let mut ys = xs.clone();
            act.apply_slice(&mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                // NaN is NaN (its sign bit is the instructions' choice).
                let want = act.apply(x);
                assert!(want.to_bits() == y.to_bits() || (want.is_nan() && y.is_nan()), "{act:?} at {x}: {want} vs {y}");
            }
        }
    }
}
