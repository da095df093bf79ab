//! Post-training quantization and pruning: calibration, the per-layer
//! precision plan (with `--max-drop`'s sensitivity search), and the
//! accuracy report.
//!
//! Everything is measured by running the graph with jetrt's own runtime on
//! the calibration samples: ranges for int8 activations, the float model's
//! outputs as the reference, and the agreement of every candidate plan.

pub mod calib;
pub mod eval;
pub mod prune;
pub mod rewrite;

pub use calib::CalibMethod;
pub use prune::Prune;
pub use rewrite::LayerPrecision;

use crate::error::{ConvertError, Result};
use crate::graph::{Graph, ValueId};
use crate::tensor::Tensor;
use eval::{Agreement, Runner};
use jetrt_format::op::{Op, QOutParams};
use rewrite::Layer;
use std::collections::HashMap;
use std::sync::Arc;

/// The precision `jetc convert --precision` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Fp32,
    /// int8 weights and activations wherever a layer has constant weights.
    Int8,
    /// int4 weights for dense layers and pointwise convolutions; the other
    /// convolutions in int8 when calibration data is given, else float.
    Int4,
}

/// A progress callback: `(stage, done, total)`.
pub type ProgressFn = dyn Fn(&str, usize, usize) + Send + Sync;

/// Progress of long work, reported to a callback.
#[derive(Clone)]
pub struct Progress(pub Arc<ProgressFn>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// What to quantize and prune, and with which data.
#[derive(Debug, Clone)]
pub struct QuantOptions {
    pub precision: Precision,
    pub method: CalibMethod,
    /// int4 group size (values per scale).
    pub group_size: usize,
    /// Largest accepted drop of agreement with the float model (a
    /// fraction: 0.01 is one point of top-1 agreement, or 0.01 of cosine).
    pub max_drop: Option<f64>,
    pub prune: Option<Prune>,
    /// Calibration samples: per sample, one tensor per model input.
    pub samples: Vec<Vec<Tensor>>,
    /// The samples are random (no `--calib` given): fine for int4 and
    /// pruning reports, not for int8 ranges.
    pub random_samples: bool,
    pub threads: usize,
    /// The CPU kernels the float and quantized models run on.
    pub kernels: crate::Kernels,
    pub progress: Option<Progress>,
}

impl Default for QuantOptions {
    fn default() -> Self {
        QuantOptions {
            precision: Precision::Fp32,
            method: CalibMethod::Mse,
            group_size: 32,
            max_drop: None,
            prune: None,
            samples: Vec::new(),
            random_samples: false,
            threads: 0,
            kernels: crate::Kernels::default(),
            progress: None,
        }
    }
}

/// One output's agreement with the float model.
#[derive(Debug, Clone)]
pub struct OutputReport {
    pub name: String,
    pub agreement: Agreement,
}

/// One layer with constant weights.
#[derive(Debug, Clone)]
pub struct LayerReport {
    pub name: String,
    pub op: &'static str,
    pub precision: LayerPrecision,
    /// `1 − cosine` of the outputs with only this layer quantized (and
    /// pruned); larger is more sensitive.
    pub sensitivity: Option<f64>,
    /// Share of zero weights.
    pub sparsity: f64,
    pub shape: [usize; 2],
}

/// What quantization and pruning did, measured.
#[derive(Debug, Clone, Default)]
pub struct QuantReport {
    pub precision: Precision,
    pub method: String,
    pub group_size: usize,
    pub prune: Option<String>,
    pub samples: usize,
    pub random_samples: bool,
    /// The metric `--max-drop` bounds ("top1" or "cosine") and its drop.
    pub metric: &'static str,
    pub drop: f64,
    pub max_drop: Option<f64>,
    pub outputs: Vec<OutputReport>,
    pub layers: Vec<LayerReport>,
    /// Layers `--max-drop` kept in float.
    pub kept_fp32: Vec<String>,
    /// int4 layers `--max-drop` moved to int8.
    pub promoted_int8: Vec<String>,
    pub pruned_channels: usize,
}

fn progress(opts: &QuantOptions, stage: &str, done: usize, total: usize) {
    if let Some(p) = &opts.progress {
        (p.0)(stage, done, total);
    }
}

fn err(e: String) -> ConvertError {
    ConvertError::Graph(e)
}

/// Quantizes and prunes `g` in place as `opts` asks, measuring the result.
pub fn run(g: &mut Graph, opts: &QuantOptions) -> Result<QuantReport> {
    if opts.samples.is_empty() {
        return Err(err("quantization needs at least one calibration sample".into()));
    }
    let threads = opts.threads;
    let outputs: Vec<ValueId> = g.outputs.iter().map(|&(_, v)| v).collect();
    let classes: Vec<usize> = outputs.iter().map(|&v| g.values[v].shape.last().copied().unwrap_or(1)).collect();
    let classifier: Vec<bool> = outputs.iter().map(|&v| g.values[v].shape.len() == 2 && classes_of(g, v) >= 2).collect();
    let boxes: Vec<Option<eval::Boxes>> = outputs.iter().map(|&v| eval::Boxes::of(&g.values[v].shape)).collect();
    // The float model's outputs: the reference everything is compared to.
    progress(opts, "reference", 0, opts.samples.len());
    let reference = Runner::new(g, &outputs, opts.kernels.session(threads)).map_err(err)?.collect(&opts.samples).map_err(err)?;
    // Each layer's sensitivity is measured on this many samples: a model
    // run per layer and sample, most of a conversion's time (PP-OCRv5 det:
    // 52 of 60 s with 16). Eight rank the layers as well; the final
    // agreement (and --max-drop's check) uses every sample.
    let eval_samples = opts.samples.len().min(SENSITIVITY_SAMPLES);

    let mut report = QuantReport {
        precision: opts.precision,
        method: opts.method.name(),
        group_size: opts.group_size,
        prune: opts.prune.map(|p| p.name()),
        samples: opts.samples.len(),
        random_samples: opts.random_samples,
        metric: if classifier.iter().any(|&c| c) { "top1" } else { "cosine" },
        max_drop: opts.max_drop,
        ..Default::default()
    };

    // Pruning changes the float graph itself; quantization starts from it.
    let float = g.clone();
    if let Some(p) = opts.prune {
        let means = if opts.random_samples { None } else { Some(input_means(g, opts)?) };
        report.pruned_channels = prune::apply(g, p, means.as_ref()).map_err(err)?;
    }
    let layers = rewrite::layers(g);
    let mut plan: HashMap<usize, LayerPrecision> = HashMap::new();
    for l in &layers {
        let p = match opts.precision {
            Precision::Fp32 => LayerPrecision::Fp32,
            Precision::Int8 => LayerPrecision::Int8,
            Precision::Int4 if l.int4_ok() => LayerPrecision::Int4,
            Precision::Int4 if !opts.random_samples => LayerPrecision::Int8,
            Precision::Int4 => LayerPrecision::Fp32,
        };
        plan.insert(l.node, p);
    }
    if plan.values().any(|&p| p == LayerPrecision::Int8) && opts.random_samples {
        return Err(err("int8 needs calibration data: give --calib DIR (a folder of .npy files or images)".into()));
    }
    let ranges = calibrate(g, &layers, &plan, opts)?;
    // What magnitude and 2:4 pruning zero is stored compactly in the layers
    // that stay float.
    let sparse = matches!(opts.prune, Some(Prune::Magnitude(_) | Prune::TwoFour));
    let corrections = if opts.random_samples { HashMap::new() } else { correct_bias(g, &layers, &plan, &ranges, sparse, opts)? };

    let score = |h: &Graph, n: usize| -> Result<Vec<Agreement>> {
        let got = Runner::new(h, &outputs, opts.kernels.session(threads)).map_err(err)?.collect(&opts.samples[..n]).map_err(err)?;
        // Top-1 agreement means something for [N, classes] outputs only (a
        // [1, 84, 8400] detection output's "rows" are not predictions).
        Ok((0..outputs.len())
            .map(|o| eval::agreement(&reference[..n], &got, o, if classifier[o] { classes[o] } else { 0 }, boxes[o]))
            .collect())
    };
    let drop_of = |a: &[Agreement]| -> f64 {
        a.iter().zip(&classifier).map(|(a, &c)| if c { 1.0 - a.top1.unwrap_or(1.0) } else { 1.0 - a.cosine }).fold(0.0, f64::max)
    };
    let cos_loss = |a: &[Agreement]| -> f64 { a.iter().map(|a| 1.0 - a.cosine).sum::<f64>() / a.len().max(1) as f64 };

    // A layer "kept in fp32" is neither quantized nor (for magnitude and
    // 2:4, which leave shapes alone) pruned: it gets its original weights
    // back. Channel pruning changes shapes and stays.
    let restorable = !matches!(opts.prune, Some(Prune::Channels(_)));
    let variant = |keep: &[usize], promoted: &[usize]| -> Result<Graph> {
        let mut h = g.clone();
        let mut p = plan.clone();
        for &n in promoted {
            p.insert(n, LayerPrecision::Int8);
        }
        for &n in keep {
            if restorable && opts.prune.is_some() {
                restore(&mut h, &float, &[n]);
            }
            p.insert(n, LayerPrecision::Fp32);
        }
        let hl = rewrite::layers(&h);
        rewrite::apply(&h, &hl, &p, &ranges, opts.group_size, sparse, &corrections).map_err(err)
    };
    let all: Vec<usize> = layers.iter().map(|l| l.node).collect();
    // What each layer's treatment (quantization and pruning) costs alone.
    let mut sensitivity: HashMap<usize, f64> = HashMap::new();
    let touched: Vec<usize> =
        all.iter().copied().filter(|n| plan[n] != LayerPrecision::Fp32 || (opts.prune.is_some() && restorable)).collect();
    if opts.max_drop.is_some() || touched.len() <= 64 {
        for (i, &n) in touched.iter().enumerate() {
            progress(opts, "sensitivity", i, touched.len());
            let others: Vec<usize> = all.iter().copied().filter(|&m| m != n).collect();
            sensitivity.insert(n, cos_loss(&score(&variant(&others, &[])?, eval_samples)?));
        }
        progress(opts, "sensitivity", touched.len(), touched.len());
    }

    let mut kept: Vec<usize> = Vec::new();
    let mut promoted: Vec<usize> = Vec::new();
    let mut h = variant(&kept, &promoted)?;
    let mut agreement = score(&h, opts.samples.len())?;
    if let Some(limit) = opts.max_drop {
        // Keep the most sensitive layers in float until the drop is within
        // the limit, cheapest first: steps go in order of sensitivity per
        // byte they add, so a depthwise filter that costs a few KiB in float
        // goes before a 480×480 pointwise one of the same sensitivity.
        // A ladder: an int4 layer first moves to int8 (when calibration
        // data allows int8), and only on a later step to fp32.
        let weights = |n: usize| layers.iter().find(|l| l.node == n).map_or(1, |l| l.rows * l.k) as f64;
        let can_int8 = !opts.random_samples;
        // (node, to int8, bytes added, sensitivity it is expected to remove)
        let mut steps: Vec<(usize, bool, f64, f64)> = touched
            .iter()
            .filter(|&&n| can_int8 && plan[&n] == LayerPrecision::Int4)
            .map(|&n| (n, true, 0.5 * weights(n), 0.5 * sensitivity[&n]))
            .chain(touched.iter().map(|&n| (n, false, 3.0 * weights(n), sensitivity[&n])))
            .collect();
        steps.sort_by(|a, b| (b.3 / b.2).total_cmp(&(a.3 / a.2)));
        // Sensitivities (1 − cosine with one layer quantized) add up about
        // linearly, though the whole model drops more than their sum (int8
        // between int8 layers adds its own rounding): with the cosine
        // metric, take the steps expected to cover three quarters of the
        // excess, scaled by that ratio, before measuring again.
        let cosine_metric = report.metric == "cosine";
        let mut next = 0;
        while drop_of(&agreement) > limit && next < steps.len() {
            let left: f64 = steps[next..].iter().filter(|s| !s.1).map(|s| s.3).sum();
            let ratio = if left > 0.0 { (drop_of(&agreement) / left).max(1.0) } else { 1.0 };
            let need = if cosine_metric { 0.75 * (drop_of(&agreement) - limit) / ratio } else { 0.0 };
            let mut covered = 0.0;
            while next < steps.len() {
                let (n, to_int8, _, s) = steps[next];
                next += 1;
                if to_int8 {
                    promoted.push(n);
                } else {
                    promoted.retain(|&m| m != n);
                    kept.push(n);
                }
                covered += s;
                if covered >= need {
                    break;
                }
            }
            progress(opts, "max-drop", next, steps.len());
            h = variant(&kept, &promoted)?;
            agreement = score(&h, opts.samples.len())?;
        }
        report.kept_fp32 = kept.iter().map(|&n| g.nodes[n].name.clone()).collect();
        report.promoted_int8 = promoted.iter().map(|&n| g.nodes[n].name.clone()).collect();
        if drop_of(&agreement) > limit {
            return Err(err(format!(
                "--max-drop {limit}: the model still drops {:.4} with every layer in fp32{}",
                drop_of(&agreement),
                if restorable { "" } else { " (channel pruning cannot be undone per layer; prune fewer channels)" }
            )));
        }
    }
    // The pruned float model against the original (for pruning alone the
    // report would otherwise compare the model with itself).
    report.drop = drop_of(&agreement);
    report.outputs = g.outputs.iter().zip(agreement).map(|((name, _), a)| OutputReport { name: name.clone(), agreement: a }).collect();
    let final_layers = if kept.is_empty() || !restorable {
        layers.clone()
    } else {
        let mut h = g.clone();
        restore(&mut h, &float, &kept);
        rewrite::layers(&h)
    };
    for l in &final_layers {
        let p = if kept.contains(&l.node) {
            LayerPrecision::Fp32
        } else if promoted.contains(&l.node) {
            LayerPrecision::Int8
        } else {
            plan[&l.node]
        };
        let zeros = l.weights.iter().filter(|&&w| w == 0.0).count();
        report.layers.push(LayerReport {
            name: g.nodes[l.node].name.clone(),
            op: g.nodes[l.node].op.name(),
            precision: p,
            sensitivity: sensitivity.get(&l.node).copied(),
            sparsity: zeros as f64 / l.weights.len().max(1) as f64,
            shape: [l.rows, l.k],
        });
    }
    *g = h;
    Ok(report)
}

/// Gives `nodes` of the pruned graph `h` their unpruned form back (node and
/// constant inputs, as in `float`; pruning that keeps shapes only changes
/// those).
fn restore(h: &mut Graph, float: &Graph, nodes: &[usize]) {
    for &n in nodes {
        h.nodes[n] = float.nodes[n].clone();
        for &v in &float.nodes[n].inputs {
            if float.values[v].konst.is_some() {
                h.values[v] = float.values[v].clone();
            }
        }
    }
}

fn classes_of(g: &Graph, v: ValueId) -> usize {
    g.values[v].shape.last().copied().unwrap_or(1)
}

/// The mean of every input feature of every prunable layer over the
/// calibration samples (channels of a convolution's input, columns of a
/// dense layer's).
fn input_means(g: &Graph, opts: &QuantOptions) -> Result<prune::InputMeans> {
    let nodes = prune::prunable(g);
    let mut observe: Vec<ValueId> = Vec::new();
    for &n in &nodes {
        let v = g.nodes[n].inputs[0];
        if g.konst(v).is_none() && !observe.contains(&v) {
            observe.push(v);
        }
    }
    let means = channel_means(g, &observe, &opts.samples, opts, "input means")?;
    let mean_of: HashMap<ValueId, Vec<f32>> = observe.iter().zip(means).map(|(&v, m)| (v, m.iter().map(|&x| x as f32).collect())).collect();
    Ok(nodes.iter().filter_map(|&n| mean_of.get(&g.nodes[n].inputs[0]).map(|m| (n, m.clone()))).collect())
}

/// `(channels, values per channel and sample)` of a value: axis 1 of an
/// image (`[N, C, H, W]`), else the last axis.
fn channels(g: &Graph, v: ValueId) -> (usize, usize) {
    let d = &g.values[v].shape;
    if d.len() == 4 {
        (d[1], d[2] * d[3])
    } else {
        (d.last().copied().unwrap_or(1), 1)
    }
}

/// Calls `each(c, run)` for every run of values of channel `c` in `x` (a
/// value laid out as [`channels`] says).
fn for_channels(x: &[f32], (channels, inner): (usize, usize), mut each: impl FnMut(usize, &[f32])) {
    for (i, run) in x.chunks(inner.max(1)).enumerate() {
        each(i % channels.max(1), run);
    }
}

/// The per-channel mean of every value in `observe` (float values of `g`)
/// over `samples`.
fn channel_means(g: &Graph, observe: &[ValueId], samples: &[Vec<Tensor>], opts: &QuantOptions, stage: &str) -> Result<Vec<Vec<f64>>> {
    let shapes: Vec<(usize, usize)> = observe.iter().map(|&v| channels(g, v)).collect();
    let mut sums: Vec<Vec<f64>> = shapes.iter().map(|&(c, _)| vec![0.0; c]).collect();
    let mut counts = vec![0usize; observe.len()];
    let mut runner = Runner::new(g, observe, opts.kernels.session(opts.threads)).map_err(err)?;
    for (i, s) in samples.iter().enumerate() {
        progress(opts, stage, i, samples.len());
        runner
            .run(s, &mut |o, x| {
                for_channels(x, shapes[o], |c, run| sums[o][c] += run.iter().map(|&v| v as f64).sum::<f64>());
                counts[o] += x.len() / shapes[o].0.max(1);
            })
            .map_err(err)?;
    }
    progress(opts, stage, samples.len(), samples.len());
    Ok(sums.into_iter().zip(counts).map(|(s, n)| s.into_iter().map(|v| v / n.max(1) as f64).collect()).collect())
}

/// Samples each layer's sensitivity is measured on (see `run`).
const SENSITIVITY_SAMPLES: usize = 8;

/// Samples [`correct_bias`] measures on (means converge fast).
const BIAS_SAMPLES: usize = 64;

/// Bias correction (Nagel et al., "Data-Free Quantization", 2019, the
/// empirical variant): rounding a layer's weights to `Wq` and its input to
/// `Q(x)` shifts the mean of every output channel by
/// `Wq·E[Q(x)] − W·E[x] = (Wq − W)·E[x] + Wq·E[Q(x) − x]`, and shifts add
/// up through the network (a depthwise filter has nine weights per
/// channel, and a channel whose values sit between two int8 steps rounds
/// the same way every time). Both means are measured per input channel on
/// the float model's calibration run, with the input quantized exactly as
/// the quantized graph will (its scale and zero point), and the shift is
/// taken out of the layer's bias. Each layer is corrected for its own
/// error, so corrections do not double up along the network.
fn correct_bias(
    g: &Graph,
    layers: &[Layer],
    plan: &HashMap<usize, LayerPrecision>,
    ranges: &calib::Ranges,
    sparse: bool,
    opts: &QuantOptions,
) -> Result<HashMap<usize, Vec<f32>>> {
    let targets: Vec<&Layer> = layers.iter().filter(|l| plan[&l.node] != LayerPrecision::Fp32).collect();
    if targets.is_empty() {
        return Ok(HashMap::new());
    }
    // How each int8 layer's input is quantized, read off the rewritten graph.
    let h = rewrite::apply(g, layers, plan, ranges, opts.group_size, sparse, &HashMap::new()).map_err(err)?;
    let input_q: HashMap<&str, (f32, i8, bool)> = h
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::QConv2d { .. } | Op::QGemm { .. }))
        .filter_map(|n| Some((n.name.as_str(), int8_params(&h, n.inputs[0])?)))
        .collect();
    // Per layer: its input, how it is quantized (tensor scale and zero
    // point), and its per-channel mapping.
    type Key = (ValueId, Option<(u32, i8)>, Option<calib::ChannelQuant>);
    let keys: Vec<Key> = targets
        .iter()
        .map(|l| {
            let x = g.nodes[l.node].inputs[0];
            match input_q.get(g.nodes[l.node].name.as_str()) {
                Some(&(scale, zp, edge)) => {
                    (x, Some((scale.to_bits(), zp)), if edge { rewrite::input_channel_quant(ranges, x) } else { None })
                }
                None => (x, None, None),
            }
        })
        .collect();
    // One observation per distinct (input, quantization).
    let mut observe: Vec<&Key> = Vec::new();
    let slot: Vec<usize> = keys
        .iter()
        .map(|k| {
            observe.iter().position(|&o| o == k).unwrap_or_else(|| {
                observe.push(k);
                observe.len() - 1
            })
        })
        .collect();
    let values: Vec<ValueId> = observe.iter().map(|o| o.0).collect();
    let shapes: Vec<(usize, usize)> = values.iter().map(|&v| channels(g, v)).collect();
    // Per observation and channel: Σx and Σ(Q(x) − x).
    let mut sums: Vec<(Vec<f64>, Vec<f64>)> = shapes.iter().map(|&(c, _)| (vec![0.0; c], vec![0.0; c])).collect();
    let mut counts = vec![0usize; observe.len()];
    let samples = &opts.samples[..opts.samples.len().min(BIAS_SAMPLES)];
    let mut runner = Runner::new(g, &values, opts.kernels.session(opts.threads)).map_err(err)?;
    for (i, smp) in samples.iter().enumerate() {
        progress(opts, "bias correction", i, samples.len());
        runner
            .run(smp, &mut |o, x| {
                let (sx, se) = &mut sums[o];
                let (_, quant, cq) = observe[o];
                for_channels(x, shapes[o], |c, run| {
                    sx[c] += run.iter().map(|&v| v as f64).sum::<f64>();
                    if let Some((scale, zp)) = *quant {
                        // x → int8 → x, as the quantized graph does it.
                        let (f, m) = cq.as_ref().map_or((1.0, 0.0), |cq| (cq.factor[c], cq.shift[c]));
                        let scale = f32::from_bits(scale);
                        for &v in run {
                            let q = rewrite::quantize_one((v - m) / f, scale, zp) as f32 - zp as f32;
                            se[c] += (q * scale * f + m - v) as f64;
                        }
                    }
                });
                counts[o] += x.len() / shapes[o].0.max(1);
            })
            .map_err(err)?;
    }
    progress(opts, "bias correction", samples.len(), samples.len());
    let mut corrections = HashMap::new();
    for ((l, &o), (_, _, cq)) in targets.iter().zip(&slot).zip(&keys) {
        let n = counts[o].max(1) as f64;
        let (mean_x, mean_e): (Vec<f64>, Vec<f64>) = (sums[o].0.iter().map(|v| v / n).collect(), sums[o].1.iter().map(|v| v / n).collect());
        // The weights the quantized layer computes with, in the units of
        // the float input.
        let wq = match cq {
            Some(calib::ChannelQuant { factor: f, .. }) => {
                let mut w = rewrite::dequantized_rows(&l.folded(f), plan[&l.node], opts.group_size);
                for r in 0..l.rows {
                    for k in 0..l.k {
                        w[r * l.k + k] /= f[l.input_channel(r, k)];
                    }
                }
                w
            }
            None => rewrite::dequantized_rows(l, plan[&l.node], opts.group_size),
        };
        let c: Vec<f32> = (0..l.rows)
            .map(|r| {
                let mut shift = 0.0f64;
                for k in 0..l.k {
                    let ch = l.input_channel(r, k);
                    let (w, q) = (l.weights[r * l.k + k] as f64, wq[r * l.k + k] as f64);
                    // The weights' error acts on `x − shift` (the shift
                    // itself is added exactly in float).
                    let m = cq.as_ref().map_or(0.0, |cq| cq.shift[ch] as f64);
                    shift += (q - w) * (mean_x[ch] - m) + q * mean_e[ch];
                }
                -shift as f32
            })
            .collect();
        corrections.insert(l.node, c);
    }
    Ok(corrections)
}

/// The scale and zero point of the int8 value `v` of a quantized graph:
/// from the Quantize (then `true`: the edge of an int8 region) or int8
/// layer that wrote it, through the ops that carry int8 unchanged.
fn int8_params(h: &Graph, mut v: ValueId) -> Option<(f32, i8, bool)> {
    let producers = h.producers();
    loop {
        let n = &h.nodes[producers[v]?];
        match n.op {
            Op::Quantize { scale, zero_point } | Op::QuantizeChannels { scale, zero_point } => return Some((scale, zero_point, true)),
            Op::QConv2d { out: QOutParams::I8 { scale, zero_point }, .. } | Op::QGemm { out: QOutParams::I8 { scale, zero_point }, .. } => {
                return Some((scale, zero_point, false))
            }
            Op::Copy | Op::MaxPool2d(_) => v = n.inputs[0],
            _ => return None,
        }
    }
}

/// Calibrated ranges of every value an int8 layer reads or writes, and
/// per channel of the images and rows they read.
fn calibrate(g: &Graph, layers: &[Layer], plan: &HashMap<usize, LayerPrecision>, opts: &QuantOptions) -> Result<calib::Ranges> {
    let mut observe: Vec<ValueId> = Vec::new();
    let mut per_channel: Vec<bool> = Vec::new();
    // Every quantized layer (int4 ones may move to int8 under --max-drop).
    let wanted = |p: LayerPrecision| p == LayerPrecision::Int8 || (p == LayerPrecision::Int4 && !opts.random_samples);
    for l in layers.iter().filter(|l| wanted(plan[&l.node])) {
        let n = &g.nodes[l.node];
        for (i, v) in [n.inputs[0], n.outputs[0]].into_iter().enumerate() {
            if g.konst(v).is_none() && g.values[v].dtype == jetrt::DType::F32 {
                let at = observe.iter().position(|&o| o == v).unwrap_or_else(|| {
                    observe.push(v);
                    per_channel.push(false);
                    observe.len() - 1
                });
                // Per channel: images and rows.
                per_channel[at] |= i == 0 && matches!(g.values[v].shape.len(), 2 | 4);
            }
        }
    }
    if observe.is_empty() {
        return Ok(calib::Ranges::default());
    }
    let shapes: Vec<(usize, usize)> = observe.iter().map(|&v| channels(g, v)).collect();
    // Per channel, the same statistics as per tensor (a coarser
    // histogram). With mse, each channel's range is clipped where its own
    // expected squared error is least, not left at its min/max (which fits
    // the calibration samples' outliers): held-out cosine on PP-OCRv5 det
    // 0.9899 -> 0.9909, rec 0.9898 -> 0.9908. A fixed percentile per
    // channel clipped too much (rec int4 with percentile lost 0.7 points of
    // character accuracy), so other methods keep each channel's min/max.
    let mut chan: Vec<Vec<calib::Stats>> = shapes
        .iter()
        .zip(&per_channel)
        .map(|(&(c, _), &p)| if p { vec![calib::Stats::with_bins(calib::CHANNEL_BINS); c] } else { Vec::new() })
        .collect();
    let mut runner = Runner::new(g, &observe, opts.kernels.session(opts.threads)).map_err(err)?;
    let mut stats = vec![calib::Stats::default(); observe.len()];
    let passes = if opts.method.needs_histogram() { 2 } else { 1 };
    let total = passes * opts.samples.len();
    for pass in 0..passes {
        for (i, s) in opts.samples.iter().enumerate() {
            progress(opts, "calibrate", pass * opts.samples.len() + i, total);
            runner
                .run(s, &mut |o, x| {
                    if pass == 0 {
                        stats[o].observe_range(x);
                        if per_channel[o] {
                            for_channels(x, shapes[o], |c, run| chan[o][c].observe_range(run));
                        }
                    } else {
                        stats[o].observe_hist(x);
                        if per_channel[o] && opts.method == calib::CalibMethod::Mse {
                            for_channels(x, shapes[o], |c, run| chan[o][c].observe_hist(run));
                        }
                    }
                })
                .map_err(err)?;
        }
    }
    progress(opts, "calibrate", total, total);
    let mut ranges = calib::Ranges::default();
    for (o, &v) in observe.iter().enumerate() {
        ranges.tensor.insert(v, stats[o].range(opts.method));
        if per_channel[o] {
            let method = if opts.method == calib::CalibMethod::Mse { calib::CalibMethod::Mse } else { calib::CalibMethod::MinMax };
            ranges.channel.insert(v, chan[o].iter().map(|c| c.range(method)).collect());
        }
    }
    Ok(ranges)
}
