//! `jetrt info`: this machine, or a board's files under a root: CPU
//! features, memory, the board profile, the GPU CUDA sees (or why not),
//! telemetry, once or watched.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::human_bytes;

/// `jetrt info`: this machine (or a board's files under --root).
pub fn cmd_info(
    json: bool,
    root: Option<PathBuf>,
    telemetry: bool,
    watch: Option<f64>,
    count: Option<u64>,
    i2c_temp: Option<String>,
) -> Result<()> {
    // A sensor that cannot be read fails the command: the user asked for it.
    let sensor = i2c_temp.as_deref().map(|spec| read_i2c_temp(spec).map(|c| (spec, c))).transpose()?;
    let here = root.is_none() && !crate::env::board_root_set();
    let root = root.unwrap_or_else(crate::board::root);
    if !root.is_dir() {
        bail!("--root {}: not a folder", root.display());
    }
    if let Some(secs) = watch {
        return watch_telemetry(&root, secs, count, json);
    }
    let machine = jetrt_boards::machine(&root);
    let board = &machine.info;
    // This machine: what the kernels will use; another root: what its files say.
    let (cpu_model, cores, features) = if here {
        (machine.cpu.model.clone(), jetrt::available_threads(), jetrt::cpu_features().iter().map(|f| f.to_string()).collect())
    } else {
        (machine.cpu.model.clone(), machine.cpu.cores, machine.cpu.features.clone())
    };
    // What sessions here will use (JETRT_KERNELS and JETRT_INT8_KERNELS included).
    let (isa, qisa) = if here { crate::env::session_options()?.kernels()? } else { (jetrt::Isa::detect(), jetrt::QIsa::detect()) };
    let seen = jetrt_boards::gpu_presence(&root, board);
    let (gpu, gpu_json) = if here { gpu_report(&seen) } else { files_gpu_report(&seen, machine.profile) };
    if json {
        let obj = json!({
            "jetrt_version": jetrt::VERSION,
            "format_version": format!("{}.{}", jetrt_format::FORMAT_MAJOR, jetrt_format::FORMAT_MINOR),
            "arch": if here { Some(std::env::consts::ARCH) } else { None },
            "cpu": if here {
                json!({"model": cpu_model, "cores": cores, "features": features, "kernels": isa.name(), "int8_kernels": qisa.name()})
            } else {
                json!({"model": cpu_model, "cores": cores, "features": features})
            },
            "board": machine.board_name(),
            "board_model": board.model,
            "l4t_release": board.l4t_release,
            "dram_bytes": machine.dram_bytes,
            "gpu": gpu_json,
        });
        let mut obj = obj;
        if telemetry {
            obj["telemetry"] = crate::board::to_json(&jetrt_boards::telemetry::read(&root));
            if let Some((spec, c)) = sensor {
                obj["telemetry"]["i2c_sensor"] = json!({"device": spec, "celsius": c});
            }
        }
        println!("{}", serde_json::to_string_pretty(&obj)?);
    } else {
        println!("jetrt {} (format {}.{})", jetrt::VERSION, jetrt_format::FORMAT_MAJOR, jetrt_format::FORMAT_MINOR);
        if here {
            println!("cpu:    {} ({}), {cores} cores", cpu_model.as_deref().unwrap_or("unknown"), std::env::consts::ARCH);
        } else {
            println!("cpu:    {}, {cores} cores", cpu_model.as_deref().unwrap_or("unknown"));
        }
        println!("        features: {}", features.join(" "));
        if here {
            println!("        kernels:  {} (int8: {})", isa.name(), qisa.name());
        }
        match (machine.profile, &board.model, board.is_jetson()) {
            (Some(p), m, _) => println!(
                "board:  {} ({}; {}), L4T {}",
                p.name,
                p.title,
                m.as_deref().unwrap_or("-"),
                board.l4t_release.as_deref().unwrap_or("unknown")
            ),
            (None, Some(m), true) => {
                println!(
                    "board:  generic: {m} is a Jetson jetrt has no profile for (L4T {})",
                    board.l4t_release.as_deref().unwrap_or("unknown")
                )
            }
            _ => println!("board:  generic (not a Jetson)"),
        }
        if let Some(b) = machine.dram_bytes {
            println!("memory: {}", human_bytes(b));
        }
        for (i, line) in gpu.iter().enumerate() {
            println!("{}{line}", if i == 0 { "gpu:    " } else { "        " });
        }
        if telemetry {
            println!("telemetry:");
            for line in crate::board::lines(&jetrt_boards::telemetry::read(&root)) {
                println!("        {line}");
            }
            if let Some((spec, c)) = sensor {
                println!("        board sensor: {c:.2} °C ({spec})");
            }
        }
    }
    Ok(())
}

/// `jetrt info --telemetry --watch`: a line (or a JSON object) every `secs`.
fn watch_telemetry(root: &Path, secs: f64, count: Option<u64>, json: bool) -> Result<()> {
    if !(secs.is_finite() && secs > 0.0) {
        bail!("--watch {secs}: expected a number of seconds above 0");
    }
    let every = std::time::Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let t = jetrt_boards::telemetry::read(root);
        let at = start.elapsed().as_secs_f64();
        if json {
            let mut obj = crate::board::to_json(&t);
            obj["seconds"] = json!(at);
            println!("{}", serde_json::to_string(&obj)?);
        } else {
            println!("{at:8.1} s  {}", crate::board::line(&t));
        }
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        let next = every.mul_f64(n as f64);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
}

/// The GPUs another root's files show (CUDA is not asked about them).
/// An integrated GPU is described from the board's profile, with the
/// backend jetrt runs there.
fn files_gpu_report(seen: &[jetrt_boards::GpuPresence], profile: Option<&jetrt_boards::Profile>) -> (Vec<String>, serde_json::Value) {
    if seen.is_empty() {
        return (vec!["none seen in the files".to_string()], json!([]));
    }
    let mut lines = Vec::new();
    let mut list = Vec::new();
    for g in seen {
        match profile.filter(|_| g.integrated) {
            Some(p) => {
                let (maj, min) = p.compute_capability;
                let backend = if p.runs_cuda() {
                    "the CUDA backend".to_string()
                } else {
                    let cuda = p.jetpack.iter().map(|j| j.cuda).max().unwrap_or("?");
                    format!("the CPU backend (its CUDA stops at {cuda}, below what jetrt's CUDA backend binds)")
                };
                lines.push(format!("{} (sm_{maj}{min}, {} CUDA cores), {}; jetrt runs {backend}", p.gpu_arch, p.cuda_cores, g.model));
                list.push(json!({"name": g.model, "integrated": true, "compute_capability": format!("{maj}.{min}"), "jetrt_backend": if p.runs_cuda() { "cuda" } else { "cpu" }}));
            }
            None => {
                lines.push(g.model.clone());
                list.push(json!({"name": g.model, "integrated": g.integrated}));
            }
        }
    }
    (lines, json!(list))
}

/// What CUDA says about the GPUs (text lines, JSON); `seen` is what the
/// kernel driver's files show, to explain a GPU that CUDA cannot use.
#[cfg(feature = "cuda")]
fn gpu_report(seen: &[jetrt_boards::GpuPresence]) -> (Vec<String>, serde_json::Value) {
    match jetrt::probe_gpus() {
        Ok(gpus) => {
            let mut lines = Vec::new();
            let mut list = Vec::new();
            for g in &gpus {
                let (maj, min) = g.compute_capability;
                let kind = if g.integrated { "integrated: shares DRAM with the CPU" } else { "discrete" };
                lines.push(format!(
                    "{} (sm_{}{}, compute capability {maj}.{min}), {} memory, {} multiprocessors, {kind}",
                    g.name,
                    maj,
                    min,
                    human_bytes(g.total_memory as u64),
                    g.multiprocessors
                ));
                let usable = g.unsupported_reason();
                // Names the board even where the device tree cannot be read (a container).
                let matches: Vec<&str> = if g.integrated {
                    jetrt_boards::profiles::by_gpu((maj as u32, min as u32), g.multiprocessors as u32, g.total_memory as u64)
                        .iter()
                        .map(|p| p.name)
                        .collect()
                } else {
                    Vec::new()
                };
                if !matches.is_empty() {
                    lines.push(format!("  the GPU of {}", matches.join(" or ")));
                }
                lines.push(format!(
                    "  driver CUDA {}.{}; {}",
                    g.driver_version.0,
                    g.driver_version.1,
                    usable.as_deref().unwrap_or("runs the cuda backend (--device auto picks it)")
                ));
                list.push(json!({
                    "name": g.name,
                    "compute_capability": format!("{maj}.{min}"),
                    "memory_bytes": g.total_memory,
                    "integrated": g.integrated,
                    "multiprocessors": g.multiprocessors,
                    "driver_cuda": format!("{}.{}", g.driver_version.0, g.driver_version.1),
                    "usable": usable.is_none(),
                    "unusable_reason": usable,
                    "board_matches": matches,
                }));
            }
            (lines, json!({"cuda": true, "devices": list}))
        }
        Err(reason) => {
            let mut lines = vec![format!("no usable CUDA GPU, models run on the CPU: {reason}")];
            for g in seen {
                lines.push(format!(
                    "the kernel driver shows {} ({}), but CUDA cannot use it",
                    g.model,
                    if g.integrated { "integrated" } else { "discrete" }
                ));
            }
            let seen: Vec<_> = seen.iter().map(|g| json!({"model": g.model, "integrated": g.integrated})).collect();
            (lines, json!({"cuda": false, "reason": reason, "devices": [], "seen_by_driver": seen}))
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn gpu_report(seen: &[jetrt_boards::GpuPresence]) -> (Vec<String>, serde_json::Value) {
    let line = match seen.first() {
        None => "none found".to_string(),
        Some(g) => format!("{}; this build has no CUDA backend (built without the `cuda` feature), so models run on the CPU", g.model),
    };
    (vec![line.clone()], json!({"cuda": false, "reason": line, "devices": []}))
}

/// `--i2c-temp BUS:ADDRESS`: an LM75/TMP102-style sensor's reading.
#[cfg(target_os = "linux")]
fn read_i2c_temp(spec: &str) -> Result<f64> {
    let (bus, address) = jetrt_boards::io::linux::i2c(spec).context("--i2c-temp")?;
    jetrt_boards::io::TempSensor::new(bus, address).celsius().with_context(|| format!("--i2c-temp {spec}"))
}

#[cfg(not(target_os = "linux"))]
fn read_i2c_temp(_spec: &str) -> Result<f64> {
    bail!("--i2c-temp needs Linux (/dev/i2c-N)")
}
