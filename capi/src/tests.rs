//! The C API called as C calls it (through the extern functions), on a
//! model built in memory: results, every error path, and the header.
use super::*;
use jetrt_status::*;
use std::ptr::{null, null_mut};

fn last_error() -> String {
    // SAFETY: jetrt_last_error returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(jetrt_last_error()) }.to_string_lossy().into_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// The one-step model `y = Relu(x)`, `x` and `y` of shape [1, 4] f32.
fn open_example() -> *mut jetrt_model {
    let bytes = rt::doc_example_model();
    let mut m = null_mut();
    // SAFETY: bytes and &mut m are valid.
    assert_eq!(unsafe { jetrt_model_open_bytes(bytes.as_ptr().cast(), bytes.len(), &mut m) }, JETRT_OK, "{}", last_error());
    m
}

fn empty_info() -> jetrt_tensor_info {
    jetrt_tensor_info { name: null(), dtype: jetrt_dtype::JETRT_BOOL, rank: 0, shape: null(), nbytes: 0 }
}

#[test]
fn runs_a_model_and_describes_it() {
    let m = open_example();
    // SAFETY: every pointer below is live and of the right kind.
    unsafe {
        let (mut ni, mut no) = (0, 0);
        assert_eq!(jetrt_model_input_count(m, &mut ni), JETRT_OK);
        assert_eq!(jetrt_model_output_count(m, &mut no), JETRT_OK);
        assert_eq!((ni, no), (1, 1));
        let mut info = empty_info();
        assert_eq!(jetrt_model_input_info(m, 0, &mut info), JETRT_OK);
        assert_eq!(CStr::from_ptr(info.name).to_str(), Ok("x"));
        assert_eq!(info.dtype, jetrt_dtype::JETRT_F32);
        assert_eq!(std::slice::from_raw_parts(info.shape, info.rank), &[1, 4]);
        assert_eq!(info.nbytes, 16);
        let mut idx = 9;
        assert_eq!(jetrt_model_output_index(m, c("y").as_ptr(), &mut idx), JETRT_OK);
        assert_eq!(idx, 0);

        let mut o = null_mut();
        assert_eq!(jetrt_options_new(&mut o), JETRT_OK);
        assert_eq!(jetrt_options_set(o, c("threads").as_ptr(), c("2").as_ptr()), JETRT_OK);
        assert_eq!(jetrt_options_set(o, c("device").as_ptr(), c("cpu").as_ptr()), JETRT_OK);
        let mut s = null_mut();
        assert_eq!(jetrt_session_new(m, o, &mut s), JETRT_OK, "{}", last_error());
        jetrt_options_free(o);
        // The session keeps the model alive.
        jetrt_model_free(m);

        let x = [-1.0f32, 2.0, -3.0, 4.0];
        assert_eq!(jetrt_session_set_input(s, 0, x.as_ptr().cast(), 16), JETRT_OK, "{}", last_error());
        assert_eq!(jetrt_session_run(s), JETRT_OK, "{}", last_error());
        let (mut p, mut n) = (null(), 0);
        assert_eq!(jetrt_session_output(s, 0, &mut p, &mut n), JETRT_OK);
        assert_eq!(std::slice::from_raw_parts(p.cast::<f32>(), n / 4), &[0.0, 2.0, 0.0, 4.0]);

        // In place: write the arena, run, read.
        let (mut ip, mut in_) = (null_mut(), 0);
        assert_eq!(jetrt_session_input_buffer(s, 0, &mut ip, &mut in_), JETRT_OK);
        assert_eq!(in_, 16);
        std::slice::from_raw_parts_mut(ip.cast::<f32>(), 4).copy_from_slice(&[5.0, -6.0, 7.0, -8.0]);
        assert_eq!(jetrt_session_run(s), JETRT_OK);
        assert_eq!(jetrt_session_output(s, 0, &mut p, &mut n), JETRT_OK);
        assert_eq!(std::slice::from_raw_parts(p.cast::<f32>(), 4), &[5.0, 0.0, 7.0, 0.0]);
        jetrt_session_free(s);
    }
}

#[test]
fn every_bad_argument_gets_its_error() {
    let m = open_example();
    // SAFETY: the pointers are live or deliberately NULL, which every
    // function must refuse.
    unsafe {
        let mut out = null_mut();
        assert_eq!(jetrt_model_open(null(), &mut out), JETRT_INVALID_ARGUMENT);
        assert!(last_error().contains("path is NULL"), "{}", last_error());
        assert_eq!(jetrt_model_open(c("/nonexistent/m.jrt").as_ptr(), &mut out), JETRT_IO);
        assert!(last_error().contains("/nonexistent/m.jrt"), "{}", last_error());
        let junk = [7u8; 100];
        assert_eq!(jetrt_model_open_bytes(junk.as_ptr().cast(), junk.len(), &mut out), JETRT_INVALID_MODEL);
        assert!(last_error().starts_with("jetrt_model_open_bytes: "), "{}", last_error());
        assert_eq!(jetrt_model_open_bytes(null(), 4, &mut out), JETRT_INVALID_ARGUMENT);
        let mut n = 0;
        assert_eq!(jetrt_model_input_count(null(), &mut n), JETRT_INVALID_ARGUMENT);
        assert_eq!(jetrt_model_input_count(m, null_mut()), JETRT_INVALID_ARGUMENT);
        let mut info = empty_info();
        assert_eq!(jetrt_model_output_info(m, 3, &mut info), JETRT_INVALID_ARGUMENT);
        assert!(last_error().contains("output index 3 out of range: the model has 1"), "{}", last_error());
        assert_eq!(jetrt_model_input_index(m, c("image").as_ptr(), &mut n), JETRT_INVALID_ARGUMENT);
        assert!(last_error().contains(r#"no input named "image"; the model's inputs are ["x"]"#), "{}", last_error());

        let mut o = null_mut();
        assert_eq!(jetrt_options_new(&mut o), JETRT_OK);
        assert_eq!(jetrt_options_set(o, c("treads").as_ptr(), c("2").as_ptr()), JETRT_INVALID_ARGUMENT);
        assert!(last_error().contains("unknown option \"treads\"; known: device, threads"), "{}", last_error());
        assert_eq!(jetrt_options_set(o, c("threads").as_ptr(), c("many").as_ptr()), JETRT_INVALID_ARGUMENT);
        assert_eq!(jetrt_options_set(o, c("device").as_ptr(), c("tpu").as_ptr()), JETRT_INVALID_ARGUMENT);
        assert_eq!(jetrt_options_set(o, c("cpu_kernels").as_ptr(), c("sse9").as_ptr()), JETRT_INVALID_ARGUMENT);
        assert!(last_error().contains("known: auto, "), "{}", last_error());
        assert_eq!(jetrt_options_set(o, c("fp16").as_ptr(), c("maybe").as_ptr()), JETRT_INVALID_ARGUMENT);
        let bad = [0xffu8, 0];
        assert_eq!(jetrt_options_set(o, bad.as_ptr().cast(), c("1").as_ptr()), JETRT_INVALID_ARGUMENT);
        assert!(last_error().contains("key is not UTF-8"), "{}", last_error());
        // fp16 is a GPU option: a CPU session asking for it is refused.
        assert_eq!(jetrt_options_set(o, c("device").as_ptr(), c("cpu").as_ptr()), JETRT_OK);
        assert_eq!(jetrt_options_set(o, c("fp16").as_ptr(), c("1").as_ptr()), JETRT_OK);
        let mut s = null_mut();
        assert_ne!(jetrt_session_new(m, o, &mut s), JETRT_OK);
        assert!(s.is_null());
        jetrt_options_free(o);

        assert_eq!(jetrt_session_new(m, null(), null_mut()), JETRT_INVALID_ARGUMENT);
        assert_eq!(jetrt_session_new(m, null(), &mut s), JETRT_OK, "{}", last_error());
        assert_eq!(jetrt_session_run(s), JETRT_INVALID_INPUT);
        assert!(last_error().contains(r#"input "x" (index 0) was never set"#), "{}", last_error());
        let x = [1.0f32; 3];
        assert_eq!(jetrt_session_set_input(s, 0, x.as_ptr().cast(), 12), JETRT_INVALID_INPUT);
        assert!(last_error().contains("needs 16 bytes, the buffer has 12"), "{}", last_error());
        assert_eq!(jetrt_session_set_input(s, 1, x.as_ptr().cast(), 16), JETRT_INVALID_ARGUMENT);
        assert_eq!(jetrt_session_set_input(s, 0, null(), 16), JETRT_INVALID_ARGUMENT);
        let (mut p, mut n) = (null(), 0);
        assert_eq!(jetrt_session_output(s, 1, &mut p, &mut n), JETRT_INVALID_ARGUMENT);
        assert_eq!(jetrt_session_output(s, 0, null_mut(), &mut n), JETRT_INVALID_ARGUMENT);
        assert_eq!(jetrt_session_reload(s, c("/nonexistent/m.jrt").as_ptr()), JETRT_IO);
        assert_eq!(jetrt_session_run(null_mut()), JETRT_INVALID_ARGUMENT);
        jetrt_session_free(s);

        jetrt_model_free(null_mut());
        jetrt_options_free(null_mut());
        jetrt_session_free(null_mut());
        jetrt_model_free(m);
    }
}

#[test]
fn reload_swaps_the_model_and_keeps_the_session_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.jrt");
    std::fs::write(&path, rt::doc_example_model()).expect("write");
    let bad = dir.path().join("bad.jrt");
    std::fs::write(&bad, b"not a model").expect("write");
    let (p, bad) = (c(path.to_str().expect("utf-8")), c(bad.to_str().expect("utf-8")));
    // SAFETY: live pointers throughout.
    unsafe {
        let mut m = null_mut();
        assert_eq!(jetrt_model_open(p.as_ptr(), &mut m), JETRT_OK);
        let mut s = null_mut();
        assert_eq!(jetrt_session_new(m, null(), &mut s), JETRT_OK);
        let x = [1.0f32, -1.0, 1.0, -1.0];
        assert_eq!(jetrt_session_set_input(s, 0, x.as_ptr().cast(), 16), JETRT_OK);
        assert_eq!(jetrt_session_reload(s, bad.as_ptr()), JETRT_INVALID_MODEL);
        // Still the old model, inputs still set.
        assert_eq!(jetrt_session_run(s), JETRT_OK, "{}", last_error());
        assert_eq!(jetrt_session_reload(s, p.as_ptr()), JETRT_OK, "{}", last_error());
        assert_eq!(jetrt_session_run(s), JETRT_INVALID_INPUT, "inputs must be set again after a reload");
        assert_eq!(jetrt_session_set_input(s, 0, x.as_ptr().cast(), 16), JETRT_OK);
        assert_eq!(jetrt_session_run(s), JETRT_OK);
        jetrt_session_free(s);
        jetrt_model_free(m);
    }
}

#[test]
fn last_error_is_per_thread() {
    // SAFETY: a NULL path is refused.
    assert_eq!(unsafe { jetrt_model_open(null(), null_mut()) }, JETRT_INVALID_ARGUMENT);
    let here = last_error();
    let there = std::thread::spawn(last_error).join().expect("thread");
    assert!(here.contains("path is NULL") && there.is_empty(), "{here:?} / {there:?}");
}

#[test]
fn versions_agree() {
    let v: Vec<u32> = env!("CARGO_PKG_VERSION").split('.').map(|p| p.parse().expect("number")).collect();
    assert_eq!(v, [JETRT_VERSION_MAJOR, JETRT_VERSION_MINOR, JETRT_VERSION_PATCH]);
    // SAFETY: a static NUL-terminated string.
    assert_eq!(unsafe { CStr::from_ptr(jetrt_version()) }.to_str(), Ok(env!("CARGO_PKG_VERSION")));
    assert_eq!(jetrt_abi_version(), JETRT_ABI_VERSION);
    let build = include_str!("../build.rs");
    assert!(build.contains(&format!("let abi = {JETRT_ABI_VERSION};")), "build.rs's soname and JETRT_ABI_VERSION differ");
}

/// include/jetrt.h is what cbindgen makes of this crate now.
#[test]
fn header_is_fresh() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new().with_crate(dir).with_config(config).generate().expect("cbindgen").write(&mut generated);
    let path = format!("{dir}/../include/jetrt.h");
    let checked_in = std::fs::read(&path).unwrap_or_default();
    if generated != checked_in {
        if std::env::var_os("JETRT_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("write include/jetrt.h");
            return;
        }
        panic!("include/jetrt.h is stale: run JETRT_BLESS=1 cargo test -p jetrt-capi header_is_fresh and commit it");
    }
}
