//! What the monitor computes: how a tensor is watched ([`Layout`]), what
//! one inference contributes ([`observe`]), and the statistics a window is
//! judged by (PSI, KS distance, standardized mean shift, and the levels
//! sampling noise alone reaches).

use super::{Feature, TensorReference, BINS, MAX_CHANNELS, MAX_CLASSES, MAX_FEATURES, MAX_SAMPLED, SAMPLE_RUNS};
use crate::error::{Error, Result};

/// How a tensor is watched, from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    pub(super) len: usize,
    /// Elements per channel plane (0: not tracked per channel).
    pub(super) plane: usize,
    pub(super) channels: usize,
    /// Last-axis length, for the roughness (0: none).
    pub(super) row: usize,
    /// Classes of a classifier-like output (0: not one).
    pub(super) classes: usize,
}

impl Layout {
    pub(super) fn of(shape: &[usize], is_output: bool) -> Layout {
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
    pub(super) fn check(&self, r: &TensorReference, model: &crate::Model) -> Result<()> {
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

    pub(super) fn features(&self) -> heapless::Vec<Feature, MAX_FEATURES> {
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
pub(super) struct Observation {
    pub(super) feature: [f64; MAX_FEATURES],
    pub(super) chan: [f64; MAX_CHANNELS],
    pub(super) chan_n: [u32; MAX_CHANNELS],
    pub(super) top1: usize,
}

/// Computes the per-inference features of `x` (`layout.len` floats), in the
/// order of `layout.features()`, calling `each_value` on every sampled
/// element. A large tensor is sampled in [`SAMPLE_RUNS`] runs of contiguous
/// elements spread evenly over it: after an inference the input is mostly
/// out of cache, and runs cost a few cache lines each where evenly strided
/// single elements cost a memory access each (ResNet-18's input: 4 times
/// less time).
pub(super) fn observe(layout: &Layout, x: &[f32], phase: u64, mut each_value: impl FnMut(f32)) -> Observation {
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
pub(super) fn bin(edges: &[f32; BINS - 1], v: f32) -> usize {
    edges.iter().map(|&e| usize::from(e <= v)).sum()
}

/// The float32 inputs and outputs of a model (each once), with how each is
/// watched.
pub(super) fn layouts(d: &jetrt_format::reader::Decoded) -> Vec<(usize, Layout)> {
    jetrt_format::reader::float_io(d).map(|t| (t, Layout::of(d.tensors[t].shape.dims(), !d.inputs.contains(&t)))).collect()
}

// The window is judged after every inference, so each statistic is tested
// about a window's worth of times per window: the levels are far in the
// tails. One-sided normal quantiles for 10⁻⁴ and 10⁻⁶ (χ² floors):
pub(super) const Z_WARN: f64 = 3.719;
pub(super) const Z_ALARM: f64 = 4.753;
/// Two-sided normal quantiles for 10⁻⁴ and 10⁻⁶ (mean shift floors).
pub(super) const Z2_WARN: f64 = 3.891;
pub(super) const Z2_ALARM: f64 = 4.892;
/// Kolmogorov–Smirnov c(α) = sqrt(−ln(α/2)/2) for 10⁻⁴ and 10⁻⁶.
pub(super) const KS_WARN: f64 = 2.226;
pub(super) const KS_ALARM: f64 = 2.694;

/// A standard deviation never taken as zero (a constant reference feature
/// still alarms when it moves, but not on rounding).
pub(super) fn sd_floor(sd: f64, mean: f64) -> f64 {
    sd.max(1e-6 * (1.0 + mean.abs()))
}

/// Wilson–Hilferty approximation of the χ² quantile with `df` degrees of
/// freedom at the one-sided normal quantile `z`.
pub(super) fn chi2_quantile(df: usize, z: f64) -> f64 {
    let k = df.max(1) as f64;
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

/// PSI, binned KS distance and Pearson's Σ (p − q)² / q of window counts
/// against reference shares; both sides smoothed by half a count per bin
/// (no log of zero).
pub(super) fn psi_ks(counts: &[u32; BINS], total: u32, probs: &[f32; BINS], m: f64) -> (f64, f64, f64) {
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
pub(super) fn psi_classes(counts: &[u32], total: u32, probs: &[f32], m: f64) -> (f64, f64) {
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
