//! The device's update agent: one update, every step logged.
//!
//! 1. open the slots (a `pending` update whose process died rolls back here);
//! 2. refresh the TUF metadata;
//! 3. pick the newest version of the model for this board and runtime that
//!    has not failed here before; refuse one not newer than what runs;
//! 4. download it into the inactive slot's part file (resumed, length and
//!    sha256 checked while streaming), fsync, rename into the slot, fsync
//!    the folder;
//! 5. switch (`pending`);
//! 6. health check: load it and run its golden vectors;
//! 7. confirm, or roll back.
//!
//! For fault-injection tests, `JETRT_UPDATE_PAUSE_AT=STEP` makes the agent
//! stop at STEP (`download`: after the first chunk is on disk; `written`:
//! after the whole file is written, before its fsync; `switched`: after the
//! switch, before the health check; `health`: during the health check) and
//! wait to be killed.

use crate::client::Client;
use crate::slots::{Installed, SlotStore};
use crate::transport::Checkpoint;
use crate::{Error, ModelMeta, Result};
use std::path::{Path, PathBuf};

/// What the agent needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Repository base URL (`URL/metadata/`, `URL/targets/`).
    pub repo_url: String,
    pub slot_dir: PathBuf,
    /// The repository's root.json, given to the device out of band.
    pub trusted_root: Option<PathBuf>,
    /// Model name; default: the installed one's, or the repository's only model.
    pub model: Option<String>,
    /// This board's name, matched against a target's boards.
    pub board: String,
    /// Where the health check runs.
    pub session: jetrt::SessionOptions,
    /// Before the health check loads a new version, check that it fits the
    /// board whose files are under this root (`/` on the board; see
    /// `jetrt::budget::check_fits`); `None` skips the check.
    pub memory_check: Option<PathBuf>,
}

/// How an update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Installed and confirmed.
    Installed { version: u64, previous: Option<u64> },
    /// Nothing newer for this board.
    UpToDate { version: Option<u64> },
    /// Installed, failed its health check, rolled back.
    RolledBack { version: u64, reason: String },
}

impl Outcome {
    /// Whether a one-shot update should exit 0.
    pub fn is_success(&self) -> bool {
        !matches!(self, Outcome::RolledBack { .. })
    }
}

struct Pause(Option<String>);

impl Checkpoint for Pause {
    fn at(&self, step: &str) {
        if self.0.as_deref() == Some(step) {
            log::warn!("paused at step {step} (JETRT_UPDATE_PAUSE_AT); waiting to be killed");
            eprintln!("jetrt update: paused at step {step}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}

fn pause() -> Pause {
    Pause(std::env::var("JETRT_UPDATE_PAUSE_AT").ok().filter(|s| !s.is_empty()))
}

/// The metadata folder inside a slot folder.
pub fn metadata_dir(slot_dir: &Path) -> PathBuf {
    slot_dir.join("tuf")
}

/// Runs one update.
pub fn update_once(cfg: &Config) -> Result<Outcome> {
    let hook = pause();
    let mut store = SlotStore::open(&cfg.slot_dir, true)?;
    let st = store.state().clone();
    match st.serving() {
        Some(s) => log::info!(
            "slots {}: running {} version {} (slot {}), state {}",
            cfg.slot_dir.display(),
            s.model,
            s.version,
            s.slot.name(),
            st.state.as_str()
        ),
        None => log::info!("slots {}: no model installed yet", cfg.slot_dir.display()),
    }

    let client = Client::for_repo(&cfg.repo_url, &metadata_dir(&cfg.slot_dir), cfg.trusted_root.clone())?;
    log::info!("refreshing TUF metadata from {}", client.metadata_url);
    let repo = client.refresh()?;
    log::info!(
        "metadata verified: root v{}, timestamp v{}, snapshot v{}, targets v{}",
        repo.root().signed.version,
        repo.timestamp().signed.version,
        repo.snapshot().signed.version,
        repo.targets().signed.version
    );

    let models = crate::repo::models(&repo);
    let name = match (&cfg.model, st.serving()) {
        (Some(m), _) => m.clone(),
        (None, Some(s)) => s.model.clone(),
        (None, None) => {
            let mut names: Vec<&str> = models.iter().map(|l| l.meta.model.as_str()).collect();
            names.dedup();
            match names.as_slice() {
                [one] => one.to_string(),
                [] => return Ok(Outcome::UpToDate { version: None }),
                many => return Err(Error::Refused(format!("the repository has several models ({many:?}): name one with --model"))),
            }
        }
    };
    let installed = st.installed_version();
    let mut best: Option<&crate::repo::Listed> = None;
    for l in models.iter().filter(|l| l.meta.model == name) {
        let m: &ModelMeta = &l.meta;
        if !m.fits_board(&cfg.board) {
            log::info!("{} version {}: for boards {:?}, not {} (skipped)", name, m.version, m.boards, cfg.board);
        } else if !crate::version_le(&m.min_runtime, jetrt::VERSION) {
            log::warn!("{} version {}: needs jetrt {} or newer, this is {} (skipped)", name, m.version, m.min_runtime, jetrt::VERSION);
        } else if let Some(f) = st.has_failed(m.version, &l.sha256).filter(|f| f.blocks()) {
            log::warn!("{} version {}: failed here before ({}); not installing it again", name, m.version, f.reason);
        } else if best.is_none_or(|b| m.version > b.meta.version) {
            best = Some(l);
        }
    }
    let Some(pick) = best else {
        log::info!("no version of {name} for board {} in the repository", cfg.board);
        return Ok(Outcome::UpToDate { version: installed });
    };
    if let Some(v) = installed {
        if pick.meta.version <= v {
            log::info!("{name} version {v} is installed; the newest for board {} is {}: nothing to do", cfg.board, pick.meta.version);
            return Ok(Outcome::UpToDate { version: installed });
        }
    }
    let version = pick.meta.version;
    log::info!("installing {name} version {version} ({}, {} bytes, sha256 {})", pick.target, pick.length, pick.sha256);

    let found = Client::find(&repo, &pick.target)?;
    let url = client.target_url(&repo, &found, None)?;
    let part = store.part_path();
    // A part file from another target is useless: start over.
    let part_for = part.with_extension("part.sha256");
    if std::fs::read_to_string(&part_for).ok().as_deref() != Some(pick.sha256.as_str()) {
        let _ = std::fs::remove_file(&part);
        crate::fsx::write_atomic(&part_for, pick.sha256.as_bytes()).map_err(|e| Error::io("writing", &part_for, e))?;
    }
    log::info!("downloading {url} into {}", part.display());
    client.download(&url, &found, &part, &hook)?;
    // Only now is the inactive slot overwritten: the fallback it held is forgotten first.
    store.prepare_inactive()?;
    let dest = store.commit_part()?;
    let _ = std::fs::remove_file(&part_for);
    log::info!("written and synced: {}", dest.display());

    let slot = store.state().inactive_slot();
    let previous = store.state().active.as_ref().map(|a| a.version);
    store.switch(Installed {
        slot,
        model: name.clone(),
        version,
        sha256: pick.sha256.clone(),
        length: pick.length,
        target: pick.target.clone(),
    })?;
    log::info!("switched: slot {} is active, pending its health check", slot.name());
    hook.at("switched");

    log::info!("health check: loading {} and running its golden vectors", dest.display());
    match check(&dest, cfg.session.clone(), cfg.memory_check.as_deref(), &hook) {
        Ok(n) => {
            store.confirm()?;
            log::info!("health check passed ({n} golden vector(s)); {name} version {version} confirmed");
            Ok(Outcome::Installed { version, previous })
        }
        Err(reason) => {
            log::error!("health check of {name} version {version} failed: {reason}; rolling back");
            store.roll_back(&format!("health check: {reason}"), true)?;
            match store.state().active.as_ref() {
                Some(a) => log::warn!("rolled back to {} version {} (slot {})", a.model, a.version, a.slot.name()),
                None => log::warn!("rolled back: no model installed"),
            }
            Ok(Outcome::RolledBack { version, reason })
        }
    }
}

/// Loads `file` and runs its golden vectors; the number that passed, or why
/// not. With `memory_root`, first checks that it fits the board whose files
/// are there.
pub fn health_check(file: &Path, options: jetrt::SessionOptions, memory_root: Option<&Path>) -> std::result::Result<usize, String> {
    check(file, options, memory_root, &crate::client::NoHook)
}

fn check(
    file: &Path,
    options: jetrt::SessionOptions,
    memory_root: Option<&Path>,
    hook: &dyn Checkpoint,
) -> std::result::Result<usize, String> {
    let model = jetrt::Model::open(file).map_err(|e| format!("it does not load: {e}"))?;
    let vectors = model.info().golden_vectors;
    if vectors == 0 {
        return Err("the file has no golden vectors to check it with (convert with jetc convert --golden N)".into());
    }
    if let Some(root) = memory_root {
        jetrt::budget::check_fits(&model, options.backend, options.threads, 1, root).map_err(|e| format!("it does not fit: {e}"))?;
    }
    let mut session = model.session(options).map_err(|e| format!("no session: {e}"))?;
    hook.at("health");
    let checks = jetrt::golden::check(&mut session).map_err(|e| format!("running it failed: {e}"))?;
    if let Some(bad) = checks.iter().find(|c| !c.pass) {
        return Err(format!(
            "golden vector {} output {:?}: max abs diff {:.3e}, cosine {:.6} (needs >= {})",
            bad.vector,
            bad.output,
            bad.max_abs,
            bad.cosine,
            jetrt::golden::MIN_COSINE
        ));
    }
    Ok(vectors)
}

/// What `jetrt update --status` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub active_slot: Option<String>,
    pub active_version: Option<u64>,
    pub previous_version: Option<u64>,
    pub state: String,
    pub model: Option<String>,
    /// The file that runs now.
    pub serving: Option<PathBuf>,
    pub failed: Vec<crate::slots::Failed>,
    /// The trusted metadata's versions, when there is any.
    pub timestamp_version: Option<u64>,
}

/// Reads the slots (rolling back a dead pending update, as any start does).
pub fn status(slot_dir: &Path) -> Result<Status> {
    if !slot_dir.is_dir() {
        return Err(Error::State(format!("{} does not exist (no update has run here)", slot_dir.display())));
    }
    let store = SlotStore::open(slot_dir, false)?;
    let st = store.state();
    let timestamp_version = std::fs::read(metadata_dir(slot_dir).join("timestamp.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.pointer("/signed/version")?.as_u64());
    Ok(Status {
        active_slot: st.active.as_ref().map(|a| a.slot.name().to_string()),
        active_version: st.active.as_ref().map(|a| a.version),
        previous_version: st.previous.as_ref().map(|a| a.version),
        state: st.state.as_str().to_string(),
        model: st.serving().map(|s| s.model.clone()),
        serving: store.serving_path(),
        failed: st.failed.clone(),
        timestamp_version,
    })
}
