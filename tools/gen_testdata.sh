#!/usr/bin/env bash
# Generates the test data the Rust tests read (see tools/gen_testdata.py for the layout) and
# the ONNX backend node cases for the conformance test (tools/gen_conformance.py), and the
# real exported models with onnxruntime references (tools/gen_realmodels.py), and the
# drift monitoring data (tools/gen_driftdata.py).
#
#   tools/gen_testdata.sh [OUT_DIR]      (default: <repo>/target/testdata)
#
# Sets up <repo>/.venv first (tools/setup_venv.sh). Skips the work when OUT_DIR/.stamp holds
# the sha256 of gen_testdata.py + requirements.txt and every file the manifest lists is
# there. Prints a one-line summary on stdout; progress goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-"$root/target/testdata"}
py=$("$root/tools/setup_venv.sh")

want=$(cat "$root/tools/gen_testdata.py" "$root/tools/gen_conformance.py" "$root/tools/gen_realmodels.py" "$root/tools/fill_weights.py" "$root/tools/gen_quantdata.py" "$root/tools/gen_ppocr_quant.py" \
  "$root/tools/gen_driftdata.py" "$root/tools/make_example.py" \
  "$root/tools/gen_bench_models.py" "$root"/tools/models/torchvision/*.onnx "$root/tools/requirements.txt" | sha256sum | cut -d' ' -f1)
stamp="$out/.stamp"

# Checks that every case the manifest lists is complete; prints the counts per group.
check() {
  "$py" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
m = json.load(open(os.path.join(out, "manifest.json")))
for group in ("zoo", "zoo_random", "ops", "external"):
    for case in m[group]:
        d = os.path.join(out, case)
        c = json.load(open(os.path.join(d, "case.json")))
        for f in ["model.onnx"] + [e["file"] for e in c["inputs"] + c["outputs"]]:
            if not os.path.isfile(os.path.join(d, f)):
                sys.exit(f"missing {os.path.join(case, f)}")
for e in m["external_bad"]:
    if not os.path.isfile(os.path.join(out, e["path"])):
        sys.exit(f"missing {e['path']}")
real = json.load(open(os.path.join(out, "real", "index.json")))
for case in real["cases"]:
    if not os.path.isfile(os.path.join(out, "real", case, "expected_0.npy")):
        sys.exit(f"missing real/{case}/expected_0.npy")
idx = json.load(open(os.path.join(out, "onnx_node", "index.json")))
for case in idx["cases"]:
    if not os.path.isfile(os.path.join(out, "onnx_node", case, "case.json")):
        sys.exit(f"missing onnx_node/{case}/case.json")
for case in ("digits_mlp", "digits_cnn", "ppocr_rec", "ppocr_det", "ppocr_cls"):
    if not os.path.isfile(os.path.join(out, "quant", case, "meta.json")):
        sys.exit(f"missing quant/{case}/meta.json")
if not os.path.isfile(os.path.join(out, "drift", "meta.json")):
    sys.exit("missing drift/meta.json")
print(", ".join(f"{len(v)} {k}" for k, v in m.items()) + f", {len(idx['cases'])} onnx_node, {len(real['cases'])} real")
PY
}

start=$SECONDS
if [[ -f "$stamp" && $(cat "$stamp") == "$want" ]] && counts=$(check 2>/dev/null); then
  echo "testdata up to date in $out: $counts"
  exit 0
fi

rm -f "$stamp"
"$py" "$root/tools/gen_testdata.py" "$out"
"$py" "$root/tools/gen_conformance.py" "$out/onnx_node"
"$py" "$root/tools/gen_realmodels.py" "$out/real" "$root/target/cache"
"$py" "$root/tools/gen_quantdata.py" "$out/quant"
"$py" "$root/tools/gen_ppocr_quant.py" "$out/quant" "$root/target/cache"
"$py" "$root/tools/gen_driftdata.py" "$out/drift"
counts=$(check)
echo "$want" >"$stamp"
echo "testdata generated in $out in $((SECONDS - start))s: $counts"
