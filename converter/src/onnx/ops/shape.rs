//! Shape and data-movement operators. On constants they are evaluated at
//! conversion (the Shape → Gather → Concat → Reshape chains exporters emit
//! become constants once shapes are fixed); on run-time tensors they become
//! Copy, Concat or Transpose steps.

use super::super::import::{constant_value, Ctx, N};
use super::super::tensor::dtype_of;
use super::{axis, usizes};
use crate::graph::ValueId;
use crate::tensor::{Data, Tensor};
use jetrt::ops::{Op, Perm};
use jetrt::DType;

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
    let x = n.input(0)?;
    let to = n.int("to", 0) as i32;
    let dtype = dtype_of(to).ok_or_else(|| format!("cast to type {to} is not supported"))?;
    if let Some(t) = cx.konst(x) {
        let data = t.data.cast(dtype).ok_or_else(|| format!("cannot cast {:?} to {dtype:?}", t.dtype()))?;
        let t = Tensor::new(t.shape.clone(), data);
        return Ok(vec![cx.add_const(n.name.clone(), t)]);
    }
    if cx.dtype(x) == dtype {
        return Ok(vec![x]);
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
        if known == 0 || numel % known != 0 {
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
        return Err("Gather on tensors computed at run time is not supported yet (only on constants)".into());
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

#[cfg(test)]
mod tests {
    use super::reshape_target;

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
