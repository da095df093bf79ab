"""Type stubs of the jetrt package (its native module, jetrt._jetrt)."""
from os import PathLike
from typing import Dict, List, Optional, Sequence, Tuple, Union

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
        path: Union[str, "PathLike[str]"],
        device: str = "auto",
        threads: int = 0,
        cpu_kernels: Optional[str] = None,
        int8_kernels: Optional[str] = None,
        fp16: bool = False,
    ) -> None: ...
    def get_inputs(self) -> List[NodeArg]: ...
    def get_outputs(self) -> List[NodeArg]: ...
    def run(self, output_names: Optional[Sequence[str]], input_feed: Dict[str, np.ndarray]) -> List[np.ndarray]: ...
    def run_into(self, input_feed: Dict[str, np.ndarray], outputs: Dict[str, np.ndarray]) -> None: ...
    def info(self) -> Dict[str, object]: ...

def cuda_available() -> Tuple[bool, str]:
    """(True, GPU name) or (False, the reason)."""
