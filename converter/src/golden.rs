//! Golden test vectors for the file: a few inputs and what the converted
//! model itself outputs for them on this host, so that a device can prove
//! after an install that it computes the same (`jetrt verify`).
//!
//! They are sized to the model, not to its tensors: real samples are stored
//! only while they are small beside the weights (else the inputs are made
//! from a seed on the device), and a large output is stored as a sample of
//! [`SAMPLED_ELEMENTS`] evenly spaced elements. A detector's vector takes
//! tens of kilobytes, not the 7.7 MB of its image and raw boxes.

use crate::tensor::Tensor;
use jetrt::{DType, Model, SessionOptions, TensorRef};
use jetrt_format::golden::{sample, seeded_input, GoldenInput, GoldenOutput, GoldenVector};
use jetrt_format::FileBuilder;

/// Elements kept of an output larger than this: enough for the check's
/// cosine and largest difference to catch a wrong kernel or a corrupt
/// weight, which move outputs everywhere.
pub const SAMPLED_ELEMENTS: usize = 4096;

/// Real samples are stored as a vector's inputs while they take at most
/// this share of the weights (or [`MIN_INPUT_BYTES`]).
const INPUT_SHARE: usize = 64;
const MIN_INPUT_BYTES: usize = 64 << 10;

/// The seed of vector `k`'s made-up inputs.
fn seed(k: usize) -> u64 {
    0x2545_f491_4f6c_dd1d ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The inputs of the vectors: the first `count` of `samples` when there are
/// any and they are small beside the weights, else made from a seed
/// (floats uniform in [0, 1); integers and booleans zero, valid as indices
/// and masks).
pub fn inputs(file: &FileBuilder, samples: Option<&[Vec<Tensor>]>, count: usize) -> Vec<Vec<GoldenInput>> {
    let limit = MIN_INPUT_BYTES.max(file.weights.len() / INPUT_SHARE);
    let small = |s: &Vec<Tensor>| s.iter().map(|t| t.data.to_le_bytes().len()).sum::<usize>() <= limit;
    match samples.filter(|s| !s.is_empty() && s.iter().all(small)) {
        Some(s) => s.iter().take(count).map(|sample| sample.iter().map(|t| GoldenInput::Bytes(t.data.to_le_bytes())).collect()).collect(),
        None => (0..count).map(|k| vec![GoldenInput::Seeded(seed(k)); file.inputs.len()]).collect(),
    }
}

/// Runs `file` on each input set on the CPU and records the outputs.
pub fn build(file: &FileBuilder, inputs: Vec<Vec<GoldenInput>>, options: SessionOptions) -> Result<Vec<GoldenVector>, String> {
    let model = Model::from_bytes(&file.to_bytes()).map_err(|e| format!("golden vectors: {e}"))?;
    let mut session = model.session(options).map_err(|e| format!("golden vectors: {e}"))?;
    let infos = model.inputs();
    let outs = model.outputs();
    let mut out = Vec::with_capacity(inputs.len());
    for (k, ins) in inputs.into_iter().enumerate() {
        for (i, input) in ins.iter().enumerate() {
            let made;
            let bytes = match input {
                GoldenInput::Bytes(b) => b,
                GoldenInput::Seeded(s) => {
                    made = seeded_input(*s, infos[i].dtype == DType::F32, infos[i].nbytes());
                    &made
                }
            };
            session
                .set_input(i, TensorRef::from_bytes(infos[i].dtype, &infos[i].shape, bytes))
                .map_err(|e| format!("golden vector {k}: {e}"))?;
        }
        session.run_loaded().map_err(|e| format!("golden vector {k}: {e}"))?;
        let outputs = outs
            .iter()
            .enumerate()
            .map(|(o, t)| {
                let got = session.output(o)?;
                let elems = got.len() / t.dtype.size();
                Ok(if elems > SAMPLED_ELEMENTS {
                    let stride = elems.div_ceil(SAMPLED_ELEMENTS);
                    GoldenOutput { stride, bytes: sample(&got, t.dtype.size(), stride) }
                } else {
                    GoldenOutput { stride: 1, bytes: got.to_vec() }
                })
            })
            .collect::<Result<Vec<_>, jetrt::Error>>()
            .map_err(|e| format!("golden vector {k}: {e}"))?;
        out.push(GoldenVector { inputs: ins, outputs });
    }
    Ok(out)
}
