//! A GPIO line (a lamp, a relay) driven by the verdict.

use super::Verdict;
use crate::error::{Error, Result};

/// Drives an alarm line (a lamp, a relay) from the verdict: active while
/// the verdict is at least `level`. Any embedded-hal `OutputPin` through
/// the boards crate's [`AlarmLine`](jetrt_boards::io::AlarmLine): a GPIO
/// line on a board (`jetrt_boards::io::linux`), a recording pin in tests.
pub struct AlarmPin<P: embedded_hal::digital::OutputPin> {
    line: jetrt_boards::io::AlarmLine<P>,
    level: Verdict,
}

impl<P: embedded_hal::digital::OutputPin> AlarmPin<P> {
    /// Sets the line inactive (low) at start.
    pub fn new(pin: P, level: Verdict) -> Result<AlarmPin<P>> {
        Self::wired(pin, level, false)
    }

    /// As [`new`](Self::new), for a line wired active-low when `active_low`.
    pub fn wired(pin: P, level: Verdict, active_low: bool) -> Result<AlarmPin<P>> {
        let line = jetrt_boards::io::AlarmLine::new(pin, "drift alarm line", active_low).map_err(|e| Error::Options(e.0))?;
        Ok(AlarmPin { line, level })
    }

    /// Sets the line for `verdict`; touches it only when that changes.
    pub fn update(&mut self, verdict: Verdict) -> Result<()> {
        self.line.set(verdict >= self.level).map_err(|e| Error::Options(e.0))
    }

    /// The pin back (tests read what it recorded).
    pub fn into_inner(self) -> P {
        self.line.into_inner()
    }
}
