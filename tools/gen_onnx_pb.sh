#!/usr/bin/env bash
# Regenerates converter/src/onnx/pb.rs (committed) from the onnx.proto shipped
# in the pinned `onnx` PyPI package (see tools/requirements.txt). Builds need no
# protoc: the generated code is checked in and this script is run by hand when
# the pin moves.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup_venv.sh" >/dev/null
py="$root/.venv/bin/python"
proto_dir=$(mktemp -d)
trap 'rm -rf "$proto_dir"' EXIT
"$py" - "$proto_dir" <<'PY'
import os, shutil, sys, onnx
src = os.path.join(os.path.dirname(onnx.__file__), "onnx.proto")
shutil.copy(src, os.path.join(sys.argv[1], "onnx.proto"))
PY
version=$("$py" -c 'import onnx; print(onnx.__version__)')
ONNX_VERSION="$version" cargo run --quiet --release \
  --manifest-path "$root/tools/gen-onnx-pb/Cargo.toml" -- \
  "$proto_dir/onnx.proto" "$root/converter/src/onnx/pb.rs"
echo "converter/src/onnx/pb.rs regenerated from onnx $version"
