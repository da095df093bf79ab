//! Lowering a step to GPU launches: which kernel, on what grid, with what
//! parameters; and the split-K heuristics of the convolutions and matrix
//! products. Done once per session, at start.

use super::driver_error;
use super::exec::GpuExec;
use super::support::cast_code;
use crate::arena::Loc;
use crate::lower::{GemmBias, Packing, Program, StepKind};
use cudarc::driver::{result, sys};
use jetrt_format::MAX_RANK;
use jetrt_kernels::cpu::reference::AxisTaps;
use jetrt_kernels::cpu::Activation;
use std::ffi::c_void;

/// The fields of `JrtConv` (prelude.cuh), in its order, of a convolution
/// or a transposed one (their shapes name the same fields alike).
macro_rules! jrt_conv_fields {
    ($s:expr) => {{
        let s = $s;
        [
            s.batch,
            s.in_channels,
            s.in_h,
            s.in_w,
            s.out_channels,
            s.out_h,
            s.out_w,
            s.kernel_h,
            s.kernel_w,
            s.stride_h,
            s.stride_w,
            s.dilation_h,
            s.dilation_w,
            s.pad_top,
            s.pad_left,
            s.groups,
        ]
    }};
}

/// Threads per block of the elementwise kernels.
pub(super) const BLOCK: u32 = 256;
/// Most blocks of a grid-stride launch.
pub(super) const MAX_BLOCKS: usize = 65_535;

/// `(code, a, b)` of an activation as `jrt_act` in prelude.cuh takes it:
/// the file's own code table.
pub(super) fn act_code(a: Activation) -> (i32, f32, f32) {
    let (code, [p0, p1]) = jetrt_format::codes::activation_code(a);
    (code as i32, p0, p1)
}

/// The code of a binary op as `jrt_binary` in elementwise.cu takes it: the
/// file's own.
pub(super) fn binary_code(op: jetrt_kernels::cpu::reference::BinaryOp) -> i32 {
    jetrt_format::codes::BINARY_OPS.code(op) as i32
}

/// Appends the tap tables of a Resize step to `host`, as
/// `jrt_resize2d_f32` reads them: for the rows, then the columns, the
/// input positions (i32, `out × taps`), their weights (f32) and whether
/// each output coordinate extrapolates (i32, `out`). Returns the six
/// tables' byte offsets.
pub(super) fn resize_tables(host: &mut Vec<u8>, ty: &AxisTaps, tx: &AxisTaps) -> Result<[u64; 6], String> {
    let mut o = [0u64; 6];
    for (a, taps) in [ty, tx].into_iter().enumerate() {
        let outs = 0..taps.out_len();
        o[3 * a] = host.len() as u64;
        for k in outs.clone() {
            for &i in taps.at(k).0 {
                host.extend_from_slice(&fits(i)?.to_le_bytes());
            }
        }
        o[3 * a + 1] = host.len() as u64;
        for k in outs.clone() {
            for &w in taps.at(k).1 {
                host.extend_from_slice(&w.to_le_bytes());
            }
        }
        o[3 * a + 2] = host.len() as u64;
        for k in outs {
            host.extend_from_slice(&(taps.extrapolates(k) as i32).to_le_bytes());
        }
    }
    Ok(o)
}

/// Per mask byte of sparse weight rows (`mb` bytes each), the set bits
/// before it in its row: what `JrtSpRows` in kernels/cuda/sparse.cu adds
/// to the row's start to find a weight.
pub(super) fn bits_before(mask: &[u8], mb: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(mask.len());
    for row in mask.chunks_exact(mb.max(1)) {
        let mut n = 0u32;
        for &b in row {
            out.push(n);
            n += b.count_ones();
        }
    }
    out
}

/// Matrix products with at most this many rows use the warp-per-output
/// kernel.
pub(super) const GEMV_ROWS: i32 = 4;

/// Split-K for a tiled convolution that would give the GPU fewer than two
/// blocks per SM: `(splits, k per split)`, or `None` to run it whole.
pub(super) fn conv_split(s: &jetrt_kernels::cpu::conv::Conv2dShape, sms: usize) -> Option<(usize, usize)> {
    let mg = s.out_channels / s.groups.max(1);
    if mg < 16 {
        return None; // the direct kernel
    }
    split_k(s, sms, s.in_channels / s.groups.max(1) * s.kernel_h * s.kernel_w, 16)
}

/// The split-K workspace a plan needs: the most any of its convolutions
/// (float or int8) splits into, in values of 4 bytes.
pub(super) fn workspace_floats(plan: &Program, sms: usize) -> usize {
    plan.steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Conv { shape, .. } => split_floats(conv_split(shape, sms), shape),
            StepKind::QConv { shape, .. } => split_floats(qconv_split(shape, sms), shape),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Workspace values (f32 or i32) a split needs.
pub(super) fn split_floats(split: Option<(usize, usize)>, s: &jetrt_kernels::cpu::conv::Conv2dShape) -> usize {
    split.map_or(0, |(n, _)| n * s.batch * s.out_channels * s.out_h * s.out_w)
}

/// The same for an int8 convolution: K is the padded row length, slices a
/// multiple of 32 (one step of its kernel).
pub(super) fn qconv_split(s: &jetrt_kernels::cpu::conv::Conv2dShape, sms: usize) -> Option<(usize, usize)> {
    if s.is_depthwise() {
        return None;
    }
    split_k(s, sms, jetrt_kernels::cpu::int8::conv_kp(s), 32)
}

pub(super) fn split_k(s: &jetrt_kernels::cpu::conv::Conv2dShape, sms: usize, k: usize, align: usize) -> Option<(usize, usize)> {
    let mg = s.out_channels / s.groups.max(1);
    let blocks = (s.out_h * s.out_w).div_ceil(64) * mg.div_ceil(64) * s.batch * s.groups;
    let target = 2 * sms;
    if blocks >= target || k < 256 {
        return None;
    }
    // Slices of at least 128 (8 steps of 16), a multiple of 16.
    let splits = target.div_ceil(blocks).min(k / 128).max(1);
    let kslice = k.div_ceil(splits).div_ceil(align) * align;
    let splits = k.div_ceil(kslice);
    (splits > 1).then_some((splits, kslice))
}

/// Sizes as the kernels' 32-bit ints.
pub(super) fn ints(v: &[usize]) -> Result<Vec<i32>, String> {
    v.iter().map(|&d| fits(d)).collect()
}

/// `JrtConv` (prelude.cuh) of a convolution.
pub(super) fn conv_geo(s: &jetrt_kernels::cpu::conv::Conv2dShape) -> Result<Vec<i32>, String> {
    ints(&jrt_conv_fields!(s))
}

/// `JrtPool` (prelude.cuh) of a pooling.
pub(super) fn pool_geo(s: &jetrt_kernels::cpu::reference::Pool2dShape) -> Result<Vec<i32>, String> {
    fits(s.planes * s.in_h * s.in_w)?;
    fits(s.planes * s.out_h * s.out_w)?;
    ints(&[
        s.planes,
        s.in_h,
        s.in_w,
        s.out_h,
        s.out_w,
        s.kernel_h,
        s.kernel_w,
        s.stride_h,
        s.stride_w,
        s.dilation_h,
        s.dilation_w,
        s.pad_top,
        s.pad_left,
        s.pad_bottom,
        s.pad_right,
    ])
}

/// (int8 output?, 1/scale, zero point) of a quantized op's output.
pub(super) fn qout(o: &jetrt_format::op::QOutParams) -> (i32, f32, i32) {
    match *o {
        jetrt_format::op::QOutParams::F32 => (0, 0.0, 0),
        jetrt_format::op::QOutParams::I8 { scale, zero_point } => (1, 1.0 / scale, zero_point as i32),
    }
}

/// One kernel parameter: its bytes, 8-aligned (a pointer, a scalar in the
/// low bytes, or a struct).
pub(super) type Param = Vec<u64>;

pub(super) fn p_ptr(p: u64) -> Param {
    vec![p]
}
pub(super) fn p_i32(v: i32) -> Param {
    vec![v as u32 as u64]
}
pub(super) fn p_f32(v: f32) -> Param {
    vec![v.to_bits() as u64]
}
/// A struct of 32-bit fields, packed as C lays it out.
pub(super) fn p_i32s(v: &[i32]) -> Param {
    v.chunks(2).map(|c| c[0] as u32 as u64 | (c.get(1).map_or(0, |&h| h as u32 as u64) << 32)).collect()
}

pub(super) enum Launch {
    // `_params` owns the bytes `ptrs` point at.
    Kernel { f: sys::CUfunction, grid: (u32, u32, u32), block: u32, _params: Vec<Param>, ptrs: Vec<*mut c_void> },
    Copy { dst: u64, src: u64, len: usize },
}

pub(super) fn fits(v: usize) -> Result<i32, String> {
    i32::try_from(v).map_err(|_| format!("size {v} does not fit the GPU kernels' 32-bit indices"))
}

pub(super) fn grid_for(n: usize) -> u32 {
    n.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32
}

impl GpuExec {
    pub(super) fn func(&self, name: &str) -> Result<sys::CUfunction, String> {
        let c = std::ffi::CString::new(name).map_err(|_| "bad kernel name".to_string())?;
        // SAFETY: module is loaded; c is a valid C string.
        unsafe { result::module::get_function(self.module, c) }.map_err(|e| driver_error(&format!("kernel {name} not in the CUBIN"), e))
    }

    pub(super) fn ptr(&self, loc: Loc) -> u64 {
        if loc.in_arena {
            self.arena + loc.start as u64
        } else {
            self.weights + loc.start as u64
        }
    }

    pub(super) fn launch(&self, name: &str, grid: (u32, u32, u32), block: u32, params: Vec<Param>) -> Result<Launch, String> {
        let mut params = params;
        let ptrs = params.iter_mut().map(|p| p.as_mut_ptr().cast::<c_void>()).collect();
        Ok(Launch::Kernel { f: self.func(name)?, grid, block, _params: params, ptrs })
    }

    /// A grid-stride launch over `n` items.
    pub(super) fn flat(&self, name: &str, n: usize, params: Vec<Param>) -> Result<Launch, String> {
        self.launch(name, (grid_for(n), 1, 1), BLOCK, params)
    }

    /// The launches of step `si`.
    pub(super) fn lower(&self, plan: &Program, si: usize) -> Result<Vec<Launch>, String> {
        let step = &plan.steps[si];
        let ins = &plan.locs[step.inputs.clone()];
        let out = plan.locs[step.outputs.start];
        let i = |k: usize| ins.get(k).map_or(0, |&l| self.ptr(l));
        let y = self.ptr(out);
        let n_out = out.len / 4;
        let mut v = Vec::new();
        if out.len == 0 {
            return Ok(v);
        }
        match &step.kind {
            StepKind::Conv { shape: s, act, bias } => {
                let (code, a, b) = act_code(*act);
                let geo = conv_geo(s)?;
                fits(s.batch * s.out_channels * s.out_h * s.out_w)?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let bias = if *bias { i(2) } else { 0 };
                let params = vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(bias), p_ptr(y), p_i32s(&geo), p_i32(code), p_f32(a), p_f32(b)];
                let mg = s.out_channels / s.groups;
                if mg < 16 {
                    v.push(self.flat("jrt_conv_direct_f32", n_out, params)?);
                } else {
                    let split = conv_split(s, self.info.multiprocessors.max(1) as usize);
                    let front = vec![p_ptr(bias), p_ptr(y)];
                    v.extend(self.tiled_conv(
                        (if self.fp16 { "jrt_conv_f16" } else { "jrt_conv_f32" }, "jrt_splitk_reduce_f32"),
                        s,
                        split,
                        params,
                        front,
                        vec![p_i32(code), p_f32(a), p_f32(b)],
                    )?);
                }
            }
            StepKind::Gemm { m, k, n, trans_a, trans_b, alpha, beta, act, bias } => {
                let (m, k, n) = (fits(*m)?, fits(*k)?, fits(*n)?);
                let (ars, acs) = if *trans_a { (1, m) } else { (k, 1) };
                let (brs, bcs) = if *trans_b { (1, k) } else { (n, 1) };
                let (bp, rs, cs) = match bias {
                    GemmBias::None => (0, 0, 0),
                    GemmBias::Col => (i(2), 0, 1),
                    GemmBias::Row => (i(2), 1, 0),
                    GemmBias::Strided { rs, cs } => (i(2), fits(*rs)?, fits(*cs)?),
                };
                v.push(self.gemm(i(0), i(1), bp, y, (m, n, k), (ars, acs, brs, bcs), (rs, cs), (*alpha, *beta), *act)?);
            }
            StepKind::MatMul { m, k, n, act, batches } => {
                let (mi, ki, ni) = (fits(*m)?, fits(*k)?, fits(*n)?);
                for (b, &(oa, ob)) in batches.iter().enumerate() {
                    let (pa, pb, py) = (i(0) + 4 * oa as u64, i(1) + 4 * ob as u64, y + 4 * (b * m * n) as u64);
                    v.push(self.gemm(pa, pb, 0, py, (mi, ni, ki), (ki, 1, ni, 1), (0, 0), (1.0, 1.0), *act)?);
                }
            }
            StepKind::MaxPool(s) | StepKind::AvgPool(s, _) => {
                let geo = pool_geo(s)?;
                let mut params = vec![p_ptr(i(0)), p_ptr(y), p_i32s(&geo)];
                if let StepKind::AvgPool(_, cip) = &step.kind {
                    params.push(p_i32(i32::from(*cip)));
                    v.push(self.flat("jrt_avgpool_f32", n_out, params)?);
                } else {
                    v.push(self.flat("jrt_maxpool_f32", n_out, params)?);
                }
            }
            StepKind::GlobalAvgPool { planes, len } => {
                fits(planes * len)?;
                if *planes > MAX_BLOCKS {
                    return Err("too many planes for one grid".into());
                }
                let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(*planes)?), p_i32(fits(*len)?)];
                v.push(self.launch("jrt_global_avgpool_f32", (*planes as u32, 1, 1), 256, params)?);
            }
            StepKind::Act(act) => {
                let (code, a, b) = act_code(*act);
                v.push(self.flat(
                    "jrt_act_f32",
                    n_out,
                    vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n_out)?), p_i32(code), p_f32(a), p_f32(b)],
                )?);
            }
            StepKind::Binary { op, act, a: sa, b: sb, out: so } => {
                let (code, p0, p1) = act_code(*act);
                let n = p_i32(fits(n_out)?);
                let tail = [p_i32(binary_code(*op)), p_i32(code), p_f32(p0), p_f32(p1)];
                if sa == so && sb == so {
                    let mut params = vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(y), n];
                    params.extend(tail);
                    v.push(self.flat("jrt_binary_same_f32", n_out, params)?);
                } else {
                    let rank = so.rank();
                    let st_a = jetrt_kernels::cpu::reference::broadcast_strides(sa.dims(), rank);
                    let st_b = jetrt_kernels::cpu::reference::broadcast_strides(sb.dims(), rank);
                    let mut g = vec![rank as i32];
                    let mut dims = [1i32; MAX_RANK];
                    for (d, &x) in so.dims().iter().enumerate() {
                        dims[d] = fits(x)?;
                    }
                    g.extend(dims);
                    for st in [st_a, st_b] {
                        for &s in st.iter().take(MAX_RANK) {
                            g.push(fits(s as usize)?);
                        }
                    }
                    let mut params = vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(y), n, p_i32s(&g)];
                    params.extend(tail);
                    v.push(self.flat("jrt_binary_bcast_f32", n_out, params)?);
                }
            }
            StepKind::Affine { channels, inner, act, .. } => {
                let (code, a, b) = act_code(*act);
                let stride = |k: usize| i32::from(ins[k].len / 4 != 1);
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(y),
                    p_i32(fits(n_out)?),
                    p_i32(fits(*channels)?),
                    p_i32(fits((*inner).max(1))?),
                    p_i32(stride(1)),
                    p_i32(stride(2)),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                v.push(self.flat("jrt_affine_f32", n_out, params)?);
            }
            StepKind::Resize { planes, in_h, in_w, ty, tx, extrapolation } => {
                let t = self.resize_tables.get(si).copied().flatten().ok_or("its tables were not uploaded")?;
                fits(planes * in_h * in_w)?;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(y),
                    p_i32(fits(*planes)?),
                    p_i32(fits(*in_h)?),
                    p_i32(fits(*in_w)?),
                    p_i32(fits(ty.out_len())?),
                    p_i32(fits(tx.out_len())?),
                    p_ptr(t[0]),
                    p_ptr(t[1]),
                    p_ptr(t[2]),
                    p_i32(fits(ty.taps())?),
                    p_ptr(t[3]),
                    p_ptr(t[4]),
                    p_ptr(t[5]),
                    p_i32(fits(tx.taps())?),
                    p_f32(*extrapolation),
                ];
                v.push(self.flat("jrt_resize2d_f32", n_out, params)?);
            }
            StepKind::Lrn { p, batch, channels, inner } => {
                let before = (p.size - 1) / 2;
                let after = p.size - 1 - before;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(y),
                    p_i32(fits(*batch)?),
                    p_i32(fits(*channels)?),
                    p_i32(fits(*inner)?),
                    p_i32(fits(before)?),
                    p_i32(fits(after)?),
                    p_f32(p.alpha / p.size as f32),
                    p_f32(p.bias),
                    p_f32(p.beta),
                ];
                v.push(self.flat("jrt_lrn_f32", n_out, params)?);
            }
            StepKind::Softmax { outer, n, inner } => {
                fits(outer * n * inner)?;
                if *inner == 1 {
                    if *outer > MAX_BLOCKS {
                        return Err("too many rows for one grid".into());
                    }
                    let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(*outer)?), p_i32(fits(*n)?)];
                    v.push(self.launch("jrt_softmax_rows_f32", (*outer as u32, 1, 1), 256, params)?);
                } else {
                    let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(*outer)?), p_i32(fits(*n)?), p_i32(fits(*inner)?)];
                    v.push(self.launch("jrt_softmax_strided_f32", ((outer * inner).div_ceil(256) as u32, 1, 1), 256, params)?);
                }
            }
            StepKind::Concat { outer, inner, total } => {
                let row = fits(total * inner)?;
                let mut offset = 0usize;
                for l in ins {
                    let chunk = if *outer == 0 { 0 } else { l.len / 4 / outer };
                    if chunk > 0 {
                        let params = vec![
                            p_ptr(self.ptr(*l)),
                            p_ptr(y),
                            p_i32(fits(*outer)?),
                            p_i32(fits(chunk)?),
                            p_i32(row),
                            p_i32(fits(offset)?),
                        ];
                        v.push(self.flat("jrt_concat_4", outer * chunk, params)?);
                    }
                    offset += chunk;
                }
            }
            StepKind::Copy => {
                if i(0) != y && out.len > 0 {
                    v.push(Launch::Copy { dst: y, src: i(0), len: out.len });
                }
            }
            StepKind::Transpose { input, perm } => {
                let d = input.dims();
                let mut in_st = [0i64; MAX_RANK];
                let mut acc = 1i64;
                for a in (0..d.len()).rev() {
                    in_st[a] = acc;
                    acc *= d[a] as i64;
                }
                let mut st = [0i64; MAX_RANK];
                let mut out = [1usize; MAX_RANK];
                for a in 0..d.len() {
                    st[a] = in_st[perm[a]];
                    out[a] = d[perm[a]];
                }
                v.push(self.strided(4, i(0), y, 0, &st, &out[..d.len()])?);
            }
            StepKind::Strided { elem, base, strides, out: so } => {
                let st: Vec<i64> = strides.iter().map(|&s| s as i64).collect();
                v.push(self.strided(*elem, i(0), y, *base as i64, &st, so.dims())?);
            }
            StepKind::Quantize { scale, zp } => {
                let n = out.len;
                v.push(self.flat(
                    "jrt_quantize",
                    n,
                    vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n)?), p_f32(1.0 / scale), p_i32(*zp as i32)],
                )?);
            }
            StepKind::QuantizeChannels { inner, scale, zp } => {
                let n = out.len;
                let channels = (ins[1].len / 2).min(ins[2].len / 2);
                if channels == 0 || *inner == 0 {
                    return Ok(v);
                }
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(y),
                    p_i32(fits(n)?),
                    p_i32(fits(*inner)?),
                    p_i32(fits(channels)?),
                    p_f32(1.0 / scale),
                    p_i32(*zp as i32),
                ];
                v.push(self.flat("jrt_quantize_channels", n, params)?);
            }
            StepKind::Dequantize { scale, zp } => {
                v.push(self.flat(
                    "jrt_dequantize",
                    n_out,
                    vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n_out)?), p_f32(*scale), p_i32(*zp as i32)],
                )?);
            }
            StepKind::MaxPoolI8(s) => {
                v.push(self.flat("jrt_maxpool_i8", out.len, vec![p_ptr(i(0)), p_ptr(y), p_i32s(&pool_geo(s)?)])?);
            }
            StepKind::QConv { shape: s, x_zp, act, out: o } => {
                let (code, a, b) = act_code(*act);
                let (out_i8, inv, zp) = qout(o);
                let kp = jetrt_kernels::cpu::int8::conv_kp(s);
                let n = s.batch * s.out_channels * s.out_h * s.out_w;
                fits(n)?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let pad = if ins.len() > 4 { i(4) } else { 0 };
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(i(3)),
                    p_ptr(pad),
                    p_ptr(y),
                    p_i32s(&conv_geo(s)?),
                    p_i32(fits(kp)?),
                    p_i32(*x_zp as i32),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                    p_i32(out_i8),
                    p_f32(inv),
                    p_i32(zp),
                ];
                if s.is_depthwise() {
                    v.push(self.flat("jrt_qconv_dw", n, params)?);
                } else {
                    let split = qconv_split(s, self.info.multiprocessors.max(1) as usize);
                    let front = vec![p_ptr(i(2)), p_ptr(i(3)), p_ptr(y)];
                    let back = vec![p_i32(code), p_f32(a), p_f32(b), p_i32(out_i8), p_f32(inv), p_i32(zp)];
                    v.extend(self.tiled_conv(("jrt_qconv", "jrt_qsplitk_reduce"), s, split, params, front, back)?);
                }
            }
            StepKind::QGemm { m, k, n, act, out: o } => {
                let (code, a, b) = act_code(*act);
                let (out_i8, inv, zp) = qout(o);
                let kp = k.next_multiple_of(jetrt_kernels::cpu::int8::K_ALIGN);
                let warps = fits(m * n)? as u32;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(i(3)),
                    p_ptr(y),
                    p_i32(fits(*m)?),
                    p_i32(fits(*n)?),
                    p_i32(fits(*k)?),
                    p_i32(fits(kp)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                    p_i32(out_i8),
                    p_f32(inv),
                    p_i32(zp),
                ];
                v.push(self.launch("jrt_qgemm", (warps.div_ceil(8), 1, 1), 256, params)?);
            }
            StepKind::PackedGemm { m, k, n, act, rows: Packing::Q4 { group } } => {
                let (code, a, b) = act_code(*act);
                let bias = if ins.len() > 3 { i(3) } else { 0 };
                fits(m * k)?;
                fits(m * n)?;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(bias),
                    p_ptr(y),
                    p_i32(fits(*m)?),
                    p_i32(fits(*n)?),
                    p_i32(fits(*k)?),
                    p_i32(fits(*group)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                if *m <= GEMV_ROWS as usize {
                    v.push(self.launch("jrt_q4gemv", ((m * n).div_ceil(8) as u32, 1, 1), 256, params)?);
                } else {
                    if m.div_ceil(64) > 65_535 {
                        return Err("matrix too tall for one grid".into());
                    }
                    v.push(self.launch("jrt_q4gemm", (n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1), 256, params)?);
                }
            }
            StepKind::PackedConv { shape: s, act, rows: Packing::Q4 { group } } => {
                if s.groups != 1 {
                    return Err("grouped int4 convolution".into());
                }
                let (code, a, b) = act_code(*act);
                let bias = if ins.len() > 3 { i(3) } else { 0 };
                fits(s.batch * s.out_channels * s.out_h * s.out_w)?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(bias),
                    p_ptr(y),
                    p_i32s(&conv_geo(s)?),
                    p_i32(fits(*group)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                let grid = ((s.out_h * s.out_w).div_ceil(64) as u32, s.out_channels.div_ceil(64) as u32, fits(s.batch)? as u32);
                if grid.1 > 65_535 || grid.2 > 65_535 {
                    return Err("grid too large".into());
                }
                v.push(self.launch("jrt_q4conv", grid, 256, params)?);
            }
            StepKind::PackedGemm { m, k, n, act, rows: Packing::Sparse } => {
                let before = self.sparse_tables.get(si).copied().flatten().ok_or("its mask table was not made")?;
                let (code, a, b) = act_code(*act);
                let bias = if ins.len() > 4 { i(4) } else { 0 };
                fits(m * k)?;
                fits(m * n)?;
                if m.div_ceil(64) > 65_535 {
                    return Err("matrix too tall for one grid".into());
                }
                let nnz = (ins[2].len / 4) as u64;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(i(3)),
                    p_ptr(before),
                    p_ptr(nnz),
                    p_ptr(bias),
                    p_ptr(y),
                    p_i32(fits(*m)?),
                    p_i32(fits(*n)?),
                    p_i32(fits(*k)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                v.push(self.launch("jrt_spgemm", (n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1), 256, params)?);
            }
            StepKind::PackedConv { shape: s, act, rows: Packing::Sparse } => {
                if s.groups != 1 {
                    return Err("grouped sparse convolution".into());
                }
                let before = self.sparse_tables.get(si).copied().flatten().ok_or("its mask table was not made")?;
                let (code, a, b) = act_code(*act);
                let bias = if ins.len() > 4 { i(4) } else { 0 };
                fits(s.batch * s.out_channels * s.out_h * s.out_w)?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let nnz = (ins[2].len / 4) as u64;
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(i(2)),
                    p_ptr(i(3)),
                    p_ptr(before),
                    p_ptr(nnz),
                    p_ptr(bias),
                    p_ptr(y),
                    p_i32s(&conv_geo(s)?),
                    p_i32(code),
                    p_f32(a),
                    p_f32(b),
                ];
                let grid = ((s.out_h * s.out_w).div_ceil(64) as u32, s.out_channels.div_ceil(64) as u32, fits(s.batch)? as u32);
                if grid.1 > 65_535 || grid.2 > 65_535 {
                    return Err("grid too large".into());
                }
                v.push(self.launch("jrt_spconv", grid, 256, params)?);
            }
            StepKind::Reduce { op, input, axes } => {
                use jetrt_kernels::cpu::reference::ReduceOp as R;
                let code = match op {
                    R::Sum => 0,
                    R::Mean => 1,
                    R::Max => 2,
                    R::Min => 3,
                    R::Prod => 4,
                    R::L1 => 5,
                    R::L2 => 6,
                    R::SumSquare => 7,
                    R::LogSum => 8,
                    R::LogSumExp => 9,
                };
                let d = input.dims();
                fits(d.iter().product())?;
                let window: usize = (0..d.len()).filter(|a| axes & (1 << a) != 0).map(|a| d[a]).product();
                let mut g = vec![d.len() as i32, *axes as i32];
                g.extend((0..MAX_RANK).map(|a| d.get(a).map_or(1, |&x| x as i32)));
                let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n_out)?), p_i32(fits(window)?), p_i32s(&g), p_i32(code)];
                v.push(self.flat("jrt_reduce_f32", n_out, params)?);
            }
            StepKind::LayerNorm { outer, n, epsilon, bias } => {
                if *outer > MAX_BLOCKS {
                    return Err("too many rows for one grid".into());
                }
                fits(outer * n)?;
                let stride = |k: usize| i32::from(ins[k].len / 4 != 1);
                let (bp, bs) = if *bias { (i(2), stride(2)) } else { (0, 0) };
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_ptr(bp),
                    p_ptr(y),
                    p_i32(fits(*outer)?),
                    p_i32(fits(*n)?),
                    p_i32(stride(1)),
                    p_i32(bs),
                    p_f32(*epsilon),
                ];
                v.push(self.launch("jrt_layernorm_f32", (*outer as u32, 1, 1), 256, params)?);
            }
            StepKind::Where { elem, strides, out: so } => {
                let n = so.dims().iter().product::<usize>();
                let mut g = vec![so.rank() as i32];
                g.extend((0..MAX_RANK).map(|a| so.dims().get(a).map_or(1, |&x| x as i32)));
                for st in strides {
                    for &s in st.iter().take(MAX_RANK) {
                        g.push(fits(s as usize)?);
                    }
                }
                fits(n)?;
                let name = ["jrt_where_1", "jrt_where_2", "jrt_where_4", "jrt_where_8"][elem.trailing_zeros() as usize & 3];
                let params = vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(i(2)), p_ptr(y), p_i32(n as i32), p_i32s(&g)];
                v.push(self.flat(name, n, params)?);
            }
            StepKind::Pad { elem, mode, input, begin, value, out: so } => {
                use jetrt_kernels::cpu::reference::PadMode as P;
                let code = match mode {
                    P::Constant => 0,
                    P::Reflect => 1,
                    P::Edge => 2,
                    P::Wrap => 3,
                };
                let n = so.dims().iter().product::<usize>();
                fits(n)?;
                let rank = so.rank();
                let mut g = vec![rank as i32, code];
                g.extend((0..MAX_RANK).map(|a| input.dims().get(a).map_or(1, |&x| x as i32)));
                g.extend((0..MAX_RANK).map(|a| if a < rank { begin[a] as i32 } else { 0 }));
                g.extend((0..MAX_RANK).map(|a| so.dims().get(a).map_or(1, |&x| x as i32)));
                let name = ["jrt_pad_1", "jrt_pad_2", "jrt_pad_4", "jrt_pad_8"][elem.trailing_zeros() as usize & 3];
                let params = vec![p_ptr(i(0)), p_ptr(y), p_i32(n as i32), p_i32s(&g), vec![u64::from_le_bytes(*value)]];
                v.push(self.flat(name, n, params)?);
            }
            StepKind::Gather { elem, outer, axis_len, inner, wide } => {
                let n_idx = ins[1].len / if *wide { 8 } else { 4 };
                let n = outer * n_idx * inner;
                fits(n)?;
                fits(outer * axis_len * inner)?;
                if self.gather_err == 0 {
                    return Err("no error word".into());
                }
                let name = ["jrt_gather_1", "jrt_gather_2", "jrt_gather_4", "jrt_gather_8"][elem.trailing_zeros() as usize & 3];
                let params = vec![
                    p_ptr(i(0)),
                    p_ptr(i(1)),
                    p_i32(i32::from(*wide)),
                    p_ptr(y),
                    p_i32(fits(*outer)?),
                    p_i32(fits(n_idx)?),
                    p_i32(fits(*axis_len)?),
                    p_i32(fits(*inner)?),
                    p_ptr(self.gather_err),
                    p_i32(fits(si)?),
                ];
                v.push(self.flat(name, n, params)?);
            }
            StepKind::Cast { from, to } => {
                let (Some(f), Some(t)) = (cast_code(*from), cast_code(*to)) else { return Err("element type".into()) };
                let n = out.len / to.size();
                v.push(self.flat("jrt_cast", n, vec![p_ptr(i(0)), p_ptr(y), p_i32(fits(n)?), p_i32(f), p_i32(t)])?);
            }
            StepKind::ConvTranspose { shape: s, bias } => {
                let geo = ints(&jrt_conv_fields!(s))?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let bias = if *bias { i(2) } else { 0 };
                v.push(self.flat("jrt_conv_transpose_f32", n_out, vec![p_ptr(i(0)), p_ptr(i(1)), p_ptr(bias), p_ptr(y), p_i32s(&geo)])?);
            }
        }
        Ok(v)
    }

    /// A tiled convolution (`names.0`, given its parameters up to the
    /// split ones) over the grid (pixel tiles, channel tiles, images ×
    /// groups × splits); when `split` cuts K, the reduction `names.1`
    /// finishes, taking (workspace, `front`..., count, splits, channels,
    /// pixels, `back`...).
    pub(super) fn tiled_conv(
        &self,
        names: (&str, &str),
        s: &jetrt_kernels::cpu::conv::Conv2dShape,
        split: Option<(usize, usize)>,
        mut params: Vec<Param>,
        front: Vec<Param>,
        back: Vec<Param>,
    ) -> Result<Vec<Launch>, String> {
        self.check_workspace(split_floats(split, s))?;
        let (splits, kslice) = split.unwrap_or((1, 0));
        let (p, mg) = (s.out_h * s.out_w, s.out_channels / s.groups);
        let n = s.batch * s.out_channels * p;
        let grid = (p.div_ceil(64) as u32, mg.div_ceil(64) as u32, fits(s.batch * s.groups * splits)? as u32);
        if grid.1 > 65_535 || grid.2 > 65_535 {
            return Err("grid too large".into());
        }
        params.extend([p_i32(splits as i32), p_i32(fits(kslice)?), p_ptr(if splits > 1 { self.workspace } else { 0 })]);
        let mut v = vec![self.launch(names.0, grid, 256, params)?];
        if splits > 1 {
            let mut reduce = vec![p_ptr(self.workspace)];
            reduce.extend(front);
            reduce.extend([p_i32(fits(n)?), p_i32(splits as i32), p_i32(fits(s.out_channels)?), p_i32(fits(p)?)]);
            reduce.extend(back);
            v.push(self.flat(names.1, n, reduce)?);
        }
        Ok(v)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm(
        &self,
        a: u64,
        b: u64,
        bias: u64,
        y: u64,
        (m, n, k): (i32, i32, i32),
        (ars, acs, brs, bcs): (i32, i32, i32, i32),
        (rs, cs): (i32, i32),
        (alpha, beta): (f32, f32),
        act: Activation,
    ) -> Result<Launch, String> {
        fits(m as usize * n as usize)?;
        let (code, p0, p1) = act_code(act);
        let params = vec![
            p_ptr(a),
            p_ptr(b),
            p_ptr(bias),
            p_ptr(y),
            p_i32(m),
            p_i32(n),
            p_i32(k),
            p_i32(ars),
            p_i32(acs),
            p_i32(brs),
            p_i32(bcs),
            p_i32(rs),
            p_i32(cs),
            p_f32(alpha),
            p_f32(beta),
            p_i32(code),
            p_f32(p0),
            p_f32(p1),
        ];
        if m <= GEMV_ROWS {
            // One warp per output.
            return self.launch("jrt_gemv_f32", ((m as u32 * n as u32).div_ceil(8), 1, 1), 256, params);
        }
        let grid = ((n as u32).div_ceil(64), (m as u32).div_ceil(64), 1);
        if grid.1 > 65_535 {
            return Err("matrix too tall for one grid".into());
        }
        self.launch(if self.fp16 { "jrt_gemm_f16" } else { "jrt_gemm_f32" }, grid, 256, params)
    }

    pub(super) fn strided(&self, elem: usize, x: u64, y: u64, base: i64, st: &[i64], out: &[usize]) -> Result<Launch, String> {
        let n: usize = out.iter().product();
        // JrtStrided: base, st[8] (i64), out[8], rank, pad (i32).
        let mut blob: Param = vec![base as u64];
        blob.extend((0..MAX_RANK).map(|a| st.get(a).copied().unwrap_or(0) as u64));
        let mut tail = [1i32; MAX_RANK + 2];
        for (a, &d) in out.iter().enumerate() {
            tail[a] = fits(d)?;
        }
        tail[MAX_RANK] = out.len() as i32;
        tail[MAX_RANK + 1] = 0;
        blob.extend(p_i32s(&tail));
        let name = match elem {
            1 => "jrt_strided_1",
            2 => "jrt_strided_2",
            4 => "jrt_strided_4",
            8 => "jrt_strided_8",
            _ => return Err(format!("element size {elem}")),
        };
        self.flat(name, n, vec![p_ptr(x), p_ptr(y), p_i32(fits(n)?), blob])
    }
}

#[cfg(test)]
mod tests {
    use super::conv_split;
    use jetrt_kernels::cpu::conv::Conv2dShape;

    fn conv(c: usize, hw: usize, m: usize, k: usize) -> Conv2dShape {
        Conv2dShape {
            batch: 1,
            in_channels: c,
            in_h: hw,
            in_w: hw,
            out_channels: m,
            out_h: hw,
            out_w: hw,
            kernel_h: k,
            kernel_w: k,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: k / 2,
            pad_left: k / 2,
            groups: 1,
        }
    }

    /// The workspace is sized for every split step, float and int8 (an
    /// int8-only plan once got none, and its split steps wrote through a
    /// null pointer on the GPU).
    #[test]
    fn resize_from_the_tables_equals_the_cpu_bit_for_bit() {
        use jetrt_kernels::cpu::reference::{axis_taps, resize2d, CoordTransform as C, ResizeMode as M, ResizeParams};
        // jrt_resize2d_f32 in kernels/cuda/image.cu, step for step, on the
        // bytes uploaded (no FMA: Rust does not contract).
        fn kernel(
            t: &[u8],
            o: [u64; 6],
            planes: usize,
            (in_h, in_w): (usize, usize),
            (oh, ow): (usize, usize),
            taps: (usize, usize),
            ext: f32,
            x: &[f32],
        ) -> Vec<f32> {
            let i32_at = |off: u64, n: usize| i32::from_le_bytes(t[off as usize + 4 * n..off as usize + 4 * n + 4].try_into().unwrap());
            let f32_at = |off: u64, n: usize| f32::from_le_bytes(t[off as usize + 4 * n..off as usize + 4 * n + 4].try_into().unwrap());
            let (ty, tx) = taps;
            let mut y = vec![0.0; planes * oh * ow];
            for (idx, out) in y.iter_mut().enumerate() {
                let (ox, r) = (idx % ow, idx / ow);
                let (oy, p) = (r % oh, r / oh);
                if i32_at(o[2], oy) != 0 || i32_at(o[5], ox) != 0 {
                    *out = ext;
                    continue;
                }
                let xp = &x[p * in_h * in_w..];
                let mut acc = 0.0f32;
                for j in 0..tx {
                    let col = i32_at(o[3], ox * tx + j) as usize;
                    let mut v = f32_at(o[1], oy * ty) * xp[col + i32_at(o[0], oy * ty) as usize * in_w];
                    for i in 1..ty {
                        v += f32_at(o[1], oy * ty + i) * xp[col + i32_at(o[0], oy * ty + i) as usize * in_w];
                    }
                    acc = if j == 0 { f32_at(o[4], ox * tx) * v } else { acc + f32_at(o[4], ox * tx + j) * v };
                }
                *out = acc;
            }
            y
        }
        let (planes, in_h, in_w) = (3, 5, 7);
        let x: Vec<f32> = (0..planes * in_h * in_w).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        for (mode, coord, out, scales, roi) in [
            (M::Nearest, C::Asymmetric, (10, 14), (2.0, 2.0), (0.0, 1.0)),
            (M::Linear, C::HalfPixel, (8, 4), (1.6, 4.0 / 7.0), (0.0, 1.0)),
            (M::Cubic, C::AlignCorners, (9, 11), (1.8, 11.0 / 7.0), (0.0, 1.0)),
            (M::Linear, C::TfCropAndResize, (6, 6), (1.2, 6.0 / 7.0), (-0.25, 1.25)),
        ] {
            let p = ResizeParams { mode, coord, extrapolation_value: -9.0, ..ResizeParams::default() };
            let ty = axis_taps(&p, in_h, out.0, scales.0, roi);
            let tx = axis_taps(&p, in_w, out.1, scales.1, roi);
            let mut want = vec![0.0; planes * out.0 * out.1];
            resize2d(&jetrt_kernels::Serial, planes, in_h, in_w, &ty, &tx, p.extrapolation_value, &x, &mut want);
            let mut host = vec![0u8; 12]; // not at the start of the allocation
            let o = super::resize_tables(&mut host, &ty, &tx).unwrap();
            let got = kernel(&host, o, planes, (in_h, in_w), out, (ty.taps(), tx.taps()), p.extrapolation_value, &x);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{mode:?} {coord:?}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn sparse_lookups_find_what_the_cpu_decodes() {
        use jetrt_kernels::cpu::gemm::SpRef;
        // JrtSpRows::operator() in kernels/cuda/sparse.cu, step for step.
        fn lookup(mask: &[u8], values: &[f32], starts: &[u32], before: &[u32], mb: usize, row: usize, k: usize) -> f32 {
            let b = row * mb + (k >> 3);
            let (m, bit) = (mask[b] as u32, k & 7);
            if (m >> bit) & 1 == 0 {
                return 0.0;
            }
            let vi = starts[row] as u64 + before[b] as u64 + (m & ((1u32 << bit) - 1)).count_ones() as u64;
            values.get(vi as usize).copied().unwrap_or(0.0)
        }
        let (rows, k) = (5usize, 37usize);
        let mb = k.div_ceil(8);
        // A deterministic pattern with empty rows, full bytes and a ragged end.
        let mut mask = vec![0u8; rows * mb];
        let (mut values, mut starts) = (Vec::new(), vec![0u32]);
        for r in 0..rows {
            for c in 0..k {
                if r != 2 && (c * 7 + r * 3) % 5 < 3 {
                    mask[r * mb + c / 8] |= 1 << (c % 8);
                    values.push((r * 100 + c) as f32);
                }
            }
            starts.push(values.len() as u32);
        }
        let before = super::bits_before(&mask, mb);
        let sp = SpRef { mask: &mask, values: &values, row_start: &starts, rows, k };
        let mut row = vec![0.0; k];
        for r in 0..rows {
            sp.decode(r, 0, &mut row);
            for (c, &want) in row.iter().enumerate() {
                assert_eq!(lookup(&mask, &values, &starts, &before, mb, r, c), want, "row {r} column {c}");
            }
        }
        // A hostile row start past the values reads 0 on both.
        let bad = vec![0, 1000, 1000, 1000, 1000, 1000];
        let sp = SpRef { mask: &mask, values: &values, row_start: &bad, rows, k };
        sp.decode(1, 0, &mut row);
        assert!(row.iter().all(|&v| v == 0.0));
        assert!((0..k).all(|c| lookup(&mask, &values, &bad, &before, mb, 1, c) == 0.0));
    }

    #[test]
    fn the_workspace_covers_every_split_step() {
        use super::{qconv_split, split_floats, workspace_floats};
        use crate::lower::{Program, Step, StepKind};
        use jetrt_format::op::QOutParams;
        use jetrt_kernels::cpu::Activation;
        let step = |kind| Step { kind, name: "step", inputs: 0..0, outputs: 0..0 };
        let (small, wide) = (conv(512, 7, 512, 3), conv(64, 56, 64, 3));
        let q = |shape| StepKind::QConv { shape, x_zp: 0, act: Activation::None, out: QOutParams::F32 };
        let f = |shape| StepKind::Conv { shape, act: Activation::None, bias: false };
        for steps in [vec![step(q(small)), step(q(wide))], vec![step(f(wide)), step(q(small))], vec![step(f(small))]] {
            let plan = Program { steps, ..Default::default() };
            let have = workspace_floats(&plan, 132);
            assert!(have > 0);
            for s in &plan.steps {
                let need = match &s.kind {
                    StepKind::Conv { shape, .. } => split_floats(conv_split(shape, 132), shape),
                    StepKind::QConv { shape, .. } => split_floats(qconv_split(shape, 132), shape),
                    _ => 0,
                };
                assert!(need <= have, "{need} > {have}");
            }
        }
        let plan = Program { steps: vec![step(q(conv(64, 224, 64, 3)))], ..Default::default() };
        assert_eq!(workspace_floats(&plan, 132), 0, "a wide layer needs no split");
    }

    /// Structs of 32-bit fields reach the kernels as C lays them out.
    #[test]
    fn struct_parameters_pack_as_c_lays_them_out() {
        assert_eq!(super::p_i32s(&[1, -2, 3]), vec![1 | (0xffff_fffe << 32), 3]);
        assert_eq!(super::p_f32(1.5), vec![0x3fc0_0000]);
        assert_eq!(super::p_i32(-1), vec![0xffff_ffff]);
        let geo = super::conv_geo(&conv(3, 8, 4, 3)).unwrap();
        assert_eq!(geo.len(), 16, "JrtConv has 16 ints");
        assert_eq!(&geo[..7], &[1, 3, 8, 8, 4, 8, 8]);
    }

    #[test]
    fn small_layers_split_k_to_fill_the_gpu() {
        // ResNet-18's layer4 conv on 132 SMs: 8 blocks whole.
        let s = conv(512, 7, 512, 3);
        let (splits, kslice) = conv_split(&s, 132).unwrap();
        let k = 512 * 9;
        assert_eq!(kslice % 16, 0);
        assert!(splits * kslice >= k && (splits - 1) * kslice < k, "{splits} × {kslice} for {k}");
        assert!(8 * splits >= 132, "{splits} splits leave SMs idle");
        // A wide layer has blocks enough; a small K is not worth splitting;
        // depthwise layers use the direct kernel.
        assert_eq!(conv_split(&conv(64, 224, 64, 3), 132), None);
        assert_eq!(conv_split(&conv(16, 7, 512, 1), 132), None);
        let mut dw = conv(32, 7, 32, 3);
        dw.groups = 32;
        assert_eq!(conv_split(&dw, 132), None);
        // A small GPU (Orin Nano: 8 SMs) splits less.
        assert!(conv_split(&s, 8).map_or(1, |(n, _)| n) <= 2);
    }
}
