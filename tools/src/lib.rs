//! Helpers shared by the `jetc` and `jetrt` command-line tools (and the
//! end-to-end tests): `.npy` files, output file names, memory readings.

pub mod board;
pub mod env;
pub mod info;
pub mod inspect;
pub mod ota;
pub mod serve;

pub use jetrt_converter::{npy, samples};

/// The tools' `main`: logging from `RUST_LOG` (warnings by default), and an
/// error printed as `error: ...` with its causes, exit code 1.
pub fn main_with(run: impl FnOnce() -> anyhow::Result<()>) {
    main_with_log("warn", run)
}

/// [`main_with`], logging at `default_filter` unless RUST_LOG says otherwise
/// (the update agent logs every step at info).
pub fn main_with_log(default_filter: &str, run: impl FnOnce() -> anyhow::Result<()>) {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`| head`) would
    // panic; a command-line tool should just stop, as cat or ls do.
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition at the start of main,
    // before any thread exists; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter)).init();
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// An output's file name: every character outside `[A-Za-z0-9_.-]` becomes
/// `_` (so `gpu_0/softmax_1` → `gpu_0_softmax_1`).
pub use jetrt_converter::samples::sanitize_name;

/// Peak resident set size of this process (`VmHWM`), in bytes, where the OS
/// reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `12.3 MiB` style sizes for people.
pub use jetrt_boards::human_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_are_sanitized() {
        assert_eq!(sanitize_name("gpu_0/softmax_1"), "gpu_0_softmax_1");
        assert_eq!(sanitize_name("a b:c.d-e"), "a_b_c.d-e");
        assert_eq!(sanitize_name("ÿ"), "_");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
