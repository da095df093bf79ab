//! The CPU executor: runs a lowered [`Program`] step by step over the
//! arena, on the thread pool.

use crate::arena;
use crate::error::{Error, Result};
use crate::lower::{GemmBias, Packing, Program, StepKind};
use jetrt_format::op::QOutParams;
use jetrt_format::DType;
use jetrt_kernels::cpu::conv::{self};
use jetrt_kernels::cpu::gemm::{self, ASource, BSource, Bias, Epilogue, MatRef};
use jetrt_kernels::cpu::int8::{self, QEpilogue, QIsa, QOut};
use jetrt_kernels::cpu::packed::{Q4Ref, Rows, SpRef};
use jetrt_kernels::cpu::Isa;
use jetrt_kernels::cpu::{conv_transpose, elementwise, layout, lrn, pool, reduce, resize, softmax, strided};
use jetrt_kernels::{Parallel, Scratch, Serial};

/// What a step needs besides its operands.
pub(crate) struct Ctx<'a> {
    pub isa: Isa,
    pub qisa: QIsa,
    pub par: &'a dyn Parallel,
    pub scratch: &'a Scratch,
    /// Per step, whether it is split over `par` (else it runs on the
    /// calling thread): [`super::cost::parallel_steps`].
    pub parallel: &'a [bool],
}

fn f32s<'a>(bytes: &'a [u8], si: usize, op: &'static str) -> Result<&'a [f32]> {
    bytemuck::try_cast_slice(bytes).map_err(|e| Error::Internal { step: si, op, reason: format!("operand not viewable as f32: {e:?}") })
}

fn f32s_mut<'a>(bytes: &'a mut [u8], si: usize, op: &'static str) -> Result<&'a mut [f32]> {
    bytemuck::try_cast_slice_mut(bytes).map_err(|e| Error::Internal { step: si, op, reason: format!("output not viewable as f32: {e:?}") })
}

/// Runs every step of `plan` over `arena`; with `times`, adds each step's
/// duration (seconds) to its slot.
pub(crate) fn run_plan(ctx: &Ctx<'_>, plan: &Program, arena: &mut [u8], weights: &[u8], mut times: Option<&mut [f64]>) -> Result<()> {
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
pub(crate) fn run_step(ctx: &Ctx<'_>, plan: &Program, si: usize, arena: &mut [u8], weights: &[u8]) -> Result<()> {
    let serial = Ctx { par: &Serial, ..*ctx };
    let ctx = if ctx.parallel.get(si).copied().unwrap_or(true) { ctx } else { &serial };
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
    if step.kind.on_bytes() {
        run_bytes_step(&step.kind, &bytes, out_bytes[0], si, step.name)?;
    } else if step.kind.quantized() {
        run_quant_step(ctx, &step.kind, n_in, &bytes, out_bytes[0], si, step.name)?;
    } else {
        let y = f32s_mut(out_bytes[0], si, step.name)?;
        run_step_f32(ctx, &step.kind, n_in, &input, y, si, step.name)?;
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
    kernel: &StepKind,
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
        StepKind::Quantize { scale, zp } => {
            int8::quantize_par(ctx.qisa, ctx.par, f32s(input(0)?, si, name)?, *scale, *zp, bytemuck::cast_slice_mut(y))
        }
        StepKind::QuantizeChannels { inner, scale, zp } => {
            let (mul, add): (&[u16], &[u16]) = (view(input(1)?, si, name)?, view(input(2)?, si, name)?);
            let x = f32s(input(0)?, si, name)?;
            int8::quantize_channels_par(ctx.qisa, ctx.par, x, mul, add, *inner, *scale, *zp, bytemuck::cast_slice_mut(y))
        }
        StepKind::Dequantize { scale, zp } => int8::dequantize(i8s(input(0)?), *scale, *zp, f32s_mut(y, si, name)?),
        StepKind::MaxPoolI8(s) => int8::max_pool2d_i8(ctx.par, s, i8s(input(0)?), bytemuck::cast_slice_mut(y)),
        StepKind::QConv { shape, x_zp, act, out } => {
            let ep = QEpilogue { bias: view(input(2)?, si, name)?, deq: view(input(3)?, si, name)?, act: *act };
            let pad = if n_in > 4 { Some(i8s(input(4)?)) } else { None };
            int8::qconv2d(ctx.qisa, ctx.par, ctx.scratch, shape, i8s(input(0)?), *x_zp, pad, i8s(input(1)?), &ep, qout(out, y, si, name)?);
        }
        StepKind::QGemm { m, k, n, act, out } => {
            let ep = QEpilogue { bias: view(input(2)?, si, name)?, deq: view(input(3)?, si, name)?, act: *act };
            int8::qgemm(ctx.qisa, ctx.par, ctx.scratch, *m, *k, i8s(input(0)?), i8s(input(1)?), *n, &ep, qout(out, y, si, name)?);
        }
        StepKind::PackedGemm { m, k, n, act, rows } => {
            let w = rows.rows(input, *n, *k, si, name)?;
            let bias_at = 1 + rows.operands();
            let bias = if n_in > bias_at { Bias::Col(f32s(input(bias_at)?, si, name)?) } else { Bias::None };
            let ep = Epilogue { alpha: 1.0, beta: 1.0, bias, act: *act };
            let a = MatRef::row_major(f32s(input(0)?, si, name)?, *m, *k);
            gemm::gemm_any(ctx.isa, ctx.par, ctx.scratch, ASource::Mat(a), BSource::PackedT(w), &ep, f32s_mut(y, si, name)?);
        }
        StepKind::PackedConv { shape, act, rows } => {
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
    kernel: &StepKind,
    input: &dyn Fn(usize) -> Result<&'a [u8]>,
    y: &mut [u8],
    si: usize,
    name: &'static str,
) -> Result<()> {
    let internal = |reason: String| Error::Internal { step: si, op: name, reason };
    match kernel {
        StepKind::Copy => {
            let x = input(0)?;
            if x.len() != y.len() {
                return Err(internal(format!("copies {} bytes into {}", x.len(), y.len())));
            }
            y.copy_from_slice(x);
        }
        StepKind::Strided { elem, base, strides, out } => {
            strided::strided_copy(*elem, input(0)?, *base, &strides[..out.rank()], out.dims(), y)
        }
        StepKind::Gather { elem, outer, axis_len, inner, wide } => {
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
                    strided::gather(*elem, data, 1, *axis_len, *inner, &chunk[..c], dst).map_err(|bad| Error::IndexOutOfRange {
                        step: si,
                        op: name,
                        index: bad,
                        len: *axis_len,
                    })?;
                    done += c;
                }
            }
        }
        StepKind::Where { elem, strides, out } => {
            let rank = out.rank();
            strided::select(
                *elem,
                (input(0)?, &strides[0][..rank]),
                (input(1)?, &strides[1][..rank]),
                (input(2)?, &strides[2][..rank]),
                out.dims(),
                y,
            );
        }
        StepKind::Cast { from, to } => cast(*from, *to, input(0)?, y),
        StepKind::Pad { elem, mode, input: shape, begin, value, out } => {
            strided::pad(*elem, input(0)?, shape.dims(), &begin[..out.rank()], *mode, &value[..*elem], out.dims(), y)
        }
        _ => return Err(internal("a float kernel reached the byte path".into())),
    }
    Ok(())
}

/// ONNX Cast between the types of [`ops::CAST_TYPES`]: float → integer
/// truncates toward zero (saturating, NaN → 0), anything → bool is `!= 0`.
pub(crate) fn cast(from: DType, to: DType, x: &[u8], y: &mut [u8]) {
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
    kernel: &StepKind,
    n_in: usize,
    input: &dyn Fn(usize) -> Result<&'a [f32]>,
    y: &mut [f32],
    si: usize,
    name: &'static str,
) -> Result<()> {
    match kernel {
        StepKind::Conv { shape, act, bias } => {
            let b = if *bias { Some(input(2)?) } else { None };
            conv::conv2d(ctx.isa, ctx.par, ctx.scratch, shape, input(0)?, input(1)?, b, *act, y);
        }
        StepKind::Gemm { m, k, n, trans_a, trans_b, alpha, beta, act, bias } => {
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
        StepKind::MaxPool(s) => pool::max_pool2d(ctx.par, s, input(0)?, y),
        StepKind::AvgPool(s, cip) => pool::avg_pool2d(ctx.par, s, *cip, input(0)?, y),
        StepKind::GlobalAvgPool { planes, len } => pool::global_avg_pool(ctx.par, *planes, *len, input(0)?, y),
        StepKind::Act(a) => {
            y.copy_from_slice(input(0)?);
            a.apply_slice(y);
        }
        StepKind::Binary { op, act, a, b, out } => {
            elementwise::binary_par(ctx.par, *op, *act, input(0)?, a.dims(), input(1)?, b.dims(), y, out.dims());
        }
        StepKind::Affine { outer, channels, inner, act } => {
            elementwise::channel_affine_par(ctx.isa, ctx.par, *outer, *channels, *inner, input(1)?, input(2)?, *act, input(0)?, y);
        }
        StepKind::Softmax { outer, n, inner } => softmax::softmax_par(ctx.isa, ctx.par, *outer, *n, *inner, input(0)?, y),
        StepKind::Concat { outer, inner, total } => {
            let mut offset = 0;
            for i in 0..n_in {
                let x = input(i)?;
                let len = x.len().checked_div(outer * inner).unwrap_or(0);
                layout::concat_part(x, *outer, len, offset, *total, *inner, y);
                offset += len;
            }
        }
        StepKind::Copy
        | StepKind::Strided { .. }
        | StepKind::Gather { .. }
        | StepKind::Where { .. }
        | StepKind::Cast { .. }
        | StepKind::Pad { .. }
        | StepKind::Quantize { .. }
        | StepKind::QuantizeChannels { .. }
        | StepKind::Dequantize { .. }
        | StepKind::MaxPoolI8(_)
        | StepKind::QConv { .. }
        | StepKind::QGemm { .. }
        | StepKind::PackedGemm { .. }
        | StepKind::PackedConv { .. } => {
            return Err(Error::Internal { step: si, op: name, reason: "a byte or quantized kernel reached the float path".into() });
        }
        StepKind::ConvTranspose { shape, bias } => {
            let b = if *bias { Some(input(2)?) } else { None };
            conv_transpose::conv_transpose2d(ctx.isa, ctx.par, ctx.scratch, shape, input(0)?, input(1)?, b, y);
        }
        StepKind::Resize { planes, in_h, in_w, ty, tx, extrapolation } => {
            resize::resize2d(ctx.par, *planes, *in_h, *in_w, ty, tx, *extrapolation, input(0)?, y);
        }
        StepKind::Reduce { op, input: shape, axes } => reduce::reduce(*op, input(0)?, shape.dims(), *axes, y),
        StepKind::LayerNorm { outer, n, epsilon, bias } => {
            let b = if *bias { Some(input(2)?) } else { None };
            reduce::layer_norm(*outer, *n, *epsilon, input(1)?, b, input(0)?, y);
        }
        StepKind::MatMul { m, k, n, act, batches } => {
            let (m, k, n) = (*m, *k, *n);
            let (a, b) = (input(0)?, input(1)?);
            let ep = Epilogue { alpha: 1.0, beta: 1.0, bias: Bias::None, act: *act };
            for (i, &(oa, ob)) in batches.iter().enumerate() {
                let am = MatRef::row_major(&a[oa..oa + m * k], m, k);
                let bm = MatRef::row_major(&b[ob..ob + k * n], k, n);
                gemm::gemm(ctx.isa, ctx.par, ctx.scratch, am, BSource::Mat(bm), &ep, &mut y[i * m * n..(i + 1) * m * n]);
            }
        }
        StepKind::Transpose { input: shape, perm } => layout::transpose(input(0)?, shape.dims(), &perm[..shape.rank()], y),
        StepKind::Lrn { p, batch, channels, inner } => lrn::lrn(p, *batch, *channels, *inner, input(0)?, y),
    }
    Ok(())
}

impl Packing {
    /// The rows from the step's operands 1..
    pub(crate) fn rows<'a>(
        self,
        input: &dyn Fn(usize) -> Result<&'a [u8]>,
        rows: usize,
        k: usize,
        si: usize,
        name: &'static str,
    ) -> Result<Rows<'a>> {
        Ok(match self {
            Packing::Q4 { group } => Rows::Q4(Q4Ref { packed: input(1)?, scales: view(input(2)?, si, name)?, rows, k, group }),
            Packing::Sparse => {
                Rows::Sparse(SpRef { mask: input(1)?, values: f32s(input(2)?, si, name)?, row_start: view(input(3)?, si, name)?, rows, k })
            }
        })
    }
}
