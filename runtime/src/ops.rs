//! The operations a plan is made of, with their parameters and the shape
//! rules both the converter (to infer shapes) and the reader (to validate a
//! file before anything runs) apply.

use crate::format::{DType, Shape, MAX_RANK};
use jetrt_kernels::cpu::conv::{out_len, Conv2dShape};
pub use jetrt_kernels::cpu::reference::resize::{CoordTransform, NearestRound, ResizeMode, ResizeParams};
use jetrt_kernels::cpu::reference::ConvTranspose2dShape;
use jetrt_kernels::cpu::reference::Pool2dShape;
pub use jetrt_kernels::cpu::reference::{BinaryOp, LrnParams, PadMode, ReduceOp};
pub use jetrt_kernels::cpu::Activation;
use jetrt_kernels::cpu::{gemm, qgemm};

/// Largest kernel size, stride, dilation or padding a file may declare; far
/// beyond any real model, small enough that no arithmetic on it overflows.
pub const MAX_WINDOW: usize = 1 << 16;

/// A 2-D convolution. Inputs: X `[N, C, H, W]`, W `[M, C/groups, kh, kw]`,
/// optional bias `[M]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2d {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub groups: usize,
    pub act: Activation,
}

/// `Y = act(alpha · op(A) · op(B) + beta · C)`. Inputs: A, B, optional C
/// (broadcast to `[M, N]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub beta: f32,
    pub act: Activation,
}

/// A 2-D transposed convolution. Inputs: X `[N, C, H, W]`, W `[C, M/groups,
/// kh, kw]`, optional bias `[M]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvTranspose2d {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub output_padding: [usize; 2],
    pub groups: usize,
}

/// Resize of the last two axes to `out` (`[height, width]`); `scales` and
/// `roi` (`[top, left, bottom, right]`, normalized) feed the coordinate
/// transform as ONNX defines it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resize {
    pub params: ResizeParams,
    pub scales: [f32; 2],
    pub roi: [f32; 4],
    pub out: [usize; 2],
}

/// A 2-D pooling window over `[N, C, H, W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub ceil_mode: bool,
    /// Average pooling only: count padding positions in the divisor.
    pub count_include_pad: bool,
}

/// An axis permutation of at most [`MAX_RANK`] axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    rank: u8,
    axes: [u8; MAX_RANK],
}

impl Perm {
    /// `None` unless `axes` is a permutation of `0..axes.len()` with at most
    /// [`MAX_RANK`] axes.
    pub fn new(axes: &[usize]) -> Option<Self> {
        if axes.len() > MAX_RANK {
            return None;
        }
        let mut seen = [false; MAX_RANK];
        let mut out = [0u8; MAX_RANK];
        for (i, &a) in axes.iter().enumerate() {
            if a >= axes.len() || seen[a] {
                return None;
            }
            seen[a] = true;
            out[i] = a as u8;
        }
        Some(Perm { rank: axes.len() as u8, axes: out })
    }

    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// Output axis `i` is input axis `axes()[i]`.
    pub fn axes(&self) -> [usize; MAX_RANK] {
        let mut out = [0usize; MAX_RANK];
        for (o, &a) in out.iter_mut().zip(&self.axes[..self.rank as usize]) {
            *o = a as usize;
        }
        out
    }
}

/// A strided window of a tensor: per axis a start, a step (negative walks
/// backwards) and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceParams {
    pub rank: usize,
    pub start: [usize; MAX_RANK],
    pub step: [i64; MAX_RANK],
    pub len: [usize; MAX_RANK],
}

/// One operation of a plan. Op codes are on disk (see [`Op::code`]): never
/// reuse or renumber them.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Conv2d(Conv2d),
    Gemm(Gemm),
    MaxPool2d(Pool2d),
    AvgPool2d(Pool2d),
    /// Mean over every axis after the first two.
    GlobalAvgPool,
    /// An activation as a step of its own.
    Activation(Activation),
    /// Elementwise with numpy broadcasting; the activation is fused.
    Binary {
        op: BinaryOp,
        act: Activation,
    },
    /// `act(x · scale[c] + shift[c])` along axis 1 (a BatchNormalization, or
    /// a per-channel Mul/Add). Inputs: X, scale `[C]` or `[1]` (one for
    /// all channels), shift `[C]` or `[1]`.
    ChannelAffine {
        act: Activation,
    },
    /// Along one axis; with `coerce_2d` (ONNX opset < 13) over all axes from
    /// `axis` on, as one.
    Softmax {
        axis: usize,
        coerce_2d: bool,
    },
    Concat {
        axis: usize,
    },
    /// The same bytes under another shape (Reshape, Flatten, Squeeze, ...).
    Copy,
    Transpose {
        perm: Perm,
    },
    Lrn(LrnParams),
    /// Over the axes whose bit is set; kept as length 1 with `keepdims`.
    Reduce {
        op: ReduceOp,
        axes: u32,
        keepdims: bool,
    },
    /// Any element type.
    Slice(SliceParams),
    /// Numpy broadcasting to `shape` (ONNX Expand); any element type.
    Broadcast {
        shape: Shape,
    },
    /// Inputs: data (any element type), indices (int64 or int32).
    Gather {
        axis: usize,
    },
    /// Inputs: condition (bool), X, Y (same element type); broadcast.
    Where,
    /// Normalizes over the axes from `axis` on. Inputs: X, scale, optional
    /// bias (each `[prod(dims[axis..])]` or `[1]`).
    LayerNorm {
        axis: usize,
        epsilon: f32,
    },
    /// Batched matrix product `[..., M, K] × [..., K, N]`, batch axes
    /// broadcast; the activation is fused.
    MatMul {
        act: Activation,
    },
    /// Element type conversion (ONNX Cast rules).
    Cast {
        to: DType,
    },
    ConvTranspose2d(ConvTranspose2d),
    Resize(Resize),
    /// Any element type; `value` (converted to it) fills in constant mode.
    Pad(PadParams),
    /// float32 → int8: `q = clamp(round_half_even(x / scale) + zero_point)`.
    Quantize {
        scale: f32,
        zero_point: i8,
    },
    /// float32 → int8 per channel (axis 1): `q = clamp(round_half_even((x ·
    /// mul[c] + add[c]) / scale) + zero_point)`. Inputs: X float32 `[N, C,
    /// ...]`, mul float16 `[C]`, add float16 `[C]`.
    QuantizeChannels {
        scale: f32,
        zero_point: i8,
    },
    /// int8 → float32: `x = (q − zero_point) · scale`.
    Dequantize {
        scale: f32,
        zero_point: i8,
    },
    /// Int8 convolution. Inputs: X int8 `[N, C, H, W]` (zero point `x_zp`,
    /// the padding value), W int8 `[M, Kp]` (K = C/groups·kh·kw padded with
    /// zeros to a multiple of 4, except for depthwise convolutions), bias
    /// float32 `[M]` (holding `−x_zp · deq · Σ_k W[m][k]`), deq float32
    /// `[M]`, and optionally the int8 value padding reads in each input
    /// channel `[C]` (else `x_zp`). Output `act(acc · deq + bias)`, as
    /// float32 or requantized to int8.
    QConv2d {
        conv: Conv2d,
        x_zp: i8,
        out: QOutParams,
    },
    /// Int8 matrix product with constant weights. Inputs: A int8 `[..., K]`,
    /// W int8 `[N, Kp]`, bias float32 `[N]`, deq float32 `[N]`; output
    /// `[..., N]` as for [`Op::QConv2d`].
    QGemm {
        act: Activation,
        out: QOutParams,
    },
    /// Matrix product with int4 weights. Inputs: A float32 `[..., K]`, W
    /// uint8 `[N, ceil(K/2)]` (two values per byte), scales float16 `[N,
    /// ceil(K/group)]`, optional bias float32 `[N]`; output float32
    /// `[..., N]`.
    Q4Gemm {
        act: Activation,
        group: usize,
    },
    /// Convolution with int4 weights (one group of channels). Inputs: X
    /// float32, W uint8 `[M, ceil(K/2)]`, scales float16 `[M,
    /// ceil(K/group)]`, optional bias float32 `[M]`.
    Q4Conv2d {
        conv: Conv2d,
        group: usize,
    },
    /// Matrix product with sparse weights (what pruning leaves). Inputs: A
    /// float32 `[..., K]`, mask uint8 `[N, ceil(K/8)]` (bit set where the
    /// weight is not zero), values float32 `[nnz]` (row by row), row
    /// starts uint32 `[N + 1]`, optional bias float32 `[N]`.
    SpGemm {
        act: Activation,
    },
    /// Convolution with sparse weights (one group of channels): inputs X
    /// float32 and then as [`Op::SpGemm`] with M rows of K = C·kh·kw.
    SpConv2d {
        conv: Conv2d,
    },
}

/// How a quantized op stores its output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QOutParams {
    F32,
    I8 { scale: f32, zero_point: i8 },
}

/// K of int8 weight rows is padded to a multiple of this.
pub use jetrt_kernels::cpu::qgemm::K_ALIGN as Q8_K_ALIGN;

/// Padding before and after each axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PadParams {
    pub mode: PadMode,
    pub rank: usize,
    pub begin: [usize; MAX_RANK],
    pub end: [usize; MAX_RANK],
    pub value: f32,
}

/// Element types [`Op::Cast`] converts between at run time.
pub const CAST_TYPES: [DType; 7] = [DType::F32, DType::I64, DType::I32, DType::I8, DType::U8, DType::Bool, DType::F64];

/// A tensor as an op sees it when shapes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub dtype: DType,
    pub shape: Shape,
}

fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

impl Op {
    /// The op code stored on disk.
    pub fn code(&self) -> u32 {
        match self {
            Op::Conv2d(_) => 1,
            Op::Gemm(_) => 2,
            Op::MaxPool2d(_) => 3,
            Op::AvgPool2d(_) => 4,
            Op::GlobalAvgPool => 5,
            Op::Activation(_) => 6,
            Op::Binary { .. } => 7,
            Op::ChannelAffine { .. } => 8,
            Op::Softmax { .. } => 9,
            Op::Concat { .. } => 10,
            Op::Copy => 11,
            Op::Transpose { .. } => 12,
            Op::Lrn(_) => 13,
            Op::Reduce { .. } => 14,
            Op::Slice(_) => 15,
            Op::Broadcast { .. } => 16,
            Op::Gather { .. } => 17,
            Op::Where => 18,
            Op::LayerNorm { .. } => 19,
            Op::MatMul { .. } => 20,
            Op::Cast { .. } => 21,
            Op::ConvTranspose2d(_) => 22,
            Op::Resize(_) => 23,
            Op::Pad(_) => 24,
            Op::Quantize { .. } => 25,
            Op::QuantizeChannels { .. } => 33,
            Op::Dequantize { .. } => 26,
            Op::QConv2d { .. } => 27,
            Op::QGemm { .. } => 28,
            Op::Q4Gemm { .. } => 29,
            Op::Q4Conv2d { .. } => 30,
            Op::SpGemm { .. } => 31,
            Op::SpConv2d { .. } => 32,
        }
    }

    /// The format minor version that introduced this op with these
    /// parameters (1.1: op codes 14–24, activation codes 6–30, binary op
    /// codes 8–10; 1.2: op codes 25–30, quantized execution); a file using
    /// it needs a reader at least that new.
    pub fn since_minor(&self) -> u16 {
        if self.code() >= 25 {
            return 2;
        }
        let act_new = |a: &Activation| {
            !matches!(
                a,
                Activation::None
                    | Activation::Relu
                    | Activation::LeakyRelu { .. }
                    | Activation::Clip { .. }
                    | Activation::Sigmoid
                    | Activation::Tanh
            )
        };
        let new = match self {
            _ if self.code() >= 14 => true,
            Op::Conv2d(c) => act_new(&c.act),
            Op::Gemm(g) => act_new(&g.act),
            Op::Activation(a) | Op::ChannelAffine { act: a } => act_new(a),
            Op::Binary { op, act } => act_new(act) || matches!(op, BinaryOp::PRelu | BinaryOp::Mod | BinaryOp::Fmod),
            _ => false,
        };
        u16::from(new)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d(c) if !c.act.is_none() => "Conv2dAct",
            Op::Conv2d(_) => "Conv2d",
            Op::Gemm(g) if !g.act.is_none() => "GemmAct",
            Op::Gemm(_) => "Gemm",
            Op::MaxPool2d(_) => "MaxPool2d",
            Op::AvgPool2d(_) => "AvgPool2d",
            Op::GlobalAvgPool => "GlobalAvgPool",
            Op::Activation(a) => activation_name(*a),
            Op::Binary { op, act } if !act.is_none() => match op {
                BinaryOp::Add => "AddAct",
                _ => "BinaryAct",
            },
            Op::Binary { op, .. } => match op {
                BinaryOp::Add => "Add",
                BinaryOp::Sub => "Sub",
                BinaryOp::Mul => "Mul",
                BinaryOp::Div => "Div",
                BinaryOp::Max => "Max",
                BinaryOp::Min => "Min",
                BinaryOp::Pow => "Pow",
                BinaryOp::PRelu => "PRelu",
                BinaryOp::Mod | BinaryOp::Fmod => "Mod",
            },
            Op::ChannelAffine { act } if !act.is_none() => "ChannelAffineAct",
            Op::ChannelAffine { .. } => "ChannelAffine",
            Op::Softmax { .. } => "Softmax",
            Op::Concat { .. } => "Concat",
            Op::Copy => "Copy",
            Op::Transpose { .. } => "Transpose",
            Op::Lrn(_) => "Lrn",
            Op::Reduce { op, .. } => match op {
                ReduceOp::Sum => "ReduceSum",
                ReduceOp::Mean => "ReduceMean",
                ReduceOp::Max => "ReduceMax",
                ReduceOp::Min => "ReduceMin",
                ReduceOp::Prod => "ReduceProd",
                ReduceOp::L1 => "ReduceL1",
                ReduceOp::L2 => "ReduceL2",
                ReduceOp::SumSquare => "ReduceSumSquare",
                ReduceOp::LogSum => "ReduceLogSum",
                ReduceOp::LogSumExp => "ReduceLogSumExp",
            },
            Op::Slice(_) => "Slice",
            Op::Broadcast { .. } => "Broadcast",
            Op::Gather { .. } => "Gather",
            Op::Where => "Where",
            Op::LayerNorm { .. } => "LayerNorm",
            Op::MatMul { act } if !act.is_none() => "MatMulAct",
            Op::MatMul { .. } => "MatMul",
            Op::Cast { .. } => "Cast",
            Op::ConvTranspose2d(_) => "ConvTranspose2d",
            Op::Resize(_) => "Resize",
            Op::Pad(_) => "Pad",
            Op::Quantize { .. } => "Quantize",
            Op::QuantizeChannels { .. } => "QuantizeChannels",
            Op::Dequantize { .. } => "Dequantize",
            Op::QConv2d { .. } => "QConv2d",
            Op::QGemm { .. } => "QGemm",
            Op::Q4Gemm { .. } => "Q4Gemm",
            Op::Q4Conv2d { .. } => "Q4Conv2d",
            Op::SpGemm { .. } => "SpGemm",
            Op::SpConv2d { .. } => "SpConv2d",
        }
    }

    /// How many inputs the op takes: (least, most).
    pub fn input_arity(&self) -> (usize, usize) {
        match self {
            Op::Conv2d(_) | Op::Gemm(_) | Op::LayerNorm { .. } | Op::ConvTranspose2d(_) => (2, 3),
            Op::QConv2d { .. } => (4, 5),
            Op::QGemm { .. } => (4, 4),
            Op::Q4Gemm { .. } | Op::Q4Conv2d { .. } => (3, 4),
            Op::SpGemm { .. } | Op::SpConv2d { .. } => (4, 5),
            Op::Binary { .. } | Op::Gather { .. } | Op::MatMul { .. } => (2, 2),
            Op::Where => (3, 3),
            Op::ChannelAffine { .. } | Op::QuantizeChannels { .. } => (3, 3),
            Op::Concat { .. } => (1, usize::MAX),
            _ => (1, 1),
        }
    }

    /// How many outputs the op produces.
    pub fn output_arity(&self) -> usize {
        1
    }

    /// Checks the op's own parameters (those that do not depend on shapes).
    pub fn check_params(&self) -> Result<(), String> {
        let window = |what: &str, v: &[usize], min: usize| -> Result<(), String> {
            match v.iter().find(|&&x| x < min || x > MAX_WINDOW) {
                Some(x) => err(format!("{what} value {x} outside {min}..={MAX_WINDOW}")),
                None => Ok(()),
            }
        };
        let scale = |s: f32| if s.is_finite() && s > 0.0 { Ok(()) } else { err(format!("scale {s} must be finite and positive")) };
        let group = |g: usize| {
            if (2..=MAX_WINDOW).contains(&g) && g.is_multiple_of(2) {
                Ok(())
            } else {
                err(format!("int4 group size {g} must be even and in 2..={MAX_WINDOW}"))
            }
        };
        match self {
            // Its per-channel operands may hold anything: the kernel clamps
            // infinities and sends NaN to the lowest level.
            Op::Quantize { scale: s, .. } | Op::Dequantize { scale: s, .. } | Op::QuantizeChannels { scale: s, .. } => scale(*s),
            Op::QConv2d { conv, out, .. } => {
                if let QOutParams::I8 { scale: s, .. } = out {
                    scale(*s)?;
                }
                Op::Conv2d(*conv).check_params()
            }
            Op::QGemm { act, out } => {
                if let QOutParams::I8 { scale: s, .. } = out {
                    scale(*s)?;
                }
                check_activation(*act)
            }
            Op::Q4Gemm { act, group: g } => {
                group(*g)?;
                check_activation(*act)
            }
            Op::SpGemm { act } => check_activation(*act),
            Op::SpConv2d { conv } => {
                if conv.groups != 1 {
                    return err(format!("sparse convolution with {} groups (only 1 is supported)", conv.groups));
                }
                Op::Conv2d(*conv).check_params()
            }
            Op::Q4Conv2d { conv, group: g } => {
                group(*g)?;
                if conv.groups != 1 {
                    return err(format!("int4 convolution with {} groups (only 1 is supported)", conv.groups));
                }
                Op::Conv2d(*conv).check_params()
            }
            Op::Conv2d(c) => {
                window("kernel", &c.kernel, 1)?;
                window("stride", &c.strides, 1)?;
                window("dilation", &c.dilations, 1)?;
                window("pad", &c.pads, 0)?;
                if c.groups == 0 || c.groups > MAX_WINDOW {
                    return err(format!("groups {} outside 1..={MAX_WINDOW}", c.groups));
                }
                check_activation(c.act)
            }
            Op::Gemm(g) => {
                if !g.alpha.is_finite() || !g.beta.is_finite() {
                    return err(format!("alpha {} / beta {} must be finite", g.alpha, g.beta));
                }
                check_activation(g.act)
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                window("kernel", &p.kernel, 1)?;
                window("stride", &p.strides, 1)?;
                window("dilation", &p.dilations, 1)?;
                window("pad", &p.pads, 0)?;
                if (0..4).any(|i| p.pads[i] >= p.kernel[i % 2]) {
                    // ONNX requires pads smaller than the kernel; without it
                    // a window could lie wholly in the padding.
                    return err(format!("pads {:?} not smaller than the kernel {:?}", p.pads, p.kernel));
                }
                if matches!(self, Op::AvgPool2d(_)) && p.dilations != [1, 1] {
                    return err("dilated average pooling is not supported");
                }
                Ok(())
            }
            Op::Activation(a) => check_activation(*a),
            Op::Binary { act, .. } | Op::ChannelAffine { act } => check_activation(*act),
            Op::Lrn(p) => {
                if p.size == 0 || p.size > MAX_WINDOW {
                    return err(format!("size {} outside 1..={MAX_WINDOW}", p.size));
                }
                if !(p.alpha.is_finite() && p.beta.is_finite() && p.bias.is_finite()) {
                    return err("alpha, beta and bias must be finite");
                }
                Ok(())
            }
            Op::Reduce { axes, .. } => {
                if *axes >> MAX_RANK != 0 {
                    return err(format!("axes mask {axes:#x} names axes beyond {MAX_RANK}"));
                }
                Ok(())
            }
            Op::Slice(p) => {
                if p.rank > MAX_RANK {
                    return err(format!("rank {} exceeds {MAX_RANK}", p.rank));
                }
                match p.step[..p.rank].iter().find(|&&s| s == 0 || s.unsigned_abs() > u32::MAX as u64) {
                    Some(s) => err(format!("step {s} (must be non-zero and below 2^32)")),
                    None => Ok(()),
                }
            }
            Op::LayerNorm { epsilon, .. } => {
                if !epsilon.is_finite() || *epsilon < 0.0 {
                    return err(format!("epsilon {epsilon} must be finite and non-negative"));
                }
                Ok(())
            }
            Op::MatMul { act } => check_activation(*act),
            Op::Pad(p) => {
                if p.rank > MAX_RANK {
                    return err(format!("rank {} exceeds {MAX_RANK}", p.rank));
                }
                if p.begin[..p.rank].iter().chain(&p.end[..p.rank]).any(|&v| v > u32::MAX as usize) {
                    return err("pads are absurdly large");
                }
                if p.value.is_nan() && p.mode == PadMode::Constant {
                    return err("the pad value is NaN");
                }
                Ok(())
            }
            Op::ConvTranspose2d(c) => {
                window("kernel", &c.kernel, 1)?;
                window("stride", &c.strides, 1)?;
                window("dilation", &c.dilations, 1)?;
                window("pad", &c.pads, 0)?;
                window("output padding", &c.output_padding, 0)?;
                if c.groups == 0 || c.groups > MAX_WINDOW {
                    return err(format!("groups {} outside 1..={MAX_WINDOW}", c.groups));
                }
                Ok(())
            }
            Op::Resize(r) => {
                let p = &r.params;
                if !r.scales.iter().all(|s| s.is_finite() && *s > 0.0) {
                    return err(format!("scales {:?} must be finite and positive", r.scales));
                }
                if !r.roi.iter().all(|v| v.is_finite()) || !p.cubic_coeff_a.is_finite() || p.extrapolation_value.is_nan() {
                    return err("roi, cubic_coeff_a and extrapolation_value must be finite");
                }
                if r.out.iter().any(|&o| o > u32::MAX as usize) {
                    return err(format!("output size {:?} is absurdly large", r.out));
                }
                Ok(())
            }
            Op::Cast { to } => {
                if !CAST_TYPES.contains(to) {
                    return err(format!("cast to {to:?} is not supported"));
                }
                Ok(())
            }
            Op::GlobalAvgPool
            | Op::Softmax { .. }
            | Op::Concat { .. }
            | Op::Copy
            | Op::Transpose { .. }
            | Op::Broadcast { .. }
            | Op::Gather { .. }
            | Op::Where => Ok(()),
        }
    }

    /// The outputs (element type and shape) for these inputs, or why the
    /// inputs do not fit the op. `Copy` cannot infer (its output shape is the
    /// caller's choice).
    pub fn infer(&self, inputs: &[Meta]) -> Result<Vec<Meta>, String> {
        self.check_params()?;
        let (lo, hi) = self.input_arity();
        if inputs.len() < lo || inputs.len() > hi {
            return err(format!("takes {lo}..={hi} inputs, has {}", inputs.len()));
        }
        if let Some(out) = self.infer_quantized(inputs)? {
            return Ok(vec![out]);
        }
        // Max pooling also runs on int8 (inside an int8 region).
        let int8_pool = matches!(self, Op::MaxPool2d(_)) && inputs[0].dtype == DType::I8;
        let any_type = int8_pool
            || matches!(
                self,
                Op::Slice(_) | Op::Broadcast { .. } | Op::Gather { .. } | Op::Where | Op::Cast { .. } | Op::Copy | Op::Pad(_)
            );
        if !any_type {
            if let Some((i, m)) = inputs.iter().enumerate().find(|(_, m)| m.dtype != DType::F32) {
                return err(format!("input {i} is {:?}; this op runs on float32 only", m.dtype));
            }
        }
        let x = inputs[0].shape;
        let xd = x.dims();
        let mut dtype = inputs[0].dtype;
        let shape = |d: &[usize]| Shape::new(d).ok_or_else(|| format!("rank {} exceeds {MAX_RANK}", d.len()));
        let out = match self {
            Op::Conv2d(c) => {
                let s = conv_shape(c, inputs)?;
                shape(&[s.batch, s.out_channels, s.out_h, s.out_w])?
            }
            Op::Gemm(g) => {
                let (m, _k, n) = gemm_dims(g, inputs)?;
                if let Some(c) = inputs.get(2) {
                    let cd = c.shape.dims();
                    let ok = cd.len() <= 2 && cd.iter().rev().zip([n, m]).all(|(&d, want)| d == 1 || d == want);
                    if !ok {
                        return err(format!("C of shape {cd:?} does not broadcast to [{m}, {n}]"));
                    }
                }
                shape(&[m, n])?
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let s = pool_shape(p, &x)?;
                shape(&[xd[0], xd[1], s.out_h, s.out_w])?
            }
            Op::GlobalAvgPool => {
                if xd.len() < 3 {
                    return err(format!("input of rank {} (needs N, C and spatial axes)", xd.len()));
                }
                let mut d = [1usize; MAX_RANK];
                d[..2].copy_from_slice(&xd[..2]);
                shape(&d[..xd.len()])?
            }
            Op::Activation(_) | Op::Softmax { .. } | Op::Lrn(_) => {
                match self {
                    Op::Softmax { axis, .. } if *axis >= xd.len() => return err(format!("axis {axis} out of range for rank {}", xd.len())),
                    Op::Lrn(_) if xd.len() < 3 => return err(format!("input of rank {} (needs N, C, spatial)", xd.len())),
                    _ => {}
                }
                x
            }
            Op::Binary { .. } => broadcast(xd, inputs[1].shape.dims())
                .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", xd, inputs[1].shape.dims()))?,
            Op::ChannelAffine { .. } => {
                if xd.len() < 2 {
                    return err(format!("input of rank {} (needs a channel axis)", xd.len()));
                }
                for (name, m) in [("scale", &inputs[1]), ("shift", &inputs[2])] {
                    if m.shape.dims() != [xd[1]] && m.shape.dims() != [1] {
                        return err(format!("{name} has shape {:?}, expected [{}] or [1]", m.shape.dims(), xd[1]));
                    }
                }
                x
            }
            Op::Concat { axis } => {
                let axis = *axis;
                if axis >= xd.len() {
                    return err(format!("axis {axis} out of range for rank {}", xd.len()));
                }
                let mut total = 0usize;
                for (i, m) in inputs.iter().enumerate() {
                    let d = m.shape.dims();
                    let same = d.len() == xd.len() && d.iter().zip(xd).enumerate().all(|(a, (p, q))| a == axis || p == q);
                    if !same {
                        return err(format!("input {i} has shape {d:?}, which does not match {xd:?} outside axis {axis}"));
                    }
                    total = total.checked_add(d[axis]).ok_or("concatenated size overflows")?;
                }
                let mut d = [0usize; MAX_RANK];
                d[..xd.len()].copy_from_slice(xd);
                d[axis] = total;
                shape(&d[..xd.len()])?
            }
            Op::Transpose { perm } => {
                if perm.rank() != xd.len() {
                    return err(format!("perm of rank {} for input of rank {}", perm.rank(), xd.len()));
                }
                let axes = perm.axes();
                let mut d = [0usize; MAX_RANK];
                for i in 0..xd.len() {
                    d[i] = xd[axes[i]];
                }
                shape(&d[..xd.len()])?
            }
            Op::Reduce { axes, keepdims, .. } => {
                if *axes >> xd.len() != 0 {
                    return err(format!("axes mask {axes:#b} names axes beyond rank {}", xd.len()));
                }
                let d: Vec<usize> = (0..xd.len())
                    .filter_map(|a| match (axes & (1 << a) != 0, keepdims) {
                        (false, _) => Some(xd[a]),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect();
                shape(&d)?
            }
            Op::Slice(p) => {
                if p.rank != xd.len() {
                    return err(format!("slice of rank {} for input of rank {}", p.rank, xd.len()));
                }
                for (a, &d) in xd.iter().enumerate() {
                    if p.len[a] == 0 {
                        continue;
                    }
                    let last = p.start[a] as i128 + (p.len[a] as i128 - 1) * p.step[a] as i128;
                    if p.start[a] >= d || last < 0 || last >= d as i128 {
                        return err(format!(
                            "axis {a}: start {} step {} length {} leaves the input's {d} elements",
                            p.start[a], p.step[a], p.len[a]
                        ));
                    }
                }
                shape(&p.len[..p.rank])?
            }
            Op::Broadcast { shape: to } => {
                let b = broadcast(xd, to.dims()).ok_or_else(|| format!("{xd:?} does not broadcast to {:?}", to.dims()))?;
                if b != *to {
                    return err(format!("{xd:?} broadcast with {:?} gives {:?}", to.dims(), b.dims()));
                }
                *to
            }
            Op::Gather { axis } => {
                let id = inputs[1];
                if !matches!(id.dtype, DType::I64 | DType::I32) {
                    return err(format!("indices are {:?}, expected int64 or int32", id.dtype));
                }
                if *axis >= xd.len() {
                    return err(format!("axis {axis} out of range for rank {}", xd.len()));
                }
                let mut d = xd[..*axis].to_vec();
                d.extend_from_slice(id.shape.dims());
                d.extend_from_slice(&xd[axis + 1..]);
                shape(&d)?
            }
            Op::Where => {
                if inputs[0].dtype != DType::Bool {
                    return err(format!("condition is {:?}, expected bool", inputs[0].dtype));
                }
                if inputs[1].dtype != inputs[2].dtype {
                    return err(format!("X is {:?} and Y is {:?}", inputs[1].dtype, inputs[2].dtype));
                }
                dtype = inputs[1].dtype;
                let xy = broadcast(inputs[1].shape.dims(), inputs[2].shape.dims());
                xy.and_then(|s| broadcast(xd, s.dims())).ok_or_else(|| {
                    format!("shapes {xd:?}, {:?} and {:?} do not broadcast", inputs[1].shape.dims(), inputs[2].shape.dims())
                })?
            }
            Op::LayerNorm { axis, .. } => {
                if *axis >= xd.len() {
                    return err(format!("axis {axis} out of range for rank {}", xd.len()));
                }
                let n: usize = xd[*axis..].iter().product();
                for (name, m) in [("scale", inputs.get(1)), ("bias", inputs.get(2))] {
                    if let Some(m) = m {
                        let k = m.shape.numel().unwrap_or(0);
                        if k != n && k != 1 {
                            return err(format!("{name} of shape {:?} for {n} normalized elements", m.shape.dims()));
                        }
                    }
                }
                x
            }
            Op::MatMul { .. } => {
                let (batch, m, _k, n) = matmul_dims(inputs)?;
                let mut d = batch.dims().to_vec();
                d.extend_from_slice(&[m, n]);
                shape(&d)?
            }
            Op::Cast { to } => {
                if !CAST_TYPES.contains(&inputs[0].dtype) {
                    return err(format!("cast from {:?} is not supported", inputs[0].dtype));
                }
                dtype = *to;
                x
            }
            Op::ConvTranspose2d(c) => {
                let s = conv_transpose_shape(c, inputs)?;
                shape(&[s.batch, s.out_channels, s.out_h, s.out_w])?
            }
            Op::Resize(r) => {
                if xd.len() < 2 {
                    return err(format!("input of rank {} (Resize works on the last two axes)", xd.len()));
                }
                if xd[xd.len() - 2..].contains(&0) && r.out.iter().any(|&o| o > 0) {
                    return err(format!("cannot resize the empty input {xd:?} to {:?}", r.out));
                }
                let mut d = xd.to_vec();
                let n = d.len();
                d[n - 2..].copy_from_slice(&r.out);
                shape(&d)?
            }
            Op::Pad(p) => {
                if p.rank != xd.len() {
                    return err(format!("pads for rank {} on an input of rank {}", p.rank, xd.len()));
                }
                let mut d = [0usize; MAX_RANK];
                for a in 0..p.rank {
                    let padded = p.begin[a] + p.end[a] > 0;
                    if padded && p.mode != PadMode::Constant && xd[a] == 0 {
                        return err(format!("{:?} padding of the empty axis {a}", p.mode));
                    }
                    d[a] = xd[a] + p.begin[a] + p.end[a];
                }
                shape(&d[..p.rank])?
            }
            Op::Copy => return err("Copy takes its output shape from the plan"),
            Op::Quantize { .. }
            | Op::QuantizeChannels { .. }
            | Op::Dequantize { .. }
            | Op::QConv2d { .. }
            | Op::QGemm { .. }
            | Op::Q4Gemm { .. }
            | Op::Q4Conv2d { .. }
            | Op::SpGemm { .. }
            | Op::SpConv2d { .. } => return err("quantized op reached the float rules"),
        };
        Ok(vec![Meta { dtype, shape: out }])
    }

    /// The output of a quantized op (`None` for other ops): each input's
    /// element type and shape is checked here, since they mix types.
    fn infer_quantized(&self, inputs: &[Meta]) -> Result<Option<Meta>, String> {
        let want = |i: usize, what: &str, dtype: DType, dims: Option<&[usize]>| -> Result<(), String> {
            let m = &inputs[i];
            if m.dtype != dtype {
                return err(format!("{what} is {:?}, expected {:?}", m.dtype, dtype));
            }
            match dims {
                Some(d) if m.shape.dims() != d => err(format!("{what} has shape {:?}, expected {d:?}", m.shape.dims())),
                _ => Ok(()),
            }
        };
        let x = inputs[0].shape;
        let xd = x.dims();
        let out_dtype = |o: &QOutParams| match o {
            QOutParams::F32 => DType::F32,
            QOutParams::I8 { .. } => DType::I8,
        };
        let shape = |d: &[usize]| Shape::new(d).ok_or_else(|| format!("rank {} exceeds {MAX_RANK}", d.len()));
        // Weight rows of a convolution as the float rules see them.
        let conv_out = |c: &Conv2d, m: usize| -> Result<(Conv2dShape, usize), String> {
            if xd.len() != 4 {
                return err(format!("input {xd:?} must be 4-D"));
            }
            if c.groups == 0 || !xd[1].is_multiple_of(c.groups) {
                return err(format!("{} input channels for {} groups", xd[1], c.groups));
            }
            let cg = xd[1] / c.groups;
            let w = Meta { dtype: DType::F32, shape: shape(&[m, cg, c.kernel[0], c.kernel[1]])? };
            let s = conv_shape(c, &[Meta { dtype: DType::F32, shape: x }, w])?;
            Ok((s, cg * c.kernel[0] * c.kernel[1]))
        };
        let rows = |i: usize| inputs[i].shape.dims().first().copied().unwrap_or(0);
        let out = match self {
            Op::Quantize { .. } => {
                want(0, "input", DType::F32, None)?;
                Meta { dtype: DType::I8, shape: x }
            }
            Op::QuantizeChannels { .. } => {
                want(0, "input", DType::F32, None)?;
                let &c = xd.get(1).ok_or("the input has no channel axis")?;
                want(1, "mul", DType::F16, Some(&[c]))?;
                want(2, "add", DType::F16, Some(&[c]))?;
                Meta { dtype: DType::I8, shape: x }
            }
            Op::Dequantize { .. } => {
                want(0, "input", DType::I8, None)?;
                Meta { dtype: DType::F32, shape: x }
            }
            Op::QConv2d { conv, out, .. } => {
                want(0, "X", DType::I8, None)?;
                let m = rows(1);
                let (s, _) = conv_out(conv, m)?;
                want(1, "W", DType::I8, Some(&[m, qgemm::conv_kp(&s)]))?;
                want(2, "bias", DType::F32, Some(&[m]))?;
                want(3, "deq", DType::F32, Some(&[m]))?;
                if inputs.len() > 4 {
                    want(4, "padding values", DType::I8, Some(&[s.in_channels]))?;
                }
                Meta { dtype: out_dtype(out), shape: shape(&[s.batch, m, s.out_h, s.out_w])? }
            }
            Op::QGemm { out, .. } => {
                want(0, "A", DType::I8, None)?;
                let (&k, lead) = xd.split_last().ok_or("A is a scalar")?;
                let n = rows(1);
                want(1, "W", DType::I8, Some(&[n, k.next_multiple_of(Q8_K_ALIGN)]))?;
                want(2, "bias", DType::F32, Some(&[n]))?;
                want(3, "deq", DType::F32, Some(&[n]))?;
                let mut d = lead.to_vec();
                d.push(n);
                Meta { dtype: out_dtype(out), shape: shape(&d)? }
            }
            Op::Q4Gemm { group, .. } => {
                want(0, "A", DType::F32, None)?;
                let (&k, lead) = xd.split_last().ok_or("A is a scalar")?;
                let n = rows(1);
                want(1, "W", DType::U8, Some(&[n, k.div_ceil(2)]))?;
                want(2, "scales", DType::F16, Some(&[n, k.div_ceil(*group)]))?;
                if inputs.len() == 4 {
                    want(3, "bias", DType::F32, Some(&[n]))?;
                }
                let mut d = lead.to_vec();
                d.push(n);
                Meta { dtype: DType::F32, shape: shape(&d)? }
            }
            Op::Q4Conv2d { conv, group } => {
                want(0, "X", DType::F32, None)?;
                let m = rows(1);
                let (s, k) = conv_out(conv, m)?;
                want(1, "W", DType::U8, Some(&[m, k.div_ceil(2)]))?;
                want(2, "scales", DType::F16, Some(&[m, k.div_ceil(*group)]))?;
                if inputs.len() == 4 {
                    want(3, "bias", DType::F32, Some(&[m]))?;
                }
                Meta { dtype: DType::F32, shape: shape(&[s.batch, m, s.out_h, s.out_w])? }
            }
            Op::SpGemm { .. } | Op::SpConv2d { .. } => {
                want(0, "input", DType::F32, None)?;
                let (rows, k, shape_out) = match self {
                    Op::SpConv2d { conv } => {
                        let m = rows(1);
                        let (s, k) = conv_out(conv, m)?;
                        (m, k, shape(&[s.batch, m, s.out_h, s.out_w])?)
                    }
                    _ => {
                        let (&k, lead) = xd.split_last().ok_or("A is a scalar")?;
                        let n = rows(1);
                        let mut d = lead.to_vec();
                        d.push(n);
                        (n, k, shape(&d)?)
                    }
                };
                want(1, "mask", DType::U8, Some(&[rows, k.div_ceil(8)]))?;
                if inputs[2].dtype != DType::F32 || inputs[2].shape.rank() != 1 {
                    return err(format!("values are {:?} {:?}, expected a float32 vector", inputs[2].dtype, inputs[2].shape.dims()));
                }
                want(3, "row starts", DType::U32, Some(&[rows + 1]))?;
                if inputs.len() == 5 {
                    want(4, "bias", DType::F32, Some(&[rows]))?;
                }
                Meta { dtype: DType::F32, shape: shape_out }
            }
            _ => return Ok(None),
        };
        Ok(Some(out))
    }

    /// Checks declared outputs against the inputs (what the reader does for
    /// every step before anything runs).
    pub fn check(&self, inputs: &[Meta], outputs: &[Meta]) -> Result<(), String> {
        if outputs.len() != self.output_arity() {
            return err(format!("has {} outputs, expected {}", outputs.len(), self.output_arity()));
        }
        if let Op::Copy = self {
            self.check_params()?;
            if inputs.len() != 1 {
                return err(format!("takes 1 input, has {}", inputs.len()));
            }
            let (i, o) = (inputs[0], outputs[0]);
            if i.dtype != o.dtype || i.shape.numel() != o.shape.numel() {
                return err(format!("copies {:?} {:?} into {:?} {:?}: element type or count differ", i.dtype, i.shape, o.dtype, o.shape));
            }
            return Ok(());
        }
        let want = self.infer(inputs)?;
        for (i, (w, o)) in want.iter().zip(outputs).enumerate() {
            if o != w {
                return err(format!("output {i} declared {:?} {:?}, the inputs give {:?} {:?}", o.dtype, o.shape, w.dtype, w.shape));
            }
        }
        Ok(())
    }

    /// Scratch floats per worker the CPU kernels of this step need.
    pub fn scratch_floats(&self, inputs: &[Meta]) -> usize {
        match self {
            Op::Conv2d(c) => conv_shape(c, inputs).map(|s| s.scratch_floats()).unwrap_or(0),
            Op::Gemm(g) => gemm_dims(g, inputs).map(|(m, k, n)| gemm::scratch_floats_for(m, k, n)).unwrap_or(0),
            Op::MatMul { .. } => matmul_dims(inputs).map(|(_, m, k, n)| gemm::scratch_floats_for(m, k, n)).unwrap_or(0),
            Op::QConv2d { .. } | Op::Q4Conv2d { .. } | Op::SpConv2d { .. } => {
                let Ok(s) = q_conv_shape(self, inputs) else { return 0 };
                match self {
                    Op::QConv2d { .. } => qgemm::qconv_scratch_floats(&s),
                    _ => s.scratch_floats(),
                }
            }
            Op::QGemm { .. } | Op::Q4Gemm { .. } | Op::SpGemm { .. } => {
                let (xd, n) = (inputs[0].shape.dims(), inputs.get(1).map_or(0, |w| w.shape.dims().first().copied().unwrap_or(0)));
                let k = xd.last().copied().unwrap_or(0);
                let m: usize = xd[..xd.len().saturating_sub(1)].iter().product();
                match self {
                    Op::QGemm { .. } => qgemm::qgemm_scratch_floats(n, k.next_multiple_of(Q8_K_ALIGN)),
                    _ => gemm::scratch_floats_for(m, k, n),
                }
            }
            _ => 0,
        }
    }
}

fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::None => "Identity",
        Activation::Relu => "Relu",
        Activation::LeakyRelu { .. } => "LeakyRelu",
        Activation::Clip { .. } => "Clip",
        Activation::Sigmoid => "Sigmoid",
        Activation::Tanh => "Tanh",
        Activation::HardSigmoid { .. } => "HardSigmoid",
        Activation::HardSwish => "HardSwish",
        Activation::Silu => "Silu",
        Activation::Gelu => "Gelu",
        Activation::GeluTanh => "GeluTanh",
        Activation::Erf => "Erf",
        Activation::Sqrt => "Sqrt",
        Activation::Exp => "Exp",
        Activation::Log => "Log",
        Activation::Abs => "Abs",
        Activation::Neg => "Neg",
        Activation::Reciprocal => "Reciprocal",
        Activation::Floor => "Floor",
        Activation::Ceil => "Ceil",
        Activation::Round => "Round",
        Activation::Sign => "Sign",
        Activation::Softplus => "Softplus",
        Activation::Softsign => "Softsign",
        Activation::Elu { .. } => "Elu",
        Activation::Selu { .. } => "Selu",
        Activation::Celu { .. } => "Celu",
        Activation::ThresholdedRelu { .. } => "ThresholdedRelu",
        Activation::Mish => "Mish",
        Activation::Sin => "Sin",
        Activation::Cos => "Cos",
    }
}

fn check_activation(a: Activation) -> Result<(), String> {
    match a {
        Activation::LeakyRelu { alpha } if !alpha.is_finite() => err(format!("LeakyRelu alpha {alpha} is not finite")),
        Activation::Clip { min, max } if min.is_nan() || max.is_nan() => err("Clip bounds are NaN"),
        Activation::HardSigmoid { alpha, beta } if !(alpha.is_finite() && beta.is_finite()) => err("HardSigmoid parameters are not finite"),
        Activation::Elu { alpha } | Activation::Celu { alpha } | Activation::ThresholdedRelu { alpha } if !alpha.is_finite() => {
            err(format!("alpha {alpha} is not finite"))
        }
        Activation::Selu { alpha, gamma } if !(alpha.is_finite() && gamma.is_finite()) => err("Selu parameters are not finite"),
        _ => Ok(()),
    }
}

/// Numpy broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    if rank > MAX_RANK {
        return None;
    }
    let mut d = [0usize; MAX_RANK];
    for i in 0..rank {
        let x = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let y = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        d[i] = match (x, y) {
            _ if x == y => x,
            (1, _) => y,
            (_, 1) => x,
            _ => return None,
        };
    }
    Shape::new(&d[..rank])
}

/// The kernel geometry of a convolution step.
pub(crate) fn conv_shape(c: &Conv2d, inputs: &[Meta]) -> Result<Conv2dShape, String> {
    let x = inputs[0].shape;
    let w = inputs.get(1).ok_or("missing weights")?.shape;
    let (xd, wd) = (x.dims(), w.dims());
    if xd.len() != 4 || wd.len() != 4 {
        return err(format!("input {xd:?} and weights {wd:?} must both be 4-D"));
    }
    let (n, ch, h, wi) = (xd[0], xd[1], xd[2], xd[3]);
    let (m, cg, kh, kw) = (wd[0], wd[1], wd[2], wd[3]);
    if [kh, kw] != c.kernel {
        return err(format!("weights {wd:?} do not match kernel {:?}", c.kernel));
    }
    if ch % c.groups != 0 || m % c.groups != 0 || ch / c.groups != cg {
        return err(format!("input channels {ch}, weights {wd:?} and groups {} do not agree", c.groups));
    }
    if let Some(b) = inputs.get(2) {
        if b.shape.dims() != [m] {
            return err(format!("bias of shape {:?}, expected [{m}]", b.shape.dims()));
        }
    }
    let oh = out_len(h, kh, c.strides[0], c.dilations[0], c.pads[0], c.pads[2], false)
        .ok_or_else(|| format!("kernel {kh} (dilation {}) does not fit input height {h} with pads", c.dilations[0]))?;
    let ow = out_len(wi, kw, c.strides[1], c.dilations[1], c.pads[1], c.pads[3], false)
        .ok_or_else(|| format!("kernel {kw} (dilation {}) does not fit input width {wi} with pads", c.dilations[1]))?;
    Ok(Conv2dShape {
        batch: n,
        in_channels: ch,
        in_h: h,
        in_w: wi,
        out_channels: m,
        out_h: oh,
        out_w: ow,
        kernel_h: kh,
        kernel_w: kw,
        stride_h: c.strides[0],
        stride_w: c.strides[1],
        dilation_h: c.dilations[0],
        dilation_w: c.dilations[1],
        pad_top: c.pads[0],
        pad_left: c.pads[1],
        groups: c.groups,
    })
}

/// The kernel geometry of a QConv2d or Q4Conv2d step (weights given as
/// rows).
pub(crate) fn q_conv_shape(op: &Op, inputs: &[Meta]) -> Result<Conv2dShape, String> {
    let (Op::QConv2d { conv, .. } | Op::Q4Conv2d { conv, .. } | Op::SpConv2d { conv }) = op else {
        return err("not a quantized convolution");
    };
    let xd = inputs[0].shape.dims();
    let m = inputs.get(1).and_then(|w| w.shape.dims().first().copied()).ok_or("missing weights")?;
    if xd.len() != 4 || conv.groups == 0 || !xd[1].is_multiple_of(conv.groups) {
        return err(format!("input {xd:?} for {} groups", conv.groups));
    }
    let w = Shape::new(&[m, xd[1] / conv.groups, conv.kernel[0], conv.kernel[1]]).ok_or("bad weights")?;
    conv_shape(conv, &[inputs[0], Meta { dtype: DType::F32, shape: w }])
}

/// (M, K, N) of a Gemm step.
pub(crate) fn gemm_dims(g: &Gemm, inputs: &[Meta]) -> Result<(usize, usize, usize), String> {
    let (a, b) = (inputs[0].shape, inputs.get(1).ok_or("missing B")?.shape);
    let (ad, bd) = (a.dims(), b.dims());
    if ad.len() != 2 || bd.len() != 2 {
        return err(format!("A {ad:?} and B {bd:?} must both be 2-D"));
    }
    let (m, k) = if g.trans_a { (ad[1], ad[0]) } else { (ad[0], ad[1]) };
    let (k2, n) = if g.trans_b { (bd[1], bd[0]) } else { (bd[0], bd[1]) };
    if k != k2 {
        return err(format!("inner dimensions differ: A {ad:?} (transA={}) and B {bd:?} (transB={})", g.trans_a, g.trans_b));
    }
    Ok((m, k, n))
}

/// The kernel geometry of a transposed convolution step.
pub(crate) fn conv_transpose_shape(c: &ConvTranspose2d, inputs: &[Meta]) -> Result<ConvTranspose2dShape, String> {
    let (xd, wd) = (inputs[0].shape.dims(), inputs.get(1).ok_or("missing weights")?.shape.dims());
    if xd.len() != 4 || wd.len() != 4 {
        return err(format!("input {xd:?} and weights {wd:?} must both be 4-D"));
    }
    let (n, ch, h, w) = (xd[0], xd[1], xd[2], xd[3]);
    if wd[0] != ch || ch % c.groups != 0 || [wd[2], wd[3]] != c.kernel {
        return err(format!("input channels {ch}, weights {wd:?}, kernel {:?} and groups {} do not agree", c.kernel, c.groups));
    }
    let m = wd[1].checked_mul(c.groups).ok_or("output channels overflow")?;
    if let Some(b) = inputs.get(2) {
        if b.shape.dims() != [m] {
            return err(format!("bias of shape {:?}, expected [{m}]", b.shape.dims()));
        }
    }
    let len = |i: usize, a: usize| {
        ConvTranspose2dShape::out_len(i, c.kernel[a], c.strides[a], c.dilations[a], c.pads[a], c.pads[a + 2], c.output_padding[a])
            .ok_or_else(|| format!("pads {:?} exceed the output along axis {a}", c.pads))
    };
    Ok(ConvTranspose2dShape {
        batch: n,
        in_channels: ch,
        in_h: h,
        in_w: w,
        out_channels: m,
        out_h: len(h, 0)?,
        out_w: len(w, 1)?,
        kernel_h: c.kernel[0],
        kernel_w: c.kernel[1],
        stride_h: c.strides[0],
        stride_w: c.strides[1],
        dilation_h: c.dilations[0],
        dilation_w: c.dilations[1],
        pad_top: c.pads[0],
        pad_left: c.pads[1],
        groups: c.groups,
    })
}

/// (broadcast batch shape, M, K, N) of a MatMul step; both inputs at least
/// 2-D.
pub(crate) fn matmul_dims(inputs: &[Meta]) -> Result<(Shape, usize, usize, usize), String> {
    let (ad, bd) = (inputs[0].shape.dims(), inputs.get(1).ok_or("missing B")?.shape.dims());
    if ad.len() < 2 || bd.len() < 2 {
        return err(format!("A {ad:?} and B {bd:?} must both be at least 2-D"));
    }
    let (m, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
    let (k2, n) = (bd[bd.len() - 2], bd[bd.len() - 1]);
    if k != k2 {
        return err(format!("inner dimensions differ: A {ad:?} and B {bd:?}"));
    }
    let batch = broadcast(&ad[..ad.len() - 2], &bd[..bd.len() - 2])
        .ok_or_else(|| format!("batch dimensions of A {ad:?} and B {bd:?} do not broadcast"))?;
    if batch.rank() + 2 > MAX_RANK {
        return err(format!("rank {} exceeds {MAX_RANK}", batch.rank() + 2));
    }
    Ok((batch, m, k, n))
}

/// The kernel geometry of a pooling step.
pub(crate) fn pool_shape(p: &Pool2d, x: &Shape) -> Result<Pool2dShape, String> {
    let xd = x.dims();
    if xd.len() != 4 {
        return err(format!("input {xd:?} must be 4-D"));
    }
    let oh = out_len(xd[2], p.kernel[0], p.strides[0], p.dilations[0], p.pads[0], p.pads[2], p.ceil_mode)
        .ok_or_else(|| format!("window {:?} does not fit input {xd:?}", p.kernel))?;
    let ow = out_len(xd[3], p.kernel[1], p.strides[1], p.dilations[1], p.pads[1], p.pads[3], p.ceil_mode)
        .ok_or_else(|| format!("window {:?} does not fit input {xd:?}", p.kernel))?;
    let planes = xd[0].checked_mul(xd[1]).ok_or("N·C overflows")?;
    Ok(Pool2dShape {
        planes,
        in_h: xd[2],
        in_w: xd[3],
        out_h: oh,
        out_w: ow,
        kernel_h: p.kernel[0],
        kernel_w: p.kernel[1],
        stride_h: p.strides[0],
        stride_w: p.strides[1],
        dilation_h: p.dilations[0],
        dilation_w: p.dilations[1],
        pad_top: p.pads[0],
        pad_left: p.pads[1],
        pad_bottom: p.pads[2],
        pad_right: p.pads[3],
    })
}
