"""jetrt: run .jrt models (converted from ONNX by jetc) on the CPU or an NVIDIA GPU.

The API follows onnxruntime's::

    import jetrt, numpy as np
    sess = jetrt.InferenceSession("model.jrt", device="auto", threads=0)
    name = sess.get_inputs()[0].name
    (probs,) = sess.run(None, {name: np.zeros(sess.get_inputs()[0].shape, np.float32)})

Converting, as ``jetc convert`` does (every keyword is that command's flag)::

    report = jetrt.convert("model.onnx", "model.jrt", input_shapes={"input": [1, 3, 224, 224]},
                           precision="int8", calib="calib/")

``jetrt.model_info(path, boards="all")`` gives the memory figures and the
board fit; ``InferenceSession(..., monitor=True).drift()`` the drift
monitor's verdict. Errors are subclasses of ``jetrt.Error`` carrying the
runtime's messages.
See docs/PYTHON.md.
"""
from ._jetrt import (  # noqa: F401
    ConversionError,
    Error,
    InferenceSession,
    InvalidArgument,
    InvalidInput,
    InvalidModel,
    NodeArg,
    RuntimeFailure,
    Unavailable,
    __version__,
    convert,
    cuda_available,
    model_info,
)

__all__ = [
    "ConversionError",
    "Error",
    "InferenceSession",
    "InvalidArgument",
    "InvalidInput",
    "InvalidModel",
    "NodeArg",
    "RuntimeFailure",
    "Unavailable",
    "__version__",
    "convert",
    "cuda_available",
    "model_info",
]
