//! [`Watch`]: the monitor as an application runs it, with what it drives
//! (a metrics file, an alarm line) and a log line whenever the verdict
//! changes. `jetrt run`, `bench`, `drift` and `serve` use it, and so can any
//! program that embeds the runtime.

use super::{AlarmPin, MetricsFile, Monitor, MonitorOptions, Verdict};
use crate::error::{Error, Result};
use crate::{Model, Session};

type Pin = Box<dyn FnMut(Verdict) -> Result<()> + Send>;

/// A [`Monitor`] of one model with its outputs. Like the monitor, it
/// allocates only when it starts and when the verdict changes (the log line
/// and the metrics file), never on an ordinary inference.
pub struct Watch {
    monitor: Monitor,
    model: Model,
    metrics: Option<MetricsFile>,
    pin: Option<Pin>,
    last: Verdict,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("monitor", &self.monitor)
            .field("metrics", &self.metrics.is_some())
            .field("alarm", &self.pin.is_some())
            .finish()
    }
}

impl Watch {
    /// Watches `model` (which must hold a drift reference).
    pub fn new(model: &Model, options: MonitorOptions) -> Result<Watch> {
        let monitor = Monitor::new(model, options)?;
        Ok(Watch { monitor, model: model.clone(), metrics: None, pin: None, last: Verdict::Ok })
    }

    /// Also writes the monitor's state to `path` in Prometheus text format,
    /// now and on every verdict change ([`MetricsFile`]).
    pub fn with_metrics_file(mut self, path: impl Into<std::path::PathBuf>) -> Result<Watch> {
        let name = self.model.meta("name").unwrap_or("model").to_string();
        self.metrics = Some(MetricsFile::new(path, &name));
        self.publish()?;
        Ok(self)
    }

    /// Also drives `pin` from the verdict ([`AlarmPin`]).
    pub fn with_alarm<P>(mut self, mut pin: AlarmPin<P>) -> Result<Watch>
    where
        P: embedded_hal::digital::OutputPin + Send + 'static,
    {
        pin.update(self.monitor.verdict())?;
        self.pin = Some(Box::new(move |v| pin.update(v)));
        Ok(self)
    }

    /// The monitor (window, statistics, verdict).
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Observes the inference `session` (a session of this model) just
    /// ran. When the verdict changes it logs which tensors drifted and how
    /// (error for an alarm, warning for a warn), rewrites the metrics file
    /// and sets the alarm line.
    pub fn observe(&mut self, session: &Session) -> Result<Verdict> {
        let v = self.monitor.observe(session)?;
        if v != self.last {
            self.log_change(v);
            self.last = v;
            self.publish()?;
        }
        Ok(v)
    }

    fn log_change(&self, v: Verdict) {
        let samples = self.monitor.samples();
        if v == Verdict::Ok {
            log::info!("drift back to ok after {samples} inferences");
            return;
        }
        let worst: Vec<String> = self
            .monitor
            .stats()
            .filter(|s| s.verdict == v)
            .map(|s| {
                format!(
                    "{} (psi {:.3}, ks {:.3}, shift {:.2}{})",
                    self.model.tensor_name(s.tensor).unwrap_or("?"),
                    s.psi,
                    s.ks,
                    s.mean_shift,
                    s.worst.map_or(String::new(), |f| format!(", worst: {}", f.name()))
                )
            })
            .collect();
        let msg = format!("drift {} after {samples} inferences: {}", v.name(), worst.join("; "));
        if v == Verdict::Alarm {
            log::error!("{msg}");
        } else {
            log::warn!("{msg}");
        }
    }

    /// Writes the metrics file and sets the alarm line for the current
    /// verdict (done on every change; call it at the end of a run too).
    pub fn publish(&mut self) -> Result<()> {
        if let Some(m) = &mut self.metrics {
            m.write(&self.monitor, &self.model).map_err(|source| Error::Write { path: m.path().to_path_buf(), source })?;
        }
        if let Some(pin) = &mut self.pin {
            pin(self.monitor.verdict())?;
        }
        Ok(())
    }
}
