//! Drift monitoring end to end, on real data (tools/gen_driftdata.py: the
//! colour-digits classifier and its sample streams): the reference written
//! by the converter, the runtime's monitor over a sliding window.
//!
//! (a) undrifted samples: at most 1 % of windows raise an alarm;
//! (b) brightness, contrast, blur, noise, channel swap: an alarm within one
//!     window of the drift's start;
//! (c) a gradual drift: an alarm before the model's top-1 agreement with
//!     the undrifted images falls by 5 points.
//! Each case prints its figures (false-alarm rate, detection delays).

use jetrt::monitor::{AlarmPin, Monitor, MonitorOptions, Verdict};
use jetrt::{Model, Session, SessionOptions, TensorRef};
use jetrt_boards::io::fake::RecordingPin;
use jetrt_converter::{convert, ConvertOptions};
use jetrt_tests::require_case;
use jetrt_tools::npy;
use std::path::Path;

const WINDOW: usize = 100;

struct Setup {
    model: Model,
    session: Session,
    _dir: tempfile::TempDir,
}

fn setup(data: &Path) -> Setup {
    let inputs = jetrt_converter::model_inputs(&data.join("model.onnx"), &options()).unwrap();
    let prep = jetrt_tools::samples::ImagePrep { resize: None, mean: [0.0; 3], std: [1.0; 3], nhwc: false, bgr: false };
    let reference = jetrt_tools::samples::load("--drift-ref", &data.join("ref"), &inputs, &prep, 10_000).unwrap();
    assert_eq!(reference.len(), 500);
    let mut opts = options();
    opts.drift_ref = Some(reference);
    let conv = convert(&data.join("model.onnx"), &opts).unwrap();
    assert_eq!(conv.report.drift_ref, Some((500, 2)), "image and probabilities are watched");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("colour_digits.jrt");
    conv.write(&path).unwrap();
    let model = Model::open(&path).unwrap();
    let session = model.session(SessionOptions::default().with_threads(1).with_backend(jetrt::Backend::Cpu)).unwrap();
    Setup { model, session, _dir: dir }
}

fn options() -> ConvertOptions {
    ConvertOptions { input_shapes: vec![("image".into(), vec![1, 3, 8, 8])], ..Default::default() }
}

/// [N,1,3,8,8] float32 samples.
fn samples(path: &Path) -> Vec<Vec<f32>> {
    let a = npy::read(path).unwrap();
    assert_eq!(&a.shape[1..], &[1, 3, 8, 8], "{}", path.display());
    let v = a.to_f32().unwrap();
    v.chunks(192).map(|c| c.to_vec()).collect()
}

fn monitor(s: &Setup) -> Monitor {
    Monitor::new(&s.model, MonitorOptions { window: WINDOW, ..Default::default() }).unwrap()
}

/// Runs one sample; returns the monitor's verdict and the top-1 class.
fn step(s: &mut Setup, m: &mut Monitor, x: &[f32]) -> (Verdict, usize) {
    s.session.set_input(0, TensorRef::f32(&[1, 3, 8, 8], x)).unwrap();
    s.session.run_loaded().unwrap();
    let v = m.observe(&s.session).unwrap();
    let out = s.session.output(0).unwrap();
    let p = out.as_slice::<f32>().unwrap();
    let top = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    (v, top)
}

#[test]
fn undrifted_data_raises_at_most_one_percent_false_alarms() {
    let Some(data) = require_case("drift", "drift", "meta.json") else { return };
    let mut s = setup(&data);
    let stream = samples(&data.join("stream.npy"));
    let mut m = monitor(&s);
    // Disjoint windows after the first: any alarm (or warning) while the
    // window's samples came in counts once.
    let (mut windows, mut alarmed, mut warned) = (0, 0, 0);
    let (mut alarm_here, mut warn_here) = (false, false);
    for (k, x) in stream.iter().enumerate() {
        let (v, _) = step(&mut s, &mut m, x);
        alarm_here |= v == Verdict::Alarm;
        warn_here |= v >= Verdict::Warn;
        if (k + 1) % WINDOW == 0 && k + 1 > WINDOW {
            windows += 1;
            alarmed += usize::from(alarm_here);
            warned += usize::from(warn_here);
        }
        if (k + 1) % WINDOW == 0 {
            (alarm_here, warn_here) = (false, false);
        }
    }
    let rate = alarmed as f64 / windows as f64;
    println!(
        "undrifted: {} samples, {windows} windows of {WINDOW}: false-alarm rate {:.2} % ({alarmed} windows), warnings in {:.1} % ({warned})",
        stream.len(),
        100.0 * rate,
        100.0 * warned as f64 / windows as f64
    );
    assert!(windows >= 150, "{windows}");
    assert!(rate <= 0.01, "false-alarm rate {rate}");
}

#[test]
fn each_kind_of_drift_alarms_within_one_window() {
    let Some(data) = require_case("drift", "drift", "meta.json") else { return };
    let mut s = setup(&data);
    let stream = samples(&data.join("stream.npy"));
    for kind in ["brightness", "contrast", "blur", "noise", "channel_swap"] {
        let drifted = samples(&data.join(format!("drift_{kind}.npy")));
        let mut m = monitor(&s);
        // A full window of undrifted samples first (no alarm), then the drift.
        for x in &stream[..WINDOW] {
            step(&mut s, &mut m, x);
        }
        assert!(m.ready());
        let mut delay = None;
        for (k, x) in drifted.iter().enumerate() {
            if step(&mut s, &mut m, x).0 == Verdict::Alarm {
                delay = Some(k + 1);
                break;
            }
        }
        let worst: Vec<String> = m
            .stats()
            .filter(|t| t.verdict == Verdict::Alarm)
            .map(|t| format!("{} ({})", s.model.tensor_name(t.tensor).unwrap(), t.worst.map_or("?", |f| f.name())))
            .collect();
        println!(
            "{kind:>12}: alarm after {} drifted samples (window {WINDOW}) on {}",
            delay.map_or("none".into(), |d| d.to_string()),
            worst.join(", ")
        );
        let delay = delay.unwrap_or_else(|| panic!("{kind}: no alarm in {} drifted samples", drifted.len()));
        assert!(delay <= WINDOW, "{kind}: alarm after {delay} samples, more than one window");
    }
}

#[test]
fn a_gradual_drift_alarms_before_accuracy_falls_by_five_points() {
    let Some(data) = require_case("drift", "drift", "meta.json") else { return };
    let mut s = setup(&data);
    let stream = samples(&data.join("stream.npy"));
    let clean = samples(&data.join("gradual_clean.npy"));
    let drifted = samples(&data.join("gradual.npy"));
    // The undrifted baseline: the model's answers on the clean images.
    let mut base = monitor(&s);
    let baseline: Vec<usize> = clean.iter().map(|x| step(&mut s, &mut base, x).1).collect();
    let mut m = monitor(&s);
    for x in &stream[..WINDOW] {
        step(&mut s, &mut m, x);
    }
    // Agreement with the baseline over the last 200 samples.
    const SPAN: usize = 200;
    let mut agree = Vec::with_capacity(drifted.len());
    let (mut first_alarm, mut first_drop) = (None, None);
    for (k, x) in drifted.iter().enumerate() {
        let (v, top) = step(&mut s, &mut m, x);
        agree.push(usize::from(top == baseline[k]));
        if v == Verdict::Alarm && first_alarm.is_none() {
            first_alarm = Some(k);
        }
        if k + 1 >= SPAN && first_drop.is_none() {
            let a = agree[k + 1 - SPAN..=k].iter().sum::<usize>() as f64 / SPAN as f64;
            if a <= 0.95 {
                first_drop = Some(k);
            }
        }
    }
    let n = drifted.len();
    println!(
        "gradual drift over {n} samples: first alarm at sample {} ({:.1} % into the ramp), top-1 agreement (last {SPAN}) at or below 95 % from sample {}",
        first_alarm.map_or("none".into(), |k| k.to_string()),
        first_alarm.map_or(f64::NAN, |k| 100.0 * k as f64 / n as f64),
        first_drop.map_or("never".into(), |k| k.to_string())
    );
    let alarm = first_alarm.expect("the gradual drift raised no alarm");
    let drop = first_drop.expect("the drift never cost 5 points of agreement: the data is too weak a test");
    assert!(alarm < drop, "alarm at {alarm}, but agreement had fallen 5 points at {drop}");
}

#[test]
fn the_alarm_line_goes_high_on_drift_and_low_when_it_passes() {
    let Some(data) = require_case("drift", "drift", "meta.json") else { return };
    let mut s = setup(&data);
    let stream = samples(&data.join("stream.npy"));
    let swapped = samples(&data.join("drift_channel_swap.npy"));
    let mut m = monitor(&s);
    let rec = RecordingPin::default();
    let mut pin = AlarmPin::new(rec.clone(), Verdict::Alarm).unwrap();
    for x in stream[..WINDOW].iter().chain(&swapped[..WINDOW]).chain(&stream[WINDOW..4 * WINDOW]) {
        step(&mut s, &mut m, x);
        pin.update(m.verdict()).unwrap();
    }
    drop(pin);
    let levels = rec.levels();
    println!("alarm line: {levels:?}");
    assert_eq!(levels, vec![false, true, false], "low at start, high on the swap, low again once the window is clean");
}
