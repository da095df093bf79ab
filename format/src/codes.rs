//! The code tables: every enumeration a file stores, each listed once with
//! its on-disk code and its name. The writer, the reader, the name lookups
//! and the CUDA lowering (whose kernels take the same codes) all read these
//! tables; nothing else numbers an op, an activation or a binary op.
//!
//! Codes are on disk: never reuse or renumber one. A new value takes the
//! next free code and the format minor version that introduces it.

use crate::op::Op;
use jetrt_kernels::cpu::elementwise::BinaryOp;
use jetrt_kernels::cpu::reduce::ReduceOp;
use jetrt_kernels::cpu::resize::{CoordTransform, NearestRound, ResizeMode};
use jetrt_kernels::cpu::strided::PadMode;
use jetrt_kernels::cpu::Activation;

/// The op table, one row per op kind: its code, the inputs it takes
/// (least, most) and the format minor version (of 1.x) that introduced it.
macro_rules! op_kinds {
    ($($kind:ident = $code:literal, inputs $lo:literal ..= $hi:expr, minor $minor:literal;)*) => {
        /// What an [`Op`] is, without its parameters: the code a step
        /// stores on disk.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum OpKind {
            $($kind = $code,)*
        }

        impl OpKind {
            /// Every kind, in code order of the table.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$kind,)*];

            /// The kind of code `code`, if there is one.
            pub fn from_code(code: u32) -> Option<OpKind> {
                match code {
                    $($code => Some(OpKind::$kind),)*
                    _ => None,
                }
            }

            /// The name of the stored op (`Conv2d`); [`Op::name`] adds what
            /// the parameters say (`Conv2dAct`, `ReduceMean`).
            pub fn name(self) -> &'static str {
                match self {
                    $(OpKind::$kind => stringify!($kind),)*
                }
            }

            /// How many inputs a step of this kind takes: (least, most).
            pub fn inputs(self) -> (usize, usize) {
                match self {
                    $(OpKind::$kind => ($lo, $hi),)*
                }
            }

            /// The format minor version that introduced this kind.
            pub fn since_minor(self) -> u16 {
                match self {
                    $(OpKind::$kind => $minor,)*
                }
            }
        }
    };
}

op_kinds! {
    Conv2d = 1, inputs 2..=3, minor 0;
    Gemm = 2, inputs 2..=3, minor 0;
    MaxPool2d = 3, inputs 1..=1, minor 0;
    AvgPool2d = 4, inputs 1..=1, minor 0;
    GlobalAvgPool = 5, inputs 1..=1, minor 0;
    Activation = 6, inputs 1..=1, minor 0;
    Binary = 7, inputs 2..=2, minor 0;
    ChannelAffine = 8, inputs 3..=3, minor 0;
    Softmax = 9, inputs 1..=1, minor 0;
    Concat = 10, inputs 1..=usize::MAX, minor 0;
    Copy = 11, inputs 1..=1, minor 0;
    Transpose = 12, inputs 1..=1, minor 0;
    Lrn = 13, inputs 1..=1, minor 0;
    Reduce = 14, inputs 1..=1, minor 1;
    Slice = 15, inputs 1..=1, minor 1;
    Broadcast = 16, inputs 1..=1, minor 1;
    Gather = 17, inputs 2..=2, minor 1;
    Where = 18, inputs 3..=3, minor 1;
    LayerNorm = 19, inputs 2..=3, minor 1;
    MatMul = 20, inputs 2..=2, minor 1;
    Cast = 21, inputs 1..=1, minor 1;
    ConvTranspose2d = 22, inputs 2..=3, minor 1;
    Resize = 23, inputs 1..=1, minor 1;
    Pad = 24, inputs 1..=1, minor 1;
    Quantize = 25, inputs 1..=1, minor 2;
    Dequantize = 26, inputs 1..=1, minor 2;
    QConv2d = 27, inputs 4..=5, minor 2;
    QGemm = 28, inputs 4..=4, minor 2;
    Q4Gemm = 29, inputs 3..=4, minor 2;
    Q4Conv2d = 30, inputs 3..=4, minor 2;
    SpGemm = 31, inputs 4..=5, minor 2;
    SpConv2d = 32, inputs 4..=5, minor 2;
    QuantizeChannels = 33, inputs 3..=3, minor 2;
}

impl OpKind {
    /// The code stored on disk.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// The activation table: code, parameters (at most two, stored as f32 in
/// this order), name and the format minor version that introduced it.
macro_rules! activations {
    ($($v:ident $({ $($f:ident),+ })? = $code:literal, $name:literal, minor $minor:literal;)*) => {
        /// `(code, [p0, p1])` of an activation, as a file stores it and
        /// `jrt_act` in kernels/cuda/prelude.cuh takes it.
        pub fn activation_code(a: Activation) -> (u32, [f32; 2]) {
            match a {
                $(Activation::$v $({ $($f),+ })? => {
                    #[allow(unused_mut)]
                    let mut p = [0.0f32; 2];
                    $(let mut _i = 0; $(p[_i] = $f; _i += 1;)+)?
                    ($code, p)
                })*
            }
        }

        /// The activation of `code` with parameters `p`, if the code is known.
        pub fn activation_from_code(code: u32, p: [f32; 2]) -> Option<Activation> {
            #[allow(unused_variables, unused_mut)]
            let mut it = p.into_iter();
            match code {
                $($code => Some(Activation::$v $({ $($f: it.next().unwrap_or(0.0)),+ })?),)*
                _ => None,
            }
        }

        /// The ONNX-style name of an activation (`Identity` for none).
        pub fn activation_name(a: Activation) -> &'static str {
            match a {
                $(Activation::$v { .. } => $name,)*
            }
        }

        /// The format minor version that introduced an activation.
        pub fn activation_since_minor(a: Activation) -> u16 {
            match a {
                $(Activation::$v { .. } => $minor,)*
            }
        }
    };
}

activations! {
    None = 0, "Identity", minor 0;
    Relu = 1, "Relu", minor 0;
    LeakyRelu { alpha } = 2, "LeakyRelu", minor 0;
    Clip { min, max } = 3, "Clip", minor 0;
    Sigmoid = 4, "Sigmoid", minor 0;
    Tanh = 5, "Tanh", minor 0;
    HardSigmoid { alpha, beta } = 6, "HardSigmoid", minor 1;
    HardSwish = 7, "HardSwish", minor 1;
    Silu = 8, "Silu", minor 1;
    Gelu = 9, "Gelu", minor 1;
    GeluTanh = 10, "GeluTanh", minor 1;
    Erf = 11, "Erf", minor 1;
    Sqrt = 12, "Sqrt", minor 1;
    Exp = 13, "Exp", minor 1;
    Log = 14, "Log", minor 1;
    Abs = 15, "Abs", minor 1;
    Neg = 16, "Neg", minor 1;
    Reciprocal = 17, "Reciprocal", minor 1;
    Floor = 18, "Floor", minor 1;
    Ceil = 19, "Ceil", minor 1;
    Round = 20, "Round", minor 1;
    Sign = 21, "Sign", minor 1;
    Softplus = 22, "Softplus", minor 1;
    Softsign = 23, "Softsign", minor 1;
    Elu { alpha } = 24, "Elu", minor 1;
    Selu { alpha, gamma } = 25, "Selu", minor 1;
    Celu { alpha } = 26, "Celu", minor 1;
    ThresholdedRelu { alpha } = 27, "ThresholdedRelu", minor 1;
    Mish = 28, "Mish", minor 1;
    Sin = 29, "Sin", minor 1;
    Cos = 30, "Cos", minor 1;
}

/// One row of a table of a fieldless enumeration: the value, its code on
/// disk, its name and the format minor version that introduced it.
pub type Row<T> = (T, u32, &'static str, u16);

/// A fieldless enumeration stored by code.
#[derive(Debug)]
pub struct Codes<T: 'static>(pub &'static [Row<T>]);

impl<T: Copy + PartialEq> Codes<T> {
    fn row(&self, v: T) -> Option<&Row<T>> {
        self.0.iter().find(|r| r.0 == v)
    }

    /// The code of `v` (every value has a row: the tables' tests check it).
    pub fn code(&self, v: T) -> u32 {
        self.row(v).map_or(u32::MAX, |r| r.1)
    }

    /// The value of `code`, if the table has it.
    pub fn value(&self, code: u32) -> Option<T> {
        self.0.iter().find(|r| r.1 == code).map(|r| r.0)
    }

    pub fn name(&self, v: T) -> &'static str {
        self.row(v).map_or("?", |r| r.2)
    }

    pub fn since_minor(&self, v: T) -> u16 {
        self.row(v).map_or(0, |r| r.3)
    }
}

/// Binary ops (`Op::Binary`); `jrt_binary` in kernels/cuda/elementwise.cu
/// takes the same codes.
pub const BINARY_OPS: Codes<BinaryOp> = Codes(&[
    (BinaryOp::Add, 1, "Add", 0),
    (BinaryOp::Sub, 2, "Sub", 0),
    (BinaryOp::Mul, 3, "Mul", 0),
    (BinaryOp::Div, 4, "Div", 0),
    (BinaryOp::Max, 5, "Max", 0),
    (BinaryOp::Min, 6, "Min", 0),
    (BinaryOp::Pow, 7, "Pow", 0),
    (BinaryOp::PRelu, 8, "PRelu", 1),
    (BinaryOp::Mod, 9, "Mod", 1),
    (BinaryOp::Fmod, 10, "Mod", 1),
]);

/// Reductions (`Op::Reduce`), named as the ONNX ops they come from.
pub const REDUCE_OPS: Codes<ReduceOp> = Codes(&[
    (ReduceOp::Sum, 1, "ReduceSum", 1),
    (ReduceOp::Mean, 2, "ReduceMean", 1),
    (ReduceOp::Max, 3, "ReduceMax", 1),
    (ReduceOp::Min, 4, "ReduceMin", 1),
    (ReduceOp::Prod, 5, "ReduceProd", 1),
    (ReduceOp::L1, 6, "ReduceL1", 1),
    (ReduceOp::L2, 7, "ReduceL2", 1),
    (ReduceOp::SumSquare, 8, "ReduceSumSquare", 1),
    (ReduceOp::LogSum, 9, "ReduceLogSum", 1),
    (ReduceOp::LogSumExp, 10, "ReduceLogSumExp", 1),
]);

/// Resize interpolation modes.
pub const RESIZE_MODES: Codes<ResizeMode> =
    Codes(&[(ResizeMode::Nearest, 0, "nearest", 1), (ResizeMode::Linear, 1, "linear", 1), (ResizeMode::Cubic, 2, "cubic", 1)]);

/// Resize coordinate transforms (ONNX `coordinate_transformation_mode`).
pub const COORD_TRANSFORMS: Codes<CoordTransform> = Codes(&[
    (CoordTransform::HalfPixel, 0, "half_pixel", 1),
    (CoordTransform::HalfPixelSymmetric, 1, "half_pixel_symmetric", 1),
    (CoordTransform::PytorchHalfPixel, 2, "pytorch_half_pixel", 1),
    (CoordTransform::AlignCorners, 3, "align_corners", 1),
    (CoordTransform::Asymmetric, 4, "asymmetric", 1),
    (CoordTransform::TfCropAndResize, 5, "tf_crop_and_resize", 1),
]);

/// Resize nearest rounding (ONNX `nearest_mode`).
pub const NEAREST_MODES: Codes<NearestRound> = Codes(&[
    (NearestRound::RoundPreferFloor, 0, "round_prefer_floor", 1),
    (NearestRound::RoundPreferCeil, 1, "round_prefer_ceil", 1),
    (NearestRound::Floor, 2, "floor", 1),
    (NearestRound::Ceil, 3, "ceil", 1),
]);

/// Pad modes.
pub const PAD_MODES: Codes<PadMode> = Codes(&[
    (PadMode::Constant, 0, "constant", 1),
    (PadMode::Reflect, 1, "reflect", 1),
    (PadMode::Edge, 2, "edge", 1),
    (PadMode::Wrap, 3, "wrap", 1),
]);

/// The format minor version a step with this op needs: the newest of its
/// kind, its activation and its binary op.
pub(crate) fn op_since_minor(op: &Op) -> u16 {
    let act = op.activation().map_or(0, activation_since_minor);
    let bin = match op {
        Op::Binary { op, .. } => BINARY_OPS.since_minor(*op),
        _ => 0,
    };
    op.kind().since_minor().max(act).max(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &k in OpKind::ALL {
            assert!(seen.insert(k.code()), "code {} twice", k.code());
            assert_eq!(OpKind::from_code(k.code()), Some(k));
            let (lo, hi) = k.inputs();
            assert!(lo >= 1 && lo <= hi, "{k:?}");
        }
        assert_eq!(OpKind::from_code(0), None);
        assert_eq!(OpKind::from_code(34), None);
    }

    #[test]
    fn every_activation_round_trips_through_its_code() {
        let all = [
            Activation::None,
            Activation::Relu,
            Activation::LeakyRelu { alpha: 0.1 },
            Activation::Clip { min: -1.0, max: 6.0 },
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
            Activation::HardSwish,
            Activation::Silu,
            Activation::Gelu,
            Activation::GeluTanh,
            Activation::Erf,
            Activation::Sqrt,
            Activation::Exp,
            Activation::Log,
            Activation::Abs,
            Activation::Neg,
            Activation::Reciprocal,
            Activation::Floor,
            Activation::Ceil,
            Activation::Round,
            Activation::Sign,
            Activation::Softplus,
            Activation::Softsign,
            Activation::Elu { alpha: 1.5 },
            Activation::Selu { alpha: 1.6, gamma: 1.05 },
            Activation::Celu { alpha: 0.7 },
            Activation::ThresholdedRelu { alpha: 2.0 },
            Activation::Mish,
            Activation::Sin,
            Activation::Cos,
        ];
        let mut codes = std::collections::HashSet::new();
        for a in all {
            let (code, p) = activation_code(a);
            assert!(codes.insert(code), "{a:?}");
            assert_eq!(activation_from_code(code, p), Some(a));
        }
        assert_eq!(codes.len(), 31);
        assert_eq!(activation_code(Activation::Clip { min: -1.0, max: 6.0 }), (3, [-1.0, 6.0]));
        assert_eq!(activation_name(Activation::None), "Identity");
        assert_eq!(activation_from_code(31, [0.0; 2]), None);
    }

    #[test]
    fn value_tables_are_complete_and_codes_unique() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(t: &Codes<T>, all: &[T]) {
            assert_eq!(t.0.len(), all.len());
            for &v in all {
                assert_eq!(t.value(t.code(v)), Some(v), "{v:?}");
            }
            let mut codes: Vec<u32> = t.0.iter().map(|r| r.1).collect();
            codes.dedup();
            assert_eq!(codes.len(), all.len());
        }
        use BinaryOp as B;
        check(&BINARY_OPS, &[B::Add, B::Sub, B::Mul, B::Div, B::Max, B::Min, B::Pow, B::PRelu, B::Mod, B::Fmod]);
        use ReduceOp as R;
        check(&REDUCE_OPS, &[R::Sum, R::Mean, R::Max, R::Min, R::Prod, R::L1, R::L2, R::SumSquare, R::LogSum, R::LogSumExp]);
        check(&RESIZE_MODES, &[ResizeMode::Nearest, ResizeMode::Linear, ResizeMode::Cubic]);
        use CoordTransform as C;
        check(
            &COORD_TRANSFORMS,
            &[C::HalfPixel, C::HalfPixelSymmetric, C::PytorchHalfPixel, C::AlignCorners, C::Asymmetric, C::TfCropAndResize],
        );
        use NearestRound as N;
        check(&NEAREST_MODES, &[N::RoundPreferFloor, N::RoundPreferCeil, N::Floor, N::Ceil]);
        check(&PAD_MODES, &[PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap]);
    }
}
