//! The metadata section: ordered key/value strings (model name, producer, ...).

use super::bytes::{Reader, Writer};
use super::SectionKind;
use crate::error::Result;

pub(crate) fn encode(entries: &[(String, String)]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(entries.len() as u32);
    for (k, v) in entries {
        w.string(k);
        w.string(v);
    }
    w.buf
}

pub(crate) fn decode(data: &[u8]) -> Result<Vec<(String, String)>> {
    let mut r = Reader::new(SectionKind::Metadata, data);
    let count = r.count("metadata entry count")?;
    // Each entry takes at least 8 bytes: bound the count before allocating.
    if count > data.len() / 8 {
        return Err(r.bad(
            "metadata entry count",
            count as u64,
            format!("at most {} for a section of {} bytes", data.len() / 8, data.len()),
        ));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let k = r.string("metadata key")?.to_string();
        let v = r.string("metadata value")?.to_string();
        out.push((k, v));
    }
    Ok(out)
}
