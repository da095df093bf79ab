//! jetc — the jetrt converter: ONNX in, `.jrt` out.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use jetrt::Model;
use jetrt_converter::job::{self, Job};
use jetrt_converter::quant::{CalibMethod, Precision, Prune, QuantReport};
use jetrt_converter::samples::{self, ImagePrep};
use jetrt_converter::{parse_input_shape, Report};
use jetrt_tools::human_bytes;
use jetrt_update::repo::{self, Expiry, RoleType};
use jetrt_update::ModelMeta;
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
        /// Golden test vectors to store in the file (0-16): the first --drift-ref or --calib
        /// samples (inputs made from a seed when there are none or they are large beside the
        /// weights) and the converted model's outputs for them (4096 evenly spaced elements of a
        /// larger output), which `jetrt verify` and the update agent's health check run on the device.
        #[arg(long, default_value_t = 2, value_name = "N")]
        golden: usize,
        /// Compile jetrt's CUDA kernels to CUBIN for these GPU architectures and store them in
        /// the file, so a board starts without compiling: e.g. 72,87,110 or `jetson` (Xavier,
        /// Orin, Thor). Needs NVRTC here (see --nvrtc).
        #[cfg(feature = "cuda")]
        #[arg(long, value_name = "ARCHS", value_delimiter = ',')]
        cuda_arch: Vec<String>,
        /// NVRTC library to compile with (repeat: each architecture uses the first that supports
        /// it; CUDA 12 builds sm_72/sm_87, CUDA 13 sm_87/sm_110). Default: $JETRT_NVRTC, else
        /// libnvrtc on the loader's path. PyPI ships both: nvidia-cuda-nvrtc-cu12, nvidia-cuda-nvrtc.
        #[cfg(feature = "cuda")]
        #[arg(long, value_name = "LIB")]
        nvrtc: Vec<PathBuf>,
        /// Refuse to write a model that does not fit this board's memory (a profile name,
        /// docs/BOARDS.md; repeat for several), counted as jetc inspect --board counts it.
        #[arg(long = "board", value_name = "NAME")]
        boards: Vec<String>,
        #[command(flatten)]
        quant: Box<QuantArgs>,
        #[command(flatten)]
        drift: DriftArgs,
    },
    /// List the ONNX operators jetc converts, with the element types each takes at run time
    /// (docs/OPERATORS.md has their conformance results).
    Operators,
    /// Compile jetrt's CUDA kernels to CUBIN with NVRTC, for boards that have no NVRTC: copy
    /// the folder to the board and point JETRT_CACHE_DIR at it (its cuda/ subfolder holds them).
    #[cfg(feature = "cuda")]
    CudaCompile {
        /// Architectures, e.g. 72,87,110 or `jetson` (Xavier, Orin, Thor).
        #[arg(long, value_delimiter = ',', default_value = "jetson")]
        arch: Vec<String>,
        /// NVRTC libraries to compile with (repeat: each arch uses the first that supports it).
        /// Default: $JETRT_NVRTC or libnvrtc on the loader's path.
        #[arg(long)]
        nvrtc: Vec<PathBuf>,
        /// Cache folder to write (default: jetrt's own, ~/.cache/jetrt).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Manage a TUF repository of models for over-the-air updates (see docs/UPDATES.md).
    Repo {
        #[command(subcommand)]
        cmd: RepoCmd,
    },
    /// Add a .jrt file to a TUF repository as a new version of a model, and re-sign targets,
    /// snapshot and timestamp. Then copy the repository folder to any static file server.
    Publish {
        file: PathBuf,
        /// The repository folder (made by jetc repo init).
        #[arg(long)]
        repo: PathBuf,
        /// The key folder (targets.pk8, snapshot.pk8, timestamp.pk8; the root key is not needed).
        #[arg(long)]
        keys: PathBuf,
        /// Model name (letters, digits, '-', '_', '.').
        #[arg(long)]
        name: String,
        /// Integer version, greater than every published version of this model.
        #[arg(long)]
        version: u64,
        /// Boards it is for, comma-separated profile names (docs/BOARDS.md, e.g.
        /// jetson-orin-nano-8gb, or generic), as devices name themselves; default: any board.
        #[arg(long, value_delimiter = ',')]
        boards: Vec<String>,
        /// Oldest jetrt that runs it (default: this jetc's version).
        #[arg(long)]
        min_runtime: Option<String>,
        #[command(flatten)]
        expiry: ExpiryArgs,
    },
    /// Show what a .jrt file holds: inputs, outputs, ops, weight and arena bytes.
    Inspect {
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// List every step of the plan.
        #[arg(long)]
        steps: bool,
        /// Also say which steps the given backend runs and which fall back to the CPU.
        #[arg(long, value_enum)]
        device: Option<InspectDevice>,
        /// Say whether the model fits a board's memory (docs/BOARDS.md): a profile name, or
        /// `all`. Counted: the mapped file, the arena and per-thread scratch for all the
        /// board's cores and, where jetrt runs it on the GPU (Xavier and later), the device
        /// arena, the kernels and the CUDA context; against DRAM less 15 % (at least 1 GiB) for
        /// the OS.
        #[arg(long, value_name = "NAME|all")]
        board: Option<String>,
    },
}

#[derive(Subcommand)]
enum RepoCmd {
    /// Create a TUF repository in DIR with one ed25519 key per role in KEYDIR (existing keys
    /// there are reused).
    Init {
        dir: PathBuf,
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        expiry: ExpiryArgs,
    },
    /// Re-sign snapshot and timestamp with fresh expiry, targets unchanged (run it from cron:
    /// devices refuse an expired timestamp).
    Refresh {
        dir: PathBuf,
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        expiry: ExpiryArgs,
    },
    /// Replace one role's key (e.g. a leaked timestamp key, or the yearly root key change):
    /// a new root version lists the new key, signed by the old and the new root keys, and
    /// targets, snapshot and timestamp are re-signed. Needs the root key.
    RotateKey {
        dir: PathBuf,
        #[arg(long)]
        keys: PathBuf,
        /// root, targets, snapshot or timestamp.
        #[arg(long, value_parser = ["root", "targets", "snapshot", "timestamp"])]
        role: String,
        #[command(flatten)]
        expiry: ExpiryArgs,
    },
    /// List the models a repository holds.
    List {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// How long signed metadata stays valid.
#[derive(clap::Args, Clone, Copy)]
struct ExpiryArgs {
    /// Days the timestamp is valid (devices refuse an expired one: re-sign with jetc repo refresh).
    #[arg(long, default_value_t = 7, allow_negative_numbers = true)]
    timestamp_days: i64,
    #[arg(long, default_value_t = 30)]
    snapshot_days: i64,
    #[arg(long, default_value_t = 90)]
    targets_days: i64,
    /// Days the root is valid (repo init only).
    #[arg(long, default_value_t = 365)]
    root_days: i64,
}

impl From<ExpiryArgs> for Expiry {
    fn from(a: ExpiryArgs) -> Expiry {
        if a.timestamp_days <= 0 {
            log::warn!("--timestamp-days {}: the timestamp is expired already; devices will refuse this repository", a.timestamp_days);
        }
        Expiry { root_days: a.root_days, targets_days: a.targets_days, snapshot_days: a.snapshot_days, timestamp_days: a.timestamp_days }
    }
}

fn run_repo(cmd: RepoCmd) -> Result<()> {
    match cmd {
        RepoCmd::Init { dir, keys, expiry } => {
            let r = repo::init(&dir, &keys, expiry.into())?;
            for k in &r.generated {
                println!("generated {}", k.display());
            }
            println!("repository created in {}", dir.display());
            println!("trusted root for devices: {} (give it to each device: jetrt update --trusted-root)", r.root_json.display());
            println!(
                "keep the root key ({}) offline: it is needed only to rotate keys; publishing uses the targets, snapshot and timestamp keys",
                r.root_key.display()
            );
            Ok(())
        }
        RepoCmd::Refresh { dir, keys, expiry } => {
            let v = repo::refresh(&dir, &keys, expiry.into())?;
            println!("re-signed {}: timestamp version {v}, valid for {} days", dir.display(), expiry.timestamp_days);
            Ok(())
        }
        RepoCmd::RotateKey { dir, keys, role, expiry } => {
            let role = match role.as_str() {
                "root" => RoleType::Root,
                "targets" => RoleType::Targets,
                "snapshot" => RoleType::Snapshot,
                _ => RoleType::Timestamp,
            };
            let r = repo::rotate(&dir, &keys, role, expiry.into())?;
            println!("{role} key rotated: root version {} lists {}", r.root_version, r.new_key.display());
            println!("the retired key is {}: destroy it once every device has updated", r.old_key.display());
            Ok(())
        }
        RepoCmd::List { dir, json } => {
            let models = repo::list(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&models)?);
            } else if models.is_empty() {
                println!("{}: no models published", dir.display());
            }
            for m in models.iter().filter(|_| !json) {
                let boards = if m.meta.boards.is_empty() { "any board".to_string() } else { m.meta.boards.join(",") };
                println!(
                    "{:<20} v{:<6} {:<28} {:>10}  {}  jetrt >= {}",
                    m.meta.model,
                    m.meta.version,
                    m.target,
                    human_bytes(m.length),
                    boards,
                    m.meta.min_runtime
                );
            }
            Ok(())
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InspectDevice {
    Cpu,
    Cuda,
}

#[derive(clap::Args)]
#[command(next_help_heading = "Quantization and pruning")]
struct QuantArgs {
    /// Weight (and activation) precision. int8: weights per output channel and activations per
    /// tensor, integer arithmetic (needs --calib). int4: group-wise weights for dense layers and
    /// pointwise convolutions, float activations; with --calib the other convolutions run int8.
    #[arg(long, value_enum, default_value = "fp32")]
    precision: PrecisionArg,
    /// Calibration data: a folder of .npy files named INPUT.K.npy (K = 0, 1, ...; INPUT is the
    /// input's name with characters outside [A-Za-z0-9_.-] replaced by `_`), or of images
    /// (jpg/png, see --resize, --mean, --std, --layout).
    #[arg(long, value_name = "DIR")]
    calib: Option<PathBuf>,
    /// How activation ranges are chosen from the calibration data. mse (the default: per tensor,
    /// the clipping with the least expected squared error) measured best on the PP-OCRv5 models
    /// (det output cosine 0.9945 against 0.9886 with percentile 99.99, which is very sensitive
    /// to its percentile); entropy (TensorRT's) clipped PP-OCRv5 det badly.
    #[arg(long, value_enum, default_value = "mse")]
    calib_method: CalibMethodArg,
    /// The percentile of |x| kept by --calib-method percentile.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Use at most this many calibration samples.
    #[arg(long, default_value_t = 256)]
    calib_limit: usize,
    /// int4 group size: weights that share one scale (even, at least 2).
    #[arg(long, default_value_t = 32)]
    group_size: usize,
    /// Keep the most sensitive layers in fp32 until the measured drop of agreement with the
    /// fp32 model (top-1 for classifier outputs, cosine otherwise) is at most X (0.005 = half a
    /// point).
    #[arg(long, value_name = "X")]
    max_drop: Option<f64>,
    /// Prune weights: magnitude=S (zero the fraction S of smallest weights of each layer),
    /// 2:4 (two of every four along K), or channels=S (remove the fraction S of output channels
    /// with the smallest L1 norm where the next layer can shrink to match).
    #[arg(long, value_name = "MODE")]
    prune: Option<String>,
    /// Images: resize to H,W (default: the input's size).
    #[arg(long, value_name = "H,W")]
    resize: Option<String>,
    /// Images: per-channel mean subtracted after scaling pixels to [0, 1].
    #[arg(long, value_name = "R,G,B", default_value = "0,0,0")]
    mean: String,
    /// Images: per-channel standard deviation divided by after the mean.
    #[arg(long, value_name = "R,G,B", default_value = "1,1,1")]
    std: String,
    /// Images: the input's layout.
    #[arg(long, value_enum, default_value = "nchw")]
    layout: LayoutArg,
    /// Images: feed channels in BGR order (OpenCV's), not RGB.
    #[arg(long)]
    bgr: bool,
}

#[derive(clap::Args)]
#[command(next_help_heading = "Drift reference")]
struct DriftArgs {
    /// Reference samples for drift monitoring on the device (`jetrt drift`, `jetrt run
    /// --monitor`), in the --calib folder format (images use --resize/--mean/--std/--layout).
    /// Default: the --calib samples. Histograms, channel means and, for classifier outputs,
    /// class frequencies, confidence and entropy of every float input and output are stored in
    /// the file.
    #[arg(long, value_name = "DIR")]
    drift_ref: Option<PathBuf>,
    /// Use at most this many drift reference samples (more: tighter thresholds).
    #[arg(long, default_value_t = 1000)]
    drift_ref_limit: usize,
    /// Store no drift reference, even with --calib.
    #[arg(long, conflicts_with = "drift_ref")]
    no_drift_ref: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PrecisionArg {
    Fp32,
    Int8,
    Int4,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CalibMethodArg {
    Minmax,
    Percentile,
    Entropy,
    Mse,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LayoutArg {
    Nchw,
    Nhwc,
}

/// How image files become input tensors (--resize, --mean, --std, --layout, --bgr).
fn image_prep(q: &QuantArgs) -> Result<ImagePrep> {
    Ok(ImagePrep {
        resize: q
            .resize
            .as_deref()
            .map(|r| -> Result<[usize; 2]> {
                let v: Vec<usize> = r
                    .split(',')
                    .map(|d| d.trim().parse())
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("--resize {r:?}: expected H,W"))?;
                match v[..] {
                    [h, w] => Ok([h, w]),
                    _ => anyhow::bail!("--resize {r:?}: expected H,W"),
                }
            })
            .transpose()?,
        mean: samples::parse_triple(&q.mean, "--mean")?,
        std: samples::parse_triple(&q.std, "--std")?,
        nhwc: matches!(q.layout, LayoutArg::Nhwc),
        bgr: q.bgr,
    })
}

/// The conversion the flags ask for (the ONNX-dependent checks come with
/// the conversion itself).
fn job_of(q: &QuantArgs, d: &DriftArgs) -> Result<Job> {
    let mut job = Job::default();
    job.precision = match q.precision {
        PrecisionArg::Fp32 => Precision::Fp32,
        PrecisionArg::Int8 => Precision::Int8,
        PrecisionArg::Int4 => Precision::Int4,
    };
    job.calib = q.calib.clone();
    job.calib_method = match q.calib_method {
        CalibMethodArg::Minmax => CalibMethod::MinMax,
        CalibMethodArg::Percentile => CalibMethod::Percentile(q.percentile),
        CalibMethodArg::Entropy => CalibMethod::Entropy,
        CalibMethodArg::Mse => CalibMethod::Mse,
    };
    job.calib_limit = q.calib_limit;
    job.group_size = q.group_size;
    job.max_drop = q.max_drop;
    job.prune = q.prune.as_deref().map(Prune::parse).transpose().map_err(anyhow::Error::msg)?;
    job.image = image_prep(q)?;
    job.drift_ref = d.drift_ref.clone();
    job.drift_ref_limit = d.drift_ref_limit;
    job.no_drift_ref = d.no_drift_ref;
    Ok(job)
}

fn print_quant(q: &QuantReport, r: &Report, onnx_bytes: u64, file_bytes: u64) {
    let prune = q.prune.as_deref().map(|p| format!(", pruned {p}")).unwrap_or_default();
    println!(
        "  precision: {}{prune}, calibration {} on {} sample(s){}",
        format!("{:?}", q.precision).to_lowercase(),
        q.method,
        q.samples,
        if q.random_samples { " (random)" } else { "" }
    );
    println!(
        "  size:    onnx {} -> .jrt {} ({:.1}% of the ONNX file{}); weights {} -> {}",
        human_bytes(onnx_bytes),
        human_bytes(file_bytes),
        100.0 * file_bytes as f64 / onnx_bytes.max(1) as f64,
        if r.golden_bytes > 0 {
            let without = file_bytes.saturating_sub(r.golden_bytes);
            format!(
                ", {:.1}% without the {} of golden vectors",
                100.0 * without as f64 / onnx_bytes.max(1) as f64,
                human_bytes(r.golden_bytes)
            )
        } else {
            String::new()
        },
        human_bytes(r.fp32_weights_bytes),
        human_bytes(r.weights_bytes)
    );
    for o in &q.outputs {
        let a = &o.agreement;
        let top1 = a.top1.map(|t| format!(", top-1 agreement {:.2}%", 100.0 * t)).unwrap_or_default()
            + &a.top_boxes
                .map(|t| format!(", top-{} boxes agreement {:.2}%", jetrt_converter::quant::eval::TOP_BOXES, 100.0 * t))
                .unwrap_or_default();
        println!("  output {}: cosine {:.6}, max abs error {:.3e}, SNR {:.1} dB{top1}", o.name, a.cosine, a.max_abs, a.snr_db);
    }
    println!(
        "  drop:    {:.4} ({}){}",
        q.drop,
        q.metric,
        q.max_drop
            .map(|m| {
                let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
                let promoted =
                    if q.promoted_int8.is_empty() { String::new() } else { format!("; int4 -> int8: {}", list(&q.promoted_int8)) };
                format!(", limit {m}; kept in fp32: {}{promoted}", list(&q.kept_fp32))
            })
            .unwrap_or_default()
    );
    if q.pruned_channels > 0 {
        println!("  pruning: {} output channels removed", q.pruned_channels);
    }
    println!("  layers:  {:<40} {:<10} {:>14} {:>9} {:>12}", "name", "precision", "shape", "sparsity", "sensitivity");
    for l in &q.layers {
        let sens = l.sensitivity.map_or("-".into(), |s| format!("{s:.2e}"));
        println!(
            "           {:<40} {:<10} {:>14} {:>8.1}% {:>12}",
            l.name.chars().take(40).collect::<String>(),
            l.precision.name(),
            format!("{}x{}", l.shape[0], l.shape[1]),
            100.0 * l.sparsity,
            sens
        );
    }
}

/// Parses `NAME=FILE.npy` into the input name and its value.
fn parse_bind(arg: &str) -> Result<(String, jetrt_converter::tensor::Tensor)> {
    let (name, file) = arg.split_once('=').with_context(|| format!("--bind {arg:?}: expected NAME=FILE.npy"))?;
    let a = jetrt_tools::npy::read(std::path::Path::new(file)).with_context(|| format!("--bind {name}"))?;
    let data = jetrt_converter::tensor::Data::from_le_bytes(a.dtype, &a.data).with_context(|| format!("--bind {name}: bad data"))?;
    Ok((name.to_string(), jetrt_converter::tensor::Tensor::new(a.shape, data)))
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Convert {
            model,
            output,
            check,
            bind,
            input_shapes,
            name,
            report,
            quiet,
            #[cfg(feature = "cuda")]
            cuda_arch,
            #[cfg(feature = "cuda")]
            nvrtc,
            quant,
            drift,
            golden,
            boards,
        } => {
            // Bad flags fail before the (possibly long) conversion.
            let mut job = job_of(&quant, &drift)?;
            job.boards = boards.iter().map(|b| board_profile(b)).collect::<Result<Vec<_>>>()?;
            job.input_shapes = input_shapes.iter().map(|s| parse_input_shape(s)).collect::<Result<Vec<_>, _>>()?;
            job.bind = bind.iter().map(|b| parse_bind(b)).collect::<Result<Vec<_>>>()?;
            job.name = name;
            job.golden = golden;
            job.kernels = jetrt_tools::env::converter_kernels()?;
            if check {
                let problems = jetrt_converter::check(&model, &job.convert_options())?;
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
                job.progress = Some(job::stderr_progress());
                job.notes = Some(job::Notes::stderr());
            }
            #[cfg(feature = "cuda")]
            {
                let archs = jetrt::host::parse_cuda_archs("--cuda-arch", &cuda_arch).map_err(anyhow::Error::msg)?;
                if !archs.is_empty() && !quiet {
                    eprintln!("compiling the CUDA kernels ...");
                }
                let cache = jetrt_tools::env::cache_dir().map(|d| d.join("cuda"));
                let notes = job.notes.clone();
                let note = |line: &str| {
                    if let Some(n) = &notes {
                        (n.0)(line)
                    }
                };
                job.kernel_images = jetrt::host::kernel_images(&archs, &nvrtc, cache.as_deref(), &note).map_err(anyhow::Error::msg)?;
            }
            let outcome = job::run(&model, &output, &job)?;
            if let Some(path) = report {
                let text = serde_json::to_string_pretty(&outcome.to_json())?;
                std::fs::write(&path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
            }
            let (r, secs, onnx_bytes, memory) = (&outcome.report, outcome.seconds, outcome.onnx_bytes, outcome.memory);
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
                "  memory:  weights {} (mapped, not copied) + arena {} (all intermediates: {}) + scratch {} per thread + {} shared",
                human_bytes(r.weights_bytes),
                human_bytes(r.arena_bytes),
                human_bytes(r.intermediate_bytes),
                human_bytes(memory.scratch_bytes_per_thread as u64),
                human_bytes(memory.scratch_bytes_shared as u64)
            );
            println!("  file:    {} bytes", memory.file_bytes);
            if r.golden > 0 {
                println!("  golden:  {} test vector(s) with this host's outputs, {} (jetrt verify)", r.golden, human_bytes(r.golden_bytes));
            }
            if let Some((n, t)) = r.drift_ref {
                println!("  drift:   reference of {n} samples for {t} tensor(s) (jetrt drift, jetrt run --monitor)");
            }
            if let Some(q) = &r.quant {
                print_quant(q, r, onnx_bytes, memory.file_bytes as u64);
            }
            Ok(())
        }
        #[cfg(feature = "cuda")]
        Cmd::CudaCompile { arch, nvrtc, out } => {
            let archs = jetrt::host::parse_cuda_archs("--arch", &arch).map_err(anyhow::Error::msg)?;
            let dir = match out {
                Some(d) => d.join("cuda"),
                None => jetrt_tools::env::cache_dir().context("no cache folder: set JETRT_CACHE_DIR or HOME, or pass --out")?.join("cuda"),
            };
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            jetrt::host::kernel_images(&archs, &nvrtc, Some(&dir), &|line| eprintln!("  {line}")).map_err(anyhow::Error::msg)?;
            println!("kernels cached in {}", dir.display());
            Ok(())
        }
        Cmd::Repo { cmd } => run_repo(cmd),
        Cmd::Publish { file, repo: dir, keys, name, version, boards, min_runtime, expiry } => {
            let m = Model::open(&file).with_context(|| format!("{} is not a .jrt file jetrt can load", file.display()))?;
            if m.info().golden_vectors == 0 {
                anyhow::bail!(
                    "{} has no golden vectors: devices check a new model with them before switching to it; convert with jetc convert --golden N",
                    file.display()
                );
            }
            for b in &boards {
                if jetrt_boards::profiles::by_name(b).is_none() && b != jetrt_boards::profiles::GENERIC {
                    let known: Vec<&str> = jetrt_boards::PROFILES.iter().map(|p| p.name).collect();
                    log::warn!("--boards {b}: not a board jetrt knows ({}, generic); devices name themselves by those", known.join(", "));
                }
            }
            let meta = ModelMeta { model: name, version, boards, min_runtime: min_runtime.unwrap_or_else(|| jetrt::VERSION.to_string()) };
            let p = repo::publish(&dir, &keys, &file, &meta, expiry.into())?;
            println!("published {} version {} as {} ({}, sha256 {})", meta.model, meta.version, p.target, human_bytes(p.length), p.sha256);
            println!("targets version {}, timestamp valid until {}", p.targets_version, p.timestamp_expires);
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
        Cmd::Inspect { file, json, steps, device, board } => cmd_inspect(&file, json, steps, device, board.as_deref()),
    }
}

/// `jetc inspect`: gathered once, printed as JSON or rendered as text.
fn cmd_inspect(file: &std::path::Path, json: bool, steps: bool, device: Option<InspectDevice>, board: Option<&str>) -> Result<()> {
    let t0 = Instant::now();
    let m = Model::open(file)?;
    let validate_ms = t0.elapsed().as_secs_f64() * 1e3;
    let options = jetrt_tools::env::session_options()?;
    let wanted = jetrt_tools::inspect::Wanted {
        steps,
        cuda: matches!(device, Some(InspectDevice::Cuda)).then_some(&options),
        boards: board.map(|b| budgets(&m, b)).transpose()?,
    };
    let ins = jetrt_tools::inspect::inspect(file, &m, validate_ms, wanted)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&ins)?);
    } else {
        print!("{}", ins.render_text());
    }
    Ok(())
}

/// A board profile by name, or an error that lists the known ones.
fn board_profile(name: &str) -> Result<&'static jetrt_boards::Profile> {
    let known: Vec<&str> = jetrt_boards::PROFILES.iter().map(|p| p.name).collect();
    jetrt_boards::profiles::by_name(name).with_context(|| format!("--board {name}: no such board; known: {}", known.join(", ")))
}

/// The model's memory against one board (a profile name) or `all`.
fn budgets(m: &Model, which: &str) -> Result<Vec<jetrt_boards::profiles::Budget>> {
    let boards: Vec<&'static jetrt_boards::Profile> = if which == "all" {
        jetrt_boards::PROFILES.iter().collect()
    } else {
        vec![board_profile(which).map_err(|e| anyhow::anyhow!("{e}, or all"))?]
    };
    Ok(boards.into_iter().map(|p| jetrt_tools::board::board_budget(m, p)).collect())
}

fn main() {
    jetrt_tools::main_with(|| run(Cli::parse()));
}
