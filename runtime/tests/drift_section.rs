//! The Drift section of a `.jrt` file: written by the builder, read back
//! equal, and a tampered one (resealed, so that it reaches the section's own
//! checks) is an error naming the section, never a panic.

mod common;

use jetrt::host::ReferenceBuilder;
use jetrt::{Error, FormatError, Model, SectionKind, SessionOptions, TensorRef};
use proptest::prelude::*;

/// The small model's bytes with a drift reference from 30 of its own runs.
fn with_reference() -> Vec<u8> {
    let mut fb = common::small_model();
    let model = Model::from_bytes(&fb.to_bytes()).unwrap();
    let mut s = model.session(SessionOptions::default().with_threads(1)).unwrap();
    let mut b = ReferenceBuilder::new(&model);
    for k in 0..30 {
        s.set_input(0, TensorRef::f32(&[1, 3, 8, 8], &common::values(192, 77 + k))).unwrap();
        s.run_loaded().unwrap();
        b.add(&s).unwrap();
    }
    assert_eq!(b.samples(), 30);
    fb.drift = Some(b.finish());
    fb.to_bytes()
}

#[test]
fn the_reference_reads_back_as_written() {
    let bytes = with_reference();
    let model = Model::from_bytes(&bytes).unwrap();
    let r = model.drift_reference().expect("a drift reference");
    assert_eq!(r.samples, 30);
    // The input x [1,3,8,8] (3 channels, rows: roughness) and the outputs
    // probs and logits [1,10] (classifier-like: 10 classes).
    let names: Vec<&str> = r.tensors.iter().map(|t| model.tensor_name(t.tensor).unwrap()).collect();
    assert_eq!(names, ["x", "probs", "logits"]);
    assert_eq!(r.tensors[0].channels, 3);
    assert_eq!(r.tensors[0].features.len(), 4);
    assert_eq!(r.tensors[1].classes.len(), 10);
    assert!((r.tensors[1].classes.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    for t in &r.tensors {
        for f in &t.features {
            assert!((f.probs.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{f:?}");
            assert!(f.edges.windows(2).all(|w| w[0] <= w[1]));
        }
    }
    // A file without one has none, and the monitor says how to get one.
    let plain = Model::from_bytes(&common::small_model().to_bytes()).unwrap();
    assert!(plain.drift_reference().is_none());
    let e = jetrt::monitor::Monitor::new(&plain, Default::default()).unwrap_err();
    assert!(e.to_string().contains("--drift-ref"), "{e}");
}

#[test]
fn a_non_finite_statistic_is_refused() {
    let mut bytes = with_reference();
    let sec = common::section(&bytes, SectionKind::Drift);
    // The first channel mean of the first tensor: after version, samples,
    // bins, count and the tensor's four counts.
    let at = sec.offset + 4 * 8;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_bits().to_le_bytes());
    common::reseal(&mut bytes);
    let e = Model::from_bytes(&bytes).unwrap_err();
    assert!(matches!(e, Error::Format(FormatError::BadField { kind: SectionKind::Drift, .. })), "{e:?}");
    assert!(e.to_string().contains("channel mean"), "{e}");
}

#[test]
fn a_reference_for_a_tensor_the_model_does_not_expose_is_refused() {
    let mut bytes = with_reference();
    let sec = common::section(&bytes, SectionKind::Drift);
    let at = sec.offset + 16; // the first tensor's index
    bytes[at..at + 4].copy_from_slice(&2u32.to_le_bytes()); // a weight
    common::reseal(&mut bytes);
    let e = Model::from_bytes(&bytes).unwrap_err();
    assert!(e.to_string().contains("a float32 input or output"), "{e}");
}

#[test]
fn a_reference_taken_another_way_opens_and_the_monitor_says_why_it_cannot_use_it() {
    // The input x [1,3,8,8] is watched per channel (3). A reference with one
    // channel for it is sound as a file (only its structure is checked at
    // open) but was not taken the way this monitor watches x.
    let model = Model::from_bytes(&with_reference()).unwrap();
    let mut r = model.drift_reference().unwrap().clone();
    assert_eq!(r.tensors[0].channels, 3);
    r.tensors[0].channels = 1;
    r.tensors[0].channel_mean.truncate(1);
    r.tensors[0].channel_std.truncate(1);
    let mut fb = common::small_model();
    fb.drift = Some(r);
    let model = Model::from_bytes(&fb.to_bytes()).expect("a structurally sound reference opens");
    let e = jetrt::monitor::Monitor::new(&model, Default::default()).unwrap_err();
    assert!(e.to_string().contains("holds 1 channels") && e.to_string().contains("watches 3 channels"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    /// Any byte of the section changed (and resealed): the file opens or
    /// fails with an error; a monitor on it never panics either.
    #[test]
    fn tampered_sections_never_panic(pos in 0usize..4096, value in any::<u8>()) {
        let mut bytes = with_reference();
        let sec = common::section(&bytes, SectionKind::Drift);
        let at = sec.offset + pos % sec.len;
        bytes[at] = value;
        common::reseal(&mut bytes);
        // A reference that opens but that this monitor does not watch that
        // way is refused by the monitor, with a message.
        let monitor = Model::from_bytes(&bytes).ok().and_then(|model| {
            let m = jetrt::monitor::Monitor::new(&model, jetrt::monitor::MonitorOptions { window: 10, ..Default::default() }).ok()?;
            Some((model, m))
        });
        if let Some((model, mut m)) = monitor {
            let mut s = model.session(SessionOptions::default().with_threads(1)).unwrap();
            for k in 0..12 {
                s.set_input(0, TensorRef::f32(&[1, 3, 8, 8], &common::values(192, k))).unwrap();
                s.run_loaded().unwrap();
                m.observe(&s).unwrap();
            }
        }
    }
}
