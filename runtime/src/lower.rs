//! Lowering: every step of a validated file turned, once at open, into a
//! [`Step`] the executors run: the kernel's geometry ([`StepKind`]) and the
//! byte location of every operand. Running a step is then a match and a
//! kernel call, with no shape arithmetic, lookups or allocation. The CPU
//! executor (`cpu::exec`) and the CUDA lowering (`cuda::launch`) both start
//! from a [`Program`].

use crate::arena::Loc;
use crate::cpu::exec::cast;
use crate::error::{Error, Result};
use jetrt_format::op::{Meta, Op, QOutParams, Q8_K_ALIGN};
use jetrt_format::reader::Decoded;
use jetrt_format::shape as ops;
use jetrt_format::tensors::Storage;
use jetrt_format::{DType, Shape, MAX_RANK};
use jetrt_kernels::cpu::conv::Conv2dShape;
use jetrt_kernels::cpu::conv_transpose::ConvTranspose2dShape;
use jetrt_kernels::cpu::elementwise::BinaryOp;
use jetrt_kernels::cpu::gemm;
use jetrt_kernels::cpu::int8;
use jetrt_kernels::cpu::lrn::LrnParams;
use jetrt_kernels::cpu::pool::Pool2dShape;
use jetrt_kernels::cpu::reduce::ReduceOp;
use jetrt_kernels::cpu::resize::{axis_taps, AxisTaps, CoordTransform};
use jetrt_kernels::cpu::strided;
use jetrt_kernels::cpu::strided::PadMode;
use jetrt_kernels::cpu::Activation;
use std::ops::Range;

/// What kind of bias a Gemm's C input is, once broadcast to `[M, N]`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GemmBias {
    None,
    /// Per column (`[N]` or `[1, N]`).
    Col,
    /// Per row (`[M, 1]`).
    Row,
    /// Any other broadcast, by strides (0 on broadcast axes).
    Strided {
        rs: usize,
        cs: usize,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum StepKind {
    Conv {
        shape: Conv2dShape,
        act: Activation,
        bias: bool,
    },
    Gemm {
        m: usize,
        k: usize,
        n: usize,
        trans_a: bool,
        trans_b: bool,
        alpha: f32,
        beta: f32,
        act: Activation,
        bias: GemmBias,
    },
    MaxPool(Pool2dShape),
    MaxPoolI8(Pool2dShape),
    AvgPool(Pool2dShape, bool),
    GlobalAvgPool {
        planes: usize,
        len: usize,
    },
    Act(Activation),
    Binary {
        op: BinaryOp,
        act: Activation,
        a: Shape,
        b: Shape,
        out: Shape,
    },
    Affine {
        outer: usize,
        channels: usize,
        inner: usize,
        act: Activation,
    },
    Softmax {
        outer: usize,
        n: usize,
        inner: usize,
    },
    Concat {
        outer: usize,
        inner: usize,
        total: usize,
    },
    Copy,
    Transpose {
        input: Shape,
        perm: [usize; MAX_RANK],
    },
    Lrn {
        p: LrnParams,
        batch: usize,
        channels: usize,
        inner: usize,
    },
    Reduce {
        op: ReduceOp,
        input: Shape,
        axes: u32,
    },
    LayerNorm {
        outer: usize,
        n: usize,
        epsilon: f32,
        bias: bool,
    },
    /// One GEMM per batch: element offsets of A and B for each.
    MatMul {
        m: usize,
        k: usize,
        n: usize,
        act: Activation,
        batches: Vec<(usize, usize)>,
    },
    // Byte kernels: any element type.
    /// `y[i] = x[base + Σ i_a · strides[a]]` (Slice, Broadcast).
    Strided {
        elem: usize,
        base: isize,
        strides: [isize; MAX_RANK],
        out: Shape,
    },
    Gather {
        elem: usize,
        outer: usize,
        axis_len: usize,
        inner: usize,
        wide: bool,
    },
    Where {
        elem: usize,
        strides: [[isize; MAX_RANK]; 3],
        out: Shape,
    },
    Cast {
        from: DType,
        to: DType,
    },
    Pad {
        elem: usize,
        mode: PadMode,
        input: Shape,
        begin: [usize; MAX_RANK],
        /// One element of the output type.
        value: [u8; 8],
        out: Shape,
    },
    ConvTranspose {
        shape: ConvTranspose2dShape,
        bias: bool,
    },
    Resize {
        planes: usize,
        in_h: usize,
        in_w: usize,
        ty: AxisTaps,
        tx: AxisTaps,
        extrapolation: f32,
    },
    // Quantized kernels: mixed element types.
    Quantize {
        scale: f32,
        zp: i8,
    },
    /// Per channel; `inner` values per channel and image.
    QuantizeChannels {
        inner: usize,
        scale: f32,
        zp: i8,
    },
    Dequantize {
        scale: f32,
        zp: i8,
    },
    QConv {
        shape: Conv2dShape,
        x_zp: i8,
        act: Activation,
        out: QOutParams,
    },
    QGemm {
        m: usize,
        k: usize,
        n: usize,
        act: Activation,
        out: QOutParams,
    },
    /// Weights as packed rows (int4 or sparse), float activations: a
    /// matrix product `[m, k] × rowsᵀ`.
    PackedGemm {
        m: usize,
        k: usize,
        n: usize,
        act: Activation,
        rows: Packing,
    },
    PackedConv {
        shape: Conv2dShape,
        act: Activation,
        rows: Packing,
    },
}

/// How a step's packed weight rows are stored; the operands after the
/// input are the format's tensors, then an optional bias.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Packing {
    /// Inputs: packed nibbles, float16 scales.
    Q4 { group: usize },
    /// Inputs: mask, values, row starts.
    Sparse,
}

impl Packing {
    /// Operands the format takes (after the activation input).
    pub(crate) fn operands(self) -> usize {
        match self {
            Packing::Q4 { .. } => 2,
            Packing::Sparse => 3,
        }
    }
}

impl StepKind {
    /// Multiply-accumulates, for throughput reports.
    pub(crate) fn macs(&self) -> u64 {
        match self {
            StepKind::Conv { shape, .. } => shape.macs() * shape.batch as u64,
            StepKind::Gemm { m, k, n, .. } => (*m as u64) * (*k as u64) * (*n as u64),
            StepKind::ConvTranspose { shape, .. } => {
                let s = shape;
                (s.batch * s.in_channels * s.in_h * s.in_w * (s.out_channels / s.groups) * s.kernel_h * s.kernel_w) as u64
            }
            StepKind::MatMul { m, k, n, batches, .. } => (*m as u64) * (*k as u64) * (*n as u64) * batches.len() as u64,
            StepKind::QConv { shape, .. } | StepKind::PackedConv { shape, .. } => shape.macs() * shape.batch as u64,
            StepKind::QGemm { m, k, n, .. } | StepKind::PackedGemm { m, k, n, .. } => (*m as u64) * (*k as u64) * (*n as u64),
            _ => 0,
        }
    }

    /// Whether the kernel moves bytes of any element type (rather than
    /// computing on float32).
    pub(crate) fn on_bytes(&self) -> bool {
        matches!(
            self,
            StepKind::Copy
                | StepKind::Strided { .. }
                | StepKind::Gather { .. }
                | StepKind::Where { .. }
                | StepKind::Cast { .. }
                | StepKind::Pad { .. }
        )
    }

    /// Whether the kernel mixes element types (quantized execution).
    pub(crate) fn quantized(&self) -> bool {
        matches!(
            self,
            StepKind::Quantize { .. }
                | StepKind::QuantizeChannels { .. }
                | StepKind::Dequantize { .. }
                | StepKind::MaxPoolI8(_)
                | StepKind::QConv { .. }
                | StepKind::QGemm { .. }
                | StepKind::PackedGemm { .. }
                | StepKind::PackedConv { .. }
        )
    }
}

/// A step ready to run: kernel geometry and operand locations (ranges into
/// [`Program::locs`]).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub kind: StepKind,
    pub name: &'static str,
    pub inputs: Range<usize>,
    pub outputs: Range<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    pub steps: Vec<Step>,
    pub locs: Vec<Loc>,
    /// Largest scratch (floats per worker) any step's CPU kernel needs.
    pub scratch_floats: usize,
    /// Largest scratch shared by the workers (Winograd's transformed
    /// weights) any step needs.
    pub shared_scratch_floats: usize,
}

pub(crate) fn loc(d: &Decoded, t: usize) -> Loc {
    let rec = &d.tensors[t];
    match rec.storage {
        Storage::Arena => Loc { in_arena: true, start: d.arena_offsets[t], len: rec.nbytes },
        Storage::Weights { offset } => Loc { in_arena: false, start: offset, len: rec.nbytes },
    }
}

fn prod(d: &[usize]) -> usize {
    d.iter().product()
}

/// Lowers every step of a validated file.
pub(crate) fn lower(d: &Decoded) -> Result<Program> {
    let mut plan = Program::default();
    for (si, step) in d.steps.iter().enumerate() {
        let ins = &d.operands[step.inputs.clone()];
        let outs = &d.operands[step.outputs.clone()];
        let metas: Vec<Meta> = ins.iter().map(|&t| Meta { dtype: d.tensors[t].dtype, shape: d.tensors[t].shape }).collect();
        let x = metas[0].shape;
        let xd = x.dims();
        let out = d.tensors[outs[0]].shape;
        let internal = |reason: String| Error::Internal { step: si, op: step.op.name(), reason };
        let kind = match &step.op {
            Op::Conv2d(c) => StepKind::Conv { shape: ops::conv_shape(c, &metas).map_err(internal)?, act: c.act, bias: ins.len() == 3 },
            Op::Gemm(g) => {
                let (m, k, n) = ops::gemm_dims(g, &metas).map_err(internal)?;
                let bias = match metas.get(2).map(|c| c.shape) {
                    None => GemmBias::None,
                    Some(c) => match c.dims() {
                        [nn] | [1, nn] if *nn == n && n > 1 => GemmBias::Col,
                        [mm, 1] if *mm == m && m > 1 => GemmBias::Row,
                        [] => GemmBias::Strided { rs: 0, cs: 0 },
                        [c1] => GemmBias::Strided { rs: 0, cs: usize::from(*c1 != 1) },
                        [c0, c1] => GemmBias::Strided { rs: if *c0 != 1 { *c1 } else { 0 }, cs: usize::from(*c1 != 1) },
                        other => return Err(internal(format!("C of shape {other:?}"))),
                    },
                };
                StepKind::Gemm { m, k, n, trans_a: g.trans_a, trans_b: g.trans_b, alpha: g.alpha, beta: g.beta, act: g.act, bias }
            }
            Op::MaxPool2d(p) if metas[0].dtype == DType::I8 => StepKind::MaxPoolI8(ops::pool_shape(p, &x).map_err(internal)?),
            Op::MaxPool2d(p) => StepKind::MaxPool(ops::pool_shape(p, &x).map_err(internal)?),
            Op::AvgPool2d(p) => StepKind::AvgPool(ops::pool_shape(p, &x).map_err(internal)?, p.count_include_pad),
            Op::GlobalAvgPool => StepKind::GlobalAvgPool { planes: xd[0] * xd[1], len: prod(&xd[2..]) },
            Op::Activation(a) => StepKind::Act(*a),
            Op::Binary { op, act } => StepKind::Binary { op: *op, act: *act, a: x, b: metas[1].shape, out },
            Op::ChannelAffine { act } => StepKind::Affine { outer: xd[0], channels: xd[1], inner: prod(&xd[2..]), act: *act },
            Op::Softmax { axis, coerce_2d } => {
                let a = *axis;
                if *coerce_2d {
                    StepKind::Softmax { outer: prod(&xd[..a]), n: prod(&xd[a..]), inner: 1 }
                } else {
                    StepKind::Softmax { outer: prod(&xd[..a]), n: xd[a], inner: prod(&xd[a + 1..]) }
                }
            }
            Op::Concat { axis } => {
                let od = out.dims();
                StepKind::Concat { outer: prod(&od[..*axis]), inner: prod(&od[*axis + 1..]), total: od[*axis] }
            }
            Op::Copy => StepKind::Copy,
            Op::Transpose { perm } => StepKind::Transpose { input: x, perm: perm.axes() },
            Op::Lrn(p) => StepKind::Lrn { p: *p, batch: xd[0], channels: xd[1], inner: prod(&xd[2..]) },
            Op::Reduce { op, axes, .. } => StepKind::Reduce { op: *op, input: x, axes: *axes },
            Op::LayerNorm { axis, epsilon } => {
                StepKind::LayerNorm { outer: prod(&xd[..*axis]), n: prod(&xd[*axis..]), epsilon: *epsilon, bias: ins.len() == 3 }
            }
            Op::MatMul { act } => {
                let (batch, m, k, n) = ops::matmul_dims(&metas).map_err(internal)?;
                let (ad, bd) = (xd, metas[1].shape.dims());
                let rank = batch.rank();
                let sa = strided::broadcast_strides(&ad[..ad.len() - 2], rank);
                let sb = strided::broadcast_strides(&bd[..bd.len() - 2], rank);
                let bdims = batch.dims();
                let mut batches = Vec::with_capacity(prod(bdims));
                let mut idx = [0usize; MAX_RANK];
                for _ in 0..prod(bdims) {
                    let (mut oa, mut ob) = (0usize, 0usize);
                    for a in 0..rank {
                        oa += idx[a] * sa[a] as usize;
                        ob += idx[a] * sb[a] as usize;
                    }
                    batches.push((oa * m * k, ob * k * n));
                    for a in (0..rank).rev() {
                        idx[a] += 1;
                        if idx[a] < bdims[a] {
                            break;
                        }
                        idx[a] = 0;
                    }
                }
                StepKind::MatMul { m, k, n, act: *act, batches }
            }
            Op::Slice(p) => {
                let elem = metas[0].dtype.size();
                let mut strides = [0isize; MAX_RANK];
                let mut base = 0isize;
                let mut acc = 1isize;
                for a in (0..p.rank).rev() {
                    strides[a] = acc * p.step[a] as isize;
                    base += acc * p.start[a] as isize;
                    acc *= xd[a] as isize;
                }
                StepKind::Strided { elem, base, strides, out }
            }
            Op::Broadcast { shape } => {
                let strides = strided::broadcast_strides(xd, shape.rank());
                StepKind::Strided { elem: metas[0].dtype.size(), base: 0, strides, out }
            }
            Op::Gather { axis } => StepKind::Gather {
                elem: metas[0].dtype.size(),
                outer: prod(&xd[..*axis]),
                axis_len: xd[*axis],
                inner: prod(&xd[*axis + 1..]),
                wide: metas[1].dtype == DType::I64,
            },
            Op::Where => {
                let rank = out.rank();
                let strides = [0, 1, 2].map(|i| strided::broadcast_strides(metas[i].shape.dims(), rank));
                StepKind::Where { elem: metas[1].dtype.size(), strides, out }
            }
            Op::Cast { to } => StepKind::Cast { from: metas[0].dtype, to: *to },
            Op::Pad(p) => {
                let dtype = metas[0].dtype;
                let mut value = [0u8; 8];
                let mut v = [0u8; 8];
                cast(DType::F32, dtype, &p.value.to_le_bytes(), &mut v);
                value[..dtype.size()].copy_from_slice(&v[..dtype.size()]);
                StepKind::Pad { elem: dtype.size(), mode: p.mode, input: x, begin: p.begin, value, out }
            }
            Op::ConvTranspose2d(c) => {
                StepKind::ConvTranspose { shape: ops::conv_transpose_shape(c, &metas).map_err(internal)?, bias: ins.len() == 3 }
            }
            Op::Quantize { scale, zero_point } => StepKind::Quantize { scale: *scale, zp: *zero_point },
            Op::QuantizeChannels { scale, zero_point } => {
                StepKind::QuantizeChannels { inner: metas[0].shape.dims().iter().skip(2).product(), scale: *scale, zp: *zero_point }
            }
            Op::Dequantize { scale, zero_point } => StepKind::Dequantize { scale: *scale, zp: *zero_point },
            Op::QConv2d { conv, x_zp, out: o } => {
                StepKind::QConv { shape: ops::q_conv_shape(&step.op, &metas).map_err(internal)?, x_zp: *x_zp, act: conv.act, out: *o }
            }
            Op::QGemm { act, out: o } => {
                let k = xd.last().copied().unwrap_or(0);
                StepKind::QGemm { m: prod(&xd[..xd.len() - 1]), k, n: metas[1].shape.dims()[0], act: *act, out: *o }
            }
            Op::Q4Gemm { act, .. } | Op::SpGemm { act } => {
                let rows = match step.op {
                    Op::Q4Gemm { group, .. } => Packing::Q4 { group },
                    _ => Packing::Sparse,
                };
                let k = xd.last().copied().unwrap_or(0);
                StepKind::PackedGemm { m: prod(&xd[..xd.len() - 1]), k, n: metas[1].shape.dims()[0], act: *act, rows }
            }
            Op::Q4Conv2d { conv, .. } | Op::SpConv2d { conv } => {
                let rows = match step.op {
                    Op::Q4Conv2d { group, .. } => Packing::Q4 { group },
                    _ => Packing::Sparse,
                };
                StepKind::PackedConv { shape: ops::q_conv_shape(&step.op, &metas).map_err(internal)?, act: conv.act, rows }
            }
            Op::Resize(rz) => {
                let rank = xd.len();
                let (in_h, in_w) = (xd[rank - 2], xd[rank - 1]);
                let crop = rz.params.coord == CoordTransform::TfCropAndResize;
                let roi = |a: usize| if crop { (rz.roi[a], rz.roi[a + 2]) } else { (0.0, 1.0) };
                let ty = axis_taps(&rz.params, in_h, rz.out[0], rz.scales[0], roi(0));
                let tx = axis_taps(&rz.params, in_w, rz.out[1], rz.scales[1], roi(1));
                StepKind::Resize { planes: prod(&xd[..rank - 2]), in_h, in_w, ty, tx, extrapolation: rz.params.extrapolation_value }
            }
        };
        plan.scratch_floats = plan.scratch_floats.max(scratch_floats(&step.op, &metas));
        let shared = match &kind {
            StepKind::Conv { shape, .. } => shape.shared_scratch_floats(),
            StepKind::ConvTranspose { shape, .. } => shape.shared_scratch_floats(),
            _ => 0,
        };
        plan.shared_scratch_floats = plan.shared_scratch_floats.max(shared);
        let start = plan.locs.len();
        plan.locs.extend(ins.iter().map(|&t| loc(d, t)));
        let mid = plan.locs.len();
        plan.locs.extend(outs.iter().map(|&t| loc(d, t)));
        plan.steps.push(Step { kind, name: step.op.name(), inputs: start..mid, outputs: mid..plan.locs.len() });
    }
    Ok(plan)
}

/// Scratch floats per worker the CPU kernels of step `op` need.
fn scratch_floats(op: &Op, inputs: &[Meta]) -> usize {
    match op {
        Op::Conv2d(c) => ops::conv_shape(c, inputs).map(|s| s.scratch_floats()).unwrap_or(0),
        Op::ConvTranspose2d(c) => ops::conv_transpose_shape(c, inputs).map(|s| s.scratch_floats()).unwrap_or(0),
        Op::Gemm(g) => ops::gemm_dims(g, inputs).map(|(m, k, n)| gemm::scratch_floats_for(m, k, n)).unwrap_or(0),
        Op::MatMul { .. } => ops::matmul_dims(inputs).map(|(_, m, k, n)| gemm::scratch_floats_for(m, k, n)).unwrap_or(0),
        Op::QConv2d { .. } | Op::Q4Conv2d { .. } | Op::SpConv2d { .. } => {
            let Ok(s) = ops::q_conv_shape(op, inputs) else { return 0 };
            match op {
                Op::QConv2d { .. } => int8::qconv_scratch_floats(&s),
                _ => s.scratch_floats(),
            }
        }
        Op::QGemm { .. } | Op::Q4Gemm { .. } | Op::SpGemm { .. } => {
            let (xd, n) = (inputs[0].shape.dims(), inputs.get(1).map_or(0, |w| w.shape.dims().first().copied().unwrap_or(0)));
            let k = xd.last().copied().unwrap_or(0);
            let m: usize = xd[..xd.len().saturating_sub(1)].iter().product();
            match op {
                Op::QGemm { .. } => int8::qgemm_scratch_floats(n, k.next_multiple_of(Q8_K_ALIGN)),
                _ => gemm::scratch_floats_for(m, k, n),
            }
        }
        _ => 0,
    }
}
