//! The format's one error type: what is wrong with a file, named.

use crate::SectionKind;

pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Everything the reader can find wrong with a `.jrt` file. Messages name
/// the thing at fault (section, byte offset, tensor, step, op) and what was
/// expected versus found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error("not a .jrt file: {len} bytes, smaller than the {header}-byte header")]
    TooSmall { len: u64, header: u64 },

    #[error("not a .jrt file: bad magic bytes {found:02x?} (expected {expected:02x?})")]
    BadMagic { found: [u8; 8], expected: [u8; 8] },

    #[error("format version {major}.{minor} is not supported: this jetrt reads major version {supported}")]
    UnsupportedVersion { major: u16, minor: u16, supported: u16 },

    #[error("file needs a reader of format version {need_major}.{need_minor} or newer; this jetrt reads {have_major}.{have_minor}: upgrade jetrt")]
    ReaderTooOld { need_major: u16, need_minor: u16, have_major: u16, have_minor: u16 },

    #[error("header checksum mismatch: stored {stored:#018x}, computed {computed:#018x} (the file is corrupt)")]
    HeaderChecksum { stored: u64, computed: u64 },

    #[error("header field {field} is {found}, expected {expected}")]
    HeaderField { field: &'static str, found: u64, expected: String },

    #[error("header declares a file of {declared} bytes but the file has {actual} (truncated or padded)")]
    FileLength { declared: u64, actual: u64 },

    #[error("section table checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    TableChecksum { stored: u64, computed: u64 },

    #[error("section #{index} has unknown kind code {code} and is not marked optional")]
    UnknownSection { index: usize, code: u32 },

    #[error("section {kind:?} appears more than once")]
    DuplicateSection { kind: SectionKind },

    #[error("required section {kind:?} is missing")]
    MissingSection { kind: SectionKind },

    #[error("section {kind:?} ends at byte {end}, past the end of the file ({file_len} bytes)")]
    SectionPastEnd { kind: SectionKind, end: u64, file_len: u64 },

    #[error("section {kind:?} starts at byte {offset}, not a multiple of {align}")]
    SectionMisaligned { kind: SectionKind, offset: u64, align: u64 },

    #[error("section {kind:?} overlaps the header or the section table")]
    SectionOverlapsHeader { kind: SectionKind },

    #[error("sections {a:?} and {b:?} overlap")]
    SectionOverlap { a: SectionKind, b: SectionKind },

    #[error("section {kind:?} checksum mismatch: stored {stored:#018x}, computed {computed:#018x} (the file is corrupt)")]
    SectionChecksum { kind: SectionKind, stored: u64, computed: u64 },

    #[error("section {kind:?}: reading {what} at byte {offset} needs {need} bytes, but the section has only {len}")]
    Truncated { kind: SectionKind, what: &'static str, offset: u64, need: u64, len: u64 },

    #[error("section {kind:?}: {what} is {found}, {expected}")]
    BadField { kind: SectionKind, what: String, found: u64, expected: String },

    #[error("tensor #{index}: unknown dtype code {code}")]
    UnknownDType { index: usize, code: u8 },

    #[error("tensor #{index} ({name}): {reason}")]
    BadTensor { index: usize, name: String, reason: String },

    #[error("step #{step}: unknown op code {code}")]
    UnknownOp { step: usize, code: u32 },

    #[error("step #{step} ({op}): {reason}")]
    BadStep { step: usize, op: &'static str, reason: String },

    #[error("memory plan: {reason}")]
    BadMemoryPlan { reason: String },

    #[error("memory plan: tensors {a} and {b} overlap in the arena while both are live (step {step})")]
    ArenaOverlap { a: String, b: String, step: usize },

    #[error("this machine is big-endian; .jrt files are little-endian and used in place, so jetrt runs only on little-endian machines")]
    BigEndianHost,
}
