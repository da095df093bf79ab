//! The A/B model slots on a device: two files, `a.jrt` and `b.jrt`, and a
//! `state.json` that says which one is active, which one is the fallback,
//! and whether the active one has passed its health check.
//!
//! Every change is a new `state.json` renamed over the old one (after an
//! fsync of the file and the folder), and a model only ever reaches a slot
//! by a rename of a complete, fsynced file: a SIGKILL or a power cut at any
//! instant leaves either the old state or the new one.
//!
//! An update is: download into [`SlotStore::part_path`],
//! [`SlotStore::prepare_inactive`] (the fallback is about to be
//! overwritten, so forget it), [`SlotStore::commit_part`] (the rename into
//! the inactive slot),
//! [`SlotStore::switch`] (state `pending`), health check,
//! [`SlotStore::confirm`] or [`SlotStore::roll_back`]. A process that dies
//! while `pending` leaves it so; the next one to open the store with the
//! lock free ([`SlotStore::open`]) rolls back by itself. A version that was
//! rolled back is remembered and never installed again.

use crate::fsx;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

/// One of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
    pub fn file_name(self) -> &'static str {
        match self {
            Slot::A => "a.jrt",
            Slot::B => "b.jrt",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub slot: Slot,
    /// Model name (the target's custom metadata).
    pub model: String,
    pub version: u64,
    /// Hex sha256 and length of the file, as the signed targets metadata gave them.
    pub sha256: String,
    pub length: u64,
    /// The TUF target it came from.
    pub target: String,
}

/// Where an update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// No model installed yet.
    Empty,
    /// The active slot passed its health check.
    Confirmed,
    /// Switched to the active slot, health check not passed yet: the
    /// previous slot is what runs until it is confirmed.
    Pending,
    /// The last update failed (or its process died) and the previous slot is active again.
    RolledBack,
}

impl UpdateState {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Empty => "empty",
            UpdateState::Confirmed => "confirmed",
            UpdateState::Pending => "pending",
            UpdateState::RolledBack => "rolled_back",
        }
    }
}

/// A version that failed after installing: its health check failed
/// (`permanent`: it is never installed again), or the process died before
/// confirming it (tried again, up to [`MAX_ATTEMPTS`] times in all, since
/// the death may have had nothing to do with the model: a power cut).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub version: u64,
    pub sha256: String,
    pub reason: String,
    pub attempts: u32,
    pub permanent: bool,
}

impl Failed {
    /// Whether the version may not be installed again.
    pub fn blocks(&self) -> bool {
        self.permanent || self.attempts >= MAX_ATTEMPTS
    }
}

/// Installs of one version that may die before it is given up on.
pub const MAX_ATTEMPTS: u32 = 2;

/// Most failed versions remembered.
const MAX_FAILED: usize = 16;
const STATE_FORMAT: u32 = 1;

/// The contents of `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotState {
    pub format: u32,
    pub state: UpdateState,
    pub active: Option<Installed>,
    pub previous: Option<Installed>,
    #[serde(default)]
    pub failed: Vec<Failed>,
}

impl Default for SlotState {
    fn default() -> Self {
        SlotState { format: STATE_FORMAT, state: UpdateState::Empty, active: None, previous: None, failed: Vec::new() }
    }
}

impl SlotState {
    /// The model that runs now: the active one, unless it is still pending,
    /// then the previous one.
    pub fn serving(&self) -> Option<&Installed> {
        match self.state {
            UpdateState::Pending => self.previous.as_ref(),
            _ => self.active.as_ref(),
        }
    }

    /// The slot an update writes into.
    pub fn inactive_slot(&self) -> Slot {
        self.active.as_ref().map_or(Slot::A, |a| a.slot.other())
    }

    /// Newest installed-and-confirmed version (what an update must beat).
    pub fn installed_version(&self) -> Option<u64> {
        self.serving().map(|i| i.version)
    }

    /// The record of `version` (with this hash) failing here, if it did.
    pub fn has_failed(&self, version: u64, sha256: &str) -> Option<&Failed> {
        self.failed.iter().find(|f| f.version == version && f.sha256.eq_ignore_ascii_case(sha256))
    }
}

/// A slot folder. Holding the store with [`SlotStore::lock`] taken is what
/// tells others that an update is running.
pub struct SlotStore {
    dir: PathBuf,
    state: SlotState,
    lock: Option<File>,
}

impl std::fmt::Debug for SlotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotStore").field("dir", &self.dir).field("state", &self.state).field("locked", &self.lock.is_some()).finish()
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::io(what, path, source)
}

impl SlotStore {
    /// Reads `DIR/state.json` (creating DIR if needed). When the lock is
    /// free and the state is `pending`, the process that switched died
    /// before confirming: roll back now. Takes the lock when `lock` is set
    /// (the update agent); otherwise releases it again.
    pub fn open(dir: &Path, lock: bool) -> Result<SlotStore> {
        fs::create_dir_all(dir).map_err(io("creating the slot folder", dir))?;
        let mut store = SlotStore { dir: dir.to_path_buf(), state: SlotState::default(), lock: None };
        let got = store.try_lock()?;
        if lock && !got {
            return Err(Error::Busy(dir.to_path_buf()));
        }
        store.state = store.read_state()?;
        if got && store.state.state == UpdateState::Pending {
            let v = store.state.active.as_ref().map_or(0, |a| a.version);
            log::warn!(
                "slot store {}: version {v} was switched to but never confirmed (the updating process died); falling back",
                dir.display()
            );
            store.roll_back("the process died before the new model was confirmed", false)?;
        }
        if !lock {
            store.lock = None;
        }
        Ok(store)
    }

    /// Reads the state without taking the lock or changing anything.
    pub fn peek(dir: &Path) -> Result<SlotState> {
        let store = SlotStore { dir: dir.to_path_buf(), state: SlotState::default(), lock: None };
        store.read_state()
    }

    fn try_lock(&mut self) -> Result<bool> {
        let path = self.dir.join("lock");
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io("opening the lock file", &path))?;
        match f.try_lock() {
            Ok(()) => {
                self.lock = Some(f);
                Ok(true)
            }
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("locking", &path, e)),
        }
    }

    fn read_state(&self) -> Result<SlotState> {
        let path = self.dir.join("state.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SlotState::default()),
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let state: SlotState =
            serde_json::from_slice(&bytes).map_err(|e| Error::State(format!("{} is not a slot state file: {e}", path.display())))?;
        if state.format != STATE_FORMAT {
            return Err(Error::State(format!("{}: state format {} (this jetrt reads {STATE_FORMAT})", path.display(), state.format)));
        }
        Ok(state)
    }

    fn write_state(&mut self, next: SlotState) -> Result<()> {
        let path = self.dir.join("state.json");
        let mut bytes = serde_json::to_vec_pretty(&next).expect("state serializes");
        bytes.push(b'\n');
        fsx::write_atomic(&path, &bytes).map_err(|e| Error::io("writing", &path, e))?;
        self.state = next;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn state(&self) -> &SlotState {
        &self.state
    }
    pub fn slot_path(&self, slot: Slot) -> PathBuf {
        self.dir.join(slot.file_name())
    }
    /// Where the running model's file is.
    pub fn serving_path(&self) -> Option<PathBuf> {
        self.state.serving().map(|i| self.slot_path(i.slot))
    }
    /// The partial download for the inactive slot (resumed across runs).
    pub fn part_path(&self) -> PathBuf {
        self.dir.join(format!("{}.part", self.state.inactive_slot().file_name()))
    }

    fn locked(&self) -> Result<()> {
        if self.lock.is_none() {
            return Err(Error::State("the slot store was opened without its lock".into()));
        }
        Ok(())
    }

    /// Before anything is written into the inactive slot: if it is the
    /// fallback, forget it (it is about to be overwritten).
    pub fn prepare_inactive(&mut self) -> Result<()> {
        self.locked()?;
        let inactive = self.state.inactive_slot();
        if self.state.previous.as_ref().is_some_and(|p| p.slot == inactive) {
            let mut next = self.state.clone();
            next.previous = None;
            self.write_state(next)?;
        }
        Ok(())
    }

    /// Moves the finished download (already fsynced) into the inactive slot
    /// by a rename, and fsyncs the folder.
    pub fn commit_part(&mut self) -> Result<PathBuf> {
        self.locked()?;
        let part = self.part_path();
        let dest = self.slot_path(self.state.inactive_slot());
        fs::rename(&part, &dest).map_err(io("moving the download into its slot", &dest))?;
        fsx::sync_dir(&self.dir).map_err(io("syncing", &self.dir))?;
        Ok(dest)
    }

    /// Makes the inactive slot (holding `installed`) the active one, pending
    /// its health check; the active one becomes the fallback.
    pub fn switch(&mut self, mut installed: Installed) -> Result<()> {
        self.locked()?;
        installed.slot = self.state.inactive_slot();
        let mut next = self.state.clone();
        next.previous = match self.state.state {
            UpdateState::Pending => self.state.previous.clone(),
            _ => self.state.active.clone(),
        };
        next.active = Some(installed);
        next.state = UpdateState::Pending;
        self.write_state(next)
    }

    /// The active slot passed its health check.
    pub fn confirm(&mut self) -> Result<()> {
        self.locked()?;
        if self.state.state != UpdateState::Pending {
            return Err(Error::State(format!("nothing to confirm (state {})", self.state.state.as_str())));
        }
        let mut next = self.state.clone();
        next.state = UpdateState::Confirmed;
        self.write_state(next)
    }

    /// The active slot failed: the previous one is active again (or none,
    /// when this was the first install), and the failure is remembered
    /// (`permanent`: never install this version again).
    pub fn roll_back(&mut self, reason: &str, permanent: bool) -> Result<()> {
        self.locked()?;
        let mut next = self.state.clone();
        if let Some(bad) = next.active.take() {
            let known = next.failed.iter().position(|f| f.version == bad.version && f.sha256 == bad.sha256);
            let f = match known {
                Some(i) => &mut next.failed[i],
                None => {
                    next.failed.push(Failed {
                        version: bad.version,
                        sha256: bad.sha256,
                        reason: String::new(),
                        attempts: 0,
                        permanent: false,
                    });
                    next.failed.last_mut().expect("just pushed")
                }
            };
            f.attempts += 1;
            f.permanent |= permanent;
            f.reason = reason.to_string();
            let excess = next.failed.len().saturating_sub(MAX_FAILED);
            next.failed.drain(..excess);
        }
        next.active = next.previous.take();
        next.state = if next.active.is_some() { UpdateState::RolledBack } else { UpdateState::Empty };
        self.write_state(next)
    }

    /// Installs a local file directly (tests of the state machine):
    /// copies it into the inactive slot durably, switches and confirms.
    /// No health check: the caller vouches for the file.
    #[cfg(test)]
    pub fn install_local(&mut self, file: &Path, model: &str, version: u64) -> Result<()> {
        self.locked()?;
        self.prepare_inactive()?;
        let bytes = fs::read(file).map_err(io("reading", file))?;
        let part = self.part_path();
        let result = (|| {
            let mut f = File::create(&part)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&part);
            return Err(Error::io("writing", &part, e));
        }
        self.commit_part()?;
        let sha256 = crate::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref());
        let target = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let slot = self.state.inactive_slot();
        self.switch(Installed { slot, model: model.to_string(), version, sha256, length: bytes.len() as u64, target })?;
        self.confirm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_file(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn updates_alternate_slots_and_keep_the_previous_as_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("slots");
        let mut s = SlotStore::open(&dir, true).unwrap();
        assert_eq!(s.state().state, UpdateState::Empty);
        s.install_local(&model_file(tmp.path(), "v1", b"one"), "m", 1).unwrap();
        assert_eq!(s.state().active.as_ref().unwrap().slot, Slot::A);
        s.install_local(&model_file(tmp.path(), "v2", b"two"), "m", 2).unwrap();
        let st = s.state().clone();
        assert_eq!((st.active.as_ref().unwrap().slot, st.active.as_ref().unwrap().version), (Slot::B, 2));
        assert_eq!(st.previous.as_ref().unwrap().version, 1);
        assert_eq!(fs::read(s.serving_path().unwrap()).unwrap(), b"two");
        // The third install overwrites slot A: the fallback is forgotten first.
        s.prepare_inactive().unwrap();
        assert_eq!(SlotStore::peek(&dir).unwrap().previous, None);
    }

    #[test]
    fn a_pending_update_whose_process_died_rolls_back_on_the_next_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("slots");
        let mut s = SlotStore::open(&dir, true).unwrap();
        s.install_local(&model_file(tmp.path(), "v1", b"one"), "m", 1).unwrap();
        s.prepare_inactive().unwrap();
        fs::write(s.part_path(), b"two").unwrap();
        s.commit_part().unwrap();
        s.switch(Installed { slot: Slot::B, model: "m".into(), version: 2, sha256: "ab".into(), length: 3, target: "t".into() }).unwrap();
        // While the updater holds the lock, others see the old model and leave the state alone.
        let other = SlotStore::open(&dir, false).unwrap();
        assert_eq!(other.state().state, UpdateState::Pending);
        assert_eq!(other.state().serving().unwrap().version, 1);
        assert!(matches!(SlotStore::open(&dir, true), Err(Error::Busy(_))));
        drop(s); // the updater dies: its lock goes with it
        let s = SlotStore::open(&dir, false).unwrap();
        assert_eq!(s.state().state, UpdateState::RolledBack);
        assert_eq!(s.state().active.as_ref().unwrap().version, 1);
        assert_eq!(fs::read(s.serving_path().unwrap()).unwrap(), b"one");
        let f = s.state().has_failed(2, "AB").unwrap();
        assert!(!f.blocks(), "one death is retried: {f:?}");
    }

    #[test]
    fn a_corrupt_state_file_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("state.json"), b"{not json").unwrap();
        let e = SlotStore::open(tmp.path(), false).unwrap_err().to_string();
        assert!(e.contains("state.json") && e.contains("not a slot state"), "{e}");
    }
}
