#!/usr/bin/env bash
# Build the jetrt-kernels and jetrt crates for aarch64 (Jetson) and run their
# tests (unit, integration, doc) under qemu user-mode emulation.
# JETRT_AARCH64_UPDATE=1 adds jetrt-update (the A/B slot store, and aws-lc,
# its C crypto library, cross-built): about 5 more minutes on 2 cores, so CI
# leaves it out.
#
#   tools/test_aarch64.sh [CARGO TEST ARGS...]    e.g.  -- --test-threads 2
#
# Installs what it needs on a Debian (12) x86-64 machine:
#   - the Rust target aarch64-unknown-linux-gnu (rustup target add)
#   - gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user (apt-get)
# and configures cargo through environment variables only (a linker or runner
# already set in the environment is kept):
#   CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
#   CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu"
# `-cpu max` makes qemu emulate (and advertise in AT_HWCAP) every feature it
# implements, neon, fp16, dotprod, i8mm, bf16, sve, sve2... included, so the
# kernels' run-time feature probes see a recent core. (Debian 12's qemu 7.2
# already defaults to that in user mode; it is spelled out so that the run
# does not depend on a qemu default.) JETRT_QEMU_CPU overrides the model,
# e.g. JETRT_QEMU_CPU=cortex-a57 (the core of a Jetson Nano/TX1/TX2: NEON
# only, no fp16/dotprod/i8mm).
#
# When something cannot be installed: under CI=true it fails, naming what is
# missing; otherwise it prints a loud "*** SKIPPED aarch64 tests ***" line and
# exits 0. Progress goes to stderr; the last line on stdout is a summary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$SECONDS
target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
qemu_cpu=${JETRT_QEMU_CPU:-max}

say() { printf '[test_aarch64] %s\n' "$*" >&2; }
missing() {
    if [[ ${CI:-} == true ]]; then
        printf '[test_aarch64] ERROR: aarch64 tests cannot run: %s\n' "$*" >&2
        echo "aarch64: FAILED, missing: $*"
        exit 1
    fi
    printf '\n*** SKIPPED aarch64 tests: %s ***\n\n' "$*" >&2
    echo "*** SKIPPED aarch64 tests: $* ***"
    exit 0
}

# --- Rust target ------------------------------------------------------------
have_target() {
    local libdir
    libdir=$(rustc --print target-libdir --target "$target" 2>/dev/null) || return 1
    compgen -G "$libdir/libstd-*.rlib" >/dev/null
}
command -v cargo >/dev/null && command -v rustc >/dev/null || missing "cargo/rustc not found on PATH"
if ! have_target; then
    command -v rustup >/dev/null || missing "Rust target $target (no rustup to add it)"
    say "rustup target add $target"
    rustup target add "$target" >&2 || missing "Rust target $target (rustup target add failed)"
    have_target || missing "Rust target $target (installed, but rustc does not find its std)"
fi

# --- Debian packages --------------------------------------------------------
# Each tool is run, not only looked up: `command -v` also "finds" a file that
# is not executable.
have_gcc() { aarch64-linux-gnu-gcc --version >/dev/null 2>&1; }
have_libc() { [[ -e $sysroot/lib/libc.so && -e $sysroot/include/stdio.h ]]; }
have_qemu() { qemu-aarch64 --version >/dev/null 2>&1; }
pkgs=()
have_gcc || pkgs+=(gcc-aarch64-linux-gnu)
have_libc || pkgs+=(libc6-dev-arm64-cross)
have_qemu || pkgs+=(qemu-user)
if ((${#pkgs[@]})); then
    if ((EUID == 0)); then
        sudo=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        missing "${pkgs[*]} (not root and no password-less sudo to apt-get install them)"
    fi
    command -v apt-get >/dev/null || missing "${pkgs[*]} (no apt-get to install them)"
    apt_install() {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${pkgs[@]}" >&2
    }
    say "apt-get install ${pkgs[*]}"
    if ! apt_install; then
        say "apt-get install failed; apt-get update and retry"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=300 >&2 || true
        apt_install || missing "${pkgs[*]} (apt-get install failed)"
    fi
fi
still=()
have_gcc || still+=("aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu)")
have_libc || still+=("$sysroot libc headers (libc6-dev-arm64-cross)")
have_qemu || still+=("qemu-aarch64 (qemu-user)")
((${#still[@]} == 0)) || missing "${still[*]} not usable after apt-get install"

# --- cargo configuration (environment only) ---------------------------------
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER:-qemu-aarch64 -cpu $qemu_cpu -L $sysroot}
# For crates with build scripts that compile C (cc crate).
export CC_aarch64_unknown_linux_gnu=${CC_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-gcc}
export AR_aarch64_unknown_linux_gnu=${AR_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-ar}
say "linker: $CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER"
say "runner: $CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER ($(qemu-aarch64 --version | head -n1))"

# Keep going past a failing test binary so one run reports every failure,
# unless the caller already chose.
fail_fast=(--no-fail-fast)
for a in "$@"; do
    [[ $a == -- ]] && break
    [[ $a == --no-fail-fast ]] && fail_fast=()
done

# --- lint, build and test ----------------------------------------------------
# The NEON kernels compile only for this target: lint them here.
# jetrt-boards with its `linux` feature: the GPIO and I2C openers (linux-embedded-hal) as
# a Jetson builds them; its tests read the fixture boards' files under qemu.
say "cargo clippy -p jetrt-kernels -p jetrt -p jetrt-boards -p jetrt-capi --features jetrt-boards/linux --target $target --all-targets -D warnings"
cargo clippy -p jetrt-kernels -p jetrt -p jetrt-boards -p jetrt-capi --features jetrt-boards/linux --target "$target" --all-targets --quiet -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# qemu -cpu max has the dot-product and int8 matrix-multiply extensions:
# the int8 tests must then exercise the NEON smmla and sdot kernels, not
# fall back quietly.
if [[ $qemu_cpu == max ]]; then
  export JETRT_EXPECT_QISA=${JETRT_EXPECT_QISA:-neon_i8mm,neon_dotprod}
fi
crates=(-p jetrt-kernels -p jetrt -p jetrt-boards -p jetrt-capi --features jetrt-boards/linux)
[[ ${JETRT_AARCH64_UPDATE:-0} == 1 ]] && crates+=(-p jetrt-update)
say "cargo test ${crates[*]} --target $target ${fail_fast[*]} $*"
rc=0
cargo test "${crates[@]}" --target "$target" "${fail_fast[@]}" "$@" 2>&1 | tee "$log" >&2 || rc=$?

# Sum the "test result:" lines of every test binary and doc-test run.
read -r passed failed ignored suites < <(awk '
    /^test result: / {
        for (i = 1; i <= NF; i++) {
            if ($(i + 1) ~ /^passed;?$/)  p += $i
            if ($(i + 1) ~ /^failed;?$/)  f += $i
            if ($(i + 1) ~ /^ignored;?$/) g += $i
        }
        s++
    }
    END { printf "%d %d %d %d\n", p, f, g, s }' "$log")
# Runs function $1 with set -e in a subshell and a scratch folder of its own
# ($work), saying $2 when it starts; on failure the summary line names it and
# the script exits. (Not `( ... ) || rc=$?`: set -e is off inside a subshell
# tested by ||.)
section() {
    say "$2"
    work=$(mktemp -d)
    set +e
    (set -e; "$1") >&2
    local r=$?
    set -e
    rm -rf "$work"
    if ((r != 0)); then
        echo "aarch64: FAILED: $2 (exit $r)"
        exit 1
    fi
}

# The C library for aarch64: examples/c/classify.c cross-compiled against
# it and run under qemu on a model the host's jetc converted (.jrt files
# are the same on every machine).
capi_example() {
    tools/install_capi.sh "$work/prefix" --target "$target" --profile test
    "$(tools/cli_bins.sh)/jetc" convert examples/digits/model.onnx -o "$work/digits.jrt" --input-shape image=1,1,8,8 --quiet
    aarch64-linux-gnu-gcc -std=c11 -Wall -Wextra -Werror examples/c/classify.c -I "$work/prefix/include" -L "$work/prefix/lib" -ljetrt -o "$work/classify"
    qemu-aarch64 -cpu "$qemu_cpu" -L "$sysroot" -E "LD_LIBRARY_PATH=$work/prefix/lib" "$work/classify" "$work/digits.jrt" examples/digits/digit_0.npy --threads 2 --repeat 3 >"$work/out.txt"
    cat "$work/out.txt" >&2
    # The sample is an 8 (README); the x86 run (tools/test_capi.sh) says so too.
    grep -q "argmax 8 " "$work/out.txt"
}

# The Python wheel for aarch64 (maturin, zig as the cross linker), imported
# and run under qemu by Debian's arm64 CPython: its packages are downloaded
# with a private apt state (no dpkg architecture added, no root needed) and
# unpacked with the cross libc into a sysroot; numpy from PyPI's aarch64 wheel.
python_wheel() {
    py=$(tools/setup_venv.sh)
    "$py" -m pip install -q -r python/requirements-dev.txt
    # zig links (glibc 2.17 symbols), not the cross gcc set up above.
    env -u CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER -u CC_aarch64_unknown_linux_gnu -u AR_aarch64_unknown_linux_gnu \
        PATH="$root/.venv/bin:$PATH" CARGO_TARGET_DIR="$root/target/python-aarch64" "$root/.venv/bin/maturin" build --release --quiet --zig \
        --compatibility manylinux2014 --target "$target" --manifest-path python/Cargo.toml --out "$work/wheels"
    wheel=$(ls "$work"/wheels/jetrt-*-cp38-abi3-manylinux*aarch64*.whl)
    apt_dir=$work/apt
    mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::State=$apt_dir/state" -o "Dir::Cache=$apt_dir/cache" -o "Dir::Etc::SourceList=$apt_dir/sources.list"
        -o Dir::Etc::SourceParts=/nonexistent -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1)
    apt-get "${apt_opts[@]}" update -qq
    (cd "$apt_dir" && apt-get "${apt_opts[@]}" download -qq python3.11-minimal libpython3.11-minimal libpython3.11-stdlib zlib1g libexpat1 libffi8 2>/dev/null)
    root_fs=$work/root
    mkdir -p "$root_fs/lib/aarch64-linux-gnu"
    for deb in "$apt_dir"/*.deb; do dpkg-deb -x "$deb" "$root_fs"; done
    cp -a "$sysroot/lib/." "$root_fs/lib/aarch64-linux-gnu/"
    ln -sf aarch64-linux-gnu/ld-linux-aarch64.so.1 "$root_fs/lib/ld-linux-aarch64.so.1"
    "$py" -m pip download -q numpy==2.2.6 --platform manylinux2014_aarch64 --python-version 3.11 --only-binary=:all: --no-deps -d "$work/dl"
    mkdir -p "$work/site"
    for w in "$work"/dl/numpy-*.whl "$wheel"; do "$py" -m zipfile -e "$w" "$work/site"; done
    "$(tools/cli_bins.sh)/jetc" convert examples/digits/model.onnx -o "$work/digits.jrt" --input-shape image=1,1,8,8 --quiet
    qemu-aarch64 -cpu "$qemu_cpu" -L "$root_fs" -E "LD_LIBRARY_PATH=$root_fs/lib/aarch64-linux-gnu:$root_fs/usr/lib/aarch64-linux-gnu" \
        -E "PYTHONHOME=$root_fs/usr" -E "PYTHONPATH=$work/site" "$root_fs/usr/bin/python3.11" - "$work/digits.jrt" "$work/here.jrt" <<'PY'
import platform, sys
import numpy as np
import jetrt
assert platform.machine() == "aarch64", platform.machine()
sess = jetrt.InferenceSession(sys.argv[1], device="auto", threads=2)
(p,) = sess.run(None, {"image": np.load("examples/digits/digit_0.npy")})
assert p.argmax() == 8, p
# The converter runs on the board too, and gives the file jetc made on x86.
report = jetrt.convert("examples/digits/model.onnx", sys.argv[2], input_shapes={"image": [1, 1, 8, 8]}, quiet=True)
assert report["arena_bytes"] == jetrt.model_info(sys.argv[1])["memory"]["arena_bytes"], report
(q,) = jetrt.InferenceSession(sys.argv[2], device="cpu").run(None, {"image": np.load("examples/digits/digit_0.npy")})
np.testing.assert_allclose(q, p, rtol=1e-5, atol=1e-6)
assert jetrt.model_info(sys.argv[2], boards="jetson-orin-nano-8gb")["boards"][0]["fits"]
try:
    sess.run(None, {"image": np.zeros((1, 1, 8, 8))})
    raise SystemExit("a float64 input was accepted")
except jetrt.InvalidInput as e:
    assert "expected dtype float32, got float64" in str(e), e
print(f"aarch64 wheel: CPython {platform.python_version()}, numpy {np.__version__}, {sess.info()}: argmax {p.argmax()}")
PY
    # The package's pytest suite too (pytest's pure-Python wheels), but for
    # its two onnxruntime comparisons, which it skips by name (-rs): they run
    # on x86-64 (tools/test_python.sh). onnxruntime's aarch64 wheel (1.32)
    # crashes on import under qemu-user, in its CPU probe.
    "$py" -m pip download -q pytest==9.2.0 --platform manylinux2014_aarch64 --python-version 3.11 --only-binary=:all: -d "$work/dl-pytest"
    for w in "$work"/dl-pytest/*.whl; do "$py" -m zipfile -e "$w" "$work/site"; done
    qemu-aarch64 -cpu "$qemu_cpu" -L "$root_fs" -E "LD_LIBRARY_PATH=$root_fs/lib/aarch64-linux-gnu:$root_fs/usr/lib/aarch64-linux-gnu" \
        -E "PYTHONHOME=$root_fs/usr" -E "PYTHONPATH=$work/site" -E "JETRT_JETC=$(tools/cli_bins.sh)/jetc" -E "CI=${CI:-}" \
        "$root_fs/usr/bin/python3.11" -m pytest -q -rs -p no:cacheprovider python/tests
}

extra=""
if ((rc == 0)); then
    section capi_example "the C API: libjetrt for $target, examples/c/classify.c under qemu"
    section python_wheel "the Python wheel for $target under qemu with Debian's arm64 CPython"
    extra=", C API example and Python wheel run"
fi

secs=$((SECONDS - start))
if ((rc != 0)); then
    echo "aarch64: FAILED (cargo test exit $rc): $passed passed, $failed failed under qemu-aarch64 -cpu $qemu_cpu in ${secs}s"
    exit "$rc"
fi
if ((suites == 0)); then
    echo "aarch64: FAILED: cargo test ran no test binary under qemu-aarch64"
    exit 1
fi
echo "aarch64: $passed tests passed ($ignored ignored, $suites suites)$extra under qemu-aarch64 -cpu $qemu_cpu in ${secs}s"
