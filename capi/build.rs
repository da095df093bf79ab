//! The shared library's soname carries the ABI version (libjetrt.so.1), so
//! a program linked against one ABI never loads another.
fn main() {
    let abi = 1; // JETRT_ABI_VERSION in src/lib.rs (a test checks they agree)
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libjetrt.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
