//! Executing a validated plan on the CPU.
//!
//! At open, every step is turned into a [`Prepared`] step: the kernel's
//! geometry and the byte location of every operand, computed once. Running a
//! step is then a match and a kernel call, with no shape arithmetic, lookups
//! or allocation.

pub(crate) mod pool;

use crate::arena::{self, Loc};
use crate::error::{Error, Result};
use crate::format::reader::Decoded;
use crate::format::tensors::Storage;
use crate::format::{Shape, MAX_RANK};
use crate::ops::{self, Meta, Op};
use jetrt_kernels::cpu::conv::{self, Conv2dShape};
use jetrt_kernels::cpu::gemm::{self, BSource, Bias, Epilogue, MatRef};
use jetrt_kernels::cpu::reference::{self as r, BinaryOp, LrnParams, Pool2dShape};
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
    Conv { shape: Conv2dShape, act: Activation, bias: bool },
    Gemm { m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool, alpha: f32, beta: f32, act: Activation, bias: GemmBias },
    MaxPool(Pool2dShape),
    AvgPool(Pool2dShape, bool),
    GlobalAvgPool { planes: usize, len: usize },
    Act(Activation),
    Binary { op: BinaryOp, act: Activation, a: Shape, b: Shape, out: Shape },
    Affine { outer: usize, channels: usize, inner: usize, act: Activation },
    Softmax { outer: usize, n: usize, inner: usize },
    Concat { outer: usize, inner: usize, total: usize },
    Copy,
    Transpose { input: Shape, perm: [usize; MAX_RANK] },
    Lrn { p: LrnParams, batch: usize, channels: usize, inner: usize },
}

impl Kernel {
    /// Multiply-accumulates, for throughput reports.
    pub(crate) fn macs(&self) -> u64 {
        match self {
            Kernel::Conv { shape, .. } => shape.macs() * shape.batch as u64,
            Kernel::Gemm { m, k, n, .. } => (*m as u64) * (*k as u64) * (*n as u64),
            _ => 0,
        }
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
        };
        let start = plan.locs.len();
        plan.locs.extend(ins.iter().map(|&t| loc(d, t)));
        let mid = plan.locs.len();
        plan.locs.extend(outs.iter().map(|&t| loc(d, t)));
        plan.steps.push(Prepared { kernel, name: step.op.name(), inputs: start..mid, outputs: mid..plan.locs.len() });
    }
    Ok(plan)
}

/// What a step needs besides its operands.
pub(crate) struct Ctx<'a> {
    pub isa: Isa,
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
    for (si, step) in plan.steps.iter().enumerate() {
        let started = times.is_some().then(std::time::Instant::now);
        let outs = &plan.locs[step.outputs.clone()];
        let (reads, mut out_bytes) = arena::split(arena, weights, outs).ok_or_else(|| Error::Internal {
            step: si,
            op: step.name,
            reason: "outputs overlap or lie outside the arena".into(),
        })?;
        let input = |i: usize| -> Result<&[f32]> {
            let loc = plan.locs[step.inputs.start + i];
            let b = reads.get(loc).ok_or_else(|| Error::Internal {
                step: si,
                op: step.name,
                reason: format!("input {i} overlaps an output"),
            })?;
            f32s(b, si, step.name)
        };
        let n_in = step.inputs.len();
        if let Kernel::Copy = step.kernel {
            // Byte for byte, whatever the element type.
            let loc = plan.locs[step.inputs.start];
            let x =
                reads.get(loc).ok_or_else(|| Error::Internal { step: si, op: step.name, reason: "input overlaps the output".into() })?;
            let y = &mut out_bytes[0];
            if x.len() != y.len() {
                return Err(Error::Internal { step: si, op: step.name, reason: format!("copies {} bytes into {}", x.len(), y.len()) });
            }
            y.copy_from_slice(x);
        } else {
            let y = f32s_mut(out_bytes[0], si, step.name)?;
            run_step(ctx, &step.kernel, n_in, &input, y, si, step.name)?;
        }
        if let (Some(t), Some(times)) = (started, times.as_deref_mut()) {
            if let Some(slot) = times.get_mut(si) {
                *slot += t.elapsed().as_secs_f64();
            }
        }
    }
    Ok(())
}

fn run_step<'a>(
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
            r::channel_affine(*outer, *channels, *inner, input(1)?, input(2)?, *act, input(0)?, y);
        }
        Kernel::Softmax { outer, n, inner } => r::softmax(*outer, *n, *inner, input(0)?, y),
        Kernel::Concat { outer, inner, total } => {
            let mut offset = 0;
            for i in 0..n_in {
                let x = input(i)?;
                let len = x.len().checked_div(outer * inner).unwrap_or(0);
                r::concat_part(x, *outer, len, offset, *total, *inner, y);
                offset += len;
            }
        }
        Kernel::Copy => {
            return Err(Error::Internal { step: si, op: name, reason: "Copy reached the float path".into() });
        }
        Kernel::Transpose { input: shape, perm } => r::transpose(input(0)?, shape.dims(), &perm[..shape.rank()], y),
        Kernel::Lrn { p, batch, channels, inner } => r::lrn(p, *batch, *channels, *inner, input(0)?, y),
    }
    Ok(())
}
