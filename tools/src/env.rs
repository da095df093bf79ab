//! The environment variables the command-line tools read, in one place.
//! The libraries read none: what these set reaches them as options
//! (`jetrt::SessionOptions`, `jetrt_converter::Kernels`, a memory check
//! root), so a program embedding jetrt decides for itself.
//!
//! | variable | sets |
//! |---|---|
//! | `JETRT_KERNELS` | [`SessionOptions::cpu_kernels`]: avx512, avx2_fma, neon, generic |
//! | `JETRT_INT8_KERNELS` | [`SessionOptions::int8_kernels`]: avx512vnni, avx2, neon_i8mm, neon_dotprod, portable |
//! | `JETRT_CUDA_UNVERIFIED=1` | [`CudaOptions::unverified_kernels`] |
//! | `JETRT_CUDA_SYNC=1` | [`CudaOptions::sync_each_step`] |
//! | `JETRT_CUDA_GRAPH=0` | [`CudaOptions::graph`] off |
//! | `JETRT_CUDA_ZERO_COPY=0` | [`CudaOptions::zero_copy`] off |
//! | `JETRT_CACHE_DIR` | [`CudaOptions::kernel_cache_dir`] (else `$XDG_CACHE_HOME/jetrt`, `~/.cache/jetrt`) |
//! | `JETRT_NVRTC` | [`CudaOptions::nvrtc`] |
//! | `JETRT_MEMORY_CHECK=0` | skips the check that a model fits the board before it loads |
//! | `JETRT_ROOT` | where the board's files are read (`jetrt info --root`) |

use anyhow::{bail, Result};
use jetrt::{CudaOptions, Isa, QIsa, SessionOptions};
use std::ffi::OsString;
use std::path::PathBuf;

/// Session options as the environment sets them, on top of the defaults.
pub fn session_options() -> Result<SessionOptions> {
    session_options_from(&|k| std::env::var_os(k))
}

/// [`session_options`] from any source of variables (tests).
pub fn session_options_from(var: &dyn Fn(&str) -> Option<OsString>) -> Result<SessionOptions> {
    let (cpu, int8) = kernels_from(var)?;
    let flag = |k: &str, default: bool| match var(k).map(|v| v.to_string_lossy().trim().to_string()).as_deref() {
        None | Some("") => default,
        Some(v) => v != "0",
    };
    let path = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let cuda = CudaOptions::default()
        .with_unverified_kernels(flag("JETRT_CUDA_UNVERIFIED", false))
        .with_sync_each_step(flag("JETRT_CUDA_SYNC", false))
        .with_graph(flag("JETRT_CUDA_GRAPH", true))
        .with_zero_copy(flag("JETRT_CUDA_ZERO_COPY", true))
        .with_kernel_cache_dir(cache_dir_from(var))
        .with_nvrtc(path("JETRT_NVRTC"));
    Ok(SessionOptions::default().with_cpu_kernels(cpu).with_int8_kernels(int8).with_cuda(cuda))
}

/// The kernel variants `JETRT_KERNELS` and `JETRT_INT8_KERNELS` name, if
/// set. A name no variant has is an error listing the known ones.
pub fn kernels() -> Result<(Option<Isa>, Option<QIsa>)> {
    kernels_from(&|k| std::env::var_os(k))
}

/// The converter's kernels, as [`kernels`] reads them.
pub fn converter_kernels() -> Result<jetrt_converter::Kernels> {
    let (cpu, int8) = kernels()?;
    Ok(jetrt_converter::Kernels { cpu, int8 })
}

fn kernels_from(var: &dyn Fn(&str) -> Option<OsString>) -> Result<(Option<Isa>, Option<QIsa>)> {
    Ok((named(var, "JETRT_KERNELS", &Isa::ALL, Isa::name)?, named(var, "JETRT_INT8_KERNELS", &QIsa::ALL, QIsa::name)?))
}

fn named<T: Copy>(var: &dyn Fn(&str) -> Option<OsString>, key: &str, all: &[T], name: fn(T) -> &'static str) -> Result<Option<T>> {
    let want = var(key).map(|v| v.to_string_lossy().trim().to_string()).unwrap_or_default();
    if want.is_empty() {
        return Ok(None);
    }
    match all.iter().find(|&&v| name(v) == want) {
        Some(&v) => Ok(Some(v)),
        None => {
            let known: Vec<_> = all.iter().map(|&v| name(v)).collect();
            bail!("{key}={want} names no kernel variant; known: {}", known.join(", "))
        }
    }
}

/// Where compiled GPU kernels are cached: `$JETRT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/jetrt`, else `~/.cache/jetrt`.
pub fn cache_dir() -> Option<PathBuf> {
    cache_dir_from(&|k| std::env::var_os(k))
}

fn cache_dir_from(var: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |k: &str| var(k).filter(|v| !v.is_empty());
    set("JETRT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| set("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("jetrt")))
        .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".cache/jetrt")))
}

/// Whether `JETRT_ROOT` points the tools at a copy of a board's files.
pub fn board_root_set() -> bool {
    std::env::var_os("JETRT_ROOT").is_some_and(|v| !v.is_empty())
}

/// The board root the memory check reads, or `None` when
/// `JETRT_MEMORY_CHECK=0` turns the check off.
pub fn memory_check_root() -> Option<PathBuf> {
    let off = std::env::var("JETRT_MEMORY_CHECK").is_ok_and(|v| v.trim() == "0");
    (!off).then(jetrt_boards::root)
}

/// What to add to a "does not fit" error.
pub const MEMORY_CHECK_HINT: &str = "set JETRT_MEMORY_CHECK=0 to load it anyway";

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn the_environment_fills_the_options_and_nothing_else_does() {
        let o = session_options_from(&vars(&[])).unwrap();
        assert_eq!(o.cpu_kernels, None);
        assert!(o.cuda.graph && o.cuda.zero_copy && !o.cuda.unverified_kernels && o.cuda.kernel_cache_dir.is_none());
        let o = session_options_from(&vars(&[
            ("JETRT_KERNELS", "generic"),
            ("JETRT_INT8_KERNELS", "portable"),
            ("JETRT_CUDA_UNVERIFIED", "1"),
            ("JETRT_CUDA_GRAPH", "0"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        assert_eq!((o.cpu_kernels, o.int8_kernels), (Some(Isa::Generic), Some(QIsa::Portable)));
        assert!(o.cuda.unverified_kernels && !o.cuda.graph);
        assert_eq!(o.cuda.kernel_cache_dir, Some(PathBuf::from("/home/u/.cache/jetrt")));
        let e = session_options_from(&vars(&[("JETRT_KERNELS", "sse2")])).unwrap_err().to_string();
        assert!(e.contains("JETRT_KERNELS=sse2") && e.contains("avx2_fma"), "{e}");
    }
}
