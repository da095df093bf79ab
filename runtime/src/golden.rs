//! Golden test vectors: a device runs the inputs the converter stored in
//! the file (section Golden, [`jetrt_format::golden`]) and compares what it
//! computes with the outputs stored beside them (`jetrt verify`, the update
//! agent's health check), to prove that this file, on this runtime and this
//! hardware, computes what it computed on the host.

use crate::error::{Error, Result};
use jetrt_format::golden::{sample, seeded_input, InputEntry};
use jetrt_format::DType;

/// How one output of one vector compared.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputCheck {
    pub vector: usize,
    pub output: String,
    /// Largest |got − expected| (float outputs; 0 or 1 for others).
    pub max_abs: f64,
    /// Cosine similarity (float outputs; 1 for equal others).
    pub cosine: f64,
    pub pass: bool,
}

/// A float output passes when its cosine similarity with the expected one
/// is at least this and its largest difference at most [`MAX_REL`] of the
/// expected output's largest magnitude (at least 1): another kernel variant
/// (AVX2 against NEON, CPU against GPU) sums in another order, a corrupt or
/// wrongly converted model misses by far more.
pub const MIN_COSINE: f64 = 0.999;
pub const MAX_REL: f64 = 0.01;

/// Compares `got` with `expected` (both the bytes of one output).
pub(crate) fn compare(dtype: DType, got: &[u8], expected: &[u8]) -> (f64, f64, bool) {
    if dtype != DType::F32 {
        let eq = got == expected;
        return (if eq { 0.0 } else { 1.0 }, if eq { 1.0 } else { 0.0 }, eq);
    }
    let (g, e): (&[f32], &[f32]) = match (bytemuck::try_cast_slice(got), bytemuck::try_cast_slice(expected)) {
        (Ok(g), Ok(e)) => (g, e),
        _ => return (f64::INFINITY, 0.0, false),
    };
    let (mut dot, mut ng, mut ne, mut max_abs, mut scale) = (0f64, 0f64, 0f64, 0f64, 1f64);
    let mut finite = true;
    for (&a, &b) in g.iter().zip(e) {
        if a.is_nan() && b.is_nan() {
            continue;
        }
        let (a, b) = (a as f64, b as f64);
        finite &= a.is_finite() == b.is_finite();
        dot += a * b;
        ng += a * a;
        ne += b * b;
        max_abs = max_abs.max((a - b).abs());
        scale = scale.max(b.abs());
    }
    let cosine = if ng > 0.0 && ne > 0.0 {
        dot / (ng.sqrt() * ne.sqrt())
    } else if ng == ne {
        1.0
    } else {
        0.0
    };
    let pass = finite && cosine >= MIN_COSINE && max_abs <= MAX_REL * scale;
    (max_abs, cosine, pass)
}

/// Runs every golden vector of `session`'s model and compares the outputs.
/// An empty list: the file has none.
pub fn check(session: &mut crate::Session) -> Result<Vec<OutputCheck>> {
    let model = session.model().clone();
    let entries = model.golden_entries();
    let inputs = model.inputs();
    let outputs = model.outputs();
    let mut out = Vec::new();
    for (v, e) in entries.iter().enumerate() {
        for (i, entry) in e.inputs.iter().enumerate() {
            let made;
            let bytes = match entry {
                InputEntry::Bytes(r) => model.golden_bytes(r.clone()).ok_or_else(|| golden_error("input range"))?,
                InputEntry::Seeded(seed) => {
                    made = seeded_input(*seed, inputs[i].dtype == DType::F32, inputs[i].nbytes());
                    &made
                }
            };
            session.set_input(i, crate::TensorRef::from_bytes(inputs[i].dtype, &inputs[i].shape, bytes))?;
        }
        session.run_loaded()?;
        for (o, entry) in e.outputs.iter().enumerate() {
            let expected = model.golden_bytes(entry.bytes.clone()).ok_or_else(|| golden_error("output range"))?;
            let got = session.output(o)?;
            let sampled;
            let got: &[u8] = if entry.stride > 1 {
                sampled = sample(&got, outputs[o].dtype.size(), entry.stride);
                &sampled
            } else {
                &got
            };
            let (max_abs, cosine, pass) = compare(outputs[o].dtype, got, expected);
            out.push(OutputCheck { vector: v, output: outputs[o].name.clone(), max_abs, cosine, pass });
        }
    }
    Ok(out)
}

fn golden_error(what: &str) -> Error {
    Error::Internal { step: 0, op: "golden", reason: what.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_accepts_rounding_and_refuses_errors() {
        let b = |v: &[f32]| bytemuck::cast_slice::<f32, u8>(v).to_vec();
        let e = b(&[1.0, -2.0, 3.0, 0.5]);
        assert!(compare(DType::F32, &b(&[1.0, -2.0, 3.0, 0.5]), &e).2);
        assert!(compare(DType::F32, &b(&[1.00001, -2.0, 2.99999, 0.5]), &e).2);
        assert!(!compare(DType::F32, &b(&[1.0, -2.0, 3.5, 0.5]), &e).2, "0.5 off on a scale of 3");
        assert!(!compare(DType::F32, &b(&[1.0, -2.0, f32::NAN, 0.5]), &e).2);
        assert!(compare(DType::I64, &[1, 2, 3], &[1, 2, 3]).2);
        assert!(!compare(DType::I64, &[1, 2, 3], &[1, 2, 4]).2);
    }
}
