//! The converter's graph: values with fixed shapes (constants carry their
//! data) and nodes that are already jetrt ops. ONNX import builds it; passes
//! rewrite it; the memory planner and the writer turn it into a `.jrt` file.

use crate::tensor::Tensor;
use jetrt::DType;
use jetrt_format::op::{Meta, Op};
use jetrt_format::Shape;

pub type ValueId = usize;

#[derive(Debug, Clone)]
pub struct Value {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Data of a constant (a weight once written).
    pub konst: Option<Tensor>,
}

impl Value {
    pub fn nbytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub values: Vec<Value>,
    /// In execution order.
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    /// (output name, value).
    pub outputs: Vec<(String, ValueId)>,
}

impl Graph {
    pub fn add_const(&mut self, name: impl Into<String>, t: Tensor) -> ValueId {
        self.values.push(Value { name: name.into(), dtype: t.dtype(), shape: t.shape.clone(), konst: Some(t) });
        self.values.len() - 1
    }

    pub fn add_value(&mut self, name: impl Into<String>, dtype: DType, shape: Vec<usize>) -> ValueId {
        self.values.push(Value { name: name.into(), dtype, shape, konst: None });
        self.values.len() - 1
    }

    pub fn konst(&self, v: ValueId) -> Option<&Tensor> {
        self.values[v].konst.as_ref()
    }

    pub fn meta(&self, v: ValueId) -> Result<Meta, String> {
        let val = &self.values[v];
        let shape = Shape::new(&val.shape).ok_or_else(|| {
            format!("tensor {:?} has rank {} (jetrt supports up to {})", val.name, val.shape.len(), jetrt_format::MAX_RANK)
        })?;
        Ok(Meta { dtype: val.dtype, shape })
    }

    /// Adds a node computing `op` on `inputs`; its output shape is inferred.
    pub fn add_node(&mut self, name: impl Into<String>, op: Op, inputs: Vec<ValueId>) -> Result<ValueId, String> {
        let name = name.into();
        let metas = inputs.iter().map(|&v| self.meta(v)).collect::<Result<Vec<_>, _>>()?;
        let outs = op.infer(&metas)?;
        let out = self.add_value(name.clone(), outs[0].dtype, outs[0].shape.dims().to_vec());
        self.nodes.push(Node { name, op, inputs, outputs: vec![out] });
        Ok(out)
    }

    /// Adds a `Copy` node giving `input`'s bytes the shape `shape`.
    pub fn add_copy(&mut self, name: impl Into<String>, input: ValueId, shape: Vec<usize>) -> ValueId {
        let name = name.into();
        let dtype = self.values[input].dtype;
        let out = self.add_value(name.clone(), dtype, shape);
        self.nodes.push(Node { name, op: Op::Copy, inputs: vec![input], outputs: vec![out] });
        out
    }

    /// For each value, the nodes that read it (a node reading a value twice
    /// appears twice).
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                out[v].push(i);
            }
        }
        out
    }

    /// For each value, the node that writes it.
    pub fn producers(&self) -> Vec<Option<usize>> {
        let mut out = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.outputs {
                out[v] = Some(i);
            }
        }
        out
    }

    pub fn is_output(&self, v: ValueId) -> bool {
        self.outputs.iter().any(|&(_, o)| o == v)
    }

    /// Replaces every read of `from` by `to` (graph outputs included).
    pub fn replace_uses(&mut self, from: ValueId, to: ValueId) {
        for n in &mut self.nodes {
            for v in &mut n.inputs {
                if *v == from {
                    *v = to;
                }
            }
        }
        for (_, v) in &mut self.outputs {
            if *v == from {
                *v = to;
            }
        }
    }

    /// Removes nodes whose outputs nobody reads and that are not outputs;
    /// returns how many went.
    pub fn remove_dead_nodes(&mut self) -> usize {
        let before = self.nodes.len();
        loop {
            let consumers = self.consumers();
            let n = self.nodes.len();
            let outputs: Vec<ValueId> = self.outputs.iter().map(|&(_, v)| v).collect();
            self.nodes.retain(|node| node.outputs.iter().any(|&o| !consumers[o].is_empty() || outputs.contains(&o)));
            if self.nodes.len() == n {
                break;
            }
        }
        before - self.nodes.len()
    }
}
