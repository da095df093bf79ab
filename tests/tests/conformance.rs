//! ONNX conformance: the onnx package's node test cases
//! (tools/gen_conformance.py → target/testdata/onnx_node), converted and
//! run, for every case whose ops are all declared supported. Tolerances are
//! the onnx runner's (per case). Cases excluded for a documented reason are
//! in tests/conformance/exclusions.txt; docs/OPERATORS.md is generated from
//! the results (JETRT_BLESS=1 rewrites it; otherwise it must be current).

use anyhow::{bail, Context, Result};
use jetrt::{DType, Model, TensorRef};
use jetrt_converter::tensor::{Data, Tensor};
use jetrt_converter::{convert, ConvertOptions};
use jetrt_tests::{compare, require_testdata};
use jetrt_tools::npy::{self, Array};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    file: String,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    rtol: f64,
    atol: f64,
    ops: Vec<String>,
    opset: i64,
    inputs: Vec<Entry>,
    outputs: Vec<Entry>,
    unrepresentable: Option<String>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// (pattern, reason) from tests/conformance/exclusions.txt.
fn exclusions() -> Vec<(String, String)> {
    let path = workspace().join("tests/conformance/exclusions.txt");
    let text = std::fs::read_to_string(&path).expect("exclusions.txt readable");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(':').unwrap_or_else(|| panic!("exclusions.txt: {l:?} is not `NAME: reason`"));
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

fn excluded<'a>(ex: &'a [(String, String)], name: &str) -> Option<&'a (String, String)> {
    ex.iter().find(|(p, _)| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// How a case's inputs were fed: all at run time, or some bound to their
/// values at conversion (jetrt fixes shapes, and some operands, such as
/// shape tensors and Resize scales, must be known when converting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Feed {
    RunTime,
    NonFloatBound,
    AllButFirstBound,
    /// Everything bound: the graph is evaluated at conversion (Range, Shape
    /// arithmetic), as exporters' shape computations are.
    AllBound,
}

fn tensor_of(a: &Array) -> Result<Tensor> {
    let data = Data::from_le_bytes(a.dtype, &a.data).context("npy data length")?;
    Ok(Tensor::new(a.shape.clone(), data))
}

/// Converts with `feed`, runs and compares; `Ok(None)` when this feed does
/// not convert (the caller tries the next one).
fn run(dir: &Path, case: &Case, feed: Feed) -> Result<Option<Vec<String>>> {
    let inputs: Vec<(String, Array)> =
        case.inputs.iter().map(|e| Ok((e.name.clone(), npy::read(&dir.join(&e.file))?))).collect::<Result<_>>()?;
    let bound = |k: usize, a: &Array| match feed {
        Feed::RunTime => false,
        Feed::NonFloatBound => a.dtype != DType::F32,
        Feed::AllButFirstBound => k > 0,
        Feed::AllBound => true,
    };
    let mut opts = ConvertOptions { kernels: jetrt_tests::kernels(), ..Default::default() };
    for (k, (name, a)) in inputs.iter().enumerate() {
        if bound(k, a) {
            opts.bind.push((name.clone(), tensor_of(a)?));
        } else {
            opts.input_shapes.push((name.clone(), a.shape.clone()));
        }
    }
    let conv = match convert(&dir.join("model.onnx"), &opts) {
        Ok(c) => c,
        Err(e) => return if feed == Feed::AllBound { Err(e.into()) } else { Ok(None) },
    };
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("model.jrt");
    conv.write(&path)?;
    let model = Model::open(&path)?;
    let mut session = model.session(jetrt_tests::session_options().with_threads(2))?;
    for (k, (name, a)) in inputs.iter().enumerate() {
        if !bound(k, a) {
            session.set_input(name, TensorRef::from_bytes(a.dtype, &a.shape, &a.data))?;
        }
    }
    session.run_loaded()?;
    let outputs = model.outputs();
    let mut problems = Vec::new();
    for e in &case.outputs {
        let want = npy::read(&dir.join(&e.file))?;
        let Some(i) = outputs.iter().position(|t| t.name == e.name) else { bail!("the converted model has no output {:?}", e.name) };
        let got = Array { dtype: outputs[i].dtype, shape: outputs[i].shape.clone(), data: session.output(i).context("output")?.to_vec() };
        if got.shape != want.shape || got.dtype != want.dtype {
            problems.push(format!("output {:?} is {:?} {:?}, expected {:?} {:?}", e.name, got.dtype, got.shape, want.dtype, want.shape));
            continue;
        }
        let (g, w) = (tensor_of(&got)?, tensor_of(&want)?);
        let float = matches!(want.dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16);
        if float {
            let (g, w): (Vec<f32>, Vec<f32>) = (g.floats(), w.floats());
            let c = compare(&e.name, &g, &w, case.rtol, case.atol);
            if c.mismatches > 0 {
                problems
                    .push(format!("output {:?}: {} of {} outside tolerance, max abs err {:.3e}", e.name, c.mismatches, c.len, c.max_abs));
            }
        } else if g.data != w.data {
            problems.push(format!("output {:?}: integer/bool values differ", e.name));
        }
    }
    Ok(Some(problems))
}

/// Runs a case with the first feed that converts.
fn run_case(dir: &Path, case: &Case) -> Result<(Feed, Vec<String>)> {
    for feed in [Feed::RunTime, Feed::NonFloatBound, Feed::AllButFirstBound, Feed::AllBound] {
        if let Some(problems) = run(dir, case, feed)? {
            return Ok((feed, problems));
        }
    }
    unreachable!("the last feed returns an error or a result")
}

#[derive(Default)]
struct OpStats {
    passed: usize,
    excluded: usize,
    opsets: BTreeSet<i64>,
}

fn operators_md(stats: &BTreeMap<&str, OpStats>, total_in_scope: usize, total_passed: usize) -> String {
    let mut s = String::from(
        "# Supported ONNX operators\n\n\
         Generated by `JETRT_BLESS=1 cargo test -p jetrt-tests --test conformance` from the\n\
         converter's declared list and the ONNX backend node test cases (onnx 1.23.2,\n\
         `tools/gen_conformance.py`). Do not edit by hand.\n\n\
         A case runs when every op in it is declared; it passes when each output is within\n\
         the onnx runner's tolerance. Excluded cases are listed with their reasons in\n\
         `tests/conformance/exclusions.txt`. Operands that must be known at conversion\n\
         (shape tensors, axes, Resize scales, ...) are bound to the case's values, as\n\
         `jetc convert --bind` does; every other operand is fed at run time.\n\n\
         Run-time element type: float32 unless the op says otherwise. Integer and bool\n\
         tensors that only depend on constants and fixed shapes are folded at conversion.\n\n",
    );
    s.push_str(&format!("{total_passed} of {total_in_scope} cases whose ops are all declared pass.\n\n"));
    s.push_str("| op | run-time types | cases passed | cases excluded | opsets tested |\n|---|---|---|---|---|\n");
    for (op, st) in stats {
        let opsets: Vec<String> = st.opsets.iter().map(|o| o.to_string()).collect();
        let types = jetrt_converter::onnx::runtime_types(op);
        s.push_str(&format!(
            "| {op} | {types} | {} | {} | {} |\n",
            st.passed,
            st.excluded,
            if opsets.is_empty() { "-".into() } else { opsets.join(", ") }
        ));
    }
    s
}

#[test]
fn onnx_node_cases_of_declared_ops_pass() {
    let Some(td) = require_testdata("conformance") else { return };
    let root = td.join("onnx_node");
    assert!(root.join("index.json").is_file(), "{} missing: run tools/gen_testdata.sh", root.display());
    let declared: BTreeSet<&str> = jetrt_converter::onnx::supported_operators().into_iter().collect();
    let ex = exclusions();
    let mut used_exclusions = BTreeSet::new();
    let mut stats: BTreeMap<&str, OpStats> = declared.iter().map(|&o| (o, OpStats::default())).collect();
    let (mut in_scope, mut passed, mut failures) = (0usize, 0usize, Vec::new());
    let mut names: Vec<_> =
        std::fs::read_dir(&root).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).map(|e| e.path()).collect();
    names.sort();
    let only = std::env::var("JETRT_CONFORMANCE_ONLY").ok();
    for dir in names {
        let case: Case = serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
        if !case.ops.iter().all(|o| declared.contains(o.as_str())) {
            continue;
        }
        if only.as_deref().is_some_and(|p| !case.name.contains(p)) {
            continue;
        }
        in_scope += 1;
        let ops_of_case: Vec<&str> = case.ops.iter().map(|o| *declared.get(o.as_str()).unwrap()).collect();
        let outcome = match &case.unrepresentable {
            Some(why) => Err(format!("data not storable: {why}")),
            None => match run_case(&dir, &case) {
                Ok((_, problems)) if problems.is_empty() => Ok(()),
                Ok((feed, problems)) => Err(format!("{feed:?}: {}", problems.join("; "))),
                Err(e) => Err(format!("{e:#}")),
            },
        };
        match (outcome, excluded(&ex, &case.name)) {
            (Ok(()), None) => {
                passed += 1;
                for o in &ops_of_case {
                    let st = stats.get_mut(o).unwrap();
                    st.passed += 1;
                    st.opsets.insert(case.opset);
                }
            }
            (Ok(()), Some((p, _))) => failures.push(format!("{}: passes now; remove {p:?} from exclusions.txt", case.name)),
            (Err(_), Some((p, _))) => {
                used_exclusions.insert(p.clone());
                for o in &ops_of_case {
                    stats.get_mut(o).unwrap().excluded += 1;
                }
            }
            (Err(e), None) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    if only.is_none() {
        for (p, _) in &ex {
            if !used_exclusions.contains(p) {
                failures.push(format!("exclusions.txt: {p:?} matches no failing in-scope case; remove it"));
            }
        }
    }
    eprintln!("{in_scope} in-scope ONNX node cases: {passed} pass, {} failures", failures.len());
    assert!(failures.is_empty(), "{} failing:\n{}", failures.len(), failures.join("\n"));
    if only.is_none() {
        let md = operators_md(&stats, in_scope, passed);
        let path = workspace().join("docs/OPERATORS.md");
        if std::env::var("JETRT_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &md).unwrap();
        } else {
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == md,
                "docs/OPERATORS.md is stale: regenerate it with JETRT_BLESS=1 cargo test -p jetrt-tests --test conformance"
            );
        }
    }
}
