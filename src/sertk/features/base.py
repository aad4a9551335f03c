"""The feature-extractor contract and the checks every extractor shares.

An extractor is a callable ``extract(signal, sampling_rate) -> np.ndarray`` returning float32
``[frames, dim]`` (or ``[layers, frames, dim]`` when ``layers`` is set) with attributes

- ``name``: the key of :data:`sertk.features.FEATURES` that builds it;
- ``dim``: feature size; ``frame_rate``: frames per second (0 for utterance-level ``[1, dim]``);
- ``layers``: number of stacked layers in the output, or None for ``[frames, dim]`` output;
- ``sampling_rate``: the rate it needs (None if any rate works);
- ``config()``: JSON-serialisable dict with ``name`` that ``build_extractor`` rebuilds it from and
  that keys the feature cache.

Extractors that batch well add ``extract_batch(signals, sampling_rate) -> list[np.ndarray]``
whose items equal per-item calls. Extractors that run their own thread pool (torch,
onnxruntime) set ``threaded = True``: batch work then runs them in one process
(:func:`runs_own_threads`, :mod:`sertk.parallel`). :class:`Extractor` is a convenience base; the contract is
structural (:class:`FeatureExtractor`), so classes need not inherit it.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from sertk.errors import FeatureError


@runtime_checkable
class FeatureExtractor(Protocol):
    """Structural type of every extractor (see the module docstring)."""

    name: str
    dim: int
    frame_rate: float

    def __call__(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray: ...

    def config(self) -> dict[str, Any]: ...


class Extractor:
    """Base with signal validation, ``extract_batch`` by looping, and ``from_config``.

    Subclasses set ``name``, ``dim``, ``frame_rate``, ``sampling_rate`` and implement
    ``_extract(signal [samples] float32) -> [frames, dim]`` and ``config()``.
    """

    name: ClassVar[str] = ""
    dim: int
    frame_rate: float
    layers: int | None = None
    sampling_rate: int | None = None

    def __call__(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        """Features ``[frames, dim]`` float32 of a mono ``[samples]`` signal."""
        return self._extract(check_signal(signal, sampling_rate, expected=self.sampling_rate))

    def extract_batch(self, signals: list[np.ndarray], sampling_rate: int) -> list[np.ndarray]:
        """Per-item features of several signals; equals ``[self(s, sampling_rate) for s in signals]``."""
        return [self(signal, sampling_rate) for signal in signals]

    def _extract(self, signal: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, params: dict[str, Any]) -> Extractor:
        """Build from ``config()`` minus ``name``; unknown keys raise FeatureError."""
        check_params(cls, params)
        return cls(**params)


def runs_own_threads(extractor: Any) -> bool:
    """Whether ``extractor`` runs its own thread pool (``threaded``: torch, onnxruntime), so
    batch work should not add worker processes around it."""
    return bool(getattr(extractor, "threaded", False))


def check_params(cls: type, params: dict[str, Any], *, extra: tuple[str, ...] = ()) -> None:
    """Raise FeatureError naming any key of ``params`` that ``cls(...)`` does not accept."""
    accepted = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    unknown = sorted(set(params) - set(accepted) - set(extra))
    if unknown:
        raise FeatureError(
            f"unknown option(s) {unknown} for feature extractor {getattr(cls, 'name', cls)!r}; "
            f"valid options: {sorted(accepted)}"
        )


def check_signal(signal: Any, sampling_rate: Any, *, expected: int | None) -> np.ndarray:
    """Validate one mono signal and return it as contiguous float32 ``[samples]``.

    Raises FeatureError for a non-array, multichannel, empty or non-finite signal and for a
    sampling rate other than ``expected`` (None accepts any positive rate).
    """
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)):
        raise FeatureError(f"sampling_rate must be an integer in Hz, got {sampling_rate!r}")
    if expected is not None and sampling_rate != expected:
        raise FeatureError(
            f"this extractor needs {expected} Hz audio but got {sampling_rate} Hz: resample first, "
            f"e.g. load_audio(path, sampling_rate={expected})"
        )
    if sampling_rate <= 0:
        raise FeatureError(f"sampling_rate must be positive, got {sampling_rate}")
    if not isinstance(signal, np.ndarray):
        raise FeatureError(f"signal must be a numpy array [samples], got {type(signal).__name__}")
    if signal.ndim != 1:
        raise FeatureError(
            f"signal must be mono [samples], got shape {signal.shape}: "
            "mix down first (load_audio(path, mono=True) or signal.mean(axis=0))"
        )
    if not np.issubdtype(signal.dtype, np.floating):
        raise FeatureError(
            f"signal must be floating point in [-1, 1], got dtype {signal.dtype}: "
            "load it with sertk.audio.load_audio or divide integer PCM by its full scale"
        )
    if signal.size == 0:
        raise FeatureError("signal is empty: give at least one sample of audio")
    out = np.ascontiguousarray(signal, dtype=np.float32)
    if not np.isfinite(out).all():
        raise FeatureError("signal contains NaN or infinite samples: clean or re-decode the audio")
    return out


def check_number(
    name: str,
    value: Any,
    *,
    kind: type = int,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    """Return ``value`` if it is a ``kind`` (int accepted for float) within bounds, else FeatureError."""
    ok_types = (int, float, np.integer, np.floating) if kind is float else (int, np.integer)
    if isinstance(value, bool) or not isinstance(value, ok_types):
        raise FeatureError(f"{name} must be {kind.__name__}, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"[{minimum if minimum is not None else '-inf'}, {maximum if maximum is not None else 'inf'}]"
        raise FeatureError(f"{name} must lie in {bounds}, got {value!r}")
    return kind(value)
