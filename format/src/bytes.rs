//! Bounds-checked little-endian reading of a section, and writing.

use super::SectionKind;
use crate::error::{FormatError, Result};

/// Reads little-endian fields from one section, failing (never panicking)
/// with the section, field and offset when the section is too short.
pub(crate) struct Reader<'a> {
    kind: SectionKind,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(kind: SectionKind, data: &'a [u8]) -> Self {
        Self { kind, data, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Moves to `pos`, which must be inside the section (or at its end).
    pub fn seek(&mut self, pos: usize, what: &'static str) -> Result<()> {
        if pos > self.data.len() {
            return Err(self.truncated(what, pos, 0));
        }
        self.pos = pos;
        Ok(())
    }

    fn truncated(&self, what: &'static str, offset: usize, need: usize) -> FormatError {
        FormatError::Truncated { kind: self.kind, what, offset: offset as u64, need: need as u64, len: self.data.len() as u64 }
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated(what, self.pos, n))?;
        let out = self.data.get(self.pos..end).ok_or_else(|| self.truncated(what, self.pos, n))?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A u32 count or index, as usize.
    pub fn count(&mut self, what: &'static str) -> Result<usize> {
        Ok(self.u32(what)? as usize)
    }

    /// A u64 size or offset that must fit in usize.
    pub fn size(&mut self, what: &'static str) -> Result<usize> {
        let at = self.pos;
        let v = self.u64(what)?;
        usize::try_from(v).map_err(|_| FormatError::BadField {
            kind: self.kind,
            what: format!("{what} at byte {at}"),
            found: v,
            expected: "addressable on this machine".into(),
        })
    }

    /// A length-prefixed (u32) UTF-8 string.
    pub fn string(&mut self, what: &'static str) -> Result<&'a str> {
        let at = self.pos;
        let n = self.count(what)?;
        let b = self.bytes(n, what)?;
        std::str::from_utf8(b).map_err(|_| FormatError::BadField {
            kind: self.kind,
            what: format!("{what} at byte {at}"),
            found: n as u64,
            expected: "valid UTF-8".into(),
        })
    }

    /// An error about a field of this section.
    pub fn bad(&self, what: impl Into<String>, found: u64, expected: impl Into<String>) -> FormatError {
        FormatError::BadField { kind: self.kind, what: what.into(), found, expected: expected.into() }
    }
}

/// Appends little-endian fields.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
    }
    pub fn pad_to(&mut self, align: usize) {
        let len = self.buf.len().next_multiple_of(align);
        self.buf.resize(len, 0);
    }
}
