#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#
#   1. formatting and lints (cargo fmt --check, cargo clippy -D warnings)
#   2. test data: a Python venv from PyPI (tools/setup_venv.sh) makes the ONNX
#      test models and their onnxruntime reference outputs (tools/gen_testdata.sh)
#   3. every Rust test of the workspace on this machine
#   4. the C API: examples/c compiled against the installed libjetrt and run,
#      under valgrind too (tools/test_capi.sh)
#   5. the Python package: its wheel built (maturin), installed into .venv and
#      tested against onnxruntime (tools/test_python.sh)
#   6. the runtime, kernels and C API crates linted and built for aarch64
#      (Jetson) and tested under qemu-aarch64, the C example included
#      (tools/test_aarch64.sh installs what it needs)
#
# Under CI=true a missing tool or missing test data fails; locally it is
# skipped loudly. Extra arguments go to `cargo test` (e.g. a test filter).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$SECONDS
step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "test data (Python venv + onnxruntime reference outputs)"
tools/gen_testdata.sh

step "cargo test --workspace"
cargo test --workspace "$@"
# The jetc and jetrt that cargo test built for the integration tests: the C,
# Python and aarch64 scripts below run them instead of building their own.
export JETRT_CLI_DIR=$root/target/debug

step "C API: C and C++ programs against libjetrt (pkg-config, static, valgrind)"
tools/test_capi.sh

step "Python: the abi3 wheel built with maturin, installed into .venv, pytest"
tools/test_python.sh

step "aarch64: runtime, kernels and the C API under qemu"
tools/test_aarch64.sh

echo "all tests passed in $((SECONDS - start)) s"
