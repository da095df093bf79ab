//! The kernels as CUBIN for a GPU: the file's own image, else one cached
//! on disk by source hash, NVRTC version and architecture, else compiled by
//! NVRTC (and cached).

use super::nvrtc::Nvrtc;
use crate::options::CudaOptions;

/// File-name prefix of the CUBINs of this source for `arch`.
pub fn cubin_prefix(source: &str, arch: u32) -> String {
    format!("{:016x}-sm_{arch}", source_hash(source))
}

/// xxh3 of the kernel source: what a file's or the cache's images must be
/// built from to be used.
pub fn source_hash(source: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(source.as_bytes())
}

/// A cached CUBIN of this source for `arch` in `dir`: (bytes, NVRTC
/// version from its name).
fn cached_cubin(dir: &std::path::Path, source: &str, arch: u32) -> Option<(Vec<u8>, (u32, u32))> {
    let prefix = cubin_prefix(source, arch);
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix).and_then(|r| r.strip_prefix("-nvrtc")).and_then(|r| r.strip_suffix(".cubin")) else {
            continue;
        };
        let version = rest.split_once('.').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))).unwrap_or((0, 0));
        if let Ok(bytes) = std::fs::read(e.path()) {
            log::debug!("cuda: kernels for sm_{arch} from {}", e.path().display());
            return Some((bytes, version));
        }
    }
    None
}

/// The kernels compiled for `arch`: from the cache folder `dir` (none:
/// always compile), else by the first of `libs` that compiles for it (the
/// NVRTC found on this machine when `libs` is empty), then cached.
/// Returns the CUBIN and the NVRTC version that made it.
pub fn compile_kernels(arch: u32, libs: &[Nvrtc], dir: Option<&std::path::Path>) -> Result<(Vec<u8>, (u32, u32)), String> {
    let source = jetrt_kernels::cuda::source();
    if let Some(hit) = dir.and_then(|d| cached_cubin(d, &source, arch)) {
        return Ok(hit);
    }
    let found;
    let libs = if libs.is_empty() {
        found = [Nvrtc::find().map_err(|e| format!("no compiled kernels for sm_{arch} are cached and {e}"))?];
        &found[..]
    } else {
        libs
    };
    let mut errors = Vec::new();
    for nv in libs {
        let started = std::time::Instant::now();
        let cubin = match nv.compile_cubin(&source, "jetrt.cu", arch, &[]) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (maj, min) = nv.version();
        log::info!("cuda: compiled the kernels for sm_{arch} with NVRTC {maj}.{min} in {:.1} s", started.elapsed().as_secs_f64());
        if let Some(dir) = dir {
            let path = dir.join(format!("{}-nvrtc{maj}.{min}.cubin", cubin_prefix(&source, arch)));
            let tmp = dir.join(format!(".{}.{}.tmp", cubin_prefix(&source, arch), std::process::id()));
            let saved = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&tmp, &cubin)).and_then(|_| std::fs::rename(&tmp, &path));
            match saved {
                Ok(()) => log::debug!("cuda: cached {}", path.display()),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    log::warn!("cuda: cannot cache the kernels in {}: {e}", dir.display());
                }
            }
        }
        return Ok((cubin, (maj as u32, min as u32)));
    }
    Err(errors.join("\n"))
}

/// The kernels' CUBIN for `arch`: the file's own, else from the cache,
/// else compiled by NVRTC and cached.
pub(super) fn kernels_cubin<'m>(model: &'m crate::Model, arch: u32, options: &CudaOptions) -> Result<std::borrow::Cow<'m, [u8]>, String> {
    let source = jetrt_kernels::cuda::source();
    if let Some(img) = model.kernel_image(arch, source_hash(&source)) {
        log::debug!("cuda: kernels for sm_{arch} from the file");
        return Ok(img.into());
    }
    let images = model.info().kernel_images;
    if !images.is_empty() {
        let have: Vec<String> = images.iter().map(|k| format!("sm_{}", k.arch)).collect();
        log::info!(
            "cuda: the file's kernels ({}) are not for this GPU (sm_{arch}) or this jetrt version; using the cache or NVRTC",
            have.join(", ")
        );
    }
    let libs = match &options.nvrtc {
        Some(path) => vec![Nvrtc::open(path)?],
        None => Vec::new(),
    };
    Ok(compile_kernels(arch, &libs, options.kernel_cache_dir.as_deref().map(|d| d.join("cuda")).as_deref())?.0.into())
}
