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
}

/// Compares output `o` of `got` with `want` (per sample), the last axis
/// being `classes` long.
pub fn agreement(want: &[Vec<Vec<f32>>], got: &[Vec<Vec<f32>>], o: usize, classes: usize) -> Agreement {
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
    Agreement { cosine, max_abs, snr_db, top1: (rows > 0).then(|| same as f64 / rows as f64) }
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
