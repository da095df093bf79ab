//! Constant evaluation: a node whose inputs are all constants is run once,
//! at conversion, by the runtime itself (a one-step model in memory), so a
//! folded result is bit-for-bit what the device would have computed.

use crate::graph::{Graph, Node};
use crate::tensor::{Data, Tensor};
use jetrt::Model;
use jetrt_format::{FileBuilder, StepDef, StorageDef, TensorDef};

pub(crate) fn evaluate(g: &Graph, node: &Node) -> Result<Tensor, String> {
    let mut fb = FileBuilder::default();
    for (i, &v) in node.inputs.iter().enumerate() {
        let val = &g.values[v];
        let t = val.konst.as_ref().ok_or("internal: folding a node with a non-constant input")?;
        let offset = fb.add_weight(&t.data.to_le_bytes());
        fb.tensors.push(TensorDef {
            name: format!("in{i}"),
            dtype: val.dtype,
            shape: val.shape.clone(),
            storage: StorageDef::Weights { offset },
        });
    }
    let out = &g.values[node.outputs[0]];
    fb.tensors.push(TensorDef { name: "out".into(), dtype: out.dtype, shape: out.shape.clone(), storage: StorageDef::Arena { offset: 0 } });
    fb.arena_bytes = out.nbytes() as u64;
    let n_in = node.inputs.len() as u32;
    fb.steps.push(StepDef { op: node.op.clone(), inputs: (0..n_in).collect(), outputs: vec![n_in] });
    fb.outputs.push(n_in);
    let model = Model::from_bytes(&fb.to_bytes()).map_err(|e| format!("cannot fold constants: {e}"))?;
    let mut session = model.session(crate::Kernels::default().session(1)).map_err(|e| e.to_string())?;
    session.run_loaded().map_err(|e| format!("cannot fold constants: {e}"))?;
    let bytes = session.output(0).map_err(|e| format!("cannot fold constants: {e}"))?;
    let data = Data::from_le_bytes(out.dtype, &bytes).ok_or_else(|| format!("cannot fold a {:?} result", out.dtype))?;
    Ok(Tensor::new(out.shape.clone(), data))
}
