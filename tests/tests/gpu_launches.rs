//! Every launch the CUDA lowering table makes matches its kernel's
//! signature in kernels/cuda/*.cu: the kernel exists, and its parameters
//! are, one for one, a pointer, an int, a float, a 64-bit value or a
//! struct of the size C gives it. A mismatch would read garbage on a GPU;
//! CI has none, so it is checked here, on the plans of every operator case
//! and the real models, in float, int8, int4 and sparse.

use jetrt::host::{gpu_launches, GpuParam};
use jetrt::Model;
use jetrt_converter::quant::{Precision, Prune, QuantOptions};
use jetrt_converter::tensor::{Data, Tensor};
use jetrt_converter::{convert, model_inputs, ConvertOptions};
use jetrt_tools::npy::{self, Array};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The signatures of the `extern "C" __global__` kernels in `src`.
fn signatures(src: &str) -> BTreeMap<String, Vec<GpuParam>> {
    let structs = struct_sizes(src);
    let mut out = BTreeMap::new();
    for (at, _) in src.match_indices("extern \"C\" __global__ void") {
        let rest = &src[at..];
        let open = rest.find('(').expect("a parameter list");
        let mut head = &rest[..open];
        if head.contains("__launch_bounds__") {
            // `__launch_bounds__(256) name(`: the list is after the bounds.
            let close = open + rest[open..].find(')').unwrap() + 1;
            let open2 = close + rest[close..].find('(').unwrap();
            head = &rest[close..open2];
            return_sig(&mut out, head, &rest[open2..], &structs);
            continue;
        }
        return_sig(&mut out, head, &rest[open..], &structs);
    }
    out
}

fn return_sig(out: &mut BTreeMap<String, Vec<GpuParam>>, head: &str, list: &str, structs: &BTreeMap<String, usize>) {
    let name = head.split_whitespace().last().expect("a kernel name").to_string();
    let close = list.find(')').expect("a closed parameter list");
    let params = list[1..close]
        .split(',')
        .map(|p| {
            let p = p.trim();
            if p.contains('*') {
                return GpuParam::Pointer;
            }
            let ty = p.split_whitespace().rev().nth(1).unwrap_or_else(|| panic!("{name}: parameter {p:?}"));
            match ty {
                "int" => GpuParam::I32,
                "float" => GpuParam::F32,
                "u64" | "i64" => GpuParam::U64,
                s => GpuParam::Struct(*structs.get(s).unwrap_or_else(|| panic!("{name}: struct {s} of plain fields not found"))),
            }
        })
        .collect();
    out.insert(name, params);
}

/// Sizes (rounded up to 8, as the launches pass them) of the structs
/// whose members are plain fields: `int a, b;`, `i64 st[JRT_MAX_RANK];`.
fn struct_sizes(src: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (at, _) in src.match_indices("\nstruct ") {
        let rest = &src[at + 8..];
        let name = rest.split_whitespace().next().unwrap().to_string();
        let body = &rest[rest.find('{').unwrap() + 1..rest.find("};").unwrap()];
        let body: String = body.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join(" ");
        let (mut bytes, mut align, mut plain) = (0usize, 4usize, true);
        for field in body.split(';').map(str::trim).filter(|f| !f.is_empty()) {
            let mut words = field.splitn(2, char::is_whitespace);
            let size = match words.next().unwrap() {
                "int" | "float" => 4,
                "i64" | "u64" => 8,
                _ => {
                    plain = false;
                    break;
                }
            };
            align = align.max(size);
            for name in words.next().unwrap_or("").split(',') {
                let count = if name.contains("[JRT_MAX_RANK]") { 8 } else { 1 };
                bytes = bytes.next_multiple_of(size) + size * count;
            }
        }
        if plain && !body.contains('(') {
            out.insert(name, bytes.next_multiple_of(align).next_multiple_of(8));
        }
    }
    out
}

fn check(model: &Model, what: &str, kernels: &BTreeMap<String, Vec<GpuParam>>, seen: &mut BTreeSet<&'static str>) -> usize {
    let mut n = 0;
    for fp16 in [false, true] {
        let mut options = jetrt::SessionOptions::default().with_fp16(fp16);
        options.cuda.unverified_kernels = true;
        for sms in [8, 132] {
            for l in gpu_launches(model, &options, sms) {
                let want =
                    kernels.get(l.kernel).unwrap_or_else(|| panic!("{what} step {}: no kernel {} in the CUDA source", l.step, l.kernel));
                assert_eq!(&l.params, want, "{what} step {}: the launch of {} does not match its signature", l.step, l.kernel);
                assert!(l.block > 0 && l.grid.0 > 0 && l.grid.1 > 0 && l.grid.2 > 0, "{what} step {}: empty grid {:?}", l.step, l.grid);
                seen.insert(l.kernel);
                n += 1;
            }
        }
    }
    n
}

/// Conversion options with the case's input shapes (its stored inputs').
fn options(dir: &Path) -> anyhow::Result<ConvertOptions> {
    let case = jetrt_tests::read_case(dir)?;
    let input_shapes =
        case.inputs.iter().map(|e| Ok((e.name.clone(), npy::read(&dir.join(&e.file))?.shape))).collect::<anyhow::Result<_>>()?;
    Ok(ConvertOptions { input_shapes, kernels: jetrt_tests::kernels(), ..Default::default() })
}

/// A node case converted as the conformance test does: inputs at run
/// time, else the non-float ones bound, else all but the first.
fn node_model(dir: &Path) -> Option<Model> {
    let base = options(dir).ok()?;
    let case = jetrt_tests::read_case(dir).ok()?;
    let feeds: [fn(usize, &Array) -> bool; 3] = [|_, _| false, |_, a| a.dtype != jetrt::DType::F32, |k, _| k > 0];
    for bind in feeds {
        let mut opts = ConvertOptions { kernels: base.kernels, ..Default::default() };
        for (k, e) in case.inputs.iter().enumerate() {
            let a = npy::read(&dir.join(&e.file)).ok()?;
            if bind(k, &a) {
                opts.bind.push((e.name.clone(), Tensor::new(a.shape.clone(), Data::from_le_bytes(a.dtype, &a.data)?)));
            } else {
                opts.input_shapes.push((e.name.clone(), a.shape));
            }
        }
        if let Ok(conv) = convert(&dir.join("model.onnx"), &opts) {
            return Model::from_bytes(&conv.file.to_bytes()).ok();
        }
    }
    None
}

fn fp32(dir: &Path) -> Model {
    let conv = convert(&dir.join("model.onnx"), &options(dir).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    Model::from_bytes(&conv.file.to_bytes()).unwrap()
}

fn quantized(dir: &Path, precision: Precision, prune: Option<Prune>) -> Model {
    let mut opts = options(dir).unwrap();
    let inputs = model_inputs(&dir.join("model.onnx"), &opts).unwrap();
    let samples = jetrt_tools::samples::random(&inputs, 4).unwrap();
    opts.quant = Some(QuantOptions { precision, prune, samples, threads: 2, kernels: jetrt_tests::kernels(), ..Default::default() });
    let conv = convert(&dir.join("model.onnx"), &opts).unwrap();
    Model::from_bytes(&conv.file.to_bytes()).unwrap()
}

#[test]
fn every_launch_matches_its_kernel_signature() {
    let Some(data) = jetrt_tests::require_testdata("every_launch_matches_its_kernel_signature") else { return };
    let kernels = signatures(&jetrt::host::kernel_source());
    assert!(kernels.len() >= 40, "found only {} kernels: the parser is off", kernels.len());
    let mut seen = BTreeSet::new();
    let mut launches = 0;
    let mut cases: Vec<_> =
        std::fs::read_dir(data.join("ops")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("model.onnx").is_file()).collect();
    cases.sort();
    for dir in &cases {
        launches += check(&fp32(dir), &dir.display().to_string(), &kernels, &mut seen);
    }
    // The onnx node cases that convert (the conformance test says which
    // must): they reach the layout, cast, gather, pad and where kernels.
    let mut nodes: Vec<_> =
        std::fs::read_dir(data.join("onnx_node")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("model.onnx").is_file()).collect();
    nodes.sort();
    for dir in &nodes {
        if let Some(model) = node_model(dir) {
            launches += check(&model, &dir.display().to_string(), &kernels, &mut seen);
        }
    }
    for name in ["resnet18_op13", "mobilenet_v3_small_op13", "transformer_encoder_op13"] {
        let dir = data.join("real").join(name);
        launches += check(&fp32(&dir), name, &kernels, &mut seen);
        if name.starts_with("transformer") {
            continue; // int64 token inputs: random calibration samples do not make sense
        }
        for (precision, prune) in [(Precision::Int8, None), (Precision::Int4, None), (Precision::Fp32, Some(Prune::Magnitude(0.6)))] {
            let what = format!("{name} {precision:?} {prune:?}");
            launches += check(&quantized(&dir, precision, prune), &what, &kernels, &mut seen);
        }
    }
    // Kernels by family: jrt_pad_1 .. jrt_pad_8 share one signature shape.
    let family = |k: &str| match k.rsplit_once('_') {
        Some((f, "1" | "2" | "4" | "8")) => f.to_string(),
        _ => k.to_string(),
    };
    let all: BTreeSet<_> = kernels.keys().map(|k| family(k)).collect();
    let hit: BTreeSet<_> = seen.iter().map(|k| family(k)).collect();
    let unused: Vec<_> = all.difference(&hit).collect();
    eprintln!("{launches} launches checked; {} of {} kernel families launched; never launched: {unused:?}", hit.len(), all.len());
    assert!(hit.len() * 100 >= all.len() * 85, "the models exercise too few kernels: {unused:?} never launched");
}
