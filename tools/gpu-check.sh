#!/usr/bin/env bash
# The GPU check (issue: CUDA backend). On a machine with an NVIDIA GPU:
#
#   cargo build --release && tools/gen_testdata.sh && tools/gpu-check.sh
#
# runs the op conformance cases and the model tests on the cuda backend,
# compares every output with the CPU backend, and benchmarks ResNet-18 and
# MobileNet v2 against PyTorch (eager and CUDA graphs) on the same GPU.
# Python: numpy and onnx (PyTorch + torchvision for the comparison).
# Options go to tools/gpu_check.py (--jetrt, --jetc, --cases, --node-cases,
# --test-bins, --out, ...); tools/gpu-test-bins.sh builds the test binaries.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=${PYTHON:-python3}
if ! command -v nvidia-smi >/dev/null; then
    echo "gpu-check: no nvidia-smi here; this check needs a machine with an NVIDIA GPU" >&2
    exit 2
fi
# Kernels not yet verified on a GPU (per-tensor Quantize, int8 MaxPool, Cast,
# ConvTranspose, Resize, LRN, sparse weights) are opt-in until this check has passed with them;
# the check turns them on.
export JETRT_CUDA_UNVERIFIED=${JETRT_CUDA_UNVERIFIED:-1}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
exec "$py" "$root/tools/gpu_check.py" "$@"
