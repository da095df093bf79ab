//! The plan section: model inputs and outputs, the ordered steps, their
//! operands and parameters.
//!
//! Parameters are a flat array of u64 words; each op reads a fixed layout
//! (docs/FORMAT.md, "Op parameters"). Floats are stored as their f32 bits.

use super::bytes::{Reader, Writer};
use super::SectionKind;
use crate::error::{Error, Result};
use crate::ops::*;

/// One step as stored: op code and ranges into the operand and parameter
/// arrays.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepRecord {
    pub code: u32,
    pub in_start: u32,
    pub in_count: u32,
    pub out_start: u32,
    pub out_count: u32,
    pub param_start: u32,
    pub param_count: u32,
}

pub(crate) const STEP_RECORD_LEN: usize = 32;

/// The decoded plan section (operand indices not yet checked against the
/// tensor table).
pub(crate) struct PlanSection {
    pub inputs: Vec<u32>,
    pub outputs: Vec<u32>,
    pub steps: Vec<(Op, std::ops::Range<usize>, std::ops::Range<usize>)>,
    pub operands: Vec<u32>,
}

pub(crate) fn encode(inputs: &[u32], outputs: &[u32], steps: &[(Op, Vec<u32>, Vec<u32>)]) -> Vec<u8> {
    let mut operands = Vec::new();
    let mut params = Vec::new();
    let mut records = Vec::new();
    for (op, ins, outs) in steps {
        let in_start = operands.len() as u32;
        operands.extend_from_slice(ins);
        let out_start = operands.len() as u32;
        operands.extend_from_slice(outs);
        let param_start = params.len() as u32;
        encode_params(op, &mut params);
        records.push(StepRecord {
            code: op.code(),
            in_start,
            in_count: ins.len() as u32,
            out_start,
            out_count: outs.len() as u32,
            param_start,
            param_count: params.len() as u32 - param_start,
        });
    }
    let mut w = Writer::default();
    w.u32(inputs.len() as u32);
    w.u32(outputs.len() as u32);
    w.u32(records.len() as u32);
    w.u32(operands.len() as u32);
    w.u32(params.len() as u32);
    w.u32(0);
    inputs.iter().chain(outputs).for_each(|&v| w.u32(v));
    for r in &records {
        for v in [r.code, 0, r.in_start, r.in_count, r.out_start, r.out_count, r.param_start, r.param_count] {
            w.u32(v);
        }
    }
    operands.iter().for_each(|&v| w.u32(v));
    w.pad_to(8);
    params.iter().for_each(|&v| w.u64(v));
    w.buf
}

pub(crate) fn decode(data: &[u8], max_steps: usize) -> Result<PlanSection> {
    let mut r = Reader::new(SectionKind::Plan, data);
    let n_in = r.count("input count")?;
    let n_out = r.count("output count")?;
    let n_steps = r.count("step count")?;
    let n_operands = r.count("operand count")?;
    let n_params = r.count("parameter count")?;
    let reserved = r.u32("reserved")?;
    if reserved != 0 {
        return Err(r.bad("reserved word of the plan header", reserved.into(), "0"));
    }
    if n_steps > max_steps {
        return Err(r.bad("step count", n_steps as u64, format!("at most {max_steps}")));
    }
    // Every count is bounded by the section length before anything is
    // allocated, so a hostile count cannot make us reserve gigabytes.
    let need = (n_in as u64 + n_out as u64 + n_operands as u64) * 4 + n_steps as u64 * STEP_RECORD_LEN as u64 + n_params as u64 * 8;
    if need > r.len() as u64 {
        return Err(Error::Truncated { kind: SectionKind::Plan, what: "plan arrays", offset: r.pos() as u64, need, len: r.len() as u64 });
    }
    let mut inputs = Vec::with_capacity(n_in);
    for _ in 0..n_in {
        inputs.push(r.u32("model input index")?);
    }
    let mut outputs = Vec::with_capacity(n_out);
    for _ in 0..n_out {
        outputs.push(r.u32("model output index")?);
    }
    let mut records = Vec::with_capacity(n_steps);
    for _ in 0..n_steps {
        let code = r.u32("op code")?;
        let flags = r.u32("step flags")?;
        if flags != 0 {
            return Err(r.bad(format!("flags of step #{}", records.len()), flags.into(), "0"));
        }
        records.push(StepRecord {
            code,
            in_start: r.u32("step input start")?,
            in_count: r.u32("step input count")?,
            out_start: r.u32("step output start")?,
            out_count: r.u32("step output count")?,
            param_start: r.u32("step parameter start")?,
            param_count: r.u32("step parameter count")?,
        });
    }
    let mut operands = Vec::with_capacity(n_operands);
    for _ in 0..n_operands {
        operands.push(r.u32("operand")?);
    }
    let aligned = r.pos().next_multiple_of(8);
    r.seek(aligned, "parameter alignment")?;
    let mut params = Vec::with_capacity(n_params);
    for _ in 0..n_params {
        params.push(r.u64("parameter")?);
    }
    let mut steps = Vec::with_capacity(n_steps);
    for (i, rec) in records.iter().enumerate() {
        let range = |start: u32, count: u32, len: usize, what: &str| -> Result<std::ops::Range<usize>> {
            let (s, c) = (start as usize, count as usize);
            match s.checked_add(c) {
                Some(e) if e <= len => Ok(s..e),
                _ => Err(Error::BadStep { step: i, op: "?", reason: format!("{what} {s}..{s}+{c} past the end of the array ({len})") }),
            }
        };
        let ins = range(rec.in_start, rec.in_count, n_operands, "inputs")?;
        let outs = range(rec.out_start, rec.out_count, n_operands, "outputs")?;
        let ps = range(rec.param_start, rec.param_count, n_params, "parameters")?;
        let op = decode_op(i, rec.code, &params[ps])?;
        steps.push((op, ins, outs));
    }
    Ok(PlanSection { inputs, outputs, steps, operands })
}

fn f32w(v: f32) -> u64 {
    v.to_bits() as u64
}

fn encode_activation(a: &Activation, out: &mut Vec<u64>) {
    let (code, p0, p1) = match *a {
        Activation::None => (0, 0.0, 0.0),
        Activation::Relu => (1, 0.0, 0.0),
        Activation::LeakyRelu { alpha } => (2, alpha, 0.0),
        Activation::Clip { min, max } => (3, min, max),
        Activation::Sigmoid => (4, 0.0, 0.0),
        Activation::Tanh => (5, 0.0, 0.0),
        Activation::HardSigmoid { alpha, beta } => (6, alpha, beta),
        Activation::HardSwish => (7, 0.0, 0.0),
        Activation::Silu => (8, 0.0, 0.0),
        Activation::Gelu => (9, 0.0, 0.0),
        Activation::GeluTanh => (10, 0.0, 0.0),
        Activation::Erf => (11, 0.0, 0.0),
        Activation::Sqrt => (12, 0.0, 0.0),
        Activation::Exp => (13, 0.0, 0.0),
        Activation::Log => (14, 0.0, 0.0),
        Activation::Abs => (15, 0.0, 0.0),
        Activation::Neg => (16, 0.0, 0.0),
        Activation::Reciprocal => (17, 0.0, 0.0),
        Activation::Floor => (18, 0.0, 0.0),
        Activation::Ceil => (19, 0.0, 0.0),
        Activation::Round => (20, 0.0, 0.0),
        Activation::Sign => (21, 0.0, 0.0),
        Activation::Softplus => (22, 0.0, 0.0),
        Activation::Softsign => (23, 0.0, 0.0),
        Activation::Elu { alpha } => (24, alpha, 0.0),
        Activation::Selu { alpha, gamma } => (25, alpha, gamma),
        Activation::Celu { alpha } => (26, alpha, 0.0),
        Activation::ThresholdedRelu { alpha } => (27, alpha, 0.0),
        Activation::Mish => (28, 0.0, 0.0),
        Activation::Sin => (29, 0.0, 0.0),
        Activation::Cos => (30, 0.0, 0.0),
    };
    out.extend_from_slice(&[code, f32w(p0), f32w(p1)]);
}

fn binary_code(op: BinaryOp) -> u64 {
    match op {
        BinaryOp::Add => 1,
        BinaryOp::Sub => 2,
        BinaryOp::Mul => 3,
        BinaryOp::Div => 4,
        BinaryOp::Max => 5,
        BinaryOp::Min => 6,
        BinaryOp::Pow => 7,
        BinaryOp::PRelu => 8,
        BinaryOp::Mod => 9,
        BinaryOp::Fmod => 10,
    }
}

fn encode_conv(c: &Conv2d, out: &mut Vec<u64>) {
    let us = |v: &[usize], out: &mut Vec<u64>| out.extend(v.iter().map(|&x| x as u64));
    us(&c.kernel, out);
    us(&c.strides, out);
    us(&c.dilations, out);
    us(&c.pads, out);
    out.push(c.groups as u64);
    encode_activation(&c.act, out);
}

fn encode_qout(o: &QOutParams, out: &mut Vec<u64>) {
    match o {
        QOutParams::F32 => out.extend_from_slice(&[0, 0, 0]),
        QOutParams::I8 { scale, zero_point } => out.extend_from_slice(&[1, f32w(*scale), *zero_point as i64 as u64]),
    }
}

pub(crate) fn encode_params(op: &Op, out: &mut Vec<u64>) {
    let us = |v: &[usize], out: &mut Vec<u64>| out.extend(v.iter().map(|&x| x as u64));
    match op {
        Op::Conv2d(c) => encode_conv(c, out),
        Op::Quantize { scale, zero_point } | Op::Dequantize { scale, zero_point } | Op::QuantizeChannels { scale, zero_point } => {
            out.extend_from_slice(&[f32w(*scale), *zero_point as i64 as u64])
        }
        Op::QConv2d { conv, x_zp, out: o } => {
            encode_conv(conv, out);
            out.push(*x_zp as i64 as u64);
            encode_qout(o, out);
        }
        Op::QGemm { act, out: o } => {
            encode_activation(act, out);
            encode_qout(o, out);
        }
        Op::Q4Gemm { act, group } => {
            encode_activation(act, out);
            out.push(*group as u64);
        }
        Op::Q4Conv2d { conv, group } => {
            encode_conv(conv, out);
            out.push(*group as u64);
        }
        Op::SpGemm { act } => encode_activation(act, out),
        Op::SpConv2d { conv } => encode_conv(conv, out),
        Op::Gemm(g) => {
            out.extend_from_slice(&[g.trans_a as u64, g.trans_b as u64, f32w(g.alpha), f32w(g.beta)]);
            encode_activation(&g.act, out);
        }
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
            us(&p.kernel, out);
            us(&p.strides, out);
            us(&p.dilations, out);
            us(&p.pads, out);
            out.extend_from_slice(&[p.ceil_mode as u64, p.count_include_pad as u64]);
        }
        Op::GlobalAvgPool | Op::Copy => {}
        Op::Activation(a) => encode_activation(a, out),
        Op::Binary { op, act } => {
            out.push(binary_code(*op));
            encode_activation(act, out);
        }
        Op::ChannelAffine { act } => encode_activation(act, out),
        Op::Softmax { axis, coerce_2d } => out.extend_from_slice(&[*axis as u64, *coerce_2d as u64]),
        Op::Concat { axis } => out.push(*axis as u64),
        Op::Transpose { perm } => {
            out.push(perm.rank() as u64);
            us(&perm.axes()[..perm.rank()], out);
        }
        Op::Lrn(p) => out.extend_from_slice(&[p.size as u64, f32w(p.alpha), f32w(p.beta), f32w(p.bias)]),
        Op::Reduce { op, axes, keepdims } => out.extend_from_slice(&[reduce_code(*op), *axes as u64, *keepdims as u64]),
        Op::Slice(p) => {
            out.push(p.rank as u64);
            for a in 0..p.rank {
                out.extend_from_slice(&[p.start[a] as u64, p.step[a] as u64, p.len[a] as u64]);
            }
        }
        Op::Broadcast { shape } => {
            out.push(shape.rank() as u64);
            us(shape.dims(), out);
        }
        Op::Gather { axis } => out.push(*axis as u64),
        Op::Where => {}
        Op::LayerNorm { axis, epsilon } => out.extend_from_slice(&[*axis as u64, f32w(*epsilon)]),
        Op::MatMul { act } => encode_activation(act, out),
        Op::Cast { to } => out.push(*to as u8 as u64),
        Op::ConvTranspose2d(c) => {
            us(&c.kernel, out);
            us(&c.strides, out);
            us(&c.dilations, out);
            us(&c.pads, out);
            us(&c.output_padding, out);
            out.push(c.groups as u64);
        }
        Op::Pad(p) => {
            let mode = match p.mode {
                PadMode::Constant => 0,
                PadMode::Reflect => 1,
                PadMode::Edge => 2,
                PadMode::Wrap => 3,
            };
            out.extend_from_slice(&[mode, p.rank as u64, f32w(p.value)]);
            us(&p.begin[..p.rank], out);
            us(&p.end[..p.rank], out);
        }
        Op::Resize(r) => {
            let p = &r.params;
            let mode = match p.mode {
                ResizeMode::Nearest => 0,
                ResizeMode::Linear => 1,
                ResizeMode::Cubic => 2,
            };
            let coord = COORDS.iter().position(|&c| c == p.coord).unwrap_or(0) as u64;
            let nearest = NEAREST.iter().position(|&c| c == p.nearest).unwrap_or(0) as u64;
            out.extend_from_slice(&[mode, coord, nearest, f32w(p.cubic_coeff_a), p.exclude_outside as u64, f32w(p.extrapolation_value)]);
            out.extend(r.scales.iter().chain(&r.roi).map(|&v| f32w(v)));
            us(&r.out, out);
        }
    }
}

const COORDS: [CoordTransform; 6] = [
    CoordTransform::HalfPixel,
    CoordTransform::HalfPixelSymmetric,
    CoordTransform::PytorchHalfPixel,
    CoordTransform::AlignCorners,
    CoordTransform::Asymmetric,
    CoordTransform::TfCropAndResize,
];

const NEAREST: [NearestRound; 4] = [NearestRound::RoundPreferFloor, NearestRound::RoundPreferCeil, NearestRound::Floor, NearestRound::Ceil];

const REDUCE_OPS: [ReduceOp; 10] = [
    ReduceOp::Sum,
    ReduceOp::Mean,
    ReduceOp::Max,
    ReduceOp::Min,
    ReduceOp::Prod,
    ReduceOp::L1,
    ReduceOp::L2,
    ReduceOp::SumSquare,
    ReduceOp::LogSum,
    ReduceOp::LogSumExp,
];

fn reduce_code(op: ReduceOp) -> u64 {
    REDUCE_OPS.iter().position(|&o| o == op).map_or(0, |i| i as u64 + 1)
}

/// Reads one op's parameter words, failing with the step and the field.
struct Params<'a> {
    step: usize,
    op: &'static str,
    words: &'a [u64],
    pos: usize,
}

impl Params<'_> {
    fn bad(&self, reason: String) -> Error {
        Error::BadStep { step: self.step, op: self.op, reason }
    }

    fn word(&mut self, what: &str) -> Result<u64> {
        let w = self.words.get(self.pos).copied();
        self.pos += 1;
        w.ok_or_else(|| self.bad(format!("parameter {what} missing ({} words given)", self.words.len())))
    }

    fn usize(&mut self, what: &str) -> Result<usize> {
        let w = self.word(what)?;
        // Every size parameter is bounded well below usize::MAX on any target.
        if w > u32::MAX as u64 {
            return Err(self.bad(format!("parameter {what} = {w} is absurdly large")));
        }
        Ok(w as usize)
    }

    /// A rank word, at most [`crate::format::MAX_RANK`].
    fn rank(&mut self) -> Result<usize> {
        let rank = self.usize("rank")?;
        if rank > crate::format::MAX_RANK {
            return Err(self.bad(format!("rank {rank} exceeds {}", crate::format::MAX_RANK)));
        }
        Ok(rank)
    }

    fn pair(&mut self, what: &str) -> Result<[usize; 2]> {
        Ok([self.usize(what)?, self.usize(what)?])
    }

    fn quad(&mut self, what: &str) -> Result<[usize; 4]> {
        Ok([self.usize(what)?, self.usize(what)?, self.usize(what)?, self.usize(what)?])
    }

    fn bool(&mut self, what: &str) -> Result<bool> {
        match self.word(what)? {
            0 => Ok(false),
            1 => Ok(true),
            w => Err(self.bad(format!("parameter {what} = {w}, expected 0 or 1"))),
        }
    }

    /// A zero point: an int8 stored as its two's-complement i64 bits.
    fn i8(&mut self, what: &str) -> Result<i8> {
        let w = self.word(what)? as i64;
        i8::try_from(w).map_err(|_| self.bad(format!("parameter {what} = {w} is not an int8")))
    }

    fn conv(&mut self) -> Result<Conv2d> {
        Ok(Conv2d {
            kernel: self.pair("kernel")?,
            strides: self.pair("strides")?,
            dilations: self.pair("dilations")?,
            pads: self.quad("pads")?,
            groups: self.usize("groups")?,
            act: self.activation()?,
        })
    }

    fn qout(&mut self) -> Result<QOutParams> {
        let kind = self.word("output kind")?;
        let (scale, zero_point) = (self.f32("output scale")?, self.i8("output zero point")?);
        match kind {
            0 => Ok(QOutParams::F32),
            1 => Ok(QOutParams::I8 { scale, zero_point }),
            k => Err(self.bad(format!("unknown output kind {k}"))),
        }
    }

    fn f32(&mut self, what: &str) -> Result<f32> {
        let w = self.word(what)?;
        if w > u32::MAX as u64 {
            return Err(self.bad(format!("parameter {what} = {w:#x} is not an f32")));
        }
        Ok(f32::from_bits(w as u32))
    }

    fn activation(&mut self) -> Result<Activation> {
        let code = self.word("activation")?;
        let (p0, p1) = (self.f32("activation parameter")?, self.f32("activation parameter")?);
        Ok(match code {
            0 => Activation::None,
            1 => Activation::Relu,
            2 => Activation::LeakyRelu { alpha: p0 },
            3 => Activation::Clip { min: p0, max: p1 },
            4 => Activation::Sigmoid,
            5 => Activation::Tanh,
            6 => Activation::HardSigmoid { alpha: p0, beta: p1 },
            7 => Activation::HardSwish,
            8 => Activation::Silu,
            9 => Activation::Gelu,
            10 => Activation::GeluTanh,
            11 => Activation::Erf,
            12 => Activation::Sqrt,
            13 => Activation::Exp,
            14 => Activation::Log,
            15 => Activation::Abs,
            16 => Activation::Neg,
            17 => Activation::Reciprocal,
            18 => Activation::Floor,
            19 => Activation::Ceil,
            20 => Activation::Round,
            21 => Activation::Sign,
            22 => Activation::Softplus,
            23 => Activation::Softsign,
            24 => Activation::Elu { alpha: p0 },
            25 => Activation::Selu { alpha: p0, gamma: p1 },
            26 => Activation::Celu { alpha: p0 },
            27 => Activation::ThresholdedRelu { alpha: p0 },
            28 => Activation::Mish,
            29 => Activation::Sin,
            30 => Activation::Cos,
            c => return Err(self.bad(format!("unknown activation code {c}"))),
        })
    }

    fn done(self, op: Op) -> Result<Op> {
        if self.pos != self.words.len() {
            return Err(self.bad(format!("{} parameter words, expected {}", self.words.len(), self.pos)));
        }
        op.check_params().map_err(|reason| Error::BadStep { step: self.step, op: op.name(), reason })?;
        Ok(op)
    }
}

fn op_name(code: u32) -> &'static str {
    match code {
        1 => "Conv2d",
        2 => "Gemm",
        3 => "MaxPool2d",
        4 => "AvgPool2d",
        5 => "GlobalAvgPool",
        6 => "Activation",
        7 => "Binary",
        8 => "ChannelAffine",
        9 => "Softmax",
        10 => "Concat",
        11 => "Copy",
        12 => "Transpose",
        13 => "Lrn",
        14 => "Reduce",
        15 => "Slice",
        16 => "Broadcast",
        17 => "Gather",
        18 => "Where",
        19 => "LayerNorm",
        20 => "MatMul",
        21 => "Cast",
        22 => "ConvTranspose2d",
        23 => "Resize",
        24 => "Pad",
        25 => "Quantize",
        26 => "Dequantize",
        27 => "QConv2d",
        28 => "QGemm",
        29 => "Q4Gemm",
        30 => "Q4Conv2d",
        31 => "SpGemm",
        32 => "SpConv2d",
        33 => "QuantizeChannels",
        _ => "?",
    }
}

pub(crate) fn decode_op(step: usize, code: u32, words: &[u64]) -> Result<Op> {
    let mut p = Params { step, op: op_name(code), words, pos: 0 };
    let pool = |p: &mut Params<'_>| -> Result<Pool2d> {
        Ok(Pool2d {
            kernel: p.pair("kernel")?,
            strides: p.pair("strides")?,
            dilations: p.pair("dilations")?,
            pads: p.quad("pads")?,
            ceil_mode: p.bool("ceil_mode")?,
            count_include_pad: p.bool("count_include_pad")?,
        })
    };
    let op = match code {
        1 => Op::Conv2d(p.conv()?),
        25 => Op::Quantize { scale: p.f32("scale")?, zero_point: p.i8("zero point")? },
        33 => Op::QuantizeChannels { scale: p.f32("scale")?, zero_point: p.i8("zero point")? },
        26 => Op::Dequantize { scale: p.f32("scale")?, zero_point: p.i8("zero point")? },
        27 => Op::QConv2d { conv: p.conv()?, x_zp: p.i8("input zero point")?, out: p.qout()? },
        28 => Op::QGemm { act: p.activation()?, out: p.qout()? },
        29 => Op::Q4Gemm { act: p.activation()?, group: p.usize("group")? },
        30 => Op::Q4Conv2d { conv: p.conv()?, group: p.usize("group")? },
        31 => Op::SpGemm { act: p.activation()? },
        32 => Op::SpConv2d { conv: p.conv()? },
        2 => Op::Gemm(Gemm {
            trans_a: p.bool("trans_a")?,
            trans_b: p.bool("trans_b")?,
            alpha: p.f32("alpha")?,
            beta: p.f32("beta")?,
            act: p.activation()?,
        }),
        3 => Op::MaxPool2d(pool(&mut p)?),
        4 => Op::AvgPool2d(pool(&mut p)?),
        5 => Op::GlobalAvgPool,
        6 => Op::Activation(p.activation()?),
        7 => {
            let op = match p.word("binary op")? {
                1 => BinaryOp::Add,
                2 => BinaryOp::Sub,
                3 => BinaryOp::Mul,
                4 => BinaryOp::Div,
                5 => BinaryOp::Max,
                6 => BinaryOp::Min,
                7 => BinaryOp::Pow,
                8 => BinaryOp::PRelu,
                9 => BinaryOp::Mod,
                10 => BinaryOp::Fmod,
                c => return Err(p.bad(format!("unknown binary op code {c}"))),
            };
            Op::Binary { op, act: p.activation()? }
        }
        8 => Op::ChannelAffine { act: p.activation()? },
        9 => Op::Softmax { axis: p.usize("axis")?, coerce_2d: p.bool("coerce_2d")? },
        10 => Op::Concat { axis: p.usize("axis")? },
        11 => Op::Copy,
        12 => {
            let rank = p.rank()?;
            let mut axes = [0usize; crate::format::MAX_RANK];
            for a in axes.iter_mut().take(rank) {
                *a = p.usize("perm")?;
            }
            let perm = Perm::new(&axes[..rank]).ok_or_else(|| p.bad(format!("{:?} is not a permutation", &axes[..rank])))?;
            Op::Transpose { perm }
        }
        13 => Op::Lrn(LrnParams { size: p.usize("size")?, alpha: p.f32("alpha")?, beta: p.f32("beta")?, bias: p.f32("bias")? }),
        14 => {
            let code = p.word("reduce op")?;
            let op = match code.checked_sub(1).and_then(|i| REDUCE_OPS.get(i as usize)) {
                Some(&op) => op,
                None => return Err(p.bad(format!("unknown reduce op code {code}"))),
            };
            let axes = p.word("axes")?;
            if axes >> crate::format::MAX_RANK != 0 {
                return Err(p.bad(format!("axes mask {axes:#x} names axes beyond {}", crate::format::MAX_RANK)));
            }
            Op::Reduce { op, axes: axes as u32, keepdims: p.bool("keepdims")? }
        }
        15 => {
            let rank = p.rank()?;
            let mut sp = SliceParams { rank, start: [0; 8], step: [1; 8], len: [0; 8] };
            for a in 0..rank {
                sp.start[a] = p.usize("start")?;
                sp.step[a] = p.word("step")? as i64;
                sp.len[a] = p.usize("length")?;
            }
            Op::Slice(sp)
        }
        16 => {
            let rank = p.rank()?;
            let mut d = [0usize; crate::format::MAX_RANK];
            for x in d.iter_mut().take(rank) {
                *x = p.usize("dimension")?;
            }
            let shape = crate::format::Shape::new(&d[..rank]).ok_or_else(|| p.bad(format!("shape {:?} is invalid", &d[..rank])))?;
            Op::Broadcast { shape }
        }
        17 => Op::Gather { axis: p.usize("axis")? },
        18 => Op::Where,
        19 => Op::LayerNorm { axis: p.usize("axis")?, epsilon: p.f32("epsilon")? },
        20 => Op::MatMul { act: p.activation()? },
        21 => {
            let code = p.word("element type")?;
            let to = u8::try_from(code)
                .ok()
                .and_then(crate::format::DType::from_code)
                .ok_or_else(|| p.bad(format!("unknown element type code {code}")))?;
            Op::Cast { to }
        }
        22 => Op::ConvTranspose2d(ConvTranspose2d {
            kernel: p.pair("kernel")?,
            strides: p.pair("strides")?,
            dilations: p.pair("dilations")?,
            pads: p.quad("pads")?,
            output_padding: p.pair("output_padding")?,
            groups: p.usize("groups")?,
        }),
        23 => {
            let mode = match p.word("mode")? {
                0 => ResizeMode::Nearest,
                1 => ResizeMode::Linear,
                2 => ResizeMode::Cubic,
                m => return Err(p.bad(format!("unknown resize mode {m}"))),
            };
            let c = p.word("coordinate transform")?;
            let coord = *COORDS.get(c as usize).ok_or_else(|| p.bad(format!("unknown coordinate transform {c}")))?;
            let nr = p.word("nearest mode")?;
            let nearest = *NEAREST.get(nr as usize).ok_or_else(|| p.bad(format!("unknown nearest mode {nr}")))?;
            let params = ResizeParams {
                mode,
                coord,
                nearest,
                cubic_coeff_a: p.f32("cubic_coeff_a")?,
                exclude_outside: p.bool("exclude_outside")?,
                extrapolation_value: p.f32("extrapolation_value")?,
            };
            let scales = [p.f32("scale")?, p.f32("scale")?];
            let roi = [p.f32("roi")?, p.f32("roi")?, p.f32("roi")?, p.f32("roi")?];
            Op::Resize(Resize { params, scales, roi, out: p.pair("output size")? })
        }
        24 => {
            let mode = match p.word("mode")? {
                0 => PadMode::Constant,
                1 => PadMode::Reflect,
                2 => PadMode::Edge,
                3 => PadMode::Wrap,
                m => return Err(p.bad(format!("unknown pad mode {m}"))),
            };
            let rank = p.rank()?;
            let value = p.f32("value")?;
            let mut pp = PadParams { mode, rank, begin: [0; 8], end: [0; 8], value };
            for a in 0..rank {
                pp.begin[a] = p.usize("pad")?;
            }
            for a in 0..rank {
                pp.end[a] = p.usize("pad")?;
            }
            Op::Pad(pp)
        }
        _ => return Err(Error::UnknownOp { step, code }),
    };
    p.done(op)
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
            Op::Broadcast { shape: crate::format::Shape::new(&[2, 3, 4]).unwrap() },
            Op::Gather { axis: 1 },
            Op::Where,
            Op::LayerNorm { axis: 2, epsilon: 1e-5 },
            Op::MatMul { act: Activation::Gelu },
            Op::Cast { to: crate::format::DType::I64 },
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
            encode_params(&op, &mut words);
            assert_eq!(decode_op(0, op.code(), &words).unwrap(), op);
            // One word too few or too many is an error naming the step.
            let short = &words[..words.len().saturating_sub(1)];
            if !words.is_empty() {
                assert!(matches!(decode_op(0, op.code(), short), Err(Error::BadStep { .. })));
            }
            let mut long = words.clone();
            long.push(0);
            assert!(matches!(decode_op(0, op.code(), &long), Err(Error::BadStep { .. })));
        }
        assert!(matches!(decode_op(7, 999, &[]), Err(Error::UnknownOp { step: 7, code: 999 })));
    }
}
