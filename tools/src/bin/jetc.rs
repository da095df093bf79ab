//! jetc — the jetrt converter: ONNX in, `.jrt` out.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use jetrt::Model;
use jetrt_converter::{convert, parse_input_shape, ConvertOptions, Report};
use jetrt_tools::human_bytes;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "jetc", version, about = "Convert ONNX models into .jrt files for the jetrt runtime, and inspect them")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Convert an ONNX model: fix its shapes, fold and fuse it, plan its memory, write a .jrt file.
    Convert {
        /// The ONNX model (external data files are read from its folder).
        model: PathBuf,
        /// Where to write the .jrt file (written atomically).
        #[arg(short, long, required_unless_present = "check")]
        output: Option<PathBuf>,
        /// Only check: list everything in the model jetrt cannot convert (every node, in one
        /// pass) and write nothing. Exits with status 1 when something is unsupported.
        #[arg(long)]
        check: bool,
        /// Fix an input to the value in a .npy file: NAME=FILE.npy. It becomes a constant and
        /// everything computed from it alone is folded (e.g. a shape or scale input).
        #[arg(long = "bind", value_name = "NAME=FILE.npy")]
        bind: Vec<String>,
        /// Fix the shape of an input: NAME=D0,D1,... (repeat for several inputs). Required for
        /// symbolic or unknown dimensions; for a static input it must match the model.
        #[arg(long = "input-shape", value_name = "NAME=D0,D1,...")]
        input_shapes: Vec<String>,
        /// Model name stored in the file (default: the ONNX file's stem).
        #[arg(long)]
        name: Option<String>,
        /// Also write the conversion report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Print nothing but errors.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List the ONNX operators jetc converts, with the element types each takes at run time
    /// (docs/OPERATORS.md has their conformance results).
    Operators,
    /// Show what a .jrt file holds: inputs, outputs, ops, weight and arena bytes.
    Inspect {
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// List every step of the plan.
        #[arg(long)]
        steps: bool,
    },
}

/// Parses `NAME=FILE.npy` into the input name and its value.
fn parse_bind(arg: &str) -> Result<(String, jetrt_converter::tensor::Tensor)> {
    let (name, file) = arg.split_once('=').with_context(|| format!("--bind {arg:?}: expected NAME=FILE.npy"))?;
    let a = jetrt_tools::npy::read(std::path::Path::new(file)).with_context(|| format!("--bind {name}"))?;
    let data = jetrt_converter::tensor::Data::from_le_bytes(a.dtype, &a.data).with_context(|| format!("--bind {name}: bad data"))?;
    Ok((name.to_string(), jetrt_converter::tensor::Tensor::new(a.shape, data)))
}

fn report_json(r: &Report, output: &std::path::Path, seconds: f64) -> serde_json::Value {
    let io = |v: &[jetrt_converter::IoInfo]| {
        v.iter().map(|t| json!({"name": t.name, "dtype": t.dtype.numpy_name(), "shape": t.shape})).collect::<Vec<_>>()
    };
    json!({
        "source": r.source.display().to_string(),
        "output": output.display().to_string(),
        "seconds": seconds,
        "opset": r.opset,
        "onnx_nodes": r.onnx_nodes,
        "folded_nodes": r.folded,
        "identity_nodes_removed": r.identities,
        "passes": r.passes.iter().map(|(p, n)| json!({"pass": p, "nodes": n})).collect::<Vec<_>>(),
        "steps": r.steps,
        "ops": r.ops,
        "inputs": io(&r.inputs),
        "outputs": io(&r.outputs),
        "weights_bytes": r.weights_bytes,
        "arena_bytes": r.arena_bytes,
        "intermediate_bytes": r.intermediate_bytes,
        "warnings": r.warnings,
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Convert { model, output, check, bind, input_shapes, name, report, quiet } => {
            let t0 = Instant::now();
            let input_shapes = input_shapes.iter().map(|s| parse_input_shape(s)).collect::<Result<Vec<_>, _>>()?;
            let bind = bind.iter().map(|b| parse_bind(b)).collect::<Result<Vec<_>>>()?;
            let opts = ConvertOptions { input_shapes, name, bind };
            if check {
                let problems = jetrt_converter::check(&model, &opts)?;
                if problems.is_empty() {
                    println!("{}: every node converts", model.display());
                    return Ok(());
                }
                println!("{}: {} thing(s) jetrt cannot convert:", model.display(), problems.len());
                for p in &problems {
                    println!("  - {p}");
                }
                std::process::exit(1);
            }
            let output = output.context("--output is required")?;
            if !quiet {
                eprintln!("converting {} ...", model.display());
            }
            let conv = convert(&model, &opts)?;
            conv.write(&output)?;
            // Prove the file opens and validates before declaring success.
            let m = Model::open(&output).with_context(|| format!("the written file {} does not validate", output.display()))?;
            let secs = t0.elapsed().as_secs_f64();
            let r = &conv.report;
            if let Some(path) = report {
                let text = serde_json::to_string_pretty(&report_json(r, &output, secs))?;
                std::fs::write(&path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
            }
            if quiet {
                return Ok(());
            }
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            println!("converted {} -> {} in {secs:.2} s", model.display(), output.display());
            println!(
                "  onnx:    opset {}, {} nodes ({} folded into constants, {} identities removed)",
                r.opset, r.onnx_nodes, r.folded, r.identities
            );
            let passes: Vec<String> = r.passes.iter().map(|(p, n)| format!("{p} {n}")).collect();
            println!("  passes:  {}", passes.join(", "));
            let ops: Vec<String> = r.ops.iter().map(|(o, n)| format!("{o} {n}")).collect();
            println!("  plan:    {} steps: {}", r.steps, ops.join(", "));
            for t in &r.inputs {
                println!("  input:   {} {} {:?}", t.name, t.dtype.numpy_name(), t.shape);
            }
            for t in &r.outputs {
                println!("  output:  {} {} {:?}", t.name, t.dtype.numpy_name(), t.shape);
            }
            println!(
                "  memory:  weights {} (mapped, not copied) + arena {} (all intermediates: {}) + scratch {} per thread",
                human_bytes(r.weights_bytes),
                human_bytes(r.arena_bytes),
                human_bytes(r.intermediate_bytes),
                human_bytes(m.scratch_bytes_per_thread() as u64)
            );
            println!("  file:    {} bytes", m.file_bytes());
            Ok(())
        }
        Cmd::Operators => {
            let ops = jetrt_converter::onnx::supported_operators();
            println!("{} ONNX operators (default domain), run-time element types:", ops.len());
            for op in ops {
                println!("  {op:<20} {}", jetrt_converter::onnx::runtime_types(op));
            }
            Ok(())
        }
        Cmd::Inspect { file, json, steps } => {
            let t0 = Instant::now();
            let m = Model::open(&file)?;
            let open_ms = t0.elapsed().as_secs_f64() * 1e3;
            let mut ops = std::collections::BTreeMap::<&str, usize>::new();
            let all = m.steps();
            for s in &all {
                *ops.entry(s.op).or_default() += 1;
            }
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let io = |v: Vec<jetrt::TensorInfo>| {
                v.into_iter().map(|t| json!({"name": t.name, "dtype": t.dtype.numpy_name(), "shape": t.shape})).collect::<Vec<_>>()
            };
            if json {
                let mut obj = json!({
                    "file": file.display().to_string(),
                    "format_version": format!("{}.{}", m.format_version().0, m.format_version().1),
                    "file_bytes": m.file_bytes(),
                    "metadata": m.metadata().iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                    "inputs": io(m.inputs()),
                    "outputs": io(m.outputs()),
                    "steps": all.len(),
                    "ops": ops,
                    "weights_bytes": m.weights_bytes(),
                    "arena_bytes": m.arena_bytes(),
                    "intermediate_bytes": m.intermediate_bytes(),
                    "scratch_bytes_per_thread": m.scratch_bytes_per_thread(),
                    "sections": m.sections().iter().map(|s| json!({"kind": format!("{:?}", s.kind), "offset": s.offset, "bytes": s.len})).collect::<Vec<_>>(),
                });
                if steps {
                    obj["plan"] = all.iter().map(|s| json!({"op": s.op, "inputs": s.inputs, "outputs": s.outputs})).collect();
                }
                println!("{}", serde_json::to_string_pretty(&obj)?);
                return Ok(());
            }
            let (maj, min) = m.format_version();
            println!("{}: jetrt format {maj}.{min}, {} bytes, validated in {open_ms:.1} ms", file.display(), m.file_bytes());
            for (k, v) in m.metadata() {
                println!("  {k}: {v}");
            }
            println!("inputs:");
            for t in m.inputs() {
                println!("  {} {} {:?}", t.name, t.dtype.numpy_name(), t.shape);
            }
            println!("outputs:");
            for t in m.outputs() {
                println!("  {} {} {:?}", t.name, t.dtype.numpy_name(), t.shape);
            }
            let opl: Vec<String> = ops.iter().map(|(o, n)| format!("{o} {n}")).collect();
            println!("plan: {} steps: {}", all.len(), opl.join(", "));
            println!("memory:");
            println!(
                "  weights        {:>12}  ({} bytes, used in place from the mapping)",
                human_bytes(m.weights_bytes() as u64),
                m.weights_bytes()
            );
            println!(
                "  arena          {:>12}  ({} bytes, allocated once per session)",
                human_bytes(m.arena_bytes() as u64),
                m.arena_bytes()
            );
            println!(
                "  intermediates  {:>12}  (sum of all intermediate tensors, without reuse)",
                human_bytes(m.intermediate_bytes() as u64)
            );
            println!("  scratch        {:>12}  per thread", human_bytes(m.scratch_bytes_per_thread() as u64));
            println!("  session total  {:>12}  with {threads} threads (arena + scratch)", human_bytes(m.session_bytes(threads) as u64));
            if steps {
                println!("steps:");
                for (i, s) in all.iter().enumerate() {
                    println!("  {i:4} {:<16} {:?} -> {:?}", s.op, s.inputs, s.outputs);
                }
            }
            Ok(())
        }
    }
}

fn main() {
    jetrt_tools::main_with(|| run(Cli::parse()));
}
