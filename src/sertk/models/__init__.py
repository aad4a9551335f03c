"""Torch classifier heads over frame features, and the ``MODELS`` dict a bundle rebuilds them from.

Every model follows one contract: ``forward(features, lengths) -> logits [batch, classes]`` with
``features`` ``[batch, frames, dim]`` (or ``[batch, layers, frames, dim]`` when built with
``num_layers_in``) and ``lengths`` ``[batch]`` int64 valid frames; ``forward(..., return_attention=True)``
returns ``(logits, attention [batch, frames, frames] or None)``. Constructors take ``input_dim``,
``num_classes`` and JSON-serialisable keywords; ``model.hparams`` holds them all, so
``MODELS[model.name](**model.hparams)`` rebuilds the architecture for ``load_state_dict``.

>>> model = build_model("mean_pool", input_dim=40, num_classes=4)
>>> type(MODELS[model.name](**model.hparams)).__name__
'MeanPoolClassifier'
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from sertk.errors import ConfigError
from sertk.models.cnn_lstm import CnnLstmClassifier
from sertk.models.gru_attention import GruAttentionClassifier, MatchingAttention
from sertk.models.mean_pool import MeanPoolClassifier

MODELS: dict[str, type[nn.Module]] = {
    GruAttentionClassifier.name: GruAttentionClassifier,
    CnnLstmClassifier.name: CnnLstmClassifier,
    MeanPoolClassifier.name: MeanPoolClassifier,
}

__all__ = [
    "MODELS",
    "build_model",
    "GruAttentionClassifier",
    "CnnLstmClassifier",
    "MeanPoolClassifier",
    "MatchingAttention",
]


def build_model(name: str, **hparams: Any) -> nn.Module:
    """Build model ``name`` from ``MODELS`` with ``hparams`` (must include input_dim and num_classes)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(hparams) - set(accepted))
    missing = [p for p in ("input_dim", "num_classes") if p not in hparams]
    if unknown or missing:
        problem = f"unknown {unknown}" if unknown else f"missing {missing}"
        raise ConfigError(
            f"cannot build model {name!r}: {problem} hyper-parameters; it accepts {accepted}"
        )
    return cls(**hparams)
