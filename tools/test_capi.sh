#!/usr/bin/env bash
# The C API end to end, as a C or C++ program uses it:
#   - libjetrt installed into a temporary prefix (tools/install_capi.sh) and
#     found through pkg-config;
#   - examples/c/classify.c (C11) and classify.cpp (C++17) compiled with
#     -Wall -Wextra -Werror against it, shared and static, run on the digits
#     model, their output compared with the jetrt CLI's;
#   - the header included twice (C99 -pedantic) and from C++;
#   - capi/tests/c/errors.c: every bad argument gets its status and message;
#   - both programs under valgrind: no leak, no invalid access.
# tools/test_aarch64.sh builds the library for aarch64 and runs classify.c under qemu.
#
# Installs gcc, g++, pkg-config and valgrind with apt-get when they are
# missing. Under CI=true a missing tool fails; otherwise it is skipped loudly.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$SECONDS
say() { printf '[test_capi] %s\n' "$*" >&2; }
missing() {
    if [[ ${CI:-} == true ]]; then
        printf '[test_capi] ERROR: C API tests cannot run: %s\n' "$*" >&2
        echo "C API: FAILED, missing: $*"
        exit 1
    fi
    printf '\n*** SKIPPED C API tests: %s ***\n\n' "$*" >&2
    echo "*** SKIPPED C API tests: $* ***"
    exit 0
}

pkgs=()
gcc --version >/dev/null 2>&1 || pkgs+=(gcc)
g++ --version >/dev/null 2>&1 || pkgs+=(g++)
pkg-config --version >/dev/null 2>&1 || pkgs+=(pkg-config)
valgrind --version >/dev/null 2>&1 || pkgs+=(valgrind)
if ((${#pkgs[@]})); then
    sudo=()
    if ((EUID != 0)); then
        sudo -n true 2>/dev/null || missing "${pkgs[*]} (not root and no password-less sudo to apt-get install them)"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null || missing "${pkgs[*]} (no apt-get to install them)"
    say "apt-get install ${pkgs[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${pkgs[@]}" >&2 ||
        { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
          "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2 ||
              missing "${pkgs[*]} (apt-get install failed)"; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
# The test profile: the artifacts `cargo test` already built.
tools/install_capi.sh "$prefix" --profile test
bins=$(tools/cli_bins.sh)
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cflags=$(pkg-config --cflags jetrt)
libs=$(pkg-config --libs jetrt)

say "model: examples/digits converted with jetc"
"$bins/jetc" convert examples/digits/model.onnx -o "$work/digits.jrt" --input-shape image=1,1,8,8 --quiet
printf 'not a jetrt model, only its first bytes: ' >"$work/corrupt.jrt"
head -c 200 "$work/digits.jrt" >>"$work/corrupt.jrt"
sample=examples/digits/digit_0.npy
"$bins/jetrt" run "$work/digits.jrt" --input "image=$sample" --output-dir "$work/cli" --threads 1 >/dev/null

warn=(-Wall -Wextra -Werror)
say "compile: C11, C++17, static, header checks"
# shellcheck disable=SC2086  # pkg-config's flags are words
gcc -std=c11 -pedantic "${warn[@]}" examples/c/classify.c $cflags $libs -o "$work/classify"
# shellcheck disable=SC2086
g++ -std=c++17 "${warn[@]}" examples/c/classify.cpp $cflags $libs -pthread -o "$work/classify_cpp"
# shellcheck disable=SC2086
gcc -std=c11 "${warn[@]}" examples/c/classify.c $cflags "$prefix/lib/libjetrt.a" $(pkg-config --static --libs-only-l jetrt | sed 's/-ljetrt//') -o "$work/classify_static"
# shellcheck disable=SC2086
gcc -std=c99 -pedantic "${warn[@]}" -c capi/tests/c/include_twice.c $cflags -o "$work/include_twice.o"
# shellcheck disable=SC2086
g++ -std=c++11 -pedantic "${warn[@]}" capi/tests/c/include.cpp $cflags $libs -o "$work/include_cpp"
# shellcheck disable=SC2086
gcc -std=c11 "${warn[@]}" capi/tests/c/errors.c $cflags $libs -o "$work/errors"

export LD_LIBRARY_PATH=$prefix/lib
say "run: classify (C, shared and static), classify_cpp, include_cpp, errors"
"$work/include_cpp"
"$work/classify" "$work/digits.jrt" "$sample" --threads 1 --out "$work/c.raw" | tee "$work/c.txt" >&2
n=$(stat -c %s "$work/c.raw")
# The CLI's .npy ends with the same bytes: same runtime, same kernels, one thread.
tail -c "$n" "$work/cli/probabilities.npy" | cmp - "$work/c.raw" || { echo "C API: FAILED: classify's output differs from jetrt run's"; exit 1; }
env -u LD_LIBRARY_PATH "$work/classify_static" "$work/digits.jrt" "$sample" --threads 2 --out "$work/static.raw" >/dev/null
cmp "$work/c.raw" "$work/static.raw" || { echo "C API: FAILED: the static library computes otherwise"; exit 1; }
want=$(sed -n 's/.*argmax \([0-9]*\).*/\1/p' "$work/c.txt")
"$work/classify_cpp" "$work/digits.jrt" "$sample" 4 | tee "$work/cpp.txt" >&2
grep -q "4 sessions agree, argmax $want\$" "$work/cpp.txt" || { echo "C API: FAILED: classify_cpp disagrees (want argmax $want)"; exit 1; }
"$work/errors" "$work/digits.jrt" "$work/corrupt.jrt" >"$work/errors.txt" || { cat "$work/errors.txt" >&2; echo "C API: FAILED: error checks"; exit 1; }

say "valgrind: classify (2 threads, 20 runs), classify_cpp (4 sessions), errors"
vg=(valgrind --quiet --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect)
"${vg[@]}" "$work/classify" "$work/digits.jrt" "$sample" --threads 2 --repeat 20 >/dev/null
"${vg[@]}" "$work/classify_cpp" "$work/digits.jrt" "$sample" 4 >/dev/null
"${vg[@]}" "$work/errors" "$work/digits.jrt" "$work/corrupt.jrt" >/dev/null
echo "C API: classify (C, C++, static), header and error checks passed, valgrind clean (argmax $want) in $((SECONDS - start))s"
