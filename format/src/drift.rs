//! The Drift section (optional): reference statistics of a model's float32
//! inputs and outputs, taken at conversion, that a drift monitor on the
//! device compares a sliding window of inferences with.
//!
//! This module holds the data and its codec only. It checks structure
//! (counts against the section and the tensor, codes, finite numbers,
//! ordered bin edges), never how a monitor would watch a tensor: a newer
//! monitor that watches differently still opens every older file, and says
//! itself which references it cannot use.
//!
//! Layout (little-endian): u32 version (1), u32 reference samples, u32 bins
//! ([`BINS`]), u32 tensor count; per tensor: u32 tensor index, u32
//! channels, u32 feature count, u32 class count, then per channel its mean
//! and standard deviation (f32, f32), per feature its code (u32), mean,
//! standard deviation, `BINS − 1` bin edges and `BINS` bin shares (f32),
//! and the class frequencies (f32).

use crate::bytes::{Reader, Writer};
use crate::error::Result;
use crate::SectionKind;

/// Histogram bins (deciles of the reference).
pub const BINS: usize = 10;
const VERSION: u32 = 1;

/// What a histogram of a tensor describes. Codes are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Feature {
    /// Its element values, pooled.
    Values = 0,
    /// The mean of its elements, one value per inference.
    Mean = 1,
    /// The standard deviation of its elements, per inference.
    Std = 2,
    /// Mean |x[.., j+1] − x[.., j]| along the last axis, per inference.
    Roughness = 3,
    /// Top-1 probability of a classifier output, per inference.
    Confidence = 4,
    /// Entropy of a classifier output over ln K, per inference.
    Entropy = 5,
    /// Top-1 class frequencies of a classifier output (reported only: the
    /// file stores them apart from the histograms).
    Classes = 6,
}

impl Feature {
    pub const ALL: [Feature; 7] = [Self::Values, Self::Mean, Self::Std, Self::Roughness, Self::Confidence, Self::Entropy, Self::Classes];

    pub fn name(self) -> &'static str {
        match self {
            Self::Values => "values",
            Self::Mean => "mean",
            Self::Std => "std",
            Self::Roughness => "roughness",
            Self::Confidence => "top1_confidence",
            Self::Entropy => "entropy",
            Self::Classes => "top1_class",
        }
    }

    pub fn from_code(c: u32) -> Option<Feature> {
        Self::ALL.into_iter().find(|f| *f as u32 == c)
    }
}

/// One histogram of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRef {
    pub feature: Feature,
    /// Mean and standard deviation of the feature over the reference (of
    /// the pooled elements for `Values`).
    pub mean: f32,
    pub std: f32,
    /// Bin edges (deciles): bin `i` holds `edges[i-1] <= x < edges[i]`.
    pub edges: [f32; BINS - 1],
    /// Share of the reference in each bin.
    pub probs: [f32; BINS],
}

/// The reference statistics of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorReference {
    /// Index of the tensor in the file.
    pub tensor: usize,
    /// Channels whose means are tracked (1: the tensor whole).
    pub channels: usize,
    /// Mean and standard deviation over the reference of each channel's
    /// per-inference mean.
    pub channel_mean: Vec<f32>,
    pub channel_std: Vec<f32>,
    pub features: Vec<FeatureRef>,
    /// Top-1 class frequencies (classifier-like outputs; else empty).
    pub classes: Vec<f32>,
}

/// A file's drift reference: what its inputs and outputs looked like on
/// the reference samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Reference samples (inferences).
    pub samples: usize,
    pub tensors: Vec<TensorReference>,
}

pub(crate) fn encode(r: &Reference) -> Vec<u8> {
    let mut w = Writer::default();
    let f = |w: &mut Writer, v: f32| w.u32(v.to_bits());
    w.u32(VERSION);
    w.u32(r.samples as u32);
    w.u32(BINS as u32);
    w.u32(r.tensors.len() as u32);
    for t in &r.tensors {
        w.u32(t.tensor as u32);
        w.u32(t.channels as u32);
        w.u32(t.features.len() as u32);
        w.u32(t.classes.len() as u32);
        for c in 0..t.channels {
            f(&mut w, t.channel_mean[c]);
            f(&mut w, t.channel_std[c]);
        }
        for fr in &t.features {
            w.u32(fr.feature as u32);
            f(&mut w, fr.mean);
            f(&mut w, fr.std);
            for &e in &fr.edges {
                f(&mut w, e);
            }
            for &p in &fr.probs {
                f(&mut w, p);
            }
        }
        for &c in &t.classes {
            f(&mut w, c);
        }
    }
    w.buf
}

/// Bytes of one stored feature histogram.
const FEATURE_BYTES: usize = 4 * (3 + BINS - 1 + BINS);

/// Decodes a Drift section and checks its structure against `tensors`, the
/// file's float32 model inputs and outputs as (tensor index, elements):
/// each referenced once, channels and classes no more than its elements,
/// every count within the section, every feature code known and listed
/// once (`Classes` is stored apart), every number finite, bin edges in
/// increasing order.
pub(crate) fn decode(body: &[u8], tensors: &[(usize, usize)]) -> Result<Reference> {
    let mut r = Reader::new(SectionKind::Drift, body);
    let version = r.u32("version")?;
    if version != VERSION {
        return Err(r.bad("version", version as u64, format!("{VERSION}")));
    }
    let samples = r.u32("reference samples")? as usize;
    let bins = r.u32("bins")? as usize;
    if bins != BINS {
        return Err(r.bad("bins", bins as u64, format!("{BINS}")));
    }
    let n = r.count("tensor count")?;
    if n > tensors.len() {
        return Err(r.bad("tensor count", n as u64, format!("at most {} (the model's float32 inputs and outputs)", tensors.len())));
    }
    let f = |r: &mut Reader, what: &'static str| -> Result<f32> {
        let v = f32::from_bits(r.u32(what)?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(r.bad(what, v.to_bits() as u64, "a finite number"))
        }
    };
    let mut out: Vec<TensorReference> = Vec::with_capacity(n);
    for _ in 0..n {
        let tensor = r.u32("tensor index")? as usize;
        let Some(&(_, elements)) = tensors.iter().find(|(t, _)| *t == tensor) else {
            return Err(r.bad("tensor index", tensor as u64, "a float32 input or output of the model"));
        };
        if out.iter().any(|t| t.tensor == tensor) {
            return Err(r.bad("tensor index", tensor as u64, "each tensor once"));
        }
        let channels = r.u32("channels")? as usize;
        let nf = r.u32("feature count")? as usize;
        let nc = r.u32("class count")? as usize;
        if channels == 0 || channels > elements.max(1) {
            return Err(r.bad("channels", channels as u64, format!("1 to {} (the tensor's elements)", elements.max(1))));
        }
        if nf > Feature::ALL.len() - 1 {
            return Err(r.bad("feature count", nf as u64, format!("at most {}", Feature::ALL.len() - 1)));
        }
        if nc > elements {
            return Err(r.bad("class count", nc as u64, format!("at most {elements} (the tensor's elements)")));
        }
        // Every count is bounded by the section before anything is allocated.
        let need = channels as u64 * 8 + nf as u64 * FEATURE_BYTES as u64 + nc as u64 * 4;
        let left = (r.len() - r.pos()) as u64;
        if need > left {
            return Err(r.bad("tensor reference", need, format!("at most the {left} bytes left in the section")));
        }
        let (mut channel_mean, mut channel_std) = (Vec::with_capacity(channels), Vec::with_capacity(channels));
        for _ in 0..channels {
            channel_mean.push(f(&mut r, "channel mean")?);
            channel_std.push(f(&mut r, "channel std")?);
        }
        let mut features: Vec<FeatureRef> = Vec::with_capacity(nf);
        for _ in 0..nf {
            let code = r.u32("feature")?;
            let feature = Feature::from_code(code)
                .filter(|&f| f != Feature::Classes && !features.iter().any(|g| g.feature == f))
                .ok_or_else(|| r.bad("feature", code as u64, "a histogram feature code (0 to 5), each once"))?;
            let mean = f(&mut r, "feature mean")?;
            let std = f(&mut r, "feature std")?;
            let mut edges = [0f32; BINS - 1];
            for e in &mut edges {
                *e = f(&mut r, "bin edge")?;
            }
            if edges.windows(2).any(|w| w[0] > w[1]) {
                return Err(r.bad("bin edges", 0, "in increasing order"));
            }
            let mut probs = [0f32; BINS];
            for p in &mut probs {
                *p = f(&mut r, "bin share")?;
            }
            features.push(FeatureRef { feature, mean, std, edges, probs });
        }
        let mut classes = Vec::with_capacity(nc);
        for _ in 0..nc {
            classes.push(f(&mut r, "class frequency")?);
        }
        out.push(TensorReference { tensor, channels, channel_mean, channel_std, features, classes });
    }
    if r.pos() != r.len() {
        return Err(r.bad("trailing bytes", (r.len() - r.pos()) as u64, "none"));
    }
    Ok(Reference { samples, tensors: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Reference {
        let fr = |feature| FeatureRef { feature, mean: 0.5, std: 0.1, edges: [0.1; BINS - 1], probs: [0.1; BINS] };
        Reference {
            samples: 30,
            tensors: vec![
                TensorReference {
                    tensor: 0,
                    channels: 3,
                    channel_mean: vec![0.0, 1.0, 2.0],
                    channel_std: vec![1.0; 3],
                    features: vec![fr(Feature::Values), fr(Feature::Mean), fr(Feature::Std), fr(Feature::Roughness)],
                    classes: vec![],
                },
                TensorReference {
                    tensor: 5,
                    channels: 1,
                    channel_mean: vec![0.5],
                    channel_std: vec![0.2],
                    features: vec![fr(Feature::Values), fr(Feature::Confidence)],
                    classes: vec![0.25; 4],
                },
            ],
        }
    }

    #[test]
    fn references_round_trip() {
        let r = reference();
        assert_eq!(decode(&encode(&r), &[(0, 192), (5, 4)]).unwrap(), r);
    }

    #[test]
    fn structure_is_checked_against_the_tensors() {
        let body = encode(&reference());
        // A tensor the model does not expose as a float32 input or output.
        let e = decode(&body, &[(0, 192), (6, 4)]).unwrap_err();
        assert!(e.to_string().contains("a float32 input or output"), "{e}");
        // More classes than the tensor has elements.
        let e = decode(&body, &[(0, 192), (5, 3)]).unwrap_err();
        assert!(e.to_string().contains("class count"), "{e}");
        // Cut short.
        assert!(decode(&body[..body.len() - 4], &[(0, 192), (5, 4)]).is_err());
        // An inflated channel count is refused before anything is read.
        let mut big = body.clone();
        big[20..24].copy_from_slice(&100u32.to_le_bytes());
        let e = decode(&big, &[(0, 192), (5, 4)]).unwrap_err();
        assert!(e.to_string().contains("bytes left"), "{e}");
    }
}
