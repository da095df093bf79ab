//! NVRTC, the CUDA runtime compiler, loaded by hand.
//!
//! cudarc binds NVRTC too, but through one process-wide library found by
//! name: it cannot load a library from a given path, nor two versions at
//! once. `jetc` needs both (CUDA 12 builds sm_72/sm_87 for Xavier and Orin,
//! CUDA 13 builds sm_110 for Thor and no longer knows sm_72), and the
//! portability test loads them from the Python venv. NVRTC's C API is eight
//! functions, stable since CUDA 11, so this binds them with `libloading`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

type Prog = *mut c_void;
type Res = c_int;

struct Api {
    version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> Res,
    error_string: unsafe extern "C" fn(Res) -> *const c_char,
    create: unsafe extern "C" fn(*mut Prog, *const c_char, *const c_char, c_int, *const *const c_char, *const *const c_char) -> Res,
    compile: unsafe extern "C" fn(Prog, c_int, *const *const c_char) -> Res,
    log_size: unsafe extern "C" fn(Prog, *mut usize) -> Res,
    log: unsafe extern "C" fn(Prog, *mut c_char) -> Res,
    cubin_size: unsafe extern "C" fn(Prog, *mut usize) -> Res,
    cubin: unsafe extern "C" fn(Prog, *mut c_char) -> Res,
    destroy: unsafe extern "C" fn(*mut Prog) -> Res,
}

/// A loaded NVRTC library.
pub struct Nvrtc {
    api: Api,
    path: PathBuf,
    version: (i32, i32),
    // Keeps the function pointers above valid.
    _lib: libloading::Library,
}

impl std::fmt::Debug for Nvrtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvrtc").field("path", &self.path).field("version", &self.version).finish()
    }
}

/// Library names tried, newest first, when no path is given: the loader's
/// search path (LD_LIBRARY_PATH, ldconfig) and then the usual CUDA install
/// folders.
const NAMES: &[&str] = &["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so.11"];
const DIRS: &[&str] = &["/usr/local/cuda/lib64", "/usr/local/cuda/targets/aarch64-linux/lib", "/usr/local/cuda/targets/x86_64-linux/lib"];

/// Where [`Nvrtc::find`] looks, for error messages.
pub fn search_description() -> String {
    format!("{} on the loader's path, then in {}", NAMES.join(", "), DIRS.join(", "))
}

impl Nvrtc {
    /// Loads NVRTC from `path` (a file such as
    /// `.venv/.../nvidia/cu13/lib/libnvrtc.so.13`).
    pub fn open(path: &Path) -> Result<Nvrtc, String> {
        // SAFETY: loading NVRTC runs its initialisers, which are known not
        // to have preconditions.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("cannot load NVRTC from {}: {e}", path.display()))?;
        // SAFETY: the symbols are NVRTC's C API with these signatures
        // (nvrtc.h, unchanged since CUDA 11.1).
        let api = unsafe {
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes())
                        .map_err(|e| format!("{} is not NVRTC: no symbol {}: {e}", path.display(), $name))?
                };
            }
            Api {
                version: sym!("nvrtcVersion"),
                error_string: sym!("nvrtcGetErrorString"),
                create: sym!("nvrtcCreateProgram"),
                compile: sym!("nvrtcCompileProgram"),
                log_size: sym!("nvrtcGetProgramLogSize"),
                log: sym!("nvrtcGetProgramLog"),
                cubin_size: sym!("nvrtcGetCUBINSize"),
                cubin: sym!("nvrtcGetCUBIN"),
                destroy: sym!("nvrtcDestroyProgram"),
            }
        };
        let (mut major, mut minor) = (0, 0);
        // SAFETY: two valid out-pointers.
        let r = unsafe { (api.version)(&mut major, &mut minor) };
        if r != 0 {
            return Err(format!("{}: nvrtcVersion failed ({r})", path.display()));
        }
        Ok(Nvrtc { api, path: path.to_path_buf(), version: (major, minor), _lib: lib })
    }

    /// Loads the first of the usual names that loads (on the loader's
    /// path, then in the usual CUDA folders).
    pub fn find() -> Result<Nvrtc, String> {
        for name in NAMES {
            if let Ok(n) = Nvrtc::open(Path::new(name)) {
                return Ok(n);
            }
        }
        for dir in DIRS {
            for name in NAMES {
                let p = Path::new(dir).join(name);
                if p.exists() {
                    if let Ok(n) = Nvrtc::open(&p) {
                        return Ok(n);
                    }
                }
            }
        }
        Err(format!("NVRTC (libnvrtc) not found: looked at {}", search_description()))
    }

    /// (major, minor) CUDA version of this NVRTC.
    pub fn version(&self) -> (i32, i32) {
        self.version
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, what: &str, r: Res) -> String {
        // SAFETY: nvrtcGetErrorString returns a static string for any code.
        let s = unsafe { (self.api.error_string)(r) };
        let msg = if s.is_null() { "unknown error".into() } else { unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned() };
        format!("NVRTC {}.{} {what}: {msg}", self.version.0, self.version.1)
    }

    /// Compiles `source` to a CUBIN for `arch` (e.g. 87 for sm_87). On a
    /// compile error the message holds NVRTC's log.
    pub fn compile_cubin(&self, source: &str, name: &str, arch: u32, extra: &[&str]) -> Result<Vec<u8>, String> {
        let src = CString::new(source).map_err(|_| "kernel source holds a NUL byte".to_string())?;
        let cname = CString::new(name).map_err(|_| "kernel name holds a NUL byte".to_string())?;
        let mut opts = vec![format!("--gpu-architecture=sm_{arch}"), "--std=c++17".into()];
        opts.extend(extra.iter().map(|s| s.to_string()));
        let copts: Vec<CString> =
            opts.into_iter().map(|o| CString::new(o).map_err(|_| "option holds a NUL byte".to_string())).collect::<Result<_, _>>()?;
        let ptrs: Vec<*const c_char> = copts.iter().map(|o| o.as_ptr()).collect();
        let mut prog: Prog = std::ptr::null_mut();
        // SAFETY: valid C strings; no headers.
        let r = unsafe { (self.api.create)(&mut prog, src.as_ptr(), cname.as_ptr(), 0, std::ptr::null(), std::ptr::null()) };
        if r != 0 {
            return Err(self.error("cannot create a program", r));
        }
        let result = (|| {
            // SAFETY: prog is a live program; ptrs point at live C strings.
            let r = unsafe { (self.api.compile)(prog, ptrs.len() as c_int, ptrs.as_ptr()) };
            if r != 0 {
                let mut n = 0usize;
                // SAFETY: out-pointer, then a buffer of the size NVRTC gave.
                let log = unsafe {
                    (self.api.log_size)(prog, &mut n);
                    let mut buf = vec![0u8; n.max(1)];
                    (self.api.log)(prog, buf.as_mut_ptr().cast());
                    String::from_utf8_lossy(&buf).trim_end_matches('\0').trim().to_string()
                };
                return Err(format!("{} for sm_{arch}:\n{log}", self.error("cannot compile the kernels", r)));
            }
            let mut n = 0usize;
            // SAFETY: as above.
            let r = unsafe { (self.api.cubin_size)(prog, &mut n) };
            if r != 0 || n == 0 {
                return Err(self.error("gave no CUBIN", r));
            }
            let mut buf = vec![0u8; n];
            // SAFETY: buf has the size NVRTC reported.
            let r = unsafe { (self.api.cubin)(prog, buf.as_mut_ptr().cast()) };
            if r != 0 {
                return Err(self.error("cannot copy the CUBIN", r));
            }
            Ok(buf)
        })();
        // SAFETY: prog was created above and is destroyed once.
        unsafe { (self.api.destroy)(&mut prog) };
        result
    }
}
