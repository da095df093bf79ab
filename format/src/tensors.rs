//! The tensors section: one fixed-size record per tensor, then the names.

use super::bytes::{Reader, Writer};
use super::*;
use crate::error::{FormatError, Result};

pub(crate) const TENSOR_RECORD_LEN: usize = 96;

/// Where a tensor's bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In the session's arena, at the offset the memory plan gives.
    Arena,
    /// In the weights section, at this byte offset from its start.
    Weights { offset: usize },
}

/// A decoded, validated tensor.
#[derive(Debug, Clone)]
pub struct TensorRecord {
    pub name: String,
    pub dtype: DType,
    pub shape: Shape,
    pub storage: Storage,
    pub nbytes: usize,
}

pub(crate) fn encode(tensors: &[(String, DType, Vec<usize>, Storage)]) -> Vec<u8> {
    let mut names = Vec::new();
    let mut w = Writer::default();
    w.u32(tensors.len() as u32);
    w.u32(TENSOR_RECORD_LEN as u32);
    let names_len: usize = tensors.iter().map(|t| t.0.len()).sum();
    w.u32(names_len as u32);
    w.u32(0);
    for (name, dtype, dims, storage) in tensors {
        w.u32(names.len() as u32);
        w.u32(name.len() as u32);
        names.extend_from_slice(name.as_bytes());
        w.u8(*dtype as u8);
        w.u8(dims.len() as u8);
        let (code, offset) = match storage {
            Storage::Arena => (1u8, 0usize),
            Storage::Weights { offset } => (2u8, *offset),
        };
        w.u8(code);
        w.u8(0);
        w.u32(0);
        for i in 0..MAX_RANK {
            w.u64(dims.get(i).copied().unwrap_or(0) as u64);
        }
        w.u64(offset as u64);
        let numel: usize = dims.iter().product();
        w.u64((numel * dtype.size()) as u64);
    }
    w.buf.extend_from_slice(&names);
    w.buf
}

/// Decodes and validates every record: dtype, rank, extents (no overflow),
/// byte count, name, and for weights the placement inside the weights
/// section (`weights_len` bytes).
pub(crate) fn decode(data: &[u8], weights_len: usize) -> Result<Vec<TensorRecord>> {
    let mut r = Reader::new(SectionKind::Tensors, data);
    let count = r.count("tensor count")?;
    let rec_len = r.count("tensor record length")?;
    let names_len = r.count("names length")?;
    let reserved = r.u32("reserved")?;
    if rec_len != TENSOR_RECORD_LEN || reserved != 0 {
        return Err(r.bad("tensor record length / reserved word", rec_len as u64, format!("{TENSOR_RECORD_LEN} / 0")));
    }
    if count > MAX_TENSORS {
        return Err(r.bad("tensor count", count as u64, format!("at most {MAX_TENSORS}")));
    }
    let names_at = 16 + count * TENSOR_RECORD_LEN;
    let names_end = names_at.checked_add(names_len).filter(|&e| e <= data.len());
    let Some(names_end) = names_end else {
        return Err(FormatError::Truncated {
            kind: SectionKind::Tensors,
            what: "tensor records and names",
            offset: 16,
            need: (count * TENSOR_RECORD_LEN + names_len) as u64,
            len: data.len() as u64,
        });
    };
    let names = &data[names_at..names_end];
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let name_off = r.count("name offset")?;
        let name_len = r.count("name length")?;
        let code = r.u8("dtype")?;
        let rank = r.u8("rank")? as usize;
        let storage_code = r.u8("storage")?;
        let flags = r.u8("flags")?;
        let reserved = r.u32("reserved")?;
        let mut dims = [0u64; MAX_RANK];
        for d in dims.iter_mut() {
            *d = r.u64("dimension")?;
        }
        let offset = r.u64("offset")?;
        let nbytes = r.u64("byte count")?;
        let name = name_off
            .checked_add(name_len)
            .and_then(|end| names.get(name_off..end))
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| FormatError::BadTensor {
                index,
                name: "?".into(),
                reason: format!("name {name_off}+{name_len} is outside the names ({names_len} bytes) or not UTF-8"),
            })?
            .to_string();
        let bad = |reason: String| FormatError::BadTensor { index, name: name.clone(), reason };
        let dtype = DType::from_code(code).ok_or(FormatError::UnknownDType { index, code })?;
        if flags != 0 || reserved != 0 {
            return Err(bad(format!("flags {flags} / reserved {reserved}, expected 0")));
        }
        if rank > MAX_RANK {
            return Err(bad(format!("rank {rank} exceeds {MAX_RANK}")));
        }
        if dims[rank..].iter().any(|&d| d != 0) {
            return Err(bad("dimensions beyond the rank are not zero".into()));
        }
        let mut d = [0usize; MAX_RANK];
        for i in 0..rank {
            d[i] = usize::try_from(dims[i]).map_err(|_| bad(format!("dimension {} is absurd", dims[i])))?;
        }
        let shape = Shape::new(&d[..rank]).ok_or_else(|| bad("bad rank".into()))?;
        let bytes = shape
            .numel()
            .and_then(|n| n.checked_mul(dtype.size()))
            .filter(|&b| (b as u64) < (1u64 << 48))
            .ok_or_else(|| bad(format!("shape {:?} of {:?} is absurdly large", shape.dims(), dtype)))?;
        if nbytes != bytes as u64 {
            return Err(bad(format!("declares {nbytes} bytes, its shape {:?} of {:?} needs {bytes}", shape.dims(), dtype)));
        }
        let storage = match storage_code {
            1 => {
                if offset != 0 {
                    return Err(bad(format!("arena tensor with a weights offset {offset}")));
                }
                Storage::Arena
            }
            2 => {
                let off = usize::try_from(offset).map_err(|_| bad(format!("weights offset {offset} is absurd")))?;
                if off % TENSOR_ALIGN != 0 {
                    return Err(bad(format!("weights offset {off} is not a multiple of {TENSOR_ALIGN}")));
                }
                match off.checked_add(bytes) {
                    Some(end) if end <= weights_len => {}
                    _ => {
                        return Err(bad(format!(
                            "weights {off}..{off}+{bytes} lie past the end of the weights section ({weights_len} bytes)"
                        )))
                    }
                }
                Storage::Weights { offset: off }
            }
            c => return Err(bad(format!("unknown storage code {c}"))),
        };
        out.push(TensorRecord { name, dtype, shape, storage, nbytes: bytes });
    }
    Ok(out)
}
