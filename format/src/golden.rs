//! The Golden section (optional): test vectors, inputs and the outputs the
//! converter's own run of the converted model gave for them. A device runs
//! them after installing a model (`jetrt verify`, the update agent's health
//! check) to prove that this file, on this runtime and this hardware,
//! computes what it computed on the host.
//!
//! Layout: u32 version (1), u32 vector count (≤ [`MAX_VECTORS`]), then per
//! vector every model input's bytes and then every output's bytes, each
//! exactly the tensor's size, in the plan's input and output order, each
//! starting at a multiple of 8.

use crate::bytes::{Reader, Writer};
use crate::error::Result;
use crate::SectionKind;
use std::ops::Range;

/// Most vectors a file may carry.
pub const MAX_VECTORS: usize = 16;
const VERSION: u32 = 1;

/// One vector as the writer takes it: the bytes of every input, then of
/// every output, in the model's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenVector {
    pub inputs: Vec<Vec<u8>>,
    pub outputs: Vec<Vec<u8>>,
}

pub(crate) fn encode(vectors: &[GoldenVector]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(VERSION);
    w.u32(vectors.len() as u32);
    for v in vectors {
        for b in v.inputs.iter().chain(&v.outputs) {
            w.pad_to(8);
            w.buf.extend_from_slice(b);
        }
    }
    w.buf
}

/// Byte ranges (within the section) of each vector's inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenEntry {
    pub inputs: Vec<Range<usize>>,
    pub outputs: Vec<Range<usize>>,
}

/// Decodes against the sizes of the model's inputs and outputs.
pub(crate) fn decode(body: &[u8], input_bytes: &[usize], output_bytes: &[usize]) -> Result<Vec<GoldenEntry>> {
    let mut r = Reader::new(SectionKind::Golden, body);
    let version = r.u32("version")?;
    if version != VERSION {
        return Err(r.bad("version", version as u64, format!("{VERSION}")));
    }
    let n = r.count("vector count")?;
    if n > MAX_VECTORS {
        return Err(r.bad("vector count", n as u64, format!("at most {MAX_VECTORS}")));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut take = |len: usize, what: &'static str| -> Result<Range<usize>> {
            let at = r.pos().next_multiple_of(8);
            r.seek(at.min(r.len()), what)?;
            let start = r.pos();
            r.bytes(len, what)?;
            Ok(start..start + len)
        };
        let inputs = input_bytes.iter().map(|&b| take(b, "golden input")).collect::<Result<Vec<_>>>()?;
        let outputs = output_bytes.iter().map(|&b| take(b, "golden output")).collect::<Result<Vec<_>>>()?;
        out.push(GoldenEntry { inputs, outputs });
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
        let v = GoldenVector { inputs: vec![vec![1, 2, 3]], outputs: vec![vec![9; 8], vec![7; 4]] };
        let body = encode(&[v.clone(), v]);
        let d = decode(&body, &[3], &[8, 4]).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(&body[d[1].outputs[0].clone()], &[9; 8]);
        assert!(decode(&body, &[3], &[8, 5]).is_err());
        assert!(decode(&body[..body.len() - 1], &[3], &[8, 4]).is_err());
    }
}
