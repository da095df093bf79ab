#!/usr/bin/env bash
# Builds jetrt's C library and installs it under PREFIX:
#   PREFIX/lib/libjetrt.so.VERSION, libjetrt.so.1 (the soname), libjetrt.so
#   PREFIX/lib/libjetrt.a
#   PREFIX/include/jetrt.h
#   PREFIX/lib/pkgconfig/jetrt.pc     (pkg-config --cflags --libs jetrt; --static for libjetrt.a)
#
#   tools/install_capi.sh PREFIX [--target TRIPLE] [--profile release|test|dev]
#
# Default: release, for this machine. --target aarch64-unknown-linux-gnu
# cross-builds for a Jetson (tools/test_aarch64.sh sets the linker up). The
# shared library is installed without its debug line tables.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${1:?usage: tools/install_capi.sh PREFIX [--target TRIPLE] [--profile release|test|dev]}
shift
target="" profile=release
while (($#)); do
    case $1 in
        --target) target=${2:?--target TRIPLE}; shift 2 ;;
        --profile) profile=${2:?--profile NAME}; shift 2 ;;
        *) echo "install_capi.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$root"
args=(-p jetrt-capi --profile "$profile")
[[ -n $target ]] && args+=(--target "$target")
echo "[install_capi] cargo build ${args[*]}" >&2
cargo build "${args[@]}" --quiet
dir=target/${target:+$target/}$([[ $profile == release ]] && echo release || echo debug)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
abi=$(sed -n 's/^pub const JETRT_ABI_VERSION: u32 = \([0-9]*\);/\1/p' capi/src/lib.rs)
[[ -n $version && -n $abi ]] || { echo "install_capi.sh: cannot read the version or ABI version" >&2; exit 1; }
# The system libraries libjetrt.a needs, as rustc reports them for this target.
# (rustc prints them only when it compiles the crate; the list below is what
# it printed for Linux targets, kept for when it does not.)
private=$(cargo rustc "${args[@]}" --crate-type staticlib -- --print native-static-libs 2>&1 |
    sed -n 's/.*native-static-libs: //p' | tail -n1)
private=${private:--ldl -lgcc_s -lutil -lrt -lpthread -lm -lc}

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
strip_tool=strip
[[ $target == aarch64-* ]] && strip_tool=aarch64-linux-gnu-strip
install -m 0755 "$dir/libjetrt.so" "$prefix/lib/libjetrt.so.$version"
if command -v "$strip_tool" >/dev/null; then
    "$strip_tool" --strip-debug "$prefix/lib/libjetrt.so.$version"
fi
ln -sf "libjetrt.so.$version" "$prefix/lib/libjetrt.so.$abi"
ln -sf "libjetrt.so.$abi" "$prefix/lib/libjetrt.so"
install -m 0644 "$dir/libjetrt.a" "$prefix/lib/libjetrt.a"
install -m 0644 include/jetrt.h "$prefix/include/jetrt.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@PRIVATE_LIBS@|$private|" capi/jetrt.pc.in >"$prefix/lib/pkgconfig/jetrt.pc"
echo "[install_capi] installed jetrt $version (ABI $abi) under $prefix" >&2
