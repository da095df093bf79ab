//! Memory budgets: what a model takes on a board (the mapped file, the
//! session's arena and scratch, and on a Jetson's GPU the device arena,
//! kernels and CUDA context) against what the board can spare once the OS
//! has its share (docs/BOARDS.md). `jetc convert --board` and
//! `jetc inspect --board` ask for a named board; every loader of the
//! `jetrt` tool asks [`check_fits`] before it allocates anything.

use crate::{Backend, Error, Model, Result};
use jetrt_boards::human_bytes;
use jetrt_boards::profiles::{Budget, Needs, Profile, CUDA_CONTEXT_BYTES};

/// What `m` takes with `threads` threads: on the CPU (`gpu_arch` None), or
/// on a Jetson's integrated GPU of that architecture (87 for sm_87), where
/// the device arena, the kernel modules and the CUDA context come out of
/// the same DRAM and the weights are read in place from the mapped file.
pub fn needs(m: &Model, threads: usize, gpu_arch: Option<u32>) -> Needs {
    let gpu_bytes = gpu_arch.map_or(0, |arch| {
        let info = m.info();
        let images = &info.kernel_images;
        // The module loaded for this architecture; without one, what NVRTC
        // builds is about as large as the file's largest.
        let kernels = images.iter().find(|k| k.arch == arch).or_else(|| images.iter().max_by_key(|k| k.bytes)).map_or(0, |k| k.bytes);
        info.memory.arena_bytes as u64 + kernels as u64 + CUDA_CONTEXT_BYTES
    });
    let memory = m.info().memory;
    Needs { file_bytes: memory.file_bytes as u64, session_bytes: memory.session_bytes(threads) as u64, gpu_bytes }
}

/// `m` on board `p`, with every core, on the device jetrt picks there by
/// default (the GPU from Xavier on, the CPU on Nano and TX2).
pub fn board_budget(m: &Model, p: &'static Profile) -> Budget {
    let arch = p.runs_cuda().then_some(p.compute_capability.0 * 10 + p.compute_capability.1);
    p.budget(needs(m, p.cpu_cores as usize, arch))
}

/// Why `b` does not fit, with every figure.
pub fn budget_message(b: &Budget, what: &str) -> String {
    let gpu = if b.needs.gpu_bytes > 0 {
        format!(" + GPU {} (device arena, kernels, CUDA context)", human_bytes(b.needs.gpu_bytes))
    } else {
        String::new()
    };
    format!(
        "{what} needs {} on {} (file {} + arena and scratch {}{gpu}), but the board can spare {}: {} of DRAM less {} kept \
         for the OS and other processes",
        human_bytes(b.needs_bytes()),
        b.board,
        human_bytes(b.needs.file_bytes),
        human_bytes(b.needs.session_bytes),
        human_bytes(b.spare_bytes),
        human_bytes(b.dram_bytes),
        human_bytes(b.reserve_bytes),
    )
}

/// The check `jetrt` makes before it allocates anything: `sessions`
/// sessions of the model against what this machine (its board profile,
/// else the memory its kernel reports) can spare; the board's files are
/// read under `root` (`/` on the board itself).
pub fn check_fits(m: &Model, backend: Backend, threads: usize, sessions: usize, root: &std::path::Path) -> Result<()> {
    let machine = jetrt_boards::machine(root);
    let threads = if threads == 0 { crate::available_threads() } else { threads };
    let sessions = sessions.max(1) as u64;
    // Each session has its own arena and scratch (and device arena); the
    // file, kernels and CUDA context are one per process.
    let many = |one: Needs| Needs {
        file_bytes: one.file_bytes,
        session_bytes: one.session_bytes * sessions,
        gpu_bytes: if one.gpu_bytes > 0 { one.gpu_bytes + (sessions - 1) * m.info().memory.arena_bytes as u64 } else { 0 },
    };
    let budget = match machine.profile {
        Some(p) => {
            let arch = (backend != Backend::Cpu && p.runs_cuda()).then_some(p.compute_capability.0 * 10 + p.compute_capability.1);
            p.budget(many(needs(m, threads, arch)))
        }
        // A discrete GPU has memory of its own: only host memory counts.
        None => match machine.dram_bytes {
            Some(dram) => Budget::generic(dram, many(needs(m, threads, None))),
            None => return Ok(()),
        },
    };
    if budget.fits() {
        return Ok(());
    }
    let what = m.path().map_or_else(|| "the model".to_string(), |p| p.display().to_string());
    let what = if sessions > 1 { format!("{what} with {sessions} sessions") } else { what };
    Err(Error::DoesNotFit(budget_message(&budget, &what)))
}
