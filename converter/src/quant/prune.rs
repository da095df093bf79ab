//! Pruning: unstructured by magnitude, 2:4 semi-structured, and whole
//! output channels (which makes the layers and the file smaller).

use crate::graph::{Graph, ValueId};
use crate::tensor::Tensor;
use jetrt::DType;
use jetrt_format::op::Op;

/// `--prune`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prune {
    /// Zero this fraction of the smallest weights of every layer.
    Magnitude(f32),
    /// In every group of four consecutive weights along K, zero the two
    /// smallest (the pattern Ampere and Orin sparse tensor cores run).
    TwoFour,
    /// Remove this fraction of the output channels with the smallest L1
    /// norm from every layer whose output feeds one other layer, and shrink
    /// that layer's input.
    Channels(f32),
}

impl Prune {
    /// Parses `magnitude=S`, `2:4` or `channels=S`.
    pub fn parse(s: &str) -> Result<Prune, String> {
        let frac = |v: &str| -> Result<f32, String> {
            match v.parse::<f32>() {
                Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
                _ => Err(format!("{v:?} is not a fraction in [0, 1)")),
            }
        };
        match s.split_once('=') {
            _ if s == "2:4" => Ok(Prune::TwoFour),
            Some(("magnitude", v)) => Ok(Prune::Magnitude(frac(v)?)),
            Some(("channels", v)) => Ok(Prune::Channels(frac(v)?)),
            _ => Err(format!("--prune {s:?}: expected magnitude=S, 2:4 or channels=S (S a fraction, e.g. 0.5)")),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Prune::Magnitude(s) => format!("magnitude={s}"),
            Prune::TwoFour => "2:4".into(),
            Prune::Channels(s) => format!("channels={s}"),
        }
    }
}

/// Where a layer's weights are and how they are laid out.
struct Weights {
    value: ValueId,
    /// Output channels × K, and the strides of each in the tensor.
    rows: usize,
    k: usize,
    row_stride: usize,
    k_stride: usize,
}

fn weights_of(g: &Graph, node: usize) -> Option<Weights> {
    let n = &g.nodes[node];
    let w = *n.inputs.get(1)?;
    let t = g.konst(w).filter(|t| t.dtype() == DType::F32)?;
    let d = &t.shape;
    let (rows, k, row_stride, k_stride) = match &n.op {
        Op::Conv2d(_) => (d[0], d[1..].iter().product(), d[1..].iter().product(), 1),
        Op::Gemm(gm) if !gm.trans_a && d.len() == 2 => {
            if gm.trans_b {
                (d[0], d[1], d[1], 1)
            } else {
                (d[1], d[0], 1, d[1])
            }
        }
        Op::MatMul { .. } if d.len() == 2 => (d[1], d[0], 1, d[1]),
        _ => return None,
    };
    Some(Weights { value: w, rows, k, row_stride, k_stride })
}

/// The mean of each input feature of a layer (per channel for a
/// convolution, per column for a dense layer) over calibration data.
pub type InputMeans = std::collections::HashMap<usize, Vec<f32>>;

/// The layers [`apply`] prunes: `(node, its weights)`.
pub fn prunable(g: &Graph) -> Vec<usize> {
    (0..g.nodes.len()).filter(|&i| weights_of(g, i).is_some()).collect()
}

/// Bias correction: the pruned weights' expected contribution
/// (`Σ_k removed[r][k] · E[x_k]`) moves into the layer's bias, so the
/// outputs keep their mean. Adds a bias where a Conv or Gemm has none.
fn correct_bias(g: &mut Graph, l: &Weights, node: usize, before: &[f32], after: &[f32], means: &[f32]) {
    let n = &g.nodes[node];
    let (per_feature, groups) = match &n.op {
        Op::Conv2d(c) => (c.kernel[0] * c.kernel[1], c.groups),
        _ => (1, 1),
    };
    let rows_per_group = l.rows / groups;
    let feats_per_group = l.k / per_feature;
    let mut delta = vec![0.0f32; l.rows];
    for (r, d) in delta.iter_mut().enumerate() {
        for k in 0..l.k {
            let i = r * l.row_stride + k * l.k_stride;
            let removed = before[i] - after[i];
            if removed != 0.0 {
                let f = (r / rows_per_group) * feats_per_group + k / per_feature;
                *d += removed * means.get(f).copied().unwrap_or(0.0);
            }
        }
    }
    if let Op::Gemm(gm) = &n.op {
        delta.iter_mut().for_each(|d| *d *= gm.alpha);
    }
    match (&n.op, n.inputs.get(2).copied()) {
        (_, Some(b)) => {
            let Some(t) = g.konst(b).filter(|t| t.numel() == l.rows || t.numel() == 1) else { return };
            let old = t.floats();
            let shape = if old.len() == l.rows { t.shape.clone() } else { vec![l.rows] };
            let new: Vec<f32> = (0..l.rows).map(|r| old[if old.len() == 1 { 0 } else { r }] + d_at(&delta, r, n)).collect();
            replace_const(g, b, Tensor::f32(shape, new));
        }
        (Op::Conv2d(_), None) | (Op::Gemm(_), None) => {
            let beta = if let Op::Gemm(gm) = &n.op { gm.beta } else { 1.0 };
            let new: Vec<f32> = delta.iter().map(|d| d / beta).collect();
            let b = g.add_const(format!("{}.bias", n.name), Tensor::f32(vec![l.rows], new));
            g.nodes[node].inputs.push(b);
        }
        _ => {}
    }
}

/// The bias delta of row `r`, divided by Gemm's beta (which scales C).
fn d_at(delta: &[f32], r: usize, n: &crate::graph::Node) -> f32 {
    match &n.op {
        Op::Gemm(gm) if gm.beta != 0.0 => delta[r] / gm.beta,
        _ => delta[r],
    }
}

/// Prunes `g` in place; returns the number of output channels removed.
/// With `means` (calibration data), magnitude and 2:4 pruning correct each
/// layer's bias for what its pruned weights contributed on average.
pub fn apply(g: &mut Graph, p: Prune, means: Option<&InputMeans>) -> Result<usize, String> {
    // The weights a layer keeps, as a zeroing of its values in place.
    type Zeroing = Box<dyn Fn(&Weights, &mut [f32])>;
    let zero: Zeroing = match p {
        Prune::Channels(s) => return prune_channels(g, s, means),
        Prune::Magnitude(s) => Box::new(move |_, v: &mut [f32]| {
            let cut = ((v.len() as f64) * s as f64) as usize;
            if cut == 0 {
                return;
            }
            let mut mags: Vec<f32> = v.iter().map(|x| x.abs()).collect();
            let (_, &mut threshold, _) = mags.select_nth_unstable_by(cut - 1, f32::total_cmp);
            let mut zeroed = 0;
            for x in v.iter_mut() {
                if x.abs() <= threshold && zeroed < cut {
                    *x = 0.0;
                    zeroed += 1;
                }
            }
        }),
        Prune::TwoFour => Box::new(|l: &Weights, v: &mut [f32]| {
            for r in 0..l.rows {
                for k0 in (0..l.k).step_by(4) {
                    let mut group: Vec<usize> = (k0..(k0 + 4).min(l.k)).map(|k| r * l.row_stride + k * l.k_stride).collect();
                    group.sort_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs()));
                    let drop = group.len().saturating_sub(2);
                    group[..drop].iter().for_each(|&i| v[i] = 0.0);
                }
            }
        }),
    };
    let layers: Vec<(usize, Weights)> = (0..g.nodes.len()).filter_map(|i| weights_of(g, i).map(|w| (i, w))).collect();
    let uses = g.consumers();
    let mut corrections = Vec::new();
    for (node, l) in &layers {
        if uses[l.value].len() != 1 {
            continue;
        }
        let t = g.values[l.value].konst.as_mut().expect("constant");
        let before = t.floats();
        let mut v = before.clone();
        zero(l, &mut v);
        *t = Tensor::f32(t.shape.clone(), v.clone());
        corrections.push((*node, before, v));
    }
    if let Some(means) = means {
        for (node, before, after) in corrections {
            let l = weights_of(g, node).expect("still a layer");
            if let Some(m) = means.get(&node) {
                correct_bias(g, &l, node, &before, &after, m);
            }
        }
    }
    Ok(0)
}

/// `t` keeping only the indices `keep` along `axis`.
fn keep_along(t: &Tensor, axis: usize, keep: &[usize]) -> Tensor {
    let v = t.floats();
    let d = &t.shape;
    let outer: usize = d[..axis].iter().product();
    let inner: usize = d[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &k in keep {
            out.extend_from_slice(&v[(o * d[axis] + k) * inner..(o * d[axis] + k + 1) * inner]);
        }
    }
    let mut shape = d.clone();
    shape[axis] = keep.len();
    Tensor::f32(shape, out)
}

fn replace_const(g: &mut Graph, v: ValueId, t: Tensor) {
    g.values[v].shape = t.shape.clone();
    g.values[v].konst = Some(t);
}

/// Output channels: a layer P whose output feeds exactly one layer C
/// (optionally through one depthwise convolution D) loses its weakest
/// channels; D and C lose the matching inputs.
fn prune_channels(g: &mut Graph, s: f32, means: Option<&InputMeans>) -> Result<usize, String> {
    let mut removed = 0;
    for p in 0..g.nodes.len() {
        let uses = g.consumers();
        let Some(pw) = weights_of(g, p) else { continue };
        if uses[pw.value].len() != 1 {
            continue;
        }
        let p_conv = matches!(&g.nodes[p].op, Op::Conv2d(c) if c.groups == 1);
        let p_dense = matches!(&g.nodes[p].op, Op::Gemm(_) | Op::MatMul { .. });
        if !(p_conv || p_dense) {
            continue;
        }
        let out = g.nodes[p].outputs[0];
        let single = |v: ValueId| (uses[v].len() == 1 && !g.is_output(v)).then(|| uses[v][0]);
        let Some(mut c) = single(out) else { continue };
        // An optional depthwise convolution in between (MobileNet blocks).
        let mut dw = None;
        if let Op::Conv2d(cv) = &g.nodes[c].op {
            let ch = g.values[out].shape.get(1).copied().unwrap_or(0);
            if p_conv && cv.groups == ch && cv.groups > 1 && g.values[g.nodes[c].outputs[0]].shape[1] == ch {
                let d = c;
                let Some(next) = single(g.nodes[d].outputs[0]) else { continue };
                if weights_of(g, d).is_none() || uses[g.nodes[d].inputs[1]].len() != 1 {
                    continue;
                }
                dw = Some(d);
                c = next;
            }
        }
        let Some(cw) = weights_of(g, c) else { continue };
        let c_ok = match &g.nodes[c].op {
            Op::Conv2d(cv) => p_conv && cv.groups == 1,
            Op::Gemm(_) | Op::MatMul { .. } => p_dense,
            _ => false,
        };
        let feeds = g.nodes[c].inputs[0] == dw.map_or(out, |d| g.nodes[d].outputs[0]);
        let in_ok = match &g.nodes[c].op {
            Op::Conv2d(_) => g.values[cw.value].shape[1] == pw.rows,
            _ => cw.k == pw.rows,
        };
        if !c_ok || !feeds || !in_ok || uses[cw.value].len() != 1 {
            continue;
        }
        let drop = ((pw.rows as f64) * s as f64) as usize;
        if drop == 0 || drop >= pw.rows {
            continue;
        }
        // L1 norm of every output channel of P.
        let wv = g.konst(pw.value).expect("constant").floats();
        let norms: Vec<f32> = (0..pw.rows).map(|r| (0..pw.k).map(|k| wv[r * pw.row_stride + k * pw.k_stride].abs()).sum()).collect();
        let mut order: Vec<usize> = (0..pw.rows).collect();
        order.sort_by(|&a, &b| norms[a].total_cmp(&norms[b]));
        let mut keep: Vec<usize> = order[drop..].to_vec();
        keep.sort_unstable();
        // P: its weights' output axis, its bias, its output's channel axis.
        let p_axis = if pw.row_stride == 1 { 1 } else { 0 };
        let t = keep_along(g.konst(pw.value).expect("constant"), p_axis, &keep);
        replace_const(g, pw.value, t);
        if let Some(&b) = g.nodes[p].inputs.get(2) {
            let bt = g.konst(b).cloned().ok_or("bias is not constant")?;
            if bt.numel() == pw.rows {
                let axis = bt.shape.len() - 1;
                replace_const(g, b, keep_along(&bt, axis, &keep));
            }
        }
        let ch_axis = if p_conv { 1 } else { g.values[out].shape.len() - 1 };
        g.values[out].shape[ch_axis] = keep.len();
        if let Some(d) = dw {
            let dwv = g.nodes[d].inputs[1];
            let t = keep_along(g.konst(dwv).expect("constant"), 0, &keep);
            replace_const(g, dwv, t);
            if let Some(&b) = g.nodes[d].inputs.get(2) {
                let bt = g.konst(b).cloned().ok_or("bias is not constant")?;
                replace_const(g, b, keep_along(&bt, 0, &keep));
            }
            if let Op::Conv2d(cv) = &mut g.nodes[d].op {
                cv.groups = keep.len();
            }
            let dout = g.nodes[d].outputs[0];
            g.values[dout].shape[1] = keep.len();
        }
        // C: what the removed channels fed it on average goes into its
        // bias, then its weights lose their input axis entries.
        if let Some(m) = means.and_then(|m| m.get(&c)) {
            let before = g.konst(cw.value).expect("constant").floats();
            let mut zeroed = before.clone();
            let per = cw.k / pw.rows;
            for r in 0..cw.rows {
                for k in 0..cw.k {
                    if keep.binary_search(&(k / per)).is_err() {
                        zeroed[r * cw.row_stride + k * cw.k_stride] = 0.0;
                    }
                }
            }
            correct_bias(g, &cw, c, &before, &zeroed, m);
        }
        let ct = g.konst(cw.value).expect("constant").clone();
        let t = match &g.nodes[c].op {
            Op::Conv2d(_) => keep_along(&ct, 1, &keep),
            _ => keep_along(&ct, if cw.k_stride == 1 { 1 } else { 0 }, &keep),
        };
        replace_const(g, cw.value, t);
        removed += drop;
    }
    // Check every shape again: a mistake here must not reach a file.
    for (i, n) in g.nodes.iter().enumerate() {
        let metas = n.inputs.iter().map(|&v| g.meta(v)).collect::<Result<Vec<_>, _>>()?;
        let outs = n.outputs.iter().map(|&v| g.meta(v)).collect::<Result<Vec<_>, _>>()?;
        n.op.check(&metas, &outs).map_err(|e| format!("after channel pruning, step {i} ({}): {e}", n.name))?;
    }
    Ok(removed)
}
