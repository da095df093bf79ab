#!/usr/bin/env bash
# The Python package end to end: lint the PyO3 crate (python/), build the
# abi3 manylinux_2_17 wheel with maturin (zig links it), install it into
# <repo>/.venv and run its pytest suite (python/tests) against onnxruntime on
# real models. tools/test_aarch64.sh builds the aarch64 wheel and runs it
# under qemu.
#
#   tools/test_python.sh [PYTEST ARGS...]
#
# Needs tools/gen_testdata.sh's models (tools/test.sh makes them first).
# Prints the wheel's path and size; fails when it is over 15 MB.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$SECONDS
say() { printf '[test_python] %s\n' "$*" >&2; }

py=$(tools/setup_venv.sh)
"$py" -m pip install -q -r python/requirements-dev.txt >&2
# Its own target directory: the crate is not in the workspace (its build
# needs a Python), and the workspace's artifacts are built otherwise.
export CARGO_TARGET_DIR=$root/target/python
say "cargo fmt --check, clippy -D warnings (python/)"
cargo fmt --manifest-path python/Cargo.toml -- --check
cargo clippy --manifest-path python/Cargo.toml --all-targets --quiet -- -D warnings
say "maturin build --release --zig --compatibility manylinux2014"
out=$root/target/wheels
rm -f "$out"/jetrt-*x86_64.whl
# maturin finds zig as `python3 -m ziglang`: the venv's python first.
PATH=$root/.venv/bin:$PATH "$root/.venv/bin/maturin" build --release --quiet --zig --compatibility manylinux2014 \
    --manifest-path python/Cargo.toml --out "$out" >&2
wheel=$(ls "$out"/jetrt-*x86_64.whl)
size=$(stat -c %s "$wheel")
say "wheel: $wheel ($size bytes)"
[[ $wheel == *-cp38-abi3-manylinux_2_17_x86_64* || $wheel == *-cp38-abi3-manylinux2014_x86_64* ]] ||
    { echo "Python: FAILED: $wheel is not an abi3 manylinux_2_17 wheel for Python 3.8+"; exit 1; }
((size <= 15 * 1024 * 1024)) || { echo "Python: FAILED: the wheel is $size bytes, over 15 MB"; exit 1; }
"$py" -m pip install -q --force-reinstall --no-deps "$wheel" >&2
unset CARGO_TARGET_DIR
bins=$(tools/cli_bins.sh)
say "pytest python/tests"
JETRT_JETC=$bins/jetc "$py" -m pytest -q -rs python/tests "$@" >&2
echo "Python: wheel $(basename "$wheel") ($((size / 1024)) KiB) built, installed and tested in $((SECONDS - start))s"
