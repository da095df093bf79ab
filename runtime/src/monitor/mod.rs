//! Drift monitoring on the device: reference statistics stored in the
//! `.jrt` file at conversion, and a [`Monitor`] that compares a sliding
//! window of inferences with them, with no server, no labels and no heap
//! after start.
//!
//! What is watched, for every float32 model input and output:
//!
//! - its values (pooled; a large tensor is sampled: up to [`MAX_SAMPLED`]
//!   elements per inference in runs spread over it, moving with each
//!   inference), as a histogram over bins whose edges are the reference's
//!   deciles;
//! - per inference: the mean, the standard deviation and (for inputs with
//!   rows) the roughness, the mean absolute difference between neighbours
//!   along the last axis, which blur lowers and noise raises;
//! - the mean of each channel (axis 1, up to [`MAX_CHANNELS`]);
//! - for classifier-like outputs (`[1, K]`, 2 ≤ K ≤ [`MAX_CLASSES`]): the
//!   top-1 class frequencies, the top-1 confidence and the normalized
//!   entropy of the (softmaxed) distribution.
//!
//! Per tensor the monitor reports the largest Population Stability Index
//! and Kolmogorov–Smirnov distance over its histograms, and the largest
//! standardized mean shift (`|window mean − reference mean| / reference
//! standard deviation`) over its channels and per-inference features. A
//! statistic raises a warning or an alarm when it passes both its level
//! ([`Thresholds`]) and the level that sampling noise alone reaches with a
//! probability of 10⁻³ (warn) or 10⁻⁵ (alarm) for the window and reference
//! sizes at hand, so that small windows do not cry wolf.
//!
//! The module's parts: [`stats`](self) (what one inference contributes and
//! the tests on a window), the [`Monitor`] and its window, the
//! [`AlarmPin`] and the [`MetricsFile`] it drives, and [`Watch`], which
//! ties them to a session as `jetrt run`, `bench` and `serve` do. The
//! reference builder, a host-side tool, is [`crate::host::ReferenceBuilder`].

mod alarm;
mod metrics;
pub(crate) mod reference;
mod stats;
mod watch;
mod window;

use crate::error::Error;
pub use alarm::AlarmPin;
pub use jetrt_format::drift::{Feature, FeatureRef, Reference, TensorReference, BINS};
pub use metrics::MetricsFile;
pub use watch::Watch;
pub use window::{Monitor, TensorStats};

/// Elements of a tensor read per inference at most, in [`SAMPLE_RUNS`]
/// runs of contiguous elements spread evenly over it.
pub const MAX_SAMPLED: usize = 2048;
/// Runs a large tensor is sampled in. Where each run starts within its
/// stretch moves with every inference, so that a window covers the whole
/// tensor.
pub const SAMPLE_RUNS: usize = 32;
/// Channels whose means are tracked; a tensor with more is tracked whole.
pub const MAX_CHANNELS: usize = 64;
/// Classes of a classifier-like output.
pub const MAX_CLASSES: usize = 1024;
/// Monitored tensors per model.
pub const MAX_MONITORED: usize = 16;
/// Per-inference features of a tensor (values included).
pub const MAX_FEATURES: usize = 6;
/// A window is kept as this many blocks of inferences; it slides by a block.
pub const BLOCKS: usize = 10;
/// Largest window (inferences).
pub const MAX_WINDOW: usize = 1 << 20;
/// Default window (inferences).
pub const DEFAULT_WINDOW: usize = 100;

/// A verdict, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verdict {
    #[default]
    Ok,
    Warn,
    Alarm,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Alarm => "alarm",
        }
    }
}

/// Warn and alarm levels of each statistic. A statistic must also pass
/// the level sampling noise reaches with probability 10⁻³ (warn) or 10⁻⁵
/// (alarm) for the window and reference sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Population Stability Index (industry convention: 0.1 / 0.25).
    pub psi: (f64, f64),
    /// Kolmogorov–Smirnov distance (largest gap between the cumulative
    /// distributions at the bin edges).
    pub ks: (f64, f64),
    /// Standardized mean shift, in reference standard deviations.
    pub shift: (f64, f64),
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { psi: (0.1, 0.25), ks: (0.1, 0.2), shift: (0.5, 1.0) }
    }
}

/// The monitor's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorOptions {
    /// Inferences in the sliding window.
    pub window: usize,
    pub thresholds: Thresholds,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions { window: DEFAULT_WINDOW, thresholds: Thresholds::default() }
    }
}

pub(crate) fn internal(reason: &str) -> Error {
    Error::Internal { step: 0, op: "drift", reason: reason.into() }
}
