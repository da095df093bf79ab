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
    pub progress: Option<Progress>,
}

impl Default for QuantOptions {
    fn default() -> Self {
        QuantOptions {
            precision: Precision::Fp32,
            method: CalibMethod::Percentile(99.99),
            group_size: 32,
            max_drop: None,
            prune: None,
            samples: Vec::new(),
            random_samples: false,
            threads: 0,
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
    // The float model's outputs: the reference everything is compared to.
    progress(opts, "reference", 0, opts.samples.len());
    let reference = Runner::new(g, &outputs, threads).map_err(err)?.collect(&opts.samples).map_err(err)?;
    let eval_samples = opts.samples.len().min(16);

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

    let score = |h: &Graph, n: usize| -> Result<Vec<Agreement>> {
        let got = Runner::new(h, &outputs, threads).map_err(err)?.collect(&opts.samples[..n]).map_err(err)?;
        Ok((0..outputs.len()).map(|o| eval::agreement(&reference[..n], &got, o, classes[o])).collect())
    };
    let drop_of = |a: &[Agreement]| -> f64 {
        a.iter().zip(&classifier).map(|(a, &c)| if c { 1.0 - a.top1.unwrap_or(1.0) } else { 1.0 - a.cosine }).fold(0.0, f64::max)
    };
    let cos_loss = |a: &[Agreement]| -> f64 { a.iter().map(|a| 1.0 - a.cosine).sum::<f64>() / a.len().max(1) as f64 };

    // A layer "kept in fp32" is neither quantized nor (for magnitude and
    // 2:4, which leave shapes alone) pruned: it gets its original weights
    // back. Channel pruning changes shapes and stays.
    let restorable = !matches!(opts.prune, Some(Prune::Channels(_)));
    // What magnitude and 2:4 pruning zero is stored compactly in the layers
    // that stay float.
    let sparse = matches!(opts.prune, Some(Prune::Magnitude(_) | Prune::TwoFour));
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
        rewrite::apply(&h, &hl, &p, &ranges, opts.group_size, sparse).map_err(err)
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
        // the limit.
        // A ladder: an int4 layer first moves to int8 (when calibration
        // data allows int8), and only on a second pass to fp32.
        let mut order = touched.clone();
        order.sort_by(|a, b| sensitivity[b].total_cmp(&sensitivity[a]));
        let can_int8 = !opts.random_samples;
        let steps: Vec<(usize, bool)> = order
            .iter()
            .filter(|&&n| can_int8 && plan[&n] == LayerPrecision::Int4)
            .map(|&n| (n, true))
            .chain(order.iter().map(|&n| (n, false)))
            .collect();
        for (k, &(n, to_int8)) in steps.iter().enumerate() {
            if drop_of(&agreement) <= limit {
                break;
            }
            progress(opts, "max-drop", k, steps.len());
            if to_int8 {
                promoted.push(n);
            } else {
                promoted.retain(|&m| m != n);
                kept.push(n);
            }
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
    let features = |v: ValueId| -> (usize, usize) {
        let d = &g.values[v].shape;
        if d.len() == 4 {
            (d[1], d[2] * d[3])
        } else {
            (d.last().copied().unwrap_or(1), 1)
        }
    };
    let mut sums: Vec<Vec<f64>> = observe.iter().map(|&v| vec![0.0; features(v).0]).collect();
    let mut counts = vec![0usize; observe.len()];
    let mut runner = Runner::new(g, &observe, opts.threads).map_err(err)?;
    for (i, s) in opts.samples.iter().enumerate() {
        progress(opts, "input means", i, opts.samples.len());
        runner
            .run(s, &mut |o, x| {
                let (f, inner) = features(observe[o]);
                for (j, &v) in x.iter().enumerate() {
                    let feat = if inner > 1 { (j / inner) % f } else { j % f };
                    sums[o][feat] += v as f64;
                }
                counts[o] += x.len() / f.max(1);
            })
            .map_err(err)?;
    }
    progress(opts, "input means", opts.samples.len(), opts.samples.len());
    let mean_of: HashMap<ValueId, Vec<f32>> =
        observe.iter().enumerate().map(|(o, &v)| (v, sums[o].iter().map(|&s| (s / counts[o].max(1) as f64) as f32).collect())).collect();
    Ok(nodes.iter().filter_map(|&n| mean_of.get(&g.nodes[n].inputs[0]).map(|m| (n, m.clone()))).collect())
}

/// Calibrated ranges of every value an int8 layer reads or writes.
fn calibrate(
    g: &Graph,
    layers: &[Layer],
    plan: &HashMap<usize, LayerPrecision>,
    opts: &QuantOptions,
) -> Result<HashMap<ValueId, (f32, f32)>> {
    let mut observe: Vec<ValueId> = Vec::new();
    // Every quantized layer (int4 ones may move to int8 under --max-drop).
    let wanted = |p: LayerPrecision| p == LayerPrecision::Int8 || (p == LayerPrecision::Int4 && !opts.random_samples);
    for l in layers.iter().filter(|l| wanted(plan[&l.node])) {
        let n = &g.nodes[l.node];
        for v in [n.inputs[0], n.outputs[0]] {
            if g.konst(v).is_none() && g.values[v].dtype == jetrt::DType::F32 && !observe.contains(&v) {
                observe.push(v);
            }
        }
    }
    if observe.is_empty() {
        return Ok(HashMap::new());
    }
    let mut runner = Runner::new(g, &observe, opts.threads).map_err(err)?;
    let mut stats = vec![calib::Stats::default(); observe.len()];
    let passes = if opts.method.needs_histogram() { 2 } else { 1 };
    let total = passes * opts.samples.len();
    for pass in 0..passes {
        for (i, s) in opts.samples.iter().enumerate() {
            progress(opts, "calibrate", pass * opts.samples.len() + i, total);
            runner
                .run(s, &mut |o, x| {
                    if pass == 0 {
                        stats[o].observe_range(x)
                    } else {
                        stats[o].observe_hist(x)
                    }
                })
                .map_err(err)?;
        }
    }
    progress(opts, "calibrate", total, total);
    Ok(observe.iter().zip(&stats).map(|(&v, s)| (v, s.range(opts.method))).collect())
}
