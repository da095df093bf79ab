//! Drift monitoring on the device: reference statistics stored in the
//! `.jrt` file at conversion, and a [`Monitor`] that compares a sliding
//! window of inferences with them, with no server, no labels and no heap
//! after start.
//!
//! What is watched, for every float32 model input and output:
//!
//! - its values (pooled; a large tensor is sampled: up to [`MAX_SAMPLED`]
//!   elements per inference in runs spread over it, moving with each
//!   inference), as a histogram over bins whose edges are the reference's
//!   deciles;
//! - per inference: the mean, the standard deviation and (for inputs with
//!   rows) the roughness, the mean absolute difference between neighbours
//!   along the last axis, which blur lowers and noise raises;
//! - the mean of each channel (axis 1, up to [`MAX_CHANNELS`]);
//! - for classifier-like outputs (`[1, K]`, 2 ≤ K ≤ [`MAX_CLASSES`]): the
//!   top-1 class frequencies, the top-1 confidence and the normalized
//!   entropy of the (softmaxed) distribution.
//!
//! Per tensor the monitor reports the largest Population Stability Index
//! and Kolmogorov–Smirnov distance over its histograms, and the largest
//! standardized mean shift (`|window mean − reference mean| / reference
//! standard deviation`) over its channels and per-inference features. A
//! statistic raises a warning or an alarm when it passes both its level
//! ([`Thresholds`]) and the level that sampling noise alone reaches with a
//! probability of 10⁻³ (warn) or 10⁻⁵ (alarm) for the window and reference
//! sizes at hand, so that small windows do not cry wolf.

use crate::error::{Error, Result};
pub use jetrt_format::drift::{Feature, FeatureRef, Reference, TensorReference, BINS};
/// Elements of a tensor read per inference at most, in [`SAMPLE_RUNS`]
/// runs of contiguous elements spread evenly over it.
pub const MAX_SAMPLED: usize = 2048;
/// Runs a large tensor is sampled in. Where each run starts within its
/// stretch moves with every inference, so that a window covers the whole
/// tensor.
pub const SAMPLE_RUNS: usize = 32;
/// Channels whose means are tracked; a tensor with more is tracked whole.
pub const MAX_CHANNELS: usize = 64;
/// Classes of a classifier-like output.
pub const MAX_CLASSES: usize = 1024;
/// Monitored tensors per model.
pub const MAX_MONITORED: usize = 16;
/// Per-inference features of a tensor (values included).
pub const MAX_FEATURES: usize = 6;
/// A window is kept as this many blocks of inferences; it slides by a block.
pub const BLOCKS: usize = 10;
/// Largest window (inferences).
pub const MAX_WINDOW: usize = 1 << 20;
/// Default window (inferences).
pub const DEFAULT_WINDOW: usize = 100;

/// How a tensor is watched, from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    len: usize,
    /// Elements per channel plane (0: not tracked per channel).
    plane: usize,
    channels: usize,
    /// Last-axis length, for the roughness (0: none).
    row: usize,
    /// Classes of a classifier-like output (0: not one).
    classes: usize,
}

impl Layout {
    pub(crate) fn of(shape: &[usize], is_output: bool) -> Layout {
        let len: usize = shape.iter().product();
        let (channels, plane) = match shape {
            [_, c, rest @ ..] if *c >= 2 && *c <= MAX_CHANNELS => (*c, rest.iter().product::<usize>()),
            _ => (1, len),
        };
        let last = shape.last().copied().unwrap_or(1);
        let classes = if is_output && (2..=MAX_CLASSES).contains(&last) && len == last { last } else { 0 };
        let row = if classes == 0 && shape.len() >= 2 && last >= 2 { last } else { 0 };
        Layout { len, plane, channels, row, classes }
    }

    /// Whether `r` was taken the way this monitor watches the tensor (the
    /// file's reference is checked for structure only when it opens).
    fn check(&self, r: &TensorReference, model: &crate::Model) -> Result<()> {
        let features = self.features();
        let same = r.channels == self.channels
            && r.classes.len() == self.classes
            && r.features.iter().map(|f| f.feature).eq(features.iter().copied());
        if same {
            return Ok(());
        }
        let name = model.tensor_name(r.tensor).unwrap_or("?");
        Err(Error::Options(format!(
            "the drift reference of {name:?} holds {} channels, {} histograms and {} classes; this jetrt watches {} channels, {} \
             histograms and {} classes for its shape: convert the model again to renew its reference",
            r.channels,
            r.features.len(),
            r.classes.len(),
            self.channels,
            features.len(),
            self.classes
        )))
    }

    fn features(&self) -> heapless::Vec<Feature, MAX_FEATURES> {
        let mut f = heapless::Vec::new();
        let _ = f.push(Feature::Values);
        let _ = f.push(Feature::Mean);
        let _ = f.push(Feature::Std);
        if self.row > 0 {
            let _ = f.push(Feature::Roughness);
        }
        if self.classes > 0 {
            let _ = f.push(Feature::Confidence);
            let _ = f.push(Feature::Entropy);
        }
        f
    }
}

/// One inference's view of a tensor: its per-inference features, channel
/// means and top-1 class. The values go straight into a histogram (or, for
/// the reference, a list) through `each_value`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observation {
    feature: [f64; MAX_FEATURES],
    chan: [f64; MAX_CHANNELS],
    chan_n: [u32; MAX_CHANNELS],
    top1: usize,
}

/// Computes the per-inference features of `x` (`layout.len` floats), in the
/// order of `layout.features()`, calling `each_value` on every sampled
/// element. A large tensor is sampled in [`SAMPLE_RUNS`] runs of contiguous
/// elements spread evenly over it: after an inference the input is mostly
/// out of cache, and runs cost a few cache lines each where evenly strided
/// single elements cost a memory access each (ResNet-18's input: 4 times
/// less time).
pub(crate) fn observe(layout: &Layout, x: &[f32], phase: u64, mut each_value: impl FnMut(f32)) -> Observation {
    let mut o = Observation { feature: [0.0; MAX_FEATURES], chan: [0.0; MAX_CHANNELS], chan_n: [0; MAX_CHANNELS], top1: 0 };
    let len = layout.len.min(x.len());
    let (runs, run) = if len <= MAX_SAMPLED { (1, len) } else { (SAMPLE_RUNS, MAX_SAMPLED / SAMPLE_RUNS) };
    let step = len / runs.max(1);
    // A run starts anywhere in its stretch, moving by a large prime each
    // inference (the reference moves the same way).
    let shift = if step > run { (phase.wrapping_mul(7919) % (step - run + 1) as u64) as usize } else { 0 };
    let plane = layout.plane.max(1);
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0u64);
    let (mut rough, mut rough_n) = (0f64, 0u64);
    for r in 0..runs {
        let start = r * step + shift;
        let end = (start + run).min(len);
        let mut c = (start / plane) % layout.channels;
        let mut next_plane = (start / plane + 1) * plane;
        let mut col = if layout.row > 0 { start % layout.row } else { 0 };
        for i in start..end {
            if i == next_plane {
                c = (c + 1) % layout.channels;
                next_plane += plane;
            }
            let v = x[i];
            if v.is_finite() {
                each_value(v);
                let d = v as f64;
                sum += d;
                sq += d * d;
                n += 1;
                o.chan[c] += d;
                o.chan_n[c] += 1;
                if layout.row > 0 && col + 1 < layout.row && i + 1 < end {
                    let w = x[i + 1];
                    if w.is_finite() {
                        rough += (w as f64 - d).abs();
                        rough_n += 1;
                    }
                }
            }
            if layout.row > 0 {
                col += 1;
                if col == layout.row {
                    col = 0;
                }
            }
        }
    }
    let mean = if n > 0 { sum / n as f64 } else { 0.0 };
    let var = if n > 0 { (sq / n as f64 - mean * mean).max(0.0) } else { 0.0 };
    for c in 0..layout.channels {
        if o.chan_n[c] > 0 {
            o.chan[c] /= o.chan_n[c] as f64;
        }
    }
    let (top1, conf, ent) = if layout.classes > 0 { classify(&x[..layout.classes.min(x.len())]) } else { (0, 0.0, 0.0) };
    o.top1 = top1;
    for (k, f) in layout.features().into_iter().enumerate() {
        o.feature[k] = match f {
            Feature::Values | Feature::Classes | Feature::Mean => mean,
            Feature::Std => var.sqrt(),
            Feature::Roughness if rough_n > 0 => rough / rough_n as f64,
            Feature::Roughness => 0.0,
            Feature::Confidence => conf,
            Feature::Entropy => ent,
        };
    }
    o
}

/// (top-1 class, its probability, entropy / ln K) of a classifier output:
/// taken as probabilities when they are ones (in [0, 1], summing to 1),
/// else softmaxed first.
fn classify(x: &[f32]) -> (usize, f64, f64) {
    let k = x.len();
    if k < 2 {
        return (0, 1.0, 0.0);
    }
    let mut top1 = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[top1] || x[top1].is_nan() {
            top1 = i;
        }
    }
    let sum: f64 = x.iter().map(|&v| v as f64).sum();
    let probs = x.iter().all(|&v| (0.0..=1.0).contains(&v)) && (sum - 1.0).abs() < 1e-3;
    let max = x[top1] as f64;
    let z: f64 = if probs { 1.0 } else { x.iter().map(|&v| (v as f64 - max).exp()).sum() };
    let p = |v: f32| if probs { v as f64 } else { (v as f64 - max).exp() / z };
    let mut ent = 0.0;
    for &v in x {
        let q = p(v);
        if q > 0.0 && q.is_finite() {
            ent -= q * q.ln();
        }
    }
    (top1, p(x[top1]), ent / (k as f64).ln())
}

/// The bin of `v` for `edges`: the number of edges at or below it
/// (branch-free: the compiler vectorizes the nine compares).
fn bin(edges: &[f32; BINS - 1], v: f32) -> usize {
    edges.iter().map(|&e| usize::from(e <= v)).sum()
}

/// Builds a [`Reference`] from inferences (at conversion, on the host).
pub struct ReferenceBuilder {
    tensors: Vec<(usize, Layout)>,
    /// Per tensor: sampled values, per-inference features, channel means,
    /// top-1 classes.
    values: Vec<Vec<f32>>,
    features: Vec<Vec<Vec<f64>>>,
    chans: Vec<Vec<Vec<f64>>>,
    tops: Vec<Vec<usize>>,
    samples: usize,
}

impl ReferenceBuilder {
    /// Watches every float32 input and output of `model` (up to
    /// [`MAX_MONITORED`]).
    pub fn new(model: &crate::Model) -> ReferenceBuilder {
        let d = model.d();
        let mut tensors = layouts(d);
        tensors.retain(|&(t, _)| d.tensors[t].nbytes > 0);
        tensors.truncate(MAX_MONITORED);
        let n = tensors.len();
        ReferenceBuilder {
            features: tensors.iter().map(|(_, l)| vec![Vec::new(); l.features().len()]).collect(),
            chans: tensors.iter().map(|(_, l)| vec![Vec::new(); l.channels]).collect(),
            tensors,
            values: vec![Vec::new(); n],
            tops: vec![Vec::new(); n],
            samples: 0,
        }
    }

    /// Adds the inference `session` just ran.
    pub fn add(&mut self, session: &crate::Session) -> Result<()> {
        for (k, &(t, layout)) in self.tensors.iter().enumerate() {
            let bytes = session.tensor_bytes(t)?;
            let x: &[f32] = bytemuck::try_cast_slice(&bytes).map_err(|_| internal("tensor not 4-byte aligned"))?;
            let values = &mut self.values[k];
            let o = observe(&layout, x, self.samples as u64, |v| values.push(v));
            for (f, list) in self.features[k].iter_mut().enumerate() {
                list.push(o.feature[f]);
            }
            for (c, list) in self.chans[k].iter_mut().enumerate() {
                list.push(o.chan[c]);
            }
            self.tops[k].push(o.top1);
        }
        self.samples += 1;
        Ok(())
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    pub fn finish(self) -> Reference {
        let mut tensors = Vec::new();
        for (k, (t, layout)) in self.tensors.iter().enumerate() {
            let mut features = Vec::new();
            for (f, feature) in layout.features().into_iter().enumerate() {
                let data: Vec<f64> = if feature == Feature::Values {
                    self.values[k].iter().map(|&v| v as f64).collect()
                } else {
                    self.features[k][f].clone()
                };
                features.push(histogram(feature, data));
            }
            let (channel_mean, channel_std) = self.chans[k].iter().map(|v| mean_std(v)).map(|(m, s)| (m as f32, s as f32)).unzip();
            let classes = if layout.classes > 0 {
                let mut counts = vec![0f32; layout.classes];
                for &c in &self.tops[k] {
                    counts[c.min(layout.classes - 1)] += 1.0;
                }
                counts.iter().map(|c| c / self.samples.max(1) as f32).collect()
            } else {
                Vec::new()
            };
            tensors.push(TensorReference { tensor: *t, channels: layout.channels, channel_mean, channel_std, features, classes });
        }
        Reference { samples: self.samples, tensors }
    }
}

fn internal(reason: &str) -> Error {
    Error::Internal { step: 0, op: "drift", reason: reason.into() }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

/// Decile edges of `data` and the share of it in each bin.
fn histogram(feature: Feature, mut data: Vec<f64>) -> FeatureRef {
    let (mean, std) = mean_std(&data);
    data.sort_by(f64::total_cmp);
    let mut edges = [0f32; BINS - 1];
    for (i, e) in edges.iter_mut().enumerate() {
        *e = if data.is_empty() { 0.0 } else { data[((i + 1) * data.len() / BINS).min(data.len() - 1)] as f32 };
    }
    let mut probs = [0f32; BINS];
    for &v in &data {
        probs[bin(&edges, v as f32)] += 1.0;
    }
    for p in &mut probs {
        *p /= data.len().max(1) as f32;
    }
    FeatureRef { feature, mean: mean as f32, std: std as f32, edges, probs }
}

/// The float32 inputs and outputs of a model (each once), with how each is
/// watched.
pub(crate) fn layouts(d: &jetrt_format::reader::Decoded) -> Vec<(usize, Layout)> {
    jetrt_format::reader::float_io(d).map(|t| (t, Layout::of(d.tensors[t].shape.dims(), !d.inputs.contains(&t)))).collect()
}

/// A verdict, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verdict {
    #[default]
    Ok,
    Warn,
    Alarm,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Alarm => "alarm",
        }
    }
}

/// Warn and alarm levels of each statistic. A statistic must also pass
/// the level sampling noise reaches with probability 10⁻³ (warn) or 10⁻⁵
/// (alarm) for the window and reference sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Population Stability Index (industry convention: 0.1 / 0.25).
    pub psi: (f64, f64),
    /// Kolmogorov–Smirnov distance (largest gap between the cumulative
    /// distributions at the bin edges).
    pub ks: (f64, f64),
    /// Standardized mean shift, in reference standard deviations.
    pub shift: (f64, f64),
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { psi: (0.1, 0.25), ks: (0.1, 0.2), shift: (0.5, 1.0) }
    }
}

/// The monitor's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorOptions {
    /// Inferences in the sliding window.
    pub window: usize,
    pub thresholds: Thresholds,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions { window: DEFAULT_WINDOW, thresholds: Thresholds::default() }
    }
}

/// One block of inferences of one tensor: histogram counts and sums.
#[derive(Clone)]
struct Block {
    n: u32,
    values: [u32; BINS],
    hist: [[u32; BINS]; MAX_FEATURES],
    sum: [f64; MAX_FEATURES],
    chan: [f64; MAX_CHANNELS],
    chan_n: [u32; MAX_CHANNELS],
    classes: heapless::Vec<u32, MAX_CLASSES>,
}

impl Block {
    fn new(classes: usize) -> Block {
        let mut c = heapless::Vec::new();
        c.resize(classes, 0).ok();
        Block {
            n: 0,
            values: [0; BINS],
            hist: [[0; BINS]; MAX_FEATURES],
            sum: [0.0; MAX_FEATURES],
            chan: [0.0; MAX_CHANNELS],
            chan_n: [0; MAX_CHANNELS],
            classes: c,
        }
    }

    fn clear(&mut self) {
        self.n = 0;
        self.values = [0; BINS];
        self.hist = [[0; BINS]; MAX_FEATURES];
        self.sum = [0.0; MAX_FEATURES];
        self.chan = [0.0; MAX_CHANNELS];
        self.chan_n = [0; MAX_CHANNELS];
        self.classes.iter_mut().for_each(|c| *c = 0);
    }

    fn add(&mut self, o: &Block) {
        self.n += o.n;
        for i in 0..BINS {
            self.values[i] += o.values[i];
        }
        for f in 0..MAX_FEATURES {
            for i in 0..BINS {
                self.hist[f][i] += o.hist[f][i];
            }
            self.sum[f] += o.sum[f];
        }
        for c in 0..MAX_CHANNELS {
            self.chan[c] += o.chan[c];
            self.chan_n[c] += o.chan_n[c];
        }
        for (a, b) in self.classes.iter_mut().zip(&o.classes) {
            *a += b;
        }
    }
}

/// Statistics of one tensor over the window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TensorStats {
    /// Index of the tensor in the file.
    pub tensor: usize,
    pub psi: f64,
    pub ks: f64,
    pub mean_shift: f64,
    pub verdict: Verdict,
    /// Which feature gave the worst statistic.
    pub worst: Option<Feature>,
}

struct Watch {
    layout: Layout,
    reference: TensorReference,
    ring: heapless::Deque<Block, BLOCKS>,
    current: Block,
    /// Scratch for the window's sum (no allocation while running).
    window: Block,
    stats: TensorStats,
}

/// Watches a session's inputs and outputs against the file's drift
/// reference over a sliding window of inferences. All memory is allocated
/// by [`Monitor::new`]; [`Monitor::observe`] allocates nothing.
pub struct Monitor {
    watches: heapless::Vec<Box<Watch>, MAX_MONITORED>,
    window: usize,
    block: usize,
    blocks: usize,
    thresholds: Thresholds,
    ref_samples: usize,
    samples: u64,
    verdict: Verdict,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("window", &self.window).field("samples", &self.samples).field("verdict", &self.verdict).finish()
    }
}

impl Monitor {
    /// A monitor of `model` (which must hold a drift reference).
    pub fn new(model: &crate::Model, options: MonitorOptions) -> Result<Monitor> {
        let reference = model.drift_reference().ok_or_else(|| {
            Error::Options(format!(
                "{} has no drift reference: convert it with jetc convert --calib DIR or --drift-ref DIR",
                model.path().map_or("the model".into(), |p| p.display().to_string())
            ))
        })?;
        if options.window < 2 || options.window > MAX_WINDOW {
            return Err(Error::Options(format!("drift window {} must be between 2 and {MAX_WINDOW} inferences", options.window)));
        }
        let layouts = layouts(model.d());
        let blocks = BLOCKS.min(options.window);
        let block = options.window.div_ceil(blocks);
        let mut watches = heapless::Vec::new();
        for t in &reference.tensors {
            let Some(&(_, layout)) = layouts.iter().find(|(u, _)| *u == t.tensor) else { continue };
            layout.check(t, model)?;
            let w = Box::new(Watch {
                layout,
                reference: t.clone(),
                ring: heapless::Deque::new(),
                current: Block::new(layout.classes),
                window: Block::new(layout.classes),
                stats: TensorStats { tensor: t.tensor, ..Default::default() },
            });
            if watches.push(w).is_err() {
                break;
            }
        }
        Ok(Monitor {
            watches,
            window: block * blocks,
            block,
            blocks,
            thresholds: options.thresholds,
            ref_samples: reference.samples.max(1),
            samples: 0,
            verdict: Verdict::Ok,
        })
    }

    /// Inferences in the window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Inferences observed so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Whether the window is full (before that the verdict stays ok).
    pub fn ready(&self) -> bool {
        self.samples >= self.window as u64
    }

    /// The verdict over the current window: the worst of its tensors'.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Per-tensor statistics over the current window.
    pub fn stats(&self) -> impl Iterator<Item = &TensorStats> {
        self.watches.iter().map(|w| &w.stats)
    }

    /// Where the inference `session` just ran lies in the reference: per
    /// tensor and per-inference feature, (tensor, feature, value, decile
    /// 0–9 of the reference it falls in). Not part of the window; allocates
    /// (for reports).
    pub fn placement(&self, session: &crate::Session) -> Result<Vec<(usize, Feature, f64, usize)>> {
        let mut out = Vec::new();
        for w in &self.watches {
            let bytes = session.tensor_bytes(w.reference.tensor)?;
            let x: &[f32] = bytemuck::try_cast_slice(&bytes).map_err(|_| internal("tensor not 4-byte aligned"))?;
            let o = observe(&w.layout, x, self.samples.saturating_sub(1), |_| {});
            for (f, fr) in w.reference.features.iter().enumerate().skip(1) {
                out.push((w.reference.tensor, fr.feature, o.feature[f], bin(&fr.edges, o.feature[f] as f32)));
            }
        }
        Ok(out)
    }

    /// Adds the inference `session` just ran and re-evaluates the window;
    /// returns the verdict. Allocates nothing.
    pub fn observe(&mut self, session: &crate::Session) -> Result<Verdict> {
        for w in self.watches.iter_mut() {
            let bytes = session.tensor_bytes(w.reference.tensor)?;
            let x: &[f32] = bytemuck::try_cast_slice(&bytes).map_err(|_| internal("tensor not 4-byte aligned"))?;
            w.add(x, self.samples);
        }
        self.samples += 1;
        let (block, blocks) = (self.block, self.blocks);
        for w in self.watches.iter_mut() {
            if w.current.n as usize >= block {
                if w.ring.len() == blocks {
                    w.ring.pop_front();
                }
                let full = w.current.clone();
                let _ = w.ring.push_back(full);
                w.current.clear();
            }
        }
        if self.ready() {
            let th = self.thresholds;
            let m = self.ref_samples;
            self.verdict = Verdict::Ok;
            for w in self.watches.iter_mut() {
                w.evaluate(&th, m, blocks);
                self.verdict = self.verdict.max(w.stats.verdict);
            }
        }
        Ok(self.verdict)
    }
}

impl Watch {
    fn add(&mut self, x: &[f32], phase: u64) {
        let values = &mut self.current.values;
        let edges = &self.reference.features[0].edges;
        let o = observe(&self.layout, x, phase, |v| values[bin(edges, v)] += 1);
        let b = &mut self.current;
        b.n += 1;
        for (f, fr) in self.reference.features.iter().enumerate().skip(1) {
            b.hist[f][bin(&fr.edges, o.feature[f] as f32)] += 1;
            b.sum[f] += o.feature[f];
        }
        for c in 0..self.layout.channels {
            if o.chan_n[c] > 0 {
                b.chan[c] += o.chan[c];
                b.chan_n[c] += 1;
            }
        }
        if let Some(c) = b.classes.get_mut(o.top1) {
            *c += 1;
        }
    }

    /// The window: the current block (if it has any) and the latest full
    /// blocks, `blocks` in all.
    fn evaluate(&mut self, th: &Thresholds, m: usize, blocks: usize) {
        self.window.clear();
        let take = if self.current.n > 0 { blocks - 1 } else { blocks };
        let skip = self.ring.len().saturating_sub(take);
        for b in self.ring.iter().skip(skip) {
            self.window.add(b);
        }
        self.window.add(&self.current);
        let w = &self.window;
        let n = w.n.max(1) as f64;
        let m = m as f64;
        let mut s = TensorStats { tensor: self.reference.tensor, ..Default::default() };
        let mut verdict = Verdict::Ok;
        // `v` is the statistic, judged against its levels; `sig` is its
        // significance statistic (Pearson χ², KS distance, z), judged
        // against what noise reaches with 10⁻⁴ (warn) and 10⁻⁶ (alarm).
        let mut judge = |s: &mut TensorStats, v: f64, level: (f64, f64), sig: f64, floor: (f64, f64), f: Feature, which: u8| {
            let got = if v >= level.1 && sig >= floor.1 {
                Verdict::Alarm
            } else if v >= level.0 && sig >= floor.0 {
                Verdict::Warn
            } else {
                Verdict::Ok
            };
            let slot = match which {
                0 => &mut s.psi,
                1 => &mut s.ks,
                _ => &mut s.mean_shift,
            };
            if v > *slot {
                *slot = v;
            }
            if got > verdict || (got == verdict && got != Verdict::Ok && s.worst.is_none()) {
                verdict = got;
                s.worst = Some(f);
            }
        };
        // Effective sample sizes of the window and the reference together.
        // The window and the reference are both samples: their combined
        // effective size.
        let n_eff = n * m / (n + m);
        let ks_sig = 1.0 / ((n + m) / (n * m)).sqrt();
        let z_sig = 1.0 / (1.0 / n + 1.0 / m).sqrt();
        let chi2 = |df: usize| (chi2_quantile(df, Z_WARN), chi2_quantile(df, Z_ALARM));
        for (f, fr) in self.reference.features.iter().enumerate() {
            let counts = if f == 0 { &w.values } else { &w.hist[f] };
            let total: u32 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let (psi, ks, x2) = psi_ks(counts, total, &fr.probs, m);
            let df = fr.probs.iter().filter(|&&p| p > 0.0).count().max(2) - 1;
            judge(&mut s, psi, th.psi, x2 * n_eff, chi2(df), fr.feature, 0);
            judge(&mut s, ks, th.ks, ks * ks_sig, (KS_WARN, KS_ALARM), fr.feature, 1);
            if f > 0 {
                let shift = ((w.sum[f] / n) - fr.mean as f64).abs() / sd_floor(fr.std as f64, fr.mean as f64);
                judge(&mut s, shift, th.shift, shift * z_sig, (Z2_WARN, Z2_ALARM), fr.feature, 2);
            }
        }
        for c in 0..self.reference.channels {
            if w.chan_n[c] == 0 {
                continue;
            }
            let mean = w.chan[c] / w.chan_n[c] as f64;
            let (rm, rs) = (self.reference.channel_mean[c] as f64, self.reference.channel_std[c] as f64);
            let shift = (mean - rm).abs() / sd_floor(rs, rm);
            judge(&mut s, shift, th.shift, shift * z_sig, (Z2_WARN, Z2_ALARM), Feature::Mean, 2);
        }
        if !self.reference.classes.is_empty() {
            let total: u32 = w.classes.iter().sum();
            if total > 0 {
                let (psi, x2) = psi_classes(&w.classes, total, &self.reference.classes, m);
                let df = self.reference.classes.iter().filter(|&&p| p > 0.0).count().max(2) - 1;
                judge(&mut s, psi, th.psi, x2 * n_eff, chi2(df), Feature::Classes, 0);
            }
        }
        s.verdict = verdict;
        self.stats = s;
    }
}

/// Drives an alarm line (a lamp, a relay) from the verdict: active while
/// the verdict is at least `level`. Any embedded-hal `OutputPin` through
/// the boards crate's [`AlarmLine`](jetrt_boards::io::AlarmLine): a GPIO
/// line on a board (`jetrt_boards::io::linux`), a recording pin in tests.
pub struct AlarmPin<P: embedded_hal::digital::OutputPin> {
    line: jetrt_boards::io::AlarmLine<P>,
    level: Verdict,
}

impl<P: embedded_hal::digital::OutputPin> AlarmPin<P> {
    /// Sets the line inactive (low) at start.
    pub fn new(pin: P, level: Verdict) -> Result<AlarmPin<P>> {
        Self::wired(pin, level, false)
    }

    /// As [`new`](Self::new), for a line wired active-low when `active_low`.
    pub fn wired(pin: P, level: Verdict, active_low: bool) -> Result<AlarmPin<P>> {
        let line = jetrt_boards::io::AlarmLine::new(pin, "drift alarm line", active_low).map_err(|e| Error::Options(e.0))?;
        Ok(AlarmPin { line, level })
    }

    /// Sets the line for `verdict`; touches it only when that changes.
    pub fn update(&mut self, verdict: Verdict) -> Result<()> {
        self.line.set(verdict >= self.level).map_err(|e| Error::Options(e.0))
    }

    /// The pin back (tests read what it recorded).
    pub fn into_inner(self) -> P {
        self.line.into_inner()
    }
}

/// The monitor's state in Prometheus text format, for node-exporter's
/// textfile collector: written to a temporary file beside `path` and
/// renamed over it, so the collector never reads half a file.
pub struct MetricsFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    model: String,
    buf: String,
}

impl MetricsFile {
    pub fn new(path: impl Into<std::path::PathBuf>, model: &str) -> MetricsFile {
        let path = path.into();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let model = model.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        MetricsFile { path, tmp: tmp.into(), model, buf: String::with_capacity(4096) }
    }

    /// Writes the monitor's current statistics.
    pub fn write(&mut self, monitor: &Monitor, model: &crate::Model) -> std::io::Result<()> {
        use std::fmt::Write;
        let b = &mut self.buf;
        b.clear();
        let m = &self.model;
        let label = |t: usize| model.tensor_name(t).unwrap_or("?").replace('\\', "\\\\").replace('"', "\\\"");
        type Gauge = (&'static str, &'static str, fn(&TensorStats) -> f64);
        let gauges: [Gauge; 4] = [
            ("jetrt_drift_psi", "Population Stability Index over the window (largest of the tensor's histograms)", |s| s.psi),
            ("jetrt_drift_ks", "Kolmogorov-Smirnov distance over the window (largest of the tensor's histograms)", |s| s.ks),
            ("jetrt_drift_mean_shift", "Standardized mean shift over the window, in reference standard deviations", |s| s.mean_shift),
            ("jetrt_drift_verdict", "Drift verdict of the tensor: 0 ok, 1 warn, 2 alarm", |s| s.verdict as u8 as f64),
        ];
        for (name, help, get) in gauges {
            let _ = writeln!(b, "# HELP {name} {help}\n# TYPE {name} gauge");
            for s in monitor.stats() {
                let _ = writeln!(b, "{name}{{model=\"{m}\",tensor=\"{}\"}} {}", label(s.tensor), get(s));
            }
        }
        let _ = writeln!(
            b,
            "# HELP jetrt_drift_alarm Whether the model's drift verdict is alarm (1) or not (0)\n# TYPE jetrt_drift_alarm gauge"
        );
        let _ = writeln!(b, "jetrt_drift_alarm{{model=\"{m}\"}} {}", u8::from(monitor.verdict() == Verdict::Alarm));
        let _ = writeln!(b, "# HELP jetrt_drift_warn Whether the model's drift verdict is warn or worse\n# TYPE jetrt_drift_warn gauge");
        let _ = writeln!(b, "jetrt_drift_warn{{model=\"{m}\"}} {}", u8::from(monitor.verdict() >= Verdict::Warn));
        let _ = writeln!(b, "# HELP jetrt_drift_samples_total Inferences the monitor has seen\n# TYPE jetrt_drift_samples_total counter");
        let _ = writeln!(b, "jetrt_drift_samples_total{{model=\"{m}\"}} {}", monitor.samples());
        let _ = writeln!(b, "# HELP jetrt_drift_window Inferences in the sliding window\n# TYPE jetrt_drift_window gauge");
        let _ = writeln!(b, "jetrt_drift_window{{model=\"{m}\"}} {}", monitor.window());
        std::fs::write(&self.tmp, b.as_bytes())?;
        std::fs::rename(&self.tmp, &self.path)
    }
}

// The window is judged after every inference, so each statistic is tested
// about a window's worth of times per window: the levels are far in the
// tails. One-sided normal quantiles for 10⁻⁴ and 10⁻⁶ (χ² floors):
const Z_WARN: f64 = 3.719;
const Z_ALARM: f64 = 4.753;
/// Two-sided normal quantiles for 10⁻⁴ and 10⁻⁶ (mean shift floors).
const Z2_WARN: f64 = 3.891;
const Z2_ALARM: f64 = 4.892;
/// Kolmogorov–Smirnov c(α) = sqrt(−ln(α/2)/2) for 10⁻⁴ and 10⁻⁶.
const KS_WARN: f64 = 2.226;
const KS_ALARM: f64 = 2.694;

/// A standard deviation never taken as zero (a constant reference feature
/// still alarms when it moves, but not on rounding).
fn sd_floor(sd: f64, mean: f64) -> f64 {
    sd.max(1e-6 * (1.0 + mean.abs()))
}

/// Wilson–Hilferty approximation of the χ² quantile with `df` degrees of
/// freedom at the one-sided normal quantile `z`.
fn chi2_quantile(df: usize, z: f64) -> f64 {
    let k = df.max(1) as f64;
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

/// PSI, binned KS distance and Pearson's Σ (p − q)² / q of window counts
/// against reference shares; both sides smoothed by half a count per bin
/// (no log of zero).
fn psi_ks(counts: &[u32; BINS], total: u32, probs: &[f32; BINS], m: f64) -> (f64, f64, f64) {
    let n = total as f64;
    let (mut psi, mut ks, mut cw, mut cr, mut x2) = (0.0, 0.0f64, 0.0, 0.0, 0.0);
    for i in 0..BINS {
        let p = (counts[i] as f64 + 0.5) / (n + 0.5 * BINS as f64);
        let q = (probs[i] as f64 * m + 0.5) / (m + 0.5 * BINS as f64);
        psi += (p - q) * (p / q).ln();
        if probs[i] > 0.0 {
            x2 += (counts[i] as f64 / n - probs[i] as f64).powi(2) / probs[i] as f64;
        } else if counts[i] > 0 {
            // Where the reference had nothing, any share is evidence.
            x2 += (counts[i] as f64 / n).powi(2) * m;
        }
        cw += counts[i] as f64 / n;
        cr += probs[i] as f64;
        if i + 1 < BINS {
            ks = ks.max((cw - cr).abs());
        }
    }
    (psi, ks, x2)
}

/// PSI and Pearson's Σ (p − q)² / q of class counts.
fn psi_classes(counts: &[u32], total: u32, probs: &[f32], m: f64) -> (f64, f64) {
    let (n, k) = (total as f64, probs.len() as f64);
    let (mut psi, mut x2) = (0.0, 0.0);
    for (&c, &r) in counts.iter().zip(probs) {
        let p = (c as f64 + 0.5) / (n + 0.5 * k);
        let q = (r as f64 * m + 0.5) / (m + 0.5 * k);
        psi += (p - q) * (p / q).ln();
        if r > 0.0 {
            x2 += (c as f64 / n - r as f64).powi(2) / r as f64;
        } else if c > 0 {
            x2 += (c as f64 / n).powi(2) * m;
        }
    }
    (psi, x2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi2_quantiles_match_tables() {
        // scipy.stats.chi2.isf: (9, 1e-4) 33.72, (9, 1e-6) 44.81, (99, 1e-4) 160.06,
        // (99, 1e-6) 180.79. Wilson–Hilferty is within 3 %, on the high side.
        for (df, z, exact) in [(9, Z_WARN, 33.72), (9, Z_ALARM, 44.81), (99, Z_WARN, 160.06), (99, Z_ALARM, 180.79)] {
            let q = chi2_quantile(df, z);
            assert!(q >= exact * 0.995 && q <= exact * 1.03, "df {df}: {q} vs {exact}");
        }
    }

    #[test]
    fn psi_of_equal_shares_is_small_and_of_shifted_ones_large() {
        let probs = [0.1f32; BINS];
        let same = [100u32; BINS];
        let (psi, ks, _) = psi_ks(&same, 1000, &probs, 1000.0);
        assert!(psi < 1e-9 && ks < 1e-6, "{psi} {ks}");
        let mut shifted = [0u32; BINS];
        shifted[0] = 500;
        shifted[1] = 500;
        let (psi, ks, x2) = psi_ks(&shifted, 1000, &probs, 1000.0);
        assert!((x2 - 4.0).abs() < 1e-6, "{x2}");
        assert!(psi > 1.0 && (ks - 0.8).abs() < 1e-6, "{psi} {ks}");
    }

    #[test]
    fn classify_takes_probabilities_or_logits() {
        let (top, conf, ent) = classify(&[0.1, 0.7, 0.2]);
        assert_eq!(top, 1);
        assert!((conf - 0.7).abs() < 1e-6 && ent > 0.0 && ent < 1.0);
        let (top, conf, _) = classify(&[0.0, 3.0, 1.0]);
        assert_eq!(top, 1);
        assert!((conf - 3f64.exp() / (1.0 + 3f64.exp() + 1f64.exp())).abs() < 1e-9);
        let (_, _, ent) = classify(&[1.0, 1.0, 1.0, 1.0]);
        assert!((ent - 1.0).abs() < 1e-9, "uniform logits: entropy 1");
    }

    #[test]
    fn layouts_follow_shapes() {
        let img = Layout::of(&[1, 3, 8, 8], false);
        assert_eq!((img.channels, img.plane, img.row, img.classes), (3, 64, 8, 0));
        let probs = Layout::of(&[1, 10], true);
        assert_eq!((probs.channels, probs.classes, probs.row), (10, 10, 0));
        let wide = Layout::of(&[1, 512, 7, 7], false);
        assert_eq!((wide.channels, wide.plane), (1, 512 * 49));
    }
}
