//! The monitor's state as a Prometheus textfile.

use super::{Monitor, TensorStats, Verdict};

/// The monitor's state in Prometheus text format, for node-exporter's
/// textfile collector: written to a temporary file beside `path` and
/// renamed over it, so the collector never reads half a file.
pub struct MetricsFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    model: String,
    buf: String,
}

impl MetricsFile {
    pub fn new(path: impl Into<std::path::PathBuf>, model: &str) -> MetricsFile {
        let path = path.into();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let model = model.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        MetricsFile { path, tmp: tmp.into(), model, buf: String::with_capacity(4096) }
    }

    /// The file written.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Writes the monitor's current statistics.
    pub fn write(&mut self, monitor: &Monitor, model: &crate::Model) -> std::io::Result<()> {
        use std::fmt::Write;
        let b = &mut self.buf;
        b.clear();
        let m = &self.model;
        let label = |t: usize| model.tensor_name(t).unwrap_or("?").replace('\\', "\\\\").replace('"', "\\\"");
        type Gauge = (&'static str, &'static str, fn(&TensorStats) -> f64);
        let gauges: [Gauge; 4] = [
            ("jetrt_drift_psi", "Population Stability Index over the window (largest of the tensor's histograms)", |s| s.psi),
            ("jetrt_drift_ks", "Kolmogorov-Smirnov distance over the window (largest of the tensor's histograms)", |s| s.ks),
            ("jetrt_drift_mean_shift", "Standardized mean shift over the window, in reference standard deviations", |s| s.mean_shift),
            ("jetrt_drift_verdict", "Drift verdict of the tensor: 0 ok, 1 warn, 2 alarm", |s| s.verdict as u8 as f64),
        ];
        for (name, help, get) in gauges {
            let _ = writeln!(b, "# HELP {name} {help}\n# TYPE {name} gauge");
            for s in monitor.stats() {
                let _ = writeln!(b, "{name}{{model=\"{m}\",tensor=\"{}\"}} {}", label(s.tensor), get(s));
            }
        }
        let _ = writeln!(
            b,
            "# HELP jetrt_drift_alarm Whether the model's drift verdict is alarm (1) or not (0)\n# TYPE jetrt_drift_alarm gauge"
        );
        let _ = writeln!(b, "jetrt_drift_alarm{{model=\"{m}\"}} {}", u8::from(monitor.verdict() == Verdict::Alarm));
        let _ = writeln!(b, "# HELP jetrt_drift_warn Whether the model's drift verdict is warn or worse\n# TYPE jetrt_drift_warn gauge");
        let _ = writeln!(b, "jetrt_drift_warn{{model=\"{m}\"}} {}", u8::from(monitor.verdict() >= Verdict::Warn));
        let _ = writeln!(b, "# HELP jetrt_drift_samples_total Inferences the monitor has seen\n# TYPE jetrt_drift_samples_total counter");
        let _ = writeln!(b, "jetrt_drift_samples_total{{model=\"{m}\"}} {}", monitor.samples());
        let _ = writeln!(b, "# HELP jetrt_drift_window Inferences in the sliding window\n# TYPE jetrt_drift_window gauge");
        let _ = writeln!(b, "jetrt_drift_window{{model=\"{m}\"}} {}", monitor.window());
        std::fs::write(&self.tmp, b.as_bytes())?;
        std::fs::rename(&self.tmp, &self.path)
    }
}
