//! jetrt — run, benchmark and inspect .jrt models on this machine.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use jetrt::{Backend, DType, Model, Session, SessionOptions, TensorRef};
use jetrt_tools::npy::{self, Array};
use jetrt_tools::{human_bytes, peak_rss_bytes, sanitize_name};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(name = "jetrt", version, about = "Run .jrt models (made by jetc) with fixed, preallocated memory")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Device {
    /// The GPU when one works, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

impl From<Device> for Backend {
    fn from(d: Device) -> Backend {
        match d {
            Device::Auto => Backend::Auto,
            Device::Cpu => Backend::Cpu,
            Device::Cuda => Backend::Cuda,
        }
    }
}

/// Where and how wide a session runs.
#[derive(clap::Args, Clone, Copy)]
struct Exec {
    /// Threads (0 = the cores this process may use: its CPU affinity and cgroup quota).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[arg(long, value_enum, default_value = "auto")]
    device: Device,
    /// On the GPU, multiply convolutions and matrix products in fp16 on the tensor cores
    /// (fp32 accumulation; weights and activations stay fp32). GPU only; until a GPU check has
    /// run these kernels they also need JETRT_CUDA_UNVERIFIED=1.
    #[arg(long)]
    fp16: bool,
}

impl Exec {
    /// The session options: the environment's (`jetrt_tools::env`), then
    /// these flags.
    fn options(self) -> Result<SessionOptions> {
        Ok(jetrt_tools::env::session_options()?.with_backend(self.device.into()).with_threads(self.threads).with_fp16(self.fp16))
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a model once on .npy inputs and write every output as DIR/OUTPUT.npy.
    Run {
        file: PathBuf,
        /// An input: NAME=FILE.npy (repeat for each input; a single-input model also takes FILE.npy).
        #[arg(long = "input", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        /// Folder for the outputs (created if needed); names have every character outside
        /// [A-Za-z0-9_.-] replaced by `_`.
        #[arg(long)]
        output_dir: PathBuf,
        #[command(flatten)]
        exec: Exec,
        #[command(flatten)]
        monitor: MonitorArgs,
    },
    /// Measure load time and latency percentiles.
    Bench {
        file: PathBuf,
        /// An input: NAME=FILE.npy; without, deterministic random data is used.
        #[arg(long = "input", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        #[command(flatten)]
        exec: Exec,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Also time every step and show where the time goes.
        #[arg(long)]
        profile: bool,
        #[command(flatten)]
        monitor: MonitorArgs,
    },
    /// Run the golden test vectors stored in the file (jetc convert --golden) and compare the
    /// outputs with the converter's: proves that this file computes on this machine what it
    /// computed where it was made. Exits 1 when a vector fails or the file has none.
    Verify {
        file: PathBuf,
        #[command(flatten)]
        exec: Exec,
        /// Print one JSON object: {"ok", "device", "vectors", "outputs": [{"vector", "output",
        /// "max_abs", "cosine", "pass"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Replay a folder of samples through the model and the drift monitor and report drift
    /// against the reference stored at conversion (jetc convert --calib / --drift-ref): per
    /// tensor the largest PSI, KS distance and standardized mean shift over the replay's
    /// windows, and the worst verdict. Exits 0 however drifted the data is (read the verdict).
    Drift {
        file: PathBuf,
        /// Samples as .npy files named INPUT.K.npy (K = 0, 1, ...; replayed in order of K), as for
        /// calibration.
        #[arg(long, value_name = "DIR")]
        input_dir: PathBuf,
        /// Print one JSON object: {"verdict", "samples", "window", "first_warn", "first_alarm",
        /// "tensors": [{"name", "psi", "ks", "mean_shift", "verdict", "worst_feature"}]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        exec: Exec,
        #[command(flatten)]
        monitor: MonitorArgs,
    },
    /// The over-the-air update agent: fetch the newest signed version of the model from a TUF
    /// repository, install it into the inactive A/B slot, check it with its golden vectors,
    /// confirm or roll back (docs/UPDATES.md). Exit 0: installed or nothing newer; 2: the new
    /// version failed its health check and was rolled back; 1: refused (every reason is logged).
    Update {
        #[command(flatten)]
        args: jetrt_tools::ota::UpdateArgs,
        #[command(flatten)]
        exec: Exec,
    },
    /// Serve inference requests over HTTP on loopback and a Unix socket (docs/SERVE.md), from
    /// a .jrt file or from a slot folder kept by jetrt update, swapping to each newly
    /// confirmed model between requests.
    Serve {
        #[command(flatten)]
        args: jetrt_tools::serve::ServeArgs,
        #[command(flatten)]
        exec: Exec,
    },
    /// TUF client for the TUF project's conformance suite (its client-under-test protocol),
    /// on the update agent's client code.
    Tuf(jetrt_tools::ota::TufArgs),
    /// Describe this machine: board (docs/BOARDS.md), L4T release, memory, CPU features,
    /// kernel variant, GPU.
    Info {
        /// Print one JSON object: {"board", "l4t_release", "dram_bytes", "cpu", "gpu", ...}.
        #[arg(long)]
        json: bool,
        /// Read the board's files (/proc/device-tree, /etc/nv_tegra_release, /proc/meminfo,
        /// /proc/cpuinfo, /sys) under DIR instead of / (a copy of a board's files; CUDA is not
        /// asked). $JETRT_ROOT does the same for every command.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Also read the board's telemetry: temperatures, power per rail, GPU load, CPU and
        /// memory clocks, nvpmodel mode, throttling (docs/BOARDS.md).
        #[arg(long)]
        telemetry: bool,
        /// With --telemetry: print one line every SECS seconds until interrupted (or --count).
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1", requires = "telemetry")]
        watch: Option<f64>,
        /// With --watch: stop after N lines.
        #[arg(long, value_name = "N", requires = "watch")]
        count: Option<u64>,
        /// With --telemetry: also read an LM75/TMP102-compatible temperature sensor on an I2C
        /// bus, BUS:ADDRESS (e.g. /dev/i2c-1:0x48 on a 40-pin header's I2C pins).
        #[arg(long, value_name = "BUS:ADDRESS", requires = "telemetry")]
        i2c_temp: Option<String>,
    },
}

#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Drift monitoring")]
struct MonitorArgs {
    /// Watch the inputs and outputs for drift against the file's reference (run: where this
    /// one inference lies in it; bench: the monitor's cost per inference and its verdict).
    #[arg(long)]
    monitor: bool,
    /// Inferences in the monitor's sliding window.
    #[arg(long, default_value_t = jetrt::monitor::DEFAULT_WINDOW, value_name = "N")]
    drift_window: usize,
    /// Write the monitor's state in Prometheus text format (node-exporter's textfile
    /// collector) to this file, replaced atomically, on every verdict change and at the end.
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Drive a GPIO line while the verdict is at --alarm-level: CHIP:LINE, e.g.
    /// /dev/gpiochip0:17 (Linux character device).
    #[arg(long, value_name = "CHIP:LINE")]
    alarm_gpio: Option<String>,
    /// Verdict that sets the alarm line.
    #[arg(long, value_enum, default_value = "alarm")]
    alarm_level: AlarmLevel,
    /// PSI warn and alarm levels.
    #[arg(long, value_name = "WARN,ALARM", default_value = "0.1,0.25")]
    psi: String,
    /// Kolmogorov-Smirnov distance warn and alarm levels.
    #[arg(long, value_name = "WARN,ALARM", default_value = "0.1,0.2")]
    ks: String,
    /// Standardized mean shift warn and alarm levels (reference standard deviations).
    #[arg(long, value_name = "WARN,ALARM", default_value = "0.5,1")]
    shift: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum AlarmLevel {
    Warn,
    Alarm,
}

fn pair(s: &str, flag: &str) -> Result<(f64, f64)> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--{flag} {s:?}: expected WARN,ALARM"))?;
    match v[..] {
        [w, a] if w.is_finite() && a.is_finite() && 0.0 <= w && w <= a => Ok((w, a)),
        _ => bail!("--{flag} {s:?}: expected WARN,ALARM with 0 <= WARN <= ALARM"),
    }
}

/// The library's drift [`Watch`](jetrt::monitor::Watch) as the monitor
/// flags ask: thresholds, window, metrics file, alarm line.
fn watch(model: &Model, a: &MonitorArgs) -> Result<jetrt::monitor::Watch> {
    use jetrt::monitor::{MonitorOptions, Thresholds, Verdict, Watch};
    let thresholds = Thresholds { psi: pair(&a.psi, "psi")?, ks: pair(&a.ks, "ks")?, shift: pair(&a.shift, "shift")? };
    let mut w = Watch::new(model, MonitorOptions { window: a.drift_window, thresholds })?;
    if let Some(path) = &a.metrics_file {
        w = w.with_metrics_file(path).context("cannot write the metrics file")?;
    }
    if let Some(spec) = &a.alarm_gpio {
        let level = match a.alarm_level {
            AlarmLevel::Warn => Verdict::Warn,
            AlarmLevel::Alarm => Verdict::Alarm,
        };
        w = alarm_gpio(w, spec, level)?;
    }
    Ok(w)
}

/// `--alarm-gpio CHIP:LINE`: the boards crate's alarm line on a GPIO line.
#[cfg(target_os = "linux")]
fn alarm_gpio(w: jetrt::monitor::Watch, spec: &str, level: jetrt::monitor::Verdict) -> Result<jetrt::monitor::Watch> {
    let pin = jetrt_boards::io::linux::output(spec, "jetrt-drift").context("--alarm-gpio")?;
    Ok(w.with_alarm(jetrt::monitor::AlarmPin::new(pin, level)?)?)
}

#[cfg(not(target_os = "linux"))]
fn alarm_gpio(_w: jetrt::monitor::Watch, _spec: &str, _level: jetrt::monitor::Verdict) -> Result<jetrt::monitor::Watch> {
    bail!("--alarm-gpio needs Linux (the GPIO character device)")
}

/// Reads the `--input` arguments into arrays in the model's input order.
fn load_inputs(model: &Model, args: &[String]) -> Result<Vec<Array>> {
    let inputs = model.inputs();
    let mut given: Vec<Option<Array>> = vec![None; inputs.len()];
    for arg in args {
        let (index, path) = match arg.rsplit_once('=') {
            Some((name, path)) if let Some(i) = inputs.iter().position(|t| t.name == name) => (i, path),
            Some((name, _)) if !Path::new(arg).exists() => {
                let known: Vec<&str> = inputs.iter().map(|t| t.name.as_str()).collect();
                bail!("--input {arg:?}: the model has no input named {name:?}; its inputs are {known:?}")
            }
            _ if inputs.len() == 1 => (0, arg.as_str()),
            _ => bail!("--input {arg:?}: give NAME=FILE.npy (the model has {} inputs)", inputs.len()),
        };
        let a = npy::read(Path::new(path))?;
        let info = &inputs[index];
        if a.dtype != info.dtype {
            bail!("input {:?} ({path}): the model expects {}, the file holds {}", info.name, info.dtype.numpy_name(), a.dtype.numpy_name());
        }
        if a.shape != info.shape {
            let dims: Vec<String> = a.shape.iter().map(|d| d.to_string()).collect();
            bail!(
                "input {:?} ({path}): the model expects shape {:?} (the shape it was converted for), the file holds {:?}; \
                 to run this shape, convert the ONNX model again with jetc convert --input-shape {}={}",
                info.name,
                info.shape,
                a.shape,
                info.name,
                dims.join(",")
            );
        }
        given[index] = Some(a);
    }
    let missing: Vec<String> = inputs
        .iter()
        .zip(&given)
        .filter(|(_, g)| g.is_none())
        .map(|(t, _)| format!("{} {} {:?}", t.name, t.dtype.numpy_name(), t.shape))
        .collect();
    if !missing.is_empty() {
        bail!("missing input(s): {} (pass --input NAME=FILE.npy)", missing.join("; "));
    }
    Ok(given.into_iter().flatten().collect())
}

/// Deterministic pseudo-random inputs (xorshift; uniform in [0, 1) for
/// floats, small non-negative integers otherwise).
fn random_inputs(model: &Model) -> Vec<Array> {
    let mut s: u64 = 0x853c_49e6_748f_ea9b;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    model
        .inputs()
        .into_iter()
        .map(|t| {
            let n: usize = t.shape.iter().product();
            let data = match t.dtype {
                DType::F32 => (0..n).flat_map(|_| ((next() >> 40) as f32 / (1u64 << 24) as f32).to_le_bytes()).collect(),
                d => (0..n * d.size()).map(|i| if i % d.size() == 0 { (next() % 4) as u8 } else { 0 }).collect(),
            };
            Array { dtype: t.dtype, shape: t.shape, data }
        })
        .collect()
}

fn open_session(file: &Path, exec: Exec) -> Result<(Model, Session, f64)> {
    let Exec { threads, device, .. } = exec;
    let t0 = Instant::now();
    let model = Model::open(file)?;
    if let Some(root) = jetrt_tools::env::memory_check_root() {
        jetrt::budget::check_fits(&model, device.into(), threads, 1, &root)
            .map_err(|e| anyhow::anyhow!("{e}; {}", jetrt_tools::env::MEMORY_CHECK_HINT))?;
    }
    let session = model.session(exec.options()?)?;
    Ok((model, session, t0.elapsed().as_secs_f64() * 1e3))
}

fn set_inputs(session: &mut Session, inputs: &[Array]) -> Result<()> {
    for (i, a) in inputs.iter().enumerate() {
        session.set_input(i, TensorRef::from_bytes(a.dtype, &a.shape, &a.data))?;
    }
    Ok(())
}

/// A glance at an output: its values when there are a few, its top class
/// when it looks like a classifier's scores.
fn summary(a: &Array) -> String {
    let Some(v) = a.to_f32() else { return String::new() };
    let rows = a.shape.iter().rev().skip(1).product::<usize>();
    if v.len() <= 8 {
        return format!("  {v:?}");
    }
    if rows == 1 {
        if let Some((i, x)) = v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) {
            return format!("  (argmax {i}, value {x:.4})");
        }
    }
    String::new()
}

/// Per-op totals and every step, slowest first, in milliseconds per run.
fn profile_table(steps: &[jetrt::StepInfo], secs: &[f64], runs: usize) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let total: f64 = secs.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let mut by_op = std::collections::BTreeMap::<&str, (usize, f64)>::new();
    for (s, &t) in steps.iter().zip(secs) {
        let e = by_op.entry(s.op).or_default();
        e.0 += 1;
        e.1 += t;
    }
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    let ops = ops
        .into_iter()
        .map(|(op, (n, t))| json!({"op": op, "steps": n, "ms": t * 1e3 / runs as f64, "percent": 100.0 * t / total}))
        .collect();
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by(|&a, &b| secs[b].total_cmp(&secs[a]));
    let slow = order
        .into_iter()
        .map(|i| {
            let ms = secs[i] * 1e3 / runs as f64;
            let gflops = if ms > 0.0 { 2.0 * steps[i].macs as f64 / (ms * 1e6) } else { 0.0 };
            json!({"step": i, "op": steps[i].op, "ms": ms, "macs": steps[i].macs, "gflops": gflops, "output": steps[i].outputs.first().cloned().unwrap_or_default()})
        })
        .collect();
    (ops, slow)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `jetrt drift`: replays INPUT.K.npy samples (K = 0, 1, ...) in order,
/// one at a time, through the model and the monitor.
fn drift(file: &Path, dir: &Path, as_json: bool, exec: Exec, args: &MonitorArgs) -> Result<()> {
    use jetrt::monitor::Verdict;
    let (model, mut session, _) = open_session(file, exec)?;
    let mut watch = watch(&model, args)?;
    let inputs = model.inputs();
    if !dir.is_dir() {
        bail!("--input-dir {}: not a folder", dir.display());
    }
    // Per tensor: largest psi, ks, shift over the replay, worst verdict and
    // the feature behind it.
    let mut worst: Vec<(usize, f64, f64, f64, Verdict, Option<jetrt::monitor::Feature>)> = Vec::new();
    let (mut first_warn, mut first_alarm, mut verdict) = (None, None, Verdict::Ok);
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let mut k = 0usize;
    while let Some(paths) = jetrt_tools::samples::sample_paths("--input-dir", dir, &names, k)? {
        for (i, (info, path)) in inputs.iter().zip(&paths).enumerate() {
            let a = jetrt_tools::samples::read_sample(path, &info.name, info.dtype, &info.shape)?;
            session.set_input(i, TensorRef::from_bytes(a.dtype, &a.shape, &a.data))?;
        }
        session.run_loaded()?;
        let v = watch.observe(&session)?;
        if watch.monitor().ready() {
            for s in watch.monitor().stats() {
                let e = match worst.iter_mut().find(|e| e.0 == s.tensor) {
                    Some(e) => e,
                    None => {
                        worst.push((s.tensor, 0.0, 0.0, 0.0, Verdict::Ok, None));
                        worst.last_mut().unwrap()
                    }
                };
                e.1 = e.1.max(s.psi);
                e.2 = e.2.max(s.ks);
                e.3 = e.3.max(s.mean_shift);
                if s.verdict > e.4 {
                    e.4 = s.verdict;
                    e.5 = s.worst;
                }
            }
        }
        if v >= Verdict::Warn && first_warn.is_none() {
            first_warn = Some(k);
        }
        if v == Verdict::Alarm && first_alarm.is_none() {
            first_alarm = Some(k);
        }
        verdict = verdict.max(v);
        k += 1;
    }
    if k == 0 {
        let want: Vec<String> = inputs.iter().map(|i| format!("{}.0.npy", sanitize_name(&i.name))).collect();
        bail!("--input-dir {}: no samples (expected {} ...)", dir.display(), want.join(", "));
    }
    if !watch.monitor().ready() {
        bail!(
            "--input-dir {}: {k} samples, fewer than the drift window of {}: pass a smaller --drift-window",
            dir.display(),
            watch.monitor().window()
        );
    }
    watch.publish()?;
    let name = |t: usize| model.tensor_name(t).unwrap_or("?").to_string();
    if as_json {
        let tensors: Vec<serde_json::Value> = worst
            .iter()
            .map(|&(t, psi, ks, shift, v, f)| {
                json!({"name": name(t), "psi": psi, "ks": ks, "mean_shift": shift, "verdict": v.name(), "worst_feature": f.map(|f| f.name())})
            })
            .collect();
        let obj = json!({
            "verdict": verdict.name(),
            "samples": k,
            "window": watch.monitor().window(),
            "first_warn": first_warn,
            "first_alarm": first_alarm,
            "tensors": tensors,
        });
        println!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        println!(
            "{}: {k} samples from {}, window {} (largest statistic over the replay's windows)",
            file.display(),
            dir.display(),
            watch.monitor().window()
        );
        println!("  {:<28} {:>8} {:>8} {:>8}  verdict", "tensor", "psi", "ks", "shift");
        for &(t, psi, ks, shift, v, f) in &worst {
            let why = f.map_or(String::new(), |f| format!(" ({})", f.name()));
            println!("  {:<28} {psi:8.3} {ks:8.3} {shift:8.2}  {}{why}", name(t), v.name());
        }
        let at = |k: Option<usize>| k.map_or("never".to_string(), |k| format!("at sample {k}"));
        println!("verdict: {} (first warning {}, first alarm {})", verdict.name(), at(first_warn), at(first_alarm));
    }
    Ok(())
}

/// One function per subcommand; parsing stays in `Cli`.
fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Update { args, exec } => cmd_update(args, exec),
        Cmd::Tuf(args) => jetrt_tools::ota::run_tuf(args),
        Cmd::Serve { args, exec } => cmd_serve(args, exec),
        Cmd::Run { file, inputs, output_dir, exec, monitor } => cmd_run(file, inputs, output_dir, exec, monitor),
        Cmd::Bench { file, inputs, iterations, warmup, exec, json, profile, monitor } => {
            cmd_bench(file, inputs, iterations, warmup, exec, json, profile, monitor)
        }
        Cmd::Verify { file, exec, json } => cmd_verify(file, exec, json),
        Cmd::Drift { file, input_dir, json, exec, monitor } => drift(&file, &input_dir, json, exec, &monitor),
        Cmd::Info { json, root, telemetry, watch, count, i2c_temp } => {
            jetrt_tools::info::cmd_info(json, root, telemetry, watch, count, i2c_temp)
        }
    }
}

/// `jetrt update`: one update (or a watch loop); exits with the agent's code.
fn cmd_update(args: jetrt_tools::ota::UpdateArgs, exec: Exec) -> Result<()> {
    let code = jetrt_tools::ota::run_update(args, exec.options()?)?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// `jetrt serve`: each worker's session gets its share of the cores unless told otherwise.
fn cmd_serve(args: jetrt_tools::serve::ServeArgs, exec: Exec) -> Result<()> {
    // Each worker's session gets its share of the cores unless told otherwise.
    let cores = jetrt::available_threads();
    let threads = if exec.threads == 0 { (cores / args.workers.max(1)).max(1) } else { exec.threads };
    jetrt_tools::serve::run(args, Exec { threads, ..exec }.options()?)
}

/// `jetrt run`: one inference on .npy inputs, every output written as .npy.
fn cmd_run(file: PathBuf, inputs: Vec<String>, output_dir: PathBuf, exec: Exec, monitor: MonitorArgs) -> Result<()> {
    let (model, mut session, _) = open_session(&file, exec)?;
    let mut watch = monitor.monitor.then(|| watch(&model, &monitor)).transpose()?;
    let arrays = load_inputs(&model, &inputs)?;
    set_inputs(&mut session, &arrays)?;
    session.run_loaded()?;
    if let Some(w) = &mut watch {
        w.observe(&session)?;
        println!(
            "drift: one inference (a verdict needs a window of {}: jetrt drift --input-dir, or bench --monitor); \
             where it lies in the reference:",
            w.monitor().window()
        );
        for (t, f, v, decile) in w.monitor().placement(&session)? {
            let note = match decile {
                0 => " (below the reference's 10th percentile)",
                9 => " (above the reference's 90th percentile)",
                _ => "",
            };
            println!("  {:<24} {:<16} {v:10.4}  decile {}{note}", model.tensor_name(t).unwrap_or("?"), f.name(), decile + 1);
        }
    }
    std::fs::create_dir_all(&output_dir).with_context(|| format!("cannot create {}", output_dir.display()))?;
    for (i, t) in model.outputs().into_iter().enumerate() {
        let bytes = session.output(i).context("output missing")?;
        let path = output_dir.join(format!("{}.npy", sanitize_name(&t.name)));
        let array = Array { dtype: t.dtype, shape: t.shape.clone(), data: bytes.to_vec() };
        npy::write(&path, &array)?;
        println!("{} {} {:?} -> {}{}", t.name, t.dtype.numpy_name(), t.shape, path.display(), summary(&array));
    }
    Ok(())
}

/// `jetrt bench`: load time, latency percentiles, memory, board telemetry, optionally a per-step profile and the monitor's cost.
fn cmd_bench(
    file: PathBuf,
    inputs: Vec<String>,
    iterations: usize,
    warmup: usize,
    exec: Exec,
    json: bool,
    profile: bool,
    monitor: MonitorArgs,
) -> Result<()> {
    if iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let (model, mut session, load_ms) = open_session(&file, exec)?;
    let arrays = if inputs.is_empty() { random_inputs(&model) } else { load_inputs(&model, &inputs)? };
    set_inputs(&mut session, &arrays)?;
    let t = Instant::now();
    session.run_loaded()?;
    let first_run_ms = t.elapsed().as_secs_f64() * 1e3;
    // The board's temperatures, power and clocks, read every half second
    // from the first warm-up run to the last timed one.
    let sampler = jetrt_tools::board::Sampler::start(&jetrt_tools::board::root(), std::time::Duration::from_millis(500));
    for _ in 0..warmup {
        session.run_loaded()?;
    }
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        session.run_loaded()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let board = sampler.finish();
    if !board.throttling.is_empty() {
        eprintln!(
            "warning: the board throttled during the measurement, so these figures are below what it can do: {}",
            board.throttling.join("; ")
        );
    }
    let profile = if profile {
        let steps = model.steps();
        let mut secs = vec![0.0; steps.len()];
        for _ in 0..iterations {
            session.run_profiled(&mut secs)?;
        }
        Some(profile_table(&steps, &secs, iterations))
    } else {
        None
    };
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(|a, b| a.total_cmp(b));
    let (p50, p90, p99) = (percentile(&times, 50.0), percentile(&times, 90.0), percentile(&times, 99.0));
    // The monitor's own cost: each observe timed alone, after a run
    // (as a device would run it), over as many runs as were timed.
    let monitored = if monitor.monitor {
        let mut w = watch(&model, &monitor)?;
        let mut secs = 0.0;
        for _ in 0..iterations.max(w.monitor().window()) {
            session.run_loaded()?;
            let t = Instant::now();
            w.observe(&session)?;
            secs += t.elapsed().as_secs_f64();
        }
        let runs = iterations.max(w.monitor().window());
        let us = secs * 1e6 / runs as f64;
        Some((us, 100.0 * us / (p50 * 1e3), w.monitor().verdict(), w.monitor().samples()))
    } else {
        None
    };
    let rss = peak_rss_bytes();
    if json {
        let obj = json!({
            "file": file.display().to_string(),
            "device": session.backend().name(),
            "device_name": device_label(&session),
            "fp16": session.info().fp16,
            "isa": session.info().cpu_kernels.name(),
            "int8_kernels": session.info().int8_kernels.name(),
            "threads": session.info().threads,
            "load_ms": load_ms,
            "first_run_ms": first_run_ms,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "mean_ms": mean,
            "min_ms": times[0],
            "iterations": iterations,
            "warmup": warmup,
            "arena_bytes": model.info().memory.arena_bytes,
            "weights_bytes": model.info().memory.weights_bytes,
            "scratch_bytes": session.info().allocated_bytes - model.info().memory.arena_bytes,
            "peak_rss_bytes": rss,
        });
        let mut obj = obj;
        if let Some(jetrt::GpuMemory { session_bytes, in_use_bytes: in_use, .. }) = session.info().gpu_memory {
            obj["gpu_session_bytes"] = json!(session_bytes);
            obj["gpu_used_bytes"] = json!(in_use);
        }
        if let Some((by_op, by_step)) = &profile {
            obj["profile"] = json!({"by_op": by_op, "slowest_steps": by_step[..by_step.len().min(10)], "steps": by_step});
        }
        obj["board"] = json!(jetrt_boards::machine(&jetrt_tools::board::root()).board_name());
        obj["telemetry"] = board.to_json();
        if let Some((us, pct, v, n)) = monitored {
            obj["monitor"] = json!({"us_per_inference": us, "percent_of_p50": pct, "verdict": v.name(), "samples": n});
        }
        println!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        println!(
            "{}: {} on {} with {} threads",
            file.display(),
            model.meta("name").unwrap_or("model"),
            device_label(&session),
            session.info().threads
        );
        println!("  load (open + validate + session)  {load_ms:8.2} ms");
        println!("  first run                         {first_run_ms:8.2} ms");
        println!("  {iterations} runs: p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms, mean {mean:.2} ms, min {:.2} ms", times[0]);
        println!(
            "  memory: arena {}, weights {} (mapped), peak RSS {}",
            human_bytes(model.info().memory.arena_bytes as u64),
            human_bytes(model.info().memory.weights_bytes as u64),
            rss.map_or("unknown".into(), human_bytes)
        );
        if let Some(jetrt::GpuMemory { session_bytes, in_use_bytes: in_use, .. }) = session.info().gpu_memory {
            println!(
                "  gpu: this session {} (arena + weights), whole GPU in use {}",
                human_bytes(session_bytes as u64),
                in_use.map_or("unknown".into(), |b| human_bytes(b as u64))
            );
        }
        if let Some(s) = board.summary() {
            println!("  board: {s}");
        }
        if let Some((us, pct, v, n)) = monitored {
            println!(
                "  drift monitor: {us:.1} µs per inference ({pct:.2}% of the p50 run); verdict {} after {n} inferences{}",
                v.name(),
                if inputs.is_empty() { " (random inputs: drifted from any real reference)" } else { " (the same input every run)" }
            );
        }
        if let Some((by_op, by_step)) = &profile {
            println!("  time by op (mean per run):");
            for e in by_op {
                println!(
                    "    {:<18} {:>4} steps {:9.3} ms {:5.1}%",
                    e["op"].as_str().unwrap_or(""),
                    e["steps"],
                    e["ms"].as_f64().unwrap_or(0.0),
                    e["percent"].as_f64().unwrap_or(0.0)
                );
            }
            println!("  slowest steps:");
            for e in by_step.iter().take(10) {
                let rate = match e["gflops"].as_f64() {
                    Some(g) if g > 0.0 => format!("{g:6.1} GFLOP/s"),
                    _ => " ".repeat(14),
                };
                println!(
                    "    #{:<4} {:<18} {:9.3} ms {rate}  -> {}",
                    e["step"],
                    e["op"].as_str().unwrap_or(""),
                    e["ms"].as_f64().unwrap_or(0.0),
                    e["output"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

/// `jetrt verify`: the file's golden vectors on this machine.
fn cmd_verify(file: PathBuf, exec: Exec, json: bool) -> Result<()> {
    let (model, mut session, _) = open_session(&file, exec)?;
    if model.info().golden_vectors == 0 {
        bail!("{} has no golden vectors: convert it with jetc convert --golden N (the default stores 2)", file.display());
    }
    let checks = jetrt::golden::check(&mut session)?;
    let ok = checks.iter().all(|c| c.pass);
    if json {
        let outs: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| json!({"vector": c.vector, "output": c.output, "max_abs": c.max_abs, "cosine": c.cosine, "pass": c.pass}))
            .collect();
        let obj = json!({"ok": ok, "device": device_label(&session), "vectors": model.info().golden_vectors, "outputs": outs});
        println!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        println!("{}: {} golden vector(s) on {}", file.display(), model.info().golden_vectors, device_label(&session));
        for c in &checks {
            println!(
                "  vector {} {:<24} max abs diff {:.3e}, cosine {:.6}  {}",
                c.vector,
                c.output,
                c.max_abs,
                c.cosine,
                if c.pass { "ok" } else { "FAILED" }
            );
        }
    }
    if !ok {
        bail!(
            "{}: golden vectors do not match (needs cosine >= {} and max abs diff <= {} of the output's scale)",
            file.display(),
            jetrt::golden::MIN_COSINE,
            jetrt::golden::MAX_REL
        );
    }
    if !json {
        println!("verified: every output matches the converter's");
    }
    Ok(())
}

/// "cuda/NAME (N steps on the CPU)" or "cpu/ISA".
fn device_label(session: &Session) -> String {
    let info = session.info();
    if let Some(g) = &info.gpu {
        let graph = if info.cuda_graph { ", one CUDA graph" } else { "" };
        let fb = if info.fallback_steps > 0 { format!(", {} steps on the CPU", info.fallback_steps) } else { String::new() };
        let fp16 = if info.fp16 { ", fp16" } else { "" };
        return format!("cuda/{} (sm_{}{fp16}{graph}{fb})", g.name, g.arch());
    }
    format!("cpu/{} (int8: {})", info.cpu_kernels.name(), info.int8_kernels.name())
}

fn main() {
    let cli = Cli::parse();
    let filter = if matches!(cli.cmd, Cmd::Update { .. } | Cmd::Tuf(_) | Cmd::Serve { .. }) { "info" } else { "warn" };
    jetrt_tools::main_with_log(filter, || run(cli));
}
