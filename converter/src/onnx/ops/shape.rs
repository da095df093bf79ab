//! Shape and data-movement operators. On constants they are evaluated at
//! conversion (the Shape → Gather → Concat → Reshape chains exporters emit
//! become constants once shapes are fixed); on run-time tensors they become
//! Copy, Concat or Transpose steps.

use super::super::import::{constant_value, Ctx, N};
use super::super::tensor::dtype_of;
use super::{axis, usizes};
use crate::graph::ValueId;
use crate::tensor::{Data, Tensor};
use jetrt::DType;
use jetrt_format::op::{Op, PadMode, PadParams, Perm, SliceParams, CAST_TYPES};
use jetrt_format::shape::broadcast;
use jetrt_format::Shape;

pub(crate) fn identity(_cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    Ok(vec![n.input(0)?])
}

/// Dropout at inference is the identity; its mask, if read, is all true.
pub(crate) fn dropout(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    if n.opset >= 12 {
        if let Some(t) = n.opt_input(2) {
            let training = cx.konst(t).and_then(|t| t.ints().or_else(|| Some(t.floats().iter().map(|&f| f as i64).collect())));
            match training {
                Some(v) if v.iter().all(|&x| x == 0) => {}
                Some(_) => return Err("training_mode=true is not supported".into()),
                None => return Err("training_mode must be a constant".into()),
            }
        }
    }
    let x = n.input(0)?;
    let mut out = vec![x];
    if n.wants_output(1) {
        let shape = cx.shape(x).to_vec();
        let numel = shape.iter().product();
        out.push(cx.add_const(n.temp("mask"), Tensor::new(shape, Data::Bool(vec![true; numel]))));
    }
    Ok(out)
}

pub(crate) fn constant(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let t = constant_value(n)?;
    Ok(vec![cx.add_const(n.name.clone(), t)])
}

pub(crate) fn constant_of_shape(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let shape = usizes(&cx.const_ints(n.input(0)?, "the shape")?, "shape")?;
    let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("shape overflows")?;
    let value = n.tensor("value")?.unwrap_or_else(|| Tensor::f32(vec![1], vec![0.0]));
    if value.numel() != 1 {
        return Err("value must hold one element".into());
    }
    let data = value.data.splat(0, numel);
    Ok(vec![cx.add_const(n.name.clone(), Tensor::new(shape, data))])
}

pub(crate) fn shape(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let dims: Vec<i64> = cx.shape(n.input(0)?).iter().map(|&d| d as i64).collect();
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(n.int("start", 0));
    let end = n.attr("end").and_then(|a| a.i).map_or(dims.len(), clamp);
    let v = dims[start..end.max(start)].to_vec();
    Ok(vec![cx.add_const(n.name.clone(), Tensor::i64(vec![v.len()], v))])
}

pub(crate) fn cast(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let to = n.int("to", 0) as i32;
    let dtype = dtype_of(to).ok_or_else(|| format!("cast to type {to} is not supported"))?;
    Ok(vec![cast_to(cx, n.name.clone(), n.input(0)?, dtype)?])
}

/// CastLike: Cast to the element type of the second input.
pub(crate) fn cast_like(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let dtype = cx.dtype(n.input(1)?);
    Ok(vec![cast_to(cx, n.name.clone(), n.input(0)?, dtype)?])
}

/// `x` as `dtype`: a constant is converted now, a run-time tensor gets a
/// Cast step (or is `x` itself when it already has that type).
pub(crate) fn cast_to(cx: &mut Ctx<'_>, name: String, x: ValueId, dtype: DType) -> Result<ValueId, String> {
    if let Some(t) = cx.konst(x) {
        let data = t.data.cast(dtype).ok_or_else(|| format!("cannot cast {:?} to {dtype:?}", t.dtype()))?;
        let t = Tensor::new(t.shape.clone(), data);
        return Ok(cx.add_const(name, t));
    }
    if cx.dtype(x) == dtype {
        return Ok(x);
    }
    if CAST_TYPES.contains(&cx.dtype(x)) && CAST_TYPES.contains(&dtype) {
        return cx.node(name, Op::Cast { to: dtype }, vec![x]);
    }
    Err(format!("casting {:?} to {dtype:?} at run time is not supported", cx.dtype(x)))
}

/// Resolves a Reshape target (0 = copy the input's dim unless allowzero,
/// −1 = inferred).
fn reshape_target(input: &[usize], spec: &[i64], allow_zero: bool) -> Result<Vec<usize>, String> {
    let numel: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => {
                out.push(*input.get(i).ok_or_else(|| format!("shape {spec:?} copies axis {i}, which the input {input:?} lacks"))?)
            }
            d if d >= 0 => out.push(d as usize),
            _ => return Err(format!("invalid shape {spec:?}")),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {spec:?}"));
        }
        out[i] = numel / known;
    }
    if out.iter().product::<usize>() != numel {
        return Err(format!("cannot reshape {input:?} ({numel} elements) to {spec:?}"));
    }
    Ok(out)
}

pub(crate) fn reshape(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let spec =
        if n.opset < 5 { n.ints("shape").ok_or("shape attribute missing")? } else { cx.const_ints(n.input(1)?, "the target shape")? };
    let target = reshape_target(cx.shape(x), &spec, n.int("allowzero", 0) != 0)?;
    Ok(vec![cx.reshape(n.name.clone(), x, target)])
}

pub(crate) fn flatten(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let s = cx.shape(x).to_vec();
    let a = n.int("axis", 1);
    let a = if a < 0 { a + s.len() as i64 } else { a };
    if a < 0 || a > s.len() as i64 {
        return Err(format!("axis {} out of range for rank {}", n.int("axis", 1), s.len()));
    }
    let a = a as usize;
    let target = vec![s[..a].iter().product(), s[a..].iter().product()];
    Ok(vec![cx.reshape(n.name.clone(), x, target)])
}

/// Axes from the attribute (opset < 13) or the second input.
fn axes(cx: &Ctx<'_>, n: &N<'_>) -> Result<Option<Vec<i64>>, String> {
    if n.opset < 13 {
        return Ok(n.ints("axes"));
    }
    match n.opt_input(1) {
        Some(v) => Ok(Some(cx.const_ints(v, "axes")?)),
        None => Ok(None),
    }
}

pub(crate) fn squeeze(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let s = cx.shape(x).to_vec();
    let target: Vec<usize> = match axes(cx, n)? {
        None => s.iter().copied().filter(|&d| d != 1).collect(),
        Some(ax) => {
            let ax: Vec<usize> = ax.iter().map(|&a| axis(a, s.len())).collect::<Result<_, _>>()?;
            if let Some(&a) = ax.iter().find(|&&a| s[a] != 1) {
                return Err(format!("cannot squeeze axis {a} of size {}", s[a]));
            }
            s.iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, &d)| d).collect()
        }
    };
    Ok(vec![cx.reshape(n.name.clone(), x, target)])
}

pub(crate) fn unsqueeze(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let s = cx.shape(x).to_vec();
    let ax = axes(cx, n)?.ok_or("axes are required")?;
    let rank = s.len() + ax.len();
    let mut ax: Vec<usize> = ax.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?;
    ax.sort_unstable();
    if ax.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("repeated axes {ax:?}"));
    }
    let mut it = s.iter();
    let target = (0..rank).map(|i| if ax.contains(&i) { 1 } else { *it.next().unwrap_or(&1) }).collect();
    Ok(vec![cx.reshape(n.name.clone(), x, target)])
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

pub(crate) fn transpose(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let s = cx.shape(x).to_vec();
    let perm = match n.ints("perm") {
        Some(p) => usizes(&p, "perm")?,
        None => (0..s.len()).rev().collect(),
    };
    let p = Perm::new(&perm)
        .filter(|p| p.rank() == s.len())
        .ok_or_else(|| format!("perm {perm:?} is not a permutation of {} axes", s.len()))?;
    if let Some(t) = cx.konst(x) {
        let out_shape: Vec<usize> = perm.iter().map(|&a| s[a]).collect();
        let st = strides(&s);
        let total: usize = out_shape.iter().product();
        let mut idx = Vec::with_capacity(total);
        let mut counter = vec![0usize; out_shape.len()];
        for _ in 0..total {
            idx.push(counter.iter().zip(&perm).map(|(&c, &a)| c * st[a]).sum());
            for ax in (0..out_shape.len()).rev() {
                counter[ax] += 1;
                if counter[ax] < out_shape[ax] {
                    break;
                }
                counter[ax] = 0;
            }
        }
        let t = Tensor::new(out_shape, t.data.gather(&idx));
        return Ok(vec![cx.add_const(n.name.clone(), t)]);
    }
    Ok(vec![cx.node(n.name.clone(), Op::Transpose { perm: p }, vec![x])?])
}

pub(crate) fn concat(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let inputs: Vec<ValueId> = (0..n.inputs.len()).map(|i| n.input(i)).collect::<Result<_, _>>()?;
    let first = *inputs.first().ok_or("no inputs")?;
    let rank = cx.shape(first).len();
    let a = axis(n.attr("axis").and_then(|x| x.i).ok_or("axis is required")?, rank)?;
    if inputs.iter().all(|&v| cx.konst(v).is_some()) {
        // Constant: gather each input's rows in output order.
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| cx.shape(v).to_vec()).collect();
        let outer: usize = shapes[0][..a].iter().product();
        let mut out_shape = shapes[0].clone();
        out_shape[a] = shapes.iter().map(|s| s[a]).sum();
        let mut parts = Vec::new();
        for o in 0..outer {
            for (&v, s) in inputs.iter().zip(&shapes) {
                if s.len() != rank || s.iter().enumerate().any(|(i, &d)| i != a && d != shapes[0][i]) {
                    return Err(format!("input shapes {shapes:?} do not match outside axis {a}"));
                }
                let run: usize = s[a..].iter().product();
                let t = cx.konst(v).ok_or("internal: constant vanished")?;
                parts.push(t.data.gather(&(o * run..(o + 1) * run).collect::<Vec<_>>()));
            }
        }
        let refs: Vec<&Data> = parts.iter().collect();
        let data = Data::concat(&refs).ok_or("inputs have different element types")?;
        let data = if refs.is_empty() { cx.konst(first).ok_or("internal")?.data.gather(&[]) } else { data };
        return Ok(vec![cx.add_const(n.name.clone(), Tensor::new(out_shape, data))]);
    }
    if inputs.iter().any(|&v| cx.dtype(v) != DType::F32) {
        return Err("concatenating non-float tensors at run time is not supported".into());
    }
    Ok(vec![cx.node(n.name.clone(), Op::Concat { axis: a }, inputs)?])
}

pub(crate) fn gather(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let (x, i) = (n.input(0)?, n.input(1)?);
    let (Some(data), Some(ind)) = (cx.konst(x), cx.konst(i)) else {
        let a = axis(n.int("axis", 0), cx.shape(x).len())?;
        let i = match cx.dtype(i) {
            DType::I64 | DType::I32 => i,
            other => return Err(format!("indices of type {other:?} are not supported (int64 or int32)")),
        };
        if let Some(ind) = cx.konst(i) {
            // Constant indices are checked now rather than at run time.
            let dim = cx.shape(x)[a] as i64;
            if let Some(k) = ind.ints().unwrap_or_default().into_iter().find(|&k| k < -dim || k >= dim) {
                return Err(format!("index {k} out of range for axis {a} of size {dim}"));
            }
        }
        return Ok(vec![cx.node(n.name.clone(), Op::Gather { axis: a }, vec![x, i])?]);
    };
    let s = data.shape.clone();
    let a = axis(n.int("axis", 0), s.len())?;
    let indices = ind.ints().ok_or("indices must be integers")?;
    let dim = s[a] as i64;
    let mut norm = Vec::with_capacity(indices.len());
    for &k in &indices {
        let k2 = if k < 0 { k + dim } else { k };
        if k2 < 0 || k2 >= dim {
            return Err(format!("index {k} out of range for axis {a} of size {dim}"));
        }
        norm.push(k2 as usize);
    }
    let outer: usize = s[..a].iter().product();
    let inner: usize = s[a + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * norm.len() * inner);
    for o in 0..outer {
        for &k in &norm {
            let base = (o * s[a] + k) * inner;
            idx.extend(base..base + inner);
        }
    }
    let mut out_shape = s[..a].to_vec();
    out_shape.extend_from_slice(&ind.shape);
    out_shape.extend_from_slice(&s[a + 1..]);
    let t = Tensor::new(out_shape, data.data.gather(&idx));
    Ok(vec![cx.add_const(n.name.clone(), t)])
}

/// GatherElements on constants (index tables exporters compute, BERT's
/// position ids): folded at conversion.
pub(crate) fn gather_elements(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let (x, i) = (n.input(0)?, n.input(1)?);
    let (Some(data), Some(ind)) = (cx.konst(x), cx.konst(i)) else {
        return Err("GatherElements on tensors computed at run time is not supported (only on constants)".into());
    };
    let s = &data.shape;
    let r = s.len();
    let a = axis(n.int("axis", 0), r)?;
    if ind.shape.len() != r || (0..r).any(|d| d != a && ind.shape[d] > s[d]) {
        return Err(format!("indices of shape {:?} do not fit data of shape {s:?} along axis {a}", ind.shape));
    }
    let indices = ind.ints().ok_or("indices must be integers")?;
    let mut strides = vec![1usize; r];
    for d in (0..r.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * s[d + 1];
    }
    let dim = s[a] as i64;
    let mut coord = vec![0usize; r];
    let mut idx = Vec::with_capacity(indices.len());
    for &k in &indices {
        let k2 = if k < 0 { k + dim } else { k };
        if k2 < 0 || k2 >= dim {
            return Err(format!("index {k} out of range for axis {a} of size {dim}"));
        }
        idx.push((0..r).map(|d| if d == a { k2 as usize } else { coord[d] } * strides[d]).sum());
        for d in (0..r).rev() {
            coord[d] += 1;
            if coord[d] < ind.shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    let t = Tensor::new(ind.shape.clone(), data.data.gather(&idx));
    Ok(vec![cx.add_const(n.name.clone(), t)])
}

/// Normalizes one axis of an ONNX Slice: (start, step, length) inside a
/// dimension of `dim`, following the spec's clamping rules.
pub(crate) fn slice_axis(dim: usize, start: i64, end: i64, step: i64) -> Result<(usize, i64, usize), String> {
    if step == 0 {
        return Err("slice step 0".into());
    }
    let d = dim as i128;
    let (mut s, mut e) = (start as i128, end as i128);
    if s < 0 {
        s += d;
    }
    if e < 0 {
        e += d;
    }
    let t = step as i128;
    let len = if t > 0 {
        s = s.clamp(0, d);
        e = e.clamp(0, d);
        if e > s {
            (e - s + t - 1) / t
        } else {
            0
        }
    } else {
        s = s.clamp(-1, d - 1);
        e = e.clamp(-1, d - 1);
        if s > e {
            (s - e + (-t) - 1) / (-t)
        } else {
            0
        }
    };
    if len == 0 {
        return Ok((0, step, 0));
    }
    Ok((s as usize, step, len as usize))
}

/// Adds a Slice step (folded when `x` is a constant) from per-axis
/// (start, step, length).
fn add_slice(cx: &mut Ctx<'_>, name: String, x: ValueId, axes: &[(usize, i64, usize)]) -> Result<ValueId, String> {
    let rank = axes.len();
    let mut p = SliceParams { rank, start: [0; 8], step: [1; 8], len: [0; 8] };
    if rank > p.start.len() {
        return Err(format!("rank {rank} exceeds 8"));
    }
    for (a, &(s, t, l)) in axes.iter().enumerate() {
        p.start[a] = s;
        p.step[a] = t;
        p.len[a] = l;
    }
    if axes.iter().zip(cx.shape(x)).all(|(&(s, t, l), &d)| s == 0 && t == 1 && l == d) {
        return Ok(x);
    }
    cx.node(name, Op::Slice(p), vec![x])
}

pub(crate) fn slice(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let dims = cx.shape(x).to_vec();
    let (starts, ends, axes, steps) = if n.opset < 10 {
        (n.ints("starts").ok_or("starts missing")?, n.ints("ends").ok_or("ends missing")?, n.ints("axes"), None)
    } else {
        let get = |i: usize, what: &str| -> Result<Option<Vec<i64>>, String> { n.opt_input(i).map(|v| cx.const_ints(v, what)).transpose() };
        (get(1, "starts")?.ok_or("starts missing")?, get(2, "ends")?.ok_or("ends missing")?, get(3, "axes")?, get(4, "steps")?)
    };
    let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps differ in length".into());
    }
    let mut per: Vec<(usize, i64, usize)> = dims.iter().map(|&d| (0, 1, d)).collect();
    let mut seen = vec![false; dims.len()];
    for k in 0..starts.len() {
        let a = axis(axes[k], dims.len())?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(format!("axis {a} is sliced twice"));
        }
        per[a] = slice_axis(dims[a], starts[k], ends[k], steps[k])?;
    }
    Ok(vec![add_slice(cx, n.name.clone(), x, &per)?])
}

pub(crate) fn split(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let dims = cx.shape(x).to_vec();
    let a = axis(n.int("axis", 0), dims.len())?;
    let outputs = n.proto.output.len();
    let sizes: Vec<usize> = match (n.opset < 13, n.opt_input(1), n.ints("split")) {
        (true, _, Some(s)) => usizes(&s, "split")?,
        (false, Some(v), _) => usizes(&cx.const_ints(v, "split")?, "split")?,
        _ => {
            let parts = if n.opset >= 18 { n.attr("num_outputs").and_then(|a| a.i).map_or(outputs, |v| v as usize) } else { outputs };
            if parts == 0 {
                return Err("no outputs".into());
            }
            // Equal parts; since opset 18 the last may be smaller.
            let chunk = dims[a].div_ceil(parts);
            if n.opset < 18 && !dims[a].is_multiple_of(parts) {
                return Err(format!("axis {a} of size {} does not split into {parts} equal parts", dims[a]));
            }
            (0..parts).map(|i| chunk.min(dims[a].saturating_sub(i * chunk))).collect()
        }
    };
    if sizes.iter().sum::<usize>() != dims[a] {
        return Err(format!("split sizes {sizes:?} do not add up to axis {a} of size {}", dims[a]));
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut offset = 0;
    for (k, &len) in sizes.iter().enumerate() {
        let mut per: Vec<(usize, i64, usize)> = dims.iter().map(|&d| (0, 1, d)).collect();
        per[a] = (if len == 0 { 0 } else { offset }, 1, len);
        let name = n.proto.output.get(k).cloned().unwrap_or_else(|| n.temp(&format!("part{k}")));
        out.push(add_slice(cx, name, x, &per)?);
        offset += len;
    }
    Ok(out)
}

/// Expand: numpy broadcasting of the input with the given shape (either
/// side may be 1).
pub(crate) fn expand(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let spec = usizes(&cx.const_ints(n.input(1)?, "the shape")?, "shape")?;
    let to = broadcast(cx.shape(x), &spec).ok_or_else(|| format!("{:?} does not broadcast with {spec:?}", cx.shape(x)))?;
    if to.dims() == cx.shape(x) {
        return Ok(vec![x]);
    }
    Ok(vec![cx.node(n.name.clone(), Op::Broadcast { shape: to }, vec![x])?])
}

/// Tile as reshape → broadcast → reshape: `[d0, d1]` repeated `[r0, r1]`
/// is `[1, d0, 1, d1]` broadcast to `[r0, d0, r1, d1]`.
pub(crate) fn tile(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let dims = cx.shape(x).to_vec();
    let reps = usizes(&cx.const_ints(n.input(1)?, "repeats")?, "repeats")?;
    if reps.len() != dims.len() {
        return Err(format!("{} repeats for rank {}", reps.len(), dims.len()));
    }
    if reps.iter().all(|&r| r == 1) {
        return Ok(vec![x]);
    }
    // Only axes that repeat get an extra axis, to stay within MAX_RANK.
    let (mut split, mut big, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for (&d, &r) in dims.iter().zip(&reps) {
        if r != 1 && d != 1 {
            split.extend([1, d]);
            big.extend([r, d]);
        } else {
            split.push(d);
            big.push(d * r);
        }
        out.push(d * r);
    }
    let xs = cx.reshape(n.temp("split"), x, split);
    let shape = Shape::new(&big).ok_or_else(|| format!("Tile needs rank {} (more than 8)", big.len()))?;
    let b = cx.node(n.temp("broadcast"), Op::Broadcast { shape }, vec![xs])?;
    Ok(vec![cx.reshape(n.name.clone(), b, out)])
}

pub(crate) fn where_(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let (c, x, y) = (n.input(0)?, n.input(1)?, n.input(2)?);
    Ok(vec![cx.node(n.name.clone(), Op::Where, vec![c, x, y])?])
}

/// Range: evaluated at conversion (its length depends on its values).
pub(crate) fn range(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let mut vals = Vec::new();
    for (i, what) in [(0, "start"), (1, "limit"), (2, "delta")] {
        let t = cx.konst(n.input(i)?).ok_or_else(|| format!("{what} must be a constant (the output length depends on it)"))?;
        if t.numel() != 1 {
            return Err(format!("{what} must be a scalar"));
        }
        vals.push(t.clone());
    }
    let dtype = vals[0].dtype();
    let out = match vals[0].ints() {
        Some(_) => {
            let v: Vec<i64> = vals.iter().map(|t| t.ints().map_or(0, |v| v[0])).collect();
            let (start, limit, delta) = (v[0], v[1], v[2]);
            if delta == 0 {
                return Err("delta is 0".into());
            }
            let count = ((limit as i128 - start as i128) as f64 / delta as f64).ceil().max(0.0) as usize;
            let data: Vec<i64> = (0..count).map(|i| start + i as i64 * delta).collect();
            Data::I64(data).cast(dtype).ok_or("cast")?
        }
        None => {
            let v: Vec<f64> = vals.iter().map(|t| t.data.to_f64()[0]).collect();
            let (start, limit, delta) = (v[0], v[1], v[2]);
            if delta == 0.0 {
                return Err("delta is 0".into());
            }
            let count = ((limit - start) / delta).ceil().max(0.0) as usize;
            // As the ONNX reference: start + i·delta in the input type.
            match dtype {
                DType::F32 => {
                    let (s, d) = (start as f32, delta as f32);
                    Data::F32((0..count).map(|i| s + i as f32 * d).collect())
                }
                _ => Data::F64((0..count).map(|i| start + i as f64 * delta).collect()).cast(dtype).ok_or("cast")?,
            }
        }
    };
    let len = out.len();
    Ok(vec![cx.add_const(n.name.clone(), Tensor::new(vec![len], out))])
}

/// Size: the element count, a constant once shapes are fixed.
pub(crate) fn size(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let numel: usize = cx.shape(n.input(0)?).iter().product();
    Ok(vec![cx.add_const(n.name.clone(), Tensor::i64(vec![], vec![numel as i64]))])
}

/// Pad: constant, reflect, edge or wrap; negative pads crop (a Slice first).
pub(crate) fn pad(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let dims = cx.shape(x).to_vec();
    let rank = dims.len();
    let mode = match n.string("mode").as_deref().unwrap_or("constant") {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" => PadMode::Wrap,
        other => return Err(format!("mode {other:?} is not supported")),
    };
    let (pads, value) = if n.opset < 11 {
        (n.ints("pads").or_else(|| n.ints("paddings")).ok_or("pads missing")?, n.float("value", 0.0))
    } else {
        let pads = cx.const_ints(n.input(1)?, "pads")?;
        let value = match n.opt_input(2) {
            Some(v) => {
                let t = cx.konst(v).ok_or("constant_value must be a constant")?;
                t.floats().first().copied().unwrap_or(0.0)
            }
            None => 0.0,
        };
        (pads, value)
    };
    let axes: Vec<usize> = match n.opt_input(3) {
        Some(v) if n.opset >= 18 => cx.const_ints(v, "axes")?.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?,
        _ => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
    }
    let (mut begin, mut end) = (vec![0i64; rank], vec![0i64; rank]);
    for (k, &a) in axes.iter().enumerate() {
        begin[a] = pads[k];
        end[a] = pads[axes.len() + k];
    }
    // Crop the negative parts first.
    let mut x = x;
    if begin.iter().chain(&end).any(|&p| p < 0) {
        let per: Vec<(usize, i64, usize)> = (0..rank)
            .map(|a| {
                let (b, e) = ((-begin[a]).max(0) as usize, (-end[a]).max(0) as usize);
                let len = dims[a].checked_sub(b + e).ok_or(format!("axis {a}: pads crop more than its {} elements", dims[a]))?;
                Ok((if len == 0 { 0 } else { b }, 1, len))
            })
            .collect::<Result<_, String>>()?;
        x = add_slice(cx, n.temp("crop"), x, &per)?;
    }
    let mut p = PadParams { mode, rank, begin: [0; 8], end: [0; 8], value: if mode == PadMode::Constant { value } else { 0.0 } };
    if rank > 8 {
        return Err(format!("rank {rank} exceeds 8"));
    }
    for a in 0..rank {
        p.begin[a] = begin[a].max(0) as usize;
        p.end[a] = end[a].max(0) as usize;
    }
    if p.begin.iter().chain(&p.end).all(|&v| v == 0) {
        return Ok(vec![x]);
    }
    if p.value != 0.0 && !CAST_TYPES.contains(&cx.dtype(x)) {
        return Err(format!("a non-zero pad value on {:?} tensors is not supported", cx.dtype(x)));
    }
    Ok(vec![cx.node(n.name.clone(), Op::Pad(p), vec![x])?])
}

#[cfg(test)]
mod tests {
    use super::{reshape_target, slice_axis};

    #[test]
    fn slice_axes_clamp_like_onnx() {
        assert_eq!(slice_axis(10, 0, i64::MAX, 1).unwrap(), (0, 1, 10));
        assert_eq!(slice_axis(10, -3, -1, 1).unwrap(), (7, 1, 2));
        assert_eq!(slice_axis(10, 20, 1000, 1).unwrap(), (0, 1, 0));
        assert_eq!(slice_axis(10, -1, i64::MIN, -1).unwrap(), (9, -1, 10));
        assert_eq!(slice_axis(10, 8, 1, -3).unwrap(), (8, -3, 3));
        assert!(slice_axis(10, 0, 5, 0).is_err());
    }

    #[test]
    fn reshape_targets_follow_onnx() {
        assert_eq!(reshape_target(&[2, 3, 4], &[0, -1], false).unwrap(), vec![2, 12]);
        assert_eq!(reshape_target(&[2, 3, 4], &[-1], false).unwrap(), vec![24]);
        assert_eq!(reshape_target(&[2, 3, 4], &[4, 0, 2], false).unwrap(), vec![4, 3, 2]);
        assert!(reshape_target(&[2, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_target(&[2, 3, 4], &[-1, -1], false).is_err());
        assert_eq!(reshape_target(&[0, 3], &[0, 3], true).unwrap(), vec![0, 3]);
    }
}
