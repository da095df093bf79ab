//! Host-side tools, for the converter and the build machine rather than
//! the device: building a drift reference from calibration runs, compiling
//! the GPU kernels ahead of time, and the int8 rounding rule the converter
//! must share with the kernels. A device program needs none of these.

pub use crate::monitor::reference::ReferenceBuilder;
/// How a Quantize step rounds one value (`x · inv_scale`, round half to
/// even, saturating): the converter computes with it what the runtime will.
pub use jetrt_kernels::cpu::int8::quantize_one;
/// Architectures `jetson` stands for: Xavier (72), Orin (87), Thor (110).
pub use jetrt_kernels::cuda::JETSON_ARCHS;

#[cfg(feature = "cuda")]
pub use crate::cuda::nvrtc::{search_description as nvrtc_search_description, Nvrtc};
#[cfg(feature = "cuda")]
pub use crate::cuda::{compile_kernels, cubin_prefix, source_hash};

/// The kernels' CUDA source, as one translation unit.
pub fn kernel_source() -> String {
    jetrt_kernels::cuda::source()
}

/// One kernel launch of a CUDA session's plan, as the lowering table makes
/// it: what `jetc inspect` and the tests read to check every launch
/// against the kernels' signatures without a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GpuLaunch {
    /// The step's index in the plan.
    pub step: usize,
    pub kernel: &'static str,
    pub grid: (u32, u32, u32),
    pub block: u32,
    pub params: Vec<GpuParam>,
}

/// The kind of one kernel parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuParam {
    Pointer,
    I32,
    F32,
    U64,
    /// A struct of this many bytes (rounded up to 8).
    Struct(usize),
}

/// The kernel launches a CUDA session of `model` with `options` would make
/// on a GPU of `multiprocessors` SMs (steps that fall back launch none;
/// device-to-device copies are left out). Needs no GPU.
pub fn gpu_launches(model: &crate::Model, options: &crate::SessionOptions, multiprocessors: usize) -> Vec<GpuLaunch> {
    use crate::cuda::launch::{lower, Arg, LaunchSpec, Lowering, Target};
    let target = Target { sms: multiprocessors.max(1), fp16: options.fp16 };
    let lowered = lower(model.plan(), model.weights(), &options.cuda, target);
    let mut out = Vec::new();
    for (step, l) in lowered.steps.into_iter().enumerate() {
        let Lowering::Gpu(launches) = l else { continue };
        for l in launches {
            let LaunchSpec::Kernel(k) = l else { continue };
            let params = k
                .args
                .iter()
                .map(|a| match a {
                    Arg::Ptr(_) => GpuParam::Pointer,
                    Arg::I32(_) => GpuParam::I32,
                    Arg::F32(_) => GpuParam::F32,
                    Arg::U64(_) => GpuParam::U64,
                    Arg::Struct(w) => GpuParam::Struct(8 * w.len()),
                })
                .collect();
            out.push(GpuLaunch { step, kernel: k.name, grid: k.grid, block: k.block, params });
        }
    }
    out
}

/// Architecture names (`72`, `sm_87`, `jetson` for Xavier, Orin and Thor)
/// as sorted architecture numbers; `flag` names the option in messages.
pub fn parse_cuda_archs(flag: &str, list: &[String]) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for a in list {
        let a = a.trim().to_ascii_lowercase();
        if a == "jetson" {
            out.extend_from_slice(JETSON_ARCHS);
            continue;
        }
        let n = a.strip_prefix("sm_").unwrap_or(&a);
        match n.parse::<u32>() {
            Ok(v) if (50..=200).contains(&v) => out.push(v),
            _ => return Err(format!("{flag} {a:?}: expected an architecture such as 72, sm_87 or `jetson`")),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The kernels compiled for each of `archs` by the NVRTC libraries at
/// `nvrtc` (each architecture uses the first that supports it; none: the
/// NVRTC found on this machine), from the cache folder `dir` where it has
/// them. `note` hears one line per architecture.
#[cfg(feature = "cuda")]
pub fn kernel_images(
    archs: &[u32],
    nvrtc: &[std::path::PathBuf],
    dir: Option<&std::path::Path>,
    note: &dyn Fn(&str),
) -> Result<Vec<jetrt_format::kernels::KernelImage>, String> {
    let libs = nvrtc.iter().map(|p| Nvrtc::open(p)).collect::<Result<Vec<_>, _>>()?;
    let hash = source_hash(&kernel_source());
    let mut out = Vec::new();
    for &a in archs {
        let t = std::time::Instant::now();
        let (image, nvrtc) = compile_kernels(a, &libs, dir).map_err(|e| {
            format!(
                "cannot compile the CUDA kernels for sm_{a}: {e}\n(CUDA 12's NVRTC builds sm_72 and sm_87, CUDA 13's sm_87 and \
                 sm_110: give both)"
            )
        })?;
        note(&format!(
            "cuda kernels for sm_{a}: {} (NVRTC {}.{}, {:.1} s)",
            jetrt_boards::human_bytes(image.len() as u64),
            nvrtc.0,
            nvrtc.1,
            t.elapsed().as_secs_f64()
        ));
        out.push(jetrt_format::kernels::KernelImage { arch: a, nvrtc, source_hash: hash, image });
    }
    Ok(out)
}
