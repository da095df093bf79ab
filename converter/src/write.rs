//! Graph + memory plan → `.jrt` (through the runtime's own writer).

use crate::error::{ConvertError, Result};
use crate::graph::{Graph, ValueId};
use crate::memplan;
use jetrt_format::op::Op;
use jetrt_format::{FileBuilder, StepDef, StorageDef, TensorDef};
use std::collections::HashSet;

/// Gives every graph output its own tensor named after it: an output that
/// is a graph input, or the same value as an earlier output, gets a Copy
/// step; otherwise its value takes the output's name.
pub(crate) fn name_outputs(g: &mut Graph) {
    let mut claimed: HashSet<ValueId> = HashSet::new();
    let inputs: HashSet<ValueId> = g.inputs.iter().copied().collect();
    for k in 0..g.outputs.len() {
        let (name, v) = g.outputs[k].clone();
        if inputs.contains(&v) || claimed.contains(&v) {
            let c = if let Some(t) = g.konst(v).cloned() {
                g.add_const(name.clone(), t)
            } else {
                g.add_copy(name.clone(), v, g.values[v].shape.clone())
            };
            g.outputs[k].1 = c;
            claimed.insert(c);
        } else {
            g.values[v].name = name;
            claimed.insert(v);
        }
    }
}

/// Builds the file contents from an optimized graph.
pub(crate) fn build(g: &Graph, metadata: Vec<(String, String)>) -> Result<FileBuilder> {
    let plan = memplan::plan(g);
    let mut fb = FileBuilder { metadata, arena_bytes: plan.arena_bytes, ..Default::default() };
    let mut index = vec![None::<u32>; g.values.len()];
    let mut used: Vec<ValueId> = g.inputs.clone();
    for n in &g.nodes {
        used.extend(&n.inputs);
        used.extend(&n.outputs);
    }
    used.extend(g.outputs.iter().map(|&(_, v)| v));
    let mut names: HashSet<String> = HashSet::new();
    for v in used {
        if index[v].is_some() {
            continue;
        }
        let val = &g.values[v];
        let storage = match (&val.konst, plan.offsets[v]) {
            (Some(t), _) => StorageDef::Weights { offset: fb.add_weight(&t.data.to_le_bytes()) },
            (None, Some(offset)) => StorageDef::Arena { offset },
            (None, None) => return Err(ConvertError::Graph(format!("tensor {:?} is read but never computed", val.name))),
        };
        // Names are for people and tools; keep them unique.
        let mut name = val.name.clone();
        let mut k = 1;
        while !names.insert(name.clone()) {
            name = format!("{}#{k}", val.name);
            k += 1;
        }
        index[v] = Some(fb.tensors.len() as u32);
        fb.tensors.push(TensorDef { name, dtype: val.dtype, shape: val.shape.clone(), storage });
    }
    let idx = |v: ValueId| index[v].ok_or_else(|| ConvertError::Graph(format!("internal: tensor {:?} has no index", g.values[v].name)));
    for n in &g.nodes {
        fb.steps.push(StepDef {
            op: n.op.clone(),
            inputs: n.inputs.iter().map(|&v| idx(v)).collect::<Result<_>>()?,
            outputs: n.outputs.iter().map(|&v| idx(v)).collect::<Result<_>>()?,
        });
    }
    fb.inputs = g.inputs.iter().map(|&v| idx(v)).collect::<Result<_>>()?;
    fb.outputs = g.outputs.iter().map(|&(_, v)| idx(v)).collect::<Result<_>>()?;
    Ok(fb)
}

/// Counts steps by op name, for the report.
pub(crate) fn op_counts(g: &Graph) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for n in &g.nodes {
        let name = match &n.op {
            Op::Activation(_) => n.op.name(),
            op => op.name(),
        };
        *m.entry(name.to_string()).or_insert(0) += 1;
    }
    m
}
