//! Op parameters as a step stores them: a flat array of u64 words in a
//! fixed layout per op (docs/FORMAT.md, "Op parameters"). Floats are their
//! f32 bits, int8 zero points their two's-complement i64 bits, enumerations
//! their codes from [`crate::codes`].
//!
//! [`layout`] describes each op's words once; the writer runs it with a
//! [`Words`] that appends, the reader with one that reads and checks.

use crate::codes::{self, Codes, OpKind, BINARY_OPS, COORD_TRANSFORMS, NEAREST_MODES, PAD_MODES, REDUCE_OPS, RESIZE_MODES};
use crate::error::{FormatError, Result};
use crate::op::*;
use crate::{DType, Shape, MAX_RANK};

/// One side of the parameter layout: the writer's appends each value, the
/// reader's overwrites it with the next word (or fails naming the field).
trait Words {
    fn word(&mut self, v: &mut u64, what: &'static str) -> Result<()>;
    /// An error about the op being read, for values a word cannot hold.
    fn bad(&self, reason: String) -> FormatError;

    /// A size, at most `u32::MAX` (every size parameter is bounded well
    /// below that on any target).
    fn usize(&mut self, v: &mut usize, what: &'static str) -> Result<()> {
        let mut w = *v as u64;
        self.word(&mut w, what)?;
        if w > u32::MAX as u64 {
            return Err(self.bad(format!("parameter {what} = {w} is absurdly large")));
        }
        *v = w as usize;
        Ok(())
    }

    fn usizes(&mut self, v: &mut [usize], what: &'static str) -> Result<()> {
        v.iter_mut().try_for_each(|x| self.usize(x, what))
    }

    /// A rank, at most [`MAX_RANK`].
    fn rank(&mut self, v: &mut usize) -> Result<()> {
        self.usize(v, "rank")?;
        if *v > MAX_RANK {
            return Err(self.bad(format!("rank {v} exceeds {MAX_RANK}")));
        }
        Ok(())
    }

    fn f32(&mut self, v: &mut f32, what: &'static str) -> Result<()> {
        let mut w = v.to_bits() as u64;
        self.word(&mut w, what)?;
        let bits = u32::try_from(w).map_err(|_| self.bad(format!("parameter {what} = {w:#x} is not an f32")))?;
        *v = f32::from_bits(bits);
        Ok(())
    }

    fn bool(&mut self, v: &mut bool, what: &'static str) -> Result<()> {
        let mut w = *v as u64;
        self.word(&mut w, what)?;
        *v = match w {
            0 => false,
            1 => true,
            w => return Err(self.bad(format!("parameter {what} = {w}, expected 0 or 1"))),
        };
        Ok(())
    }

    fn i64(&mut self, v: &mut i64, what: &'static str) -> Result<()> {
        let mut w = *v as u64;
        self.word(&mut w, what)?;
        *v = w as i64;
        Ok(())
    }

    fn i8(&mut self, v: &mut i8, what: &'static str) -> Result<()> {
        let mut w = *v as i64;
        self.i64(&mut w, what)?;
        *v = i8::try_from(w).map_err(|_| self.bad(format!("parameter {what} = {w} is not an int8")))?;
        Ok(())
    }

    /// A value of a code table.
    fn code<T: Copy + PartialEq>(&mut self, v: &mut T, table: &Codes<T>, what: &'static str) -> Result<()> {
        let mut w = table.code(*v) as u64;
        self.word(&mut w, what)?;
        *v = u32::try_from(w).ok().and_then(|c| table.value(c)).ok_or_else(|| self.bad(format!("unknown {what} code {w}")))?;
        Ok(())
    }

    /// An activation: its code and two parameters.
    fn activation(&mut self, a: &mut Activation) -> Result<()> {
        let (code, mut p) = codes::activation_code(*a);
        let mut w = code as u64;
        self.word(&mut w, "activation")?;
        self.f32(&mut p[0], "activation parameter")?;
        self.f32(&mut p[1], "activation parameter")?;
        *a = u32::try_from(w)
            .ok()
            .and_then(|c| codes::activation_from_code(c, p))
            .ok_or_else(|| self.bad(format!("unknown activation code {w}")))?;
        Ok(())
    }
}

fn conv(c: &mut Conv2d, w: &mut impl Words) -> Result<()> {
    w.usizes(&mut c.kernel, "kernel")?;
    w.usizes(&mut c.strides, "strides")?;
    w.usizes(&mut c.dilations, "dilations")?;
    w.usizes(&mut c.pads, "pads")?;
    w.usize(&mut c.groups, "groups")?;
    w.activation(&mut c.act)
}

fn pool(p: &mut Pool2d, w: &mut impl Words) -> Result<()> {
    w.usizes(&mut p.kernel, "kernel")?;
    w.usizes(&mut p.strides, "strides")?;
    w.usizes(&mut p.dilations, "dilations")?;
    w.usizes(&mut p.pads, "pads")?;
    w.bool(&mut p.ceil_mode, "ceil_mode")?;
    w.bool(&mut p.count_include_pad, "count_include_pad")
}

/// The output of a quantized op: kind (0 float32, 1 int8), scale, zero point.
fn qout(o: &mut QOutParams, w: &mut impl Words) -> Result<()> {
    let (mut kind, mut scale, mut zp) = match *o {
        QOutParams::F32 => (0u64, 0.0f32, 0i8),
        QOutParams::I8 { scale, zero_point } => (1, scale, zero_point),
    };
    w.word(&mut kind, "output kind")?;
    w.f32(&mut scale, "output scale")?;
    w.i8(&mut zp, "output zero point")?;
    *o = match kind {
        0 => QOutParams::F32,
        1 => QOutParams::I8 { scale, zero_point: zp },
        k => return Err(w.bad(format!("unknown output kind {k}"))),
    };
    Ok(())
}

/// A rank and that many dimensions.
fn dims(d: &mut [usize; MAX_RANK], rank: &mut usize, what: &'static str, w: &mut impl Words) -> Result<()> {
    w.rank(rank)?;
    w.usizes(&mut d[..*rank], what)
}

/// Every op's parameter words, in order: the one description of the
/// layout, for writing and for reading.
fn layout(op: &mut Op, w: &mut impl Words) -> Result<()> {
    match op {
        Op::Conv2d(c) | Op::SpConv2d { conv: c } => conv(c, w),
        Op::Gemm(g) => {
            w.bool(&mut g.trans_a, "trans_a")?;
            w.bool(&mut g.trans_b, "trans_b")?;
            w.f32(&mut g.alpha, "alpha")?;
            w.f32(&mut g.beta, "beta")?;
            w.activation(&mut g.act)
        }
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => pool(p, w),
        Op::GlobalAvgPool | Op::Copy | Op::Where => Ok(()),
        Op::Activation(a) | Op::ChannelAffine { act: a } | Op::MatMul { act: a } | Op::SpGemm { act: a } => w.activation(a),
        Op::Binary { op, act } => {
            w.code(op, &BINARY_OPS, "binary op")?;
            w.activation(act)
        }
        Op::Softmax { axis, coerce_2d } => {
            w.usize(axis, "axis")?;
            w.bool(coerce_2d, "coerce_2d")
        }
        Op::Concat { axis } | Op::Gather { axis } => w.usize(axis, "axis"),
        Op::Transpose { perm } => {
            let (mut rank, mut axes) = (perm.rank(), perm.axes());
            dims(&mut axes, &mut rank, "perm", w)?;
            *perm = Perm::new(&axes[..rank]).ok_or_else(|| w.bad(format!("{:?} is not a permutation", &axes[..rank])))?;
            Ok(())
        }
        Op::Lrn(p) => {
            w.usize(&mut p.size, "size")?;
            w.f32(&mut p.alpha, "alpha")?;
            w.f32(&mut p.beta, "beta")?;
            w.f32(&mut p.bias, "bias")
        }
        Op::Reduce { op, axes, keepdims } => {
            w.code(op, &REDUCE_OPS, "reduce op")?;
            let mut mask = *axes as u64;
            w.word(&mut mask, "axes")?;
            if mask >> MAX_RANK != 0 {
                return Err(w.bad(format!("axes mask {mask:#x} names axes beyond {MAX_RANK}")));
            }
            *axes = mask as u32;
            w.bool(keepdims, "keepdims")
        }
        Op::Slice(p) => {
            w.rank(&mut p.rank)?;
            for a in 0..p.rank {
                w.usize(&mut p.start[a], "start")?;
                w.i64(&mut p.step[a], "step")?;
                w.usize(&mut p.len[a], "length")?;
            }
            Ok(())
        }
        Op::Broadcast { shape } => {
            let mut rank = shape.rank();
            let mut d = [0usize; MAX_RANK];
            d[..rank].copy_from_slice(shape.dims());
            dims(&mut d, &mut rank, "dimension", w)?;
            *shape = Shape::new(&d[..rank]).ok_or_else(|| w.bad(format!("shape {:?} is invalid", &d[..rank])))?;
            Ok(())
        }
        Op::LayerNorm { axis, epsilon } => {
            w.usize(axis, "axis")?;
            w.f32(epsilon, "epsilon")
        }
        Op::Cast { to } => {
            let mut code = *to as u8 as u64;
            w.word(&mut code, "element type")?;
            *to = u8::try_from(code).ok().and_then(DType::from_code).ok_or_else(|| w.bad(format!("unknown element type code {code}")))?;
            Ok(())
        }
        Op::ConvTranspose2d(c) => {
            w.usizes(&mut c.kernel, "kernel")?;
            w.usizes(&mut c.strides, "strides")?;
            w.usizes(&mut c.dilations, "dilations")?;
            w.usizes(&mut c.pads, "pads")?;
            w.usizes(&mut c.output_padding, "output_padding")?;
            w.usize(&mut c.groups, "groups")
        }
        Op::Resize(r) => {
            let p = &mut r.params;
            w.code(&mut p.mode, &RESIZE_MODES, "resize mode")?;
            w.code(&mut p.coord, &COORD_TRANSFORMS, "coordinate transform")?;
            w.code(&mut p.nearest, &NEAREST_MODES, "nearest mode")?;
            w.f32(&mut p.cubic_coeff_a, "cubic_coeff_a")?;
            w.bool(&mut p.exclude_outside, "exclude_outside")?;
            w.f32(&mut p.extrapolation_value, "extrapolation_value")?;
            r.scales.iter_mut().try_for_each(|s| w.f32(s, "scale"))?;
            r.roi.iter_mut().try_for_each(|v| w.f32(v, "roi"))?;
            w.usizes(&mut r.out, "output size")
        }
        Op::Pad(p) => {
            w.code(&mut p.mode, &PAD_MODES, "pad mode")?;
            w.rank(&mut p.rank)?;
            w.f32(&mut p.value, "value")?;
            w.usizes(&mut p.begin[..p.rank], "pad")?;
            w.usizes(&mut p.end[..p.rank], "pad")
        }
        Op::Quantize { scale, zero_point } | Op::Dequantize { scale, zero_point } | Op::QuantizeChannels { scale, zero_point } => {
            w.f32(scale, "scale")?;
            w.i8(zero_point, "zero point")
        }
        Op::QConv2d { conv: c, x_zp, out } => {
            conv(c, w)?;
            w.i8(x_zp, "input zero point")?;
            qout(out, w)
        }
        Op::QGemm { act, out } => {
            w.activation(act)?;
            qout(out, w)
        }
        Op::Q4Gemm { act, group } => {
            w.activation(act)?;
            w.usize(group, "group")
        }
        Op::Q4Conv2d { conv: c, group } => {
            conv(c, w)?;
            w.usize(group, "group")
        }
    }
}

/// Appends words.
struct Append<'a>(&'a mut Vec<u64>);

impl Words for Append<'_> {
    fn word(&mut self, v: &mut u64, _what: &'static str) -> Result<()> {
        self.0.push(*v);
        Ok(())
    }

    fn bad(&self, reason: String) -> FormatError {
        FormatError::BadStep { step: 0, op: "?", reason }
    }
}

/// Reads the words of step `step`, failing with the step and the field.
struct Read<'a> {
    step: usize,
    op: &'static str,
    words: &'a [u64],
    pos: usize,
}

impl Words for Read<'_> {
    fn word(&mut self, v: &mut u64, what: &'static str) -> Result<()> {
        let w = self.words.get(self.pos).copied();
        self.pos += 1;
        *v = w.ok_or_else(|| self.bad(format!("parameter {what} missing ({} words given)", self.words.len())))?;
        Ok(())
    }

    fn bad(&self, reason: String) -> FormatError {
        FormatError::BadStep { step: self.step, op: self.op, reason }
    }
}

/// Appends the parameter words of `op`.
pub(crate) fn encode(op: &Op, out: &mut Vec<u64>) {
    let mut op = op.clone();
    // Writing cannot fail: every value of an op has its code.
    let written = layout(&mut op, &mut Append(out));
    debug_assert!(written.is_ok(), "{written:?}");
}

/// The op of step `step` from its code and parameter words, its own
/// parameters checked ([`Op::check_params`]).
pub(crate) fn decode(step: usize, code: u32, words: &[u64]) -> Result<Op> {
    let kind = OpKind::from_code(code).ok_or(FormatError::UnknownOp { step, code })?;
    let mut op = Op::blank(kind);
    let mut r = Read { step, op: kind.name(), words, pos: 0 };
    layout(&mut op, &mut r)?;
    if r.pos != words.len() {
        return Err(r.bad(format!("{} parameter words, expected {}", words.len(), r.pos)));
    }
    op.check_params().map_err(|reason| FormatError::BadStep { step, op: op.name(), reason })?;
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips_through_its_parameters() {
        let ops = [
            Op::Conv2d(Conv2d {
                kernel: [3, 5],
                strides: [2, 1],
                dilations: [1, 2],
                pads: [1, 2, 3, 4],
                groups: 4,
                act: Activation::Clip { min: 0.0, max: 6.0 },
            }),
            Op::Gemm(Gemm { trans_a: true, trans_b: false, alpha: 0.5, beta: 2.0, act: Activation::LeakyRelu { alpha: 0.1 } }),
            Op::MaxPool2d(Pool2d {
                kernel: [3, 3],
                strides: [2, 2],
                dilations: [1, 1],
                pads: [0, 0, 1, 1],
                ceil_mode: true,
                count_include_pad: false,
            }),
            Op::AvgPool2d(Pool2d {
                kernel: [2, 3],
                strides: [1, 2],
                dilations: [1, 1],
                pads: [1, 1, 1, 1],
                ceil_mode: false,
                count_include_pad: true,
            }),
            Op::GlobalAvgPool,
            Op::Activation(Activation::Sigmoid),
            Op::Activation(Activation::Tanh),
            Op::Binary { op: BinaryOp::Pow, act: Activation::Relu },
            Op::ChannelAffine { act: Activation::None },
            Op::Softmax { axis: 3, coerce_2d: true },
            Op::Concat { axis: 1 },
            Op::Copy,
            Op::Transpose { perm: Perm::new(&[0, 2, 1, 3, 4]).unwrap() },
            Op::Lrn(LrnParams { size: 5, alpha: 1e-4, beta: 0.75, bias: 2.0 }),
            Op::Activation(Activation::HardSigmoid { alpha: 0.2, beta: 0.5 }),
            Op::Activation(Activation::Selu { alpha: 1.5, gamma: 1.05 }),
            Op::Activation(Activation::Gelu),
            Op::Binary { op: BinaryOp::PRelu, act: Activation::None },
            Op::Reduce { op: ReduceOp::LogSumExp, axes: 0b101, keepdims: true },
            Op::Slice(SliceParams {
                rank: 2,
                start: [3, 0, 0, 0, 0, 0, 0, 0],
                step: [-2, 1, 1, 1, 1, 1, 1, 1],
                len: [2, 5, 0, 0, 0, 0, 0, 0],
            }),
            Op::Broadcast { shape: crate::Shape::new(&[2, 3, 4]).unwrap() },
            Op::Gather { axis: 1 },
            Op::Where,
            Op::LayerNorm { axis: 2, epsilon: 1e-5 },
            Op::MatMul { act: Activation::Gelu },
            Op::Cast { to: crate::DType::I64 },
            Op::ConvTranspose2d(ConvTranspose2d {
                kernel: [2, 3],
                strides: [2, 2],
                dilations: [1, 2],
                pads: [0, 1, 1, 0],
                output_padding: [1, 0],
                groups: 2,
            }),
            Op::Pad(PadParams {
                mode: PadMode::Reflect,
                rank: 3,
                begin: [0, 1, 2, 0, 0, 0, 0, 0],
                end: [3, 0, 1, 0, 0, 0, 0, 0],
                value: 0.5,
            }),
            Op::Resize(Resize {
                params: ResizeParams { mode: ResizeMode::Cubic, coord: CoordTransform::TfCropAndResize, ..Default::default() },
                scales: [2.0, 0.5],
                roi: [0.1, 0.2, 0.9, 0.8],
                out: [8, 3],
            }),
            Op::Quantize { scale: 0.02, zero_point: -128 },
            Op::QuantizeChannels { scale: 0.5, zero_point: 5 },
            Op::Dequantize { scale: 1.5, zero_point: 127 },
            Op::QConv2d {
                conv: Conv2d {
                    kernel: [3, 3],
                    strides: [2, 2],
                    dilations: [1, 1],
                    pads: [1, 1, 1, 1],
                    groups: 1,
                    act: Activation::HardSwish,
                },
                x_zp: -5,
                out: QOutParams::I8 { scale: 0.1, zero_point: -128 },
            },
            Op::QGemm { act: Activation::Relu, out: QOutParams::F32 },
            Op::Q4Gemm { act: Activation::Gelu, group: 32 },
            Op::SpGemm { act: Activation::Relu },
            Op::SpConv2d {
                conv: Conv2d { kernel: [3, 3], strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], groups: 1, act: Activation::None },
            },
            Op::Q4Conv2d {
                conv: Conv2d { kernel: [1, 1], strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], groups: 1, act: Activation::None },
                group: 64,
            },
        ];
        for op in ops {
            let mut words = Vec::new();
            encode(&op, &mut words);
            assert_eq!(decode(0, op.kind().code(), &words).unwrap(), op);
            // One word too few or too many is an error naming the step.
            let short = &words[..words.len().saturating_sub(1)];
            if !words.is_empty() {
                assert!(matches!(decode(0, op.kind().code(), short), Err(FormatError::BadStep { .. })));
            }
            let mut long = words.clone();
            long.push(0);
            assert!(matches!(decode(0, op.kind().code(), &long), Err(FormatError::BadStep { .. })));
        }
        assert!(matches!(decode(7, 999, &[]), Err(FormatError::UnknownOp { step: 7, code: 999 })));
    }
}
