//! The converter's graph passes, each on a small ONNX graph that has its
//! pattern: the report says what the pass did, the plan has the fused
//! steps, and the converted model computes what the unfused graph means.

use jetrt::{Model, SessionOptions, TensorRef};
use jetrt_converter::{convert, ConvertOptions, Report};
use jetrt_format::op::Activation;
use jetrt_tests::onnx_build::*;

fn fixed(d: &[i64]) -> Vec<Dim> {
    d.iter().map(|&v| Dim::Fixed(v)).collect()
}

/// Converts `m` (input "x" of `shape`), runs it on `x`, returns the report
/// and output 0.
fn convert_run(m: &jetrt_converter::onnx::pb::ModelProto, shape: &[usize], x: &[f32]) -> (Report, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    save(m, &p);
    let conv = convert(&p, &ConvertOptions::default()).unwrap();
    let out = dir.path().join("m.jrt");
    conv.write(&out).unwrap();
    let model = Model::open(&out).unwrap();
    let mut s = model.session(SessionOptions::default()).unwrap();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    s.set_input(0, TensorRef::from_bytes(jetrt::DType::F32, shape, &bytes)).unwrap();
    s.run_loaded().unwrap();
    let out = s.output(0).unwrap().as_slice::<f32>().unwrap().to_vec();
    (conv.report, out)
}

fn pass(r: &Report, name: &str) -> usize {
    r.passes.iter().find(|(p, _)| *p == name).unwrap_or_else(|| panic!("no pass {name} in {:?}", r.passes)).1
}

fn ops(r: &Report) -> Vec<(String, usize)> {
    r.ops.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

fn close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "element {i}: {g} vs {w}\n{got:?}\n{want:?}");
    }
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect()
}

#[test]
fn shape_chains_fold_into_constants() {
    // y = Relu(Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])))
    let m = model(
        vec![
            node("Shape", "shape", &["x"], &["s"]),
            node_with("Gather", "gather", &["s", "zero"], &["n"], vec![int_attr("axis", 0)]),
            node("Unsqueeze", "unsq", &["n", "axes"], &["n1"]),
            node_with("Concat", "concat", &["n1", "minus1"], &["target"], vec![int_attr("axis", 0)]),
            node("Reshape", "reshape", &["x", "target"], &["r"]),
            node("Relu", "relu", &["r"], &["y"]),
        ],
        vec![value_info("x", &fixed(&[2, 3, 4]))],
        vec![value_info("y", &[])],
        vec![tensor_i64("zero", &[], &[0]), tensor_i64("axes", &[1], &[0]), tensor_i64("minus1", &[1], &[-1])],
        13,
    );
    let x = ramp(24);
    let (r, y) = convert_run(&m, &[2, 3, 4], &x);
    assert_eq!(r.folded, 4, "Shape, Gather, Unsqueeze and Concat fold: {r:?}");
    assert_eq!(ops(&r), [("Copy".to_string(), 1), ("Relu".to_string(), 1)], "{r:?}");
    assert_eq!(r.outputs[0].shape, [2, 12]);
    close(&y, &x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>(), 0.0);
}

#[test]
fn identity_dropout_and_dead_nodes_are_removed() {
    let m = model(
        vec![
            node("Identity", "id", &["x"], &["a"]),
            node("Dropout", "drop", &["a"], &["b"]),
            node("Relu", "relu", &["b"], &["y"]),
            node("Sigmoid", "unused", &["x"], &["nobody_reads_this"]),
        ],
        vec![value_info("x", &fixed(&[1, 6]))],
        vec![value_info("y", &[])],
        vec![],
        13,
    );
    let (r, _) = convert_run(&m, &[1, 6], &ramp(6));
    assert_eq!(r.identities, 2, "{r:?}");
    assert_eq!(pass(&r, "remove_dead_nodes"), 1, "{r:?}");
    assert_eq!(r.steps, 1, "{r:?}");
}

#[test]
fn batch_norm_folds_into_conv_and_gemm() {
    // Conv 1x1 (w = 2) → BatchNorm → Relu: one Conv2dAct step.
    let bn =
        |name: &str, inputs: &[&str], out: &str| node_with("BatchNormalization", name, inputs, &[out], vec![float_attr("epsilon", 0.0)]);
    let m = model(
        vec![
            node("Conv", "conv", &["x", "w"], &["c"]),
            bn("bn", &["c", "g", "b", "mean", "var"], "n"),
            node("Relu", "relu", &["n"], &["y"]),
        ],
        vec![value_info("x", &fixed(&[1, 1, 2, 3]))],
        vec![value_info("y", &[])],
        vec![
            tensor("w", &[1, 1, 1, 1], &[2.0]),
            tensor("g", &[1], &[3.0]),
            tensor("b", &[1], &[1.0]),
            tensor("mean", &[1], &[0.5]),
            tensor("var", &[1], &[4.0]),
        ],
        13,
    );
    let x = ramp(6);
    let (r, y) = convert_run(&m, &[1, 1, 2, 3], &x);
    assert_eq!(pass(&r, "fold_affine_into_conv_gemm"), 1, "{r:?}");
    assert_eq!(ops(&r), [("Conv2dAct".to_string(), 1)], "{r:?}");
    close(&y, &x.iter().map(|v| ((2.0 * v - 0.5) / 2.0 * 3.0 + 1.0).max(0.0)).collect::<Vec<_>>(), 1e-6);

    // Gemm (transB) → BatchNorm on [N, C]: one Gemm step.
    let bw = [1.0, 0.0, -1.0, 0.5, 2.0, 1.0]; // B^T: [2, 3]
    let m = model(
        vec![
            node_with("Gemm", "gemm", &["x", "bt", "c"], &["h"], vec![int_attr("transB", 1)]),
            bn("bn", &["h", "g", "b", "mean", "var"], "y"),
        ],
        vec![value_info("x", &fixed(&[2, 3]))],
        vec![value_info("y", &[])],
        vec![
            tensor("bt", &[2, 3], &bw),
            tensor("c", &[2], &[0.25, -0.5]),
            tensor("g", &[2], &[2.0, 0.5]),
            tensor("b", &[2], &[0.0, 1.0]),
            tensor("mean", &[2], &[1.0, -1.0]),
            tensor("var", &[2], &[1.0, 0.25]),
        ],
        13,
    );
    let x = ramp(6);
    let (r, y) = convert_run(&m, &[2, 3], &x);
    assert_eq!(pass(&r, "fold_affine_into_conv_gemm"), 1, "{r:?}");
    assert_eq!(ops(&r), [("Gemm".to_string(), 1)], "{r:?}");
    let (g, b, mean, sd, c) = ([2.0, 0.5], [0.0, 1.0], [1.0, -1.0], [1.0, 0.5], [0.25, -0.5]);
    let want: Vec<f32> = (0..2)
        .flat_map(|i| (0..2).map(move |j| (i, j)))
        .map(|(i, j)| {
            let h: f32 = (0..3).map(|k| x[i * 3 + k] * bw[j * 3 + k]).sum::<f32>() + c[j];
            (h - mean[j]) / sd[j] * g[j] + b[j]
        })
        .collect();
    close(&y, &want, 1e-5);
}

/// `x [2, 3, 4] · W [4, 5] + bias`, then the written-out Gelu.
/// An affine (per-channel Mul then Add, as PP-LCNet's learnable affine
/// block) before an unpadded convolution folds into its weights and bias;
/// before a padded one it must stay (padding would see 0, not the shift).
#[test]
fn affine_before_unpadded_conv_folds_forward() {
    let m = |pads: i64| {
        model(
            vec![
                node("Relu", "relu", &["x"], &["r"]),
                node("Mul", "mul", &["r", "s"], &["m"]),
                node("Add", "add", &["m", "t"], &["a"]),
                node_with("Conv", "conv", &["a", "w", "b"], &["y"], vec![ints_attr("pads", &[pads, pads, pads, pads])]),
            ],
            vec![value_info("x", &fixed(&[1, 2, 2, 3]))],
            vec![value_info("y", &[])],
            vec![
                tensor("s", &[1, 2, 1, 1], &[2.0, -0.5]),
                tensor("t", &[1, 2, 1, 1], &[0.25, 1.0]),
                tensor("w", &[3, 2, 1, 1], &[1.0, 2.0, -1.0, 0.5, 0.0, 3.0]),
                tensor("b", &[3], &[0.1, 0.2, 0.3]),
            ],
            13,
        )
    };
    let x: Vec<f32> = ramp(12).iter().map(|v| v - 0.3).collect();
    let want = |pad: usize| -> Vec<f32> {
        let (h, w) = (2 + 2 * pad, 3 + 2 * pad);
        let (s, t, wt, b) = ([2.0f32, -0.5], [0.25f32, 1.0], [[1.0f32, 2.0], [-1.0, 0.5], [0.0, 3.0]], [0.1f32, 0.2, 0.3]);
        let mut out = Vec::new();
        for o in 0..3 {
            for yy in 0..h {
                for xx in 0..w {
                    let mut acc = b[o];
                    for c in 0..2 {
                        let inside = yy >= pad && yy < 2 + pad && xx >= pad && xx < 3 + pad;
                        let a = if inside { x[c * 6 + (yy - pad) * 3 + (xx - pad)].max(0.0) * s[c] + t[c] } else { 0.0 };
                        acc += wt[o][c] * a;
                    }
                    out.push(acc);
                }
            }
        }
        out
    };
    let (r, y) = convert_run(&m(0), &[1, 2, 2, 3], &x);
    assert_eq!(pass(&r, "fold_affine_into_next_conv"), 1, "{r:?}");
    assert_eq!(ops(&r), [("Conv2d".to_string(), 1), ("Relu".to_string(), 1)], "{r:?}");
    close(&y, &want(0), 1e-5);
    let (r, y) = convert_run(&m(1), &[1, 2, 2, 3], &x);
    assert_eq!(pass(&r, "fold_affine_into_next_conv"), 0, "{r:?}");
    close(&y, &want(1), 1e-5);
}

fn matmul_gelu_model() -> (jetrt_converter::onnx::pb::ModelProto, Vec<f32>, Vec<f32>) {
    let w: Vec<f32> = ramp(20).iter().map(|v| v * 0.5).collect();
    let bias = vec![0.1, -0.2, 0.3, 0.0, 0.5];
    let m = model(
        vec![
            node("MatMul", "mm", &["x", "w"], &["h0"]),
            node("Add", "bias", &["h0", "bias"], &["h"]),
            node("Div", "div", &["h", "sqrt2"], &["q"]),
            node("Erf", "erf", &["q"], &["e"]),
            node("Add", "add1", &["e", "one"], &["a"]),
            node("Mul", "mulx", &["h", "a"], &["m"]),
            node("Mul", "half", &["m", "half_c"], &["y"]),
        ],
        vec![value_info("x", &fixed(&[2, 3, 4]))],
        vec![value_info("y", &[])],
        vec![
            tensor("w", &[4, 5], &w),
            tensor("bias", &[5], &bias),
            tensor("sqrt2", &[], &[std::f32::consts::SQRT_2]),
            tensor("one", &[], &[1.0]),
            tensor("half_c", &[], &[0.5]),
        ],
        13,
    );
    (m, w, bias)
}

#[test]
fn gelu_and_bias_join_the_matmul() {
    let (m, w, bias) = matmul_gelu_model();
    let x = ramp(24);
    let (r, y) = convert_run(&m, &[2, 3, 4], &x);
    assert_eq!(pass(&r, "fuse_gelu"), 4, "Div, Erf, Add, Mul, Mul become one Gelu: {r:?}");
    assert_eq!(pass(&r, "matmul_add_to_gemm"), 1, "{r:?}");
    assert_eq!(pass(&r, "fuse_activation"), 1, "{r:?}");
    assert_eq!(ops(&r), [("Copy".to_string(), 2), ("GemmAct".to_string(), 1)], "{r:?}");
    let want: Vec<f32> = (0..6)
        .flat_map(|row| (0..5).map(move |j| (row, j)))
        .map(|(row, j)| {
            let h: f32 = (0..4).map(|k| x[row * 4 + k] * w[k * 5 + j]).sum::<f32>() + bias[j];
            Activation::Gelu.apply(h)
        })
        .collect();
    close(&y, &want, 1e-5);
}

#[test]
fn silu_and_hard_swish_are_recognized_and_fused() {
    for (gate, attrs, act) in
        [("Sigmoid", vec![], "Silu"), ("HardSigmoid", vec![float_attr("alpha", 1.0 / 6.0), float_attr("beta", 0.5)], "HardSwish")]
    {
        let m = model(
            vec![
                node("Conv", "conv", &["x", "w"], &["c"]),
                node_with(gate, "gate", &["c"], &["s"], attrs),
                node("Mul", "mul", &["c", "s"], &["y"]),
            ],
            vec![value_info("x", &fixed(&[1, 1, 2, 3]))],
            vec![value_info("y", &[])],
            vec![tensor("w", &[1, 1, 1, 1], &[1.5])],
            13,
        );
        let x = ramp(6);
        let (r, y) = convert_run(&m, &[1, 1, 2, 3], &x);
        let (name, other) = if act == "Silu" { ("fuse_silu", "fuse_hard_swish") } else { ("fuse_hard_swish", "fuse_silu") };
        assert_eq!((pass(&r, name), pass(&r, other), pass(&r, "fuse_gelu")), (1, 0, 0), "{act}: {r:?}");
        assert_eq!(ops(&r), [("Conv2dAct".to_string(), 1)], "{act}: {r:?}");
        let f = |v: f32| if act == "Silu" { v / (1.0 + (-v).exp()) } else { v * (v / 6.0 + 0.5).clamp(0.0, 1.0) };
        close(&y, &x.iter().map(|v| f(1.5 * v)).collect::<Vec<_>>(), 1e-6);
    }
}

#[test]
fn written_out_layer_norm_becomes_one_step() {
    let gamma: Vec<f32> = (0..8).map(|i| 0.5 + i as f32 * 0.1).collect();
    let beta: Vec<f32> = (0..8).map(|i| i as f32 * -0.05).collect();
    let mean = |name: &str, i: &str, o: &str| node_with("ReduceMean", name, &[i], &[o], vec![ints_attr("axes", &[-1])]);
    let m = model(
        vec![
            mean("m1", "x", "mu"),
            node("Sub", "sub", &["x", "mu"], &["d"]),
            node("Pow", "pow", &["d", "two"], &["d2"]),
            mean("m2", "d2", "var"),
            node("Add", "eps", &["var", "eps"], &["ve"]),
            node("Sqrt", "sqrt", &["ve"], &["sd"]),
            node("Div", "div", &["d", "sd"], &["n"]),
            node("Mul", "gamma", &["n", "g"], &["ng"]),
            node("Add", "beta", &["ng", "b"], &["y"]),
        ],
        vec![value_info("x", &fixed(&[2, 3, 8]))],
        vec![value_info("y", &[])],
        vec![tensor("two", &[], &[2.0]), tensor("eps", &[], &[1e-5]), tensor("g", &[8], &gamma), tensor("b", &[8], &beta)],
        13,
    );
    let x = ramp(48);
    let (r, y) = convert_run(&m, &[2, 3, 8], &x);
    assert_eq!(pass(&r, "fuse_layer_norm"), 8, "{r:?}");
    assert_eq!(ops(&r), [("LayerNorm".to_string(), 1)], "{r:?}");
    let mut want = Vec::new();
    for row in x.chunks(8) {
        let mu = row.iter().sum::<f32>() / 8.0;
        let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f32>() / 8.0;
        want.extend(row.iter().enumerate().map(|(j, v)| (v - mu) / (var + 1e-5).sqrt() * gamma[j] + beta[j]));
    }
    close(&y, &want, 1e-5);
}

#[test]
fn files_ask_for_the_reader_version_their_ops_need() {
    let dir = tempfile::tempdir().unwrap();
    for (op, want) in [("Relu", 0u16), ("Erf", 1)] {
        let p = dir.path().join(format!("{op}.onnx"));
        save(
            &model(vec![node(op, "n", &["x"], &["y"])], vec![value_info("x", &fixed(&[1, 4]))], vec![value_info("y", &[])], vec![], 13),
            &p,
        );
        let out = dir.path().join(format!("{op}.jrt"));
        convert(&p, &ConvertOptions::default()).unwrap().write(&out).unwrap();
        let b = std::fs::read(&out).unwrap();
        let (major, minor) = (u16::from_le_bytes([b[12], b[13]]), u16::from_le_bytes([b[14], b[15]]));
        assert_eq!((major, minor), (1, want), "{op}: minimum reader version");
        assert_eq!(u16::from_le_bytes([b[10], b[11]]), jetrt_format::FORMAT_MINOR);
        Model::open(&out).unwrap();
    }
}
