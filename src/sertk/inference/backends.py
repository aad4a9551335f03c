"""Model forwards of the numpy and torch backends (the ONNX one is :mod:`sertk.inference.onnx`).

Each is a :class:`~sertk.inference.scorer.Forward`: normalised features of n items ->
probabilities float32 ``[n, classes]`` and per-item attention ``[frames]`` (or None).

- :class:`ClassicalForward`: a ``sertk.classical.ClassicalModel`` on one row ``[1, dim]`` per
  item, numpy only;
- :class:`TorchForward`: a ``sertk.models`` head on padded batches; torch is imported when one
  is built (a torch bundle needs it anyway).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sertk.errors import FeatureError, require


class ClassicalForward:
    """``model.predict_proba`` of the items stacked as rows (numpy, float64 inside)."""

    has_attention = False

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(
        self, items: list[np.ndarray], *, attention: bool = False
    ) -> tuple[np.ndarray, list[None]]:
        bad = [i for i, x in enumerate(items) if x.ndim != 2 or x.shape[0] != 1]
        if bad:
            raise FeatureError(
                f"a classical model takes one row of utterance-level features per utterance "
                f"([1, dim], e.g. 'functionals'); item {bad[0]} has shape {items[bad[0]].shape}"
            )
        probabilities = self.model.predict_proba(np.concatenate(items)).astype(np.float32)
        return probabilities, [None] * len(items)


class TorchForward:
    """A torch head in eval mode on ``device``, ``batch_size`` items at a time.

    Attention weights of item ``b`` are ``A[b, :L, :L].mean(axis=0)`` over its ``L`` valid
    frames: how much the average query frame attends to each frame (sums to 1).
    """

    def __init__(self, model: Any, *, device: str = "cpu", batch_size: int = 32) -> None:
        self.torch = require("torch", extra="neural", what="a torch model")
        self.model = model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.has_attention = bool(getattr(model, "has_attention", False))

    def __call__(
        self, items: list[np.ndarray], *, attention: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        from sertk.models.batching import collate  # torch

        torch = self.torch
        rows, weights = [], []
        grad = torch.inference_mode() if attention else torch.no_grad()
        with grad:
            for start in range(0, len(items), self.batch_size):
                batch, lengths, _ = collate(items[start : start + self.batch_size])
                batch, lengths = batch.to(self.device), lengths.to(self.device)
                if not attention:
                    rows.append(
                        torch.softmax(self.model(batch, lengths).float(), dim=-1).cpu().numpy()
                    )
                    continue
                logits, matrix = self.model(batch, lengths, return_attention=True)
                rows.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
                for square, length in zip(
                    matrix.float().cpu().numpy(), lengths.tolist(), strict=True
                ):
                    weights.append(square[:length, :length].mean(axis=0).astype(np.float32))
        probabilities = np.concatenate(rows).astype(np.float32)
        return probabilities, weights if attention else [None] * len(items)
