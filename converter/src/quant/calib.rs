//! Activation ranges from calibration data: min/max, percentile, and
//! entropy (the KL-divergence search TensorRT's entropy calibrator does).

use crate::graph::ValueId;
use std::collections::HashMap;

/// How an activation's range is chosen from what calibration saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibMethod {
    /// The smallest and largest value seen.
    MinMax,
    /// Clip |x| at this percentile (e.g. 99.99) of all values seen.
    Percentile(f64),
    /// The clipping threshold whose 128-level quantization loses the least
    /// information (KL divergence of the |x| histogram), as TensorRT.
    Entropy,
    /// The clipping threshold with the smallest expected squared error:
    /// rounding error inside the range plus clipping error outside it.
    Mse,
}

impl CalibMethod {
    pub fn name(&self) -> String {
        match self {
            CalibMethod::MinMax => "minmax".into(),
            CalibMethod::Percentile(p) => format!("percentile({p})"),
            CalibMethod::Entropy => "entropy".into(),
            CalibMethod::Mse => "mse".into(),
        }
    }

    /// Whether the method needs a histogram (a second pass over the data).
    pub fn needs_histogram(&self) -> bool {
        !matches!(self, CalibMethod::MinMax)
    }
}

/// Calibrated activation ranges.
#[derive(Debug, Clone, Default)]
pub struct Ranges {
    /// `[lo, hi]` of every value an int8 layer reads or writes.
    pub tensor: HashMap<ValueId, (f32, f32)>,
    /// Per channel (axis 1) min and max of the values int8 layers read that
    /// are images (`[N, C, H, W]`) or rows (`[N, C]`).
    pub channel: HashMap<ValueId, Vec<(f32, f32)>>,
}

/// The smallest per-channel share of a tensor's range
/// ([`channel_quant`]): a channel scaled further would put its weights'
/// rounding above what its activations gain.
pub const MIN_CHANNEL_FACTOR: f32 = 1.0 / 64.0;

/// How a float value entering an int8 region is quantized per channel:
/// channel `c` becomes `x' = (x − shift[c]) / factor[c]`, and `x'` is
/// quantized with the tensor's scale and zero point. The int8 layers that
/// read it multiply their weight columns by `factor` and add
/// `Σ w · shift` to their bias, and convolutions pad each channel with the
/// int8 value its zero became, so their kernels stay per tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelQuant {
    pub factor: Vec<f32>,
    pub shift: Vec<f32>,
}

/// The per-channel quantization of a value with the tensor range
/// `[lo, hi]` whose channel `c` spans `chan[c]`: each channel's own range
/// (with 0 in it) maps onto the tensor's. Activations often differ by 50×
/// between channels (PP-OCRv5 det's first pointwise convolution reads
/// channels spanning 0.008 and 0.55, all with the same small negative
/// floor of a hard-swish): per tensor, the narrow ones get five levels of
/// 255. Per channel, every channel gets all 255.
pub fn channel_quant(lo: f32, hi: f32, chan: &[(f32, f32)]) -> ChannelQuant {
    let mut q = ChannelQuant { factor: Vec::with_capacity(chan.len()), shift: Vec::with_capacity(chan.len()) };
    for &(cl, ch) in chan {
        let (cl, ch) = (cl.min(0.0), ch.max(0.0));
        let (f, m) = if hi > lo {
            // Moving only part of the spread into the weights (SmoothQuant's
            // α < 1) measured no better on the PP-OCRv5 models.
            let f = ((ch - cl) / (hi - lo)).max(MIN_CHANNEL_FACTOR);
            (f, 0.5 * (cl + ch) - f * 0.5 * (lo + hi))
        } else {
            (1.0, 0.0)
        };
        q.factor.push(f);
        q.shift.push(m);
    }
    q
}

/// Bins of a tensor's |x| histogram.
pub const BINS: usize = 2048;

/// Bins of each channel's |x| histogram (a tensor may have hundreds of
/// channels).
pub const CHANNEL_BINS: usize = 256;

/// Fewer values than this many per bin seen in all: the range is min/max
/// whatever the method.
pub const MIN_VALUES_PER_BIN: u64 = 16;

/// What calibration collected for one tensor.
#[derive(Debug, Clone)]
pub struct Stats {
    pub min: f32,
    pub max: f32,
    /// Histogram of |x| over `[0, absmax]` (filled in the second pass).
    pub hist: Vec<u64>,
    /// Its number of bins.
    pub bins: usize,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::with_bins(BINS)
    }
}

impl Stats {
    pub fn with_bins(bins: usize) -> Self {
        Stats { min: f32::INFINITY, max: f32::NEG_INFINITY, hist: Vec::new(), bins: bins.max(LEVELS_MIN) }
    }

    pub fn observe_range(&mut self, x: &[f32]) {
        for &v in x {
            if v.is_finite() {
                self.min = self.min.min(v);
                self.max = self.max.max(v);
            }
        }
    }

    pub fn absmax(&self) -> f32 {
        if self.min > self.max {
            0.0
        } else {
            self.min.abs().max(self.max.abs())
        }
    }

    pub fn observe_hist(&mut self, x: &[f32]) {
        if self.hist.is_empty() {
            self.hist = vec![0; self.bins];
        }
        let amax = self.absmax();
        if amax <= 0.0 {
            self.hist[0] += x.len() as u64;
            return;
        }
        let per = self.bins as f32 / amax;
        for &v in x {
            if v.is_finite() {
                let b = ((v.abs() * per) as usize).min(self.bins - 1);
                self.hist[b] += 1;
            }
        }
    }

    /// The range `[lo, hi]` to quantize to (always containing 0).
    pub fn range(&self, method: CalibMethod) -> (f32, f32) {
        if self.min > self.max {
            return (0.0, 0.0);
        }
        // A histogram of a few thousand values (a squeeze-excitation
        // vector seen on a few samples) says nothing about its tails:
        // clipping it by percentile or entropy only destroys it.
        let seen: u64 = self.hist.iter().sum();
        let t = match method {
            _ if seen < MIN_VALUES_PER_BIN * self.bins as u64 => f32::INFINITY,
            CalibMethod::MinMax => f32::INFINITY,
            CalibMethod::Percentile(p) => self.percentile_threshold(p),
            CalibMethod::Entropy => self.entropy_threshold(),
            CalibMethod::Mse => self.mse_threshold(),
        };
        (self.min.max(-t).min(0.0), self.max.min(t).max(0.0))
    }

    fn bin_width(&self) -> f32 {
        self.absmax() / self.bins as f32
    }

    fn percentile_threshold(&self, p: f64) -> f32 {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return f32::INFINITY;
        }
        let want = (total as f64 * p / 100.0).ceil() as u64;
        let mut acc = 0;
        for (i, &h) in self.hist.iter().enumerate() {
            acc += h;
            if acc >= want {
                return (i + 1) as f32 * self.bin_width();
            }
        }
        f32::INFINITY
    }

    /// The threshold `T` minimizing the expected squared error of
    /// quantizing to `[max(min, −T), min(max, T)]`: `step²/12` per value
    /// inside, `(|x| − T)²` per value clipped, from the |x| histogram.
    fn mse_threshold(&self) -> f32 {
        let w = self.bin_width() as f64;
        let h: Vec<f64> = self.hist.iter().map(|&v| v as f64).collect();
        if h.iter().sum::<f64>() == 0.0 || w == 0.0 {
            return f32::INFINITY;
        }
        let bins = self.hist.len();
        let mut best = (f64::INFINITY, bins);
        for i in (bins / 128..=bins).step_by((bins / 512).max(1)) {
            let t = i as f64 * w;
            let step = ((self.max as f64).min(t) - (self.min as f64).max(-t)) / 255.0;
            let inside: f64 = h[..i].iter().sum();
            // Bin i + j holds values about (j + ½)·w above T.
            let clipped: f64 = h[i..].iter().enumerate().map(|(j, &n)| n * ((j as f64 + 0.5) * w).powi(2)).sum();
            let err = inside * step * step / 12.0 + clipped;
            if err < best.0 {
                best = (err, i);
            }
        }
        best.1 as f32 * self.bin_width()
    }

    /// TensorRT's entropy calibration: for each candidate threshold (bin
    /// `i` from 128 up), clip the histogram there, quantize it to 128
    /// levels, spread each level back over the bins it merged, and keep the
    /// threshold with the smallest KL divergence from the clipped original.
    fn entropy_threshold(&self) -> f32 {
        const LEVELS: usize = LEVELS_MIN;
        let h: Vec<f64> = self.hist.iter().map(|&v| v as f64).collect();
        if h.iter().sum::<f64>() == 0.0 {
            return f32::INFINITY;
        }
        let bins = h.len();
        let mut best = (f64::INFINITY, bins);
        let mut reference = vec![0.0f64; bins];
        let mut expanded = vec![0.0f64; bins];
        for i in (LEVELS..=bins).step_by((bins / 128).max(1)) {
            reference[..i].copy_from_slice(&h[..i]);
            reference[i - 1] += h[i..].iter().sum::<f64>();
            // Merge h[..i] (without the clipped outliers, as TensorRT and
            // MXNet do: the outliers' mass is what a too-small threshold
            // loses) into LEVELS levels, then expand each level uniformly
            // over the bins the clipped histogram has mass in.
            let per = i as f64 / LEVELS as f64;
            for l in 0..LEVELS {
                let (a, b) = ((l as f64 * per) as usize, (((l + 1) as f64 * per) as usize).min(i));
                let b = if l == LEVELS - 1 { i } else { b };
                let sum: f64 = h[a..b].iter().sum();
                let nonzero = (a..b).filter(|&j| reference[j] > 0.0).count();
                for j in a..b {
                    expanded[j] = if reference[j] > 0.0 && nonzero > 0 { sum / nonzero as f64 } else { 0.0 };
                }
            }
            let kl = kl_divergence(&reference[..i], &expanded[..i]);
            if kl < best.0 {
                best = (kl, i);
            }
        }
        (best.1 as f32 + 0.5).min(bins as f32) * self.bin_width()
    }
}

/// KL(p ‖ q) of two unnormalized histograms; bins where p has mass and q
/// has none are charged with a small floor, as TensorRT smooths them.
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if sp == 0.0 || sq == 0.0 {
        return f64::INFINITY;
    }
    let mut kl = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        if a > 0.0 {
            let pa = a / sp;
            let qb = (b / sq).max(1e-10);
            kl += pa * (pa / qb).ln();
        }
    }
    kl
}

/// The fewest histogram bins (entropy calibration merges into 128 levels).
const LEVELS_MIN: usize = 128;

/// Asymmetric int8 parameters for a range: `(scale, zero_point)` with
/// `x ≈ (q − zero_point) · scale`, q in −128..=127, and 0 exact.
pub fn qparams(lo: f32, hi: f32) -> (f32, i8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0);
    (scale, zp as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(x: &[f32]) -> Stats {
        let mut s = Stats::default();
        s.observe_range(x);
        s.observe_hist(x);
        s
    }

    #[test]
    fn minmax_takes_the_extremes_and_keeps_zero() {
        let s = stats(&[0.5, 2.0, 1.0]);
        assert_eq!(s.range(CalibMethod::MinMax), (0.0, 2.0));
        let (scale, zp) = qparams(0.0, 2.0);
        assert_eq!(zp, -128);
        assert!((scale - 2.0 / 255.0).abs() < 1e-9);
        let (scale, zp) = qparams(-1.0, 1.0);
        let q = |x: f32| ((x / scale).round() + zp as f32).clamp(-128.0, 127.0);
        assert!(q(-1.0) >= -128.0 && q(1.0) <= 127.0 && (q(1.0) - zp as f32) * scale > 0.99, "±1 fit: scale {scale}, zp {zp}");
    }

    /// The squared error of quantizing `x` to `[lo, hi]`, rounding as the
    /// runtime does.
    fn quant_error(x: &[f32], (lo, hi): (f32, f32)) -> f64 {
        let (scale, zp) = qparams(lo, hi);
        x.iter()
            .map(|&v| {
                let q = crate::quant::rewrite::quantize_one(v, scale, zp) as f32;
                ((q - zp as f32) * scale - v) as f64
            })
            .map(|e| e * e)
            .sum()
    }

    /// A heavy-tailed value (a Laplace-like bulk and a few large ones): mse
    /// picks a range whose real quantization error is below min/max's and
    /// the 99.99th percentile's.
    #[test]
    fn mse_range_has_the_least_error() {
        let x: Vec<f32> = (1..200_000)
            .map(|i| {
                let u = ((i * 7919) % 200_000) as f32 / 200_000.0;
                let v = -(1.0 - u).max(1e-7).ln() * 0.1;
                if i % 2 == 0 {
                    v
                } else {
                    -v
                }
            })
            .collect();
        let s = stats(&x);
        let mse = quant_error(&x, s.range(CalibMethod::Mse));
        let minmax = quant_error(&x, s.range(CalibMethod::MinMax));
        let pct = quant_error(&x, s.range(CalibMethod::Percentile(99.99)));
        assert!(mse < minmax && mse < pct, "mse {mse}, minmax {minmax}, percentile {pct}");
        // The coarser per-channel histogram still finds a better clip than
        // min/max, and with too few values it keeps min/max.
        let mut c = Stats::with_bins(CHANNEL_BINS);
        c.observe_range(&x);
        c.observe_hist(&x);
        let cmse = quant_error(&x, c.range(CalibMethod::Mse));
        assert!(cmse < minmax && cmse < 1.2 * mse, "per-channel mse {cmse}, tensor mse {mse}, minmax {minmax}");
        let few = &x[..1000];
        let mut f = Stats::with_bins(CHANNEL_BINS);
        f.observe_range(few);
        f.observe_hist(few);
        assert_eq!(f.range(CalibMethod::Mse), f.range(CalibMethod::MinMax));
    }

    /// One far outlier among a bulk in [−1, 1]: percentile and entropy clip
    /// it, min/max does not.
    #[test]
    fn percentile_and_entropy_clip_outliers() {
        let mut x: Vec<f32> = (0..100_000).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect();
        x.push(50.0);
        let s = stats(&x);
        assert_eq!(s.range(CalibMethod::MinMax).1, 50.0);
        let (_, hi) = s.range(CalibMethod::Percentile(99.99));
        assert!(hi > 0.9 && hi < 1.2, "percentile gave {hi}");
        let (lo, hi) = s.range(CalibMethod::Entropy);
        assert!(hi > 0.5 && hi < 5.0 && lo < -0.5, "entropy gave [{lo}, {hi}]");
    }
}
