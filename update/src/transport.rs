//! HTTP(S) for the TUF client: tough's [`tough::Transport`] over ureq for
//! metadata, and a resumable target download of our own (tough's
//! `read_target` neither resumes nor builds consistent-snapshot URLs right
//! for targets in subfolders).

use crate::{Error, Result};
use aws_lc_rs::digest::{Context, SHA256};
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tough::{FilesystemTransport, Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

/// Largest metadata file fetched at all (tough applies its tighter per-role limits on top).
const METADATA_CAP: u64 = 64 << 20;

/// A blocking HTTP(S) client.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a fetch failed: not there, or anything else.
#[derive(Debug)]
pub(crate) struct FetchError {
    pub not_found: bool,
    pub message: String,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for FetchError {}

impl Http {
    pub fn new() -> Http {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls =
            ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls).unversioned_rustls_crypto_provider(provider).build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .tls_config(tls)
            .build();
        Http { agent: config.into() }
    }

    /// GETs a whole body of at most `limit` bytes.
    pub(crate) fn get(&self, url: &str, limit: u64) -> std::result::Result<Vec<u8>, FetchError> {
        let other = |message: String| FetchError { not_found: false, message };
        let resp = self.agent.get(url).call().map_err(|e| other(e.to_string()))?;
        let status = resp.status().as_u16();
        if status == 404 || status == 403 {
            return Err(FetchError { not_found: true, message: format!("HTTP {status}") });
        }
        if status != 200 {
            return Err(other(format!("HTTP {status}")));
        }
        resp.into_body().with_config().limit(limit).read_to_vec().map_err(|e| other(e.to_string()))
    }
}

/// tough's transport: `file://` by tough's own, `http(s)://` by [`Http`].
/// A timestamp whose content changed under the version the device already
/// trusts is not taken: the trusted one is handed to tough instead, as the
/// reference client (python-tuf) keeps its trusted timestamp (tough alone
/// would take the new content: a mix-and-match hole).
#[derive(Debug, Clone)]
pub(crate) struct ToughTransport {
    pub http: Http,
    /// Where tough keeps the trusted metadata (to compare the timestamp with).
    pub datastore: Option<std::path::PathBuf>,
}

fn same_version_changed(old: &[u8], new: &[u8]) -> Option<u64> {
    let old: serde_json::Value = serde_json::from_slice(old).ok()?;
    let new: serde_json::Value = serde_json::from_slice(new).ok()?;
    let v = old.pointer("/signed/version")?.as_u64()?;
    (new.pointer("/signed/version")?.as_u64()? == v && old.get("signed") != new.get("signed")).then_some(v)
}

#[async_trait::async_trait]
impl Transport for ToughTransport {
    async fn fetch(&self, url: Url) -> std::result::Result<TransportStream, TransportError> {
        let bytes = match url.scheme() {
            "file" => return FilesystemTransport.fetch(url).await,
            // Blocking inside the current-thread runtime is fine: tough fetches one file at a time here.
            "http" | "https" => self.http.get(url.as_str(), METADATA_CAP).map_err(|e| {
                let kind = if e.not_found { TransportErrorKind::FileNotFound } else { TransportErrorKind::Other };
                TransportError::new_with_cause(kind, url.as_str(), e)
            })?,
            _ => return Err(TransportError::new(TransportErrorKind::UnsupportedUrlScheme, url.as_str())),
        };
        let mut bytes = bytes;
        if url.path().ends_with("/timestamp.json") {
            if let Some(old) = self.datastore.as_ref().and_then(|d| fs::read(d.join("timestamp.json")).ok()) {
                if let Some(v) = same_version_changed(&old, &bytes) {
                    log::warn!("{url}: timestamp version {v} changed content without a new version; keeping the trusted one");
                    bytes = old;
                }
            }
        }
        Ok(Box::pin(futures::stream::once(async move { Ok(bytes::Bytes::from(bytes)) })))
    }
}

/// Hooks the agent's fault-injection points into a download.
pub(crate) trait Checkpoint {
    fn at(&self, step: &str);
}

/// Downloads `url` into `part`, resuming from what `part` already holds
/// (HTTP Range), checking the length and sha256 the signed metadata gave
/// while the bytes stream in. On success `part` is complete and fsynced.
/// A short read keeps `part` for the next try; a body too long or a wrong
/// hash deletes it.
pub(crate) fn download(http: &Http, url: &str, part: &Path, length: u64, sha256: &[u8], hook: &dyn Checkpoint) -> Result<()> {
    let err = |reason: String| Error::Download { url: url.to_string(), reason };
    let io = |what: &'static str| move |e: std::io::Error| Error::io(what, part, e);
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(part).map_err(io("opening"))?;
    let mut have = file.metadata().map_err(io("reading"))?.len();
    if have > length {
        file.set_len(0).map_err(io("truncating"))?;
        have = 0;
    }
    // Hash what an earlier try left.
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 << 10];
    file.seek(SeekFrom::Start(0)).map_err(io("reading"))?;
    let mut left = have;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want]).map_err(io("reading"))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        left -= n as u64;
    }
    if have < length {
        let mut req = http.agent.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
            log::info!("resuming the download at byte {have} of {length}");
        }
        let resp = req.call().map_err(|e| err(e.to_string()))?;
        let status = resp.status().as_u16();
        match status {
            206 if have > 0 => {}
            200 => {
                if have > 0 {
                    log::info!("the server ignored the Range request: downloading from the start");
                    have = 0;
                    ctx = Context::new(&SHA256);
                    file.set_len(0).map_err(io("truncating"))?;
                }
            }
            416 => {
                file.set_len(0).map_err(io("truncating"))?;
                return Err(err("HTTP 416 (range not satisfiable): the partial download was discarded; the next try starts over".into()));
            }
            _ => return Err(err(format!("HTTP {status}"))),
        }
        file.seek(SeekFrom::Start(have)).map_err(io("seeking"))?;
        let mut reader = resp.into_body().into_reader();
        let mut first = true;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = file.sync_all();
                    return Err(err(format!("connection broke after {have} of {length} bytes ({e}); the next try resumes there")));
                }
            };
            if have + n as u64 > length {
                drop(file);
                let _ = fs::remove_file(part);
                return Err(err(format!("the server sent more than the {length} bytes the signed metadata gives (refused)")));
            }
            file.write_all(&buf[..n]).map_err(|e| {
                let e = Error::io("writing", part, e);
                if matches!(e, Error::DiskFull { .. }) {
                    let _ = fs::remove_file(part);
                }
                e
            })?;
            ctx.update(&buf[..n]);
            have += n as u64;
            if first {
                file.flush().map_err(io("writing"))?;
                hook.at("download");
                first = false;
            }
        }
    }
    if have != length {
        file.sync_all().map_err(io("syncing"))?;
        return Err(err(format!("the download ended after {have} of {length} bytes (truncated); the next try resumes there")));
    }
    let got = ctx.finish();
    if got.as_ref() != sha256 {
        drop(file);
        let _ = fs::remove_file(part);
        return Err(err(format!(
            "sha256 {} does not match the signed metadata's {} (tampered or corrupt; discarded)",
            crate::hex(got.as_ref()),
            crate::hex(sha256)
        )));
    }
    hook.at("written");
    file.sync_all().map_err(io("syncing"))?;
    Ok(())
}
