//! The board under the tools: where its files are, its telemetry as text
//! and JSON, and a sampler that watches it while a benchmark runs.

use jetrt_boards::telemetry::{self, Telemetry};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use jetrt::budget::{board_budget, budget_message, check_fits};
pub use jetrt_boards::root;

fn mhz(hz: u64) -> String {
    format!("{} MHz", hz / 1_000_000)
}

/// Telemetry as JSON (every figure in SI units: °C, V, A, W, Hz).
pub fn to_json(t: &Telemetry) -> Value {
    json!({
        "thermal": t.zones.iter().map(|z| json!({"zone": z.name, "celsius": z.celsius, "passive_trip_celsius": z.passive_c})).collect::<Vec<_>>(),
        "rails": t.rails.iter().map(|r| json!({"rail": r.name, "volts": r.volts, "amps": r.amps, "watts": r.watts})).collect::<Vec<_>>(),
        "input_watts": t.input_watts(),
        "gpu": t.gpu.as_ref().map(|g| json!({"device": g.device, "load_percent": g.load_percent, "freq_hz": g.freq_hz, "max_freq_hz": g.max_freq_hz})),
        "cpu_clocks": t.cpus.iter().map(|c| json!({"cpu": c.cpu, "freq_hz": c.freq_hz, "cap_hz": c.cap_hz, "max_hz": c.max_hz})).collect::<Vec<_>>(),
        "emc_hz": t.emc_hz,
        "power_mode": t.power_mode.as_ref().map(|m| json!({"id": m.id, "name": m.name})),
        "cooling": t.cooling.iter().map(|c| json!({"device": c.name, "state": c.state, "max_state": c.max_state})).collect::<Vec<_>>(),
        "oc_events": t.oc_events,
        "throttling": t.throttling(None),
    })
}

fn mode_name(t: &Telemetry) -> Option<String> {
    t.power_mode.as_ref().map(|m| m.name.clone().unwrap_or_else(|| format!("mode {}", m.id)))
}

/// Telemetry as lines for people (`jetrt info --telemetry`).
pub fn lines(t: &Telemetry) -> Vec<String> {
    if t.is_empty() {
        return vec!["nothing readable (no thermal zones, power monitors, devfreq GPU or cpufreq under this root)".into()];
    }
    let mut out = Vec::new();
    if let Some(m) = mode_name(t) {
        out.push(format!("power mode: {m} (nvpmodel)"));
    }
    if !t.zones.is_empty() {
        let z: Vec<String> = t.zones.iter().map(|z| format!("{} {:.1}", z.name, z.celsius)).collect();
        out.push(format!("temperature °C: {}", z.join(", ")));
    }
    if !t.rails.is_empty() {
        let r: Vec<String> = t.rails.iter().map(|r| format!("{} {:.2}", r.name, r.watts)).collect();
        out.push(format!("power W: {}", r.join(", ")));
    }
    if let Some(g) = &t.gpu {
        let load = g.load_percent.map_or("load unknown".into(), |l| format!("{l:.1}% load"));
        let f = match (g.freq_hz, g.max_freq_hz) {
            (Some(f), Some(m)) => format!(", {} of {}", mhz(f), mhz(m)),
            (Some(f), None) => format!(", {}", mhz(f)),
            _ => String::new(),
        };
        out.push(format!("gpu: {load}{f} ({})", g.device));
    }
    if !t.cpus.is_empty() {
        let c: Vec<String> = t.cpus.iter().map(|c| format!("{}", c.freq_hz / 1_000_000)).collect();
        let cap = t.cpus.iter().filter_map(|c| c.cap_hz).max().map_or(String::new(), |m| format!(" (ceiling {})", mhz(m)));
        out.push(format!("cpu MHz: {}{cap}", c.join(" ")));
    }
    out.push(match t.emc_hz {
        Some(hz) => format!("memory (EMC): {}", mhz(hz)),
        None => "memory (EMC): not readable (needs root: debugfs)".into(),
    });
    let why = t.throttling(None);
    out.push(if why.is_empty() { "throttling: none".into() } else { format!("throttling: {}", why.join("; ")) });
    out
}

/// One short line (`jetrt info --telemetry --watch`).
pub fn line(t: &Telemetry) -> String {
    let mut parts = Vec::new();
    if let Some(z) = t.hottest() {
        parts.push(format!("{:.1} °C ({})", z.celsius, z.name));
    }
    if let Some(w) = t.input_watts() {
        parts.push(format!("{w:.2} W in"));
    }
    if let Some(g) = &t.gpu {
        let load = g.load_percent.map_or(String::new(), |l| format!("{l:.0}% "));
        parts.push(format!("gpu {load}{}", g.freq_hz.map_or(String::new(), mhz)).trim_end().to_string());
    }
    if let Some(hz) = t.mean_cpu_hz() {
        parts.push(format!("cpu {:.0} MHz avg", hz / 1e6));
    }
    if let Some(hz) = t.emc_hz {
        parts.push(format!("emc {}", mhz(hz)));
    }
    if let Some(m) = mode_name(t) {
        parts.push(m);
    }
    if !t.throttling(None).is_empty() {
        parts.push("THROTTLING".into());
    }
    if parts.is_empty() {
        "nothing readable".into()
    } else {
        parts.join(" | ")
    }
}

/// What the board did during a measurement.
#[derive(Debug, Clone)]
pub struct Watched {
    pub before: Telemetry,
    pub after: Telemetry,
    /// The hottest reading seen: zone and °C.
    pub peak: Option<(String, f64)>,
    /// Why the board slowed itself down, each reason once; empty when it did not.
    pub throttling: Vec<String>,
    pub samples: usize,
}

impl Watched {
    pub fn to_json(&self) -> Value {
        json!({
            "before": to_json(&self.before),
            "after": to_json(&self.after),
            "peak_celsius": self.peak.as_ref().map(|p| p.1),
            "peak_zone": self.peak.as_ref().map(|p| p.0.clone()),
            "throttled": !self.throttling.is_empty(),
            "throttling": self.throttling,
            "samples": self.samples,
        })
    }

    /// One line for the benchmark's report, or None when nothing was readable.
    pub fn summary(&self) -> Option<String> {
        if self.before.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if let (Some(a), Some(b)) = (self.before.hottest(), self.after.hottest()) {
            let peak = self.peak.as_ref().map_or(String::new(), |p| format!(", peak {:.1}", p.1));
            parts.push(format!("{:.1} -> {:.1} °C{peak} ({})", a.celsius, b.celsius, b.name));
        }
        if let (Some(a), Some(b)) = (self.before.input_watts(), self.after.input_watts()) {
            parts.push(format!("{a:.2} -> {b:.2} W in"));
        }
        if let Some(m) = mode_name(&self.after) {
            parts.push(format!("power mode {m}"));
        }
        parts.push(if self.throttling.is_empty() { "no throttling seen".into() } else { "THROTTLED".into() });
        Some(parts.join(", "))
    }
}

/// Reads the board's telemetry every `every` on a thread of its own while
/// work runs (a throttle that comes and goes between a before and an after
/// reading is still seen).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Watched>,
}

impl Sampler {
    pub fn start(root: &Path, every: Duration) -> Sampler {
        let root = root.to_path_buf();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let before = telemetry::read(&root);
        let handle = std::thread::spawn(move || {
            let mut w = Watched { before: before.clone(), after: before, peak: None, throttling: Vec::new(), samples: 0 };
            loop {
                let t = telemetry::read(&root);
                w.samples += 1;
                if let Some(z) = t.hottest() {
                    if w.peak.as_ref().is_none_or(|p| z.celsius > p.1) {
                        w.peak = Some((z.name.clone(), z.celsius));
                    }
                }
                for why in t.throttling(Some(&w.before)) {
                    if !w.throttling.contains(&why) {
                        w.throttling.push(why);
                    }
                }
                w.after = t;
                // Sleep in short steps so that stopping is quick.
                let mut slept = Duration::ZERO;
                while slept < every && !flag.load(Ordering::Relaxed) {
                    let step = Duration::from_millis(20).min(every - slept);
                    std::thread::sleep(step);
                    slept += step;
                }
                if flag.load(Ordering::Relaxed) {
                    // One last reading, taken after the work.
                    let t = telemetry::read(&root);
                    for why in t.throttling(Some(&w.before)) {
                        if !w.throttling.contains(&why) {
                            w.throttling.push(why);
                        }
                    }
                    w.samples += 1;
                    w.after = t;
                    return w;
                }
            }
        });
        Sampler { stop, handle }
    }

    pub fn finish(self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the telemetry sampler panicked")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttling_board_is_seen_by_the_sampler() {
        let hot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards/tests/fixtures/jetson-nano-devkit");
        let w = Sampler::start(&hot, Duration::from_millis(10)).finish();
        assert!(w.samples >= 2 && !w.throttling.is_empty(), "{w:?}");
        assert_eq!(w.peak.as_ref().map(|p| p.0.as_str()), Some("CPU-therm"));
        assert!(w.summary().unwrap().contains("THROTTLED"));
        let cool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards/tests/fixtures/jetson-orin-nano-devkit");
        let w = Sampler::start(&cool, Duration::from_millis(10)).finish();
        assert!(w.throttling.is_empty(), "{w:?}");
        assert!(w.summary().unwrap().contains("no throttling seen"));
        assert!(line(&w.after).contains("15W"));
    }
}
