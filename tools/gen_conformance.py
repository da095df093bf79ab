"""Writes the ONNX backend node test cases (onnx.backend.test.case.node) as
folders the Rust conformance test reads (tests/tests/conformance.rs).

    python tools/gen_conformance.py OUT_DIR

Layout, one folder per case: OUT_DIR/<case>/model.onnx, input_K.npy,
expected_K.npy and case.json (input/output names and files, rtol/atol as
the onnx runner uses them, op types, opset). Cases whose data cannot be
stored as .npy (sequences, optionals, strings) get case.json with
"unrepresentable": why, and no data. OUT_DIR/index.json lists every case.
"""

import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
from onnx.backend.test.case.node import collect_testcases

NPY_KINDS = "fiub"  # float, signed, unsigned, bool


def opset_of(model):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 0


def normalize(v):
    """numpy scalars and TensorProtos as arrays; anything else as it is."""
    if isinstance(v, onnx.TensorProto):
        try:
            return onnx.numpy_helper.to_array(v)
        except Exception:  # noqa: BLE001 - an element type numpy cannot hold
            return v
    if isinstance(v, np.generic):
        return np.asarray(v)
    return v


def storable(v):
    return isinstance(v, np.ndarray) and v.dtype.kind in NPY_KINDS


def main(out):
    warnings.simplefilter("ignore")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    index = []
    for case in collect_testcases():
        d = os.path.join(out, case.name)
        os.makedirs(d)
        g = case.model.graph
        ops = sorted({(n.domain or "") + ("::" if n.domain else "") + n.op_type for n in g.node})
        info = {
            "name": case.name,
            "rtol": float(case.rtol),
            "atol": float(case.atol),
            "ops": ops,
            "opset": opset_of(case.model),
            "inputs": [],
            "outputs": [],
        }
        # Inputs fed at run time: the graph inputs that are not initializers.
        init = {t.name for t in g.initializer}
        in_names = [v.name for v in g.input if v.name not in init]
        out_names = [v.name for v in g.output]
        if not case.data_sets:
            info["unrepresentable"] = "the case has no data set"
        else:
            # One data set per case (the onnx runner checks each alike).
            inputs, outputs = case.data_sets[0]
            inputs, outputs = [normalize(v) for v in inputs], [normalize(v) for v in outputs]
            bad = [v for v in list(inputs) + list(outputs) if not storable(v)]
            if bad:
                kinds = sorted({type(v).__name__ if not isinstance(v, np.ndarray) else f"array of {v.dtype}" for v in bad})
                info["unrepresentable"] = "data that .npy cannot hold: " + ", ".join(kinds)
            elif len(inputs) > len(in_names) or len(outputs) != len(out_names):
                info["unrepresentable"] = "data set and graph disagree on the number of inputs or outputs"
            else:
                for k, v in enumerate(inputs):
                    f = f"input_{k}.npy"
                    np.save(os.path.join(d, f), np.array(v, order="C"))
                    info["inputs"].append({"name": in_names[k], "file": f})
                for k, v in enumerate(outputs):
                    f = f"expected_{k}.npy"
                    np.save(os.path.join(d, f), np.array(v, order="C"))
                    info["outputs"].append({"name": out_names[k], "file": f})
        onnx.save(case.model, os.path.join(d, "model.onnx"))
        with open(os.path.join(d, "case.json"), "w") as fh:
            json.dump(info, fh, indent=1)
        index.append(case.name)
    with open(os.path.join(out, "index.json"), "w") as fh:
        json.dump({"onnx_version": onnx.__version__, "cases": sorted(index)}, fh, indent=1)
    print(f"{len(index)} ONNX node cases written to {out}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
