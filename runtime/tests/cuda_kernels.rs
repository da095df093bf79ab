//! Kernel portability without a GPU: every CUDA kernel compiles to CUBIN
//! with NVRTC from PyPI, for sm_72 and sm_87 with CUDA 12 (Xavier, Orin)
//! and for sm_87 and sm_110 with CUDA 13 (Orin, Thor).
//!
//! tools/setup_venv.sh installs nvidia-cuda-nvrtc-cu12 and
//! nvidia-cuda-nvrtc into the repository's .venv. Without them the test
//! fails under CI=true and says loudly what it skipped otherwise.
// The venv's NVRTC is built for the machine that runs the tests (x86-64 in CI);
// the aarch64 build of this test under qemu has no NVRTC of its own to load.
#![cfg(all(feature = "cuda", target_arch = "x86_64"))]

use jetrt::host::Nvrtc;
use std::path::{Path, PathBuf};

/// `.venv/lib/python3.*/site-packages/<rel>`.
fn venv_lib(rel: &str) -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/lib");
    std::fs::read_dir(lib).ok()?.flatten().map(|d| d.path().join("site-packages").join(rel)).find(|p| p.exists())
}

fn nvrtc_or_skip(rel: &str) -> Option<Nvrtc> {
    match venv_lib(rel) {
        Some(p) => Some(Nvrtc::open(&p).unwrap_or_else(|e| panic!("{e}"))),
        None => {
            let msg = format!("{rel} is not in .venv (run tools/setup_venv.sh)");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

/// Compiles the kernels for each arch and checks that the CUBIN is an ELF
/// image holding every entry point.
fn compile_all(nv: &Nvrtc, archs: &[u32]) {
    let src = jetrt_kernels::cuda::source();
    for &arch in archs {
        let cubin = nv.compile_cubin(&src, "jetrt.cu", arch, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&cubin[..4], b"\x7fELF", "sm_{arch}: not an ELF CUBIN");
        for k in jetrt_kernels::cuda::KERNELS {
            assert!(cubin.windows(k.len()).any(|w| w == k.as_bytes()), "sm_{arch}: {k} missing from the CUBIN");
        }
        let (maj, min) = nv.version();
        eprintln!("NVRTC {maj}.{min}: sm_{arch} CUBIN {} bytes", cubin.len());
    }
}

#[test]
fn kernels_compile_with_cuda12_for_xavier_and_orin() {
    let Some(nv) = nvrtc_or_skip("nvidia/cuda_nvrtc/lib/libnvrtc.so.12") else { return };
    assert_eq!(nv.version().0, 12);
    compile_all(&nv, &[72, 87]);
}

#[test]
fn kernels_compile_with_cuda13_for_orin_and_thor() {
    let Some(nv) = nvrtc_or_skip("nvidia/cu13/lib/libnvrtc.so.13") else { return };
    assert_eq!(nv.version().0, 13);
    compile_all(&nv, &[87, 110]);
}

#[test]
fn a_compile_error_names_file_and_line() {
    let Some(nv) = nvrtc_or_skip("nvidia/cuda_nvrtc/lib/libnvrtc.so.12") else { return };
    let err =
        nv.compile_cubin("#line 1 \"bad.cu\"\nextern \"C\" __global__ void k() { undefined_thing(); }\n", "bad.cu", 87, &[]).unwrap_err();
    assert!(err.contains("bad.cu") && err.contains("undefined_thing"), "{err}");
}

#[test]
fn a_missing_library_is_an_error_not_a_panic() {
    let err = Nvrtc::open(Path::new("/nonexistent/libnvrtc.so.12")).unwrap_err();
    assert!(err.contains("/nonexistent/libnvrtc.so.12"), "{err}");
}
