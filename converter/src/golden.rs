//! Golden test vectors for the file: a few inputs and what the converted
//! model itself outputs for them on this host, so that a device can prove
//! after an install that it computes the same (`jetrt verify`).

use crate::tensor::Tensor;
use jetrt::{DType, Model, SessionOptions, TensorRef};
use jetrt_format::golden::GoldenVector;
use jetrt_format::FileBuilder;

/// The inputs of the vectors: the first `count` of `samples` when there are
/// any, else made up (floats uniform in [0, 1) from a fixed seed; integers
/// and booleans zero, valid as indices and masks).
pub fn inputs(file: &FileBuilder, samples: Option<&[Vec<Tensor>]>, count: usize) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let model = Model::from_bytes(&file.to_bytes()).map_err(|e| format!("golden vectors: {e}"))?;
    if let Some(s) = samples.filter(|s| !s.is_empty()) {
        return Ok(s.iter().take(count).map(|sample| sample.iter().map(|t| t.data.to_le_bytes()).collect()).collect());
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    Ok((0..count)
        .map(|_| {
            model
                .inputs()
                .iter()
                .map(|t| {
                    let n: usize = t.shape.iter().product();
                    if t.dtype == DType::F32 {
                        (0..n).flat_map(|_| next().to_le_bytes()).collect()
                    } else {
                        vec![0u8; n * t.dtype.size()]
                    }
                })
                .collect()
        })
        .collect())
}

/// Runs `file` on each input set on the CPU and records the outputs.
pub fn build(file: &FileBuilder, inputs: Vec<Vec<Vec<u8>>>, options: SessionOptions) -> Result<Vec<GoldenVector>, String> {
    let model = Model::from_bytes(&file.to_bytes()).map_err(|e| format!("golden vectors: {e}"))?;
    let mut session = model.session(options).map_err(|e| format!("golden vectors: {e}"))?;
    let infos = model.inputs();
    let mut out = Vec::with_capacity(inputs.len());
    for (k, ins) in inputs.into_iter().enumerate() {
        for (i, bytes) in ins.iter().enumerate() {
            session
                .set_input(i, TensorRef::from_bytes(infos[i].dtype, &infos[i].shape, bytes))
                .map_err(|e| format!("golden vector {k}: {e}"))?;
        }
        session.run_loaded().map_err(|e| format!("golden vector {k}: {e}"))?;
        let outputs = (0..model.outputs().len())
            .map(|o| session.output(o).map(|b| b.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("golden vector {k}: {e}"))?;
        out.push(GoldenVector { inputs: ins, outputs });
    }
    Ok(out)
}
