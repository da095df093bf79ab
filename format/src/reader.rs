//! Reading a `.jrt` file: every check happens here, once, before anything
//! runs ("validate at open, run blind").

use crate::error::{FormatError, Result};
use crate::header::Header;
use crate::op::{Meta, Op};
use crate::sections::{self, Sections};
use crate::tensors::{self, Storage, TensorRecord};
use crate::*;
use std::collections::BTreeMap;
use std::ops::Range;

/// A step of the validated plan; operand ranges index [`Decoded::operands`].
#[derive(Debug, Clone)]
pub struct Step {
    pub op: Op,
    pub inputs: Range<usize>,
    pub outputs: Range<usize>,
}

/// A whole validated file.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub header: Header,
    pub sections: Sections,
    pub metadata: Vec<(String, String)>,
    pub tensors: Vec<TensorRecord>,
    /// Arena offset of each tensor (meaningful for arena tensors only).
    pub arena_offsets: Vec<usize>,
    pub arena_bytes: usize,
    pub steps: Vec<Step>,
    pub operands: Vec<usize>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// Byte range of the weights section in the file.
    pub weights: Range<usize>,
    /// Compiled GPU kernels; ranges are within the file.
    pub kernels: Vec<kernels::KernelEntry>,
    /// Drift reference statistics, when the file has them.
    pub drift: Option<crate::drift::Reference>,
    /// Golden test vectors; ranges are within the file.
    pub golden: Vec<crate::golden::GoldenEntry>,
}

/// Largest arena a file may declare (256 TiB): far beyond any board, small
/// enough that offset arithmetic cannot overflow.
const MAX_ARENA: usize = 1 << 48;

/// Validates `file` whole: header, versions, section bounds and checksums,
/// every tensor, every step's operands and shapes, the memory plan (no two
/// tensors live at once share a byte) and the optional sections.
pub fn decode(file: &[u8]) -> Result<Decoded> {
    if cfg!(target_endian = "big") {
        return Err(FormatError::BigEndianHost);
    }
    let header = Header::decode(file)?;
    let sections = sections::decode(file, &header)?;
    let body = |kind| -> Result<&[u8]> { Ok(&file[sections.get(kind)?.range.clone()]) };
    let metadata = metadata::decode(body(SectionKind::Metadata)?)?;
    let weights = sections.get(SectionKind::Weights)?.range.clone();
    let tensors = tensors::decode(body(SectionKind::Tensors)?, weights.len())?;
    let (arena_bytes, entries) = memplan::decode(body(SectionKind::MemoryPlan)?)?;
    let arena_offsets = check_memory_plan(&tensors, arena_bytes, &entries)?;
    let plan = plan::decode(body(SectionKind::Plan)?, MAX_STEPS)?;
    let kernels = match sections.get(SectionKind::Kernels) {
        Ok(sec) => kernels::decode(&file[sec.range.clone()])?
            .into_iter()
            .map(|mut e| {
                e.range = sec.range.start + e.range.start..sec.range.start + e.range.end;
                e
            })
            .collect(),
        Err(_) => Vec::new(),
    };

    let n = tensors.len();
    let index = |i: u32, what: &str| -> Result<usize> {
        let i = i as usize;
        if i < n {
            Ok(i)
        } else {
            Err(FormatError::BadMemoryPlan { reason: format!("{what} refers to tensor #{i}, but there are {n}") })
        }
    };
    let inputs = plan.inputs.iter().map(|&i| index(i, "a model input")).collect::<Result<Vec<_>>>()?;
    let outputs = plan.outputs.iter().map(|&i| index(i, "a model output")).collect::<Result<Vec<_>>>()?;
    let operands = plan.operands.iter().map(|&i| index(i, "a step operand")).collect::<Result<Vec<_>>>()?;

    // Definition step of each tensor: weights are always there (-1), model
    // inputs are written before the first step (-1), every other arena
    // tensor by exactly one step.
    const UNDEFINED: isize = isize::MIN;
    let mut def = vec![UNDEFINED; n];
    for (t, rec) in tensors.iter().enumerate() {
        if let Storage::Weights { .. } = rec.storage {
            def[t] = -1;
        }
    }
    for (k, &t) in inputs.iter().enumerate() {
        let rec = &tensors[t];
        if rec.storage != Storage::Arena {
            return Err(FormatError::BadTensor {
                index: t,
                name: rec.name.clone(),
                reason: format!("model input #{k} is not in the arena"),
            });
        }
        if def[t] != UNDEFINED {
            return Err(FormatError::BadTensor { index: t, name: rec.name.clone(), reason: "listed twice as a model input".into() });
        }
        def[t] = -1;
    }
    let mut last_use = vec![-1isize; n];
    let mut steps = Vec::with_capacity(plan.steps.len());
    let mut metas: Vec<Meta> = Vec::new();
    let mut out_metas: Vec<Meta> = Vec::new();
    for (s, (op, ins, outs)) in plan.steps.into_iter().enumerate() {
        let bad = |reason: String| FormatError::BadStep { step: s, op: op.name(), reason };
        let (lo, hi) = op.kind().inputs();
        if ins.len() < lo || ins.len() > hi {
            return Err(bad(format!("has {} inputs, takes {lo}..={hi}", ins.len())));
        }
        if outs.len() > MAX_STEP_OUTPUTS {
            return Err(bad(format!("has {} outputs, at most {MAX_STEP_OUTPUTS} are allowed", outs.len())));
        }
        metas.clear();
        for &t in &operands[ins.clone()] {
            if def[t] == UNDEFINED || def[t] >= s as isize {
                return Err(bad(format!("reads tensor {:?} before any step writes it", tensors[t].name)));
            }
            last_use[t] = s as isize;
            metas.push(Meta { dtype: tensors[t].dtype, shape: tensors[t].shape });
        }
        out_metas.clear();
        for &t in &operands[outs.clone()] {
            let rec = &tensors[t];
            if rec.storage != Storage::Arena {
                return Err(bad(format!("writes tensor {:?}, which is not in the arena", rec.name)));
            }
            if def[t] != UNDEFINED {
                return Err(bad(format!("writes tensor {:?}, which is already written (by a step or as a model input)", rec.name)));
            }
            def[t] = s as isize;
            out_metas.push(Meta { dtype: rec.dtype, shape: rec.shape });
        }
        op.check(&metas, &out_metas).map_err(bad)?;
        steps.push(Step { op, inputs: ins, outputs: outs });
    }
    let end = steps.len() as isize;
    for &t in &outputs {
        if def[t] == UNDEFINED {
            return Err(FormatError::BadTensor {
                index: t,
                name: tensors[t].name.clone(),
                reason: "model output that no step writes".into(),
            });
        }
        last_use[t] = end;
    }
    // Inputs stay intact for the whole run, so a session can run again on
    // the inputs it was given (`run_loaded` after `set_input`).
    for &t in &inputs {
        last_use[t] = end;
    }
    check_liveness(&tensors, &arena_offsets, &def, &last_use, steps.len())?;
    let mut d = Decoded {
        drift: None,
        golden: Vec::new(),
        kernels,
        header,
        sections,
        metadata,
        tensors,
        arena_offsets,
        arena_bytes,
        steps,
        operands,
        inputs,
        outputs,
        weights,
    };
    if let Ok(sec) = d.sections.get(SectionKind::Drift) {
        let range = sec.range.clone();
        let watched = float_io(&d).map(|t| (t, d.tensors[t].shape.numel().unwrap_or(0))).collect::<Vec<_>>();
        d.drift = Some(crate::drift::decode(&file[range], &watched)?);
    }
    if let Ok(sec) = d.sections.get(SectionKind::Golden) {
        let range = sec.range.clone();
        let ins: Vec<usize> = d.inputs.iter().map(|&t| d.tensors[t].nbytes).collect();
        let outs: Vec<(usize, usize)> = d.outputs.iter().map(|&t| (d.tensors[t].nbytes, d.tensors[t].dtype.size())).collect();
        d.golden = crate::golden::decode(&file[range.clone()], &ins, &outs)?.into_iter().map(|e| e.shifted(range.start)).collect();
    }
    Ok(d)
}

/// The float32 model inputs and outputs of `d`, each once: what a drift
/// reference may describe.
pub fn float_io(d: &Decoded) -> impl Iterator<Item = usize> + '_ {
    let io = d.inputs.iter().chain(&d.outputs).copied();
    io.enumerate()
        .filter(move |&(k, t)| d.tensors[t].dtype == DType::F32 && !d.inputs.iter().chain(&d.outputs).take(k).any(|&u| u == t))
        .map(|(_, t)| t)
}

/// Every arena tensor has exactly one offset, aligned, inside the arena.
fn check_memory_plan(tensors: &[TensorRecord], arena_bytes: usize, entries: &[(usize, usize)]) -> Result<Vec<usize>> {
    if arena_bytes > MAX_ARENA {
        return Err(FormatError::BadMemoryPlan { reason: format!("arena of {arena_bytes} bytes is absurdly large") });
    }
    let mut offsets = vec![usize::MAX; tensors.len()];
    for &(t, off) in entries {
        let rec = tensors
            .get(t)
            .ok_or_else(|| FormatError::BadMemoryPlan { reason: format!("entry for tensor #{t}, but there are {}", tensors.len()) })?;
        if rec.storage != Storage::Arena {
            return Err(FormatError::BadMemoryPlan { reason: format!("tensor {:?} is a weight but has an arena offset", rec.name) });
        }
        if offsets[t] != usize::MAX {
            return Err(FormatError::BadMemoryPlan { reason: format!("tensor {:?} has two arena offsets", rec.name) });
        }
        if off % TENSOR_ALIGN != 0 {
            return Err(FormatError::BadMemoryPlan {
                reason: format!("tensor {:?} at arena offset {off}, not a multiple of {TENSOR_ALIGN}", rec.name),
            });
        }
        match off.checked_add(rec.nbytes) {
            Some(end) if end <= arena_bytes => {}
            _ => {
                return Err(FormatError::BadMemoryPlan {
                    reason: format!(
                        "tensor {:?} at {off}..{off}+{} lies past the end of the arena ({arena_bytes} bytes)",
                        rec.name, rec.nbytes
                    ),
                })
            }
        }
        offsets[t] = off;
    }
    for (t, rec) in tensors.iter().enumerate() {
        if rec.storage == Storage::Arena && offsets[t] == usize::MAX {
            return Err(FormatError::BadMemoryPlan { reason: format!("arena tensor {:?} has no offset", rec.name) });
        }
    }
    Ok(offsets)
}

/// No two arena tensors that are live at the same time share a byte.
///
/// Sweeps the steps in order, keeping the live tensors in a map ordered by
/// offset; since the live set never overlaps, checking a new tensor against
/// its two neighbours suffices (O(n log n), whatever the file says).
fn check_liveness(tensors: &[TensorRecord], offsets: &[usize], def: &[isize], last: &[isize], n_steps: usize) -> Result<()> {
    // Buckets by definition and by last use, index = step + 1 (so -1 → 0).
    let mut born: Vec<Vec<usize>> = vec![Vec::new(); n_steps + 2];
    let mut dies: Vec<Vec<usize>> = vec![Vec::new(); n_steps + 2];
    for (t, rec) in tensors.iter().enumerate() {
        if rec.storage != Storage::Arena || rec.nbytes == 0 || def[t] == isize::MIN {
            continue;
        }
        let end = last[t].max(def[t]);
        born[(def[t] + 1) as usize].push(t);
        dies[(end + 1) as usize].push(t);
    }
    let mut live: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for slot in 0..n_steps + 2 {
        for &t in &born[slot] {
            let (start, end) = (offsets[t], offsets[t] + tensors[t].nbytes);
            let clash = live
                .range(..=start)
                .next_back()
                .filter(|(_, &(e, _))| e > start)
                .or_else(|| live.range(start..).next().filter(|(&s, _)| s < end))
                .map(|(_, &(_, other))| other);
            if let Some(other) = clash {
                return Err(FormatError::ArenaOverlap {
                    a: tensors[other].name.clone(),
                    b: tensors[t].name.clone(),
                    step: slot.saturating_sub(1),
                });
            }
            live.insert(start, (end, t));
        }
        for &t in &dies[slot] {
            live.remove(&offsets[t]);
        }
    }
    Ok(())
}
