//! `jetc inspect`: what a `.jrt` file holds, gathered once into
//! [`Inspection`], which `--json` prints as it is and the text output
//! renders, so the two always say the same things.

use anyhow::Result;
use jetrt::Model;
use jetrt_boards::human_bytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub file: String,
    pub format_version: String,
    pub validate_ms: f64,
    pub file_bytes: usize,
    pub metadata: BTreeMap<String, String>,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    pub steps: usize,
    /// Steps per op.
    pub ops: BTreeMap<&'static str, usize>,
    pub weights_bytes: usize,
    pub arena_bytes: usize,
    pub intermediate_bytes: usize,
    pub scratch_bytes_per_thread: usize,
    pub scratch_bytes_shared: usize,
    /// Threads of a default session here, and what it allocates.
    pub threads: usize,
    pub session_bytes: usize,
    /// Weight bytes by the op that reads them, largest first.
    pub weights_by_op: Vec<(&'static str, u64)>,
    pub sections: Vec<Section>,
    pub golden_vectors: usize,
    /// What the golden vectors take in the file (their section).
    pub golden_bytes: u64,
    pub drift_reference: Option<DriftReference>,
    pub cuda_kernels: Vec<CudaKernels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boards: Option<Vec<Board>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuda_fallbacks: Option<Vec<Fallback>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<PlanStep>>,
}

#[derive(Debug, Serialize)]
pub struct Io {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct Section {
    pub kind: String,
    pub offset: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct DriftReference {
    pub samples: usize,
    pub tensors: Vec<DriftTensor>,
}

#[derive(Debug, Serialize)]
pub struct DriftTensor {
    pub name: String,
    pub channels: usize,
    pub features: Vec<&'static str>,
    pub classes: usize,
}

#[derive(Debug, Serialize)]
pub struct CudaKernels {
    pub arch: String,
    pub nvrtc: String,
    pub bytes: usize,
    pub source_hash: String,
}

#[derive(Debug, Serialize)]
pub struct Board {
    pub board: String,
    pub device: &'static str,
    pub needs_bytes: u64,
    pub file_bytes: u64,
    pub session_bytes: u64,
    pub gpu_bytes: u64,
    pub spare_bytes: u64,
    pub fits: bool,
}

#[derive(Debug, Serialize)]
pub struct Fallback {
    pub step: usize,
    pub op: &'static str,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct PlanStep {
    pub op: &'static str,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// What to gather besides the basics.
#[derive(Debug, Clone, Default)]
pub struct Wanted<'a> {
    /// Every step with its operands.
    pub steps: bool,
    /// The steps a CUDA session with these options would run on the CPU.
    pub cuda: Option<&'a jetrt::SessionOptions>,
    /// The model's memory on these boards.
    pub boards: Option<Vec<jetrt_boards::profiles::Budget>>,
}

/// Opens `file` (validating it) and gathers what it holds.
pub fn inspect(file: &Path, model: &Model, validate_ms: f64, wanted: Wanted<'_>) -> Result<Inspection> {
    let info = model.info();
    let all = model.steps();
    let mut ops = BTreeMap::<&'static str, usize>::new();
    for s in &all {
        *ops.entry(s.op).or_default() += 1;
    }
    let mut by_op = BTreeMap::<&'static str, u64>::new();
    let mut seen = std::collections::HashSet::new();
    for st in &all {
        for i in &st.inputs {
            if let Some(w) = model.weight(i).filter(|_| seen.insert(i.clone())) {
                *by_op.entry(st.op).or_default() += w.len() as u64;
            }
        }
    }
    let mut weights_by_op: Vec<(&'static str, u64)> = by_op.into_iter().collect();
    weights_by_op.sort_by_key(|e| std::cmp::Reverse(e.1));
    let io = |v: &[jetrt::TensorInfo]| {
        v.iter().map(|t| Io { name: t.name.clone(), dtype: t.dtype.numpy_name(), shape: t.shape.clone() }).collect()
    };
    let threads = jetrt::available_threads();
    let m = info.memory;
    Ok(Inspection {
        file: file.display().to_string(),
        format_version: format!("{}.{}", info.format_version.0, info.format_version.1),
        validate_ms,
        file_bytes: m.file_bytes,
        metadata: info.metadata.iter().cloned().collect(),
        inputs: io(&info.inputs),
        outputs: io(&info.outputs),
        steps: all.len(),
        ops,
        weights_bytes: m.weights_bytes,
        arena_bytes: m.arena_bytes,
        intermediate_bytes: m.intermediate_bytes,
        scratch_bytes_per_thread: m.scratch_bytes_per_thread,
        scratch_bytes_shared: m.scratch_bytes_shared,
        threads,
        session_bytes: m.session_bytes(threads),
        weights_by_op,
        sections: info.sections.iter().map(|s| Section { kind: format!("{:?}", s.kind), offset: s.offset, bytes: s.len }).collect(),
        golden_vectors: info.golden_vectors,
        golden_bytes: info.sections.iter().filter(|s| s.kind == jetrt::SectionKind::Golden).map(|s| s.len).sum(),
        drift_reference: model.drift_reference().map(|r| DriftReference {
            samples: r.samples,
            tensors: r
                .tensors
                .iter()
                .map(|t| DriftTensor {
                    name: model.tensor_name(t.tensor).unwrap_or("?").to_string(),
                    channels: t.channels,
                    features: t.features.iter().map(|f| f.feature.name()).collect(),
                    classes: t.classes.len(),
                })
                .collect(),
        }),
        cuda_kernels: info
            .kernel_images
            .iter()
            .map(|k| CudaKernels {
                arch: format!("sm_{}", k.arch),
                nvrtc: format!("{}.{}", k.nvrtc.0, k.nvrtc.1),
                bytes: k.bytes,
                source_hash: format!("{:016x}", k.source_hash),
            })
            .collect(),
        boards: wanted.boards.map(|b| {
            b.iter()
                .map(|b| Board {
                    board: b.board.to_string(),
                    device: if b.needs.gpu_bytes > 0 { "cuda" } else { "cpu" },
                    needs_bytes: b.needs_bytes(),
                    file_bytes: b.needs.file_bytes,
                    session_bytes: b.needs.session_bytes,
                    gpu_bytes: b.needs.gpu_bytes,
                    spare_bytes: b.spare_bytes,
                    fits: b.fits(),
                })
                .collect()
        }),
        cuda_fallbacks: wanted
            .cuda
            .map(|o| model.cuda_fallbacks(o).into_iter().map(|f| Fallback { step: f.step, op: f.op, reason: f.reason }).collect()),
        plan: wanted.steps.then(|| all.into_iter().map(|s| PlanStep { op: s.op, inputs: s.inputs, outputs: s.outputs }).collect()),
    })
}

impl Inspection {
    /// The text `jetc inspect` prints without `--json`.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let _ = self.write_text(&mut o);
        o
    }

    fn write_text(&self, o: &mut String) -> std::fmt::Result {
        let hb = |b: u64| human_bytes(b);
        writeln!(
            o,
            "{}: jetrt format {}, {} bytes, validated in {:.1} ms",
            self.file, self.format_version, self.file_bytes, self.validate_ms
        )?;
        for (k, v) in &self.metadata {
            writeln!(o, "  {k}: {v}")?;
        }
        for (title, list) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            writeln!(o, "{title}:")?;
            for t in list {
                writeln!(o, "  {} {} {:?}", t.name, t.dtype, t.shape)?;
            }
        }
        let opl: Vec<String> = self.ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
        writeln!(o, "plan: {} steps: {}", self.steps, opl.join(", "))?;
        writeln!(o, "memory:")?;
        writeln!(
            o,
            "  weights        {:>12}  ({} bytes, used in place from the mapping)",
            hb(self.weights_bytes as u64),
            self.weights_bytes
        )?;
        writeln!(o, "  arena          {:>12}  ({} bytes, allocated once per session)", hb(self.arena_bytes as u64), self.arena_bytes)?;
        writeln!(o, "  intermediates  {:>12}  (sum of all intermediate tensors, without reuse)", hb(self.intermediate_bytes as u64))?;
        writeln!(o, "  scratch        {:>12}  per thread", hb(self.scratch_bytes_per_thread as u64))?;
        if self.scratch_bytes_shared > 0 {
            writeln!(o, "  shared scratch {:>12}  once per session (transformed weights)", hb(self.scratch_bytes_shared as u64))?;
        }
        let parts: Vec<String> = self.weights_by_op.iter().map(|(op, b)| format!("{op} {}", hb(*b))).collect();
        writeln!(o, "  weights by op  {}", parts.join(", "))?;
        writeln!(o, "  session total  {:>12}  with {} threads (arena + scratch)", hb(self.session_bytes as u64), self.threads)?;
        let sections: Vec<String> = self.sections.iter().map(|s| format!("{} {}", s.kind, hb(s.bytes))).collect();
        writeln!(o, "sections: {}", sections.join(", "))?;
        if let Some(boards) = &self.boards {
            writeln!(
                o,
                "memory on boards (file + arena + scratch for every core, + device arena, kernels and CUDA context \
                 where the GPU runs it; against DRAM less the OS's share):"
            )?;
            for b in boards {
                writeln!(
                    o,
                    "  {:<22} {:<4} needs {:>10} of {:>10} spare: {}",
                    b.board,
                    b.device,
                    hb(b.needs_bytes),
                    hb(b.spare_bytes),
                    if b.fits { "fits" } else { "DOES NOT FIT" }
                )?;
            }
        }
        writeln!(o, "golden vectors: {}, {} (jetrt verify runs them)", self.golden_vectors, hb(self.golden_bytes))?;
        match &self.drift_reference {
            Some(r) => {
                let names: Vec<&str> = r.tensors.iter().map(|t| t.name.as_str()).collect();
                writeln!(o, "drift reference: {} samples for {} (jetrt drift, jetrt run/bench --monitor)", r.samples, names.join(", "))?
            }
            None => writeln!(o, "drift reference: none (jetc convert --drift-ref DIR or --calib DIR stores one)")?,
        }
        if !self.cuda_kernels.is_empty() {
            let list: Vec<String> =
                self.cuda_kernels.iter().map(|k| format!("{} ({}, NVRTC {})", k.arch, hb(k.bytes as u64), k.nvrtc)).collect();
            writeln!(o, "cuda kernels: {}", list.join(", "))?;
        }
        if let Some(fb) = &self.cuda_fallbacks {
            writeln!(o, "cuda: {} of {} steps run on the GPU", self.steps - fb.len(), self.steps)?;
            if fb.is_empty() {
                writeln!(o, "  every step has a GPU kernel: the plan is replayed as one CUDA graph")?;
            }
            for f in fb {
                writeln!(o, "  step {:4} {:<16} falls back to the CPU (operands copied through host memory): {}", f.step, f.op, f.reason)?;
            }
        }
        if let Some(plan) = &self.plan {
            writeln!(o, "steps:")?;
            for (i, s) in plan.iter().enumerate() {
                writeln!(o, "  {i:4} {:<16} {:?} -> {:?}", s.op, s.inputs, s.outputs)?;
            }
        }
        Ok(())
    }
}
