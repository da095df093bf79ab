//! Over-the-air updates end to end: a TUF repository made by `jetc repo
//! init` and `jetc publish`, served over real HTTP on loopback, and the
//! device agent `jetrt update` run as a child process: installs, refusals,
//! and SIGKILL at every step of an update.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::StaticServer;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn jetc(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_jetc")).args(args).output().expect("jetc runs");
    assert!(o.status.success(), "jetc {args:?}: {}", text(&o));
    o
}

/// A repository, its keys, a server for it, a device's slot folder, and
/// four versions of the digits model (different bytes: different golden
/// vector counts).
struct Fleet {
    dir: tempfile::TempDir,
    server: StaticServer,
    models: Vec<PathBuf>,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let onnx = root().join("examples/digits/model.onnx");
        let models: Vec<PathBuf> = (1..=4)
            .map(|v| {
                let out = dir.path().join(format!("digits-v{v}.jrt"));
                let g = v.to_string();
                jetc(&["convert", onnx.to_str().unwrap(), "-o", out.to_str().unwrap(), "--input-shape", "image=1,1,8,8", "--golden", &g]);
                out
            })
            .collect();
        let repo = dir.path().join("repo");
        jetc(&["repo", "init", repo.to_str().unwrap(), "--keys", dir.path().join("keys").to_str().unwrap()]);
        let server = StaticServer::start(&repo);
        Fleet { dir, server, models }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn s(&self, rel: &str) -> String {
        self.p(rel).display().to_string()
    }

    fn publish(&self, file: &Path, version: u64, extra: &[&str]) {
        let v = version.to_string();
        let mut args: Vec<String> = ["publish", file.to_str().unwrap(), "--repo", &self.s("repo")].map(String::from).to_vec();
        args.extend(["--keys".into(), self.s("keys"), "--name".into(), "digits".into(), "--version".into(), v]);
        args.extend(extra.iter().map(|s| s.to_string()));
        jetc(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    fn update_cmd(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jetrt"));
        c.args([
            "update",
            "--repo-url",
            &self.server.url(),
            "--slot-dir",
            &self.s("slots"),
            "--trusted-root",
            &self.s("repo/metadata/root.json"),
        ]);
        c.args(["--device", "cpu", "--threads", "1"]).args(extra).env("RUST_LOG", "info");
        c
    }

    fn update(&self, extra: &[&str]) -> Output {
        self.update_cmd(extra).output().expect("jetrt update runs")
    }

    fn status(&self) -> Value {
        let o = Command::new(env!("CARGO_BIN_EXE_jetrt"))
            .args(["update", "--status", "--json", "--slot-dir", &self.s("slots")])
            .output()
            .unwrap();
        assert!(o.status.success(), "status: {}", text(&o));
        serde_json::from_slice(&o.stdout).expect("status prints JSON")
    }

    /// The running model is whole, loads and passes its golden vectors, and
    /// is byte for byte one of the published versions; returns its version.
    fn serving(&self) -> u64 {
        let st = self.status();
        let path = st["serving"].as_str().unwrap_or_else(|| panic!("no model is running: {st}"));
        let version = if st["state"] == "pending" { st["previous_version"].as_u64() } else { st["active_version"].as_u64() }.unwrap();
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes, std::fs::read(&self.models[version as usize - 1]).unwrap(), "slot file is not exactly version {version}: {st}");
        let o = Command::new(env!("CARGO_BIN_EXE_jetrt")).args(["verify", path, "--device", "cpu"]).output().unwrap();
        assert!(o.status.success(), "the running model fails verify: {}", text(&o));
        version
    }
}

fn assert_ok(o: &Output, needle: &str) {
    assert!(o.status.success(), "jetrt update failed: {}", text(o));
    assert!(text(o).contains(needle), "no {needle:?} in: {}", text(o));
}

fn assert_refused(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "expected a refusal (exit 1): {}", text(o));
    let t = text(o);
    assert!(t.contains(needle), "the log does not say {needle:?}: {t}");
}

#[test]
fn installs_updates_and_stays_put() {
    let f = Fleet::new();
    let o = f.update(&[]);
    assert_ok(&o, "up to date");
    assert_eq!(f.status()["state"], "empty");
    f.publish(&f.models[0], 1, &[]);
    let o = f.update(&[]);
    assert_ok(&o, "installed and confirmed version 1");
    for step in ["refreshing TUF metadata", "metadata verified", "downloading", "written and synced", "switched", "health check passed"] {
        assert!(text(&o).contains(step), "step {step:?} not logged: {}", text(&o));
    }
    assert_eq!(f.serving(), 1);
    f.publish(&f.models[1], 2, &[]);
    assert_ok(&f.update(&[]), "installed and confirmed version 2 (was 1)");
    let st = f.status();
    assert_eq!(
        (st["active_version"].as_u64(), st["previous_version"].as_u64(), st["state"].as_str()),
        (Some(2), Some(1), Some("confirmed"))
    );
    assert_eq!(f.serving(), 2);
    assert_ok(&f.update(&[]), "up to date (version 2)");
    // Versions only go up: the publisher refuses an old number.
    let o = Command::new(env!("CARGO_BIN_EXE_jetc"))
        .args([
            "publish",
            f.models[2].to_str().unwrap(),
            "--repo",
            &f.s("repo"),
            "--keys",
            &f.s("keys"),
            "--name",
            "digits",
            "--version",
            "2",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("not newer than the published version 2"), "{}", text(&o));
}

/// Key rotation: the timestamp key, then the root key; devices follow the
/// chain of roots and keep updating; the retired key no longer signs.
#[test]
fn rotated_keys_are_followed_by_devices() {
    let f = Fleet::new();
    f.publish(&f.models[0], 1, &[]);
    assert_ok(&f.update(&[]), "installed");
    let rotate = |role: &str| {
        let o = jetc(&["repo", "rotate-key", &f.s("repo"), "--keys", &f.s("keys"), "--role", role]);
        assert!(text(&o).contains(&format!("{role} key rotated")), "{}", text(&o));
    };
    rotate("timestamp");
    f.publish(&f.models[1], 2, &[]);
    let o = f.update(&[]);
    assert_ok(&o, "installed and confirmed version 2");
    assert!(text(&o).contains("root v2"), "the device did not move to root v2: {}", text(&o));
    rotate("root");
    f.publish(&f.models[2], 3, &[]);
    let o = f.update(&[]);
    assert_ok(&o, "installed and confirmed version 3");
    assert!(text(&o).contains("root v3"), "{}", text(&o));
    assert_eq!(f.serving(), 3);
    // The retired timestamp key cannot sign for this repository any more.
    let keys = f.p("keys");
    std::fs::copy(keys.join("timestamp.pk8.retired-1"), keys.join("timestamp.pk8")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_jetc")).args(["repo", "refresh", &f.s("repo"), "--keys", &f.s("keys")]).output().unwrap();
    assert!(!o.status.success(), "a retired key signed: {}", text(&o));
}

/// SIGKILL at each step of an update; a restart always runs a whole model
/// of the old or the new version, and the next update ends on the new one.
#[test]
fn killed_at_every_step_an_update_never_leaves_no_model_or_a_mix() {
    use std::io::{BufRead, BufReader};
    for step in ["download", "written", "switched", "health"] {
        let f = Fleet::new();
        f.publish(&f.models[0], 1, &[]);
        assert_ok(&f.update(&[]), "installed");
        f.publish(&f.models[1], 2, &[]);
        if step == "download" {
            // The body arrives in pieces: the kill lands mid-file.
            f.server.cut("digits-2.jrt", 3000);
        }
        let mut child = f.update_cmd(&[]).env("JETRT_UPDATE_PAUSE_AT", step).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        loop {
            let line = lines.next().unwrap_or_else(|| panic!("step {step}: the agent ended without pausing: {seen:#?}")).unwrap();
            let done = line.contains(&format!("paused at step {step}"));
            seen.push(line);
            if done {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        f.server.uncut();
        // A restart (status opens the slots as any start does) runs a whole model.
        let v = f.serving();
        let st = f.status();
        assert!(v == 1, "step {step}: after the kill, version {v} runs before it was confirmed: {st}");
        assert_ne!(st["state"], "pending", "step {step}: a dead update was left pending: {st}");
        // The next update finishes the job (a download resumes where it stopped).
        let before = f.server.log().len();
        let o = f.update(&[]);
        assert_ok(&o, "installed and confirmed version 2");
        assert_eq!(f.serving(), 2, "step {step}");
        if step == "download" {
            let log = f.server.log();
            assert!(
                log[before..].iter().any(|l| l.contains(".jrt range=")),
                "step {step}: the download did not resume with Range: {log:#?}"
            );
        }
    }
}

#[test]
fn a_model_that_fails_its_health_check_is_rolled_back_and_not_retried() {
    let f = Fleet::new();
    f.publish(&f.models[0], 1, &[]);
    assert_ok(&f.update(&[]), "installed");
    // A broken build: one flipped byte in the middle of the file.
    let mut bytes = std::fs::read(&f.models[1]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let broken = f.p("broken.jrt");
    std::fs::write(&broken, &bytes).unwrap();
    // jetc publish loads a file before signing it and refuses this one ...
    let o = Command::new(env!("CARGO_BIN_EXE_jetc"))
        .args(["publish", broken.to_str().unwrap(), "--repo", &f.s("repo"), "--keys", &f.s("keys"), "--name", "digits", "--version", "2"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "jetc publish signed a file jetrt cannot load: {}", text(&o));
    // ... but another pipeline might sign it (the library call does not check).
    let meta = jetrt_update::ModelMeta { model: "digits".into(), version: 2, boards: vec![], min_runtime: "0.1.0".into() };
    jetrt_update::repo::publish(&f.p("repo"), &f.p("keys"), &broken, &meta, Default::default()).unwrap();
    let o = f.update(&[]);
    assert_eq!(o.status.code(), Some(2), "a rolled-back update exits 2: {}", text(&o));
    assert!(
        text(&o).contains("health check of digits version 2 failed") && text(&o).contains("rolled back to digits version 1"),
        "{}",
        text(&o)
    );
    assert_eq!(f.serving(), 1);
    let st = f.status();
    assert_eq!(st["state"], "rolled_back");
    assert_eq!(st["failed"][0]["version"], 2);
    // Not installed again; a good version 3 is.
    assert_ok(&f.update(&[]), "failed here before");
    assert_eq!(f.serving(), 1);
    f.publish(&f.models[2], 3, &[]);
    assert_ok(&f.update(&[]), "installed and confirmed version 3 (was 1)");
    assert_eq!(f.serving(), 3);
}

/// Each attack or accident is refused with a clear log line, and the
/// installed version keeps running, whole.
#[test]
fn tampered_truncated_expired_replayed_wrongly_signed_wrong_board_and_disk_full_are_refused() {
    let f = Fleet::new();
    let repo = f.p("repo");
    let meta = repo.join("metadata");
    let save = |d: &str| {
        let dest = f.p(d);
        copy_dir(&repo, &dest);
        dest
    };
    let restore = |from: &Path| {
        std::fs::remove_dir_all(&repo).unwrap();
        copy_dir(from, &repo);
    };
    f.publish(&f.models[0], 1, &[]);
    assert_ok(&f.update(&[]), "installed");
    let v1_repo = save("repo-v1");
    // A running service keeps answering, with the installed version, through every refusal.
    let (mut server, addr) = serve(&f);
    let digit = std::fs::read(root().join("examples/digits/digit_0.npy")).unwrap();
    let answers = |v: u64| {
        for _ in 0..100 {
            let (code, got, body) = request(&addr, "POST", "/v1/infer", &digit).unwrap();
            assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
            if got == Some(v) {
                return;
            }
            // A newly confirmed version is taken up within the service's poll interval.
            assert!(got < Some(v), "serving version {got:?} after a refusal, expected {v}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("jetrt serve never answered with version {v}");
    };

    // Wrong board: version 2 is for other boards only; nothing to do here (exit 0, logged).
    f.publish(&f.models[1], 2, &["--boards", "jetson-orin-nano-8gb,jetson-agx-orin-64gb"]);
    let o = f.update(&["--board", "jetson-xavier-nx"]);
    assert_ok(&o, "not jetson-xavier-nx (skipped)");
    assert_eq!(f.serving(), 1);
    answers(1);

    f.publish(&f.models[2], 3, &[]);
    let target = std::fs::read_dir(repo.join("targets"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("digits-3.jrt"))
        .unwrap();
    let good = std::fs::read(&target).unwrap();

    // Tampered payload: same length, other bytes.
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(&target, &bad).unwrap();
    assert_refused(&f.update(&[]), "does not match the signed metadata");
    assert_eq!(f.serving(), 1);
    answers(1);

    // Truncated payload: the file on the server is short.
    std::fs::write(&target, &good[..good.len() / 2]).unwrap();
    assert_refused(&f.update(&[]), "truncated");
    assert_eq!(f.serving(), 1);
    answers(1);

    // A connection that breaks mid-body.
    std::fs::write(&target, &good).unwrap();
    let _ = std::fs::remove_file(f.p("slots/b.jrt.part"));
    f.server.cut("digits-3.jrt", 4000);
    let o = f.update(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("4000 of"), "{}", text(&o));
    assert_eq!(f.serving(), 1);
    answers(1);
    f.server.uncut();

    // Disk full: the agent's file size limit is below the model's size.
    let limited = {
        let mut c = f.update_cmd(&[]);
        limit_file_size(&mut c, 8 << 10);
        c.output().unwrap()
    };
    assert_refused(&limited, "no space left");
    assert_eq!(f.serving(), 1);
    answers(1);
    assert!(!f.p("slots/b.jrt.part").exists(), "the partial file of a full disk is removed");

    // Expired timestamp (re-signed already expired), then fixed.
    jetc(&["repo", "refresh", repo.to_str().unwrap(), "--keys", &f.s("keys"), "--timestamp-days", "-1"]);
    assert_refused(&f.update(&[]), "xpired");
    assert_eq!(f.serving(), 1);
    answers(1);
    jetc(&["repo", "refresh", repo.to_str().unwrap(), "--keys", &f.s("keys")]);

    // Signed with keys the device does not trust: a repository of their own.
    let current = save("repo-current");
    let rogue = f.p("rogue");
    jetc(&["repo", "init", rogue.to_str().unwrap(), "--keys", &f.s("rogue-keys")]);
    jetc(&[
        "publish",
        f.models[2].to_str().unwrap(),
        "--repo",
        rogue.to_str().unwrap(),
        "--keys",
        &f.s("rogue-keys"),
        "--name",
        "digits",
        "--version",
        "9",
    ]);
    restore(&rogue);
    assert_refused(&f.update(&[]), "TUF");
    assert_eq!(f.serving(), 1);
    answers(1);
    restore(&current);
    assert_ok(&f.update(&[]), "installed and confirmed version 3 (was 1)");
    assert_eq!(f.serving(), 3);
    answers(3);

    // Replays. An old timestamp served again:
    let current = save("repo-current2");
    std::fs::copy(v1_repo.join("metadata/timestamp.json"), meta.join("timestamp.json")).unwrap();
    assert_refused(&f.update(&[]), "TUF");
    assert_eq!(f.serving(), 3);
    answers(3);
    // A new timestamp with an old snapshot in the new one's place:
    restore(&current);
    jetc(&["repo", "refresh", repo.to_str().unwrap(), "--keys", &f.s("keys")]);
    let newest = (1..100).rev().find(|n| meta.join(format!("{n}.snapshot.json")).exists()).unwrap();
    std::fs::copy(meta.join(format!("{}.snapshot.json", newest - 1)), meta.join(format!("{newest}.snapshot.json"))).unwrap();
    assert_refused(&f.update(&[]), "TUF");
    assert_eq!(f.serving(), 3);
    answers(3);
    assert_eq!(f.status()["state"], "confirmed");
    server.kill().unwrap();
    server.wait().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Limits the size of any file the child writes (RLIMIT_FSIZE; writes past
/// it fail with EFBIG, SIGXFSZ ignored): a full disk without a mount.
fn limit_file_size(c: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls (setrlimit, signal) run.
    unsafe {
        c.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// `jetrt serve` on the fleet's slots (TCP on a free port and a Unix
/// socket); the child and its address.
fn serve(f: &Fleet) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_jetrt"))
        .args(["serve", &f.s("slots"), "--http", "127.0.0.1:0", "--socket", &f.s("serve.sock"), "--workers", "2", "--poll", "100ms"])
        .args(["--device", "cpu", "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("serve said {line:?}")).to_string();
    // Keep reading: a closed pipe would end the service at its next line (SIGPIPE).
    std::thread::spawn(move || for _ in out.lines() {});
    (child, addr)
}

/// One request on its own connection: (status, model version header, body).
fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Option<u64>, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other("no status"))?;
    let version = head.lines().find_map(|l| l.strip_prefix("X-Jetrt-Model-Version: ")).and_then(|v| v.trim().parse().ok());
    Ok((status, version, raw[split + 4..].to_vec()))
}

fn percentiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "no requests".into();
    }
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!("{} requests, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms", v.len(), p(0.5), p(0.9), p(0.99), p(1.0))
}

/// `jetrt serve` on a slot folder under steady concurrent requests while
/// three updates land: every request is answered 200, none dropped, each
/// client sees versions only go up, and the last update is what answers.
#[test]
fn serve_answers_every_request_while_three_updates_land() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let f = Fleet::new();
    f.publish(&f.models[0], 1, &[]);
    assert_ok(&f.update(&[]), "installed");
    let (mut child, addr) = serve(&f);
    let digit = std::fs::read(root().join("examples/digits/digit_0.npy")).unwrap();

    // The protocol's answers, good and bad.
    let (code, v, body) = request(&addr, "POST", "/v1/infer", &digit).unwrap();
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((code, v), (200, Some(1)), "{reply}");
    assert_eq!(reply["outputs"][0]["shape"], serde_json::json!([1, 10]));
    let (code, _, body) = request(&addr, "POST", "/v1/infer?format=npy", &digit).unwrap();
    assert_eq!(code, 200);
    assert!(body.starts_with(b"\x93NUMPY"), "format=npy answers a .npy");
    let (code, _, body) = request(&addr, "POST", "/v1/infer", b"not an array").unwrap();
    assert!(code == 400 && String::from_utf8_lossy(&body).contains("not a valid .npy"), "{code} {}", String::from_utf8_lossy(&body));
    let (code, _, _) = request(&addr, "GET", "/nope", b"").unwrap();
    assert_eq!(code, 404);
    let (code, _, body) = request(&addr, "GET", "/v1/model", b"").unwrap();
    assert!(code == 200 && String::from_utf8_lossy(&body).contains("\"image\""));
    // The Unix socket speaks the same protocol.
    {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(f.p("serve.sock")).unwrap();
        write!(s, "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        assert!(r.starts_with("HTTP/1.1 200") && r.contains("\"version\":1"), "{r}");
    }

    // Steady load from 4 clients.
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, addr, digit) = (stop.clone(), addr.clone(), digit.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new(); // (start s, latency ms, status, version)
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    match request(&addr, "POST", "/v1/infer", &digit) {
                        Ok((code, v, body)) => {
                            if code != 200 {
                                failures.push(format!("HTTP {code}: {}", String::from_utf8_lossy(&body)));
                            }
                            seen.push((start.duration_since(t0).as_secs_f64(), start.elapsed().as_secs_f64() * 1e3, code, v.unwrap_or(0)));
                        }
                        Err(e) => failures.push(format!("dropped: {e}")),
                    }
                }
                (seen, failures)
            })
        })
        .collect();
    let wait_for = |version: u64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v, _) = request(&addr, "POST", "/v1/infer", &digit).unwrap();
            if v == Some(version) {
                return;
            }
            assert!(Instant::now() < deadline, "serve never swapped to version {version}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    std::thread::sleep(Duration::from_millis(1500));
    let during_start = t0.elapsed().as_secs_f64();
    for v in 2..=4u64 {
        f.publish(&f.models[v as usize - 1], v, &[]);
        assert_ok(&f.update(&[]), &format!("installed and confirmed version {v}"));
        wait_for(v);
    }
    let during_end = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for c in clients {
        let (seen, failures) = c.join().unwrap();
        assert!(failures.is_empty(), "{} requests failed or were dropped: {:?}", failures.len(), &failures[..failures.len().min(5)]);
        let versions: Vec<u64> = seen.iter().map(|s| s.3).collect();
        assert!(versions.windows(2).all(|w| w[0] <= w[1]), "a client saw the version go back: {versions:?}");
        assert_eq!(versions.last(), Some(&4));
        all.extend(seen);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let phase = |a: f64, b: f64| percentiles(all.iter().filter(|s| s.0 >= a && s.0 < b).map(|s| s.1).collect());
    eprintln!("serve load test (4 clients, 2 workers, 3 updates): 0 failed, 0 dropped");
    eprintln!("  before: {}", phase(0.0, during_start));
    eprintln!("  during: {}", phase(during_start, during_end));
    eprintln!("  after:  {}", phase(during_end, f64::MAX));
    for v in 1..=4 {
        eprintln!("  answered by version {v}: {}", all.iter().filter(|s| s.3 == v).count());
    }
}

/// The TUF client workflow (`jetrt tuf`, the agent's own client) against
/// repositories written by python-tuf, the reference implementation:
/// tools/tuf_scenarios.py. Fails under CI=true when the venv lacks python-tuf.
#[test]
fn tuf_client_follows_the_specification_on_python_tuf_repositories() {
    let py = root().join(".venv/bin/python");
    let has_tuf = py.is_file()
        && Command::new(&py).args(["-c", "import tuf.api.metadata, securesystemslib.signer"]).output().is_ok_and(|o| o.status.success());
    if !has_tuf {
        let msg = format!("{} lacks python-tuf: run tools/setup_venv.sh", py.display());
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
        eprintln!("\n*** SKIPPED TUF client scenarios: {msg} ***\n");
        return;
    }
    let o = Command::new(&py).arg(root().join("tools/tuf_scenarios.py")).args(["--jetrt", env!("CARGO_BIN_EXE_jetrt")]).output().unwrap();
    let out = text(&o);
    eprintln!("{out}");
    assert!(o.status.success(), "jetrt tuf departs from the TUF specification: {out}");
    assert!(out.contains("0 unexpected"), "{out}");
}

/// `--watch` installs what is published while it runs; a clock earlier than
/// the last verified metadata is refused plainly, and the model keeps running.
#[test]
fn watch_mode_follows_the_repository_and_a_clock_stepped_back_is_refused() {
    use std::time::{Duration, Instant};
    let f = Fleet::new();
    f.publish(&f.models[0], 1, &[]);
    let mut child = f.update_cmd(&["--watch", "1s"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let wait_for = |v: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while f.p("slots/state.json").exists().then(|| f.status()["active_version"].as_u64()).flatten() != Some(v)
            || f.status()["state"] != "confirmed"
        {
            assert!(Instant::now() < deadline, "--watch never installed version {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(1);
    f.publish(&f.models[1], 2, &[]);
    wait_for(2);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(f.serving(), 2);
    // The device once verified metadata at a time later than its clock now says.
    std::fs::write(f.p("slots/tuf/latest_known_time.json"), "\"2099-01-01T00:00:00Z\"").unwrap();
    f.publish(&f.models[2], 3, &[]);
    assert_refused(&f.update(&[]), "earlier than the last time this device verified metadata");
    assert_eq!(f.serving(), 2);
}
