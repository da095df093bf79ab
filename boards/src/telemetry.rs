//! Board telemetry read straight from the kernel's files, without
//! tegrastats (which needs root on some releases, prints a format that
//! changes between JetPacks, and is one more process on a small board).
//!
//! What is read, all relative to a root folder (normally `/`):
//! - temperatures: `sys/class/thermal/thermal_zone*/{type,temp}` and their
//!   passive trip points;
//! - power per rail: INA3221 monitors as hwmon devices
//!   (`sys/class/hwmon/hwmon*/{name,inN_label,inN_input,currN_input}`,
//!   JetPack 5 and later) or as IIO devices
//!   (`sys/bus/i2c/drivers/ina3221x/*/iio:device*/{rail_name_N,in_power_N_input}`,
//!   JetPack 4);
//! - GPU load and clock: the GPU's devfreq device
//!   (`sys/class/devfreq/*/{cur_freq,max_freq,device/load}`);
//! - CPU clocks: `sys/devices/system/cpu/cpu*/cpufreq/`;
//! - EMC (memory) clock: debugfs (`sys/kernel/debug/bpmp/debug/clk/emc/rate`,
//!   or `sys/kernel/debug/clk/emc/clk_rate` on JetPack 4), readable by root only;
//! - the nvpmodel power mode: `var/lib/nvpmodel/status` and the mode names in
//!   `etc/nvpmodel.conf`;
//! - throttling: non-fan cooling devices in use
//!   (`sys/class/thermal/cooling_device*/{type,cur_state}`) and over-current
//!   event counters (`oc*_event_cnt` of any hwmon device: on Orin the
//!   `soctherm_oc` one).
//!
//! Anything that is missing or unreadable is left out, never an error: a
//! generic Linux machine has little of this, and a board without root has
//! no EMC clock.

use std::path::{Path, PathBuf};

/// One thermal zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// The zone's `type`, e.g. "cpu-thermal", "GPU-therm".
    pub name: String,
    pub celsius: f64,
    /// The lowest passive trip point: where the kernel starts to slow clocks.
    pub passive_c: Option<f64>,
}

/// One power rail of a current monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Rail {
    /// The rail's label, e.g. "VDD_IN", "VDD_CPU_GPU_CV".
    pub name: String,
    pub volts: Option<f64>,
    pub amps: Option<f64>,
    pub watts: f64,
}

/// The GPU's load and clock (devfreq).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuLoad {
    /// The devfreq device, e.g. "17000000.ga10b".
    pub device: String,
    /// 0 to 100; `None` when the load file is missing.
    pub load_percent: Option<f64>,
    pub freq_hz: Option<u64>,
    /// The ceiling devfreq allows now (lowered by thermal throttling or nvpmodel).
    pub max_freq_hz: Option<u64>,
}

/// One CPU core's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuClock {
    pub cpu: usize,
    pub freq_hz: u64,
    /// The ceiling the governor may use now (lowered by thermal throttling or nvpmodel).
    pub cap_hz: Option<u64>,
    /// The hardware maximum.
    pub max_hz: Option<u64>,
}

/// The nvpmodel power mode in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerMode {
    pub id: u32,
    /// From nvpmodel.conf, e.g. "15W", "MAXN".
    pub name: Option<String>,
}

/// A cooling device that is not a fan, with a state above zero: the kernel
/// is slowing something down to cool it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cooling {
    pub name: String,
    pub state: u64,
    pub max_state: Option<u64>,
}

/// One reading of everything this module knows how to read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Telemetry {
    pub zones: Vec<Zone>,
    pub rails: Vec<Rail>,
    pub gpu: Option<GpuLoad>,
    pub cpus: Vec<CpuClock>,
    pub emc_hz: Option<u64>,
    pub power_mode: Option<PowerMode>,
    /// Cooling devices (not fans) in use.
    pub cooling: Vec<Cooling>,
    /// Over-current events counted so far, over every monitor (`None`: no counter).
    pub oc_events: Option<u64>,
}

fn read_trim(p: &Path) -> Option<String> {
    let s = std::fs::read_to_string(p).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn read_num<T: std::str::FromStr>(p: &Path) -> Option<T> {
    read_trim(p)?.parse().ok()
}

/// Entries of `dir` whose names start with `prefix`, in numeric order of
/// what follows the prefix (thermal_zone2 before thermal_zone10).
fn numbered(dir: &Path, prefix: &str) -> Vec<(u64, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<(u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix(prefix)?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v
}

fn zones(root: &Path) -> Vec<Zone> {
    numbered(&root.join("sys/class/thermal"), "thermal_zone")
        .into_iter()
        .filter_map(|(_, d)| {
            // Some zones (a PMIC die, an unplugged sensor) fail to read: skip them.
            let milli: i64 = read_num(&d.join("temp"))?;
            let name = read_trim(&d.join("type")).unwrap_or_else(|| d.file_name().unwrap_or_default().to_string_lossy().into_owned());
            // Nano and TX2 report a fixed 100 °C for the PMIC die: not a measurement.
            if name == "PMIC-Die" {
                return None;
            }
            // Trip points are numbered from 0 without gaps.
            let passive_c = (0..32)
                .map_while(|k| Some((read_trim(&d.join(format!("trip_point_{k}_type")))?, k)))
                .filter_map(|(kind, k)| {
                    let t: i64 = read_num(&d.join(format!("trip_point_{k}_temp")))?;
                    (kind == "passive" && t > 0).then_some(t as f64 / 1000.0)
                })
                .reduce(f64::min);
            Some(Zone { name, celsius: milli as f64 / 1000.0, passive_c })
        })
        .collect()
}

/// Rails of power monitors exposed as hwmon devices: INA3221 (Xavier and
/// Orin on JetPack 5 and later) and the INA2xx family, which some carriers use.
fn hwmon_rails(root: &Path) -> Vec<Rail> {
    let mut out = Vec::new();
    for (_, d) in numbered(&root.join("sys/class/hwmon"), "hwmon") {
        let Some(name) = read_trim(&d.join("name")) else { continue };
        if !(name.starts_with("ina3221") || name.starts_with("ina2")) {
            continue;
        }
        for ch in 1..=8 {
            let Some(label) = read_trim(&d.join(format!("in{ch}_label"))) else { continue };
            // INA3221 lists unconnected channels as "NC".
            if label.eq_ignore_ascii_case("nc") || label.starts_with("sum of") {
                continue;
            }
            let volts = read_num::<f64>(&d.join(format!("in{ch}_input"))).map(|mv| mv / 1000.0);
            let amps = read_num::<f64>(&d.join(format!("curr{ch}_input"))).map(|ma| ma / 1000.0);
            let watts = match (read_num::<f64>(&d.join(format!("power{ch}_input"))), volts, amps) {
                (Some(uw), _, _) => uw / 1e6,
                (None, Some(v), Some(a)) => v * a,
                _ => continue,
            };
            out.push(Rail { name: label, volts, amps, watts });
        }
    }
    out
}

/// JetPack 4's INA3221 driver (`ina3221x`), which reports through IIO.
fn iio_rails(root: &Path) -> Vec<Rail> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root.join("sys/bus/i2c/drivers/ina3221x")) else { return out };
    let mut devices: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    devices.sort();
    for dev in devices {
        let Ok(rd) = std::fs::read_dir(&dev) else { continue };
        let mut iio: Vec<PathBuf> =
            rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("iio:device")).map(|e| e.path()).collect();
        iio.sort();
        for d in iio {
            for ch in 0..3 {
                let Some(label) = read_trim(&d.join(format!("rail_name_{ch}"))) else { continue };
                let Some(mw) = read_num::<f64>(&d.join(format!("in_power{ch}_input"))) else { continue };
                let volts = read_num::<f64>(&d.join(format!("in_voltage{ch}_input"))).map(|mv| mv / 1000.0);
                let amps = read_num::<f64>(&d.join(format!("in_current{ch}_input"))).map(|ma| ma / 1000.0);
                out.push(Rail { name: label, volts, amps, watts: mw / 1000.0 });
            }
        }
    }
    out
}

/// devfreq names of Jetson GPUs: gm20b (Nano), gp10b (TX2), gv11b
/// (Xavier), ga10b (Orin); newer releases name the node "gpu".
fn is_gpu_devfreq(name: &str) -> bool {
    ["gpu", "gm20b", "gp10b", "gv11b", "ga10b", "gb10b"].iter().any(|g| name.contains(g))
}

fn gpu(root: &Path) -> Option<GpuLoad> {
    let rd = std::fs::read_dir(root.join("sys/class/devfreq")).ok()?;
    let mut devs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    devs.sort();
    let d = devs.into_iter().find(|d| is_gpu_devfreq(&d.file_name().unwrap_or_default().to_string_lossy()))?;
    // `load` is in tenths of a percent.
    let load = read_num::<f64>(&d.join("device/load")).map(|l| l / 10.0);
    Some(GpuLoad {
        device: d.file_name().unwrap_or_default().to_string_lossy().into_owned(),
        load_percent: load,
        freq_hz: read_num(&d.join("cur_freq")),
        max_freq_hz: read_num(&d.join("max_freq")),
    })
}

fn cpus(root: &Path) -> Vec<CpuClock> {
    numbered(&root.join("sys/devices/system/cpu"), "cpu")
        .into_iter()
        .filter_map(|(n, d)| {
            let f = d.join("cpufreq");
            // kHz in these files.
            let khz: u64 = read_num(&f.join("scaling_cur_freq")).or_else(|| read_num(&f.join("cpuinfo_cur_freq")))?;
            Some(CpuClock {
                cpu: n as usize,
                freq_hz: khz * 1000,
                cap_hz: read_num::<u64>(&f.join("scaling_max_freq")).map(|k| k * 1000),
                max_hz: read_num::<u64>(&f.join("cpuinfo_max_freq")).map(|k| k * 1000),
            })
        })
        .collect()
}

fn emc(root: &Path) -> Option<u64> {
    ["sys/kernel/debug/bpmp/debug/clk/emc/rate", "sys/kernel/debug/clk/emc/clk_rate"].iter().find_map(|p| read_num(&root.join(p)))
}

/// `pmode:0002 fmode:quiet` in the status file; names from the
/// `< POWER_MODEL ID=2 NAME=15W >` lines of nvpmodel.conf.
pub fn parse_power_mode(status: &str, conf: Option<&str>) -> Option<PowerMode> {
    let id: u32 = status.split_whitespace().find_map(|w| w.strip_prefix("pmode:"))?.parse().ok()?;
    let name = conf.and_then(|c| {
        c.lines().filter(|l| l.contains("POWER_MODEL")).find_map(|l| {
            let field = |key: &str| l.split_whitespace().find_map(|w| w.strip_prefix(key)).map(|v| v.trim_end_matches('>'));
            (field("ID=")?.parse::<u32>().ok()? == id).then(|| field("NAME=").map(str::to_string)).flatten()
        })
    });
    Some(PowerMode { id, name })
}

fn power_mode(root: &Path) -> Option<PowerMode> {
    let status = read_trim(&root.join("var/lib/nvpmodel/status"))?;
    let conf = std::fs::read_to_string(root.join("etc/nvpmodel.conf")).ok();
    parse_power_mode(&status, conf.as_deref())
}

fn cooling(root: &Path) -> Vec<Cooling> {
    numbered(&root.join("sys/class/thermal"), "cooling_device")
        .into_iter()
        .filter_map(|(_, d)| {
            let name = read_trim(&d.join("type"))?;
            // A spinning fan is cooling, not throttling.
            if name.to_ascii_lowercase().contains("fan") {
                return None;
            }
            let state: u64 = read_num(&d.join("cur_state"))?;
            (state > 0).then(|| Cooling { name, state, max_state: read_num(&d.join("max_state")) })
        })
        .collect()
}

fn oc_events(root: &Path) -> Option<u64> {
    let mut total = None;
    for (_, d) in numbered(&root.join("sys/class/hwmon"), "hwmon") {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("oc") && name.ends_with("_event_cnt") {
                if let Some(n) = read_num::<u64>(&e.path()) {
                    *total.get_or_insert(0) += n;
                }
            }
        }
    }
    total
}

/// Reads everything readable under `root` (normally `/`).
pub fn read(root: &Path) -> Telemetry {
    let mut rails = hwmon_rails(root);
    rails.extend(iio_rails(root));
    Telemetry {
        zones: zones(root),
        rails,
        gpu: gpu(root),
        cpus: cpus(root),
        emc_hz: emc(root),
        power_mode: power_mode(root),
        cooling: cooling(root),
        oc_events: oc_events(root),
    }
}

impl Telemetry {
    /// Whether anything at all was readable.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
            && self.rails.is_empty()
            && self.gpu.is_none()
            && self.cpus.is_empty()
            && self.emc_hz.is_none()
            && self.power_mode.is_none()
    }

    /// The hottest zone.
    pub fn hottest(&self) -> Option<&Zone> {
        self.zones.iter().max_by(|a, b| a.celsius.total_cmp(&b.celsius))
    }

    /// The board's input power: the rail named VDD_IN (POM_5V_IN on a
    /// Nano), else the sum of the rails (AGX Xavier has no input rail: its
    /// six rails on two monitors together are the module).
    pub fn input_watts(&self) -> Option<f64> {
        let input = self.rails.iter().find(|r| matches!(r.name.as_str(), "VDD_IN" | "POM_5V_IN" | "VIN_SYS_5V0"));
        input.map(|r| r.watts).or_else(|| (!self.rails.is_empty()).then(|| self.rails.iter().map(|r| r.watts).sum()))
    }

    /// The mean CPU clock over the cores that report one.
    pub fn mean_cpu_hz(&self) -> Option<f64> {
        (!self.cpus.is_empty()).then(|| self.cpus.iter().map(|c| c.freq_hz as f64).sum::<f64>() / self.cpus.len() as f64)
    }

    /// Why this reading shows the board slowing itself down, as sentences;
    /// empty when it does not. `baseline` is a reading from before the
    /// work: clock ceilings lowered since then, and over-current events
    /// counted since then, count too.
    pub fn throttling(&self, baseline: Option<&Telemetry>) -> Vec<String> {
        let mut why = Vec::new();
        for c in &self.cooling {
            why.push(format!(
                "cooling device {} at state {}{}",
                c.name,
                c.state,
                c.max_state.map_or(String::new(), |m| format!(" of {m}"))
            ));
        }
        for z in &self.zones {
            if let Some(p) = z.passive_c.filter(|&p| z.celsius >= p) {
                why.push(format!("{} at {:.1} °C, at or above its passive trip point {p:.1} °C", z.name, z.celsius));
            }
        }
        let Some(base) = baseline else { return why };
        if let (Some(now), Some(then)) = (self.oc_events, base.oc_events) {
            if now > then {
                why.push(format!("{} over-current event(s): the power monitor cut the clocks", now - then));
            }
        }
        for c in &self.cpus {
            let before = base.cpus.iter().find(|b| b.cpu == c.cpu).and_then(|b| b.cap_hz);
            if let (Some(now), Some(then)) = (c.cap_hz, before) {
                if now < then {
                    why.push(format!("cpu{} clock ceiling lowered from {} to {} MHz", c.cpu, then / 1_000_000, now / 1_000_000));
                    break;
                }
            }
        }
        if let (Some(now), Some(then)) = (self.gpu.as_ref().and_then(|g| g.max_freq_hz), base.gpu.as_ref().and_then(|g| g.max_freq_hz)) {
            if now < then {
                why.push(format!("GPU clock ceiling lowered from {} to {} MHz", then / 1_000_000, now / 1_000_000));
            }
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_mode_names_come_from_the_conf() {
        let conf = "< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=1 NAME=7W >\n< PM_CONFIG DEFAULT=0 >\n";
        assert_eq!(parse_power_mode("pmode:0001 fmode:quiet", Some(conf)), Some(PowerMode { id: 1, name: Some("7W".into()) }));
        assert_eq!(parse_power_mode("pmode:0003", Some(conf)), Some(PowerMode { id: 3, name: None }));
        assert_eq!(parse_power_mode("garbage", Some(conf)), None);
    }

    #[test]
    fn an_empty_root_reads_as_nothing() {
        let t = read(Path::new("/nonexistent-root"));
        assert!(t.is_empty() && t.throttling(None).is_empty(), "{t:?}");
    }
}
