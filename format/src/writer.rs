//! Writing `.jrt` files. The converter builds a [`FileBuilder`] and calls
//! [`FileBuilder::write_file`]; the layout rules live here and nowhere else.

use super::checksum::checksum;
use super::header::Header;
use super::sections::{encode_table, Entry};
use super::tensors::Storage;
use super::*;
use crate::op::Op;
use std::io::Write;
use std::path::Path;

/// Where a tensor lives, as the converter places it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDef {
    /// In the arena at this byte offset (a multiple of [`TENSOR_ALIGN`]).
    Arena { offset: u64 },
    /// In the weights blob at this byte offset (from [`FileBuilder::add_weight`]).
    Weights { offset: u64 },
}

#[derive(Debug, Clone)]
pub struct TensorDef {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub storage: StorageDef,
}

#[derive(Debug, Clone)]
pub struct StepDef {
    pub op: Op,
    pub inputs: Vec<u32>,
    pub outputs: Vec<u32>,
}

/// Everything a `.jrt` file holds, before layout.
#[derive(Debug, Clone, Default)]
pub struct FileBuilder {
    pub metadata: Vec<(String, String)>,
    pub tensors: Vec<TensorDef>,
    pub weights: Vec<u8>,
    pub steps: Vec<StepDef>,
    pub inputs: Vec<u32>,
    pub outputs: Vec<u32>,
    pub arena_bytes: u64,
    /// Compiled GPU kernels (an optional section; none: no section).
    pub kernels: Vec<super::kernels::KernelImage>,
    /// Drift reference statistics (an optional section; none: no section).
    pub drift: Option<crate::drift::Reference>,
    /// Golden test vectors (an optional section; empty: no section).
    pub golden: Vec<crate::golden::GoldenVector>,
}

impl FileBuilder {
    /// Appends weight bytes at the next [`TENSOR_ALIGN`]-aligned offset and
    /// returns that offset.
    pub fn add_weight(&mut self, bytes: &[u8]) -> u64 {
        let at = self.weights.len().next_multiple_of(TENSOR_ALIGN);
        self.weights.resize(at, 0);
        self.weights.extend_from_slice(bytes);
        at as u64
    }

    /// Lays the file out and returns its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let tensors: Vec<_> = self
            .tensors
            .iter()
            .map(|t| {
                let storage = match t.storage {
                    StorageDef::Arena { .. } => Storage::Arena,
                    StorageDef::Weights { offset } => Storage::Weights { offset: offset as usize },
                };
                (t.name.clone(), t.dtype, t.shape.clone(), storage)
            })
            .collect();
        let offsets: Vec<(u32, u64)> = self
            .tensors
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t.storage {
                StorageDef::Arena { offset } => Some((i as u32, offset)),
                StorageDef::Weights { .. } => None,
            })
            .collect();
        let steps: Vec<_> = self.steps.iter().map(|s| (s.op.clone(), s.inputs.clone(), s.outputs.clone())).collect();
        let bodies: [(SectionKind, Vec<u8>); 4] = [
            (SectionKind::Metadata, metadata::encode(&self.metadata)),
            (SectionKind::Tensors, tensors::encode(&tensors)),
            (SectionKind::Plan, plan::encode(&self.inputs, &self.outputs, &steps)),
            (SectionKind::MemoryPlan, memplan::encode(self.arena_bytes, &offsets)),
        ];
        let kernels = (!self.kernels.is_empty()).then(|| super::kernels::encode(&self.kernels));
        let drift = self.drift.as_ref().map(crate::drift::encode);
        let golden = (!self.golden.is_empty()).then(|| crate::golden::encode(&self.golden));
        let count = bodies.len() + 1 + usize::from(kernels.is_some()) + usize::from(drift.is_some()) + usize::from(golden.is_some());
        let table_offset = HEADER_LEN;
        let mut pos = (table_offset + count * SECTION_ENTRY_LEN).next_multiple_of(SECTION_ALIGN);
        let mut entries = Vec::with_capacity(count);
        let mut placed = Vec::with_capacity(count);
        let optional = kernels
            .as_deref()
            .map(|k| (SectionKind::Kernels, k))
            .into_iter()
            .chain(drift.as_deref().map(|d| (SectionKind::Drift, d)))
            .chain(golden.as_deref().map(|g| (SectionKind::Golden, g)));
        for (kind, body) in
            bodies.iter().map(|(k, b)| (*k, b.as_slice())).chain([(SectionKind::Weights, self.weights.as_slice())]).chain(optional)
        {
            pos = pos.next_multiple_of(kind.align());
            let flags =
                if matches!(kind, SectionKind::Kernels | SectionKind::Drift | SectionKind::Golden) { SECTION_FLAG_OPTIONAL } else { 0 };
            entries.push(Entry { kind: kind as u32, flags, offset: pos as u64, len: body.len() as u64, checksum: checksum(body) });
            placed.push((pos, body));
            pos += body.len();
        }
        let file_len = pos;
        let table = encode_table(&entries);
        let header = Header {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
            min_reader_major: MIN_READER_MAJOR,
            // Golden vectors are written in the section's version 2 (since 1.5).
            min_reader_minor: self
                .steps
                .iter()
                .map(|s| s.op.since_minor())
                .chain((!self.golden.is_empty()).then_some(5))
                .fold(MIN_READER_MINOR, u16::max),
            flags: 0,
            file_len: file_len as u64,
            table_offset: table_offset as u64,
            section_count: count as u32,
            table_checksum: checksum(&table),
        };
        let mut out = vec![0u8; file_len];
        out[..HEADER_LEN].copy_from_slice(&header.encode());
        out[table_offset..table_offset + table.len()].copy_from_slice(&table);
        for (at, body) in placed {
            out[at..at + body.len()].copy_from_slice(body);
        }
        out
    }

    /// Writes the file so that a reader never sees a partial one: into a
    /// temporary file beside `path`, flushed to disk, then renamed over
    /// `path`, and the folder flushed. On error (a full disk, say) `path` is
    /// left as it was and the temporary file is removed.
    pub fn write_file(&self, path: &Path) -> std::io::Result<()> {
        write_atomically(path, &self.to_bytes())
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync
/// of the folder).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
