//! The Golden section (optional): test vectors, inputs and the outputs the
//! converter's own run of the converted model gave for them. A device runs
//! them after installing a model (`jetrt verify`, the update agent's health
//! check) to prove that this file, on this runtime and this hardware,
//! computes what it computed on the host.
//!
//! Layout, version 2: u32 version, u32 vector count (≤ [`MAX_VECTORS`]),
//! then per vector a record for every model input and then every output, in
//! the plan's order, each starting at a multiple of 8: u32 kind, u32
//! parameter, then
//! - an input of kind 0: the tensor's bytes (parameter 0);
//! - an input of kind 1: a u64 seed (parameter 0): the input is
//!   [`seeded_input`] of it, made again on the device, not stored;
//! - an output of kind 0: the tensor's bytes (parameter 0);
//! - an output of kind 1: every `stride`-th element (the parameter, ≥ 2),
//!   from the first: a sample of a large output, a few percent of its size.
//!
//! Version 1 (every input and output stored whole, no records) still reads.

use crate::bytes::{Reader, Writer};
use crate::error::Result;
use crate::SectionKind;
use std::ops::Range;

/// Most vectors a file may carry.
pub const MAX_VECTORS: usize = 16;
const VERSION: u32 = 2;
const KIND_BYTES: u32 = 0;
const KIND_SEEDED: u32 = 1;
const KIND_SAMPLED: u32 = 1;

/// One input of a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoldenInput {
    Bytes(Vec<u8>),
    /// Made from this seed by [`seeded_input`].
    Seeded(u64),
}

/// One output of a vector: whole, or every `stride`-th element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenOutput {
    pub stride: usize,
    pub bytes: Vec<u8>,
}

/// One vector as the writer takes it, inputs and outputs in the model's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenVector {
    pub inputs: Vec<GoldenInput>,
    pub outputs: Vec<GoldenOutput>,
}

impl GoldenVector {
    /// Bytes the vector takes in the file.
    pub fn stored_bytes(&self) -> usize {
        let ins: usize = self.inputs.iter().map(|i| 8 + if let GoldenInput::Bytes(b) = i { b.len().next_multiple_of(8) } else { 8 }).sum();
        ins + self.outputs.iter().map(|o| 8 + o.bytes.len().next_multiple_of(8)).sum::<usize>()
    }
}

/// The input a seed stands for, `bytes` long: float32 elements uniform in
/// [0, 1) (xorshift64) when `float32`, else zeros (valid as indices and
/// masks).
pub fn seeded_input(seed: u64, float32: bool, bytes: usize) -> Vec<u8> {
    if !float32 {
        return vec![0; bytes];
    }
    // xorshift needs a state other than zero.
    let mut state = if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed };
    (0..bytes / 4)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32).to_le_bytes()
        })
        .collect()
}

/// Every `stride`-th element (of `elem_size` bytes) of `bytes`, from the first.
pub fn sample(bytes: &[u8], elem_size: usize, stride: usize) -> Vec<u8> {
    bytes.chunks_exact(elem_size).step_by(stride.max(1)).flatten().copied().collect()
}

pub(crate) fn encode(vectors: &[GoldenVector]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(VERSION);
    w.u32(vectors.len() as u32);
    for v in vectors {
        for i in &v.inputs {
            w.pad_to(8);
            match i {
                GoldenInput::Bytes(b) => {
                    w.u32(KIND_BYTES);
                    w.u32(0);
                    w.buf.extend_from_slice(b);
                }
                GoldenInput::Seeded(seed) => {
                    w.u32(KIND_SEEDED);
                    w.u32(0);
                    w.u64(*seed);
                }
            }
        }
        for o in &v.outputs {
            w.pad_to(8);
            let sampled = o.stride > 1;
            w.u32(if sampled { KIND_SAMPLED } else { KIND_BYTES });
            w.u32(if sampled { o.stride as u32 } else { 0 });
            w.buf.extend_from_slice(&o.bytes);
        }
    }
    w.buf
}

/// Where one input of a decoded vector is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEntry {
    /// Its bytes, within the section (the reader shifts them to the file).
    Bytes(Range<usize>),
    Seeded(u64),
}

/// One output of a decoded vector: every `stride`-th element (1: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputEntry {
    pub stride: usize,
    pub bytes: Range<usize>,
}

/// A decoded vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenEntry {
    pub inputs: Vec<InputEntry>,
    pub outputs: Vec<OutputEntry>,
}

impl GoldenEntry {
    /// The entry with its byte ranges moved by `offset` (section → file).
    pub fn shifted(self, offset: usize) -> GoldenEntry {
        let shift = |r: Range<usize>| r.start + offset..r.end + offset;
        GoldenEntry {
            inputs: self
                .inputs
                .into_iter()
                .map(|i| match i {
                    InputEntry::Bytes(r) => InputEntry::Bytes(shift(r)),
                    s => s,
                })
                .collect(),
            outputs: self.outputs.into_iter().map(|o| OutputEntry { stride: o.stride, bytes: shift(o.bytes) }).collect(),
        }
    }
}

/// Decodes against the sizes of the model's inputs (bytes) and outputs
/// (bytes and element size).
pub(crate) fn decode(body: &[u8], input_bytes: &[usize], outputs: &[(usize, usize)]) -> Result<Vec<GoldenEntry>> {
    let mut r = Reader::new(SectionKind::Golden, body);
    let version = r.u32("version")?;
    if version != 1 && version != VERSION {
        return Err(r.bad("version", version as u64, format!("1 or {VERSION}")));
    }
    let n = r.count("vector count")?;
    if n > MAX_VECTORS {
        return Err(r.bad("vector count", n as u64, format!("at most {MAX_VECTORS}")));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let align = |r: &mut Reader<'_>, what: &'static str| -> Result<()> {
            let at = r.pos().next_multiple_of(8);
            r.seek(at.min(r.len()), what)
        };
        let take = |r: &mut Reader<'_>, len: usize, what: &'static str| -> Result<Range<usize>> {
            let start = r.pos();
            r.bytes(len, what)?;
            Ok(start..start + len)
        };
        let mut inputs = Vec::with_capacity(input_bytes.len());
        for &len in input_bytes {
            align(&mut r, "golden input")?;
            if version == 1 {
                inputs.push(InputEntry::Bytes(take(&mut r, len, "golden input")?));
                continue;
            }
            let kind = r.u32("golden input kind")?;
            let param = r.u32("golden input parameter")?;
            if param != 0 {
                return Err(r.bad("golden input parameter", param as u64, "0"));
            }
            inputs.push(match kind {
                KIND_BYTES => InputEntry::Bytes(take(&mut r, len, "golden input")?),
                KIND_SEEDED => InputEntry::Seeded(r.u64("golden input seed")?),
                k => return Err(r.bad("golden input kind", k as u64, "0 (bytes) or 1 (seeded)")),
            });
        }
        let mut outs = Vec::with_capacity(outputs.len());
        for &(len, elem) in outputs {
            align(&mut r, "golden output")?;
            if version == 1 {
                outs.push(OutputEntry { stride: 1, bytes: take(&mut r, len, "golden output")? });
                continue;
            }
            let kind = r.u32("golden output kind")?;
            let param = r.u32("golden output stride")? as usize;
            let stride = match kind {
                KIND_BYTES if param == 0 => 1,
                KIND_SAMPLED if param >= 2 => param,
                KIND_BYTES => return Err(r.bad("golden output parameter", param as u64, "0")),
                KIND_SAMPLED => return Err(r.bad("golden output stride", param as u64, "at least 2")),
                k => return Err(r.bad("golden output kind", k as u64, "0 (bytes) or 1 (sampled)")),
            };
            let elems = (len / elem.max(1)).div_ceil(stride);
            outs.push(OutputEntry { stride, bytes: take(&mut r, elems * elem, "golden output")? });
        }
        out.push(GoldenEntry { inputs, outputs: outs });
    }
    if r.pos() != r.len() {
        return Err(r.bad("trailing bytes", (r.len() - r.pos()) as u64, "none"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_and_wrong_sizes_are_refused() {
        let v = GoldenVector {
            inputs: vec![GoldenInput::Bytes(vec![1, 2, 3]), GoldenInput::Seeded(7)],
            outputs: vec![GoldenOutput { stride: 1, bytes: vec![9; 8] }, GoldenOutput { stride: 3, bytes: vec![7; 8] }],
        };
        let body = encode(&[v.clone(), v.clone()]);
        assert_eq!(body.len(), 8 + 2 * v.stored_bytes());
        // The second output: 5 elements of 4 bytes, every third: 2 stored.
        let d = decode(&body, &[3, 16], &[(8, 4), (20, 4)]).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].inputs[1], InputEntry::Seeded(7));
        assert_eq!(&body[d[1].outputs[0].bytes.clone()], &[9; 8]);
        assert_eq!(d[1].outputs[1].stride, 3);
        assert_eq!(&body[d[1].outputs[1].bytes.clone()], &[7; 8]);
        assert!(decode(&body, &[3, 16], &[(8, 4), (28, 4)]).is_err(), "7 elements, every third: 3 expected");
        assert!(decode(&body, &[3, 16], &[(12, 4), (20, 4)]).is_err());
        assert!(decode(&body[..body.len() - 1], &[3, 16], &[(8, 4), (20, 4)]).is_err());
        let mut bad = body.clone();
        bad[8] = 9; // the first input's kind
        assert!(decode(&bad, &[3, 16], &[(8, 4), (20, 4)]).is_err());
    }

    #[test]
    fn version_1_sections_still_read() {
        let mut w = Writer::default();
        w.u32(1);
        w.u32(1);
        w.buf.extend_from_slice(&[1, 2, 3]);
        w.pad_to(8);
        w.buf.extend_from_slice(&[9; 8]);
        let d = decode(&w.buf, &[3], &[(8, 4)]).unwrap();
        assert_eq!(d[0].inputs, vec![InputEntry::Bytes(8..11)]);
        assert_eq!(d[0].outputs, vec![OutputEntry { stride: 1, bytes: 16..24 }]);
    }

    #[test]
    fn seeded_inputs_and_samples() {
        let a = seeded_input(42, true, 4096);
        assert_eq!(a, seeded_input(42, true, 4096));
        assert_ne!(a, seeded_input(43, true, 4096));
        let f: Vec<f32> = a.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert!(f.iter().all(|&x| (0.0..1.0).contains(&x)) && f.iter().any(|&x| x > 0.5));
        assert_eq!(seeded_input(1, false, 16), vec![0; 16]);
        assert_eq!(sample(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2, 2), vec![1, 2, 5, 6, 9, 10]);
    }
}
