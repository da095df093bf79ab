//! What board jetrt runs on: Jetson detection from the files L4T lays out
//! (`/proc/device-tree/model`, `/proc/device-tree/compatible`,
//! `/etc/nv_tegra_release`). Reads are relative to a root folder so tests
//! can point it at fixture trees.

use std::path::{Path, PathBuf};

pub mod io;
pub mod profiles;
pub mod telemetry;
pub use profiles::{Profile, PROFILES};

/// Where the board's files are: `/`, or `$JETRT_ROOT` (a copy of a board's
/// files, for tests and for asking what jetrt would decide on that board).
pub fn root() -> PathBuf {
    std::env::var_os("JETRT_ROOT").filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// `12.3 MiB` style sizes for people.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What the board's files say about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardInfo {
    /// `/proc/device-tree/model`, e.g. "NVIDIA Jetson Orin Nano Developer Kit".
    pub model: Option<String>,
    /// `/proc/device-tree/compatible` entries, e.g. ["nvidia,p3768-0000+p3767-0005", "nvidia,tegra234"].
    pub compatible: Vec<String>,
    /// L4T release from `/etc/nv_tegra_release`, e.g. "R36.3.0".
    pub l4t_release: Option<String>,
}

impl BoardInfo {
    /// Whether this is an NVIDIA Jetson (Tegra) board.
    pub fn is_jetson(&self) -> bool {
        self.compatible.iter().any(|c| c.starts_with("nvidia,tegra"))
            || self.model.as_deref().is_some_and(|m| m.contains("Jetson"))
            || self.l4t_release.is_some()
    }
}

fn read_string(root: &Path, rel: &str) -> Option<String> {
    let bytes = std::fs::read(root.join(rel)).ok()?;
    // Device-tree strings end with NUL.
    let s = String::from_utf8_lossy(&bytes).trim_end_matches(['\0', '\n']).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Parses the first line of `/etc/nv_tegra_release`:
/// `# R36 (release), REVISION: 3.0, GCID: ..., BOARD: generic, EABI: aarch64, ...`
pub fn parse_tegra_release(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let major = line.split_whitespace().find(|w| w.starts_with('R') && w[1..].chars().all(|c| c.is_ascii_digit()) && w.len() > 1)?;
    let rev = line.split("REVISION:").nth(1)?.split(',').next()?.trim();
    Some(format!("{major}.{rev}"))
}

/// An NVIDIA GPU seen through the driver's files (not through CUDA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuPresence {
    /// e.g. "NVIDIA H100 80GB HBM3", or "integrated (Tegra)".
    pub model: String,
    /// CPU and GPU share DRAM (Jetson).
    pub integrated: bool,
}

/// Looks for an NVIDIA GPU under `root`: a discrete one in
/// `/proc/driver/nvidia/gpus/*/information`, an integrated one on a Jetson
/// (the board is a Tegra and `/dev/nvhost-ctrl-gpu` or `/dev/nvgpu` exists).
pub fn gpu_presence(root: &Path, board: &BoardInfo) -> Vec<GpuPresence> {
    let mut out = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(root.join("proc/driver/nvidia/gpus")) {
        let mut paths: Vec<_> = dirs.flatten().map(|d| d.path()).collect();
        paths.sort();
        for d in paths {
            let info = std::fs::read_to_string(d.join("information")).unwrap_or_default();
            let model =
                info.lines().find_map(|l| l.strip_prefix("Model:")).map_or_else(|| "NVIDIA GPU".to_string(), |m| m.trim().to_string());
            out.push(GpuPresence { model, integrated: false });
        }
    }
    let tegra_gpu = ["dev/nvhost-ctrl-gpu", "dev/nvgpu/igpu0/ctrl", "dev/nvgpu"].iter().any(|p| root.join(p).exists());
    if board.is_jetson() && tegra_gpu {
        out.push(GpuPresence { model: "integrated (Tegra)".into(), integrated: true });
    }
    out
}

/// Reads the board's files under `root` (normally `/`).
pub fn detect(root: &Path) -> BoardInfo {
    let compatible = std::fs::read(root.join("proc/device-tree/compatible"))
        .map(|b| b.split(|&c| c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
        .unwrap_or_default();
    BoardInfo {
        model: read_string(root, "proc/device-tree/model"),
        compatible,
        l4t_release: std::fs::read_to_string(root.join("etc/nv_tegra_release")).ok().as_deref().and_then(parse_tegra_release),
    }
}

/// The CPU as `/proc/cpuinfo` under a root shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// "model name" (x86), else the board profile's CPU, else the ARM part number.
    pub model: Option<String>,
    pub cores: usize,
    /// "Features" (ARM) or "flags" (x86) of the first core.
    pub features: Vec<String>,
}

/// What `jetrt info` reports about the machine whose files are under `root`.
#[derive(Debug, Clone)]
pub struct Machine {
    pub info: BoardInfo,
    /// The known board it is, if any.
    pub profile: Option<&'static Profile>,
    /// `MemTotal` from `/proc/meminfo` (what the kernel can use, a little under the DRAM size).
    pub dram_bytes: Option<u64>,
    pub cpu: CpuInfo,
}

impl Machine {
    /// The profile name, or "generic".
    pub fn board_name(&self) -> &'static str {
        self.profile.map_or(profiles::GENERIC, |p| p.name)
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (k, v) = line.split_once(':')?;
    (k.trim() == key).then(|| v.trim())
}

/// Reads board, memory and CPU from the files under `root` (normally `/`).
pub fn machine(root: &Path) -> Machine {
    let info = detect(root);
    let profile = profiles::by_compatible(&info.compatible);
    let dram_bytes = std::fs::read_to_string(root.join("proc/meminfo"))
        .ok()
        .and_then(|m| m.lines().find_map(|l| field(l, "MemTotal")).and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok()))
        .map(|kb| kb * 1024);
    let cpuinfo = std::fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
    let first = |key: &str| cpuinfo.lines().find_map(|l| field(l, key)).map(str::to_string);
    let cores = cpuinfo.lines().filter(|l| field(l, "processor").is_some()).count();
    let features =
        first("Features").or_else(|| first("flags")).map(|f| f.split_whitespace().map(String::from).collect()).unwrap_or_default();
    let model = first("model name")
        .or_else(|| profile.map(|p| p.cpu.to_string()))
        .or_else(|| first("CPU part").map(|part| format!("ARM CPU part {part}")));
    Machine { info, profile, dram_bytes, cpu: CpuInfo { model, cores, features } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_l4t_tree() {
        let dir = std::env::temp_dir().join(format!("jetrt-boards-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("proc/device-tree")).unwrap();
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("proc/device-tree/model"), b"NVIDIA Jetson Orin Nano Developer Kit\0").unwrap();
        std::fs::write(dir.join("proc/device-tree/compatible"), b"nvidia,p3768-0000+p3767-0005\0nvidia,p3767-0005\0nvidia,tegra234\0")
            .unwrap();
        std::fs::write(
            dir.join("etc/nv_tegra_release"),
            "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024\n",
        )
        .unwrap();
        let b = detect(&dir);
        assert_eq!(b.model.as_deref(), Some("NVIDIA Jetson Orin Nano Developer Kit"));
        assert_eq!(b.compatible.last().map(String::as_str), Some("nvidia,tegra234"));
        assert_eq!(b.l4t_release.as_deref(), Some("R36.3.0"));
        assert!(b.is_jetson());
        assert!(gpu_presence(&dir, &b).is_empty());
        std::fs::create_dir_all(dir.join("dev")).unwrap();
        std::fs::write(dir.join("dev/nvhost-ctrl-gpu"), b"").unwrap();
        assert_eq!(gpu_presence(&dir, &b), vec![GpuPresence { model: "integrated (Tegra)".into(), integrated: true }]);
        std::fs::create_dir_all(dir.join("proc/driver/nvidia/gpus/0000:01:00.0")).unwrap();
        std::fs::write(dir.join("proc/driver/nvidia/gpus/0000:01:00.0/information"), "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ: 42\n")
            .unwrap();
        assert_eq!(gpu_presence(&dir, &b)[0].model, "NVIDIA H100 80GB HBM3");
        std::fs::remove_dir_all(&dir).unwrap();
        let none = detect(Path::new("/nonexistent-root"));
        assert!(!none.is_jetson());
    }
}
