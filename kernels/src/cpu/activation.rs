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
            Activation::Tanh => x.tanh(),
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Silu => x * sigmoid(x),
            Activation::Gelu => 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2)),
            Activation::GeluTanh => {
                let c = (2.0 / std::f32::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            Activation::Erf => libm::erff(x),
            Activation::Sqrt => x.sqrt(),
            Activation::Exp => x.exp(),
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

    /// Applies the activation to every element of `xs`.
    pub fn apply_slice(self, xs: &mut [f32]) {
        // One loop per common kind, so each is a tight (vectorizable) loop
        // rather than a match per element.
        macro_rules! each {
            ($f:expr) => {
                xs.iter_mut().for_each(|x| *x = $f(*x))
            };
        }
        match self {
            Activation::None => {}
            Activation::Relu => each!(|x: f32| x.max(0.0)),
            Activation::Clip { .. } | Activation::LeakyRelu { .. } | Activation::HardSigmoid { .. } => each!(|x| self.apply(x)),
            Activation::HardSwish => each!(|x: f32| x * (x / 6.0 + 0.5).clamp(0.0, 1.0)),
            Activation::Sigmoid => each!(sigmoid),
            Activation::Silu => each!(|x: f32| x * sigmoid(x)),
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

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
