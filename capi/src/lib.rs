//! The C API of jetrt: `libjetrt.so` (soname `libjetrt.so.1`), `libjetrt.a`
//! and `include/jetrt.h`, which cbindgen generates from this file (a test
//! fails when the checked-in header is stale; `JETRT_BLESS=1 cargo test -p
//! jetrt-capi` rewrites it). docs/C.md is the guide.
//!
//! Rules every function keeps:
//! - it returns a `jetrt_status`; on failure the calling thread's
//!   `jetrt_last_error` says what went wrong, in the runtime's words;
//! - no Rust panic crosses the boundary: one is caught and returned as
//!   `jetrt_status::JETRT_INTERNAL`;
//! - NULL where a pointer is required is `jetrt_status::JETRT_INVALID_ARGUMENT`,
//!   and every `_free` takes NULL and does nothing;
//! - functions are only ever appended: the ABI version
//!   (`JETRT_ABI_VERSION`, `jetrt_abi_version`, the soname) changes only
//!   when one changes or goes. Options are key/value strings, so new ones
//!   do not change it.
#![allow(non_camel_case_types)]

use rt::{Backend, DType, Isa, Model, QIsa, Session, SessionOptions, TensorRef};
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The ABI version: the soname's number (`libjetrt.so.1`). A program
/// compiled against this header can check it against `jetrt_abi_version`.
pub const JETRT_ABI_VERSION: u32 = 1;
/// The library's version (the runtime's), as numbers.
pub const JETRT_VERSION_MAJOR: u32 = 0;
pub const JETRT_VERSION_MINOR: u32 = 1;
pub const JETRT_VERSION_PATCH: u32 = 0;

/// What a call returns.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jetrt_status {
    JETRT_OK = 0,
    /// A NULL or invalid argument: an index out of range, an unknown name
    /// or option, a string that is not UTF-8.
    JETRT_INVALID_ARGUMENT = 1,
    /// A file could not be read.
    JETRT_IO = 2,
    /// The file is not a valid `.jrt` model (corrupt, truncated, from a
    /// newer converter).
    JETRT_INVALID_MODEL = 3,
    /// An input of the wrong size, or one that was never set.
    JETRT_INVALID_INPUT = 4,
    /// What was asked for is not available here: the CUDA backend without
    /// a usable GPU, a kernel variant the CPU lacks, a model too large for
    /// the machine's memory.
    JETRT_UNAVAILABLE = 5,
    /// The run failed (a GPU error, say).
    JETRT_RUNTIME = 6,
    /// A bug in jetrt (a panic, caught): please report the message.
    JETRT_INTERNAL = 7,
}

/// Element type of a tensor (the values of the `.jrt` format).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jetrt_dtype {
    JETRT_F32 = 1,
    JETRT_F16 = 2,
    JETRT_BF16 = 3,
    JETRT_F64 = 4,
    JETRT_I8 = 5,
    JETRT_U8 = 6,
    JETRT_I16 = 7,
    JETRT_U16 = 8,
    JETRT_I32 = 9,
    JETRT_U32 = 10,
    JETRT_I64 = 11,
    JETRT_U64 = 12,
    JETRT_BOOL = 13,
}

impl From<DType> for jetrt_dtype {
    fn from(d: DType) -> Self {
        use jetrt_dtype::*;
        match d {
            DType::F32 => JETRT_F32,
            DType::F16 => JETRT_F16,
            DType::BF16 => JETRT_BF16,
            DType::F64 => JETRT_F64,
            DType::I8 => JETRT_I8,
            DType::U8 => JETRT_U8,
            DType::I16 => JETRT_I16,
            DType::U16 => JETRT_U16,
            DType::I32 => JETRT_I32,
            DType::U32 => JETRT_U32,
            DType::I64 => JETRT_I64,
            DType::U64 => JETRT_U64,
            DType::Bool => JETRT_BOOL,
        }
    }
}

/// Name, element type and shape of a model input or output. The pointers
/// belong to the model and stay valid until it is freed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jetrt_tensor_info {
    /// NUL-terminated, UTF-8.
    pub name: *const c_char,
    pub dtype: jetrt_dtype,
    /// Number of dimensions (0 for a scalar).
    pub rank: usize,
    /// `rank` dimensions; a `.jrt` model's shapes are fixed.
    pub shape: *const i64,
    /// Bytes of the whole tensor.
    pub nbytes: usize,
}

/// An opened `.jrt` model: mapped and validated, immutable. Thread-safe:
/// one model may make sessions on several threads at once.
pub struct jetrt_model {
    model: Model,
    inputs: Vec<Info>,
    outputs: Vec<Info>,
}

/// A tensor's description, owned for the C side.
struct Info {
    name: CString,
    dtype: jetrt_dtype,
    shape: Vec<i64>,
    nbytes: usize,
}

impl Info {
    fn new(t: &rt::TensorInfo) -> Info {
        // Names come from the validated file; a NUL inside one is cut there.
        let name = CString::new(t.name.split('\0').next().unwrap_or_default()).unwrap_or_default();
        Info { name, dtype: t.dtype.into(), shape: t.shape.iter().map(|&d| d as i64).collect(), nbytes: t.nbytes() }
    }
    fn c(&self) -> jetrt_tensor_info {
        jetrt_tensor_info {
            name: self.name.as_ptr(),
            dtype: self.dtype,
            rank: self.shape.len(),
            shape: self.shape.as_ptr(),
            nbytes: self.nbytes,
        }
    }
}

/// Session options: key/value strings (see `jetrt_options_set`). Not
/// thread-safe; a session copies them when it is made.
pub struct jetrt_options {
    options: SessionOptions,
}

/// A model ready to run, with its memory allocated once. Not thread-safe:
/// one thread at a time (sessions of the same model run in parallel on
/// different threads). It holds its own reference to the model, which may
/// be freed first.
pub struct jetrt_session {
    session: Session,
    options: SessionOptions,
    /// The model's inputs (read once: set_input runs every frame).
    inputs: Vec<rt::TensorInfo>,
    outputs: usize,
    /// Whether each input was set since the session was made (or
    /// reloaded): running before would read an arena of zeros.
    set: Vec<bool>,
}

impl jetrt_session {
    fn new(model: &Model, options: SessionOptions) -> Result<jetrt_session, Fail> {
        let session = model.session(options.clone())?;
        let inputs = model.inputs();
        Ok(jetrt_session { session, options, set: vec![false; inputs.len()], inputs, outputs: model.outputs().len() })
    }
}

/// A failed call: its status and message.
struct Fail {
    status: jetrt_status,
    message: String,
}

impl Fail {
    fn arg(message: impl Into<String>) -> Fail {
        Fail { status: jetrt_status::JETRT_INVALID_ARGUMENT, message: message.into() }
    }
}

impl From<rt::Error> for Fail {
    fn from(e: rt::Error) -> Fail {
        use jetrt_status::*;
        use rt::Error as E;
        let status = match &e {
            E::Io { .. } => JETRT_IO,
            E::Format(_) => JETRT_INVALID_MODEL,
            E::InputCount { .. } | E::InputDType { .. } | E::InputShape { .. } | E::InputLength { .. } => JETRT_INVALID_INPUT,
            E::UnknownInput { .. } | E::UnknownOutput { .. } | E::Options(_) => JETRT_INVALID_ARGUMENT,
            E::BackendUnavailable { .. } | E::DoesNotFit(_) => JETRT_UNAVAILABLE,
            _ => JETRT_RUNTIME,
        };
        Fail { status, message: e.chain() }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// Runs `f` as the body of API function `what`: its error becomes the
/// status and the thread's last error, and a panic is caught.
fn guard(what: &str, f: impl FnOnce() -> Result<(), Fail>) -> jetrt_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => jetrt_status::JETRT_OK,
        Ok(Err(fail)) => {
            set_last_error(&format!("{what}: {}", fail.message));
            fail.status
        }
        Err(panic) => {
            let msg = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            set_last_error(&format!(
                "{what}: internal error (a bug in jetrt; please report it): {}",
                msg.as_deref().unwrap_or("panic without a message")
            ));
            jetrt_status::JETRT_INTERNAL
        }
    }
}

/// `p` as a reference, or the error naming the argument.
///
/// Safety: `p` is NULL or points at a live `T`.
unsafe fn arg<'a, T>(p: *const T, name: &str) -> Result<&'a T, Fail> {
    // SAFETY: the caller's promise.
    unsafe { p.as_ref() }.ok_or_else(|| Fail::arg(format!("{name} is NULL")))
}

/// `p` as a mutable reference, or the error naming the argument.
///
/// Safety: `p` is NULL or points at a live `T` nobody else uses now.
unsafe fn arg_mut<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T, Fail> {
    // SAFETY: the caller's promise.
    unsafe { p.as_mut() }.ok_or_else(|| Fail::arg(format!("{name} is NULL")))
}

/// A NUL-terminated UTF-8 string argument.
///
/// Safety: `p` is NULL or a NUL-terminated string.
unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::arg(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated (the caller's promise).
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Fail::arg(format!("{name} is not UTF-8")))
}

/// Stores `v` at the out-pointer `out`.
///
/// Safety: `out` is NULL or writable.
unsafe fn put<T>(out: *mut T, name: &str, v: T) -> Result<(), Fail> {
    if out.is_null() {
        return Err(Fail::arg(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and writable (the caller's promise).
    unsafe { out.write(v) };
    Ok(())
}

/// The library's version, e.g. `"0.1.0"` (static storage).
#[no_mangle]
pub extern "C" fn jetrt_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// The ABI version of the loaded library (`JETRT_ABI_VERSION` of the
/// header it was built with).
#[no_mangle]
pub extern "C" fn jetrt_abi_version() -> u32 {
    JETRT_ABI_VERSION
}

/// The message of the last failed call on this thread ("" when none):
/// valid until the next failed call on this thread. Thread-safe.
#[no_mangle]
pub extern "C" fn jetrt_last_error() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

fn model_handle(model: Model) -> *mut jetrt_model {
    let inputs = model.inputs().iter().map(Info::new).collect();
    let outputs = model.outputs().iter().map(Info::new).collect();
    Box::into_raw(Box::new(jetrt_model { model, inputs, outputs }))
}

/// Opens the `.jrt` file at `path` (memory-mapped, every byte validated)
/// into `*out`; free it with `jetrt_model_free`.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_open(path: *const c_char, out: *mut *mut jetrt_model) -> jetrt_status {
    guard("jetrt_model_open", || {
        // SAFETY: the caller's promises (NULL is an error).
        let path = unsafe { arg_str(path, "path") }?;
        // Checked before the model exists, so that an error leaks nothing.
        if out.is_null() {
            return Err(Fail::arg("out is NULL"));
        }
        let model = Model::open(path)?;
        // SAFETY: as above.
        unsafe { put(out, "out", model_handle(model)) }
    })
}

/// Opens a `.jrt` model from `len` bytes at `data` (copied: the caller may
/// free them when this returns) into `*out`.
///
/// # Safety
/// `data` addresses `len` readable bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_open_bytes(data: *const c_void, len: usize, out: *mut *mut jetrt_model) -> jetrt_status {
    guard("jetrt_model_open_bytes", || {
        if data.is_null() || out.is_null() {
            return Err(Fail::arg(if data.is_null() { "data is NULL" } else { "out is NULL" }));
        }
        // SAFETY: data addresses len readable bytes (the caller's promise).
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        let model = Model::from_bytes(bytes)?;
        // SAFETY: the caller's promise.
        unsafe { put(out, "out", model_handle(model)) }
    })
}

/// Frees a model (NULL: nothing). Sessions made from it keep working.
///
/// # Safety
/// `model` is NULL or from `jetrt_model_open*`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_free(model: *mut jetrt_model) {
    if !model.is_null() {
        // SAFETY: from Box::into_raw, freed once (the caller's promise).
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(model) })));
    }
}

/// The number of inputs into `*out`.
///
/// # Safety
/// `model` is a live model; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_input_count(model: *const jetrt_model, out: *mut usize) -> jetrt_status {
    guard("jetrt_model_input_count", || {
        // SAFETY: the caller's promises.
        let m = unsafe { arg(model, "model") }?;
        unsafe { put(out, "out", m.inputs.len()) }
    })
}

/// The number of outputs into `*out`.
///
/// # Safety
/// `model` is a live model; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_output_count(model: *const jetrt_model, out: *mut usize) -> jetrt_status {
    guard("jetrt_model_output_count", || {
        // SAFETY: the caller's promises.
        let m = unsafe { arg(model, "model") }?;
        unsafe { put(out, "out", m.outputs.len()) }
    })
}

fn info_at(list: &[Info], index: usize, what: &str) -> Result<jetrt_tensor_info, Fail> {
    list.get(index).map(Info::c).ok_or_else(|| Fail::arg(format!("{what} index {index} out of range: the model has {}", list.len())))
}

/// Input `index`'s name, dtype and shape into `*out` (pointers owned by the
/// model).
///
/// # Safety
/// `model` is a live model; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_input_info(model: *const jetrt_model, index: usize, out: *mut jetrt_tensor_info) -> jetrt_status {
    guard("jetrt_model_input_info", || {
        // SAFETY: the caller's promises.
        let m = unsafe { arg(model, "model") }?;
        unsafe { put(out, "out", info_at(&m.inputs, index, "input")?) }
    })
}

/// Output `index`'s name, dtype and shape into `*out` (pointers owned by
/// the model).
///
/// # Safety
/// `model` is a live model; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_output_info(model: *const jetrt_model, index: usize, out: *mut jetrt_tensor_info) -> jetrt_status {
    guard("jetrt_model_output_info", || {
        // SAFETY: the caller's promises.
        let m = unsafe { arg(model, "model") }?;
        unsafe { put(out, "out", info_at(&m.outputs, index, "output")?) }
    })
}

fn index_of(list: &[Info], name: &str, what: &str) -> Result<usize, Fail> {
    list.iter().position(|i| i.name.to_bytes() == name.as_bytes()).ok_or_else(|| {
        let known: Vec<_> = list.iter().map(|i| i.name.to_string_lossy().into_owned()).collect();
        Fail::arg(format!("no {what} named {name:?}; the model's {what}s are {known:?}"))
    })
}

/// The index of the input named `name` into `*out`.
///
/// # Safety
/// `model` is a live model; `name` a NUL-terminated string; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_input_index(model: *const jetrt_model, name: *const c_char, out: *mut usize) -> jetrt_status {
    guard("jetrt_model_input_index", || {
        // SAFETY: the caller's promises.
        let (m, name) = unsafe { (arg(model, "model")?, arg_str(name, "name")?) };
        unsafe { put(out, "out", index_of(&m.inputs, name, "input")?) }
    })
}

/// The index of the output named `name` into `*out`.
///
/// # Safety
/// `model` is a live model; `name` a NUL-terminated string; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_model_output_index(model: *const jetrt_model, name: *const c_char, out: *mut usize) -> jetrt_status {
    guard("jetrt_model_output_index", || {
        // SAFETY: the caller's promises.
        let (m, name) = unsafe { (arg(model, "model")?, arg_str(name, "name")?) };
        unsafe { put(out, "out", index_of(&m.outputs, name, "output")?) }
    })
}

/// New session options, the defaults (device auto, threads 0: what the
/// process may use), into `*out`; free them with `jetrt_options_free`.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_options_new(out: *mut *mut jetrt_options) -> jetrt_status {
    guard("jetrt_options_new", || {
        let o = Box::into_raw(Box::new(jetrt_options { options: SessionOptions::default() }));
        // SAFETY: the caller's promise; on failure the box is freed again.
        unsafe { put(out, "out", o) }.inspect_err(|_| drop(unsafe { Box::from_raw(o) }))
    })
}

/// The keys `jetrt_options_set` knows.
const OPTION_KEYS: &[&str] = &[
    "device",
    "threads",
    "cpu_kernels",
    "int8_kernels",
    "fp16",
    "cuda_graph",
    "cuda_zero_copy",
    "cuda_kernel_cache_dir",
    "cuda_nvrtc",
    "cuda_unverified_kernels",
];

fn flag(key: &str, value: &str) -> Result<bool, Fail> {
    match value {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(Fail::arg(format!("option {key}: {value:?} is not a boolean (1/0, true/false, on/off, yes/no)"))),
    }
}

fn variant<T: Copy>(key: &str, value: &str, all: &[T], name: fn(T) -> &'static str) -> Result<Option<T>, Fail> {
    if value == "auto" {
        return Ok(None);
    }
    all.iter().copied().find(|&v| name(v) == value).map(Some).ok_or_else(|| {
        let known: Vec<_> = all.iter().map(|&v| name(v)).collect();
        Fail::arg(format!("option {key}: no kernel variant {value:?}; known: auto, {}", known.join(", ")))
    })
}

fn set_option(o: SessionOptions, key: &str, value: &str) -> Result<SessionOptions, Fail> {
    let path = |v: &str| (!v.is_empty()).then(|| std::path::PathBuf::from(v));
    Ok(match key {
        "device" => o.with_backend(match value {
            "auto" => Backend::Auto,
            "cpu" => Backend::Cpu,
            "cuda" => Backend::Cuda,
            _ => return Err(Fail::arg(format!("option device: {value:?} is not one of auto, cpu, cuda"))),
        }),
        "threads" => o.with_threads(
            value.parse().map_err(|_| Fail::arg(format!("option threads: {value:?} is not a count (0: all the process may use)")))?,
        ),
        "cpu_kernels" => o.with_cpu_kernels(variant(key, value, &Isa::ALL, Isa::name)?),
        "int8_kernels" => o.with_int8_kernels(variant(key, value, &QIsa::ALL, QIsa::name)?),
        "fp16" => o.with_fp16(flag(key, value)?),
        "cuda_graph" => {
            let cuda = o.cuda.clone().with_graph(flag(key, value)?);
            o.with_cuda(cuda)
        }
        "cuda_zero_copy" => {
            let cuda = o.cuda.clone().with_zero_copy(flag(key, value)?);
            o.with_cuda(cuda)
        }
        "cuda_unverified_kernels" => {
            let cuda = o.cuda.clone().with_unverified_kernels(flag(key, value)?);
            o.with_cuda(cuda)
        }
        "cuda_kernel_cache_dir" => {
            let cuda = o.cuda.clone().with_kernel_cache_dir(path(value));
            o.with_cuda(cuda)
        }
        "cuda_nvrtc" => {
            let cuda = o.cuda.clone().with_nvrtc(path(value));
            o.with_cuda(cuda)
        }
        _ => return Err(Fail::arg(format!("unknown option {key:?}; known: {}", OPTION_KEYS.join(", ")))),
    })
}

/// Sets option `key` to `value`; an unknown key or a bad value is
/// `JETRT_INVALID_ARGUMENT` and changes nothing. Keys:
/// - `device`: `auto` (the GPU when one works, else the CPU), `cpu`, `cuda`;
/// - `threads`: threads in all, the caller's included; `0` (the default):
///   what the process may use (its CPU affinity and cgroup quota);
/// - `cpu_kernels`, `int8_kernels`: a kernel variant instead of the best
///   detected (`auto`), e.g. `avx2_fma`, `avx2`;
/// - `fp16`: `1` multiplies in fp16 on the GPU's tensor cores;
/// - `cuda_graph`, `cuda_zero_copy`, `cuda_unverified_kernels`: `1`/`0`;
///   `cuda_kernel_cache_dir`, `cuda_nvrtc`: paths (`""`: the default).
///
/// # Safety
/// `options` is live; `key` and `value` are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn jetrt_options_set(options: *mut jetrt_options, key: *const c_char, value: *const c_char) -> jetrt_status {
    guard("jetrt_options_set", || {
        // SAFETY: the caller's promises.
        let (o, key, value) = unsafe { (arg_mut(options, "options")?, arg_str(key, "key")?, arg_str(value, "value")?) };
        o.options = set_option(o.options.clone(), key, value.trim())?;
        Ok(())
    })
}

/// Frees options (NULL: nothing).
///
/// # Safety
/// `options` is NULL or from `jetrt_options_new`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn jetrt_options_free(options: *mut jetrt_options) {
    if !options.is_null() {
        // SAFETY: from Box::into_raw, freed once (the caller's promise).
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(options) })));
    }
}

/// A session of `model` with `options` (NULL: the defaults) into `*out`:
/// its memory is allocated here, once. Free it with `jetrt_session_free`.
///
/// # Safety
/// `model` is live; `options` is NULL or live; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_session_new(
    model: *const jetrt_model,
    options: *const jetrt_options,
    out: *mut *mut jetrt_session,
) -> jetrt_status {
    guard("jetrt_session_new", || {
        // SAFETY: the caller's promises.
        let m = unsafe { arg(model, "model") }?;
        let options = unsafe { options.as_ref() }.map(|o| o.options.clone()).unwrap_or_default();
        if out.is_null() {
            return Err(Fail::arg("out is NULL"));
        }
        let s = Box::into_raw(Box::new(jetrt_session::new(&m.model, options)?));
        // SAFETY: out is non-NULL and writable.
        unsafe { out.write(s) };
        Ok(())
    })
}

/// Frees a session (NULL: nothing): its memory and threads.
///
/// # Safety
/// `session` is NULL or from `jetrt_session_new`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn jetrt_session_free(session: *mut jetrt_session) {
    if !session.is_null() {
        // SAFETY: from Box::into_raw, freed once (the caller's promise).
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(session) })));
    }
}

fn input_index(s: &jetrt_session, index: usize) -> Result<usize, Fail> {
    if index < s.set.len() {
        Ok(index)
    } else {
        Err(Fail::arg(format!("input index {index} out of range: the model has {}", s.set.len())))
    }
}

/// Copies input `index` from `nbytes` bytes at `data`: the input's dtype
/// and shape as the model has them (`jetrt_model_input_info`), C order;
/// another size is `JETRT_INVALID_INPUT`.
///
/// # Safety
/// `session` is live and used by no other thread now; `data` addresses
/// `nbytes` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn jetrt_session_set_input(
    session: *mut jetrt_session,
    index: usize,
    data: *const c_void,
    nbytes: usize,
) -> jetrt_status {
    guard("jetrt_session_set_input", || {
        // SAFETY: the caller's promises.
        let s = unsafe { arg_mut(session, "session") }?;
        let index = input_index(s, index)?;
        if data.is_null() {
            return Err(Fail::arg("data is NULL"));
        }
        // SAFETY: data addresses nbytes readable bytes (the caller's promise).
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), nbytes) };
        let t = &s.inputs[index];
        s.session.set_input(index, TensorRef::from_bytes(t.dtype, &t.shape, bytes))?;
        s.set[index] = true;
        Ok(())
    })
}

/// Input `index`'s memory in the session (`*data`, `*nbytes`), to write the
/// input in place instead of copying it with `jetrt_session_set_input`;
/// the input counts as set. Valid until the session is freed or reloaded;
/// write it only between runs.
///
/// # Safety
/// `session` is live and used by no other thread now; `data` and `nbytes`
/// are writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_session_input_buffer(
    session: *mut jetrt_session,
    index: usize,
    data: *mut *mut c_void,
    nbytes: *mut usize,
) -> jetrt_status {
    guard("jetrt_session_input_buffer", || {
        // SAFETY: the caller's promises.
        let s = unsafe { arg_mut(session, "session") }?;
        let index = input_index(s, index)?;
        if data.is_null() || nbytes.is_null() {
            return Err(Fail::arg(if data.is_null() { "data is NULL" } else { "nbytes is NULL" }));
        }
        let (p, n) = s.session.input_buffer(index)?;
        s.set[index] = true;
        // SAFETY: both out-pointers are non-NULL and writable.
        unsafe {
            data.write(p.cast());
            nbytes.write(n);
        }
        Ok(())
    })
}

/// Runs the model on the inputs set (each must have been set at least
/// once; later runs reuse what is there). Allocates nothing.
///
/// # Safety
/// `session` is live and used by no other thread now.
#[no_mangle]
pub unsafe extern "C" fn jetrt_session_run(session: *mut jetrt_session) -> jetrt_status {
    guard("jetrt_session_run", || {
        // SAFETY: the caller's promise.
        let s = unsafe { arg_mut(session, "session") }?;
        if let Some(i) = s.set.iter().position(|&set| !set) {
            let name = &s.inputs[i].name;
            return Err(Fail {
                status: jetrt_status::JETRT_INVALID_INPUT,
                message: format!("input {name:?} (index {i}) was never set: jetrt_session_set_input or jetrt_session_input_buffer first"),
            });
        }
        s.session.run_loaded()?;
        Ok(())
    })
}

/// Output `index` of the last run, read in place (`*data`, `*nbytes`):
/// borrowed from the session, valid until its next run, reload or free.
///
/// # Safety
/// `session` is live and used by no other thread now; `data` and `nbytes`
/// are writable.
#[no_mangle]
pub unsafe extern "C" fn jetrt_session_output(
    session: *const jetrt_session,
    index: usize,
    data: *mut *const c_void,
    nbytes: *mut usize,
) -> jetrt_status {
    guard("jetrt_session_output", || {
        // SAFETY: the caller's promises.
        let s = unsafe { arg(session, "session") }?;
        if data.is_null() || nbytes.is_null() {
            return Err(Fail::arg(if data.is_null() { "data is NULL" } else { "nbytes is NULL" }));
        }
        if index >= s.outputs {
            return Err(Fail::arg(format!("output index {index} out of range: the model has {}", s.outputs)));
        }
        let out = s.session.output(index)?;
        let bytes = out.bytes();
        // The bytes live in the session's arena (or the model's weights),
        // which do not move; the lock `out` holds only guards shared
        // arenas, which this API does not make.
        let (p, n) = (bytes.as_ptr(), bytes.len());
        drop(out);
        // SAFETY: both out-pointers are non-NULL and writable.
        unsafe {
            data.write(p.cast());
            nbytes.write(n);
        }
        Ok(())
    })
}

/// Replaces the session's model with the `.jrt` file at `path` (a new
/// version after an update), keeping its options. The new model must take
/// inputs of the same names, dtypes and shapes; its inputs then have to be
/// set again. On any error the session keeps its old model and stays
/// usable. Pointers from `jetrt_session_input_buffer` and
/// `jetrt_session_output` are invalid afterwards.
///
/// # Safety
/// `session` is live and used by no other thread now; `path` is a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn jetrt_session_reload(session: *mut jetrt_session, path: *const c_char) -> jetrt_status {
    guard("jetrt_session_reload", || {
        // SAFETY: the caller's promises.
        let (s, path) = unsafe { (arg_mut(session, "session")?, arg_str(path, "path")?) };
        let model = Model::open(path)?;
        let new = model.inputs();
        if new != s.inputs {
            return Err(Fail {
                status: jetrt_status::JETRT_INVALID_MODEL,
                message: format!("{path} takes other inputs than the session's model: {new:?}, not {:?}", s.inputs),
            });
        }
        *s = jetrt_session::new(&model, s.options.clone())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests;
