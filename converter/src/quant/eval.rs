//! Running a graph on calibration samples with the runtime itself (the
//! converter depends on it), and comparing outputs.

use crate::graph::{Graph, ValueId};
use crate::tensor::Tensor;
use crate::write;
use jetrt::{Model, Session, SessionOptions, TensorRef};

/// A graph built into an in-memory `.jrt` whose outputs are `observe`.
pub struct Runner {
    session: Session,
    pub count: usize,
}

impl Runner {
    pub fn new(g: &Graph, observe: &[ValueId], options: SessionOptions) -> Result<Self, String> {
        let mut h = g.clone();
        h.outputs = observe.iter().enumerate().map(|(i, &v)| (format!("observe.{i}"), v)).collect();
        write::name_outputs(&mut h);
        let fb = write::build(&h, vec![("name".into(), "calibration".into())]).map_err(|e| e.to_string())?;
        let model = Model::from_bytes(&fb.to_bytes()).map_err(|e| format!("the graph does not validate: {e}"))?;
        let session = model.session(options).map_err(|e| e.to_string())?;
        Ok(Runner { session, count: observe.len() })
    }

    /// Runs one sample and hands every observed value (as floats) to `f`.
    pub fn run(&mut self, sample: &[Tensor], f: &mut dyn FnMut(usize, &[f32])) -> Result<(), String> {
        for (i, t) in sample.iter().enumerate() {
            let bytes = t.data.to_le_bytes();
            self.session.set_input(i, TensorRef::from_bytes(t.dtype(), &t.shape, &bytes)).map_err(|e| e.to_string())?;
        }
        self.session.run_loaded().map_err(|e| e.to_string())?;
        for o in 0..self.count {
            let out = self.session.output(o).map_err(|e| format!("observed value {o}: {e}"))?;
            f(o, out.as_slice::<f32>().map_err(|e| format!("observed value {o}: {e}"))?);
        }
        Ok(())
    }

    /// Every graph output of every sample.
    pub fn collect(&mut self, samples: &[Vec<Tensor>]) -> Result<Vec<Vec<Vec<f32>>>, String> {
        let mut all = Vec::with_capacity(samples.len());
        for s in samples {
            let mut outs = vec![Vec::new(); self.count];
            self.run(s, &mut |o, v| outs[o] = v.to_vec())?;
            all.push(outs);
        }
        Ok(all)
    }
}

/// How close one output is to the float model's, over all samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    pub cosine: f64,
    pub max_abs: f64,
    pub snr_db: f64,
    /// Share of rows (along the last axis) whose arg-max agrees, for outputs
    /// whose last axis has at least two entries.
    pub top1: Option<f64>,
    /// For detection outputs (see [`Boxes`]): the share of the float
    /// model's [`TOP_BOXES`] highest-scoring boxes that the other model
    /// also ranks among its top ones, averaged over the samples.
    pub top_boxes: Option<f64>,
}

/// Boxes compared by [`Agreement::top_boxes`].
pub const TOP_BOXES: usize = 100;

/// How a raw detection output `[1, 4 + classes, boxes]` (YOLO's) or
/// `[1, boxes, 4 + classes]` lays out its boxes: a box's score is its
/// largest class score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boxes {
    pub boxes: usize,
    pub channels: usize,
    pub channels_first: bool,
}

impl Boxes {
    /// The layout of an output of `shape`, when it looks like raw boxes:
    /// rank 3, batch 1, at least 5 channels and 16 times as many boxes.
    pub fn of(shape: &[usize]) -> Option<Boxes> {
        let &[1, a, b] = shape else { return None };
        if a >= 5 && b >= 16 * a {
            Some(Boxes { boxes: b, channels: a, channels_first: true })
        } else if b >= 5 && a >= 16 * b {
            Some(Boxes { boxes: a, channels: b, channels_first: false })
        } else {
            None
        }
    }

    /// The indices of the `k` highest-scoring boxes of `v`.
    fn top(&self, v: &[f32], k: usize) -> Vec<usize> {
        let score = |i: usize| {
            (4..self.channels)
                .map(|c| if self.channels_first { v[c * self.boxes + i] } else { v[i * self.channels + c] })
                .fold(f32::NEG_INFINITY, f32::max)
        };
        let mut s: Vec<(f32, usize)> = (0..self.boxes).map(|i| (score(i), i)).collect();
        let k = k.min(s.len());
        s.select_nth_unstable_by(k.saturating_sub(1), |a, b| b.0.total_cmp(&a.0));
        s[..k].iter().map(|&(_, i)| i).collect()
    }
}

/// Compares output `o` of `got` with `want` (per sample), the last axis
/// being `classes` long (0: no top-1), its boxes laid out as `boxes` says.
pub fn agreement(want: &[Vec<Vec<f32>>], got: &[Vec<Vec<f32>>], o: usize, classes: usize, boxes: Option<Boxes>) -> Agreement {
    let (mut dot, mut nw, mut ng, mut err, mut max_abs) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let (mut rows, mut same) = (0usize, 0usize);
    for (w, g) in want.iter().zip(got) {
        let (w, g) = (&w[o], &g[o]);
        for (&a, &b) in w.iter().zip(g) {
            let (a, b) = (a as f64, b as f64);
            dot += a * b;
            nw += a * a;
            ng += b * b;
            err += (a - b) * (a - b);
            max_abs = max_abs.max((a - b).abs());
        }
        if classes >= 2 {
            for (rw, rg) in w.chunks_exact(classes).zip(g.chunks_exact(classes)) {
                rows += 1;
                same += usize::from(argmax(rw) == argmax(rg));
            }
        }
    }
    let cosine = if nw == 0.0 && ng == 0.0 { 1.0 } else { dot / (nw.sqrt() * ng.sqrt()).max(f64::MIN_POSITIVE) };
    let snr_db = if err == 0.0 { f64::INFINITY } else { 10.0 * (nw / err).log10() };
    let top_boxes = boxes.filter(|_| !want.is_empty()).map(|b| {
        let shared: usize = want
            .iter()
            .zip(got)
            .map(|(w, g)| {
                let (tw, tg) = (b.top(&w[o], TOP_BOXES), b.top(&g[o], TOP_BOXES));
                tw.iter().filter(|i| tg.contains(i)).count()
            })
            .sum();
        shared as f64 / (want.len() * TOP_BOXES.min(b.boxes)) as f64
    });
    Agreement { cosine, max_abs, snr_db, top1: (rows > 0).then(|| same as f64 / rows as f64), top_boxes }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_outputs_compare_their_top_boxes() {
        assert_eq!(Boxes::of(&[1, 84, 8400]), Some(Boxes { boxes: 8400, channels: 84, channels_first: true }));
        assert_eq!(Boxes::of(&[1, 2100, 6]), Some(Boxes { boxes: 2100, channels: 6, channels_first: false }));
        assert_eq!(Boxes::of(&[1, 1000]), None);
        assert_eq!(Boxes::of(&[1, 64, 80]), None, "a feature map, not boxes");
        // [1, 6, 400]: 4 coordinates and 2 class scores per box; box i scores i.
        let b = Boxes::of(&[1, 6, 400]).unwrap();
        let mut want = vec![0.0f32; 6 * 400];
        for i in 0..400 {
            want[4 * 400 + i] = i as f32;
        }
        // Same ranking: all agree. The top 100 pushed to the bottom: none do.
        let same = agreement(&[vec![want.clone()]], &[vec![want.clone()]], 0, 0, Some(b));
        assert_eq!((same.top_boxes, same.top1), (Some(1.0), None));
        let mut flipped = want.clone();
        for i in 300..400 {
            flipped[4 * 400 + i] = -1.0;
        }
        let a = agreement(&[vec![want]], &[vec![flipped]], 0, 0, Some(b));
        assert_eq!(a.top_boxes, Some(0.0));
        assert!(a.cosine > 0.5, "most values still agree: {a:?}");
    }
}
