//! ONNX model loading and translation into the converter's [`Graph`].

use super::ops;
use super::pb::{attribute_proto::AttributeType, type_proto, AttributeProto, ModelProto, NodeProto, TensorProto};
use super::tensor::{dtype_of, load_tensor, type_name};
use crate::error::{ConvertError, Result, Unsupported};
use crate::graph::{Graph, ValueId};
use crate::passes::fold;
use crate::tensor::Tensor;
use jetrt::DType;
use jetrt_format::op::Op;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A decoded ONNX model and where it came from (external data is resolved
/// relative to its folder).
pub struct OnnxModel {
    pub proto: ModelProto,
    pub path: PathBuf,
    pub dir: PathBuf,
    /// Opset of the default (`ai.onnx`) domain.
    pub opset: i64,
}

/// Reads and decodes an ONNX file.
pub fn load_model(path: &Path) -> Result<OnnxModel> {
    let bytes = std::fs::read(path).map_err(|source| ConvertError::Io { path: path.to_path_buf(), source })?;
    let decode = |reason: String| ConvertError::Decode { path: path.to_path_buf(), reason };
    let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| decode(format!("protobuf decoding failed: {e}")))?;
    if proto.graph.is_none() {
        return Err(decode("the model has no graph".into()));
    }
    let opset = proto
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .ok_or_else(|| decode("no opset is imported for the default ONNX domain".into()))?;
    let dir =
        path.parent().map_or_else(|| PathBuf::from("."), |p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() });
    Ok(OnnxModel { proto, path: path.to_path_buf(), dir, opset })
}

/// A node being translated: its attributes and resolved inputs.
pub(crate) struct N<'a> {
    pub name: String,
    pub op: &'a str,
    pub proto: &'a NodeProto,
    pub inputs: Vec<Option<ValueId>>,
    /// How many outputs the model reads (trailing empty names dropped).
    pub n_outputs: usize,
    pub opset: i64,
    pub dir: &'a Path,
}

impl N<'_> {
    pub fn input(&self, i: usize) -> Result<ValueId, String> {
        self.inputs.get(i).copied().flatten().ok_or_else(|| format!("input {i} is missing"))
    }

    pub fn opt_input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }

    pub fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name.as_deref() == Some(name))
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).and_then(|a| a.f).unwrap_or(default)
    }

    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.attr(name).and_then(|a| a.s.as_ref()).map(|s| String::from_utf8_lossy(s).into_owned())
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>, String> {
        match self.attr(name).and_then(|a| a.t.as_ref()) {
            Some(t) => load_tensor(t, self.dir).map(Some).map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    /// Whether output `i` is read by anyone (named and not empty).
    pub fn wants_output(&self, i: usize) -> bool {
        self.proto.output.get(i).is_some_and(|s| !s.is_empty())
    }

    /// A name for a value this node creates besides its outputs.
    pub fn temp(&self, what: &str) -> String {
        format!("{}/{what}", self.name)
    }
}

/// Translation state: the graph so far.
pub(crate) struct Ctx<'a> {
    pub g: &'a mut Graph,
}

impl Ctx<'_> {
    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.g.values[v].shape
    }

    pub fn dtype(&self, v: ValueId) -> DType {
        self.g.values[v].dtype
    }

    pub fn konst(&self, v: ValueId) -> Option<&Tensor> {
        self.g.konst(v)
    }

    /// A constant's integer contents, or why not.
    pub fn const_ints(&self, v: ValueId, what: &str) -> Result<Vec<i64>, String> {
        let t = self.konst(v).ok_or_else(|| format!("{what} must be a constant (it is computed at run time)"))?;
        t.ints().ok_or_else(|| format!("{what} must be integers, is {:?}", t.dtype()))
    }

    pub fn add_const(&mut self, name: String, t: Tensor) -> ValueId {
        self.g.add_const(name, t)
    }

    /// Adds `op` on `inputs`; if every input is a constant the op is
    /// evaluated now, with the runtime's own kernels, and its result becomes
    /// a constant.
    pub fn node(&mut self, name: String, op: Op, inputs: Vec<ValueId>) -> Result<ValueId, String> {
        let all_const = inputs.iter().all(|&v| self.g.values[v].konst.is_some());
        let id = self.g.add_node(name, op, inputs)?;
        if all_const {
            let node = self.g.nodes.pop().ok_or("internal: node vanished")?;
            let t = fold::evaluate(self.g, &node)?;
            self.g.values[id].konst = Some(t);
        }
        Ok(id)
    }

    /// `v` with the shape `shape` (same elements): a constant is reshaped
    /// now, anything else gets a Copy step.
    pub fn reshape(&mut self, name: String, v: ValueId, shape: Vec<usize>) -> ValueId {
        if self.shape(v) == shape.as_slice() {
            return v;
        }
        if let Some(t) = self.konst(v) {
            let t = Tensor::new(shape, t.data.clone());
            return self.g.add_const(name, t);
        }
        self.g.add_copy(name, v, shape)
    }
}

/// Options that steer translation.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--input-shape NAME=D0,D1,...`, in order given.
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// Inputs fixed to a value (`--bind NAME=FILE.npy`): they become
    /// constants, so everything computed from them alone is folded.
    pub bind: Vec<(String, Tensor)>,
    /// `jetc convert --check`: translate every node it can and report every
    /// node that fails, instead of stopping at the first.
    pub keep_going: bool,
}

/// What translation did, for the report.
#[derive(Debug, Clone, Default)]
pub struct ImportStats {
    pub onnx_nodes: usize,
    /// Nodes that became constants (folded at conversion).
    pub folded: usize,
    /// Identity-like nodes (Identity, Dropout, Cast to the same type) removed.
    pub identities: usize,
    pub opset: i64,
    pub initializers_as_inputs: Vec<String>,
}

/// A model's dims as `[N, 3, 224, 224]`: numbers, symbolic names, `?`
/// (printed as `--input-shape` values are, so the two read alike).
fn dims_text(dims: &[Option<i64>], params: &[Option<String>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .zip(params)
        .map(|(d, p)| match (d, p) {
            (Some(v), _) => v.to_string(),
            (None, Some(p)) => p.clone(),
            (None, None) => "?".into(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Checks everything that can be checked before translating: op types and
/// domains, element types, subgraphs. Returns every problem at once.
fn prescan(m: &OnnxModel) -> Vec<Unsupported> {
    let mut out = Vec::new();
    let Some(graph) = &m.proto.graph else { return out };
    for (i, n) in graph.node.iter().enumerate() {
        let op = n.op_type.clone().unwrap_or_default();
        let name = node_name(n, i);
        let domain = n.domain.as_deref().unwrap_or("");
        let domain = if domain.is_empty() { "ai.onnx" } else { domain };
        let opset = m
            .proto
            .opset_import
            .iter()
            .find(|o| o.domain.as_deref().unwrap_or("") == domain || (domain == "ai.onnx" && o.domain.as_deref().unwrap_or("").is_empty()))
            .and_then(|o| o.version)
            .unwrap_or(0);
        let at = Some((domain.to_string(), opset));
        if domain != "ai.onnx" {
            out.push(Unsupported { node: name, op, domain: at, reason: format!("operators of domain {domain:?} are not supported") });
            continue;
        }
        if ops::lookup(&op).is_none() {
            out.push(Unsupported { node: name, op, domain: at, reason: "operator not supported".into() });
            continue;
        }
        if n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty()) {
            out.push(Unsupported { node: name, op, domain: at, reason: "subgraphs (control flow) are not supported".into() });
        }
    }
    for t in &graph.initializer {
        let code = t.data_type.unwrap_or(0);
        if dtype_of(code).is_none() {
            out.push(Unsupported {
                node: t.name.clone().unwrap_or_default(),
                op: "initializer".into(),
                domain: None,
                reason: format!("element type {} is not supported", type_name(code)),
            });
        }
    }
    for v in &graph.input {
        if let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            let code = tt.elem_type.unwrap_or(0);
            if dtype_of(code).is_none() {
                out.push(Unsupported {
                    node: v.name.clone().unwrap_or_default(),
                    op: "graph input".into(),
                    domain: None,
                    reason: format!("element type {} is not supported", type_name(code)),
                });
            }
        } else {
            out.push(Unsupported {
                node: v.name.clone().unwrap_or_default(),
                op: "graph input".into(),
                domain: None,
                reason: "only tensor inputs are supported (not sequences, maps or optionals)".into(),
            });
        }
    }
    if !m.proto.functions.is_empty() {
        let names: Vec<_> = m.proto.functions.iter().filter_map(|f| f.name.clone()).collect();
        let used: Vec<_> = graph.node.iter().filter_map(|n| n.op_type.clone()).filter(|o| names.contains(o)).collect();
        if !used.is_empty() {
            out.push(Unsupported {
                node: "(model)".into(),
                op: "FunctionProto".into(),
                domain: None,
                reason: format!("model-local functions {used:?} are not supported"),
            });
        }
    }
    out
}

fn node_name(n: &NodeProto, index: usize) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => format!("{}_{index}", n.op_type.as_deref().unwrap_or("node")),
    }
}

/// The element type and shape of a value whose type the model states in
/// full (every dim a number).
fn static_type(v: &super::pb::ValueInfoProto) -> Option<(DType, Vec<usize>)> {
    let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_ref()?.value.as_ref() else { return None };
    let dtype = dtype_of(tt.elem_type?)?;
    let shape = tt
        .shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(super::pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v >= 0 => Some(v as usize),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((dtype, shape))
}

/// For each value (by name), the graph inputs (indices into `inputs`) it
/// is computed from; constants depend on none.
fn input_dependencies<'a>(nodes: &'a [NodeProto], order: &[usize], inputs: &[&'a str]) -> HashMap<&'a str, Vec<usize>> {
    let mut deps: HashMap<&str, Vec<usize>> = inputs.iter().enumerate().map(|(i, &n)| (n, vec![i])).collect();
    for &i in order {
        let n = &nodes[i];
        // A shape is a constant once the input shapes are fixed.
        let shape_only = matches!(n.op_type.as_deref(), Some("Shape" | "Size"));
        let mut d: Vec<usize> = n.input.iter().filter(|_| !shape_only).filter_map(|x| deps.get(x.as_str())).flatten().copied().collect();
        d.sort_unstable();
        d.dedup();
        for o in &n.output {
            deps.insert(o.as_str(), d.clone());
        }
    }
    deps
}

/// When node `n` is computed from some of the model's inputs but not all,
/// binding those would make it a constant, folded at conversion: says so.
fn bind_hint(n: &NodeProto, deps: &HashMap<&str, Vec<usize>>, inputs: &[&str]) -> String {
    let mut d: Vec<usize> = n.input.iter().filter_map(|x| deps.get(x.as_str())).flatten().copied().collect();
    d.sort_unstable();
    d.dedup();
    if d.is_empty() || d.len() == inputs.len() {
        return String::new();
    }
    let binds: Vec<String> = d.iter().map(|&i| format!("--bind {}=FILE.npy", inputs[i])).collect();
    format!(
        " (it is computed from the input(s) {} alone: {} would fix them to one value and fold this node away)",
        d.iter().map(|&i| format!("{:?}", inputs[i])).collect::<Vec<_>>().join(", "),
        binds.join(" ")
    )
}

/// Node indices in an order where every input is produced before it is read.
fn topo_order(nodes: &[NodeProto], known: &HashSet<String>) -> Result<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            if !o.is_empty() {
                producer.insert(o.as_str(), i);
            }
        }
    }
    // 0 = unvisited, 1 = on the stack, 2 = done
    let mut state = vec![0u8; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    for start in 0..nodes.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((i, k)) = stack.pop() {
            let inputs = &nodes[i].input;
            if k < inputs.len() {
                stack.push((i, k + 1));
                let name = inputs[k].as_str();
                if name.is_empty() || known.contains(name) {
                    continue;
                }
                if let Some(&p) = producer.get(name) {
                    match state[p] {
                        0 => {
                            state[p] = 1;
                            stack.push((p, 0));
                        }
                        1 => return Err(ConvertError::Graph(format!("the graph has a cycle through tensor {name:?}"))),
                        _ => {}
                    }
                }
            } else {
                state[i] = 2;
                order.push(i);
            }
        }
    }
    Ok(order)
}

/// Translates the ONNX graph into a jetrt graph with every shape fixed.
pub(crate) fn translate(m: &OnnxModel, opts: &ImportOptions) -> Result<(Graph, ImportStats)> {
    let graph = m.proto.graph.as_ref().ok_or_else(|| ConvertError::Graph("no graph".into()))?;
    let unsupported = prescan(m);
    if !unsupported.is_empty() {
        return Err(ConvertError::Unsupported { items: unsupported });
    }
    let mut g = Graph::default();
    let mut env: HashMap<String, ValueId> = HashMap::new();
    let mut stats = ImportStats { onnx_nodes: graph.node.len(), opset: m.opset, ..Default::default() };

    let init_names: HashSet<&str> = graph.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    for t in &graph.initializer {
        let name = t.name.clone().unwrap_or_default();
        let tensor = load_tensor(t, &m.dir)?;
        let id = g.add_const(name.clone(), tensor);
        env.insert(name, id);
    }

    // Graph inputs and their shapes.
    let real_inputs: Vec<_> = graph.input.iter().filter(|v| !init_names.contains(v.name.as_deref().unwrap_or(""))).collect();
    for v in &graph.input {
        let name = v.name.clone().unwrap_or_default();
        if init_names.contains(name.as_str()) && m.proto.ir_version.unwrap_or(0) >= 4 {
            stats.initializers_as_inputs.push(name);
        }
    }
    let known: Vec<String> = real_inputs.iter().map(|v| v.name.clone().unwrap_or_default()).collect();
    for name in opts.input_shapes.iter().map(|(n, _)| n).chain(opts.bind.iter().map(|(n, _)| n)) {
        if !known.contains(name) {
            return Err(ConvertError::UnknownInput { name: name.clone(), known: known.clone() });
        }
    }
    let mut dynamic = Vec::new();
    for v in &real_inputs {
        let name = v.name.clone().unwrap_or_default();
        let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(ConvertError::Graph(format!("input {name:?} is not a tensor")));
        };
        let dtype = dtype_of(tt.elem_type.unwrap_or(0))
            .ok_or_else(|| ConvertError::Graph(format!("input {name:?} has an unsupported element type")))?;
        let (dims, params): (Vec<Option<i64>>, Vec<Option<String>>) = match &tt.shape {
            Some(s) => s
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(super::pb::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => (Some(*v), None),
                    Some(super::pb::tensor_shape_proto::dimension::Value::DimParam(p)) => (None, Some(p.clone())),
                    _ => (None, None),
                })
                .unzip(),
            None => (Vec::new(), Vec::new()),
        };
        if let Some((_, t)) = opts.bind.iter().rev().find(|(n, _)| *n == name) {
            let mut t = t.clone();
            // A one-element value binds a scalar input (as onnxruntime
            // accepts [1] for []).
            if tt.shape.is_some() && dims.is_empty() && t.numel() == 1 {
                t.shape.clear();
            }
            let fits = t.dtype() == dtype
                && tt.shape.as_ref().is_none_or(|_| {
                    dims.len() == t.shape.len() && dims.iter().zip(&t.shape).all(|(d, &gv)| d.is_none_or(|d| d as usize == gv))
                });
            if !fits {
                return Err(ConvertError::Graph(format!(
                    "--bind {name}: the value is {:?} {:?}, but the model declares {} {}",
                    t.dtype(),
                    t.shape,
                    super::tensor::type_name(tt.elem_type.unwrap_or(0)),
                    dims_text(&dims, &params)
                )));
            }
            let id = g.add_const(name.clone(), t);
            env.insert(name, id);
            continue;
        }
        let given = opts.input_shapes.iter().rev().find(|(n, _)| *n == name).map(|(_, s)| s.clone());
        let shape = match (given, &tt.shape) {
            (Some(given), Some(_)) => {
                let compatible = given.len() == dims.len() && dims.iter().zip(&given).all(|(d, &gv)| d.is_none_or(|d| d as usize == gv));
                if !compatible {
                    return Err(ConvertError::ShapeMismatch { input: name, model: dims_text(&dims, &params), given });
                }
                given
            }
            (Some(given), None) => given,
            (None, None) => {
                dynamic.push(format!("input {name:?} has no shape in the model (e.g. --input-shape {name}=1,3,224,224)"));
                continue;
            }
            (None, Some(_)) => {
                let missing: Vec<String> = dims
                    .iter()
                    .zip(&params)
                    .enumerate()
                    .filter(|(_, (d, _))| d.is_none())
                    .map(|(axis, (_, p))| match p {
                        Some(p) => format!("axis {axis} is {p:?}"),
                        None => format!("axis {axis} is unknown"),
                    })
                    .collect();
                if !missing.is_empty() {
                    dynamic.push(format!(
                        "input {name:?} {}: {} (pass --input-shape {name}=D0,D1,...)",
                        dims_text(&dims, &params),
                        missing.join(", ")
                    ));
                    continue;
                }
                dims.iter().map(|d| d.unwrap_or(0) as usize).collect()
            }
        };
        let id = g.add_value(name.clone(), dtype, shape);
        g.inputs.push(id);
        env.insert(name, id);
    }
    if !dynamic.is_empty() {
        return Err(ConvertError::DynamicInputs { items: dynamic });
    }

    let known_names: HashSet<String> = env.keys().cloned().collect();
    let order = topo_order(&graph.node, &known_names)?;
    let mut failed: Vec<Unsupported> = Vec::new();
    let mut failed_values: HashSet<&str> = HashSet::new();
    let mut skipped: Vec<String> = Vec::new();
    // The types ONNX shape inference stored: what --check carries on with
    // past a refused node.
    let inferred: HashMap<&str, (DType, Vec<usize>)> =
        graph.value_info.iter().filter_map(|v| Some((v.name.as_deref()?, static_type(v)?))).collect();
    // Inputs bound to a value are constants: nothing depends on them.
    let input_names: Vec<&str> =
        real_inputs.iter().map(|v| v.name.as_deref().unwrap_or("")).filter(|n| !opts.bind.iter().any(|(b, _)| b == n)).collect();
    let deps = input_dependencies(&graph.node, &order, &input_names);
    for i in order {
        let n = &graph.node[i];
        if opts.keep_going && n.input.iter().any(|x| failed_values.contains(x.as_str())) {
            // Reads what a failed node would have computed, of unknown type:
            // cannot be checked.
            failed_values.extend(n.output.iter().map(String::as_str));
            skipped.push(node_name(n, i));
            continue;
        }
        let op = n.op_type.as_deref().unwrap_or("");
        let name = node_name(n, i);
        let outputs: Vec<String> = n.output.iter().filter(|o| !o.is_empty()).cloned().collect();
        let fail = |reason: String| ConvertError::Node {
            node: name.clone(),
            op: op.to_string(),
            opset: m.opset,
            outputs: outputs.clone(),
            reason,
        };
        let mut inputs = Vec::with_capacity(n.input.len());
        for inp in &n.input {
            if inp.is_empty() {
                inputs.push(None);
            } else {
                let id = env
                    .get(inp)
                    .copied()
                    .ok_or_else(|| fail(format!("input {inp:?} is neither a graph input, an initializer nor any node's output")))?;
                inputs.push(Some(id));
            }
        }
        let n_outputs = n.output.iter().rposition(|o| !o.is_empty()).map_or(0, |p| p + 1);
        let node = N { name: name.clone(), op, proto: n, inputs, n_outputs, opset: m.opset, dir: &m.dir };
        let translate = ops::lookup(op).ok_or_else(|| fail("operator not supported".into()))?;
        let first_new = g.values.len();
        let nodes_before = g.nodes.len();
        let outs = match translate(&mut Ctx { g: &mut g }, &node) {
            Ok(outs) => outs,
            Err(reason) if opts.keep_going => {
                let reason = reason + &bind_hint(n, &deps, &input_names);
                failed.push(Unsupported { node: name.clone(), op: op.to_string(), domain: Some(("ai.onnx".into(), m.opset)), reason });
                for out in n.output.iter().filter(|o| !o.is_empty()) {
                    match inferred.get(out.as_str()) {
                        // A stand-in of the inferred type: its readers are checked.
                        Some((dtype, shape)) => {
                            let id = g.add_value(out.clone(), *dtype, shape.clone());
                            env.insert(out.clone(), id);
                        }
                        None => {
                            failed_values.insert(out);
                        }
                    }
                }
                continue;
            }
            Err(reason) => return Err(fail(reason + &bind_hint(n, &deps, &input_names))),
        };
        for (k, out_name) in n.output.iter().enumerate() {
            if out_name.is_empty() {
                continue;
            }
            let &id =
                outs.get(k).ok_or_else(|| fail(format!("output {k} ({out_name:?}) is not produced by jetrt's translation of this op")))?;
            if id >= first_new {
                g.values[id].name = out_name.clone();
            }
            env.insert(out_name.clone(), id);
        }
        if g.nodes.len() == nodes_before {
            if outs.iter().all(|&o| o < first_new) {
                stats.identities += 1;
            } else {
                stats.folded += 1;
            }
        }
    }

    if !failed.is_empty() {
        if !skipped.is_empty() {
            const NAMED: usize = 12;
            let more = if skipped.len() > NAMED { format!(" and {} more", skipped.len() - NAMED) } else { String::new() };
            failed.push(Unsupported {
                node: String::new(),
                op: "not checked".into(),
                domain: None,
                reason: format!(
                    "{} node(s) read what the nodes above compute, and the model stores no type for it (run ONNX shape \
                     inference on it to check them too): {}{more}",
                    skipped.len(),
                    skipped.iter().take(NAMED).map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        return Err(ConvertError::Unsupported { items: failed });
    }

    for o in &graph.output {
        let name = o.name.clone().unwrap_or_default();
        let id =
            env.get(&name).copied().ok_or_else(|| ConvertError::Graph(format!("graph output {name:?} is not produced by any node")))?;
        g.outputs.push((name, id));
    }
    Ok((g, stats))
}

/// The value of an attribute of type TENSOR or the `value_*` forms of
/// Constant.
pub(crate) fn constant_value(n: &N<'_>) -> Result<Tensor, String> {
    let a = n.proto.attribute.first().ok_or("Constant without a value")?;
    let kind = a.r#type.and_then(|t| AttributeType::try_from(t).ok());
    let name = a.name.as_deref().unwrap_or("");
    Ok(match (name, kind) {
        ("value", _) => {
            let t: &TensorProto = a.t.as_ref().ok_or("value attribute without a tensor")?;
            load_tensor(t, n.dir).map_err(|e| e.to_string())?
        }
        ("value_float", _) => Tensor::f32(vec![], vec![a.f.unwrap_or(0.0)]),
        ("value_floats", _) => Tensor::f32(vec![a.floats.len()], a.floats.clone()),
        ("value_int", _) => Tensor::i64(vec![], vec![a.i.unwrap_or(0)]),
        ("value_ints", _) => Tensor::i64(vec![a.ints.len()], a.ints.clone()),
        (other, _) => return Err(format!("Constant with attribute {other:?} is not supported")),
    })
}
