//! The optional Kernels section: GPU code compiled by `jetc` on the host
//! (CUBIN per architecture), so that a board needs no compiler at start.
//!
//! Layout: u32 count, then per image: u32 arch (87 for sm_87), u32 NVRTC
//! major, u32 NVRTC minor, u32 reserved (0), u64 source hash (xxh3 of the
//! kernel source it was built from), u64 offset and u64 length of the image
//! within the section; the images follow, each 8-aligned.

use super::bytes::{Reader, Writer};
use super::SectionKind;
use crate::error::Result;
use std::ops::Range;

/// Most images a file may carry.
pub const MAX_IMAGES: usize = 64;

/// One compiled image, as the writer takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    pub arch: u32,
    pub nvrtc: (u32, u32),
    pub source_hash: u64,
    pub image: Vec<u8>,
}

/// One image of a validated file: its byte range within the section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelEntry {
    pub arch: u32,
    pub nvrtc: (u32, u32),
    pub source_hash: u64,
    pub range: Range<usize>,
}

const ENTRY_LEN: usize = 40;

pub(crate) fn encode(images: &[KernelImage]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(images.len() as u32);
    let mut at = (4 + images.len() * ENTRY_LEN).next_multiple_of(8);
    for k in images {
        w.u32(k.arch);
        w.u32(k.nvrtc.0);
        w.u32(k.nvrtc.1);
        w.u32(0);
        w.u64(k.source_hash);
        w.u64(at as u64);
        w.u64(k.image.len() as u64);
        at = (at + k.image.len()).next_multiple_of(8);
    }
    for k in images {
        w.pad_to(8);
        w.buf.extend_from_slice(&k.image);
    }
    w.buf
}

pub(crate) fn decode(body: &[u8]) -> Result<Vec<KernelEntry>> {
    let mut r = Reader::new(SectionKind::Kernels, body);
    let n = r.count("image count")?;
    if n > MAX_IMAGES {
        return Err(r.bad("image count", n as u64, format!("at most {MAX_IMAGES}")));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let arch = r.u32("architecture")?;
        let nvrtc = (r.u32("NVRTC major")?, r.u32("NVRTC minor")?);
        r.u32("reserved")?;
        let source_hash = r.u64("source hash")?;
        let offset = r.size("image offset")?;
        let len = r.size("image length")?;
        let end = offset.checked_add(len).filter(|&e| e <= body.len());
        let Some(end) = end else {
            return Err(r.bad(
                format!("image #{i} end"),
                offset as u64 + len as u64,
                format!("at most the section's {} bytes", body.len()),
            ));
        };
        if offset < 4 + n * ENTRY_LEN {
            return Err(r.bad(format!("image #{i} offset"), offset as u64, "past the entry table"));
        }
        if out.iter().any(|e: &KernelEntry| e.arch == arch) {
            return Err(r.bad(format!("image #{i} architecture"), arch as u64, "once per file"));
        }
        out.push(KernelEntry { arch, nvrtc, source_hash, range: offset..end });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_and_bad_tables_are_errors() {
        let imgs = vec![
            KernelImage { arch: 87, nvrtc: (12, 9), source_hash: 7, image: vec![1, 2, 3] },
            KernelImage { arch: 110, nvrtc: (13, 5), source_hash: 7, image: vec![9; 20] },
        ];
        let b = encode(&imgs);
        let d = decode(&b).unwrap();
        assert_eq!(d.len(), 2);
        for (e, k) in d.iter().zip(&imgs) {
            assert_eq!((e.arch, e.nvrtc, e.source_hash), (k.arch, k.nvrtc, k.source_hash));
            assert_eq!(&b[e.range.clone()], &k.image[..]);
            assert_eq!(e.range.start % 8, 0);
        }
        // Truncated: the second image runs past the end.
        assert!(decode(&b[..b.len() - 1]).unwrap_err().to_string().contains("image #1 end"));
        // A huge count.
        let mut bad = b.clone();
        bad[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(decode(&bad).is_err());
        // An image pointing into the table.
        let mut bad = b.clone();
        bad[4 + 24..4 + 32].copy_from_slice(&0u64.to_le_bytes());
        assert!(decode(&bad).unwrap_err().to_string().contains("offset"));
        // The same architecture twice.
        let mut bad = b;
        bad[4 + 40..4 + 44].copy_from_slice(&87u32.to_le_bytes());
        assert!(decode(&bad).unwrap_err().to_string().contains("once per file"));
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }
}
