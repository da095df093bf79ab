"""jetrt: run .jrt models (converted from ONNX by jetc) on the CPU or an NVIDIA GPU.

The API follows onnxruntime's::

    import jetrt, numpy as np
    sess = jetrt.InferenceSession("model.jrt", device="auto", threads=0)
    name = sess.get_inputs()[0].name
    (probs,) = sess.run(None, {name: np.zeros(sess.get_inputs()[0].shape, np.float32)})

Errors are subclasses of ``jetrt.Error`` carrying the runtime's messages.
See docs/PYTHON.md.
"""
from ._jetrt import (  # noqa: F401
    Error,
    InferenceSession,
    InvalidArgument,
    InvalidInput,
    InvalidModel,
    NodeArg,
    RuntimeFailure,
    Unavailable,
    __version__,
    cuda_available,
)

__all__ = [
    "Error",
    "InferenceSession",
    "InvalidArgument",
    "InvalidInput",
    "InvalidModel",
    "NodeArg",
    "RuntimeFailure",
    "Unavailable",
    "__version__",
    "cuda_available",
]
