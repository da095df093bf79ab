//! The operations a plan is made of and their parameters: one description
//! that the converter builds, the writer stores, the reader checks and the
//! runtime lowers. The shape rules are in [`crate::shape`], the on-disk
//! codes in [`crate::codes`], the parameter layout in `params.rs`.

use crate::codes::{self, OpKind, BINARY_OPS, REDUCE_OPS};
use crate::{DType, Shape, MAX_RANK};
pub use jetrt_kernels::cpu::elementwise::BinaryOp;
pub use jetrt_kernels::cpu::lrn::LrnParams;
pub use jetrt_kernels::cpu::reduce::ReduceOp;
pub use jetrt_kernels::cpu::resize::{CoordTransform, NearestRound, ResizeMode, ResizeParams};
pub use jetrt_kernels::cpu::strided::PadMode;
pub use jetrt_kernels::cpu::Activation;

/// Largest kernel size, stride, dilation or padding a file may declare; far
/// beyond any real model, small enough that no arithmetic on it overflows.
pub const MAX_WINDOW: usize = 1 << 16;

/// A 2-D convolution. Inputs: X `[N, C, H, W]`, W `[M, C/groups, kh, kw]`,
/// optional bias `[M]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Gemm {
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub beta: f32,
    pub act: Activation,
}

/// A 2-D transposed convolution. Inputs: X `[N, C, H, W]`, W `[C, M/groups,
/// kh, kw]`, optional bias `[M]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resize {
    pub params: ResizeParams,
    pub scales: [f32; 2],
    pub roi: [f32; 4],
    pub out: [usize; 2],
}

/// A 2-D pooling window over `[N, C, H, W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

impl Default for SliceParams {
    /// Rank 0; steps of 1 on every axis, so unused axes read as a plain copy.
    fn default() -> Self {
        SliceParams { rank: 0, start: [0; MAX_RANK], step: [1; MAX_RANK], len: [0; MAX_RANK] }
    }
}

/// One operation of a plan. What it is ([`Op::kind`]) is stored as a code
/// of [`OpKind`]'s table, its parameters as `params.rs` lays them
/// out.
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
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum QOutParams {
    #[default]
    F32,
    I8 {
        scale: f32,
        zero_point: i8,
    },
}

/// K of int8 weight rows is padded to a multiple of this.
pub use jetrt_kernels::cpu::int8::K_ALIGN as Q8_K_ALIGN;

/// Padding before and after each axis.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
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

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

impl Op {
    /// What the op is, without its parameters.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Conv2d(_) => OpKind::Conv2d,
            Op::Gemm(_) => OpKind::Gemm,
            Op::MaxPool2d(_) => OpKind::MaxPool2d,
            Op::AvgPool2d(_) => OpKind::AvgPool2d,
            Op::GlobalAvgPool => OpKind::GlobalAvgPool,
            Op::Activation(_) => OpKind::Activation,
            Op::Binary { .. } => OpKind::Binary,
            Op::ChannelAffine { .. } => OpKind::ChannelAffine,
            Op::Softmax { .. } => OpKind::Softmax,
            Op::Concat { .. } => OpKind::Concat,
            Op::Copy => OpKind::Copy,
            Op::Transpose { .. } => OpKind::Transpose,
            Op::Lrn(_) => OpKind::Lrn,
            Op::Reduce { .. } => OpKind::Reduce,
            Op::Slice(_) => OpKind::Slice,
            Op::Broadcast { .. } => OpKind::Broadcast,
            Op::Gather { .. } => OpKind::Gather,
            Op::Where => OpKind::Where,
            Op::LayerNorm { .. } => OpKind::LayerNorm,
            Op::MatMul { .. } => OpKind::MatMul,
            Op::Cast { .. } => OpKind::Cast,
            Op::ConvTranspose2d(_) => OpKind::ConvTranspose2d,
            Op::Resize(_) => OpKind::Resize,
            Op::Pad(_) => OpKind::Pad,
            Op::Quantize { .. } => OpKind::Quantize,
            Op::QuantizeChannels { .. } => OpKind::QuantizeChannels,
            Op::Dequantize { .. } => OpKind::Dequantize,
            Op::QConv2d { .. } => OpKind::QConv2d,
            Op::QGemm { .. } => OpKind::QGemm,
            Op::Q4Gemm { .. } => OpKind::Q4Gemm,
            Op::Q4Conv2d { .. } => OpKind::Q4Conv2d,
            Op::SpGemm { .. } => OpKind::SpGemm,
            Op::SpConv2d { .. } => OpKind::SpConv2d,
        }
    }

    /// An op of `kind` with default parameters (what the reader fills in).
    pub(crate) fn blank(kind: OpKind) -> Op {
        let conv = Conv2d::default();
        match kind {
            OpKind::Conv2d => Op::Conv2d(conv),
            OpKind::Gemm => Op::Gemm(Gemm::default()),
            OpKind::MaxPool2d => Op::MaxPool2d(Pool2d::default()),
            OpKind::AvgPool2d => Op::AvgPool2d(Pool2d::default()),
            OpKind::GlobalAvgPool => Op::GlobalAvgPool,
            OpKind::Activation => Op::Activation(Activation::None),
            OpKind::Binary => Op::Binary { op: BinaryOp::Add, act: Activation::None },
            OpKind::ChannelAffine => Op::ChannelAffine { act: Activation::None },
            OpKind::Softmax => Op::Softmax { axis: 0, coerce_2d: false },
            OpKind::Concat => Op::Concat { axis: 0 },
            OpKind::Copy => Op::Copy,
            OpKind::Transpose => Op::Transpose { perm: Perm::default() },
            OpKind::Lrn => Op::Lrn(LrnParams { size: 1, alpha: 0.0, beta: 0.0, bias: 0.0 }),
            OpKind::Reduce => Op::Reduce { op: ReduceOp::Sum, axes: 0, keepdims: false },
            OpKind::Slice => Op::Slice(SliceParams::default()),
            OpKind::Broadcast => Op::Broadcast { shape: Shape::default() },
            OpKind::Gather => Op::Gather { axis: 0 },
            OpKind::Where => Op::Where,
            OpKind::LayerNorm => Op::LayerNorm { axis: 0, epsilon: 0.0 },
            OpKind::MatMul => Op::MatMul { act: Activation::None },
            OpKind::Cast => Op::Cast { to: DType::F32 },
            OpKind::ConvTranspose2d => Op::ConvTranspose2d(ConvTranspose2d::default()),
            OpKind::Resize => Op::Resize(Resize::default()),
            OpKind::Pad => Op::Pad(PadParams::default()),
            OpKind::Quantize => Op::Quantize { scale: 1.0, zero_point: 0 },
            OpKind::QuantizeChannels => Op::QuantizeChannels { scale: 1.0, zero_point: 0 },
            OpKind::Dequantize => Op::Dequantize { scale: 1.0, zero_point: 0 },
            OpKind::QConv2d => Op::QConv2d { conv, x_zp: 0, out: QOutParams::F32 },
            OpKind::QGemm => Op::QGemm { act: Activation::None, out: QOutParams::F32 },
            OpKind::Q4Gemm => Op::Q4Gemm { act: Activation::None, group: 0 },
            OpKind::Q4Conv2d => Op::Q4Conv2d { conv, group: 0 },
            OpKind::SpGemm => Op::SpGemm { act: Activation::None },
            OpKind::SpConv2d => Op::SpConv2d { conv },
        }
    }

    /// The activation the op applies (fused or its own), if it carries one.
    pub fn activation(&self) -> Option<Activation> {
        match self {
            Op::Conv2d(c) | Op::QConv2d { conv: c, .. } | Op::Q4Conv2d { conv: c, .. } | Op::SpConv2d { conv: c } => Some(c.act),
            Op::Gemm(g) => Some(g.act),
            Op::Activation(a)
            | Op::Binary { act: a, .. }
            | Op::ChannelAffine { act: a }
            | Op::MatMul { act: a }
            | Op::QGemm { act: a, .. }
            | Op::Q4Gemm { act: a, .. }
            | Op::SpGemm { act: a } => Some(*a),
            _ => None,
        }
    }

    /// The format minor version that introduced this op with these
    /// parameters (its kind, activation and binary op); a file using it
    /// needs a reader at least that new.
    pub fn since_minor(&self) -> u16 {
        codes::op_since_minor(self)
    }

    /// The op's name for people (profiles, `jetc inspect`): the kind's,
    /// with what its parameters add (`Conv2dAct`, `ReduceMean`, `Relu`).
    pub fn name(&self) -> &'static str {
        let fused = self.activation().is_some_and(|a| !a.is_none());
        match self {
            Op::Activation(a) => codes::activation_name(*a),
            Op::Binary { op: BinaryOp::Add, .. } if fused => "AddAct",
            Op::Binary { .. } if fused => "BinaryAct",
            Op::Binary { op, .. } => BINARY_OPS.name(*op),
            Op::Reduce { op, .. } => REDUCE_OPS.name(*op),
            Op::Conv2d(_) if fused => "Conv2dAct",
            Op::Gemm(_) if fused => "GemmAct",
            Op::ChannelAffine { .. } if fused => "ChannelAffineAct",
            Op::MatMul { .. } if fused => "MatMulAct",
            _ => self.kind().name(),
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
