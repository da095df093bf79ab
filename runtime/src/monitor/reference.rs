//! The drift reference, built on the host from calibration inferences
//! and stored in the `.jrt` file (`jetc convert --calib`/`--drift-ref`).

use super::stats::{bin, layouts, observe, Layout};
use super::{internal, Feature, FeatureRef, Reference, TensorReference, BINS, MAX_MONITORED};
use crate::error::Result;

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
