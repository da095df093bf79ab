//! `jetrt serve`: answers inference requests over HTTP/1.1, on loopback TCP
//! and on a Unix socket (the same protocol on both), and swaps to a newly
//! installed model between two requests.
//!
//! Protocol (docs/SERVE.md):
//! - `POST /v1/infer`: body = the input as `.npy` (a one-input model) or
//!   all inputs as `.npz` (arrays named like the inputs). Answer: JSON
//!   `{"model", "version", "outputs": [{"name", "dtype", "shape", "data"}]}`,
//!   or with `?format=npy[&output=NAME]` one output as `.npy`. The header
//!   `X-Jetrt-Model-Version` names the version that answered.
//! - `GET /v1/model`: name, version, inputs and outputs.
//! - `GET /v1/health`: 200 when a model is loaded, else 503.
//!
//! Swaps: a watcher polls the slot folder's state (or the file's size and
//! time); when another model is confirmed it loads it, and each worker
//! takes it up at its next request. A request in flight finishes on the
//! session it started on; no request is failed or dropped by a swap.

use crate::npy::{self, Array};
use anyhow::{bail, Context, Result};
use jetrt::{Model, Session, SessionOptions, TensorRef};
use jetrt_update::slots::SlotStore;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;
use tiny_http::{Header, Method, Response, Server};

/// `jetrt serve` arguments.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// A .jrt file, or a slot folder kept by jetrt update (the model it confirmed is served,
    /// and each newly confirmed one replaces it).
    pub source: PathBuf,
    /// TCP address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: String,
    /// Also listen on this Unix socket (replaced if it exists).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Requests run at once (one session each).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// How often to look for a newly installed model.
    #[arg(long, default_value = "1s", value_parser = crate::ota::parse_interval_ms)]
    pub poll: Duration,
    /// A status LED on a GPIO line, CHIP:LINE (e.g. /dev/gpiochip0:17): lit while a model is
    /// served, dark while there is none, and turned off when the service stops (SIGTERM or
    /// SIGINT: a released GPIO line would keep its level).
    #[arg(long, value_name = "CHIP:LINE")]
    pub status_led: Option<String>,
}

/// Set by SIGTERM or SIGINT: the watcher stops the service within --poll.
static STOP: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_stop(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM and SIGINT set [`STOP`] instead of killing the process, so the
/// watcher can turn the status LED off and log before it exits (0).
fn stop_on_signals() {
    #[cfg(unix)]
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
    }
}

/// `--status-led`: the boards crate's status LED on a GPIO line.
#[cfg(target_os = "linux")]
fn status_led(spec: &str) -> Result<Box<dyn FnMut(bool) -> Result<()>>> {
    let pin = jetrt_boards::io::linux::output(spec, "jetrt-status").context("--status-led")?;
    let mut led = jetrt_boards::io::StatusLed::new(pin, "status LED", false)?;
    Ok(Box::new(move |on| Ok(led.set(on)?)))
}

#[cfg(not(target_os = "linux"))]
fn status_led(_spec: &str) -> Result<Box<dyn FnMut(bool) -> Result<()>>> {
    bail!("--status-led needs Linux (the GPIO character device)")
}

/// One loaded model.
struct Loaded {
    model: Model,
    version: Option<u64>,
    name: String,
    path: PathBuf,
    generation: u64,
    /// Largest request body taken: a few times the inputs' bytes.
    body_limit: u64,
}

/// What the serving threads share.
struct Shared {
    current: RwLock<Option<Arc<Loaded>>>,
    /// Idle sessions, with the model they were made for.
    idle: Mutex<Vec<(Arc<Loaded>, Session)>>,
    returned: Condvar,
    /// Sessions not yet created (taken up to `workers`).
    unmade: Mutex<usize>,
    options: SessionOptions,
    served: AtomicU64,
}

/// The model a source points at now.
struct Current {
    path: PathBuf,
    version: Option<u64>,
    name: String,
    /// Changes when the model does (version and hash, or size and time).
    id: String,
}

/// Where the model comes from.
enum Source {
    File(PathBuf),
    Slots(PathBuf),
}

impl Source {
    /// The file to serve now, if any.
    fn current(&self) -> Result<Option<Current>> {
        match self {
            Source::File(p) => {
                let m = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
                let id = format!("{}:{:?}", m.len(), m.modified().ok());
                let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                Ok(Some(Current { path: p.clone(), version: None, name, id }))
            }
            Source::Slots(dir) => {
                let st = SlotStore::peek(dir)?;
                Ok(st.serving().map(|i| Current {
                    path: dir.join(i.slot.file_name()),
                    version: Some(i.version),
                    name: i.model.clone(),
                    id: format!("{}:{}", i.version, i.sha256),
                }))
            }
        }
    }
}

/// Opens the model and checks that `sessions` sessions of it fit this
/// machine's memory (before any is made).
fn load(path: &Path, version: Option<u64>, name: String, generation: u64, options: &SessionOptions, sessions: usize) -> Result<Loaded> {
    let model = Model::open(path).with_context(|| format!("cannot load {}", path.display()))?;
    if let Some(root) = crate::env::memory_check_root() {
        jetrt::budget::check_fits(&model, options.backend, options.threads, sessions, &root)
            .map_err(|e| anyhow::anyhow!("{e}; {}", crate::env::MEMORY_CHECK_HINT))?;
    }
    let input_bytes: usize = model.inputs().iter().map(|t| t.shape.iter().product::<usize>() * t.dtype.size()).sum();
    let body_limit = 4 * input_bytes as u64 + (1 << 20);
    Ok(Loaded { model, version, name, path: path.to_path_buf(), generation, body_limit })
}

/// Runs the service until the process is stopped.
pub fn run(args: ServeArgs, options: SessionOptions) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let source = if args.source.is_dir() {
        // A start: a dead update's pending state rolls back here.
        SlotStore::open(&args.source, false)?;
        Source::Slots(args.source.clone())
    } else if args.source.is_file() {
        Source::File(args.source.clone())
    } else {
        bail!("{} is neither a .jrt file nor a slot folder", args.source.display());
    };
    let mut led = args.status_led.as_deref().map(status_led).transpose()?;
    let mut seen = String::new();
    let first = match source.current()? {
        Some(Current { path, version, name, id }) => {
            seen = id;
            let l = load(&path, version, name, 1, &options, args.workers)?;
            log::info!("serving {} version {} ({})", l.name, opt(l.version), path.display());
            Some(Arc::new(l))
        }
        None => {
            log::warn!("{}: no model installed yet; answering 503 until one is", args.source.display());
            None
        }
    };
    if let Some(led) = &mut led {
        led(first.is_some())?;
    }
    stop_on_signals();
    let shared = Arc::new(Shared {
        current: RwLock::new(first),
        idle: Mutex::new(Vec::new()),
        returned: Condvar::new(),
        unmade: Mutex::new(args.workers),
        options,
        served: AtomicU64::new(0),
    });

    let mut servers = Vec::new();
    let tcp = Server::http(&args.http).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.http))?;
    let addr = tcp.server_addr().to_ip().map(|a| a.to_string()).unwrap_or_else(|| args.http.clone());
    println!("listening on http://{addr}");
    servers.push(Arc::new(tcp));
    if let Some(sock) = &args.socket {
        let _ = std::fs::remove_file(sock);
        let unix = Server::http_unix(sock).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", sock.display()))?;
        println!("listening on unix:{}", sock.display());
        servers.push(Arc::new(unix));
    }
    use std::io::Write;
    std::io::stdout().flush().ok();

    for server in &servers {
        for _ in 0..args.workers {
            let (server, shared) = (server.clone(), shared.clone());
            std::thread::spawn(move || loop {
                match server.recv() {
                    Ok(req) => handle(req, &shared),
                    Err(e) => log::warn!("receiving a request: {e}"),
                }
            });
        }
    }

    // The watcher, on this thread.
    let mut generation = 1;
    loop {
        std::thread::sleep(args.poll);
        if STOP.load(Ordering::SeqCst) {
            if let Some(led) = &mut led {
                if let Err(e) = led(false) {
                    log::warn!("{e:#}");
                }
            }
            log::info!("stopping on a signal after {} requests", shared.served.load(Ordering::Relaxed));
            return Ok(());
        }
        let now = match source.current() {
            Ok(c) => c,
            Err(e) => {
                log::warn!("cannot read {}: {e:#}", args.source.display());
                continue;
            }
        };
        let Some(Current { path, version, name, id }) = now else { continue };
        if id == seen {
            continue;
        }
        seen = id;
        generation += 1;
        match load(&path, version, name, generation, &shared.options, args.workers) {
            Ok(l) => {
                log::info!(
                    "swapping to {} version {} ({}) after {} requests",
                    l.name,
                    opt(l.version),
                    path.display(),
                    shared.served.load(Ordering::Relaxed)
                );
                *shared.current.write().expect("lock") = Some(Arc::new(l));
                if let Some(led) = &mut led {
                    if let Err(e) = led(true) {
                        log::warn!("{e:#}");
                    }
                }
            }
            Err(e) => log::error!("the new model does not load, keeping the old one: {e:#}"),
        }
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// A session for the current model: an idle one made for it, else a new
/// one (up to `workers`, or replacing an idle one made for an older model).
fn take(shared: &Shared) -> Result<(Arc<Loaded>, Session), (u16, String)> {
    let current = shared.current.read().expect("lock").clone().ok_or((503, "no model installed yet".to_string()))?;
    let mut idle = shared.idle.lock().expect("lock");
    loop {
        if let Some(i) = idle.iter().position(|(l, _)| l.generation == current.generation) {
            return Ok(idle.swap_remove(i));
        }
        if let Some((_, old)) = idle.pop() {
            drop(old); // made for an older model: its arena is freed, a new one is made
            break;
        }
        let mut unmade = shared.unmade.lock().expect("lock");
        if *unmade > 0 {
            *unmade -= 1;
            break;
        }
        drop(unmade);
        idle = shared.returned.wait(idle).expect("lock");
    }
    drop(idle);
    match current.model.session(shared.options.clone()) {
        Ok(s) => Ok((current, s)),
        Err(e) => {
            *shared.unmade.lock().expect("lock") += 1;
            shared.returned.notify_one();
            Err((500, format!("cannot create a session: {e}")))
        }
    }
}

fn give_back(shared: &Shared, l: Arc<Loaded>, s: Session) {
    shared.idle.lock().expect("lock").push((l, s));
    shared.returned.notify_one();
}

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header")
}

fn error(code: u16, msg: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(serde_json::to_vec(&json!({ "error": msg })).expect("json"))
        .with_status_code(code)
        .with_header(header("Content-Type", "application/json"))
}

fn handle(mut req: tiny_http::Request, shared: &Shared) {
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let param = |k: &str| query.split('&').find_map(|kv| kv.strip_prefix(k).and_then(|r| r.strip_prefix('='))).map(String::from);
    let resp = match (req.method(), path) {
        (Method::Get, "/v1/health") => match shared.current.read().expect("lock").clone() {
            Some(l) => json_resp(json!({"status": "ok", "model": l.name, "version": l.version})),
            None => error(503, "no model installed yet"),
        },
        (Method::Get, "/v1/model") => match shared.current.read().expect("lock").clone() {
            Some(l) => json_resp(describe(&l)),
            None => error(503, "no model installed yet"),
        },
        (Method::Post, "/v1/infer") => {
            let limit = shared.current.read().expect("lock").as_ref().map_or(1 << 20, |l| l.body_limit);
            let mut body = Vec::new();
            if req.body_length().is_some_and(|n| n as u64 > limit) {
                error(413, &format!("the body is larger than {limit} bytes (a few times the model's inputs)"))
            } else {
                match std::io::Read::read_to_end(&mut std::io::Read::take(req.as_reader(), limit + 1), &mut body) {
                    Ok(n) if n as u64 > limit => {
                        error(413, &format!("the body is larger than {limit} bytes (a few times the model's inputs)"))
                    }
                    Ok(_) => infer(shared, &body, param("format").as_deref(), param("output").as_deref()),
                    Err(e) => error(400, &format!("cannot read the request body: {e}")),
                }
            }
        }
        (_, "/v1/infer" | "/v1/model" | "/v1/health") => error(405, "method not allowed"),
        _ => error(404, "unknown path: use POST /v1/infer, GET /v1/model or GET /v1/health"),
    };
    if let Err(e) = req.respond(resp) {
        log::warn!("answering {path}: {e}");
    }
}

fn json_resp(v: serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(serde_json::to_vec(&v).expect("json")).with_header(header("Content-Type", "application/json"))
}

fn describe(l: &Loaded) -> serde_json::Value {
    let t = |v: Vec<jetrt::TensorInfo>| {
        v.into_iter().map(|t| json!({"name": t.name, "dtype": t.dtype.numpy_name(), "shape": t.shape})).collect::<Vec<_>>()
    };
    json!({"model": l.name, "version": l.version, "file": l.path, "inputs": t(l.model.inputs()), "outputs": t(l.model.outputs())})
}

fn infer(shared: &Shared, body: &[u8], format: Option<&str>, output: Option<&str>) -> Response<std::io::Cursor<Vec<u8>>> {
    let (l, mut session) = match take(shared) {
        Ok(x) => x,
        Err((code, msg)) => return error(code, &msg),
    };
    let result = run_one(&l, &mut session, body, format, output);
    give_back(shared, l.clone(), session);
    shared.served.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(r) => r.with_header(header("X-Jetrt-Model-Version", &opt(l.version))),
        Err((code, msg)) => error(code, &msg),
    }
}

type Reply = std::result::Result<Response<std::io::Cursor<Vec<u8>>>, (u16, String)>;

fn run_one(l: &Loaded, session: &mut Session, body: &[u8], format: Option<&str>, output: Option<&str>) -> Reply {
    let bad = |e: jetrt_converter::ConvertError| (400, e.to_string());
    let inputs = l.model.inputs();
    let arrays: Vec<Array> = if body.starts_with(b"PK") {
        let largest = inputs.iter().map(|t| t.shape.iter().product::<usize>() * t.dtype.size()).max().unwrap_or(0);
        let mut named = npy::npz_from_bytes(body, 8 * largest.max(1)).map_err(bad)?;
        inputs
            .iter()
            .map(|t| {
                let i = named
                    .iter()
                    .position(|(n, _)| n == &t.name)
                    .ok_or_else(|| (400, format!("the .npz has no array named {:?}", t.name)))?;
                Ok(named.swap_remove(i).1)
            })
            .collect::<std::result::Result<_, (u16, String)>>()?
    } else if inputs.len() == 1 {
        vec![npy::from_bytes(body, "the request body").map_err(bad)?]
    } else {
        return Err((400, format!("the model has {} inputs: send them as one .npz", inputs.len())));
    };
    for (i, (a, t)) in arrays.iter().zip(&inputs).enumerate() {
        if a.dtype != t.dtype || a.shape != t.shape {
            return Err((
                400,
                format!(
                    "input {:?}: the model takes {} {:?}, the request holds {} {:?}",
                    t.name,
                    t.dtype.numpy_name(),
                    t.shape,
                    a.dtype.numpy_name(),
                    a.shape
                ),
            ));
        }
        session.set_input(i, TensorRef::from_bytes(a.dtype, &a.shape, &a.data)).map_err(|e| (400, e.to_string()))?;
    }
    session.run_loaded().map_err(|e| (500, format!("the run failed: {e}")))?;
    let outputs = l.model.outputs();
    let read = |i: usize| -> std::result::Result<Array, (u16, String)> {
        let o = session.output(i).map_err(|e| (500, e.to_string()))?;
        Ok(Array { dtype: outputs[i].dtype, shape: outputs[i].shape.clone(), data: o.to_vec() })
    };
    if format == Some("npy") {
        let i = match output {
            Some(n) => outputs.iter().position(|t| t.name == n).ok_or_else(|| (400, format!("no output named {n:?}")))?,
            None => 0,
        };
        let bytes = npy::to_bytes(&read(i)?).map_err(|e| (500, format!("{e:#}")))?;
        return Ok(Response::from_data(bytes).with_header(header("Content-Type", "application/octet-stream")));
    }
    if let Some(f) = format.filter(|f| *f != "json") {
        return Err((400, format!("format {f:?}: use json or npy")));
    }
    let mut outs = Vec::new();
    for (i, t) in outputs.iter().enumerate() {
        let a = read(i)?;
        let data: serde_json::Value = match a.to_f32() {
            Some(v) => json!(v),
            None => json!(a.data),
        };
        outs.push(json!({"name": t.name, "dtype": t.dtype.numpy_name(), "shape": t.shape, "data": data}));
    }
    Ok(json_resp(json!({"model": l.name, "version": l.version, "outputs": outs})))
}
