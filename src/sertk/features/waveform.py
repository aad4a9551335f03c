"""The model-independent half of a wav2vec2-style encoder, shared by the torch ``SslEncoder`` and
the onnxruntime ``OnnxSslEncoder`` so both prepare, batch and trim audio identically.

A subclass sets ``sampling_rate``, ``normalize``, ``min_samples``, ``_kernels`` (the conv front
end's ``(kernel, stride)`` pairs), ``max_batch_seconds``, ``pad_batches`` (whether padding plus an
attention mask leaves valid frames unchanged) and implements ``_forward(prepared signals) ->
per-item features``. No torch here.
"""

from __future__ import annotations

import numpy as np

from sertk.features.base import check_signal


def pad_waveforms(signals: list[np.ndarray]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Lengths, the signals zero-padded to one float32 ``[batch, samples]`` array, and the
    int64 attention mask (1 on real samples)."""
    lengths = [len(x) for x in signals]
    values = np.zeros((len(signals), max(lengths)), dtype=np.float32)
    mask = np.zeros(values.shape, dtype=np.int64)
    for row, x in enumerate(signals):
        values[row, : len(x)] = x
        mask[row, : len(x)] = 1
    return lengths, values, mask


class WaveformEncoderMixin:
    """``__call__``, ``extract_batch``, ``num_frames`` and the batching plan (see the module)."""

    threaded = True  # torch / onnxruntime run their own threads: batch work keeps one process
    sampling_rate: int
    normalize: bool
    min_samples: int
    max_batch_seconds: float
    pad_batches: bool
    _kernels: list[tuple[int, int]]

    def num_frames(self, samples: int) -> int:
        """Output frames for ``samples`` input samples (after padding to ``min_samples``)."""
        length = max(samples, self.min_samples)
        for kernel, stride in self._kernels:
            length = (length - kernel) // stride + 1
        return length

    def __call__(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        """Features ``[frames, dim]`` or ``[layers, frames, dim]`` float32 of a ``[samples]`` signal."""
        return self._forward([self._prepare(signal, sampling_rate)])[0]

    def extract_batch(self, signals: list[np.ndarray], sampling_rate: int) -> list[np.ndarray]:
        """Per-item features of several signals, batched; each equals ``self(signal, sampling_rate)``."""
        prepared = [self._prepare(signal, sampling_rate) for signal in signals]
        results: list[np.ndarray | None] = [None] * len(prepared)
        for batch in self._plan([len(x) for x in prepared]):
            outputs = self._forward([prepared[i] for i in batch])
            for index, features in zip(batch, outputs, strict=True):
                results[index] = features
        return results  # type: ignore[return-value]

    def _forward(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def _prepare(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        x = check_signal(signal, sampling_rate, expected=self.sampling_rate)
        if self.normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        if len(x) < self.min_samples:
            x = np.pad(x, (0, self.min_samples - len(x)))
        return x.astype(np.float32, copy=False)

    def _plan(self, lengths: list[int]) -> list[list[int]]:
        """Batches of indices, longest first, within ``max_batch_seconds`` of padded audio.

        Models that are not padding-safe only batch identical lengths.
        """
        budget = self.max_batch_seconds * self.sampling_rate
        batches: list[list[int]] = []
        for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
            current = batches[-1] if batches else None
            fits = (
                current is not None
                and (len(current) + 1) * lengths[current[0]] <= budget
                and (self.pad_batches or lengths[current[0]] == lengths[index])
            )
            if fits:
                current.append(index)
            else:
                batches.append([index])
        return batches
