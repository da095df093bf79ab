//! The plan section: model inputs and outputs, the ordered steps, their
//! operands and parameters.
//!
//! Parameters are a flat array of u64 words, laid out per op by
//! [`crate::params`].

use super::bytes::{Reader, Writer};
use super::SectionKind;
use crate::error::{FormatError, Result};
use crate::op::Op;
use crate::params;

/// One step as stored: op code and ranges into the operand and parameter
/// arrays.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepRecord {
    pub code: u32,
    pub in_start: u32,
    pub in_count: u32,
    pub out_start: u32,
    pub out_count: u32,
    pub param_start: u32,
    pub param_count: u32,
}

pub(crate) const STEP_RECORD_LEN: usize = 32;

/// The decoded plan section (operand indices not yet checked against the
/// tensor table).
pub(crate) struct PlanSection {
    pub inputs: Vec<u32>,
    pub outputs: Vec<u32>,
    pub steps: Vec<(Op, std::ops::Range<usize>, std::ops::Range<usize>)>,
    pub operands: Vec<u32>,
}

pub(crate) fn encode(inputs: &[u32], outputs: &[u32], steps: &[(Op, Vec<u32>, Vec<u32>)]) -> Vec<u8> {
    let mut operands = Vec::new();
    let mut params = Vec::new();
    let mut records = Vec::new();
    for (op, ins, outs) in steps {
        let in_start = operands.len() as u32;
        operands.extend_from_slice(ins);
        let out_start = operands.len() as u32;
        operands.extend_from_slice(outs);
        let param_start = params.len() as u32;
        params::encode(op, &mut params);
        records.push(StepRecord {
            code: op.kind().code(),
            in_start,
            in_count: ins.len() as u32,
            out_start,
            out_count: outs.len() as u32,
            param_start,
            param_count: params.len() as u32 - param_start,
        });
    }
    let mut w = Writer::default();
    w.u32(inputs.len() as u32);
    w.u32(outputs.len() as u32);
    w.u32(records.len() as u32);
    w.u32(operands.len() as u32);
    w.u32(params.len() as u32);
    w.u32(0);
    inputs.iter().chain(outputs).for_each(|&v| w.u32(v));
    for r in &records {
        for v in [r.code, 0, r.in_start, r.in_count, r.out_start, r.out_count, r.param_start, r.param_count] {
            w.u32(v);
        }
    }
    operands.iter().for_each(|&v| w.u32(v));
    w.pad_to(8);
    params.iter().for_each(|&v| w.u64(v));
    w.buf
}

pub(crate) fn decode(data: &[u8], max_steps: usize) -> Result<PlanSection> {
    let mut r = Reader::new(SectionKind::Plan, data);
    let n_in = r.count("input count")?;
    let n_out = r.count("output count")?;
    let n_steps = r.count("step count")?;
    let n_operands = r.count("operand count")?;
    let n_params = r.count("parameter count")?;
    let reserved = r.u32("reserved")?;
    if reserved != 0 {
        return Err(r.bad("reserved word of the plan header", reserved.into(), "0"));
    }
    if n_steps > max_steps {
        return Err(r.bad("step count", n_steps as u64, format!("at most {max_steps}")));
    }
    // Every count is bounded by the section length before anything is
    // allocated, so a hostile count cannot make us reserve gigabytes.
    let need = (n_in as u64 + n_out as u64 + n_operands as u64) * 4 + n_steps as u64 * STEP_RECORD_LEN as u64 + n_params as u64 * 8;
    if need > r.len() as u64 {
        return Err(FormatError::Truncated {
            kind: SectionKind::Plan,
            what: "plan arrays",
            offset: r.pos() as u64,
            need,
            len: r.len() as u64,
        });
    }
    let mut inputs = Vec::with_capacity(n_in);
    for _ in 0..n_in {
        inputs.push(r.u32("model input index")?);
    }
    let mut outputs = Vec::with_capacity(n_out);
    for _ in 0..n_out {
        outputs.push(r.u32("model output index")?);
    }
    let mut records = Vec::with_capacity(n_steps);
    for _ in 0..n_steps {
        let code = r.u32("op code")?;
        let flags = r.u32("step flags")?;
        if flags != 0 {
            return Err(r.bad(format!("flags of step #{}", records.len()), flags.into(), "0"));
        }
        records.push(StepRecord {
            code,
            in_start: r.u32("step input start")?,
            in_count: r.u32("step input count")?,
            out_start: r.u32("step output start")?,
            out_count: r.u32("step output count")?,
            param_start: r.u32("step parameter start")?,
            param_count: r.u32("step parameter count")?,
        });
    }
    let mut operands = Vec::with_capacity(n_operands);
    for _ in 0..n_operands {
        operands.push(r.u32("operand")?);
    }
    let aligned = r.pos().next_multiple_of(8);
    r.seek(aligned, "parameter alignment")?;
    let mut params = Vec::with_capacity(n_params);
    for _ in 0..n_params {
        params.push(r.u64("parameter")?);
    }
    let mut steps = Vec::with_capacity(n_steps);
    for (i, rec) in records.iter().enumerate() {
        let range = |start: u32, count: u32, len: usize, what: &str| -> Result<std::ops::Range<usize>> {
            let (s, c) = (start as usize, count as usize);
            match s.checked_add(c) {
                Some(e) if e <= len => Ok(s..e),
                _ => {
                    Err(FormatError::BadStep { step: i, op: "?", reason: format!("{what} {s}..{s}+{c} past the end of the array ({len})") })
                }
            }
        };
        let ins = range(rec.in_start, rec.in_count, n_operands, "inputs")?;
        let outs = range(rec.out_start, rec.out_count, n_operands, "outputs")?;
        let ps = range(rec.param_start, rec.param_count, n_params, "parameters")?;
        let op = params::decode(i, rec.code, &params[ps])?;
        steps.push((op, ins, outs));
    }
    Ok(PlanSection { inputs, outputs, steps, operands })
}
