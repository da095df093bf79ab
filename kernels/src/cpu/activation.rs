//! Activation functions that kernels apply to their results in place.

/// An elementwise activation, applied by the producing kernel (fused) or as a
/// step of its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    None,
    Relu,
    LeakyRelu { alpha: f32 },
    Clip { min: f32, max: f32 },
    Sigmoid,
    Tanh,
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
            Activation::Clip { min, max } => {
                if x < min {
                    min
                } else if x > max {
                    max
                } else {
                    x
                }
            }
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
        }
    }

    /// Applies the activation to every element of `xs`.
    pub fn apply_slice(self, xs: &mut [f32]) {
        match self {
            Activation::None => {}
            Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
            _ => xs.iter_mut().for_each(|x| *x = self.apply(*x)),
        }
    }

    pub fn is_none(self) -> bool {
        matches!(self, Activation::None)
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
