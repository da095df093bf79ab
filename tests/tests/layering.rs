//! Dependencies point one way: tools → converter, update → runtime →
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
    ("converter", &["jetrt", "jetrt-format"]),
    ("update", &["jetrt"]),
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
        if let Some((name, _)) = line.split_once(['=', '.']) {
            let name = name.trim();
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
        workspace_deps("[dependencies]\njetrt.workspace = true\nlog = \"1\"\n[dev-dependencies]\njetrt-converter = { path = \"x\" }"),
        vec!["jetrt", "jetrt-converter"]
    );
}
