"""Argument checks of the live engine: each wrong input gets a precise ConfigError/AudioError."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sertk.audio import check_rate
from sertk.errors import AudioError, ConfigError, SertkError


def seconds(name: str, value: Any) -> float:
    """A positive, finite number of seconds as float."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def timing(window: Any, hop: Any, buffer: Any) -> tuple[float, float, float]:
    """Checked ``(window, hop, buffer)``: the buffer must hold a window plus a hop."""
    window, hop, buffer = seconds("window", window), seconds("hop", hop), seconds("buffer", buffer)
    if hop > window:
        raise ConfigError(
            f"hop ({hop} s) must not exceed window ({window} s): audio would be missed"
        )
    if buffer < window + hop:
        raise ConfigError(
            f"buffer ({buffer} s) must hold at least window + hop ({window + hop} s); "
            f"use buffer={window + hop:g} or more"
        )
    return window, hop, buffer


def rate(sampling_rate: Any) -> int:
    try:
        return check_rate(sampling_rate)
    except AudioError as error:
        raise ConfigError(str(error)) from None


def labels(values: Sequence[str]) -> tuple[str, ...]:
    values = tuple(values) if not isinstance(values, str) else ()
    if len(values) < 2 or not all(isinstance(x, str) and x for x in values):
        raise ConfigError(f"labels must be two or more non-empty strings, got {values!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"labels must be unique, got {list(values)}")
    return values


def gate(vad: Any, default: Callable[[], Any]) -> Callable[[np.ndarray, int], bool] | None:
    if vad is True:
        return default()
    if vad is False or vad is None:
        return None
    if callable(vad):
        return vad
    raise ConfigError(
        f"vad must be True, False or a gate(window, sampling_rate) -> bool; got {vad!r}"
    )


def history(size: Any) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"history must be a positive number of results or None, got {size!r}")
    return size


def block(value: Any) -> np.ndarray:
    """A mono float32 ``[samples]`` block, finite. ``[channels, samples]`` is averaged; integer
    PCM is scaled to [-1, 1)."""
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.integer):
        array = array / float(np.iinfo(array.dtype).max + 1)
    array = array.astype(np.float32, copy=False)
    if array.ndim == 2:
        if array.shape[0] > array.shape[1]:
            raise AudioError(
                f"an audio block of shape {array.shape} looks like [samples, channels]; "
                "pass [channels, samples] (its transpose) or mono [samples]"
            )
        array = array.mean(axis=0)
    if array.ndim != 1:
        raise AudioError(
            f"an audio block must be [samples] or [channels, samples], got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise AudioError("an audio block holds NaN or infinite samples; check the audio source")
    return np.ascontiguousarray(array)


def probability_row(prediction: Any, labels: Sequence[str]) -> np.ndarray:
    """float64 ``[classes]`` in ``labels`` order from a prediction (``.probabilities``), a
    ``{label: p}`` mapping or a ``[classes]`` array."""
    value = getattr(prediction, "probabilities", prediction)
    if isinstance(value, Mapping):
        missing = [label for label in labels if label not in value]
        if missing:
            raise SertkError(
                f"the model's prediction lacks labels {missing} (it has {list(value)}); "
                "give the engine the model's own labels"
            )
        value = [value[label] for label in labels]
    row = np.asarray(value, dtype=np.float64)
    if row.shape != (len(labels),) or not np.isfinite(row).all():
        raise SertkError(
            f"predict must return {len(labels)} finite probabilities (one per label), "
            f"got {row.shape} {row.ravel()[:8].tolist()}"
        )
    return row
