"""``stack``: several utterance-level extractors side by side, one ``[1, sum of dims]`` row.

Each part is a feature config (``{"name": ..., **options}``) of an utterance-level extractor
(``frame_rate`` 0), all at one sampling rate. ``blocks`` gives the width of each part, in
order; a classical model uses it to weight the parts (``model.hparams.block_weights``), so
a 6373-dim block does not drown a 88-dim one just by its size.

>>> extractor = Stack(parts=[{"name": "functionals"}, {"name": "opensmile"}])  # opensmile extra
>>> extractor.blocks
(550, 88)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sertk.errors import FeatureError
from sertk.features import build_extractor
from sertk.features.base import Extractor

__all__ = ["Stack"]


class Stack(Extractor):
    """Concatenation of utterance-level extractors (see the module docstring)."""

    name = "stack"

    def __init__(self, *, parts: Sequence[Mapping[str, Any]]) -> None:
        if isinstance(parts, str | bytes | Mapping) or not isinstance(parts, Sequence):
            raise FeatureError(
                "stack: parts must be a list of feature configs, e.g. "
                "[{name: emotion_functionals}, {name: opensmile, feature_set: ComParE_2016}]"
            )
        if len(parts) < 2:
            raise FeatureError(f"stack: give at least 2 parts, got {len(parts)}")
        for part in parts:
            if not isinstance(part, Mapping) or part.get("name") == self.name:
                raise FeatureError(
                    f"stack: each part is a feature config with a 'name' (not 'stack'), got {part!r}"
                )
        self.parts = tuple(build_extractor(dict(part)) for part in parts)
        framed = [
            p.name
            for p in self.parts
            if p.frame_rate != 0 or getattr(p, "layers", None) is not None
        ]
        if framed:
            raise FeatureError(
                f"stack: part(s) {framed} give frames; stack only utterance-level extractors "
                "([1, dim], e.g. functionals, emotion_functionals, opensmile functionals)"
            )
        rates = {p.sampling_rate for p in self.parts if getattr(p, "sampling_rate", None)}
        if len(rates) > 1:
            raise FeatureError(f"stack: the parts expect different sampling rates {sorted(rates)}")
        self.sampling_rate = rates.pop() if rates else None
        self.blocks: tuple[int, ...] = tuple(int(p.dim) for p in self.parts)
        self.dim = sum(self.blocks)
        self.frame_rate = 0.0

    def config(self) -> dict[str, Any]:
        """``{"name": "stack", "parts": [each part's config()]}``."""
        return {"name": self.name, "parts": [p.config() for p in self.parts]}

    def __call__(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        """``[1, dim]`` float32: the parts' rows of ``signal`` side by side."""
        rows = [part(signal, sampling_rate) for part in self.parts]
        return np.concatenate(rows, axis=1).astype(np.float32)
