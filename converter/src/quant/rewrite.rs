//! Rewriting a float graph into a quantized one: which layers can be
//! quantized, their weights in int8 or int4, and Quantize steps only where
//! a float value enters an int8 region.

use super::calib::{channel_quant, qparams, ChannelQuant, Ranges};
use crate::graph::{Graph, Node, ValueId};
use crate::tensor::{Data, Tensor};
use jetrt::DType;
use jetrt_format::op::{Activation, Conv2d, Op, QOutParams, Q8_K_ALIGN};
use std::collections::{HashMap, HashSet};

/// The precision a layer runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LayerPrecision {
    Fp32,
    /// int8 weights (per output channel) and activations (per tensor).
    Int8,
    /// int4 weights (group-wise), float activations.
    Int4,
}

impl LayerPrecision {
    pub fn name(self) -> &'static str {
        match self {
            LayerPrecision::Fp32 => "fp32",
            LayerPrecision::Int8 => "int8",
            LayerPrecision::Int4 => "int4",
        }
    }
}

/// A layer with constant weights, seen as rows: `rows × k` (output
/// channels × what each one reads).
#[derive(Debug, Clone)]
pub struct Layer {
    pub node: usize,
    pub kind: LayerKind,
    /// `[rows, k]` row-major float weights (alpha folded in for Gemm).
    pub weights: Vec<f32>,
    pub rows: usize,
    pub k: usize,
    /// Per-row bias (beta folded in), if any.
    pub bias: Option<Vec<f32>>,
    pub act: Activation,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerKind {
    Conv(Conv2d),
    /// Gemm or MatMul with constant B: `y[..., n] = Σ_k a[..., k] · w[n][k]`.
    Dense,
}

impl Layer {
    pub fn is_pointwise(&self) -> bool {
        matches!(self.kind, LayerKind::Conv(c) if c.kernel == [1, 1] && c.groups == 1)
    }

    /// Whether int4 applies: dense layers and pointwise convolutions (the
    /// runtime's Q4Conv2d takes any single-group convolution, but int4 on
    /// 3×3 kernels costs more accuracy than it saves bytes).
    pub fn int4_ok(&self) -> bool {
        self.kind == LayerKind::Dense || self.is_pointwise()
    }
}

impl Layer {
    /// The input channel weight column `k` of row `r` reads.
    pub fn input_channel(&self, r: usize, k: usize) -> usize {
        match self.kind {
            LayerKind::Conv(c) => {
                let taps = c.kernel[0] * c.kernel[1];
                (r / (self.rows / c.groups)) * (self.k / taps) + k / taps
            }
            LayerKind::Dense => k,
        }
    }

    /// The layer with weight columns scaled by their input channel's factor
    /// (the input is quantized per channel with scale `S·f[c]`).
    pub fn folded(&self, f: &[f32]) -> Layer {
        let mut l = self.clone();
        for r in 0..l.rows {
            for k in 0..l.k {
                l.weights[r * l.k + k] *= f[self.input_channel(r, k)];
            }
        }
        l
    }

    /// Share of zero weights.
    pub fn sparsity(&self) -> f64 {
        self.weights.iter().filter(|&&w| w == 0.0).count() as f64 / self.weights.len().max(1) as f64
    }

    /// Whether the layer is worth storing sparse (and can be).
    fn sparse_ok(&self) -> bool {
        let shape_ok = self.kind == LayerKind::Dense || matches!(self.kind, LayerKind::Conv(c) if c.groups == 1);
        shape_ok && self.sparsity() >= SPARSE_MIN
    }
}

/// The float layer `n` with its weights stored sparse.
fn sparse_node(h: &mut Graph, l: &Layer, n: &Node) -> Node {
    let mb = l.k.div_ceil(8);
    let mut mask = vec![0u8; l.rows * mb];
    let mut values = Vec::new();
    let mut starts = vec![0u32];
    for r in 0..l.rows {
        for (c, &w) in l.weights[r * l.k..(r + 1) * l.k].iter().enumerate() {
            if w != 0.0 {
                mask[r * mb + c / 8] |= 1 << (c % 8);
                values.push(w);
            }
        }
        starts.push(values.len() as u32);
    }
    let name = &n.name;
    let nnz = values.len();
    let mut inputs = vec![
        n.inputs[0],
        h.add_const(format!("{name}.mask"), Tensor::new(vec![l.rows, mb], Data::U8(mask))),
        h.add_const(format!("{name}.values"), Tensor::f32(vec![nnz], values)),
        h.add_const(format!("{name}.row_starts"), Tensor::new(vec![l.rows + 1], Data::U32(starts))),
    ];
    if let Some(b) = &l.bias {
        inputs.push(h.add_const(format!("{name}.bias"), Tensor::f32(vec![l.rows], b.clone())));
    }
    let op = match l.kind {
        LayerKind::Conv(c) => Op::SpConv2d { conv: c },
        LayerKind::Dense => Op::SpGemm { act: l.act },
    };
    Node { name: name.clone(), op, inputs, outputs: n.outputs.clone() }
}

/// The layers of `g` that can be quantized, in order.
pub fn layers(g: &Graph) -> Vec<Layer> {
    let mut out = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if let Some(l) = layer(g, i, n) {
            out.push(l);
        }
    }
    out
}

fn layer(g: &Graph, i: usize, n: &Node) -> Option<Layer> {
    let f32_const = |v: ValueId| g.konst(v).filter(|t| t.dtype() == DType::F32).map(|t| t.floats());
    match &n.op {
        Op::Conv2d(c) => {
            let w = f32_const(*n.inputs.get(1)?)?;
            let wd = &g.values[n.inputs[1]].shape;
            let bias = match n.inputs.get(2) {
                Some(&b) => Some(f32_const(b)?),
                None => None,
            };
            Some(Layer { node: i, kind: LayerKind::Conv(*c), rows: wd[0], k: wd[1..].iter().product(), weights: w, bias, act: c.act })
        }
        Op::Gemm(gm) if !gm.trans_a => {
            let b = f32_const(n.inputs[1])?;
            let bd = &g.values[n.inputs[1]].shape;
            let (k, nn) = if gm.trans_b { (bd[1], bd[0]) } else { (bd[0], bd[1]) };
            let mut w = if gm.trans_b { b } else { transpose(&b, k, nn) };
            w.iter_mut().for_each(|v| *v *= gm.alpha);
            let bias = match n.inputs.get(2) {
                None => None,
                Some(&c) => {
                    let cv = f32_const(c)?;
                    let cd = &g.values[c].shape;
                    let per_col = cd.iter().product::<usize>() == nn && cd.last() == Some(&nn) && cd.len() <= 2;
                    let scalar = cv.len() == 1;
                    if !(per_col || scalar) {
                        return None;
                    }
                    Some((0..nn).map(|j| gm.beta * if scalar { cv[0] } else { cv[j] }).collect())
                }
            };
            Some(Layer { node: i, kind: LayerKind::Dense, rows: nn, k, weights: w, bias, act: gm.act })
        }
        Op::MatMul { act } => {
            let b = f32_const(n.inputs[1])?;
            let bd = &g.values[n.inputs[1]].shape;
            if bd.len() != 2 || g.values[n.inputs[0]].shape.len() < 2 {
                return None;
            }
            let (k, nn) = (bd[0], bd[1]);
            Some(Layer { node: i, kind: LayerKind::Dense, rows: nn, k, weights: transpose(&b, k, nn), bias: None, act: *act })
        }
        _ => None,
    }
}

fn transpose(b: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; b.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = b[r * cols + c];
        }
    }
    t
}

/// Symmetric per-row int8 weights, each row `kp` long (K padded with
/// zeros): the rows, their scales and each row's sum.
pub fn quantize_rows_i8(w: &[f32], rows: usize, k: usize, kp: usize) -> (Vec<i8>, Vec<f32>, Vec<i32>) {
    let mut q = vec![0i8; rows * kp];
    let mut scales = vec![0.0f32; rows];
    let mut sums = vec![0i32; rows];
    for r in 0..rows {
        let row = &w[r * k..(r + 1) * k];
        let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        scales[r] = s;
        for (d, &v) in q[r * kp..r * kp + k].iter_mut().zip(row) {
            *d = (v / s).round().clamp(-127.0, 127.0) as i8;
        }
        sums[r] = q[r * kp..r * kp + k].iter().map(|&v| v as i32).sum();
    }
    (q, scales, sums)
}

/// Group-wise int4 weights: packed bytes (`rows × kp/2`, low nibble first,
/// `q + 8`) and float16 scales (`rows × kp/group`).
pub fn quantize_rows_i4(w: &[f32], rows: usize, k: usize, group: usize) -> (Vec<u8>, Vec<u16>) {
    let kp = k.next_multiple_of(2);
    let groups = k.div_ceil(group);
    let mut packed = vec![0u8; rows * kp / 2];
    let mut scales = vec![0u16; rows * groups];
    for r in 0..rows {
        for gi in 0..groups {
            let (a, b) = (gi * group, ((gi + 1) * group).min(k));
            let vals = &w[r * k + a..r * k + b];
            let amax = vals.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let sh = half::f16::from_f32(amax / 7.0);
            scales[r * groups + gi] = sh.to_bits();
            let s = sh.to_f32();
            for (c, &v) in vals.iter().enumerate() {
                let q = if s > 0.0 { (v / s).round().clamp(-8.0, 7.0) as i32 } else { 0 };
                let at = r * kp / 2 + (a + c) / 2;
                packed[at] |= ((q + 8) as u8) << (4 * ((a + c) % 2));
            }
        }
    }
    (packed, scales)
}

/// The float weights a quantized layer computes with (for the report and
/// the sensitivity search).
pub fn dequantized_rows(l: &Layer, p: LayerPrecision, group: usize) -> Vec<f32> {
    match p {
        LayerPrecision::Fp32 => l.weights.clone(),
        LayerPrecision::Int8 => {
            let kp = l.k;
            let (q, s, _) = quantize_rows_i8(&l.weights, l.rows, l.k, kp);
            (0..l.rows * l.k).map(|i| q[(i / l.k) * kp + i % l.k] as f32 * s[i / l.k]).collect()
        }
        LayerPrecision::Int4 => {
            let (packed, scales) = quantize_rows_i4(&l.weights, l.rows, l.k, group);
            let kp = l.k.next_multiple_of(2);
            let groups = l.k.div_ceil(group);
            (0..l.rows * l.k)
                .map(|i| {
                    let (r, c) = (i / l.k, i % l.k);
                    let q = ((packed[r * kp / 2 + c / 2] >> (4 * (c % 2))) & 15) as i32 - 8;
                    q as f32 * half::f16::from_bits(scales[r * groups + c / group]).to_f32()
                })
                .collect()
        }
    }
}

/// Folds the per-channel mapping `cq` of `x` into the float affine `p` of
/// `g` that writes it (its copy in `h`): `a·x + b` becomes
/// `(a·x + b − shift) / factor`. False where the affine's operands are not
/// float constants.
fn fold_into_affine(g: &Graph, h: &mut Graph, p: usize, x: ValueId, cq: &ChannelQuant) -> bool {
    let n = &g.nodes[p];
    let (Some(a), Some(b)) = (g.konst(n.inputs[1]), g.konst(n.inputs[2])) else { return false };
    let Some(at) = h.nodes.iter().rposition(|m| m.outputs.first() == Some(&x)) else { return false };
    if a.dtype() != DType::F32 || b.dtype() != DType::F32 {
        return false;
    }
    let (a, b) = (a.floats(), b.floats());
    // Operands are `[C]`, or `[1]` for all channels.
    let of = |t: &[f32], i: usize| if t.len() == 1 { t[0] } else { t[i] };
    let c = cq.factor.len();
    let name = &g.values[x].name;
    let scale = h.add_const(format!("{name}.channel_scale"), Tensor::f32(vec![c], (0..c).map(|i| of(&a, i) / cq.factor[i]).collect()));
    let shift = h.add_const(
        format!("{name}.channel_shift"),
        Tensor::f32(vec![c], (0..c).map(|i| (of(&b, i) - cq.shift[i]) / cq.factor[i]).collect()),
    );
    h.nodes[at].inputs[1] = scale;
    h.nodes[at].inputs[2] = shift;
    true
}

/// `x` in int8 with `scale` and `zp`, exactly as the runtime's Quantize.
pub fn quantize_one(x: f32, scale: f32, zp: i8) -> i8 {
    jetrt::host::quantize_one(x, 1.0 / scale, zp)
}

/// The per-channel quantization of a float value `x` entering an int8
/// region (see [`channel_quant`]), where calibration measured its
/// channels.
pub fn input_channel_quant(ranges: &Ranges, x: ValueId) -> Option<ChannelQuant> {
    let &(lo, hi) = ranges.tensor.get(&x)?;
    let q = channel_quant(lo, hi, ranges.channel.get(&x)?);
    // QuantizeChannels holds `1/factor` and `−shift/factor` in float16.
    let fits = |v: f32| v.is_finite() && v.abs() <= half::f16::MAX.to_f32();
    q.factor.iter().zip(&q.shift).all(|(f, m)| fits(1.0 / f) && fits(-m / f)).then_some(q)
}

/// A depthwise layer's input whose median channel spans less than this
/// share of the tensor's range (fewer than 32 of 255 levels) is quantized
/// per channel (see `apply`).
pub const DEPTHWISE_SPREAD: f32 = 0.125;

/// Float layers with at least this share of zero weights are stored sparse
/// (mask + values: about half the bytes at 50 %).
pub const SPARSE_MIN: f64 = 0.25;

/// Rewrites `g`: each layer in `plan` runs in its precision. `ranges` gives
/// the calibrated `[lo, hi]` of every value an int8 layer reads or writes.
/// With `sparse`, float layers (dense, or convolutions with one group) with
/// at least [`SPARSE_MIN`] zeros are stored sparse.
pub fn apply(
    g: &Graph,
    layers: &[Layer],
    plan: &HashMap<usize, LayerPrecision>,
    ranges: &Ranges,
    group: usize,
    sparse: bool,
    corrections: &HashMap<usize, Vec<f32>>,
) -> Result<Graph, String> {
    // A layer's bias with its measured correction (see
    // `quant::correct_bias`) added.
    let bias_of = |l: &Layer| -> Option<Vec<f32>> {
        match (&l.bias, corrections.get(&l.node)) {
            (b, None) => b.clone(),
            (b, Some(c)) => Some(c.iter().enumerate().map(|(r, &c)| b.as_ref().map_or(0.0, |b| b[r]) + c).collect()),
        }
    };
    let by_node: HashMap<usize, &Layer> = layers.iter().map(|l| (l.node, l)).collect();
    let prec = |node: usize| plan.get(&node).copied().unwrap_or(LayerPrecision::Fp32);
    let consumers = g.consumers();
    let producers = g.producers();
    let int8_layer = |i: usize| prec(i) == LayerPrecision::Int8 && by_node.contains_key(&i);
    // Ops that carry int8 through unchanged (same scale in and out).
    let pass_through = |i: usize| matches!(g.nodes[i].op, Op::Copy | Op::MaxPool2d(_));
    // Values that stay int8: written by an int8 layer (or by a pass-through
    // op reading such a value), and read only by int8 layers (as their
    // activation) or by pass-through ops whose output stays int8 too.
    let mut resident: HashSet<ValueId> = HashSet::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let o = n.outputs[0];
        if g.values[o].dtype == DType::F32
            && ((int8_layer(i) && ranges.tensor.contains_key(&o)) || (pass_through(i) && resident.contains(&n.inputs[0])))
        {
            resident.insert(o);
        }
    }
    // A value a depthwise int8 layer reads, whose channels span very
    // different ranges, leaves the region: its writer outputs float and a
    // QuantizeChannels gives every channel the whole int8 range. Depthwise
    // channels meet nothing but themselves, so per-tensor levels cost them
    // most (PP-OCRv5 det's first depthwise convolution was 80 % of that
    // model's whole int8 loss; half its channels span under 8 % of the
    // tensor's range). Per-channel ranges are plain min/max, without the
    // clipping calibration chose for the tensor, so this is only for
    // strong spreads: on PP-OCRv5 rec (median channel 23 %) it measured
    // worse, and doing it for every spread value measured better on det's
    // calibration pages but worse on the held-out ones.
    let depthwise = |c: usize| by_node.get(&c).is_some_and(|l| matches!(l.kind, LayerKind::Conv(k) if k.groups > 1 && k.groups == l.rows));
    let spread = |v: ValueId| {
        input_channel_quant(ranges, v).is_some_and(|q| {
            let mut f = q.factor;
            f.sort_by(f32::total_cmp);
            f[f.len() / 2] < DEPTHWISE_SPREAD
        })
    };
    resident.retain(|&v| !(consumers[v].iter().any(|&c| int8_layer(c) && depthwise(c)) && spread(v)));
    loop {
        let snapshot = resident.clone();
        resident.retain(|&v| {
            let readers_ok = !g.is_output(v)
                && !consumers[v].is_empty()
                && consumers[v].iter().all(|&c| {
                    let n = &g.nodes[c];
                    (int8_layer(c) && n.inputs[0] == v && n.inputs[1..].iter().all(|&i| i != v))
                        || (pass_through(c) && snapshot.contains(&n.outputs[0]))
                });
            let writer_ok = producers[v].is_some_and(|p| !pass_through(p) || snapshot.contains(&g.nodes[p].inputs[0]));
            readers_ok && writer_ok
        });
        if resident.len() == snapshot.len() {
            break;
        }
    }
    // The int8 layer output a resident value was carried from (its scale).
    let source = |mut v: ValueId| {
        while let Some(p) = producers[v].filter(|&p| pass_through(p)) {
            v = g.nodes[p].inputs[0];
        }
        v
    };
    // One scale for a whole chain: the union of the ranges of its values
    // (max pooling raises them; the readers see the pooled values).
    let mut chain: HashMap<ValueId, (f32, f32)> = HashMap::new();
    for &v in &resident {
        if let Some(&(lo, hi)) = ranges.tensor.get(&v) {
            let e = chain.entry(source(v)).or_insert((lo, hi));
            *e = (e.0.min(lo), e.1.max(hi));
        }
    }
    let resident = |v: ValueId| resident.contains(&v);
    let mut h = g.clone();
    h.nodes.clear();
    let mut quantized_copy: HashMap<ValueId, ValueId> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let p = prec(i);
        if let Some(l) = by_node.get(&i).filter(|l| sparse && p == LayerPrecision::Fp32 && l.sparse_ok()) {
            let node = sparse_node(&mut h, l, n);
            h.nodes.push(node);
            continue;
        }
        let Some(l) = by_node.get(&i).filter(|_| p != LayerPrecision::Fp32) else {
            if pass_through(i) && resident(n.outputs[0]) {
                h.values[n.outputs[0]].dtype = DType::I8;
            }
            h.nodes.push(n.clone());
            continue;
        };
        let x = n.inputs[0];
        let out = n.outputs[0];
        let name = &n.name;
        match p {
            LayerPrecision::Int8 => {
                let range = if resident(x) { chain.get(&source(x)) } else { ranges.tensor.get(&x) };
                let &(lo, hi) = range.ok_or_else(|| format!("no calibration range for {:?}", g.values[x].name))?;
                let (sx, zx) = qparams(lo, hi);
                let cq = if resident(x) { None } else { input_channel_quant(ranges, x) };
                let xq = if resident(x) {
                    x
                } else if let Some(&q) = quantized_copy.get(&x) {
                    q
                } else {
                    let shape = g.values[x].shape.clone();
                    let xname = &g.values[x].name;
                    // A float affine that writes `x` for int8 layers alone
                    // takes the per-channel mapping in (no step and no
                    // bytes added); otherwise QuantizeChannels does it.
                    let for_int8_only = |p: usize| {
                        matches!(g.nodes[p].op, Op::ChannelAffine { act: Activation::None })
                            && !g.is_output(x)
                            && consumers[x]
                                .iter()
                                .all(|&c| int8_layer(c) && g.nodes[c].inputs[0] == x && g.nodes[c].inputs[1..].iter().all(|&i| i != x))
                    };
                    let folded = match (&cq, producers[x]) {
                        (Some(cq), Some(p)) if for_int8_only(p) => fold_into_affine(g, &mut h, p, x, cq),
                        _ => false,
                    };
                    let q = h.add_value(format!("{xname}.q"), DType::I8, shape);
                    let node = match &cq {
                        Some(cq) if !folded => {
                            let c = cq.factor.len();
                            let mul = cq.factor.iter().map(|f| half::f16::from_f32(1.0 / f).to_bits()).collect();
                            let add = cq.factor.iter().zip(&cq.shift).map(|(f, m)| half::f16::from_f32(-m / f).to_bits()).collect();
                            let mul = h.add_const(format!("{xname}.channel_mul"), Tensor::new(vec![c], Data::F16(mul)));
                            let add = h.add_const(format!("{xname}.channel_add"), Tensor::new(vec![c], Data::F16(add)));
                            Node {
                                name: format!("{xname}.quantize"),
                                op: Op::QuantizeChannels { scale: sx, zero_point: zx },
                                inputs: vec![x, mul, add],
                                outputs: vec![q],
                            }
                        }
                        _ => Node {
                            name: format!("{xname}.quantize"),
                            op: Op::Quantize { scale: sx, zero_point: zx },
                            inputs: vec![x],
                            outputs: vec![q],
                        },
                    };
                    h.nodes.push(node);
                    quantized_copy.insert(x, q);
                    q
                };
                // A shifted channel adds `Σ w · shift` to every row.
                let shifted: Vec<f64> = match &cq {
                    Some(cq) => (0..l.rows)
                        .map(|r| (0..l.k).map(|k| l.weights[r * l.k + k] as f64 * cq.shift[l.input_channel(r, k)] as f64).sum())
                        .collect(),
                    None => vec![0.0; l.rows],
                };
                let folded;
                let l = match &cq {
                    Some(cq) => {
                        folded = l.folded(&cq.factor);
                        &folded
                    }
                    None => *l,
                };
                // Depthwise rows stay unpadded (their kernel reads them
                // directly); GEMM rows are padded for the dot-product tiles.
                let depthwise = matches!(l.kind, LayerKind::Conv(c) if c.groups > 1 && c.groups == g.values[x].shape[1]);
                let kp = if depthwise { l.k } else { l.k.next_multiple_of(Q8_K_ALIGN) };
                let (wq, ws, sums) = quantize_rows_i8(&l.weights, l.rows, l.k, kp);
                let deq: Vec<f32> = ws.iter().map(|&s| sx * s).collect();
                let lb = bias_of(l);
                let bias: Vec<f32> = (0..l.rows)
                    .map(|r| (lb.as_ref().map_or(0.0, |b| b[r] as f64) + shifted[r] - zx as f64 * sums[r] as f64 * deq[r] as f64) as f32)
                    .collect();
                let wv = h.add_const(format!("{name}.w_int8"), Tensor::new(vec![l.rows, kp], Data::I8(wq)));
                let bv = h.add_const(format!("{name}.bias"), Tensor::f32(vec![l.rows], bias));
                let dv = h.add_const(format!("{name}.deq"), Tensor::f32(vec![l.rows], deq));
                let qout = if resident(out) {
                    let (lo, hi) = chain[&out];
                    let (scale, zero_point) = qparams(lo, hi);
                    h.values[out].dtype = DType::I8;
                    QOutParams::I8 { scale, zero_point }
                } else {
                    QOutParams::F32
                };
                let mut inputs = vec![xq, wv, bv, dv];
                // Padding stands for 0.0: in a shifted channel, not the
                // zero point.
                if let (Some(cq), LayerKind::Conv(c)) = (&cq, l.kind) {
                    let pad: Vec<i8> = cq.factor.iter().zip(&cq.shift).map(|(f, m)| quantize_one(-m / f, sx, zx)).collect();
                    if c.pads != [0; 4] && pad.iter().any(|&p| p != zx) {
                        inputs.push(h.add_const(format!("{name}.padding"), Tensor::new(vec![pad.len()], Data::I8(pad))));
                    }
                }
                let op = match l.kind {
                    LayerKind::Conv(c) => Op::QConv2d { conv: c, x_zp: zx, out: qout },
                    LayerKind::Dense => Op::QGemm { act: l.act, out: qout },
                };
                h.nodes.push(Node { name: name.clone(), op, inputs, outputs: vec![out] });
            }
            LayerPrecision::Int4 => {
                let (packed, scales) = quantize_rows_i4(&l.weights, l.rows, l.k, group);
                let wv = h.add_const(format!("{name}.w_int4"), Tensor::new(vec![l.rows, l.k.div_ceil(2)], Data::U8(packed)));
                let sv = h.add_const(format!("{name}.scales_f16"), Tensor::new(vec![l.rows, l.k.div_ceil(group)], Data::F16(scales)));
                let mut inputs = vec![x, wv, sv];
                if let Some(b) = bias_of(l) {
                    inputs.push(h.add_const(format!("{name}.bias"), Tensor::f32(vec![l.rows], b)));
                }
                let op = match l.kind {
                    LayerKind::Conv(c) => Op::Q4Conv2d { conv: c, group },
                    LayerKind::Dense => Op::Q4Gemm { act: l.act, group },
                };
                h.nodes.push(Node { name: name.clone(), op, inputs, outputs: vec![out] });
            }
            LayerPrecision::Fp32 => unreachable!(),
        }
    }
    h.remove_dead_nodes();
    Ok(h)
}
