"""``OnnxSslEncoder``: an SSL bundle's ``encoder.onnx`` behind the feature-extractor contract.

It replaces :class:`sertk.features.ssl.SslEncoder`'s torch forward and keeps everything around it:
the same input normalisation, padding to ``min_samples``, batching plan (padding + attention mask
only for the pad-safe layer-norm models, identical lengths otherwise) and trimming to valid frames,
so its features equal ``SslEncoder``'s within the tolerance checked at export. The numbers it needs
(frame geometry, layers, normalisation) were written to ``bundle.json`` by the export, so neither
torch nor transformers is imported.

>>> encoder = load_onnx_bundle("model-onnx").build_extractor(threads=2)  # doctest: +SKIP
>>> encoder(signal, 16000).shape  # doctest: +SKIP
(149, 768)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import FeatureError
from sertk.export.runner import make_session
from sertk.features.base import check_number
from sertk.features.waveform import WaveformEncoderMixin, pad_waveforms


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
