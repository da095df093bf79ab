//! The publisher's side: a TUF repository of `.jrt` models on disk, ready to
//! be copied to any static file server, object store or CDN.
//!
//! Layout (consistent snapshots, so a server that is mid-copy never serves
//! a mix): `metadata/root.json` (the latest root, what devices are given as
//! their trusted root), `metadata/N.root.json`, `metadata/N.targets.json`,
//! `metadata/N.snapshot.json`, `metadata/timestamp.json`, and
//! `targets/SHA256.NAME`. A publish writes new files first and replaces
//! `timestamp.json` last, by an atomic rename.
//!
//! Keys: one ed25519 key per role, PKCS#8 files `root.pk8`, `targets.pk8`,
//! `snapshot.pk8`, `timestamp.pk8` in the key folder (mode 0600). Publishing
//! needs targets, snapshot and timestamp; the root key is needed only to
//! change the root (key rotation) and belongs offline.

use crate::{block_on, fsx, hex, Error, ModelMeta, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use std::collections::HashMap;
use std::fs;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use tough::editor::signed::SignedRole;
use tough::editor::RepositoryEditor;
use tough::key_source::{KeySource, LocalKeySource};
pub use tough::schema::RoleType;
use tough::schema::{KeyHolder, RoleKeys, Root, Target};
use tough::sign::Sign;
use tough::{ExpirationEnforcement, RepositoryLoader, TargetName};

/// The four top-level roles, in the order their keys are listed.
pub const ROLES: [RoleType; 4] = [RoleType::Root, RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp];

/// How long each role's metadata stays valid, in days. The timestamp is the
/// one re-signed most often (every publish, and by `jetc repo refresh`): a
/// device refuses metadata whose timestamp expired, so it bounds how long an
/// attacker can replay a frozen view of the repository.
#[derive(Debug, Clone, Copy)]
pub struct Expiry {
    pub root_days: i64,
    pub targets_days: i64,
    pub snapshot_days: i64,
    pub timestamp_days: i64,
}

impl Default for Expiry {
    fn default() -> Self {
        Expiry { root_days: 365, targets_days: 90, snapshot_days: 30, timestamp_days: 7 }
    }
}

fn in_days(days: i64) -> jiff::Timestamp {
    let now = jiff::Timestamp::now().as_second();
    jiff::Timestamp::from_second(now + days * 86_400).expect("a timestamp within jiff's range")
}

pub fn key_path(keys: &Path, role: RoleType) -> PathBuf {
    keys.join(format!("{role}.pk8"))
}

fn key_source(keys: &Path, role: RoleType) -> Result<Box<dyn KeySource>> {
    let path = key_path(keys, role);
    if !path.is_file() {
        return Err(Error::Repo(format!("no {role} key at {} (made by jetc repo init)", path.display())));
    }
    Ok(Box::new(LocalKeySource { path }))
}

fn load_key(path: &Path) -> Result<tough::schema::key::Key> {
    let bytes = fs::read(path).map_err(|e| Error::io("reading key", path, e))?;
    let pair = tough::sign::parse_keypair(&bytes)
        .map_err(|e| Error::Repo(format!("{}: not a private key: {}", path.display(), crate::chain(&e))))?;
    Ok(pair.tuf_key())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| Error::io("creating key", path, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io("writing key", path, e))
}

/// What `init` made.
#[derive(Debug)]
pub struct InitReport {
    pub root_json: PathBuf,
    /// Keys generated now (the others existed and were reused).
    pub generated: Vec<PathBuf>,
    pub root_key: PathBuf,
}

/// Creates a repository in `dir` (which must not hold one), with keys from
/// `keys` (generated where missing).
pub fn init(dir: &Path, keys: &Path, expiry: Expiry) -> Result<InitReport> {
    let meta = dir.join("metadata");
    if meta.join("root.json").exists() {
        return Err(Error::Repo(format!("{} already holds a repository (metadata/root.json)", dir.display())));
    }
    fs::create_dir_all(keys).map_err(|e| Error::io("creating key folder", keys, e))?;
    fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let mut generated = Vec::new();
    for role in ROLES {
        let path = key_path(keys, role);
        if !path.exists() {
            let pkcs8 =
                Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| Error::Repo("ed25519 key generation failed".into()))?;
            write_private(&path, pkcs8.as_ref())?;
            generated.push(path);
        }
    }
    let mut root = Root {
        spec_version: "1.0.0".into(),
        consistent_snapshot: true,
        version: NonZeroU64::MIN,
        expires: in_days(expiry.root_days),
        keys: HashMap::new(),
        roles: HashMap::new(),
        _extra: HashMap::new(),
    };
    for role in ROLES {
        let key = load_key(&key_path(keys, role))?;
        let id = key.key_id().map_err(|e| Error::tuf(&e))?;
        root.keys.insert(id.clone(), key);
        root.roles.insert(role, RoleKeys { keyids: vec![id], threshold: NonZeroU64::MIN, _extra: HashMap::new() });
    }
    let staging =
        tempfile::Builder::new().prefix(".jetc-init").tempdir_in(dir).map_err(|e| Error::io("creating staging folder in", dir, e))?;
    block_on(async {
        let holder = KeyHolder::Root(root.clone());
        let signed =
            SignedRole::new(root, &holder, &[key_source(keys, RoleType::Root)?], &SystemRandom::new()).await.map_err(|e| Error::tuf(&e))?;
        signed.write(staging.path(), true).await.map_err(|e| Error::tuf(&e))?;
        let root_path = staging.path().join("1.root.json");
        let mut editor = RepositoryEditor::new(&root_path).await.map_err(|e| Error::tuf(&e))?;
        bump(&mut editor, (0, 0, 0), in_days(expiry.targets_days), expiry)?;
        let repo = editor.sign(&signing_keys(keys)?).await.map_err(|e| signing_error(&e, keys))?;
        repo.write(staging.path()).await.map_err(|e| Error::tuf(&e))
    })?;
    fs::create_dir_all(dir.join("targets")).map_err(|e| Error::io("creating", dir, e))?;
    fs::create_dir_all(&meta).map_err(|e| Error::io("creating", &meta, e))?;
    let root_bytes = fs::read(staging.path().join("1.root.json")).map_err(|e| Error::io("reading", staging.path(), e))?;
    fsx::write_atomic(&meta.join("1.root.json"), &root_bytes).map_err(|e| Error::io("writing", &meta, e))?;
    fsx::write_atomic(&meta.join("root.json"), &root_bytes).map_err(|e| Error::io("writing", &meta, e))?;
    install_metadata(staging.path(), &meta)?;
    Ok(InitReport { root_json: meta.join("root.json"), generated, root_key: key_path(keys, RoleType::Root) })
}

/// Sets the next versions (`old` + 1) and expiries of targets, snapshot and timestamp.
fn bump(editor: &mut RepositoryEditor, old: (u64, u64, u64), targets_expires: jiff::Timestamp, expiry: Expiry) -> Result<()> {
    let next = |v: u64| NonZeroU64::new(v + 1).expect("v + 1 > 0");
    editor.targets_version(next(old.0)).map_err(|e| Error::tuf(&e))?;
    editor.targets_expires(targets_expires).map_err(|e| Error::tuf(&e))?;
    editor.snapshot_version(next(old.1)).snapshot_expires(in_days(expiry.snapshot_days));
    editor.timestamp_version(next(old.2)).timestamp_expires(in_days(expiry.timestamp_days));
    Ok(())
}

/// tough's "Unable to find signing keys", said with what to do about it.
fn signing_error(e: &tough::error::Error, keys: &Path) -> Error {
    let msg = crate::chain(e);
    if msg.contains("signing keys") {
        return Error::Repo(format!(
            "{msg}: the key files in {} are not the keys the repository's root lists for that role (a retired key, or another repository's?)",
            keys.display()
        ));
    }
    Error::Tuf(msg)
}

fn signing_keys(keys: &Path) -> Result<Vec<Box<dyn KeySource>>> {
    [RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp].into_iter().map(|r| key_source(keys, r)).collect()
}

/// Copies signed metadata from `staging` into `meta`: everything but the
/// timestamp first, the timestamp last, each by an atomic replace. Roots
/// are not copied: only init and rotate write one, themselves, first.
fn install_metadata(staging: &Path, meta: &Path) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(staging)
        .map_err(|e| Error::io("reading", staging, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.ends_with(".root.json"))
        .collect();
    names.sort_by_key(|n| (n == "timestamp.json", n.clone()));
    for n in names {
        let bytes = fs::read(staging.join(&n)).map_err(|e| Error::io("reading", staging, e))?;
        let dest = meta.join(&n);
        fsx::write_atomic(&dest, &bytes).map_err(|e| Error::io("writing", &dest, e))?;
    }
    Ok(())
}

/// Loads the repository in `dir` as a client would (signatures checked,
/// expiry not: a publish may re-sign an expired timestamp).
fn load_local(dir: &Path) -> Result<(tough::Repository, PathBuf)> {
    let meta = dir.join("metadata");
    let root_path = meta.join("root.json");
    let root = fs::read(&root_path).map_err(|e| Error::io("reading (is this a repository made by jetc repo init?)", &root_path, e))?;
    let meta_url = url::Url::from_directory_path(fs::canonicalize(&meta).map_err(|e| Error::io("resolving", &meta, e))?)
        .map_err(|_| Error::Repo(format!("{} is not an absolute path", meta.display())))?;
    let targets_dir = dir.join("targets");
    let targets_url = url::Url::from_directory_path(fs::canonicalize(&targets_dir).map_err(|e| Error::io("resolving", &targets_dir, e))?)
        .map_err(|_| Error::Repo(format!("{} is not an absolute path", targets_dir.display())))?;
    let repo = block_on(async {
        RepositoryLoader::new(&root, meta_url, targets_url).expiration_enforcement(ExpirationEnforcement::Unsafe).load().await
    })
    .map_err(|e| Error::tuf(&e))?;
    Ok((repo, root_path))
}

/// One model target of a repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub target: String,
    pub length: u64,
    pub sha256: String,
    #[serde(flatten)]
    pub meta: ModelMeta,
}

/// The model targets of the repository in `dir`, oldest version first.
pub fn list(dir: &Path) -> Result<Vec<Listed>> {
    let (repo, _) = load_local(dir)?;
    Ok(models(&repo))
}

pub(crate) fn models(repo: &tough::Repository) -> Vec<Listed> {
    let mut out: Vec<Listed> = repo
        .all_targets()
        .filter_map(|(name, t)| {
            Some(Listed {
                target: name.raw().to_string(),
                length: t.length,
                sha256: hex(&t.hashes.sha256),
                meta: ModelMeta::from_custom(&t.custom)?,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.meta.model, a.meta.version).cmp(&(&b.meta.model, b.meta.version)));
    out
}

/// What `publish` did.
#[derive(Debug)]
pub struct Published {
    pub target: String,
    pub sha256: String,
    pub length: u64,
    pub targets_version: u64,
    pub timestamp_expires: String,
}

/// Adds `file` as version `meta.version` of `meta.model` and re-signs
/// targets, snapshot and timestamp. Refuses a version that is not newer than
/// every version of that model already published.
pub fn publish(dir: &Path, keys: &Path, file: &Path, meta: &ModelMeta, expiry: Expiry) -> Result<Published> {
    if meta.model.is_empty() || !meta.model.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(Error::Repo(format!("model name {:?}: use letters, digits, '-', '_' and '.'", meta.model)));
    }
    let (repo, root_path) = load_local(dir)?;
    if let Some(newest) = models(&repo).iter().filter(|l| l.meta.model == meta.model).map(|l| l.meta.version).max() {
        if meta.version <= newest {
            return Err(Error::Repo(format!(
                "{} version {} is not newer than the published version {newest}: versions only go up",
                meta.model, meta.version
            )));
        }
    }
    let name = format!("{}-{}.jrt", meta.model, meta.version);
    let old = (repo.targets().signed.version.get(), repo.snapshot().signed.version.get(), repo.timestamp().signed.version.get());
    let staging =
        tempfile::Builder::new().prefix(".jetc-publish").tempdir_in(dir).map_err(|e| Error::io("creating staging folder in", dir, e))?;
    let keys_list = signing_keys(keys)?;
    let target = block_on(async {
        let mut target = Target::from_path(file).await.map_err(|e| Error::tuf(&e))?;
        target.custom.insert(ModelMeta::KEY.into(), serde_json::to_value(meta).expect("meta serializes"));
        let mut editor = RepositoryEditor::from_repo(&root_path, repo).await.map_err(|e| Error::tuf(&e))?;
        let tname = TargetName::new(name.clone()).map_err(|e| Error::tuf(&e))?;
        editor.add_target(tname, target.clone()).map_err(|e| Error::tuf(&e))?;
        bump(&mut editor, old, in_days(expiry.targets_days), expiry)?;
        let signed = editor.sign(&keys_list).await.map_err(|e| signing_error(&e, keys))?;
        signed.write(staging.path()).await.map_err(|e| Error::tuf(&e))?;
        Ok::<_, Error>(target)
    })?;
    let sha256 = hex(&target.hashes.sha256);
    // The target first: metadata that names it must never be served before it.
    let dest = dir.join("targets").join(format!("{sha256}.{name}"));
    let bytes = fs::read(file).map_err(|e| Error::io("reading", file, e))?;
    fsx::write_atomic(&dest, &bytes).map_err(|e| Error::io("writing", &dest, e))?;
    install_metadata(staging.path(), &dir.join("metadata"))?;
    Ok(Published {
        target: name,
        sha256,
        length: target.length,
        targets_version: old.0 + 1,
        timestamp_expires: in_days(expiry.timestamp_days).to_string(),
    })
}

/// Re-signs snapshot and timestamp (new versions, new expiry) without
/// changing the targets: run it from cron so devices never see an expired
/// timestamp between publishes.
pub fn refresh(dir: &Path, keys: &Path, expiry: Expiry) -> Result<u64> {
    let (repo, root_path) = load_local(dir)?;
    let old = (repo.targets().signed.version.get(), repo.snapshot().signed.version.get(), repo.timestamp().signed.version.get());
    let targets_expires = repo.targets().signed.expires;
    let staging =
        tempfile::Builder::new().prefix(".jetc-refresh").tempdir_in(dir).map_err(|e| Error::io("creating staging folder in", dir, e))?;
    let keys_list = signing_keys(keys)?;
    block_on(async {
        let mut editor = RepositoryEditor::from_repo(&root_path, repo).await.map_err(|e| Error::tuf(&e))?;
        bump(&mut editor, old, targets_expires.max(in_days(expiry.timestamp_days)), expiry)?;
        let signed = editor.sign(&keys_list).await.map_err(|e| signing_error(&e, keys))?;
        signed.write(staging.path()).await.map_err(|e| Error::tuf(&e))
    })?;
    install_metadata(staging.path(), &dir.join("metadata"))?;
    Ok(old.2 + 1)
}

/// What `rotate` did.
#[derive(Debug)]
pub struct Rotated {
    pub root_version: u64,
    pub new_key: PathBuf,
    /// Where the retired key was moved.
    pub old_key: PathBuf,
}

/// Replaces `role`'s key with a new one: a new root version lists it, signed
/// by the current root key (and, when the root key itself rotates, by the
/// new one too, so devices can follow the chain), then targets, snapshot and
/// timestamp are re-signed with the keys now listed. The retired key is kept
/// as `ROLE.pk8.retired-VERSION`: destroy it once every device has updated.
pub fn rotate(dir: &Path, keys: &Path, role: RoleType, expiry: Expiry) -> Result<Rotated> {
    let (repo, root_path) = load_local(dir)?;
    let old_root: Root = repo.root().signed.clone();
    let old_key_path = key_path(keys, role);
    let old_key = load_key(&old_key_path)?;
    let old_id = old_key.key_id().map_err(|e| Error::tuf(&e))?;
    let new_pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| Error::Repo("ed25519 key generation failed".into()))?;
    let staged_key = keys.join(format!(".{role}.pk8.new"));
    let _ = fs::remove_file(&staged_key);
    write_private(&staged_key, new_pkcs8.as_ref())?;
    let new_key = load_key(&staged_key)?;
    let new_id = new_key.key_id().map_err(|e| Error::tuf(&e))?;

    let mut root = old_root.clone();
    root.version = NonZeroU64::new(old_root.version.get() + 1).expect("> 0");
    root.expires = in_days(expiry.root_days);
    let role_keys = root.roles.get_mut(&role).ok_or_else(|| Error::Repo(format!("the root lists no {role} role")))?;
    role_keys.keyids.retain(|k| *k != old_id);
    role_keys.keyids.push(new_id.clone());
    if !root.roles.values().any(|r| r.keyids.contains(&old_id)) {
        root.keys.remove(&old_id);
    }
    root.keys.insert(new_id, new_key);

    let staging =
        tempfile::Builder::new().prefix(".jetc-rotate").tempdir_in(dir).map_err(|e| Error::io("creating staging folder in", dir, e))?;
    let root_key_new = if role == RoleType::Root { staged_key.clone() } else { key_path(keys, RoleType::Root) };
    let root_version = root.version.get();
    let old = (repo.targets().signed.version.get(), repo.snapshot().signed.version.get(), repo.timestamp().signed.version.get());
    let mut signing: Vec<Box<dyn KeySource>> = Vec::new();
    for r in [RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp] {
        signing.push(if r == role { Box::new(LocalKeySource { path: staged_key.clone() }) } else { key_source(keys, r)? });
    }
    let rng = SystemRandom::new();
    block_on(async {
        // Signed by the root key the new root lists, and by the one the current root lists.
        let by_new = SignedRole::new(
            root.clone(),
            &KeyHolder::Root(root.clone()),
            &[Box::new(LocalKeySource { path: root_key_new }) as Box<dyn KeySource>],
            &rng,
        )
        .await
        .map_err(|e| Error::tuf(&e))?;
        let by_old = SignedRole::new(root.clone(), &KeyHolder::Root(old_root.clone()), &[key_source(keys, RoleType::Root)?], &rng)
            .await
            .map_err(|e| Error::tuf(&e))?;
        let signed_root = by_new.add_old_signatures(by_old.signed().signatures.clone()).map_err(|e| Error::tuf(&e))?;
        signed_root.write(staging.path(), true).await.map_err(|e| Error::tuf(&e))?;
        let new_root_path = staging.path().join(format!("{root_version}.root.json"));
        let mut editor = RepositoryEditor::from_repo(&new_root_path, repo).await.map_err(|e| Error::tuf(&e))?;
        bump(&mut editor, old, in_days(expiry.targets_days), expiry)?;
        let signed = editor.sign(&signing).await.map_err(|e| signing_error(&e, keys))?;
        signed.write(staging.path()).await.map_err(|e| Error::tuf(&e))
    })?;
    // The new root first (devices walk N+1.root.json), the timestamp last.
    let meta = dir.join("metadata");
    let root_name = format!("{root_version}.root.json");
    let root_bytes = fs::read(staging.path().join(&root_name)).map_err(|e| Error::io("reading", staging.path(), e))?;
    fsx::write_atomic(&meta.join(&root_name), &root_bytes).map_err(|e| Error::io("writing", &meta, e))?;
    fsx::write_atomic(&root_path, &root_bytes).map_err(|e| Error::io("writing", &root_path, e))?;
    install_metadata(staging.path(), &meta)?;
    let retired = keys.join(format!("{role}.pk8.retired-{}", old_root.version));
    fs::rename(&old_key_path, &retired).map_err(|e| Error::io("retiring", &old_key_path, e))?;
    fs::rename(&staged_key, &old_key_path).map_err(|e| Error::io("installing the new key as", &old_key_path, e))?;
    fsx::sync_dir(keys).map_err(|e| Error::io("syncing", keys, e))?;
    Ok(Rotated { root_version, new_key: old_key_path, old_key: retired })
}
