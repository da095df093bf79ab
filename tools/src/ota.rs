//! The command lines of over-the-air updates: `jetrt update` (the device
//! agent) and `jetrt tuf` (the TUF client-under-test protocol of the TUF
//! project's conformance suite, on the agent's own client).

use anyhow::{bail, Context, Result};
use jetrt_update::agent::{self, Config, Outcome};
use jetrt_update::client::{self, Client};
use std::path::PathBuf;
use std::time::Duration;

/// `jetrt update` arguments.
#[derive(clap::Args)]
pub struct UpdateArgs {
    /// Folder of the A/B slots, their state and the trusted TUF metadata (created if needed).
    #[arg(long)]
    pub slot_dir: PathBuf,
    /// Repository base URL: metadata under URL/metadata/, targets under URL/targets/ (as jetc
    /// repo init lays them out; http, https or file).
    #[arg(long, required_unless_present = "status")]
    pub repo_url: Option<String>,
    /// The repository's root.json, given to the device out of band; used until the device
    /// trusts a newer root (kept in SLOT_DIR/tuf/).
    #[arg(long)]
    pub trusted_root: Option<PathBuf>,
    /// Model to follow (default: the installed one, or the repository's only model).
    #[arg(long)]
    pub model: Option<String>,
    /// This board's name, matched against the boards a version is published for (default:
    /// the detected board's profile name from docs/BOARDS.md, e.g. jetson-orin-nano-8gb, or
    /// "generic").
    #[arg(long)]
    pub board: Option<String>,
    /// Keep running: check every INTERVAL (e.g. 300, 30s, 5m, 1h).
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval, conflicts_with = "status")]
    pub watch: Option<Duration>,
    /// Print the slots' state instead of updating (JSON keys: active_slot, active_version,
    /// previous_version, state, model, serving, failed, timestamp_version).
    #[arg(long)]
    pub status: bool,
    #[arg(long, requires = "status")]
    pub json: bool,
}

/// "300", "30s", "5m", "1h" → a duration.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.trim().split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: u64 = num.parse().map_err(|_| format!("{s:?}: give seconds, or a number with s, m or h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: unit {unit:?} is not s, m or h")),
    };
    if secs == 0 {
        return Err("the interval must be at least one second".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Like [`parse_interval`], also taking milliseconds ("250ms").
pub fn parse_interval_ms(s: &str) -> Result<Duration, String> {
    match s.trim().strip_suffix("ms") {
        Some(ms) => ms
            .parse::<u64>()
            .ok()
            .filter(|&m| m > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("{s:?}: not a number of milliseconds")),
        None => parse_interval(s),
    }
}

/// The board name this device reports when --board is not given: its
/// profile name (docs/BOARDS.md), or "generic".
pub fn default_board() -> String {
    jetrt_boards::machine(std::path::Path::new("/")).board_name().to_string()
}

/// Runs `jetrt update`; the process's exit status.
pub fn run_update(args: UpdateArgs, session: jetrt::SessionOptions) -> Result<i32> {
    if args.status {
        let s = agent::status(&args.slot_dir)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            println!("slots:            {}", args.slot_dir.display());
            println!("state:            {}", s.state);
            println!("model:            {}", s.model.as_deref().unwrap_or("-"));
            println!("active:           slot {} version {}", s.active_slot.as_deref().unwrap_or("-"), opt(s.active_version));
            println!("previous version: {}", opt(s.previous_version));
            if let Some(p) = &s.serving {
                println!("running:          {}", p.display());
            }
            for f in &s.failed {
                println!("failed:           version {} ({})", f.version, f.reason);
            }
        }
        return Ok(0);
    }
    let cfg = Config {
        repo_url: args.repo_url.clone().context("--repo-url is required")?,
        slot_dir: args.slot_dir.clone(),
        trusted_root: args.trusted_root.clone(),
        model: args.model.clone(),
        board: args.board.clone().unwrap_or_else(default_board),
        session,
        memory_check: crate::env::memory_check_root(),
    };
    if cfg.trusted_root.is_none() && !agent::metadata_dir(&cfg.slot_dir).join("root.json").exists() {
        bail!("no trusted root yet: give the repository's root.json with --trusted-root (the first time)");
    }
    log::info!("board {}", cfg.board);
    let Some(interval) = args.watch else {
        return match agent::update_once(&cfg) {
            Ok(o) => Ok(report(&o)),
            Err(e) => {
                log::error!("update refused: {e}");
                Err(e.into())
            }
        };
    };
    log::info!("watching {} every {}s", cfg.repo_url, interval.as_secs());
    loop {
        match agent::update_once(&cfg) {
            Ok(o) => {
                report(&o);
            }
            Err(e) => log::error!("update refused: {e}; the installed model keeps running"),
        }
        std::thread::sleep(interval);
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn report(o: &Outcome) -> i32 {
    match o {
        Outcome::Installed { version, previous } => {
            println!("installed and confirmed version {version} (was {})", opt(*previous));
            0
        }
        Outcome::UpToDate { version } => {
            println!("up to date (version {})", opt(*version));
            0
        }
        Outcome::RolledBack { version, reason } => {
            println!("version {version} failed its health check and was rolled back: {reason}");
            2
        }
    }
}

/// `jetrt tuf` arguments (the conformance suite's client-under-test protocol).
#[derive(clap::Args)]
pub struct TufArgs {
    #[arg(long)]
    pub metadata_dir: PathBuf,
    #[arg(long)]
    pub metadata_url: Option<String>,
    #[arg(long)]
    pub target_name: Option<String>,
    #[arg(long)]
    pub target_base_url: Option<String>,
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: TufCmd,
}

#[derive(clap::Subcommand)]
pub enum TufCmd {
    /// Trust TRUSTED_ROOT (copied into the metadata folder; nothing is fetched).
    Init { trusted_root: PathBuf },
    /// Run the TUF client workflow: update root, timestamp, snapshot and targets.
    Refresh,
    /// Refresh, then download --target-name from --target-base-url into --target-dir, verified.
    Download,
}

/// Runs `jetrt tuf`.
pub fn run_tuf(a: TufArgs) -> Result<()> {
    let need = |o: &Option<String>, flag: &str| o.clone().with_context(|| format!("{flag} is required"));
    match a.cmd {
        TufCmd::Init { trusted_root } => {
            Client::init(&a.metadata_dir, &trusted_root)?;
            println!("trusting {} (in {})", trusted_root.display(), a.metadata_dir.display());
        }
        TufCmd::Refresh => {
            let c = tuf_client(&a, &need(&a.metadata_url, "--metadata-url")?)?;
            let repo = c.refresh()?;
            println!("refreshed: root v{}, timestamp v{}", repo.root().signed.version, repo.timestamp().signed.version);
        }
        TufCmd::Download => {
            let c = tuf_client(&a, &need(&a.metadata_url, "--metadata-url")?)?;
            let name = need(&a.target_name, "--target-name")?;
            let base = client::dir_url(&need(&a.target_base_url, "--target-base-url")?)?;
            let dir = a.target_dir.clone().context("--target-dir is required")?;
            let path = client::download_target(&c, &name, &base, &dir)?;
            println!("downloaded {name} to {}", path.display());
        }
    }
    Ok(())
}

fn tuf_client(a: &TufArgs, metadata_url: &str) -> Result<Client> {
    let url = client::dir_url(metadata_url)?;
    Ok(Client {
        metadata_dir: a.metadata_dir.clone(),
        metadata_url: url.clone(),
        targets_url: url,
        trusted_root: None,
        http: Default::default(),
    })
}
