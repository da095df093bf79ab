//! Over-the-air model updates for jetrt, on The Update Framework (TUF).
//!
//! - [`repo`]: the publisher's side. `jetc repo init` makes a TUF repository
//!   with an ed25519 key per role; `jetc publish` adds a `.jrt` as a target
//!   whose custom metadata names the model, its integer version, the boards
//!   it is for and the oldest runtime that reads it, and re-signs targets,
//!   snapshot and timestamp.
//! - [`client`]: the TUF client workflow (tough), plus target downloads that
//!   resume with HTTP Range and check length and sha256 while streaming.
//! - [`slots`]: the device's A/B model slots, changed only by atomic renames.
//! - [`agent`]: one update, step by step: refresh, pick, download, install,
//!   switch, health check (the file's golden vectors), confirm or roll back.
//!
//! tough is async; each public call here drives it on its own current-thread
//! tokio runtime, so callers stay synchronous.

pub mod agent;
pub mod client;
mod fsx;
pub mod repo;
pub mod slots;
mod transport;

pub use transport::Http;

use std::path::{Path, PathBuf};

/// What can go wrong in an update, a publish or a TUF refresh.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("no space left while {what} {path} (disk full or file size limit): nothing was replaced; free space and run the update again")]
    DiskFull { what: &'static str, path: PathBuf },
    #[error("slot store {0} is locked by another update (jetrt update); try again when it ends")]
    Busy(PathBuf),
    #[error("slot state: {0}")]
    State(String),
    /// The TUF client workflow refused the repository's metadata.
    #[error("TUF: {0}")]
    Tuf(String),
    #[error("download {url}: {reason}")]
    Download { url: String, reason: String },
    #[error("repository: {0}")]
    Repo(String),
    /// An update was refused before it touched the slots.
    #[error("refused: {0}")]
    Refused(String),
    #[error("health check of version {version} failed: {reason}")]
    Health { version: u64, reason: String },
}

impl Error {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> Error {
        if fsx::is_disk_full(&source) {
            Error::DiskFull { what, path: path.to_path_buf() }
        } else {
            Error::Io { what, path: path.to_path_buf(), source }
        }
    }

    /// tough's errors with their whole cause chain (its top-level messages
    /// alone often say only "failed to load").
    pub(crate) fn tuf(e: &dyn std::error::Error) -> Error {
        Error::Tuf(chain(e))
    }
}

/// An error and its sources, joined by ": ".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs one of tough's futures to completion.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a current-thread tokio runtime").block_on(f)
}

/// The custom metadata of a model target (`"custom": {"jetrt": {...}}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    pub model: String,
    pub version: u64,
    /// Boards it is for; empty: any.
    #[serde(default)]
    pub boards: Vec<String>,
    /// Oldest jetrt that runs it ("0.1.0").
    pub min_runtime: String,
}

impl ModelMeta {
    pub const KEY: &'static str = "jetrt";

    pub fn from_custom(custom: &std::collections::HashMap<String, serde_json::Value>) -> Option<ModelMeta> {
        serde_json::from_value(custom.get(Self::KEY)?.clone()).ok()
    }

    pub fn fits_board(&self, board: &str) -> bool {
        self.boards.is_empty() || self.boards.iter().any(|b| b.eq_ignore_ascii_case(board))
    }
}

/// Compares dotted numeric versions ("0.10.1" > "0.9"); non-numeric parts count as 0.
pub fn version_le(a: &str, b: &str) -> bool {
    let parse = |s: &str| s.split(['.', '-', '+']).take(3).map(|p| p.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    let (mut x, mut y) = (parse(a), parse(b));
    x.resize(3, 0);
    y.resize(3, 0);
    x <= y
}
