"""The plumbing behind :class:`~sertk.recognizer.Recognizer`'s hops, kept out of its way.

- :func:`check_backend` and :func:`load_scorer`: the scorer of a bundle (``BundleModel`` with
  torch, ``OnnxBundleModel`` with onnxruntime) and one feature extractor per model input;
- :func:`view_signals`: a view of the preprocessed signals (speed, crop) for test-time augmentation;
- :func:`score_attention`: probabilities plus per-item attention weights, per backend;
- :func:`check_batch_options`: the arguments of ``predict_batch`` that hold for any bundle;
- :func:`is_audio_source`: what ``load_audio`` reads, as opposed to an in-memory signal.

Like ``recognizer.py``, importing this module costs numpy only: torch, onnxruntime and the
feature extractors are imported by the functions that need them.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from sertk.errors import ConfigError, SertkError

BACKENDS = ("torch", "onnx")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    return backend


def check_batch_options(items: list, speakers, on_error: str, batch_size: int) -> None:
    """The options of ``Recognizer.predict_batch`` that hold for any bundle."""
    if not items:
        raise SertkError("nothing to predict: give at least one file or signal")
    if on_error not in ("raise", "return"):
        raise ConfigError(f"on_error must be 'raise' or 'return', got {on_error!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if speakers is not None and len(speakers) != len(items):
        raise SertkError(f"got {len(items)} items but {len(speakers)} speakers; give one each")


def is_audio_source(item: Any) -> bool:
    """A path, bytes or binary file object (read with ``load_audio``), not an in-memory signal."""
    return isinstance(item, str | os.PathLike | bytes | bytearray | memoryview) or hasattr(
        item, "read"
    )


def load_scorer(
    bundle: Any, *, backend: str, device: str, threads: int | None
) -> tuple[Any, list[Any], bool]:
    """``(scorer, [extractor per model input], has_attention)`` for ``bundle`` on ``backend``."""
    if backend == "onnx":
        from sertk.export import OnnxBundleModel

        scorer = OnnxBundleModel(bundle, threads=threads)
        extractors = [item.build_extractor() for item in scorer.inputs]
        return scorer, extractors, bool(scorer.has_attention)
    from sertk.inference import BundleModel

    scorer = BundleModel(bundle, device=device)
    extractors = [build_extractor(item.features, device) for item in scorer.inputs]
    model = getattr(scorer, "model", None) if scorer.kind == "torch" else None
    return scorer, extractors, bool(getattr(model, "has_attention", False))


def build_extractor(features: dict[str, Any], device: str) -> Any:
    """The extractor of a bundle's feature config; an SSL encoder runs on ``device`` (a
    runtime-only option that does not change the features)."""
    from sertk.features import build_extractor

    if device == "cpu" or features.get("name") != "ssl":
        return build_extractor(features)
    return build_extractor(features, device=device)


def view_signals(inputs: Any, signals: dict[int, list], features: dict, view: Any) -> dict:
    """Hop 2b (test-time views): ``view`` (a :class:`sertk.views.View`: speed or crop) of the
    preprocessed signals of the items still in play (those in ``features``), re-cropped to a
    fixed length if the bundle crops. ``inputs`` are the recognizer's ``(Preprocess, extractor)``
    pairs."""
    return {
        i: [view(x, p.sampling_rate, p) for x, (p, _) in zip(parts, inputs, strict=True)]
        for i, parts in signals.items()
        if i in features
    }


def score_attention(
    scorer: Any, features: list[np.ndarray], speakers, *, backend: str, device: str
):
    """Probabilities ``[n, classes]`` and attention ``[frames]`` per item (or None)."""
    if backend == "onnx":
        probabilities, matrices = scorer.predict_attention(features, speakers=speakers)
        weights = [None if m is None else m.mean(axis=0).astype(np.float32) for m in matrices]
        return probabilities, weights
    return _score_with_attention(scorer, features, speakers, device)


def _score_with_attention(scorer: Any, features: list[np.ndarray], speakers, device: str):
    """Probabilities ``[n, classes]`` and attention ``[frames]`` per item from a torch model.

    The weights of item ``b`` are ``A[b, :L, :L].mean(axis=0)`` over its ``L`` valid frames: how
    much the average query frame attends to each frame (sums to 1).
    """
    import torch

    from sertk.training import collate

    inputs = scorer.prepare(features, speakers=speakers)
    rows, weights = [], []
    for start in range(0, len(inputs), scorer.batch_size):
        batch, lengths, _ = collate(inputs[start : start + scorer.batch_size])
        with torch.inference_mode():
            logits, matrix = scorer.model(
                batch.to(device), lengths.to(device), return_attention=True
            )
        rows.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        for square, length in zip(matrix.float().cpu().numpy(), lengths.tolist(), strict=True):
            weights.append(square[:length, :length].mean(axis=0).astype(np.float32))
    return np.concatenate(rows), weights
