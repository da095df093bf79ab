//! Hostile and broken files: each gets its own named error, never a panic.

mod common;

use common::*;
use jetrt::{Error, FormatError, Model, SectionKind};
use proptest::prelude::*;

fn valid() -> Vec<u8> {
    small_model().to_bytes()
}

fn open(b: &[u8]) -> Result<Model, Error> {
    Model::from_bytes(b)
}

#[test]
fn the_small_model_is_valid_and_runs() {
    let m = open(&valid()).expect("valid");
    assert_eq!(m.inputs()[0].shape, vec![1, 3, 8, 8]);
    let mut s = m.session(Default::default()).unwrap();
    let x = values(192, 9);
    let mut probs = vec![0.0f32; 10];
    let mut logits = vec![0.0f32; 10];
    s.run(&[jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)], &mut [jetrt::TensorMut::f32(&mut probs), jetrt::TensorMut::f32(&mut logits)])
        .unwrap();
    let sum: f32 = probs.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "softmax sums to {sum}");
    assert!(logits.iter().any(|&v| v != 0.0));
}

#[test]
fn empty_and_tiny_files() {
    assert!(matches!(open(&[]), Err(Error::Format(FormatError::TooSmall { len: 0, .. }))));
    assert!(matches!(open(&valid()[..63]), Err(Error::Format(FormatError::TooSmall { len: 63, .. }))));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.jrt");
    std::fs::write(&p, b"").unwrap();
    assert!(matches!(Model::open(&p), Err(Error::Format(FormatError::TooSmall { .. }))));
    assert!(matches!(Model::open(dir.path().join("missing.jrt")), Err(Error::Io { .. })));
}

#[test]
fn wrong_magic() {
    let mut b = valid();
    b[1] = b'X';
    assert!(matches!(open(&b), Err(Error::Format(FormatError::BadMagic { .. }))));
    let e = open(b"PK\x03\x04 this is a zip file, not a model, padded to at least sixty-four bytes").unwrap_err();
    assert!(e.to_string().contains("not a .jrt file"), "{e}");
}

#[test]
fn newer_versions() {
    let mut b = valid();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    assert!(matches!(open(&b), Err(Error::Format(FormatError::UnsupportedVersion { major: 2, .. }))));
    let mut b = valid();
    b[14..16].copy_from_slice(&9u16.to_le_bytes()); // needs reader 1.9
    reseal(&mut b);
    let e = open(&b).unwrap_err();
    assert!(matches!(e, Error::Format(FormatError::ReaderTooOld { need_major: 1, need_minor: 9, .. })), "{e}");
    assert!(e.to_string().contains("upgrade jetrt"));
}

#[test]
fn truncated_at_every_section_boundary() {
    let b = valid();
    let mut cuts = vec![64, 64 + 32, 64 + 5 * 32];
    for e in table(&b) {
        cuts.extend([e.offset, e.offset + e.len / 2, e.offset + e.len]);
    }
    cuts.retain(|&c| c < b.len());
    for cut in cuts {
        // As cut: the header's length no longer matches.
        let t = &b[..cut];
        match open(t) {
            Err(Error::Format(FormatError::FileLength { declared, actual })) => {
                assert_eq!((declared, actual), (b.len() as u64, cut as u64))
            }
            Err(Error::Format(FormatError::TooSmall { .. })) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
        // Resealed, as a careless tool would: the section bounds catch it.
        let mut t = t.to_vec();
        reseal(&mut t);
        let e = open(&t).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Format(FormatError::SectionPastEnd { .. })
                    | Error::Format(FormatError::HeaderField { field: "table_offset", .. })
                    | Error::Format(FormatError::SectionChecksum { .. })
            ),
            "cut at {cut}: {e:?}"
        );
    }
}

#[test]
fn a_flipped_byte_in_any_section_fails_its_checksum() {
    let b = valid();
    for e in table(&b) {
        if e.len == 0 {
            continue;
        }
        for at in [e.offset, e.offset + e.len / 2, e.offset + e.len - 1] {
            let mut t = b.clone();
            t[at] ^= 0x40;
            match open(&t) {
                Err(Error::Format(FormatError::SectionChecksum { kind, .. })) => assert_eq!(kind as u32, e.kind),
                other => panic!("flip at {at} in section {}: {other:?}", e.kind),
            }
        }
    }
    let mut t = b.clone();
    t[30] ^= 1; // inside the header
    assert!(matches!(open(&t), Err(Error::Format(FormatError::HeaderChecksum { .. }))));
    let mut t = b.clone();
    let e = table(&b)[2];
    t[e.at + 9] ^= 1; // inside the section table
    assert!(matches!(open(&t), Err(Error::Format(FormatError::TableChecksum { .. }))));
}

#[test]
fn section_offsets_past_the_end_misaligned_or_overlapping() {
    let b = valid();
    let e = section(&b, SectionKind::Plan);
    let set_offset = |v: u64| {
        let mut t = b.clone();
        t[e.at + 8..e.at + 16].copy_from_slice(&v.to_le_bytes());
        reseal(&mut t);
        open(&t)
    };
    assert!(matches!(set_offset(b.len() as u64 - 8), Err(Error::Format(FormatError::SectionPastEnd { kind: SectionKind::Plan, .. }))));
    assert!(matches!(set_offset(u64::MAX - 3), Err(Error::Format(FormatError::SectionPastEnd { kind: SectionKind::Plan, .. }))));
    assert!(matches!(set_offset(e.offset as u64 + 8), Err(Error::Format(FormatError::SectionMisaligned { kind: SectionKind::Plan, .. }))));
    let other = section(&b, SectionKind::Tensors);
    assert!(matches!(set_offset(other.offset as u64), Err(Error::Format(FormatError::SectionOverlap { .. }))));
    assert!(matches!(set_offset(0), Err(Error::Format(FormatError::SectionOverlapsHeader { kind: SectionKind::Plan }))));
    // Weights must be page aligned.
    let w = section(&b, SectionKind::Weights);
    let mut t = b.clone();
    t[w.at + 8..w.at + 16].copy_from_slice(&((w.offset - 64) as u64).to_le_bytes());
    reseal(&mut t);
    assert!(matches!(open(&t), Err(Error::Format(FormatError::SectionMisaligned { kind: SectionKind::Weights, align: 4096, .. }))));
}

#[test]
fn unknown_duplicate_and_missing_sections() {
    let b = valid();
    let e = section(&b, SectionKind::Metadata);
    let mut t = b.clone();
    t[e.at..e.at + 4].copy_from_slice(&77u32.to_le_bytes());
    reseal(&mut t);
    assert!(matches!(open(&t), Err(Error::Format(FormatError::UnknownSection { code: 77, .. }))));
    // Marked optional, an unknown section is skipped, but Metadata is then missing.
    t[e.at + 4..e.at + 8].copy_from_slice(&1u32.to_le_bytes());
    reseal(&mut t);
    assert!(matches!(open(&t), Err(Error::Format(FormatError::MissingSection { kind: SectionKind::Metadata }))));
    let mut t = b.clone();
    let p = section(&b, SectionKind::Plan);
    t[e.at..e.at + 4].copy_from_slice(&(SectionKind::Plan as u32).to_le_bytes());
    let _ = p;
    reseal(&mut t);
    assert!(matches!(open(&t), Err(Error::Format(FormatError::DuplicateSection { kind: SectionKind::Plan }))));
}

/// Patches a tensor record field and reseals.
fn patch_tensor(b: &[u8], tensor: usize, field: usize, bytes: &[u8]) -> Vec<u8> {
    let s = section(b, SectionKind::Tensors);
    let at = s.offset + 16 + 96 * tensor + field;
    let mut t = b.to_vec();
    t[at..at + bytes.len()].copy_from_slice(bytes);
    reseal(&mut t);
    t
}

#[test]
fn absurd_tensors() {
    let b = valid();
    // dims[0] of "x" = 2^62: the byte count overflows.
    let e = open(&patch_tensor(&b, 0, 16, &(1u64 << 62).to_le_bytes())).unwrap_err();
    assert!(matches!(&e, Error::Format(FormatError::BadTensor { name, .. }) if name == "x"), "{e:?}");
    assert!(e.to_string().contains("absurdly large"), "{e}");
    // A shape that fits but disagrees with the byte count.
    assert!(matches!(open(&patch_tensor(&b, 0, 16, &2u64.to_le_bytes())), Err(Error::Format(FormatError::BadTensor { .. }))));
    // Unknown dtype.
    assert!(matches!(open(&patch_tensor(&b, 0, 8, &[200])), Err(Error::Format(FormatError::UnknownDType { index: 0, code: 200 }))));
    // Rank beyond 8.
    assert!(matches!(open(&patch_tensor(&b, 0, 9, &[9])), Err(Error::Format(FormatError::BadTensor { .. }))));
    // A weight placed past the end of the weights section.
    let e = open(&patch_tensor(&b, 1, 80, &(1u64 << 40).to_le_bytes())).unwrap_err();
    assert!(e.to_string().contains("past the end of the weights"), "{e}");
    // A misaligned weight.
    assert!(matches!(open(&patch_tensor(&b, 1, 80, &8u64.to_le_bytes())), Err(Error::Format(FormatError::BadTensor { .. }))));
    // Name outside the name pool.
    assert!(matches!(open(&patch_tensor(&b, 0, 0, &u32::MAX.to_le_bytes())), Err(Error::Format(FormatError::BadTensor { .. }))));
}

fn patch_plan(b: &[u8], at: usize, v: u32) -> Vec<u8> {
    let s = section(b, SectionKind::Plan);
    let mut t = b.to_vec();
    t[s.offset + at..s.offset + at + 4].copy_from_slice(&v.to_le_bytes());
    reseal(&mut t);
    t
}

#[test]
fn bad_steps() {
    let b = valid();
    // Header (24) + 1 input + 2 outputs = 36: the first step record.
    let step0 = 36;
    assert!(matches!(open(&patch_plan(&b, step0, 999)), Err(Error::Format(FormatError::UnknownOp { step: 0, code: 999 }))));
    // Operand ranges past the operand array.
    assert!(matches!(open(&patch_plan(&b, step0 + 12, 1000)), Err(Error::Format(FormatError::BadStep { step: 0, .. }))));
    // An operand index past the tensor table.
    let operands = 36 + 5 * 32;
    assert!(matches!(open(&patch_plan(&b, operands, 5000)), Err(Error::Format(FormatError::BadMemoryPlan { .. }))));
    // Conv reading its own output: read before written.
    let e = open(&patch_plan(&b, operands, 3)).unwrap_err();
    assert!(matches!(e, Error::Format(FormatError::BadStep { step: 0, .. })), "{e:?}");
    // The Gemm's weights swapped for the conv weights: shapes no longer fit.
    let gemm_w = operands + 4 * (3 + 2 + 1 + 1 + 1) + 4; // step 3's second input
    let e = open(&patch_plan(&b, gemm_w, 1)).unwrap_err();
    assert!(matches!(e, Error::Format(FormatError::BadStep { step: 3, op: "Gemm", .. })), "{e:?}");
    // An absurd step count.
    assert!(matches!(open(&patch_plan(&b, 8, u32::MAX)), Err(Error::Format(FormatError::BadField { .. }))));
    // A model input that is a weight.
    assert!(matches!(open(&patch_plan(&b, 24, 1)), Err(Error::Format(FormatError::BadTensor { .. }))));
}

#[test]
fn bad_memory_plans() {
    let b = valid();
    let s = section(&b, SectionKind::MemoryPlan);
    let patch = |at: usize, v: &[u8]| {
        let mut t = b.clone();
        t[s.offset + at..s.offset + at + v.len()].copy_from_slice(v);
        reseal(&mut t);
        open(&t)
    };
    // Arena too small for its tensors.
    assert!(matches!(patch(0, &64u64.to_le_bytes()), Err(Error::Format(FormatError::BadMemoryPlan { .. }))));
    // Absurd arena.
    assert!(matches!(
        patch(0, &u64::MAX.to_le_bytes()),
        Err(Error::Format(FormatError::BadField { .. }) | Error::Format(FormatError::BadMemoryPlan { .. }))
    ));
    // Wrong alignment constant.
    assert!(matches!(patch(8, &16u32.to_le_bytes()), Err(Error::Format(FormatError::BadField { .. }))));
    // Second arena tensor ("conv") moved onto the input: both live at step 0.
    let e = patch(16 + 16 + 8, &0u64.to_le_bytes()).unwrap_err();
    assert!(matches!(&e, Error::Format(FormatError::ArenaOverlap { .. })), "{e:?}");
    // Misaligned offset.
    assert!(matches!(patch(16 + 8, &4u64.to_le_bytes()), Err(Error::Format(FormatError::BadMemoryPlan { .. }))));
    // Entry count beyond the section.
    assert!(matches!(patch(12, &u32::MAX.to_le_bytes()), Err(Error::Format(FormatError::BadField { .. }))));
}

#[test]
fn wrong_inputs_at_run_time() {
    let m = open(&valid()).unwrap();
    let mut s = m.session(Default::default()).unwrap();
    let x = values(192, 1);
    let mut p = vec![0.0f32; 10];
    let mut l = vec![0.0f32; 10];
    let e = s
        .run(&[jetrt::TensorRef::f32(&[1, 3, 8, 7], &x[..168])], &mut [jetrt::TensorMut::f32(&mut p), jetrt::TensorMut::f32(&mut l)])
        .unwrap_err();
    assert!(matches!(&e, Error::InputShape { name, .. } if name == "x"), "{e}");
    let e = s.run(&[], &mut []).unwrap_err();
    assert!(matches!(e, Error::InputCount { expected: 1, found: 0 }));
    let bytes = vec![0u8; 192];
    let e = s.set_input(0, jetrt::TensorRef::from_bytes(jetrt::DType::U8, &[1, 3, 8, 8], &bytes)).unwrap_err();
    assert!(matches!(e, Error::InputDType { .. }));
    let e = s.set_input(0, jetrt::TensorRef::from_bytes(jetrt::DType::F32, &[1, 3, 8, 8], &bytes)).unwrap_err();
    assert!(matches!(e, Error::InputLength { .. }));
    let mut small = vec![0.0f32; 3];
    let e = s
        .run(&[jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)], &mut [jetrt::TensorMut::f32(&mut small), jetrt::TensorMut::f32(&mut l)])
        .unwrap_err();
    assert!(matches!(e, Error::OutputBuffer { .. }));
    // By name: an unknown name, a name given twice, an element type read
    // as another are errors naming the tensor.
    let e = s.set_input("nope", jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)).unwrap_err();
    assert!(matches!(&e, Error::UnknownInput { name, known } if name == "nope" && known == &["x"]), "{e}");
    let e = s.output("nope").unwrap_err();
    assert!(matches!(&e, Error::UnknownOutput { name, .. } if name == "nope"), "{e}");
    let e = s
        .run(
            &[jetrt::TensorRef::f32(&[1, 3, 8, 8], &x).named("x")],
            &mut [jetrt::TensorMut::f32(&mut p).named("probs"), jetrt::TensorMut::f32(&mut l).named("probs")],
        )
        .unwrap_err();
    assert!(matches!(&e, Error::DuplicateOutput { .. } | Error::UnknownOutput { .. } | Error::OutputBuffer { .. }), "{e}");
    s.run(&[jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)], &mut [jetrt::TensorMut::f32(&mut p), jetrt::TensorMut::f32(&mut l)]).unwrap();
    let e = s.output(0).unwrap().as_slice::<i32>().unwrap_err();
    assert!(matches!(e, Error::OutputDType { wanted: jetrt::DType::I32, .. }), "{e}");
}

#[test]
fn the_writer_replaces_files_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.jrt");
    small_model().write_file(&p).unwrap();
    let first = std::fs::read(&p).unwrap();
    small_model().write_file(&p).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), first);
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A folder that does not exist: an error, nothing written.
    assert!(small_model().write_file(&dir.path().join("no/such/dir/m.jrt")).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any mutation of a valid file opens or fails cleanly; with checksums
    /// resealed, mutations reach every deeper check.
    #[test]
    fn mutated_files_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>(), truncate: bool, seal: bool) {
        let mut b = valid();
        for (at, v) in edits {
            let i = at.index(b.len());
            b[i] = v;
        }
        if truncate {
            let n = cut.index(b.len());
            b.truncate(n);
        }
        if seal && b.len() >= 64 {
            reseal(&mut b);
        }
        if let Ok(m) = open(&b) {
            // Whatever validated must also run without panicking.
            if let Ok(mut s) = m.session(jetrt::SessionOptions::default().with_threads(1)) {
                let _ = s.run_loaded();
            }
        }
    }
}
