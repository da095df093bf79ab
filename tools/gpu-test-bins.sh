#!/usr/bin/env bash
# Builds the runtime's GPU-aware test binaries (release) and copies them to
# DIR (default target/gpucheck/tests), for a GPU machine without a Rust
# toolchain: `tools/gpu-check.sh --test-bins DIR` runs them there. Each test
# takes its GPU branch when a GPU works (shared device arena, weights shared
# between sessions, GPU outputs against the CPU's).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/target/gpucheck/tests}
mkdir -p "$out"
cd "$root"
cargo test --release -p jetrt --no-run --message-format=json --test shared_arena --test cuda_backend 2>/dev/null |
    python3 -c '
import json, shutil, sys, os
out = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        dst = os.path.join(out, m["target"]["name"])
        shutil.copy(m["executable"], dst)
        print(dst)
' "$out"
