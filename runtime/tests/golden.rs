//! Golden test vectors: stored with the converter's outputs, they pass on
//! every CPU kernel variant of this machine (another summation order), and
//! fail, with the figures, when the file computes something else.

mod common;

use jetrt::golden::check;
use jetrt::{Isa, Model, SectionKind, SessionOptions, TensorRef};
use jetrt_format::golden::{sample, seeded_input, GoldenInput, GoldenOutput, GoldenVector};

/// The small model with two golden vectors made by its own (default
/// variant) run: one stored whole, one with its input made from a seed and
/// every third output element kept.
fn with_golden() -> Vec<u8> {
    let mut fb = common::small_model();
    let model = Model::from_bytes(&fb.to_bytes()).unwrap();
    let mut s = model.session(SessionOptions::default().with_threads(1)).unwrap();
    for k in 0..2 {
        let (x, input) = if k == 0 {
            let x = common::f32_bytes(&common::values(192, 300));
            (x.clone(), GoldenInput::Bytes(x))
        } else {
            (seeded_input(77, true, 192 * 4), GoldenInput::Seeded(77))
        };
        s.set_input(0, TensorRef::from_bytes(jetrt::DType::F32, &[1, 3, 8, 8], &x)).unwrap();
        s.run_loaded().unwrap();
        let stride = 1 + 2 * k;
        let outputs = (0..2).map(|o| GoldenOutput { stride, bytes: sample(&s.output(o).unwrap(), 4, stride) }).collect();
        fb.golden.push(GoldenVector { inputs: vec![input], outputs });
    }
    fb.to_bytes()
}

#[test]
fn golden_vectors_pass_on_every_kernel_variant() {
    let model = Model::from_bytes(&with_golden()).unwrap();
    assert_eq!(model.info().golden_vectors, 2);
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        let mut s = model.session(SessionOptions::default().with_cpu_kernels(Some(isa)).with_threads(2)).unwrap();
        let checks = check(&mut s).unwrap();
        assert_eq!(checks.len(), 4, "2 vectors x 2 outputs");
        for c in &checks {
            assert!(c.pass, "{}: {c:?}", isa.name());
        }
    }
    let plain = Model::from_bytes(&common::small_model().to_bytes()).unwrap();
    assert_eq!(plain.info().golden_vectors, 0);
    assert!(check(&mut plain.session(Default::default()).unwrap()).unwrap().is_empty());
}

#[test]
fn a_file_that_computes_otherwise_fails_its_golden_vectors() {
    let mut bytes = with_golden();
    // Change a weight of the convolution (and reseal): the file opens, runs,
    // and its outputs no longer match what the converter recorded.
    let w = common::section(&bytes, SectionKind::Weights);
    for b in &mut bytes[w.offset..w.offset + 64] {
        *b ^= 0x40;
    }
    common::reseal(&mut bytes);
    let model = Model::from_bytes(&bytes).unwrap();
    let checks = check(&mut model.session(Default::default()).unwrap()).unwrap();
    assert!(checks.iter().any(|c| !c.pass), "{checks:?}");
    let bad = checks.iter().find(|c| !c.pass).unwrap();
    assert!(bad.cosine < jetrt::golden::MIN_COSINE || bad.max_abs > 0.0, "{bad:?}");
}

#[test]
fn a_golden_section_of_the_wrong_size_is_refused() {
    let mut bytes = with_golden();
    let g = common::section(&bytes, SectionKind::Golden);
    // The vector count: three vectors where the bytes hold two.
    bytes[g.offset + 4..g.offset + 8].copy_from_slice(&3u32.to_le_bytes());
    common::reseal(&mut bytes);
    let e = Model::from_bytes(&bytes).unwrap_err();
    assert!(e.to_string().contains("Golden"), "{e}");
}
