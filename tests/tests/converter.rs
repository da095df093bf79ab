//! The converter's contract on bad or dynamic input: clear errors naming
//! the problem, all unsupported things listed at once, external data that
//! cannot leave the model's folder.

use jetrt_converter::{convert, parse_input_shape, ConvertError, ConvertOptions};
use jetrt_tests::onnx_build::*;
use jetrt_tests::{manifest, require_testdata, run_case};

fn relu_model(dims: &[Dim]) -> jetrt_converter::onnx::pb::ModelProto {
    model(vec![node("Relu", "r", &["x"], &["y"])], vec![value_info("x", dims)], vec![value_info("y", &[])], vec![], 13)
}

fn shapes(args: &[&str]) -> ConvertOptions {
    ConvertOptions { input_shapes: args.iter().map(|a| parse_input_shape(a).unwrap()).collect(), ..Default::default() }
}

#[test]
fn dynamic_dims_need_input_shape_and_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    save(&relu_model(&[Dim::Named("batch"), Dim::Fixed(3), Dim::Unknown]), &p);
    let e = convert(&p, &ConvertOptions::default()).err().expect("dynamic dims must be refused");
    let msg = e.to_string();
    assert!(matches!(e, ConvertError::DynamicInputs { .. }), "{msg}");
    assert!(
        msg.contains("\"x\"") && msg.contains("\"batch\"") && msg.contains("axis 2 is unknown") && msg.contains("--input-shape"),
        "{msg}"
    );

    let c = convert(&p, &shapes(&["x=2,3,5"])).unwrap();
    assert_eq!(c.report.inputs[0].shape, vec![2, 3, 5]);
    assert_eq!(c.report.outputs[0].shape, vec![2, 3, 5]);

    // Given a shape that contradicts a static dim: both shapes named.
    let e = convert(&p, &shapes(&["x=2,4,5"])).err().unwrap();
    let msg = e.to_string();
    assert!(matches!(e, ConvertError::ShapeMismatch { .. }) && msg.contains("[batch, 3, ?]") && msg.contains("[2, 4, 5]"), "{msg}");
    // Wrong rank.
    assert!(matches!(convert(&p, &shapes(&["x=2,3"])), Err(ConvertError::ShapeMismatch { .. })));
    // Unknown input name: the known ones are listed.
    let e = convert(&p, &shapes(&["y=1"])).err().unwrap();
    assert!(matches!(&e, ConvertError::UnknownInput { known, .. } if known == &vec!["x".to_string()]), "{e}");
}

#[test]
fn a_static_input_accepts_its_own_shape() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    save(&relu_model(&[Dim::Fixed(1), Dim::Fixed(4)]), &p);
    assert!(convert(&p, &shapes(&["x=1,4"])).is_ok());
    assert!(matches!(convert(&p, &shapes(&["x=1,5"])), Err(ConvertError::ShapeMismatch { .. })));
}

#[test]
fn input_shape_arguments_are_checked() {
    assert_eq!(parse_input_shape("images:0=1,3,224,224").unwrap(), ("images:0".to_string(), vec![1, 3, 224, 224]));
    assert_eq!(parse_input_shape("a=b=2").unwrap(), ("a=b".to_string(), vec![2]));
    for bad in ["x", "=1,2", "x=1,-2", "x=1,,2", "x=one"] {
        assert!(matches!(parse_input_shape(bad), Err(ConvertError::InputShapeArg { .. })), "{bad} accepted");
    }
}

#[test]
fn every_unsupported_op_is_listed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    let mut foreign = node("Attention", "attn", &["x"], &["a"]);
    foreign.domain = Some("com.microsoft".into());
    let m = model(
        vec![
            node("Relu", "r", &["x"], &["h"]),
            node("NonMaxSuppression", "nms", &["h"], &["n"]),
            node("Einsum", "e", &["n"], &["y"]),
            foreign,
        ],
        vec![value_info("x", &[Dim::Fixed(1), Dim::Fixed(4)])],
        vec![value_info("y", &[]), value_info("a", &[])],
        vec![],
        17,
    );
    save(&m, &p);
    let e = convert(&p, &ConvertOptions::default()).err().unwrap();
    let msg = e.to_string();
    match &e {
        ConvertError::Unsupported { items } => assert_eq!(items.len(), 3, "{msg}"),
        other => panic!("{other}"),
    }
    for part in [
        "\"nms\" (ai.onnx::NonMaxSuppression, opset 17)",
        "\"e\" (ai.onnx::Einsum, opset 17)",
        "\"attn\" (com.microsoft::Attention, the model imports no opset",
    ] {
        assert!(msg.contains(part), "{part} missing from: {msg}");
    }
}

#[test]
fn check_lists_every_failing_node_in_one_pass() {
    // Ops that are supported but used in ways jetrt refuses: each is found,
    // and the node that reads a failed node's output is counted, not tried.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    let mut bad_bn = node("LRN", "lrn_no_size", &["x"], &["a"]);
    bad_bn.attribute.clear();
    let mut pool3d = node("MaxPool", "pool3d", &["x5"], &["b"]);
    pool3d.attribute.push(ints_attr("kernel_shape", &[2, 2, 2]));
    let m = model(
        vec![bad_bn, node("Relu", "after_lrn", &["a"], &["y"]), pool3d, node("Relu", "fine", &["x"], &["z"])],
        vec![
            value_info("x", &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(3), Dim::Fixed(3)]),
            value_info("x5", &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(2), Dim::Fixed(2)]),
        ],
        vec![value_info("y", &[]), value_info("b", &[]), value_info("z", &[])],
        vec![],
        13,
    );
    save(&m, &p);
    let items = jetrt_converter::check(&p, &ConvertOptions::default()).unwrap();
    let text: Vec<String> = items.iter().map(|u| u.to_string()).collect();
    assert_eq!(items.len(), 3, "{text:#?}");
    assert!(text[0].contains("lrn_no_size") && text[0].contains("size must be positive"), "{text:#?}");
    assert!(text[1].contains("pool3d") && text[1].contains("3-D pooling"), "{text:#?}");
    assert!(text[2].starts_with("not checked: 1 node(s)") && text[2].contains("\"after_lrn\""), "{text:#?}");
    // Plain conversion stops at the first.
    assert!(matches!(convert(&p, &ConvertOptions::default()), Err(ConvertError::Node { .. })));
    // A model that converts has nothing to report.
    let ok = dir.path().join("ok.onnx");
    save(&relu_model(&[Dim::Fixed(1), Dim::Fixed(4)]), &ok);
    assert!(jetrt_converter::check(&ok, &ConvertOptions::default()).unwrap().is_empty());
}

#[test]
fn check_carries_on_with_stored_types_and_suggests_bind() {
    // greater (on the run-time input m alone) and not (reading it) are both
    // refused; with greater's output type stored, not is checked too.
    use jetrt_converter::onnx::pb::tensor_proto::DataType;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    let row = [Dim::Fixed(1), Dim::Fixed(4)];
    let build = |stored: Vec<jetrt_converter::onnx::pb::ValueInfoProto>| {
        let mut m = model(
            vec![
                node("Greater", "greater", &["m", "zero"], &["g"]),
                node("Not", "not", &["g"], &["n"]),
                node("Add", "add", &["x", "x"], &["y"]),
            ],
            vec![value_info("x", &row), value_info("m", &row)],
            vec![value_info("y", &[]), typed_value_info("n", &[], DataType::Bool)],
            vec![tensor("zero", &[1], &[0.0])],
            13,
        );
        m.graph.as_mut().unwrap().value_info = stored;
        save(&m, &p);
        let items = jetrt_converter::check(&p, &ConvertOptions::default()).unwrap();
        items.iter().map(|u| u.to_string()).collect::<Vec<_>>()
    };
    let text = build(vec![typed_value_info("g", &row, DataType::Bool)]);
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(text[0].contains("\"greater\"") && text[0].contains("--bind m=FILE.npy"), "{text:#?}");
    assert!(text[1].contains("\"not\"") && !text[1].contains("--bind x"), "{text:#?}");
    let text = build(vec![]);
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(text[1].starts_with("not checked: 1 node(s)") && text[1].contains("\"not\""), "{text:#?}");
    // Conversion stops at greater, with the same suggestion.
    let e = convert(&p, &ConvertOptions::default()).err().unwrap().to_string();
    assert!(e.contains("--bind m=FILE.npy"), "{e}");
}

#[test]
fn shape_errors_name_the_node_and_op() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    let m = model(
        vec![node("Add", "add_bad", &["x", "w"], &["y"])],
        vec![value_info("x", &[Dim::Fixed(2), Dim::Fixed(3)])],
        vec![value_info("y", &[])],
        vec![tensor("w", &[4], &[1.0, 2.0, 3.0, 4.0])],
        13,
    );
    save(&m, &p);
    let e = convert(&p, &ConvertOptions::default()).err().unwrap();
    let msg = e.to_string();
    assert!(
        matches!(e, ConvertError::Node { .. })
            && msg.contains("add_bad")
            && msg.contains("(Add, opset 13) computing [\"y\"]")
            && msg.contains("do not broadcast"),
        "{msg}"
    );
}

#[test]
fn malformed_onnx_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.onnx");
    for bytes in [&b""[..], b"\x08", b"\xff\xff\xff\xff\xff\xff", b"this is not a protobuf at all"] {
        std::fs::write(&p, bytes).unwrap();
        let e = convert(&p, &ConvertOptions::default()).err().unwrap();
        assert!(matches!(e, ConvertError::Decode { .. }), "{bytes:?}: {e}");
    }
    // A valid model cut in half.
    let good = dir.path().join("good.onnx");
    save(&relu_model(&[Dim::Fixed(1), Dim::Fixed(4)]), &good);
    let b = std::fs::read(&good).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    assert!(matches!(convert(&p, &ConvertOptions::default()), Err(ConvertError::Decode { .. })));
    assert!(matches!(convert(&dir.path().join("missing.onnx"), &ConvertOptions::default()), Err(ConvertError::Io { .. })));
    // A node reading a tensor nobody produces.
    let m =
        model(vec![node("Relu", "r", &["ghost"], &["y"])], vec![value_info("x", &[Dim::Fixed(1)])], vec![value_info("y", &[])], vec![], 13);
    save(&m, &p);
    let e = convert(&p, &ConvertOptions::default()).err().unwrap();
    assert!(e.to_string().contains("ghost"), "{e}");
}

#[test]
fn external_data_loads_and_cannot_escape_the_model_folder() {
    let Some(dir) = require_testdata("external_data") else { return };
    let m = manifest(&dir);
    assert!(!m.external.is_empty() && m.external_bad.len() >= 3);
    for case in &m.external {
        for c in run_case(&dir.join(case), 1).unwrap() {
            assert_eq!(c.mismatches, 0, "{case}: {c:?}");
        }
    }
    for bad in &m.external_bad {
        let e = convert(&dir.join(&bad.path), &ConvertOptions::default()).err().unwrap_or_else(|| panic!("{} was accepted", bad.path));
        let msg = e.to_string();
        assert!(matches!(e, ConvertError::ExternalData { .. }), "{}: {msg}", bad.path);
        let expected = match bad.expect.as_str() {
            "escape" => msg.contains("refused"),
            "missing" => msg.contains("cannot open"),
            other => panic!("unknown expectation {other}"),
        };
        assert!(expected, "{} ({}): {msg}", bad.path, bad.expect);
    }
}

#[test]
fn a_session_runs_again_on_the_inputs_it_was_given() {
    // Every step has the input's size, so without care the planner would
    // reuse the input's bytes once the first step has read it.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    let m = model(
        vec![node("Relu", "a", &["x"], &["h1"]), node("Sigmoid", "b", &["h1"], &["h2"]), node("Tanh", "c", &["h2"], &["y"])],
        vec![value_info("x", &[Dim::Fixed(1), Dim::Fixed(256)])],
        vec![value_info("y", &[])],
        vec![],
        13,
    );
    save(&m, &p);
    let out = dir.path().join("m.jrt");
    convert(&p, &ConvertOptions::default()).unwrap().write(&out).unwrap();
    let model = jetrt::Model::open(&out).unwrap();
    let mut s = model.session(jetrt::SessionOptions::default()).unwrap();
    let x: Vec<f32> = (0..256).map(|i| i as f32 / 64.0 - 2.0).collect();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    s.set_input(0, jetrt::TensorRef::from_bytes(jetrt::DType::F32, &[1, 256], &bytes)).unwrap();
    s.run_loaded().unwrap();
    let first = s.output(0).unwrap().as_slice::<f32>().unwrap().to_vec();
    for _ in 0..3 {
        s.run_loaded().unwrap();
        assert_eq!(s.output(0).unwrap().as_slice::<f32>().unwrap(), first.as_slice());
    }
    let want: Vec<f32> = x.iter().map(|v| (1.0 / (1.0 + (-v.max(0.0)).exp())).tanh()).collect();
    for (g, w) in first.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6);
    }
}
