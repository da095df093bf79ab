//! The runtime's one error type.

use crate::format::{DType, SectionKind};
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong opening or running a model. Messages name
/// the thing at fault (section, byte offset, tensor, step, op) and what was
/// expected versus found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // The io error is the source: printed once by error chains (`{:#}`).
    #[error("cannot read {path}")]
    Io { path: PathBuf, source: std::io::Error },

    /// The model needs more memory than the machine can spare (figures in the message).
    #[error("{0}")]
    DoesNotFit(String),

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

    #[error("the model takes {expected} inputs, {found} were given")]
    InputCount { expected: usize, found: usize },

    #[error("input {name:?}: expected dtype {expected:?}, got {found:?}")]
    InputDType { name: String, expected: DType, found: DType },

    #[error(
        "input {name:?}: got shape {found:?}, but this model was converted for {expected:?}; a .jrt file has fixed shapes, so convert the ONNX model again with jetc convert --input-shape {name}={}",
        dims_arg(found)
    )]
    InputShape { name: String, expected: Vec<usize>, found: Vec<usize> },

    #[error("input {name:?}: shape {shape:?} of {dtype:?} needs {expected} bytes, the buffer has {found}")]
    InputLength { name: String, shape: Vec<usize>, dtype: DType, expected: usize, found: usize },

    #[error("the model has {expected} outputs, {found} buffers were given")]
    OutputCount { expected: usize, found: usize },

    #[error("output {name:?}: expected a {expected_dtype:?} buffer of {expected} bytes, got {found_dtype:?} of {found} bytes")]
    OutputBuffer { name: String, expected_dtype: DType, expected: usize, found_dtype: DType, found: usize },

    #[error("no input named {name:?}; the model's inputs are {known:?}")]
    UnknownInput { name: String, known: Vec<String> },

    #[error("backend {backend} is not available: {reason}")]
    BackendUnavailable { backend: &'static str, reason: String },

    #[error("GPU error: {reason}")]
    Gpu { reason: String },

    #[error("invalid session options: {0}")]
    Options(String),

    #[error("the shared arena has {available} bytes; this model's memory plan needs {needed} (size it with SharedArena::for_models)")]
    ArenaTooSmall { needed: usize, available: usize },

    #[error(
        "the shared arena now holds another session's tensors: {what} (Session::run sets the inputs and copies the outputs in one go)"
    )]
    ArenaReused { what: String },

    #[error("output #{index} does not exist: the model has {count} outputs")]
    OutputIndex { index: usize, count: usize },

    #[error("output {name:?} is {dtype:?}, not float32")]
    OutputDType { name: String, dtype: DType },

    #[error("step #{step} ({op}): index {index} is out of range for an axis of length {len} (check the input values)")]
    IndexOutOfRange { step: usize, op: &'static str, index: i64, len: usize },

    #[error("internal error in step #{step} ({op}): {reason}; please report this with the model file")]
    Internal { step: usize, op: &'static str, reason: String },
}

/// `1,3,224,224`, as `--input-shape` takes it.
fn dims_arg(d: &[usize]) -> String {
    d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}
