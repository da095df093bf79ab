//! The section table: where each section lies, and its checksum.

use super::bytes::{Reader, Writer};
use super::checksum::checksum;
use super::header::Header;
use super::*;
use crate::error::{FormatError, Result};
use std::ops::Range;

/// One validated section: its kind and byte range in the file.
#[derive(Debug, Clone)]
pub struct Section {
    pub kind: SectionKind,
    pub range: Range<usize>,
    pub checksum: u64,
}

/// All known sections of a file, validated.
#[derive(Debug, Clone, Default)]
pub struct Sections {
    pub list: Vec<Section>,
    /// Sections of unknown kind that were marked optional and skipped.
    pub skipped: usize,
}

impl Sections {
    pub fn get(&self, kind: SectionKind) -> Result<&Section> {
        self.list.iter().find(|s| s.kind == kind).ok_or(FormatError::MissingSection { kind })
    }
}

pub(crate) struct Entry {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub len: u64,
    pub checksum: u64,
}

pub(crate) fn encode_table(entries: &[Entry]) -> Vec<u8> {
    let mut w = Writer::default();
    for e in entries {
        w.u32(e.kind);
        w.u32(e.flags);
        w.u64(e.offset);
        w.u64(e.len);
        w.u64(e.checksum);
    }
    w.buf
}

/// Reads and validates the section table and every section's bounds,
/// alignment and checksum.
pub(crate) fn decode(file: &[u8], header: &Header) -> Result<Sections> {
    let file_len = file.len() as u64;
    let count = header.section_count as usize;
    if count > MAX_SECTIONS {
        return Err(FormatError::HeaderField { field: "section_count", found: count as u64, expected: format!("at most {MAX_SECTIONS}") });
    }
    let table_len = (count * SECTION_ENTRY_LEN) as u64;
    let table_end = header.table_offset.checked_add(table_len).filter(|&e| e <= file_len);
    let Some(table_end) = table_end else {
        return Err(FormatError::HeaderField {
            field: "table_offset",
            found: header.table_offset,
            expected: format!("a section table of {table_len} bytes inside the file ({file_len} bytes)"),
        });
    };
    if header.table_offset < HEADER_LEN as u64 || !header.table_offset.is_multiple_of(8) {
        return Err(FormatError::HeaderField {
            field: "table_offset",
            found: header.table_offset,
            expected: "a multiple of 8 after the header".into(),
        });
    }
    let table = &file[header.table_offset as usize..table_end as usize];
    let computed = checksum(table);
    if computed != header.table_checksum {
        return Err(FormatError::TableChecksum { stored: header.table_checksum, computed });
    }
    let mut r = Reader::new(SectionKind::Metadata, table);
    let mut out = Sections::default();
    // Byte ranges already claimed: header, table, then each section.
    let mut claimed: Vec<(Range<u64>, Option<SectionKind>)> = vec![(0..HEADER_LEN as u64, None), (header.table_offset..table_end, None)];
    for index in 0..count {
        let code = r.u32("section kind")?;
        let flags = r.u32("section flags")?;
        let offset = r.u64("section offset")?;
        let len = r.u64("section length")?;
        let stored = r.u64("section checksum")?;
        let Some(kind) = SectionKind::from_code(code) else {
            if flags & SECTION_FLAG_OPTIONAL != 0 {
                out.skipped += 1;
                continue;
            }
            return Err(FormatError::UnknownSection { index, code });
        };
        if out.list.iter().any(|s| s.kind == kind) {
            return Err(FormatError::DuplicateSection { kind });
        }
        let end = offset.checked_add(len).filter(|&e| e <= file_len);
        let Some(end) = end else {
            return Err(FormatError::SectionPastEnd { kind, end: offset.saturating_add(len), file_len });
        };
        let align = kind.align() as u64;
        if offset % align != 0 {
            return Err(FormatError::SectionMisaligned { kind, offset, align });
        }
        if len > 0 {
            for (range, other) in &claimed {
                if offset < range.end && range.start < end {
                    return Err(match other {
                        Some(b) => FormatError::SectionOverlap { a: kind, b: *b },
                        None => FormatError::SectionOverlapsHeader { kind },
                    });
                }
            }
            claimed.push((offset..end, Some(kind)));
        }
        let range = offset as usize..end as usize;
        let computed = checksum(&file[range.clone()]);
        if computed != stored {
            return Err(FormatError::SectionChecksum { kind, stored, computed });
        }
        out.list.push(Section { kind, range, checksum: stored });
    }
    for kind in SectionKind::REQUIRED {
        out.get(kind)?;
    }
    Ok(out)
}
