//! The drift reference a converted file carries: its inputs and outputs on
//! the reference samples, as the converted model itself computes them (so
//! an int8 file's reference is what the int8 model outputs on the board).

use crate::tensor::Tensor;
use jetrt::host::ReferenceBuilder;
use jetrt::{Model, SessionOptions, TensorRef};
use jetrt_format::drift::Reference;
use jetrt_format::FileBuilder;

/// Fewest samples a reference may have; fewer make every window look
/// drifted to a monitor that accounts for reference noise.
pub const MIN_SAMPLES: usize = 20;

/// Runs `file` on `samples` (per sample, one tensor per model input) on the
/// CPU and collects the reference statistics.
pub fn build(file: &FileBuilder, samples: &[Vec<Tensor>], options: SessionOptions) -> Result<Reference, String> {
    if samples.len() < MIN_SAMPLES {
        return Err(format!("a drift reference needs at least {MIN_SAMPLES} samples, {} were given", samples.len()));
    }
    let model = Model::from_bytes(&file.to_bytes()).map_err(|e| format!("drift reference: {e}"))?;
    let mut session = model.session(options).map_err(|e| format!("drift reference: {e}"))?;
    let mut builder = ReferenceBuilder::new(&model);
    for (k, sample) in samples.iter().enumerate() {
        for (i, t) in sample.iter().enumerate() {
            let bytes = t.data.to_le_bytes();
            session
                .set_input(i, TensorRef::from_bytes(t.dtype(), &t.shape, &bytes))
                .map_err(|e| format!("drift reference sample {k}: {e}"))?;
        }
        session.run_loaded().map_err(|e| format!("drift reference sample {k}: {e}"))?;
        builder.add(&session).map_err(|e| format!("drift reference sample {k}: {e}"))?;
    }
    Ok(builder.finish())
}
