#!/usr/bin/env python3
"""Export the weight-stripped real-model fixtures in tools/models/torchvision/.

Developer-only: needs torch + torchvision + onnx (a separate venv, NOT the
repo's .venv; CI and users never run this). For example:

    python3 -m venv ~/torchvenv
    ~/torchvenv/bin/pip install torch torchvision onnx==1.23.2 onnxscript
    ~/torchvenv/bin/python tools/export_torchvision.py

Every model is built with random init (weights=None: nothing is downloaded),
put in eval mode and exported with the legacy TorchScript exporter
(dynamo=False) at opsets 13 and 17, with dynamic batch/height/width
(transformer: batch/sequence). The full model is checked with onnx.checker,
then every tensor with more than 16 elements is stripped (see fill_weights.py)
so the committed files stay a few KB. Tests fill the weights back with seeded
random values (fill_weights.fill_model) before running onnxruntime.
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import os
import sys

import onnx
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fill_weights import strip_model  # noqa: E402

OPSETS = (13, 17)
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "torchvision")


class TinyEncoder(torch.nn.Module):
    """Embedding(1000, 64) -> 4 x TransformerEncoderLayer(64, 4 heads, ff 128, gelu) -> LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(1000, 64)
        layer = torch.nn.TransformerEncoderLayer(
            d_model=64, nhead=4, dim_feedforward=128, batch_first=True, activation="gelu"
        )
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(64)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.encoder(self.embed(input_ids)))

    def use_export_attention(self, opset: int) -> None:
        """Swap every layer's MultiheadAttention.forward for a trace-friendly one.

        Stock nn.MultiheadAttention does not survive the TorchScript exporter with
        a dynamic sequence length (torch 2.15): `k.view(k.shape[0], ...)` after
        the packed in-projection is exported with k.shape[0] baked in as a
        constant, so any other sequence length fails in Reshape. And
        aten::scaled_dot_product_attention only exports from opset 14 on.
        This forward computes exactly the same function from the same
        parameters (in_proj_weight/bias, out_proj): SDPA at opset >= 14,
        explicit MatMul + Softmax + MatMul below. `export` checks it against
        the stock module before exporting.
        """
        for layer in self.encoder.layers:
            mha = layer.self_attn
            mha.forward = functools.partial(_self_attention, mha, opset >= 14)


def _self_attention(mha, use_sdpa, query, key=None, value=None, key_padding_mask=None,
                    need_weights=False, attn_mask=None, average_attn_weights=True, is_causal=False):
    # self-attention only, batch_first, no masks (what TinyEncoder uses)
    assert key_padding_mask is None and attn_mask is None and not is_causal
    n, s = query.size(0), query.size(1)
    h, d = mha.num_heads, mha.head_dim
    qkv = torch.nn.functional.linear(query, mha.in_proj_weight, mha.in_proj_bias)
    qkv = qkv.reshape(n, s, 3, h, d).permute(2, 0, 3, 1, 4)  # [3, N, H, S, D]
    q, k, v = qkv[0], qkv[1], qkv[2]
    if use_sdpa:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    else:
        scale = 1.0 / math.sqrt(d)
        attn = torch.softmax(torch.matmul(q * scale, k.transpose(-2, -1)), dim=-1)
        out = torch.matmul(attn, v)
    out = out.transpose(1, 2).reshape(n, s, h * d)
    return mha.out_proj(out), None


def _image(name: str):
    ctor = getattr(torchvision.models, name)
    return (
        lambda: ctor(weights=None),
        torch.randn(1, 3, 224, 224),
        "input",
        "logits",
        {"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
    )


MODELS = {
    "resnet18": _image("resnet18"),
    "mobilenet_v2": _image("mobilenet_v2"),
    "mobilenet_v3_small": _image("mobilenet_v3_small"),
    "efficientnet_b0": _image("efficientnet_b0"),
    "transformer_encoder": (
        TinyEncoder,
        torch.randint(0, 1000, (2, 7), dtype=torch.int64),
        "input_ids",
        "hidden",
        {"input_ids": {0: "batch", 1: "sequence"}, "hidden": {0: "batch", 1: "sequence"}},
    ),
}


def make_params_distinct(model: torch.nn.Module) -> None:
    """Perturb every parameter / BN statistic so no two tensors are equal.

    TransformerEncoder deep-copies one layer, and norm layers start at exactly
    ones / zeros; the exporter would then merge equal tensors into one shared
    initializer. The values themselves are stripped afterwards anyway.
    """
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.track_running_stats:
                mod.running_mean.normal_(0.0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)


def export(name: str, opset: int, out_dir: str) -> str:
    ctor, example, in_name, out_name, dyn = MODELS[name]
    torch.manual_seed(0)
    model = ctor().eval()
    make_params_distinct(model)
    if hasattr(model, "use_export_attention"):
        stock = copy.deepcopy(model)
        model.use_export_attention(opset)
        # grad stays enabled (as in the export below): otherwise TransformerEncoderLayer
        # takes its fused fast path and never calls self_attn.forward.
        for shape in ((1, 5), (3, 17)):
            ids = torch.randint(0, 1000, shape)
            diff = (model(ids) - stock(ids)).abs().max().item()
            assert diff < 1e-4, f"export attention differs from nn.MultiheadAttention by {diff}"
    full = os.path.join(out_dir, f".{name}_op{opset}.full.onnx")
    # No torch.no_grad() here: with grad disabled, TransformerEncoderLayer takes its
    # fused fast path (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    torch.onnx.export(
        model,
        (example,),
        full,
        dynamo=False,
        opset_version=opset,
        input_names=[in_name],
        output_names=[out_name],
        dynamic_axes=dyn,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
    )
    m = onnx.load(full)
    onnx.checker.check_model(m, full_check=True)
    os.remove(full)
    m.producer_name = "jetrt tools/export_torchvision.py via torch.onnx (TorchScript)"
    m.doc_string = f"{name}, random init, weights stripped (fill with tools/fill_weights.py)"
    strip_model(m)
    path = os.path.join(out_dir, f"{name}_op{opset}.onnx")
    onnx.save(m, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description="export weight-stripped torchvision fixtures")
    ap.add_argument("--out-dir", default=OUT_DIR)
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), help="export just these models")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.only or MODELS:
        for opset in OPSETS:
            path = export(name, opset, args.out_dir)
            print(f"{os.path.getsize(path):>8} {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
