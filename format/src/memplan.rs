//! The memory-plan section: arena size and each arena tensor's offset.

use super::bytes::{Reader, Writer};
use super::*;
use crate::error::Result;

pub(crate) const ENTRY_LEN: usize = 16;

pub(crate) fn encode(arena_bytes: u64, offsets: &[(u32, u64)]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(arena_bytes);
    w.u32(TENSOR_ALIGN as u32);
    w.u32(offsets.len() as u32);
    for &(t, off) in offsets {
        w.u32(t);
        w.u32(0);
        w.u64(off);
    }
    w.buf
}

/// (arena bytes, [(tensor index, offset)]); ranges are checked by the reader
/// once tensors are known.
pub(crate) fn decode(data: &[u8]) -> Result<(usize, Vec<(usize, usize)>)> {
    let mut r = Reader::new(SectionKind::MemoryPlan, data);
    let arena = r.size("arena bytes")?;
    let align = r.count("alignment")?;
    if align != TENSOR_ALIGN {
        // The alignment is a constant of the format; a file that says
        // otherwise was not written by a conforming writer.
        return Err(r.bad("arena alignment", align as u64, format!("{TENSOR_ALIGN} (a constant of the format)")));
    }
    let count = r.count("entry count")?;
    if count.checked_mul(ENTRY_LEN).is_none_or(|n| n > data.len().saturating_sub(16)) {
        return Err(r.bad("memory plan entry count", count as u64, format!("at most {}", data.len().saturating_sub(16) / ENTRY_LEN)));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let t = r.count("tensor index")?;
        let reserved = r.u32("reserved")?;
        if reserved != 0 {
            return Err(r.bad("reserved word of a memory plan entry", reserved.into(), "0"));
        }
        out.push((t, r.size("arena offset")?));
    }
    Ok((arena, out))
}
