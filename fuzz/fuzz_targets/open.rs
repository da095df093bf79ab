//! Fuzzes the `.jrt` reader: no byte string may make `Model::open` (here
//! `from_bytes`, the same validation) panic, loop or read out of bounds; and
//! whatever validates must run without panicking.
//!
//!     cargo fuzz run open            (nightly, or RUSTC_BOOTSTRAP=1)
//!
//! Seed the corpus with real files: `jetc convert ... -o fuzz/corpus/open/x.jrt`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Running a model is exercised up to a fuzzing-sized arena; a file may
    // legitimately declare gigabytes, which the fuzzer's allocator refuses.
    const MAX_SESSION_BYTES: usize = 256 << 20;
    if let Ok(model) = jetrt::Model::from_bytes(data) {
        if model.info().memory.session_bytes(1) > MAX_SESSION_BYTES {
            return;
        }
        if let Ok(mut session) = model.session(jetrt::SessionOptions::default().with_threads(1)) {
            let _ = session.run_loaded();
        }
    }
});
