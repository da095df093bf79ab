//! The one table of the CUDA backend: per kind of step, either its
//! launches (kernel, grid, parameters) or the reason it runs on the CPU.
//! Support and lowering are the same arm, so they cannot disagree.

use super::args::{act, binary_code, by_elem, cast_code, conv_geo, conv_transpose_geo, fits, pool_geo, qout, Arg, Buf};
use super::split::{conv_split, qconv_split, split_floats};
use super::tables::{bits_before, resize_tables};
use super::{KernelLaunch, LaunchSpec, Target, UNVERIFIED};
use crate::arena::Loc;
use crate::lower::{GemmBias, Packing, Program, StepKind};
use crate::options::CudaOptions;
use jetrt_format::MAX_RANK;
use jetrt_kernels::cpu::conv::Conv2dShape;
use jetrt_kernels::cpu::Activation;

/// Threads per block of the grid-stride kernels.
pub(crate) const BLOCK: u32 = 256;
/// Most blocks of a grid-stride launch, and of a one-block-per-row one.
pub(crate) const MAX_BLOCKS: usize = 65_535;
/// Matrix products with at most this many rows use the warp-per-output
/// kernel.
pub(crate) const GEMV_ROWS: usize = 4;

/// One step being lowered, and what it needs of the session.
pub(super) struct Cx<'a> {
    pub plan: &'a Program,
    pub si: usize,
    pub weights: &'a [u8],
    pub options: &'a CudaOptions,
    pub target: &'a Target,
    /// The session's table upload, appended to.
    pub tables: &'a mut Vec<u8>,
    /// Split-K workspace values this step needs.
    pub workspace: usize,
    /// Whether this step reports through the Gather error word.
    pub gather_err: bool,
}

fn grid_for(n: usize) -> u32 {
    n.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32
}

fn ptr(b: Buf) -> Arg {
    Arg::Ptr(b)
}

const OUT: Buf = Buf::Output(0);

impl Cx<'_> {
    fn ins(&self) -> &[Loc] {
        &self.plan.locs[self.plan.steps[self.si].inputs.clone()]
    }

    /// The step's `k`-th input, or null where it has none.
    fn input(&self, k: usize) -> Buf {
        if k < self.ins().len() {
            Buf::Input(k, 0)
        } else {
            Buf::Null
        }
    }

    /// Runs only with [`CudaOptions::unverified_kernels`].
    fn unverified(&self) -> Result<(), String> {
        if self.options.unverified_kernels {
            Ok(())
        } else {
            Err(UNVERIFIED.into())
        }
    }

    fn launch(&self, name: &'static str, grid: (u32, u32, u32), block: u32, args: Vec<Arg>) -> LaunchSpec {
        LaunchSpec::Kernel(KernelLaunch { name, grid, block, args })
    }

    /// A grid-stride launch over `n` items.
    fn flat(&self, name: &'static str, n: usize, args: Vec<Arg>) -> LaunchSpec {
        self.launch(name, (grid_for(n), 1, 1), BLOCK, args)
    }

    /// The launches of the step: the table.
    pub(super) fn lower(&mut self) -> Result<Vec<LaunchSpec>, String> {
        let plan = self.plan;
        let step = &plan.steps[self.si];
        let out = plan.locs[step.outputs.start];
        let n_out = out.len / 4;
        let mut v = Vec::new();
        // Support is decided before the size: an empty output launches nothing.
        let empty = out.len == 0;
        match &step.kind {
            StepKind::Conv { shape: s, act: a, bias } => {
                conv_fits(s)?;
                let bias = if *bias { self.input(2) } else { Buf::Null };
                let mut args = vec![ptr(self.input(0)), ptr(self.input(1)), ptr(bias), ptr(OUT), conv_geo(s)?];
                args.extend(act(*a));
                if s.out_channels / s.groups < 16 {
                    v.push(self.flat("jrt_conv_direct_f32", n_out, args));
                } else {
                    let split = conv_split(s, self.target.sms);
                    let name = if self.target.fp16 { "jrt_conv_f16" } else { "jrt_conv_f32" };
                    let front = vec![ptr(bias), ptr(OUT)];
                    v.extend(self.tiled_conv((name, "jrt_splitk_reduce_f32"), s, split, args, front, act(*a).into())?);
                }
            }
            StepKind::Gemm { m, k, n, trans_a, trans_b, alpha, beta, act: a, bias } => {
                let (m, k, n) = (fits(*m)?, fits(*k)?, fits(*n)?);
                let (ars, acs) = if *trans_a { (1, m) } else { (k, 1) };
                let (brs, bcs) = if *trans_b { (1, k) } else { (n, 1) };
                let (bp, rs, cs) = match bias {
                    GemmBias::None => (Buf::Null, 0, 0),
                    GemmBias::Col => (self.input(2), 0, 1),
                    GemmBias::Row => (self.input(2), 1, 0),
                    GemmBias::Strided { rs, cs } => (self.input(2), fits(*rs)?, fits(*cs)?),
                };
                let ops = [self.input(0), self.input(1), bp, OUT];
                v.push(self.gemm(ops, (m, n, k), (ars, acs, brs, bcs), (rs, cs), (*alpha, *beta), *a)?);
            }
            StepKind::MatMul { m, k, n, act: a, batches } => {
                let (mi, ki, ni) = (fits(*m)?, fits(*k)?, fits(*n)?);
                for (b, &(oa, ob)) in batches.iter().enumerate() {
                    let ops = [Buf::Input(0, 4 * oa as u64), Buf::Input(1, 4 * ob as u64), Buf::Null, Buf::Output(4 * (b * m * n) as u64)];
                    v.push(self.gemm(ops, (mi, ni, ki), (ki, 1, ni, 1), (0, 0), (1.0, 1.0), *a)?);
                }
            }
            StepKind::MaxPool(s) => {
                v.push(self.flat("jrt_maxpool_f32", n_out, vec![ptr(self.input(0)), ptr(OUT), pool_geo(s)?]));
            }
            StepKind::AvgPool(s, count_include_pad) => {
                let args = vec![ptr(self.input(0)), ptr(OUT), pool_geo(s)?, Arg::I32(i32::from(*count_include_pad))];
                v.push(self.flat("jrt_avgpool_f32", n_out, args));
            }
            StepKind::GlobalAvgPool { planes, len } => {
                fits(planes * len)?;
                if *planes > MAX_BLOCKS {
                    return Err("too many planes for one grid".into());
                }
                let args = vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(*planes)?), Arg::I32(fits(*len)?)];
                v.push(self.launch("jrt_global_avgpool_f32", (*planes as u32, 1, 1), 256, args));
            }
            StepKind::Act(a) => {
                let mut args = vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(n_out)?)];
                args.extend(act(*a));
                v.push(self.flat("jrt_act_f32", n_out, args));
            }
            StepKind::Binary { op, act: a, a: sa, b: sb, out: so } => {
                let mut args = vec![ptr(self.input(0)), ptr(self.input(1)), ptr(OUT), Arg::I32(fits(n_out)?)];
                let name = if sa == so && sb == so {
                    "jrt_binary_same_f32"
                } else {
                    // JrtBcast: rank, out dims, strides of a, of b.
                    let rank = so.rank();
                    let mut g = vec![rank as i32];
                    let mut dims = [1i32; MAX_RANK];
                    for (d, &x) in so.dims().iter().enumerate() {
                        dims[d] = fits(x)?;
                    }
                    g.extend(dims);
                    for st in [sa, sb].map(|s| jetrt_kernels::cpu::strided::broadcast_strides(s.dims(), rank)) {
                        for &s in st.iter().take(MAX_RANK) {
                            g.push(fits(s as usize)?);
                        }
                    }
                    args.push(Arg::i32s(&g));
                    "jrt_binary_bcast_f32"
                };
                args.push(Arg::I32(binary_code(*op)));
                args.extend(act(*a));
                v.push(self.flat(name, n_out, args));
            }
            StepKind::Affine { channels, inner, act: a, .. } => {
                let stride = |k: usize| i32::from(self.ins()[k].len / 4 != 1);
                let mut args = vec![
                    ptr(self.input(0)),
                    ptr(self.input(1)),
                    ptr(self.input(2)),
                    ptr(OUT),
                    Arg::I32(fits(n_out)?),
                    Arg::I32(fits(*channels)?),
                    Arg::I32(fits((*inner).max(1))?),
                    Arg::I32(stride(1)),
                    Arg::I32(stride(2)),
                ];
                args.extend(act(*a));
                v.push(self.flat("jrt_affine_f32", n_out, args));
            }
            StepKind::Resize { planes, in_h, in_w, ty, tx, extrapolation } => {
                self.unverified()?;
                fits(planes * in_h * in_w)?;
                let t = resize_tables(self.tables, ty, tx)?.map(|off| ptr(Buf::Table(off)));
                let [iy, wy, ey, ix, wx, ex] = t;
                let args = vec![
                    ptr(self.input(0)),
                    ptr(OUT),
                    Arg::I32(fits(*planes)?),
                    Arg::I32(fits(*in_h)?),
                    Arg::I32(fits(*in_w)?),
                    Arg::I32(fits(ty.out_len())?),
                    Arg::I32(fits(tx.out_len())?),
                    iy,
                    wy,
                    ey,
                    Arg::I32(fits(ty.taps())?),
                    ix,
                    wx,
                    ex,
                    Arg::I32(fits(tx.taps())?),
                    Arg::F32(*extrapolation),
                ];
                v.push(self.flat("jrt_resize2d_f32", n_out, args));
            }
            StepKind::Lrn { p, batch, channels, inner } => {
                self.unverified()?;
                let before = (p.size - 1) / 2;
                let after = p.size - 1 - before;
                let args = vec![
                    ptr(self.input(0)),
                    ptr(OUT),
                    Arg::I32(fits(*batch)?),
                    Arg::I32(fits(*channels)?),
                    Arg::I32(fits(*inner)?),
                    Arg::I32(fits(before)?),
                    Arg::I32(fits(after)?),
                    Arg::F32(p.alpha / p.size as f32),
                    Arg::F32(p.bias),
                    Arg::F32(p.beta),
                ];
                v.push(self.flat("jrt_lrn_f32", n_out, args));
            }
            StepKind::Softmax { outer, n, inner } => {
                fits(outer * n * inner)?;
                if *inner == 1 {
                    if *outer > MAX_BLOCKS {
                        return Err("too many rows for one grid".into());
                    }
                    let args = vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(*outer)?), Arg::I32(fits(*n)?)];
                    v.push(self.launch("jrt_softmax_rows_f32", (*outer as u32, 1, 1), 256, args));
                } else {
                    let args = vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(*outer)?), Arg::I32(fits(*n)?), Arg::I32(fits(*inner)?)];
                    v.push(self.launch("jrt_softmax_strided_f32", ((outer * inner).div_ceil(256) as u32, 1, 1), 256, args));
                }
            }
            StepKind::Concat { outer, inner, total } => {
                let row = fits(total * inner)?;
                let mut offset = 0usize;
                for (k, l) in self.ins().iter().enumerate() {
                    let chunk = if *outer == 0 { 0 } else { l.len / 4 / outer };
                    if chunk > 0 {
                        let args = vec![
                            ptr(Buf::Input(k, 0)),
                            ptr(OUT),
                            Arg::I32(fits(*outer)?),
                            Arg::I32(fits(chunk)?),
                            Arg::I32(row),
                            Arg::I32(fits(offset)?),
                        ];
                        v.push(self.flat("jrt_concat_4", outer * chunk, args));
                    }
                    offset += chunk;
                }
            }
            StepKind::Copy => {
                if self.ins().first().map(|l| (l.in_arena, l.start)) != Some((out.in_arena, out.start)) {
                    v.push(LaunchSpec::Copy { dst: OUT, src: self.input(0), len: out.len });
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
                let mut dims = [1usize; MAX_RANK];
                for a in 0..d.len() {
                    st[a] = in_st[perm[a]];
                    dims[a] = d[perm[a]];
                }
                v.push(self.strided(4, 0, &st, &dims[..d.len()])?);
            }
            StepKind::Strided { elem, base, strides, out: so } => {
                let st: Vec<i64> = strides.iter().map(|&s| s as i64).collect();
                v.push(self.strided(*elem, *base as i64, &st, so.dims())?);
            }
            StepKind::Quantize { scale, zp } => {
                self.unverified()?;
                let n = out.len;
                let args = vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(n)?), Arg::F32(1.0 / scale), Arg::I32(*zp as i32)];
                v.push(self.flat("jrt_quantize", n, args));
            }
            StepKind::QuantizeChannels { inner, scale, zp } => {
                let n = out.len;
                let channels = (self.ins()[1].len / 2).min(self.ins()[2].len / 2);
                if channels > 0 && *inner > 0 {
                    let args = vec![
                        ptr(self.input(0)),
                        ptr(self.input(1)),
                        ptr(self.input(2)),
                        ptr(OUT),
                        Arg::I32(fits(n)?),
                        Arg::I32(fits(*inner)?),
                        Arg::I32(fits(channels)?),
                        Arg::F32(1.0 / scale),
                        Arg::I32(*zp as i32),
                    ];
                    v.push(self.flat("jrt_quantize_channels", n, args));
                }
            }
            StepKind::Dequantize { scale, zp } => {
                self.unverified()?;
                let args = vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(n_out)?), Arg::F32(*scale), Arg::I32(*zp as i32)];
                v.push(self.flat("jrt_dequantize", n_out, args));
            }
            StepKind::MaxPoolI8(s) => {
                self.unverified()?;
                v.push(self.flat("jrt_maxpool_i8", out.len, vec![ptr(self.input(0)), ptr(OUT), pool_geo(s)?]));
            }
            StepKind::QConv { shape: s, x_zp, act: a, out: o } => {
                let kp = jetrt_kernels::cpu::int8::conv_kp(s);
                let n = s.batch * s.out_channels * s.out_h * s.out_w;
                conv_fits(s)?;
                let (x, w, scales, bias, pad) = (self.input(0), self.input(1), self.input(2), self.input(3), self.input(4));
                let mut args = vec![ptr(x), ptr(w), ptr(scales), ptr(bias), ptr(pad), ptr(OUT), conv_geo(s)?];
                args.extend([Arg::I32(fits(kp)?), Arg::I32(*x_zp as i32)]);
                let mut back: Vec<Arg> = act(*a).into();
                back.extend(qout(o));
                args.extend(back.iter().cloned());
                if s.is_depthwise() {
                    v.push(self.flat("jrt_qconv_dw", n, args));
                } else {
                    let split = qconv_split(s, self.target.sms);
                    let front = vec![ptr(scales), ptr(bias), ptr(OUT)];
                    v.extend(self.tiled_conv(("jrt_qconv", "jrt_qsplitk_reduce"), s, split, args, front, back)?);
                }
            }
            StepKind::QGemm { m, k, n, act: a, out: o } => {
                let kp = k.next_multiple_of(jetrt_kernels::cpu::int8::K_ALIGN);
                let warps = fits(m * n)? as u32;
                let mut args = vec![
                    ptr(self.input(0)),
                    ptr(self.input(1)),
                    ptr(self.input(2)),
                    ptr(self.input(3)),
                    ptr(OUT),
                    Arg::I32(fits(*m)?),
                    Arg::I32(fits(*n)?),
                    Arg::I32(fits(*k)?),
                    Arg::I32(fits(kp)?),
                ];
                args.extend(act(*a));
                args.extend(qout(o));
                v.push(self.launch("jrt_qgemm", (warps.div_ceil(8), 1, 1), 256, args));
            }
            StepKind::PackedGemm { m, k, n, act: a, rows: Packing::Q4 { group } } => {
                fits(m * k)?;
                fits(m * n)?;
                let mut args = vec![
                    ptr(self.input(0)),
                    ptr(self.input(1)),
                    ptr(self.input(2)),
                    ptr(self.input(3)),
                    ptr(OUT),
                    Arg::I32(fits(*m)?),
                    Arg::I32(fits(*n)?),
                    Arg::I32(fits(*k)?),
                    Arg::I32(fits(*group)?),
                ];
                args.extend(act(*a));
                if *m <= GEMV_ROWS {
                    v.push(self.launch("jrt_q4gemv", ((m * n).div_ceil(8) as u32, 1, 1), 256, args));
                } else {
                    if m.div_ceil(64) > MAX_BLOCKS {
                        return Err("matrix too tall for one grid".into());
                    }
                    v.push(self.launch("jrt_q4gemm", (n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1), 256, args));
                }
            }
            StepKind::PackedConv { shape: s, act: a, rows: Packing::Q4 { group } } => {
                if s.groups != 1 {
                    return Err("grouped convolution with packed weights".into());
                }
                conv_fits(s)?;
                let mut args = vec![ptr(self.input(0)), ptr(self.input(1)), ptr(self.input(2)), ptr(self.input(3)), ptr(OUT)];
                args.extend([conv_geo(s)?, Arg::I32(fits(*group)?)]);
                args.extend(act(*a));
                v.push(self.launch("jrt_q4conv", conv_grid(s)?, 256, args));
            }
            StepKind::PackedGemm { m, k, n, act: a, rows: Packing::Sparse } => {
                self.unverified()?;
                fits(m * k)?;
                fits(m * n)?;
                if m.div_ceil(64) > MAX_BLOCKS {
                    return Err("matrix too tall for one grid".into());
                }
                let mut args = self.sparse_operands(*n, *k)?;
                args.extend([Arg::I32(fits(*m)?), Arg::I32(fits(*n)?), Arg::I32(fits(*k)?)]);
                args.extend(act(*a));
                v.push(self.launch("jrt_spgemm", (n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1), 256, args));
            }
            StepKind::PackedConv { shape: s, act: a, rows: Packing::Sparse } => {
                if s.groups != 1 {
                    return Err("grouped convolution with packed weights".into());
                }
                self.unverified()?;
                conv_fits(s)?;
                let mut args = self.sparse_operands(s.out_channels, s.in_channels * s.kernel_h * s.kernel_w)?;
                args.push(conv_geo(s)?);
                args.extend(act(*a));
                v.push(self.launch("jrt_spconv", conv_grid(s)?, 256, args));
            }
            StepKind::Reduce { op, input, axes } => {
                use jetrt_kernels::cpu::reduce::ReduceOp as R;
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
                let args =
                    vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(n_out)?), Arg::I32(fits(window)?), Arg::i32s(&g), Arg::I32(code)];
                v.push(self.flat("jrt_reduce_f32", n_out, args));
            }
            StepKind::LayerNorm { outer, n, epsilon, bias } => {
                if *outer > MAX_BLOCKS {
                    return Err("too many rows for one grid".into());
                }
                fits(outer * n)?;
                let stride = |k: usize| i32::from(self.ins()[k].len / 4 != 1);
                let (bp, bs) = if *bias { (self.input(2), stride(2)) } else { (Buf::Null, 0) };
                let args = vec![
                    ptr(self.input(0)),
                    ptr(self.input(1)),
                    ptr(bp),
                    ptr(OUT),
                    Arg::I32(fits(*outer)?),
                    Arg::I32(fits(*n)?),
                    Arg::I32(stride(1)),
                    Arg::I32(bs),
                    Arg::F32(*epsilon),
                ];
                v.push(self.launch("jrt_layernorm_f32", (*outer as u32, 1, 1), 256, args));
            }
            StepKind::Where { elem, strides, out: so } => {
                let name = by_elem(["jrt_where_1", "jrt_where_2", "jrt_where_4", "jrt_where_8"], *elem)?;
                let n = so.dims().iter().product::<usize>();
                let mut g = vec![so.rank() as i32];
                g.extend((0..MAX_RANK).map(|a| so.dims().get(a).map_or(1, |&x| x as i32)));
                for st in strides {
                    for &s in st.iter().take(MAX_RANK) {
                        g.push(fits(s as usize)?);
                    }
                }
                let args = vec![ptr(self.input(0)), ptr(self.input(1)), ptr(self.input(2)), ptr(OUT), Arg::I32(fits(n)?), Arg::i32s(&g)];
                v.push(self.flat(name, n, args));
            }
            StepKind::Pad { elem, mode, input, begin, value, out: so } => {
                use jetrt_kernels::cpu::strided::PadMode as P;
                let name = by_elem(["jrt_pad_1", "jrt_pad_2", "jrt_pad_4", "jrt_pad_8"], *elem)?;
                let code = match mode {
                    P::Constant => 0,
                    P::Reflect => 1,
                    P::Edge => 2,
                    P::Wrap => 3,
                };
                let n = so.dims().iter().product::<usize>();
                let rank = so.rank();
                let mut g = vec![rank as i32, code];
                g.extend((0..MAX_RANK).map(|a| input.dims().get(a).map_or(1, |&x| x as i32)));
                g.extend((0..MAX_RANK).map(|a| if a < rank { begin[a] as i32 } else { 0 }));
                g.extend((0..MAX_RANK).map(|a| so.dims().get(a).map_or(1, |&x| x as i32)));
                let args = vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(n)?), Arg::i32s(&g), Arg::U64(u64::from_le_bytes(*value))];
                v.push(self.flat(name, n, args));
            }
            StepKind::Gather { elem, outer, axis_len, inner, wide } => {
                let name = by_elem(["jrt_gather_1", "jrt_gather_2", "jrt_gather_4", "jrt_gather_8"], *elem)?;
                let n_idx = self.ins()[1].len / if *wide { 8 } else { 4 };
                let n = outer * n_idx * inner;
                fits(n)?;
                fits(outer * axis_len * inner)?;
                self.gather_err = true;
                let args = vec![
                    ptr(self.input(0)),
                    ptr(self.input(1)),
                    Arg::I32(i32::from(*wide)),
                    ptr(OUT),
                    Arg::I32(fits(*outer)?),
                    Arg::I32(fits(n_idx)?),
                    Arg::I32(fits(*axis_len)?),
                    Arg::I32(fits(*inner)?),
                    ptr(Buf::GatherErr),
                    Arg::I32(fits(self.si)?),
                ];
                v.push(self.flat(name, n, args));
            }
            StepKind::Cast { from, to } => {
                let (Some(f), Some(t)) = (cast_code(*from), cast_code(*to)) else {
                    return Err("no GPU kernel for this element type".into());
                };
                self.unverified()?;
                let n = out.len / to.size();
                v.push(self.flat("jrt_cast", n, vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(n)?), Arg::I32(f), Arg::I32(t)]));
            }
            StepKind::ConvTranspose { shape: s, bias } => {
                self.unverified()?;
                fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
                let bias = if *bias { self.input(2) } else { Buf::Null };
                let args = vec![ptr(self.input(0)), ptr(self.input(1)), ptr(bias), ptr(OUT), conv_transpose_geo(s)?];
                v.push(self.flat("jrt_conv_transpose_f32", n_out, args));
            }
        }
        if empty {
            v.clear();
            self.workspace = 0;
            self.gather_err = false;
        }
        Ok(v)
    }

    /// A tiled convolution (`names.0`, given its parameters up to the
    /// split ones) over the grid (pixel tiles, channel tiles, images ×
    /// groups × splits); when `split` cuts K, the reduction `names.1`
    /// finishes, taking (workspace, `front`..., count, splits, channels,
    /// pixels, `back`...).
    fn tiled_conv(
        &mut self,
        names: (&'static str, &'static str),
        s: &Conv2dShape,
        split: Option<(usize, usize)>,
        mut args: Vec<Arg>,
        front: Vec<Arg>,
        back: Vec<Arg>,
    ) -> Result<Vec<LaunchSpec>, String> {
        let (splits, kslice) = split.unwrap_or((1, 0));
        let (p, mg) = (s.out_h * s.out_w, s.out_channels / s.groups);
        let n = s.batch * s.out_channels * p;
        let grid = (p.div_ceil(64) as u32, mg.div_ceil(64) as u32, fits(s.batch * s.groups * splits)? as u32);
        if grid.1 as usize > MAX_BLOCKS || grid.2 as usize > MAX_BLOCKS {
            return Err("grid too large".into());
        }
        args.extend([Arg::I32(splits as i32), Arg::I32(fits(kslice)?), ptr(if splits > 1 { Buf::Workspace } else { Buf::Null })]);
        let mut v = vec![self.launch(names.0, grid, 256, args)];
        if splits > 1 {
            self.workspace = split_floats(split, s);
            let mut reduce = vec![ptr(Buf::Workspace)];
            reduce.extend(front);
            reduce.extend([Arg::I32(fits(n)?), Arg::I32(splits as i32), Arg::I32(fits(s.out_channels)?), Arg::I32(fits(p)?)]);
            reduce.extend(back);
            v.push(self.flat(names.1, n, reduce));
        }
        Ok(v)
    }

    /// A float matrix product `[a, b, bias, y]` by strides.
    fn gemm(
        &self,
        [a, b, bias, y]: [Buf; 4],
        (m, n, k): (i32, i32, i32),
        (ars, acs, brs, bcs): (i32, i32, i32, i32),
        (rs, cs): (i32, i32),
        (alpha, beta): (f32, f32),
        activation: Activation,
    ) -> Result<LaunchSpec, String> {
        fits(m as usize * n as usize)?;
        let mut args = vec![ptr(a), ptr(b), ptr(bias), ptr(y)];
        args.extend([m, n, k, ars, acs, brs, bcs, rs, cs].map(Arg::I32));
        args.extend([Arg::F32(alpha), Arg::F32(beta)]);
        args.extend(act(activation));
        if m as usize <= GEMV_ROWS {
            // One warp per output.
            return Ok(self.launch("jrt_gemv_f32", ((m as u32 * n as u32).div_ceil(8), 1, 1), 256, args));
        }
        let grid = ((n as u32).div_ceil(64), (m as u32).div_ceil(64), 1);
        if grid.1 as usize > MAX_BLOCKS {
            return Err("matrix too tall for one grid".into());
        }
        Ok(self.launch(if self.target.fp16 { "jrt_gemm_f16" } else { "jrt_gemm_f32" }, grid, 256, args))
    }

    /// A strided copy of input 0 to the output.
    fn strided(&self, elem: usize, base: i64, st: &[i64], out: &[usize]) -> Result<LaunchSpec, String> {
        let name = by_elem(["jrt_strided_1", "jrt_strided_2", "jrt_strided_4", "jrt_strided_8"], elem)?;
        let n: usize = out.iter().product();
        // JrtStrided: base, st[8] (i64), out[8], rank, pad (i32).
        let mut blob = vec![base as u64];
        blob.extend((0..MAX_RANK).map(|a| st.get(a).copied().unwrap_or(0) as u64));
        let mut tail = [1i32; MAX_RANK + 2];
        for (a, &d) in out.iter().enumerate() {
            tail[a] = fits(d)?;
        }
        tail[MAX_RANK] = out.len() as i32;
        tail[MAX_RANK + 1] = 0;
        let Arg::Struct(t) = Arg::i32s(&tail) else { unreachable!("i32s makes a struct") };
        blob.extend(t);
        Ok(self.flat(name, n, vec![ptr(self.input(0)), ptr(OUT), Arg::I32(fits(n)?), Arg::Struct(blob)]))
    }

    /// The operands of a sparse product (`rows` weight rows of `k`):
    /// input, mask, values, row starts, the table of bits before each mask
    /// byte, the value count, bias, output. The mask must be a constant of
    /// the file (checked when the model was opened) to build the table.
    fn sparse_operands(&mut self, rows: usize, k: usize) -> Result<Vec<Arg>, String> {
        let mask = self.ins()[1];
        let nnz = (self.ins()[2].len / 4) as u64;
        let mb = k.div_ceil(8);
        let bytes = (!mask.in_arena).then(|| self.weights.get(mask.start..mask.start + rows * mb)).flatten();
        let bytes = bytes.ok_or("the sparse mask is not a constant of the file")?;
        let at = self.tables.len() as u64;
        for n in bits_before(bytes, mb) {
            self.tables.extend_from_slice(&n.to_le_bytes());
        }
        Ok(vec![
            ptr(self.input(0)),
            ptr(self.input(1)),
            ptr(self.input(2)),
            ptr(self.input(3)),
            ptr(Buf::Table(at)),
            Arg::U64(nnz),
            ptr(self.input(4)),
            ptr(OUT),
        ])
    }
}

/// A convolution's input and output element counts fit the kernels'
/// 32-bit indices.
fn conv_fits(s: &Conv2dShape) -> Result<(), String> {
    fits(s.batch * s.out_channels * s.out_h * s.out_w)?;
    fits(s.batch * s.in_channels * s.in_h * s.in_w)?;
    Ok(())
}

/// (pixel tiles, channel tiles, images) of the int4 and sparse convolutions.
fn conv_grid(s: &Conv2dShape) -> Result<(u32, u32, u32), String> {
    let grid = ((s.out_h * s.out_w).div_ceil(64) as u32, s.out_channels.div_ceil(64) as u32, fits(s.batch)? as u32);
    if grid.1 as usize > MAX_BLOCKS || grid.2 as usize > MAX_BLOCKS {
        return Err("grid too large".into());
    }
    Ok(grid)
}
