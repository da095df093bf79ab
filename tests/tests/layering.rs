//! Dependencies point one way: tools → converter, update, capi → runtime →
//! format, kernels, boards (and format → kernels, for the parameter types
//! ops carry). This test rejects any other edge between the
//! workspace's crates (a runtime that depended on the converter would drag
//! ONNX onto the board; one that depended on update, TUF and HTTP).

use std::path::Path;

/// Workspace crates each crate may depend on (normal and dev dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("kernels", &[]),
    ("format", &["jetrt-kernels"]),
    ("boards", &[]),
    ("runtime", &["jetrt-format", "jetrt-kernels", "jetrt-boards"]),
    ("converter", &["jetrt", "jetrt-format", "jetrt-boards"]),
    ("update", &["jetrt"]),
    ("capi", &["jetrt"]),
    ("python", &["jetrt", "jetrt-converter", "jetrt-boards"]),
];

fn workspace_deps(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line.ends_with("dependencies]");
            continue;
        }
        if !in_deps {
            continue;
        }
        if let Some((key, rest)) = line.split_once(['=', '.']) {
            // A renamed dependency (`rt = { package = "jetrt", ... }`) is
            // the package it names.
            let package = rest.split_once("package = \"").and_then(|(_, p)| p.split('"').next());
            let name = package.unwrap_or(key.trim());
            if name == "jetrt" || name.starts_with("jetrt-") {
                out.push(name.to_string());
            }
        }
    }
    out
}

#[test]
fn dependencies_point_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (dir, allowed) in ALLOWED {
        let text = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
        for dep in workspace_deps(&text) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{dir}/Cargo.toml depends on {dep}: dependencies must point tools → converter, update → runtime → format, kernels, boards"
            );
        }
    }
    // The parser itself finds edges.
    assert_eq!(
        workspace_deps(
            "[dependencies]\njetrt.workspace = true\nlog = \"1\"\nrt = { package = \"jetrt-format\", path = \"y\" }\n[dev-dependencies]\njetrt-converter = { path = \"x\" }"
        ),
        vec!["jetrt", "jetrt-format", "jetrt-converter"]
    );
}

/// The runtime's modules, each with the modules it must not use: the lower
/// layers (lowering, the CPU executor, the CUDA backend, the model and
/// session) know nothing of the monitor and the checks built on them, and
/// lowering and the CPU executor nothing of models, sessions or the GPU.
const RUNTIME_LAYERS: &[(&str, &[&str])] = &[
    ("lower.rs", &["model", "session", "monitor", "cuda", "golden", "budget", "Model", "Session"]),
    ("cpu", &["model", "session", "monitor", "cuda", "golden", "budget", "Model", "Session"]),
    ("cuda", &["session", "monitor", "golden", "budget", "Session"]),
    ("arena.rs", &["session", "monitor", "golden", "budget"]),
    ("options.rs", &["model", "session", "monitor", "cuda", "golden", "budget"]),
    ("tensor.rs", &["model", "session", "monitor", "cuda", "golden", "budget"]),
    ("model.rs", &["monitor", "golden", "budget"]),
    ("session.rs", &["monitor", "golden", "budget"]),
];

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            rust_files(&e.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn runtime_modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src");
    for (module, forbidden) in RUNTIME_LAYERS {
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        assert!(!files.is_empty(), "runtime/src/{module} is gone: update RUNTIME_LAYERS");
        for f in files {
            // Code only: doc comments may point anywhere.
            let text: String =
                std::fs::read_to_string(&f).unwrap().lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            for name in *forbidden {
                for pattern in
                    [format!("crate::{name}::"), format!("crate::{name};"), format!("crate::{name}}}"), format!("crate::{name},")]
                {
                    assert!(!text.contains(&pattern), "{} uses {pattern}: runtime/src/{module} must not use {name}", f.display());
                }
            }
        }
    }
}

#[test]
fn no_library_reads_the_environment() {
    // The command lines read JETRT_* (tools/src/env.rs) and pass options.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for dir in ["runtime/src", "format/src", "converter/src"] {
        let mut files = Vec::new();
        rust_files(&root.join(dir), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(!text.contains("env::var"), "{} reads an environment variable: make it an option", f.display());
        }
    }
}
