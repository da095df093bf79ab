//! The shape rules: what an op's inputs must be and what its outputs are.
//! The converter infers shapes with them; the reader checks every step of
//! a file with them before anything runs; the runtime lowers steps with the
//! kernel geometry they compute.

use crate::op::{err, Conv2d, ConvTranspose2d, Gemm, Meta, Op, PadMode, Pool2d, QOutParams, CAST_TYPES, Q8_K_ALIGN};
use crate::{DType, Shape, MAX_RANK};
use jetrt_kernels::cpu::conv::{out_len, Conv2dShape};
use jetrt_kernels::cpu::conv_transpose::ConvTranspose2dShape;
use jetrt_kernels::cpu::int8;
use jetrt_kernels::cpu::pool::Pool2dShape;

impl Op {
    /// The outputs (element type and shape) for these inputs, or why the
    /// inputs do not fit the op. `Copy` cannot infer (its output shape is the
    /// caller's choice).
    pub fn infer(&self, inputs: &[Meta]) -> Result<Vec<Meta>, String> {
        self.check_params()?;
        let (lo, hi) = self.kind().inputs();
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
                want(1, "W", DType::I8, Some(&[m, int8::conv_kp(&s)]))?;
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
pub fn conv_shape(c: &Conv2d, inputs: &[Meta]) -> Result<Conv2dShape, String> {
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
pub fn q_conv_shape(op: &Op, inputs: &[Meta]) -> Result<Conv2dShape, String> {
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
pub fn gemm_dims(g: &Gemm, inputs: &[Meta]) -> Result<(usize, usize, usize), String> {
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
pub fn conv_transpose_shape(c: &ConvTranspose2d, inputs: &[Meta]) -> Result<ConvTranspose2dShape, String> {
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
pub fn matmul_dims(inputs: &[Meta]) -> Result<(Shape, usize, usize, usize), String> {
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
pub fn pool_shape(p: &Pool2d, x: &Shape) -> Result<Pool2dShape, String> {
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
