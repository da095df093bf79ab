//! Structure-aware fuzzing of the `.jrt` reader: the input is a list of
//! byte patches (4-byte offset, 1-byte value) applied to a valid model, whose
//! checksums are then recomputed, so every mutation reaches the deep checks
//! (tensors, steps, operands, arena offsets) instead of stopping at a
//! checksum. Whatever validates is run.
//!
//!     ASAN_OPTIONS=allocator_may_return_null=1 cargo fuzz run mutate
//!
//! (nightly, or RUSTC_BOOTSTRAP=1). A mutated file may declare an arena of
//! hundreds of gigabytes; the session must then fail with an error, which
//! needs the sanitizer's allocator to return null rather than abort.
#![no_main]

#[path = "../../runtime/tests/common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| common::small_model().to_bytes())
}

fuzz_target!(|data: &[u8]| {
    let mut b = base().to_vec();
    let mut patches = data.chunks_exact(5);
    for p in &mut patches {
        let at = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize % b.len();
        b[at] = p[4];
    }
    // A trailing partial patch truncates the file.
    if let Some(&cut) = patches.remainder().first() {
        let len = b.len() * cut as usize / 256;
        b.truncate(len.max(64));
    }
    common::reseal(&mut b);
    // Running a model is exercised up to a fuzzing-sized arena; a file may
    // legitimately declare gigabytes, which the fuzzer's allocator refuses.
    const MAX_SESSION_BYTES: usize = 256 << 20;
    if let Ok(model) = jetrt::Model::from_bytes(&b) {
        if model.info().memory.session_bytes(1) > MAX_SESSION_BYTES {
            return;
        }
        if let Ok(mut session) = model.session(jetrt::SessionOptions::default().with_threads(1)) {
            let _ = session.run_loaded();
        }
    }
});
