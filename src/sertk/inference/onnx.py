"""The onnxruntime backend: sessions, the model forward and the SSL encoder (no torch).

- :func:`make_session`: an onnxruntime CPU session (the one place sertk opens one);
- :class:`OnnxForward`: ``head.onnx`` as a :class:`~sertk.inference.scorer.Forward`. A frame
  head (exported from a torch bundle) takes ``features [batch, (layers,) frames, dim]`` and
  ``lengths [batch]``; a classical graph takes ``features [batch, dim]``, one row per item.
  Both give ``probabilities [batch, classes]``, frame heads with attention also ``attention``;
- :class:`OnnxSslEncoder`: an SSL bundle's ``encoder.onnx`` behind the feature-extractor
  contract, reproducing ``sertk.features.ssl.SslEncoder`` (input normalisation, padding to
  ``min_samples``, batching plan, trimming to valid frames) from numbers the export wrote.

>>> import numpy as np
>>> from sertk.export import export_onnx
>>> _ = export_onnx("default", "default-onnx")  # its global model's head: [batch, 2798] -> [batch, 7]
>>> session = make_session("default-onnx/members/global/head.onnx", threads=1)
>>> features = np.zeros((1, 2798), np.float32)  # one utterance's feature row
>>> OnnxForward(session)([features])[0].shape
(1, 7)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import BundleError, FeatureError, SertkError, require
from sertk.features.base import check_number
from sertk.features.waveform import WaveformEncoderMixin, pad_waveforms


def make_session(path: str | Path, *, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for ``path``; ``threads`` intra-op threads (None: ORT's default)."""
    onnxruntime = require("onnxruntime", extra="onnx", what="running an ONNX bundle")
    options = onnxruntime.SessionOptions()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise SertkError(f"threads must be a positive integer or None; got {threads!r}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise BundleError(f"onnxruntime cannot load {path}: {error}") from None


def pad_batch(items: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad ``[(layers,) frames, dim]`` arrays to ``[batch, (layers,) frames, dim]`` + lengths."""
    lengths = np.array([x.shape[-2] for x in items], dtype=np.int64)
    first = items[0]
    padded = np.zeros((len(items), *first.shape[:-2], lengths.max(), first.shape[-1]), np.float32)
    for row, x in enumerate(items):
        padded[row][..., : x.shape[-2], :] = x
    return padded, lengths


class OnnxForward:
    """A head graph run ``batch_size`` items at a time (frame heads: longest first, so batches
    hold similar lengths)."""

    def __init__(self, session: Any, *, batch_size: int = 32) -> None:
        self.session = session
        self.batch_size = batch_size
        first = session.get_inputs()[0]
        self.rows = len(session.get_inputs()) == 1  # classical: features [batch, dim]
        shape = first.shape[1:]  # without batch: [(layers,) frames, dim] or [dim]
        self.input_shape = tuple(d if isinstance(d, int) else None for d in shape)
        self.outputs = [o.name for o in session.get_outputs()]
        self.has_attention = "attention" in self.outputs

    def __call__(
        self, items: list[np.ndarray], *, attention: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        if self.rows:
            return self._rows(items), [None] * len(items)
        for index, x in enumerate(items):
            self._check(x, index)
        order = sorted(range(len(items)), key=lambda i: -items[i].shape[-2])  # less padding
        probabilities = np.zeros((len(items), 0), np.float32)
        weights: list[np.ndarray | None] = [None] * len(items)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            padded, lengths = pad_batch([items[i] for i in batch])
            values = self.session.run(None, {"features": padded, "lengths": lengths})
            result = dict(zip(self.outputs, values, strict=True))
            if probabilities.shape[1] == 0:
                probabilities = np.zeros((len(items), result["probabilities"].shape[1]), np.float32)
            probabilities[batch] = result["probabilities"]
            if attention and self.has_attention:
                for row, (i, n) in enumerate(zip(batch, lengths, strict=True)):
                    square = result["attention"][row, :n, :n]
                    weights[i] = square.mean(axis=0).astype(np.float32)
        return probabilities, weights

    def _rows(self, items: list[np.ndarray]) -> np.ndarray:
        bad = [i for i, x in enumerate(items) if x.ndim != 2 or x.shape[0] != 1]
        if bad:
            raise FeatureError(
                f"a classical model takes one row of utterance-level features per utterance "
                f"([1, dim], e.g. 'functionals'); item {bad[0]} has shape {items[bad[0]].shape}"
            )
        rows = np.concatenate(items).astype(np.float32)
        if self.input_shape[-1] is not None and rows.shape[1] != self.input_shape[-1]:
            raise FeatureError(
                f"features have {rows.shape[1]} columns but this model takes "
                f"{self.input_shape[-1]}; use the bundle's own extractor"
            )
        chunks = [
            self.session.run(
                ["probabilities"], {"features": rows[start : start + self.batch_size]}
            )[0]
            for start in range(0, len(rows), self.batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32)

    def _check(self, x: np.ndarray, index: int) -> None:
        want = self.input_shape
        if x.ndim != len(want) or any(
            w is not None and w != s for w, s in zip(want, x.shape, strict=True)
        ):
            layout = "[layers, frames, dim]" if len(want) == 3 else "[frames, dim]"
            expected = tuple("*" if w is None else w for w in want)
            raise FeatureError(
                f"features {index} have shape {x.shape} but this model takes {layout} = "
                f"{expected}; use the bundle's own extractor (bundle.build_extractor())"
            )
        if x.shape[-2] == 0 or not np.isfinite(x).all():
            raise FeatureError(
                f"features {index} are empty or hold NaN/inf; check the audio and the extractor"
            )


class OnnxSslEncoder(WaveformEncoderMixin):
    """Hidden states from ``encoder.onnx``: ``[frames, dim]`` or ``[layers, frames, dim]`` float32.

    ``meta`` is the ``onnx.encoder`` section of ``bundle.json``; ``config`` the bundle's feature
    config, returned unchanged by :meth:`config` so caches and bundles see the same extractor.
    """

    name = "ssl"

    def __init__(
        self,
        path: str | Path,
        meta: Mapping[str, Any],
        config: Mapping[str, Any],
        *,
        threads: int | None = None,
        max_batch_seconds: float = 60.0,
    ) -> None:
        self.max_batch_seconds = check_number(
            "max_batch_seconds", max_batch_seconds, kind=float, minimum=0.1
        )
        self._config = dict(config)
        try:
            self.sampling_rate = int(meta["sampling_rate"])
            self.normalize = bool(meta["normalize"])
            self.pad_batches = bool(meta["pad_batches"])
            self.layers = None if meta["layers"] is None else int(meta["layers"])
            self.dim = int(meta["dim"])
            self.frame_rate = float(meta["frame_rate"])
            self.min_samples = int(meta["min_samples"])
            self._kernels = [(int(k), int(s)) for k, s in meta["conv"]]
        except (KeyError, TypeError, ValueError) as error:
            raise FeatureError(
                f"the ONNX bundle's encoder section is incomplete ({error})"
            ) from None
        self.session = make_session(path, threads=threads)
        self._inputs = [i.name for i in self.session.get_inputs()]

    def config(self) -> dict[str, Any]:
        """The bundle's feature config (that of the ``SslEncoder`` it was exported from)."""
        return dict(self._config)

    def cache_key(self) -> dict[str, Any]:
        """What the features depend on: ``config()`` without the model's path or hub id."""
        return {key: value for key, value in self._config.items() if key != "model"}

    def _forward(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """One batch of prepared signals -> per-item features trimmed to valid frames."""
        lengths, values, mask = pad_waveforms(signals)
        feed = {"waveform": values}
        if "attention_mask" in self._inputs:
            feed["attention_mask"] = mask
        hidden = self.session.run(None, feed)[0]  # [batch, layers, frames, dim]
        items = [hidden[row, :, : self.num_frames(n)] for row, n in enumerate(lengths)]
        return [np.ascontiguousarray(x if self.layers else x[0]) for x in items]
