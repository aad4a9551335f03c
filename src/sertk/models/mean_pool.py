"""The baseline head: masked mean (and optional std) pooling -> optional hidden layer -> linear."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sertk.errors import ConfigError
from sertk.models.common import (
    LayerWeighting,
    check_inputs,
    check_int,
    check_probability,
    frame_mask,
    masked_mean,
    masked_std,
)


class MeanPoolClassifier(nn.Module):
    """Utterance statistics over valid frames, then a small MLP; the baseline for every feature set.

    ``forward(features, lengths)``: ``features`` ``[batch, frames, input_dim]`` (or
    ``[batch, num_layers_in, frames, input_dim]`` with layer weighting), ``lengths`` ``[batch]`` ->
    logits ``[batch, num_classes]``. Pooling gives ``[mean]`` or ``[mean; std]`` per utterance; then
    dropout -> (linear ``hidden`` -> ReLU -> dropout, if ``hidden > 0``) -> linear. It has no
    attention: ``return_attention=True`` returns ``(logits, None)``.

    >>> import torch
    >>> model = MeanPoolClassifier(768, 4, num_layers_in=13).eval()
    >>> model(torch.randn(2, 13, 50, 768), torch.tensor([50, 30])).shape
    torch.Size([2, 4])
    """

    name = "mean_pool"
    has_attention = False

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        hidden: int = 0,
        dropout: float = 0.1,
        num_layers_in: int | None = None,
        std: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(std, bool):
            raise ConfigError(f"std must be true or false; got {std!r}")
        self._hparams: dict[str, Any] = {
            "input_dim": check_int("input_dim", input_dim, minimum=1),
            "num_classes": check_int("num_classes", num_classes, minimum=2),
            "hidden": check_int("hidden", hidden, minimum=0),
            "dropout": check_probability("dropout", dropout),
            "num_layers_in": (
                None
                if num_layers_in is None
                else check_int("num_layers_in", num_layers_in, minimum=1)
            ),
            "std": std,
        }
        self.layer_weighting = LayerWeighting(num_layers_in) if num_layers_in is not None else None
        width = input_dim * (2 if std else 1)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden > 0:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*layers)

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable): ``MeanPoolClassifier(**hparams)`` rebuilds it."""
        return dict(self._hparams)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, None]:
        lengths = check_inputs(
            features,
            lengths,
            input_dim=self._hparams["input_dim"],
            num_layers_in=self._hparams["num_layers_in"],
        )
        if self.layer_weighting is not None:
            features = self.layer_weighting(features)
        mask = frame_mask(lengths, features.shape[1])
        pooled = masked_mean(features, mask)
        if self._hparams["std"]:
            pooled = torch.cat([pooled, masked_std(features, mask, mean=pooled)], dim=-1)
        logits = self.head(pooled)
        return (logits, None) if return_attention else logits
