//! The `.jrt` file format, defined once: its constants and on-disk
//! enumerations ([`codes`]), the op description and its shape rules
//! ([`op`], [`shape`]), every section codec, the [`reader`] that validates
//! a whole file and the [`writer`] the converter uses.
//!
//! It knows no executor, monitor or backend: the runtime lowers what the
//! reader returns, the converter writes through [`FileBuilder`]. The
//! byte-level specification is docs/FORMAT.md; the two must agree.
//!
//! ```
//! use jetrt_format::op::{Activation, Op};
//! use jetrt_format::{reader, DType, FileBuilder, StepDef, StorageDef, TensorDef};
//!
//! // y = relu(x), x and y in the arena.
//! let t = |name: &str, offset| TensorDef { name: name.into(), dtype: DType::F32, shape: vec![1, 4], storage: StorageDef::Arena { offset } };
//! let file = FileBuilder {
//!     tensors: vec![t("x", 0), t("y", 64)],
//!     steps: vec![StepDef { op: Op::Activation(Activation::Relu), inputs: vec![0], outputs: vec![1] }],
//!     inputs: vec![0],
//!     outputs: vec![1],
//!     arena_bytes: 128,
//!     ..Default::default()
//! };
//! let bytes = file.to_bytes();
//! let d = reader::decode(&bytes)?;
//! assert_eq!((d.steps.len(), d.arena_bytes), (1, 128));
//! // A flipped byte is found and named, never a panic.
//! let mut bad = bytes.clone();
//! bad[200] ^= 1;
//! assert!(reader::decode(&bad).is_err());
//! # Ok::<(), jetrt_format::FormatError>(())
//! ```

mod bytes;
mod checksum;
pub mod codes;
pub mod drift;
mod error;
pub mod golden;
mod header;
pub mod kernels;
mod memplan;
mod metadata;
pub mod op;
mod params;
mod plan;
pub mod reader;
mod sections;
pub mod shape;
pub mod tensors;
pub mod writer;

pub use error::{FormatError, Result};
pub use header::Header;
pub use sections::{Section, Sections};
pub use writer::{write_atomically, FileBuilder, StepDef, StorageDef, TensorDef};

/// First eight bytes of every `.jrt` file. The high byte and the CR/LF/^Z
/// catch transfers that mangle binary files, as in PNG.
pub const MAGIC: [u8; 8] = [0x89, b'J', b'R', b'T', b'\r', b'\n', 0x1a, b'\n'];

/// Format version this build writes.
pub const FORMAT_MAJOR: u16 = 1;
pub const FORMAT_MINOR: u16 = 5;

/// Oldest reader version that can read what this build writes when a file
/// uses nothing newer (the writer raises the minor to what the steps need,
/// see [`op::Op::since_minor`]).
pub const MIN_READER_MAJOR: u16 = 1;
pub const MIN_READER_MINOR: u16 = 0;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Size of one section-table entry.
pub const SECTION_ENTRY_LEN: usize = 32;
/// Every section starts at a multiple of this.
pub const SECTION_ALIGN: usize = 64;
/// The weights section starts at a multiple of this (a page), so weights can
/// be used in place from the mapping, and registered with a GPU driver.
pub const WEIGHTS_ALIGN: usize = 4096;
/// Every tensor inside the weights section and the arena starts at a
/// multiple of this.
pub const TENSOR_ALIGN: usize = 64;
/// Largest tensor rank.
pub const MAX_RANK: usize = 8;
/// Most outputs one step may have.
pub const MAX_STEP_OUTPUTS: usize = 16;
/// Caps that keep a hostile file from making the reader do unbounded work.
pub const MAX_TENSORS: usize = 1 << 20;
pub const MAX_STEPS: usize = 1 << 20;
pub const MAX_SECTIONS: usize = 64;

/// Section kinds. Codes are on disk: never reuse or renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum SectionKind {
    Metadata = 1,
    Tensors = 2,
    Plan = 3,
    MemoryPlan = 4,
    Weights = 5,
    /// Compiled GPU kernels (optional: a file without it runs; a reader
    /// that predates it skips it).
    Kernels = 6,
    /// Drift reference statistics (optional, like Kernels).
    Drift = 7,
    /// Golden test vectors (optional).
    Golden = 8,
}

impl SectionKind {
    pub const ALL: [SectionKind; 8] =
        [Self::Metadata, Self::Tensors, Self::Plan, Self::MemoryPlan, Self::Weights, Self::Kernels, Self::Drift, Self::Golden];
    /// The sections every file has.
    pub const REQUIRED: [SectionKind; 5] = [Self::Metadata, Self::Tensors, Self::Plan, Self::MemoryPlan, Self::Weights];

    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u32 == code)
    }

    /// Sections of this kind start at a multiple of this.
    pub fn align(self) -> usize {
        match self {
            SectionKind::Weights => WEIGHTS_ALIGN,
            _ => SECTION_ALIGN,
        }
    }
}

/// Section flag: a reader that does not know this section's kind may skip it.
pub const SECTION_FLAG_OPTIONAL: u32 = 1;

/// Element types. Codes are on disk: never reuse or renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DType {
    F32 = 1,
    F16 = 2,
    BF16 = 3,
    F64 = 4,
    I8 = 5,
    U8 = 6,
    I16 = 7,
    U16 = 8,
    I32 = 9,
    U32 = 10,
    I64 = 11,
    U64 = 12,
    Bool = 13,
}

impl DType {
    pub const ALL: [DType; 13] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::Bool,
    ];

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|d| *d as u8 == code)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// The numpy name (`float32`, ...), used by tools and messages.
    pub fn numpy_name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F64 => "float64",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::Bool => "bool",
        }
    }
}

/// A tensor shape: at most [`MAX_RANK`] dimensions, stored inline so that
/// running a model never allocates for shapes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    rank: u8,
    dims: [usize; MAX_RANK],
}

impl Shape {
    /// `None` if `dims` has more than [`MAX_RANK`] entries.
    pub fn new(dims: &[usize]) -> Option<Self> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut d = [0usize; MAX_RANK];
        d[..dims.len()].copy_from_slice(dims);
        Some(Shape { rank: dims.len() as u8, dims: d })
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }

    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// Number of elements, `None` on overflow.
    pub fn numel(&self) -> Option<usize> {
        self.dims().iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}
