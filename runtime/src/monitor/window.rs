//! The [`Monitor`]: a sliding window of inferences per watched tensor,
//! kept as blocks of counts and sums, judged against the file's reference
//! after every inference. All its memory is allocated when it starts.

use super::stats::{
    bin, chi2_quantile, layouts, observe, psi_classes, psi_ks, sd_floor, Layout, KS_ALARM, KS_WARN, Z2_ALARM, Z2_WARN, Z_ALARM, Z_WARN,
};
use super::{
    internal, Feature, MonitorOptions, TensorReference, Thresholds, Verdict, BINS, BLOCKS, MAX_CHANNELS, MAX_CLASSES, MAX_FEATURES,
    MAX_MONITORED, MAX_WINDOW,
};
use crate::error::{Error, Result};

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

struct Tracked {
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
    watches: heapless::Vec<Box<Tracked>, MAX_MONITORED>,
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
            let w = Box::new(Tracked {
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

impl Tracked {
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
