//! Executing a validated plan on the CPU.
//!
//! At open, every step is turned into a [`Prepared`] step: the kernel's
//! geometry and the byte location of every operand, computed once. Running a
//! step is then a match and a kernel call, with no shape arithmetic, lookups
//! or allocation.

pub(crate) mod pool;

use crate::arena::{self, Loc};
use crate::error::{Error, Result};
use jetrt_format::op::{Meta, Op, QOutParams, Q8_K_ALIGN};
use jetrt_format::reader::Decoded;
use jetrt_format::shape as ops;
use jetrt_format::tensors::Storage;
use jetrt_format::{DType, Shape, MAX_RANK};
use jetrt_kernels::cpu::conv::{self, Conv2dShape};
use jetrt_kernels::cpu::gemm::{self, ASource, BSource, Bias, Epilogue, MatRef, Q4Ref, Rows, SpRef};
use jetrt_kernels::cpu::qgemm::{self, QEpilogue, QIsa, QOut};
use jetrt_kernels::cpu::reference::resize::{axis_taps, AxisTaps, CoordTransform};
use jetrt_kernels::cpu::reference::{self as r, BinaryOp, ConvTranspose2dShape, LrnParams, PadMode, Pool2dShape, ReduceOp};
use jetrt_kernels::cpu::{Activation, Isa};
use jetrt_kernels::{Parallel, Scratch};
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
pub(crate) enum Kernel {
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
    fn operands(self) -> usize {
        match self {
            Packing::Q4 { .. } => 2,
            Packing::Sparse => 3,
        }
    }

    /// The rows from the step's operands 1..
    fn rows<'a>(self, input: &dyn Fn(usize) -> Result<&'a [u8]>, rows: usize, k: usize, si: usize, name: &'static str) -> Result<Rows<'a>> {
        Ok(match self {
            Packing::Q4 { group } => Rows::Q4(Q4Ref { packed: input(1)?, scales: view(input(2)?, si, name)?, rows, k, group }),
            Packing::Sparse => {
                Rows::Sparse(SpRef { mask: input(1)?, values: f32s(input(2)?, si, name)?, row_start: view(input(3)?, si, name)?, rows, k })
            }
        })
    }
}

impl Kernel {
    /// Multiply-accumulates, for throughput reports.
    pub(crate) fn macs(&self) -> u64 {
        match self {
            Kernel::Conv { shape, .. } => shape.macs() * shape.batch as u64,
            Kernel::Gemm { m, k, n, .. } => (*m as u64) * (*k as u64) * (*n as u64),
            Kernel::ConvTranspose { shape, .. } => {
                let s = shape;
                (s.batch * s.in_channels * s.in_h * s.in_w * (s.out_channels / s.groups) * s.kernel_h * s.kernel_w) as u64
            }
            Kernel::MatMul { m, k, n, batches, .. } => (*m as u64) * (*k as u64) * (*n as u64) * batches.len() as u64,
            Kernel::QConv { shape, .. } | Kernel::PackedConv { shape, .. } => shape.macs() * shape.batch as u64,
            Kernel::QGemm { m, k, n, .. } | Kernel::PackedGemm { m, k, n, .. } => (*m as u64) * (*k as u64) * (*n as u64),
            _ => 0,
        }
    }

    /// Whether the kernel moves bytes of any element type (rather than
    /// computing on float32).
    fn on_bytes(&self) -> bool {
        matches!(
            self,
            Kernel::Copy | Kernel::Strided { .. } | Kernel::Gather { .. } | Kernel::Where { .. } | Kernel::Cast { .. } | Kernel::Pad { .. }
        )
    }

    /// Whether the kernel mixes element types (quantized execution).
    fn quantized(&self) -> bool {
        matches!(
            self,
            Kernel::Quantize { .. }
                | Kernel::QuantizeChannels { .. }
                | Kernel::Dequantize { .. }
                | Kernel::MaxPoolI8(_)
                | Kernel::QConv { .. }
                | Kernel::QGemm { .. }
                | Kernel::PackedGemm { .. }
                | Kernel::PackedConv { .. }
        )
    }
}

/// A step ready to run: kernel geometry and operand locations (ranges into
/// [`Plan::locs`]).
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub kernel: Kernel,
    pub name: &'static str,
    pub inputs: Range<usize>,
    pub outputs: Range<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub steps: Vec<Prepared>,
    pub locs: Vec<Loc>,
    /// Largest scratch (floats per worker) any step's CPU kernel needs.
    pub scratch_floats: usize,
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

/// Builds the prepared plan of a validated file.
pub(crate) fn prepare(d: &Decoded) -> Result<Plan> {
    let mut plan = Plan::default();
    for (si, step) in d.steps.iter().enumerate() {
        let ins = &d.operands[step.inputs.clone()];
        let outs = &d.operands[step.outputs.clone()];
        let metas: Vec<Meta> = ins.iter().map(|&t| Meta { dtype: d.tensors[t].dtype, shape: d.tensors[t].shape }).collect();
        let x = metas[0].shape;
        let xd = x.dims();
        let out = d.tensors[outs[0]].shape;
        let internal = |reason: String| Error::Internal { step: si, op: step.op.name(), reason };
        let kernel = match &step.op {
            Op::Conv2d(c) => Kernel::Conv { shape: ops::conv_shape(c, &metas).map_err(internal)?, act: c.act, bias: ins.len() == 3 },
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
                Kernel::Gemm { m, k, n, trans_a: g.trans_a, trans_b: g.trans_b, alpha: g.alpha, beta: g.beta, act: g.act, bias }
            }
            Op::MaxPool2d(p) if metas[0].dtype == DType::I8 => Kernel::MaxPoolI8(ops::pool_shape(p, &x).map_err(internal)?),
            Op::MaxPool2d(p) => Kernel::MaxPool(ops::pool_shape(p, &x).map_err(internal)?),
            Op::AvgPool2d(p) => Kernel::AvgPool(ops::pool_shape(p, &x).map_err(internal)?, p.count_include_pad),
            Op::GlobalAvgPool => Kernel::GlobalAvgPool { planes: xd[0] * xd[1], len: prod(&xd[2..]) },
            Op::Activation(a) => Kernel::Act(*a),
            Op::Binary { op, act } => Kernel::Binary { op: *op, act: *act, a: x, b: metas[1].shape, out },
            Op::ChannelAffine { act } => Kernel::Affine { outer: xd[0], channels: xd[1], inner: prod(&xd[2..]), act: *act },
            Op::Softmax { axis, coerce_2d } => {
                let a = *axis;
                if *coerce_2d {
                    Kernel::Softmax { outer: prod(&xd[..a]), n: prod(&xd[a..]), inner: 1 }
                } else {
                    Kernel::Softmax { outer: prod(&xd[..a]), n: xd[a], inner: prod(&xd[a + 1..]) }
                }
            }
            Op::Concat { axis } => {
                let od = out.dims();
                Kernel::Concat { outer: prod(&od[..*axis]), inner: prod(&od[*axis + 1..]), total: od[*axis] }
            }
            Op::Copy => Kernel::Copy,
            Op::Transpose { perm } => Kernel::Transpose { input: x, perm: perm.axes() },
            Op::Lrn(p) => Kernel::Lrn { p: *p, batch: xd[0], channels: xd[1], inner: prod(&xd[2..]) },
            Op::Reduce { op, axes, .. } => Kernel::Reduce { op: *op, input: x, axes: *axes },
            Op::LayerNorm { axis, epsilon } => {
                Kernel::LayerNorm { outer: prod(&xd[..*axis]), n: prod(&xd[*axis..]), epsilon: *epsilon, bias: ins.len() == 3 }
            }
            Op::MatMul { act } => {
                let (batch, m, k, n) = ops::matmul_dims(&metas).map_err(internal)?;
                let (ad, bd) = (xd, metas[1].shape.dims());
                let rank = batch.rank();
                let sa = r::broadcast_strides(&ad[..ad.len() - 2], rank);
                let sb = r::broadcast_strides(&bd[..bd.len() - 2], rank);
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
                Kernel::MatMul { m, k, n, act: *act, batches }
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
                Kernel::Strided { elem, base, strides, out }
            }
            Op::Broadcast { shape } => {
                let strides = r::broadcast_strides(xd, shape.rank());
                Kernel::Strided { elem: metas[0].dtype.size(), base: 0, strides, out }
            }
            Op::Gather { axis } => Kernel::Gather {
                elem: metas[0].dtype.size(),
                outer: prod(&xd[..*axis]),
                axis_len: xd[*axis],
                inner: prod(&xd[*axis + 1..]),
                wide: metas[1].dtype == DType::I64,
            },
            Op::Where => {
                let rank = out.rank();
                let strides = [0, 1, 2].map(|i| r::broadcast_strides(metas[i].shape.dims(), rank));
                Kernel::Where { elem: metas[1].dtype.size(), strides, out }
            }
            Op::Cast { to } => Kernel::Cast { from: metas[0].dtype, to: *to },
            Op::Pad(p) => {
                let dtype = metas[0].dtype;
                let mut value = [0u8; 8];
                let mut v = [0u8; 8];
                cast(DType::F32, dtype, &p.value.to_le_bytes(), &mut v);
                value[..dtype.size()].copy_from_slice(&v[..dtype.size()]);
                Kernel::Pad { elem: dtype.size(), mode: p.mode, input: x, begin: p.begin, value, out }
            }
            Op::ConvTranspose2d(c) => {
                Kernel::ConvTranspose { shape: ops::conv_transpose_shape(c, &metas).map_err(internal)?, bias: ins.len() == 3 }
            }
            Op::Quantize { scale, zero_point } => Kernel::Quantize { scale: *scale, zp: *zero_point },
            Op::QuantizeChannels { scale, zero_point } => {
                Kernel::QuantizeChannels { inner: metas[0].shape.dims().iter().skip(2).product(), scale: *scale, zp: *zero_point }
            }
            Op::Dequantize { scale, zero_point } => Kernel::Dequantize { scale: *scale, zp: *zero_point },
            Op::QConv2d { conv, x_zp, out: o } => {
                Kernel::QConv { shape: ops::q_conv_shape(&step.op, &metas).map_err(internal)?, x_zp: *x_zp, act: conv.act, out: *o }
            }
            Op::QGemm { act, out: o } => {
                let k = xd.last().copied().unwrap_or(0);
                Kernel::QGemm { m: prod(&xd[..xd.len() - 1]), k, n: metas[1].shape.dims()[0], act: *act, out: *o }
            }
            Op::Q4Gemm { act, .. } | Op::SpGemm { act } => {
                let rows = match step.op {
                    Op::Q4Gemm { group, .. } => Packing::Q4 { group },
                    _ => Packing::Sparse,
                };
                let k = xd.last().copied().unwrap_or(0);
                Kernel::PackedGemm { m: prod(&xd[..xd.len() - 1]), k, n: metas[1].shape.dims()[0], act: *act, rows }
            }
            Op::Q4Conv2d { conv, .. } | Op::SpConv2d { conv } => {
                let rows = match step.op {
                    Op::Q4Conv2d { group, .. } => Packing::Q4 { group },
                    _ => Packing::Sparse,
                };
                Kernel::PackedConv { shape: ops::q_conv_shape(&step.op, &metas).map_err(internal)?, act: conv.act, rows }
            }
            Op::Resize(rz) => {
                let rank = xd.len();
                let (in_h, in_w) = (xd[rank - 2], xd[rank - 1]);
                let crop = rz.params.coord == CoordTransform::TfCropAndResize;
                let roi = |a: usize| if crop { (rz.roi[a], rz.roi[a + 2]) } else { (0.0, 1.0) };
                let ty = axis_taps(&rz.params, in_h, rz.out[0], rz.scales[0], roi(0));
                let tx = axis_taps(&rz.params, in_w, rz.out[1], rz.scales[1], roi(1));
                Kernel::Resize { planes: prod(&xd[..rank - 2]), in_h, in_w, ty, tx, extrapolation: rz.params.extrapolation_value }
            }
        };
        plan.scratch_floats = plan.scratch_floats.max(scratch_floats(&step.op, &metas));
        let start = plan.locs.len();
        plan.locs.extend(ins.iter().map(|&t| loc(d, t)));
        let mid = plan.locs.len();
        plan.locs.extend(outs.iter().map(|&t| loc(d, t)));
        plan.steps.push(Prepared { kernel, name: step.op.name(), inputs: start..mid, outputs: mid..plan.locs.len() });
    }
    Ok(plan)
}

/// Scratch floats per worker the CPU kernels of step `op` need.
fn scratch_floats(op: &Op, inputs: &[Meta]) -> usize {
    match op {
        Op::Conv2d(c) => ops::conv_shape(c, inputs).map(|s| s.scratch_floats()).unwrap_or(0),
        Op::Gemm(g) => ops::gemm_dims(g, inputs).map(|(m, k, n)| gemm::scratch_floats_for(m, k, n)).unwrap_or(0),
        Op::MatMul { .. } => ops::matmul_dims(inputs).map(|(_, m, k, n)| gemm::scratch_floats_for(m, k, n)).unwrap_or(0),
        Op::QConv2d { .. } | Op::Q4Conv2d { .. } | Op::SpConv2d { .. } => {
            let Ok(s) = ops::q_conv_shape(op, inputs) else { return 0 };
            match op {
                Op::QConv2d { .. } => qgemm::qconv_scratch_floats(&s),
                _ => s.scratch_floats(),
            }
        }
        Op::QGemm { .. } | Op::Q4Gemm { .. } | Op::SpGemm { .. } => {
            let (xd, n) = (inputs[0].shape.dims(), inputs.get(1).map_or(0, |w| w.shape.dims().first().copied().unwrap_or(0)));
            let k = xd.last().copied().unwrap_or(0);
            let m: usize = xd[..xd.len().saturating_sub(1)].iter().product();
            match op {
                Op::QGemm { .. } => qgemm::qgemm_scratch_floats(n, k.next_multiple_of(Q8_K_ALIGN)),
                _ => gemm::scratch_floats_for(m, k, n),
            }
        }
        _ => 0,
    }
}

/// What a step needs besides its operands.
pub(crate) struct Ctx<'a> {
    pub isa: Isa,
    pub qisa: QIsa,
    pub par: &'a dyn Parallel,
    pub scratch: &'a Scratch,
}

fn f32s<'a>(bytes: &'a [u8], si: usize, op: &'static str) -> Result<&'a [f32]> {
    bytemuck::try_cast_slice(bytes).map_err(|e| Error::Internal { step: si, op, reason: format!("operand not viewable as f32: {e:?}") })
}

fn f32s_mut<'a>(bytes: &'a mut [u8], si: usize, op: &'static str) -> Result<&'a mut [f32]> {
    bytemuck::try_cast_slice_mut(bytes).map_err(|e| Error::Internal { step: si, op, reason: format!("output not viewable as f32: {e:?}") })
}

/// Runs every step of `plan` over `arena`; with `times`, adds each step's
/// duration (seconds) to its slot.
pub(crate) fn run_plan(ctx: &Ctx<'_>, plan: &Plan, arena: &mut [u8], weights: &[u8], mut times: Option<&mut [f64]>) -> Result<()> {
    for si in 0..plan.steps.len() {
        let started = times.is_some().then(std::time::Instant::now);
        run_step(ctx, plan, si, arena, weights)?;
        if let (Some(t), Some(times)) = (started, times.as_deref_mut()) {
            if let Some(slot) = times.get_mut(si) {
                *slot += t.elapsed().as_secs_f64();
            }
        }
    }
    Ok(())
}

/// Runs step `si` of `plan` over `arena`.
pub(crate) fn run_step(ctx: &Ctx<'_>, plan: &Plan, si: usize, arena: &mut [u8], weights: &[u8]) -> Result<()> {
    let step = &plan.steps[si];
    let outs = &plan.locs[step.outputs.clone()];
    let (reads, mut out_bytes) = arena::split(arena, weights, outs).ok_or_else(|| Error::Internal {
        step: si,
        op: step.name,
        reason: "outputs overlap or lie outside the arena".into(),
    })?;
    let input = |i: usize| -> Result<&[f32]> {
        let loc = plan.locs[step.inputs.start + i];
        let b =
            reads.get(loc).ok_or_else(|| Error::Internal { step: si, op: step.name, reason: format!("input {i} overlaps an output") })?;
        f32s(b, si, step.name)
    };
    let n_in = step.inputs.len();
    let bytes = |i: usize| -> Result<&[u8]> {
        let loc = plan.locs[step.inputs.start + i];
        reads.get(loc).ok_or_else(|| Error::Internal { step: si, op: step.name, reason: format!("input {i} overlaps an output") })
    };
    if step.kernel.on_bytes() {
        run_bytes_step(&step.kernel, &bytes, out_bytes[0], si, step.name)?;
    } else if step.kernel.quantized() {
        run_quant_step(ctx, &step.kernel, n_in, &bytes, out_bytes[0], si, step.name)?;
    } else {
        let y = f32s_mut(out_bytes[0], si, step.name)?;
        run_step_f32(ctx, &step.kernel, n_in, &input, y, si, step.name)?;
    }
    Ok(())
}

fn view<'a, T: bytemuck::AnyBitPattern>(b: &'a [u8], si: usize, op: &'static str) -> Result<&'a [T]> {
    bytemuck::try_cast_slice(b).map_err(|e| Error::Internal {
        step: si,
        op,
        reason: format!("operand not viewable as {}: {e:?}", std::any::type_name::<T>()),
    })
}

fn run_quant_step<'a>(
    ctx: &Ctx<'_>,
    kernel: &Kernel,
    n_in: usize,
    input: &dyn Fn(usize) -> Result<&'a [u8]>,
    y: &mut [u8],
    si: usize,
    name: &'static str,
) -> Result<()> {
    let i8s = |b: &'a [u8]| -> &'a [i8] { bytemuck::cast_slice(b) };
    fn qout<'y>(o: &QOutParams, y: &'y mut [u8], si: usize, name: &'static str) -> Result<QOut<'y>> {
        Ok(match *o {
            QOutParams::F32 => QOut::F32(f32s_mut(y, si, name)?),
            QOutParams::I8 { scale, zero_point } => QOut::I8 { y: bytemuck::cast_slice_mut(y), scale, zero_point },
        })
    }
    match kernel {
        Kernel::Quantize { scale, zp } => {
            qgemm::quantize_par(ctx.qisa, ctx.par, f32s(input(0)?, si, name)?, *scale, *zp, bytemuck::cast_slice_mut(y))
        }
        Kernel::QuantizeChannels { inner, scale, zp } => {
            let (mul, add): (&[u16], &[u16]) = (view(input(1)?, si, name)?, view(input(2)?, si, name)?);
            let x = f32s(input(0)?, si, name)?;
            qgemm::quantize_channels_par(ctx.qisa, ctx.par, x, mul, add, *inner, *scale, *zp, bytemuck::cast_slice_mut(y))
        }
        Kernel::Dequantize { scale, zp } => qgemm::dequantize(i8s(input(0)?), *scale, *zp, f32s_mut(y, si, name)?),
        Kernel::MaxPoolI8(s) => qgemm::max_pool2d_i8(ctx.par, s, i8s(input(0)?), bytemuck::cast_slice_mut(y)),
        Kernel::QConv { shape, x_zp, act, out } => {
            let ep = QEpilogue { bias: view(input(2)?, si, name)?, deq: view(input(3)?, si, name)?, act: *act };
            let pad = if n_in > 4 { Some(i8s(input(4)?)) } else { None };
            qgemm::qconv2d(ctx.qisa, ctx.par, ctx.scratch, shape, i8s(input(0)?), *x_zp, pad, i8s(input(1)?), &ep, qout(out, y, si, name)?);
        }
        Kernel::QGemm { m, k, n, act, out } => {
            let ep = QEpilogue { bias: view(input(2)?, si, name)?, deq: view(input(3)?, si, name)?, act: *act };
            qgemm::qgemm(ctx.qisa, ctx.par, ctx.scratch, *m, *k, i8s(input(0)?), i8s(input(1)?), *n, &ep, qout(out, y, si, name)?);
        }
        Kernel::PackedGemm { m, k, n, act, rows } => {
            let w = rows.rows(input, *n, *k, si, name)?;
            let bias_at = 1 + rows.operands();
            let bias = if n_in > bias_at { Bias::Col(f32s(input(bias_at)?, si, name)?) } else { Bias::None };
            let ep = Epilogue { alpha: 1.0, beta: 1.0, bias, act: *act };
            let a = MatRef::row_major(f32s(input(0)?, si, name)?, *m, *k);
            gemm::gemm_any(ctx.isa, ctx.par, ctx.scratch, ASource::Mat(a), BSource::PackedT(w), &ep, f32s_mut(y, si, name)?);
        }
        Kernel::PackedConv { shape, act, rows } => {
            let k = shape.in_channels * shape.kernel_h * shape.kernel_w;
            let w = rows.rows(input, shape.out_channels, k, si, name)?;
            let bias_at = 1 + rows.operands();
            let b = if n_in > bias_at { Some(f32s(input(bias_at)?, si, name)?) } else { None };
            let x = f32s(input(0)?, si, name)?;
            conv::conv2d_packed(ctx.isa, ctx.par, ctx.scratch, shape, x, w, b, *act, f32s_mut(y, si, name)?);
        }
        _ => return Err(Error::Internal { step: si, op: name, reason: "a float kernel reached the quantized path".into() }),
    }
    Ok(())
}

fn run_bytes_step<'a>(
    kernel: &Kernel,
    input: &dyn Fn(usize) -> Result<&'a [u8]>,
    y: &mut [u8],
    si: usize,
    name: &'static str,
) -> Result<()> {
    let internal = |reason: String| Error::Internal { step: si, op: name, reason };
    match kernel {
        Kernel::Copy => {
            let x = input(0)?;
            if x.len() != y.len() {
                return Err(internal(format!("copies {} bytes into {}", x.len(), y.len())));
            }
            y.copy_from_slice(x);
        }
        Kernel::Strided { elem, base, strides, out } => r::strided_copy(*elem, input(0)?, *base, &strides[..out.rank()], out.dims(), y),
        Kernel::Gather { elem, outer, axis_len, inner, wide } => {
            let raw = input(1)?;
            // Indices are few (token ids, a handful of positions): convert
            // them in fixed chunks on the stack rather than allocating.
            let n_idx = if *wide { raw.len() / 8 } else { raw.len() / 4 };
            let block = inner * elem;
            let mut chunk = [0i64; 64];
            let per_outer = n_idx * block;
            let all = input(0)?;
            for o in 0..*outer {
                let data = &all[o * axis_len * block..(o + 1) * axis_len * block];
                let mut done = 0;
                while done < n_idx {
                    let c = (n_idx - done).min(chunk.len());
                    for (j, v) in chunk[..c].iter_mut().enumerate() {
                        let i = done + j;
                        *v = if *wide {
                            i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
                        } else {
                            i32::from_le_bytes(raw[i * 4..i * 4 + 4].try_into().expect("4 bytes")) as i64
                        };
                    }
                    let dst = &mut y[o * per_outer + done * block..o * per_outer + (done + c) * block];
                    r::gather(*elem, data, 1, *axis_len, *inner, &chunk[..c], dst).map_err(|bad| Error::IndexOutOfRange {
                        step: si,
                        op: name,
                        index: bad,
                        len: *axis_len,
                    })?;
                    done += c;
                }
            }
        }
        Kernel::Where { elem, strides, out } => {
            let rank = out.rank();
            r::select(
                *elem,
                (input(0)?, &strides[0][..rank]),
                (input(1)?, &strides[1][..rank]),
                (input(2)?, &strides[2][..rank]),
                out.dims(),
                y,
            );
        }
        Kernel::Cast { from, to } => cast(*from, *to, input(0)?, y),
        Kernel::Pad { elem, mode, input: shape, begin, value, out } => {
            r::pad(*elem, input(0)?, shape.dims(), &begin[..out.rank()], *mode, &value[..*elem], out.dims(), y)
        }
        _ => return Err(internal("a float kernel reached the byte path".into())),
    }
    Ok(())
}

/// ONNX Cast between the types of [`ops::CAST_TYPES`]: float → integer
/// truncates toward zero (saturating, NaN → 0), anything → bool is `!= 0`.
fn cast(from: DType, to: DType, x: &[u8], y: &mut [u8]) {
    let n = x.len() / from.size();
    let get_f = |i: usize| -> f64 {
        match from {
            DType::F32 => f32::from_le_bytes(x[i * 4..i * 4 + 4].try_into().expect("4 bytes")) as f64,
            DType::F64 => f64::from_le_bytes(x[i * 8..i * 8 + 8].try_into().expect("8 bytes")),
            _ => get_i(from, x, i) as f64,
        }
    };
    let float_src = matches!(from, DType::F32 | DType::F64);
    for i in 0..n {
        match to {
            DType::F32 => y[i * 4..i * 4 + 4].copy_from_slice(&(get_f(i) as f32).to_le_bytes()),
            DType::F64 => y[i * 8..i * 8 + 8].copy_from_slice(&get_f(i).to_le_bytes()),
            DType::Bool => y[i] = u8::from(if float_src { get_f(i) != 0.0 } else { get_i(from, x, i) != 0 }),
            _ => {
                let v = if float_src { get_f(i) as i64 } else { get_i(from, x, i) };
                match to {
                    DType::I64 => y[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes()),
                    DType::I32 => y[i * 4..i * 4 + 4].copy_from_slice(&(v as i32).to_le_bytes()),
                    DType::I8 => y[i] = v as i8 as u8,
                    DType::U8 => y[i] = v as u8,
                    _ => {}
                }
            }
        }
    }
}

fn get_i(dtype: DType, x: &[u8], i: usize) -> i64 {
    match dtype {
        DType::I64 => i64::from_le_bytes(x[i * 8..i * 8 + 8].try_into().expect("8 bytes")),
        DType::I32 => i32::from_le_bytes(x[i * 4..i * 4 + 4].try_into().expect("4 bytes")) as i64,
        DType::I8 => x[i] as i8 as i64,
        DType::U8 | DType::Bool => x[i] as i64,
        _ => 0,
    }
}

fn run_step_f32<'a>(
    ctx: &Ctx<'_>,
    kernel: &Kernel,
    n_in: usize,
    input: &dyn Fn(usize) -> Result<&'a [f32]>,
    y: &mut [f32],
    si: usize,
    name: &'static str,
) -> Result<()> {
    match kernel {
        Kernel::Conv { shape, act, bias } => {
            let b = if *bias { Some(input(2)?) } else { None };
            conv::conv2d(ctx.isa, ctx.par, ctx.scratch, shape, input(0)?, input(1)?, b, *act, y);
        }
        Kernel::Gemm { m, k, n, trans_a, trans_b, alpha, beta, act, bias } => {
            let (m, k, n) = (*m, *k, *n);
            let a = if *trans_a { MatRef::row_major(input(0)?, k, m).t() } else { MatRef::row_major(input(0)?, m, k) };
            let b = if *trans_b { MatRef::row_major(input(1)?, n, k).t() } else { MatRef::row_major(input(1)?, k, n) };
            let bias = match bias {
                GemmBias::None => Bias::None,
                GemmBias::Col => Bias::Col(input(2)?),
                GemmBias::Row => Bias::Row(input(2)?),
                GemmBias::Strided { rs, cs } => Bias::Mat(MatRef { data: input(2)?, rows: m, cols: n, rs: *rs, cs: *cs }),
            };
            let ep = Epilogue { alpha: *alpha, beta: *beta, bias, act: *act };
            gemm::gemm(ctx.isa, ctx.par, ctx.scratch, a, BSource::Mat(b), &ep, y);
        }
        Kernel::MaxPool(s) => r::max_pool2d(ctx.par, s, input(0)?, y),
        Kernel::AvgPool(s, cip) => r::avg_pool2d(ctx.par, s, *cip, input(0)?, y),
        Kernel::GlobalAvgPool { planes, len } => r::global_avg_pool(*planes, *len, input(0)?, y),
        Kernel::Act(a) => {
            y.copy_from_slice(input(0)?);
            a.apply_slice(y);
        }
        Kernel::Binary { op, act, a, b, out } => {
            r::binary_par(ctx.par, *op, *act, input(0)?, a.dims(), input(1)?, b.dims(), y, out.dims());
        }
        Kernel::Affine { outer, channels, inner, act } => {
            r::channel_affine_par(ctx.isa, ctx.par, *outer, *channels, *inner, input(1)?, input(2)?, *act, input(0)?, y);
        }
        Kernel::Softmax { outer, n, inner } => r::softmax_par(ctx.isa, ctx.par, *outer, *n, *inner, input(0)?, y),
        Kernel::Concat { outer, inner, total } => {
            let mut offset = 0;
            for i in 0..n_in {
                let x = input(i)?;
                let len = x.len().checked_div(outer * inner).unwrap_or(0);
                r::concat_part(x, *outer, len, offset, *total, *inner, y);
                offset += len;
            }
        }
        Kernel::Copy
        | Kernel::Strided { .. }
        | Kernel::Gather { .. }
        | Kernel::Where { .. }
        | Kernel::Cast { .. }
        | Kernel::Pad { .. }
        | Kernel::Quantize { .. }
        | Kernel::QuantizeChannels { .. }
        | Kernel::Dequantize { .. }
        | Kernel::MaxPoolI8(_)
        | Kernel::QConv { .. }
        | Kernel::QGemm { .. }
        | Kernel::PackedGemm { .. }
        | Kernel::PackedConv { .. } => {
            return Err(Error::Internal { step: si, op: name, reason: "a byte or quantized kernel reached the float path".into() });
        }
        Kernel::ConvTranspose { shape, bias } => {
            let b = if *bias { Some(input(2)?) } else { None };
            r::conv_transpose2d(ctx.par, shape, input(0)?, input(1)?, b, y);
        }
        Kernel::Resize { planes, in_h, in_w, ty, tx, extrapolation } => {
            r::resize2d(ctx.par, *planes, *in_h, *in_w, ty, tx, *extrapolation, input(0)?, y);
        }
        Kernel::Reduce { op, input: shape, axes } => r::reduce(*op, input(0)?, shape.dims(), *axes, y),
        Kernel::LayerNorm { outer, n, epsilon, bias } => {
            let b = if *bias { Some(input(2)?) } else { None };
            r::layer_norm(*outer, *n, *epsilon, input(1)?, b, input(0)?, y);
        }
        Kernel::MatMul { m, k, n, act, batches } => {
            let (m, k, n) = (*m, *k, *n);
            let (a, b) = (input(0)?, input(1)?);
            let ep = Epilogue { alpha: 1.0, beta: 1.0, bias: Bias::None, act: *act };
            for (i, &(oa, ob)) in batches.iter().enumerate() {
                let am = MatRef::row_major(&a[oa..oa + m * k], m, k);
                let bm = MatRef::row_major(&b[ob..ob + k * n], k, n);
                gemm::gemm(ctx.isa, ctx.par, ctx.scratch, am, BSource::Mat(bm), &ep, &mut y[i * m * n..(i + 1) * m * n]);
            }
        }
        Kernel::Transpose { input: shape, perm } => r::transpose(input(0)?, shape.dims(), &perm[..shape.rank()], y),
        Kernel::Lrn { p, batch, channels, inner } => r::lrn(p, *batch, *channels, *inner, input(0)?, y),
    }
    Ok(())
}
