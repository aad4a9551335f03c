"""The one exception hierarchy of sertk.

Every message says what was wrong and what to do about it. The CLI prints
``SertkError`` messages without a traceback and exits with status 2. :func:`require` turns a
missing optional package into a :class:`MissingDependencyError` that names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any


class SertkError(Exception):
    """Base class of every error sertk raises on purpose."""


class AudioError(SertkError):
    """Audio could not be read or is unusable (missing, empty, corrupt, NaN, absurd rate)."""


class AudioTooLongError(AudioError):
    """A recording lasts longer than the caller's limit (``max_duration``): announced by its
    header, or found while decoding. ``duration`` is what is known of its length in seconds (at
    least the limit) and ``limit`` the limit."""

    def __init__(self, message: str, *, duration: float = 0.0, limit: float = 0.0) -> None:
        super().__init__(message)
        self.duration, self.limit = duration, limit

    def __reduce__(self) -> tuple:  # picklable (worker processes send errors back)
        return type(self), (str(self),), {"duration": self.duration, "limit": self.limit}


class CorpusError(SertkError):
    """A corpus directory or manifest is missing, malformed or inconsistent."""


class FoldError(SertkError):
    """A split is impossible or would leak speakers between train and test."""


class FeatureError(SertkError):
    """A feature extractor is misconfigured or cannot run on the given input."""


class ConfigError(SertkError):
    """A configuration file or ``--set`` override is invalid."""


class BundleError(SertkError):
    """A model bundle is missing, corrupt or incompatible with this version."""


class MissingDependencyError(SertkError):
    """An optional package (an extra of sertk) that this path needs is not installed."""


# extra -> what it adds, for the messages of ``require``
EXTRAS = {
    "neural": "torch: the GRU/CNN/mean-pool models, their training and torch bundles",
    "ssl": "torch + transformers: HuBERT/wav2vec2/WavLM features",
    "onnx": "onnx + onnxruntime: sertk export and the onnx backend",
    "gui": "PySide6: sertk gui",
    "serve": "fastapi + uvicorn: sertk serve",
    "live": "sounddevice: the microphone",
    "opensmile": "opensmile: eGeMAPS/ComParE features",
    "ray": "ray[data]: --engine ray (Ray Data extraction and prediction, Ray Train)",
}


def require(module: str, *, extra: str, what: str) -> Any:
    """Import the optional ``module`` that ``what`` needs; MissingDependencyError naming the
    extra to install (``pip install 'sertk[extra]'``) when it is missing.

    >>> require("numpy", extra="neural", what="this example").__name__
    'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        hint = (
            "; for torch, the CPU-only wheel: pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu"
            if module.split(".")[0] == "torch"
            else ""
        )
        raise MissingDependencyError(
            f"{what} needs {module.split('.')[0]}, which is not installed ({error}): "
            f"pip install 'sertk[{extra}]' ({EXTRAS.get(extra, extra)}){hint}"
        ) from None


class ClusterError(SertkError):
    """A compute cluster (Ray) is not installed, unreachable or failed a distributed job."""
