//! The TUF client: tough's client workflow (root chain, timestamp, snapshot,
//! targets; signatures, thresholds, versions, expiry, hashes and lengths of
//! metadata), with the trusted metadata kept in a folder on the device, and
//! target downloads of our own (resumed, checked while streaming).
//!
//! Clock policy: tough refuses to run when the system clock is earlier than
//! the latest time it verified metadata at (a board without an RTC that
//! booted at 1970 would otherwise accept anything as unexpired, or reject
//! everything). We check first and say so plainly: set the clock (NTP,
//! `timedatectl`), and the update runs; the installed model keeps running
//! meanwhile.

use crate::transport::{self, Checkpoint, Http, ToughTransport};
use crate::{Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use tough::{Repository, RepositoryLoader, TargetName};
use url::Url;

/// Where metadata and targets are and where the trusted metadata lives.
#[derive(Debug, Clone)]
pub struct Client {
    pub metadata_dir: PathBuf,
    pub metadata_url: Url,
    pub targets_url: Url,
    /// The root to start from when `metadata_dir` holds none yet.
    pub trusted_root: Option<PathBuf>,
    pub http: Http,
}

/// A URL that ends in '/', so that joining appends.
pub fn dir_url(s: &str) -> Result<Url> {
    let mut s = s.to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    Url::parse(&s).map_err(|e| Error::Refused(format!("{s:?} is not a URL: {e}")))
}

/// A target found in the signed metadata.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub target: tough::schema::Target,
}

impl Client {
    /// A client for a repository laid out as `jetc repo init` does: `URL/metadata/`, `URL/targets/`.
    pub fn for_repo(repo_url: &str, metadata_dir: &Path, trusted_root: Option<PathBuf>) -> Result<Client> {
        let base = dir_url(repo_url)?;
        let join = |p: &str| base.join(p).map_err(|e| Error::Refused(format!("{base}{p}: {e}")));
        Ok(Client {
            metadata_dir: metadata_dir.to_path_buf(),
            metadata_url: join("metadata/")?,
            targets_url: join("targets/")?,
            trusted_root,
            http: Http::new(),
        })
    }

    /// `init TRUSTED_ROOT`: starts trusting `root` (a copy goes to `metadata_dir/root.json`).
    pub fn init(metadata_dir: &Path, root: &Path) -> Result<()> {
        let bytes = fs::read(root).map_err(|e| Error::io("reading the trusted root", root, e))?;
        serde_json::from_slice::<tough::schema::Signed<tough::schema::Root>>(&bytes)
            .map_err(|e| Error::Tuf(format!("{} is not TUF root metadata: {e}", root.display())))?;
        fs::create_dir_all(metadata_dir).map_err(|e| Error::io("creating", metadata_dir, e))?;
        crate::fsx::write_atomic(&metadata_dir.join("root.json"), &bytes).map_err(|e| Error::io("writing", metadata_dir, e))
    }

    fn root_bytes(&self) -> Result<Vec<u8>> {
        let here = self.metadata_dir.join("root.json");
        match fs::read(&here) {
            Ok(b) if serde_json::from_slice::<serde_json::Value>(&b).is_ok() => return Ok(b),
            Ok(_) => log::warn!("{} is unreadable; starting again from the trusted root", here.display()),
            Err(_) => {}
        }
        let Some(root) = &self.trusted_root else {
            return Err(Error::Tuf(format!(
                "no trusted root in {} (run init with the repository's root.json)",
                self.metadata_dir.display()
            )));
        };
        fs::read(root).map_err(|e| Error::io("reading the trusted root", root, e))
    }

    fn check_clock(&self) -> Result<()> {
        let path = self.metadata_dir.join("latest_known_time.json");
        let Ok(bytes) = fs::read(&path) else { return Ok(()) };
        let Ok(known) = serde_json::from_slice::<jiff::Timestamp>(&bytes) else { return Ok(()) };
        let now = jiff::Timestamp::now();
        if now < known {
            return Err(Error::Tuf(format!(
                "the system clock ({now}) is earlier than the last time this device verified metadata ({known}): \
                 refusing to judge expiry by a clock that stepped back; set the clock (NTP) and run again"
            )));
        }
        Ok(())
    }

    /// Runs the TUF client workflow and returns the verified repository.
    pub fn refresh(&self) -> Result<Repository> {
        fs::create_dir_all(&self.metadata_dir).map_err(|e| Error::io("creating", &self.metadata_dir, e))?;
        self.check_clock()?;
        let root = self.root_bytes()?;
        let transport = ToughTransport { http: self.http.clone(), datastore: Some(self.metadata_dir.clone()) };
        crate::block_on(async {
            RepositoryLoader::new(&root, self.metadata_url.clone(), self.targets_url.clone())
                .transport(transport)
                .datastore(self.metadata_dir.clone())
                .load()
                .await
        })
        .map_err(|e| Error::tuf(&e))
    }

    /// Looks `name` up in the verified metadata (top-level and delegated targets).
    pub fn find(repo: &Repository, name: &str) -> Result<Found> {
        let tname = TargetName::new(name).map_err(|e| Error::tuf(&e))?;
        let (_, target) = repo
            .all_targets()
            .find(|(n, _)| **n == tname)
            .ok_or_else(|| Error::Tuf(format!("no target named {name:?} in the signed metadata")))?;
        Ok(Found { name: name.to_string(), target: target.clone() })
    }

    /// The URL of a target: with consistent snapshots, the sha256-prefixed
    /// name in the target's own folder (`dir/HASH.file`).
    pub fn target_url(&self, repo: &Repository, found: &Found, base: Option<&Url>) -> Result<Url> {
        let base = base.unwrap_or(&self.targets_url);
        let (dir, file) = found.name.rsplit_once('/').map_or(("", found.name.as_str()), |(d, f)| (d, f));
        let file = if repo.root().signed.consistent_snapshot {
            format!("{}.{file}", crate::hex(&found.target.hashes.sha256))
        } else {
            file.to_string()
        };
        let enc = |s: &str| percent_encode(s);
        let path =
            if dir.is_empty() { enc(&file) } else { format!("{}/{}", dir.split('/').map(enc).collect::<Vec<_>>().join("/"), enc(&file)) };
        base.join(&path).map_err(|e| Error::Refused(format!("{base}{path}: {e}")))
    }

    /// Downloads a verified target into `part` (resuming), checking length and sha256.
    pub(crate) fn download(&self, url: &Url, found: &Found, part: &Path, hook: &dyn Checkpoint) -> Result<()> {
        if url.scheme() == "file" {
            let src = url.to_file_path().map_err(|_| Error::Refused(format!("{url}: not a local path")))?;
            let bytes = fs::read(&src).map_err(|e| Error::io("reading", &src, e))?;
            if bytes.len() as u64 != found.target.length || sha256(&bytes) != found.target.hashes.sha256.as_ref() {
                return Err(Error::Download { url: url.to_string(), reason: "length or sha256 does not match the signed metadata".into() });
            }
            crate::fsx::write_atomic(part, &bytes).map_err(|e| Error::io("writing", part, e))?;
            return Ok(());
        }
        transport::download(&self.http, url.as_str(), part, found.target.length, &found.target.hashes.sha256, hook)
    }
}

fn sha256(b: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref().to_vec()
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters stay).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// No checkpoints (downloads outside the agent).
pub(crate) struct NoHook;
impl Checkpoint for NoHook {
    fn at(&self, _: &str) {}
}

/// The `download` step of the conformance protocol: refresh, find `name`,
/// fetch it from `base` into `target_dir` (file name: the target name,
/// percent-encoded), verified.
pub fn download_target(client: &Client, name: &str, base: &Url, target_dir: &Path) -> Result<PathBuf> {
    let repo = client.refresh()?;
    let found = Client::find(&repo, name)?;
    let url = client.target_url(&repo, &found, Some(base))?;
    fs::create_dir_all(target_dir).map_err(|e| Error::io("creating", target_dir, e))?;
    let dest = target_dir.join(percent_encode(name));
    if let Ok(have) = fs::read(&dest) {
        if have.len() as u64 == found.target.length && sha256(&have) == found.target.hashes.sha256.as_ref() {
            log::info!("{} is already downloaded and matches the signed metadata", dest.display());
            return Ok(dest);
        }
    }
    let part = target_dir.join(format!(".{}.part", percent_encode(name)));
    client.download(&url, &found, &part, &NoHook)?;
    fs::rename(&part, &dest).map_err(|e| Error::io("moving into place", &dest, e))?;
    Ok(dest)
}
