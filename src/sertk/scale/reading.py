"""The read stage of the Ray pipelines: a batch of paths -> decoded (and preprocessed) signals.

It runs as Ray tasks ahead of the actor pool (Ray fuses it into the actors when both ask for the
same resources, i.e. on CPU, and keeps it in separate CPU tasks when the actors hold GPUs).
A file that cannot be read yields an empty signal and its error message, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sertk.audio import Preprocess, load_audio


def read_audio(
    batch: dict[str, np.ndarray],
    *,
    sampling_rate: int,
    preprocess: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"path": [...], ...}`` -> the same columns plus ``signal`` (float32 ``[samples]`` each),
    ``seconds`` (the signal's duration) and ``error`` ("" when the file read fine).

    Each file goes through ``sertk.audio.load_audio(path, sampling_rate=sampling_rate)`` and,
    when ``preprocess`` (a ``Preprocess.to_dict()``) is given, through that chain in inference
    mode: the very calls the local paths make.
    """
    chain = None if preprocess is None else Preprocess.from_dict(preprocess)
    signals, seconds, errors = [], [], []
    for path in batch["path"]:
        try:
            signal, rate = load_audio(str(path), sampling_rate=sampling_rate)
            if chain is not None:
                signal = chain(signal, rate)
            signals.append(np.ascontiguousarray(signal, dtype=np.float32))
            seconds.append(signal.shape[-1] / rate)
            errors.append("")
        except Exception as error:  # noqa: BLE001 (an unreadable file is a row, not a failed job)
            signals.append(np.zeros(0, dtype=np.float32))
            seconds.append(0.0)
            errors.append(str(error) or type(error).__name__)
    return {
        **batch,
        "signal": _ragged(signals),
        "seconds": np.asarray(seconds),
        "error": np.asarray(errors, dtype=object),
    }


def _ragged(signals: list[np.ndarray]) -> np.ndarray:
    """An object array of 1-D signals (Ray stores it as a variable-shaped tensor column)."""
    column = np.empty(len(signals), dtype=object)
    for i, signal in enumerate(signals):  # item by item: equal lengths must not become 2-D
        column[i] = signal
    return column
