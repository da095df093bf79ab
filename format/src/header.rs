//! The fixed 64-byte header.

use super::bytes::Writer;
use super::checksum::checksum;
use super::*;
use crate::error::{FormatError, Result};

/// The header as laid out on disk (docs/FORMAT.md, "Header").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub major: u16,
    pub minor: u16,
    pub min_reader_major: u16,
    pub min_reader_minor: u16,
    pub flags: u32,
    pub file_len: u64,
    pub table_offset: u64,
    pub section_count: u32,
    pub table_checksum: u64,
}

/// Byte offset of the header checksum, which covers everything before it.
const CHECKSUM_AT: usize = 56;

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut w = Writer::default();
        w.buf.extend_from_slice(&MAGIC);
        w.u16(self.major);
        w.u16(self.minor);
        w.u16(self.min_reader_major);
        w.u16(self.min_reader_minor);
        w.u32(HEADER_LEN as u32);
        w.u32(self.flags);
        w.u64(self.file_len);
        w.u64(self.table_offset);
        w.u32(self.section_count);
        w.u32(SECTION_ENTRY_LEN as u32);
        w.u64(self.table_checksum);
        debug_assert_eq!(w.buf.len(), CHECKSUM_AT);
        let sum = checksum(&w.buf);
        w.u64(sum);
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(&w.buf);
        out
    }

    /// Parses and checks the header of a file of `file_len` bytes.
    pub fn decode(file: &[u8]) -> Result<Header> {
        let len = file.len() as u64;
        let Some(h) = file.get(..HEADER_LEN) else {
            return Err(FormatError::TooSmall { len, header: HEADER_LEN as u64 });
        };
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&h[..8]);
        if magic != MAGIC {
            return Err(FormatError::BadMagic { found: magic, expected: MAGIC });
        }
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let (major, minor) = (u16_at(8), u16_at(10));
        // Version first: a newer major version may lay out the rest
        // differently, so say that rather than "bad checksum".
        if major != FORMAT_MAJOR {
            return Err(FormatError::UnsupportedVersion { major, minor, supported: FORMAT_MAJOR });
        }
        let stored = u64_at(CHECKSUM_AT);
        let computed = checksum(&h[..CHECKSUM_AT]);
        if stored != computed {
            return Err(FormatError::HeaderChecksum { stored, computed });
        }
        let (min_reader_major, min_reader_minor) = (u16_at(12), u16_at(14));
        if (min_reader_major, min_reader_minor) > (FORMAT_MAJOR, FORMAT_MINOR) {
            return Err(FormatError::ReaderTooOld {
                need_major: min_reader_major,
                need_minor: min_reader_minor,
                have_major: FORMAT_MAJOR,
                have_minor: FORMAT_MINOR,
            });
        }
        let header_len = u32_at(16);
        if header_len as usize != HEADER_LEN {
            return Err(FormatError::HeaderField { field: "header_len", found: header_len.into(), expected: HEADER_LEN.to_string() });
        }
        let entry_len = u32_at(44);
        if entry_len as usize != SECTION_ENTRY_LEN {
            return Err(FormatError::HeaderField {
                field: "section_entry_len",
                found: entry_len.into(),
                expected: SECTION_ENTRY_LEN.to_string(),
            });
        }
        let header = Header {
            major,
            minor,
            min_reader_major,
            min_reader_minor,
            flags: u32_at(20),
            file_len: u64_at(24),
            table_offset: u64_at(32),
            section_count: u32_at(40),
            table_checksum: u64_at(48),
        };
        if header.file_len != len {
            return Err(FormatError::FileLength { declared: header.file_len, actual: len });
        }
        if header.flags != 0 {
            return Err(FormatError::HeaderField {
                field: "flags",
                found: header.flags.into(),
                expected: "0 (no flags are defined in format 1.0)".into(),
            });
        }
        Ok(header)
    }
}
