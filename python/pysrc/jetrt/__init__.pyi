"""Type stubs of the jetrt package (its native module, jetrt._jetrt)."""
from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__version__: str

class Error(Exception):
    """Every error jetrt raises; its message is the runtime's."""

class InvalidArgument(Error):
    """A bad argument: an unknown input or output name, option or device."""

class InvalidModel(Error):
    """The file is not a valid .jrt model (or cannot be read)."""

class InvalidInput(Error):
    """An input of the wrong dtype or shape, or a missing one."""

class Unavailable(Error):
    """What was asked for is not available here (no usable GPU, say)."""

class RuntimeFailure(Error):
    """A run failed (a GPU error, say)."""

class ConversionError(Error):
    """jetrt.convert failed: a malformed or unsupported ONNX model, unusable calibration data."""

_Path = Union[str, "PathLike[str]"]
_Boards = Union[str, Sequence[str]]

class NodeArg:
    """A model input or output, as onnxruntime's NodeArg."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> List[int]: ...
    @property
    def dtype(self) -> np.dtype: ...
    @property
    def type(self) -> str:
        """onnxruntime's type string, e.g. "tensor(float)"."""
    @property
    def nbytes(self) -> int: ...

class InferenceSession:
    """A model ready to run. Calls on one session from several threads run
    one at a time; separate sessions run in parallel (the GIL is released
    while a model runs)."""

    input_copies: int
    """Inputs of the last run that had to be converted (copied) first: not
    C-contiguous, or not a numpy array."""

    def __init__(
        self,
        path: _Path,
        device: str = "auto",
        threads: int = 0,
        cpu_kernels: Optional[str] = None,
        int8_kernels: Optional[str] = None,
        fp16: bool = False,
        monitor: bool = False,
        drift_window: int = 100,
    ) -> None:
        """device: "auto" (the GPU when one works), "cpu" or "cuda"; threads: 0
        for what the process may use; monitor: watch every run with the file's
        drift reference over a window of drift_window runs (see drift())."""
    def get_inputs(self) -> List[NodeArg]: ...
    def get_outputs(self) -> List[NodeArg]: ...
    def run(self, output_names: Optional[Sequence[str]], input_feed: Dict[str, np.ndarray]) -> List[np.ndarray]: ...
    def run_into(self, input_feed: Dict[str, np.ndarray], outputs: Dict[str, np.ndarray]) -> None: ...
    def info(self) -> Dict[str, Any]:
        """backend, threads, kernel variants, arena and allocated bytes."""
    def model_info(self, boards: Optional[_Boards] = None) -> Dict[str, Any]:
        """As jetrt.model_info(path, boards)."""
    def drift(self) -> Dict[str, Any]:
        """The drift monitor's state (needs monitor=True): verdict ("ok", "warn",
        "alarm"), ready, samples, window, and per watched tensor its name, psi,
        ks, mean_shift, verdict and worst_feature."""

def model_info(path: _Path, boards: Optional[_Boards] = None) -> Dict[str, Any]:
    """A .jrt file's metadata, inputs, outputs and memory figures (file,
    weights, arena, scratch bytes); with boards ("all", a profile name or a
    list) whether it fits each board's memory, as jetc inspect --board."""

def convert(
    model: _Path,
    output: _Path,
    *,
    input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
    bind: Optional[Mapping[str, np.ndarray]] = None,
    name: Optional[str] = None,
    golden: int = 2,
    precision: str = "fp32",
    calib: Optional[_Path] = None,
    calib_method: str = "mse",
    percentile: float = 99.99,
    calib_limit: int = 256,
    group_size: int = 32,
    max_drop: Optional[float] = None,
    prune: Optional[str] = None,
    resize: Optional[Tuple[int, int]] = None,
    mean: Union[float, Sequence[float], None] = None,
    std: Union[float, Sequence[float], None] = None,
    layout: str = "nchw",
    bgr: bool = False,
    drift_ref: Optional[_Path] = None,
    drift_ref_limit: int = 1000,
    no_drift_ref: bool = False,
    boards: Optional[_Boards] = None,
    cuda_arch: Optional[Sequence[str]] = None,
    nvrtc: Optional[Sequence[_Path]] = None,
    cpu_kernels: Optional[str] = None,
    int8_kernels: Optional[str] = None,
    quiet: bool = False,
) -> Dict[str, Any]:
    """Converts an ONNX model into a .jrt file as `jetc convert` does (each
    keyword is that command's flag: precision "fp32" | "int8" | "int4", calib
    a folder of INPUT.K.npy files or images, prune "magnitude=S" | "2:4" |
    "channels=S", boards refuses a model that does not fit, cuda_arch
    compiles the CUDA kernels into the file) and returns the report that
    `jetc convert --report` writes. Progress goes to stderr unless quiet."""

def cuda_available() -> Tuple[bool, str]:
    """(True, GPU name) or (False, the reason)."""
