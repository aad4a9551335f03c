"""BiGRU + matching attention over time: the reference head on frozen SSL (HuBERT) features.

features -> [layer weighting] -> input dropout -> BiGRU (packed) -> matching attention of every frame
over the frames of its own utterance -> tanh combine -> max-pool over valid frames -> LeakyReLU ->
dropout -> linear. The public implementation this follows looped its attention over the batch axis
(a no-op); here the attention is over time, computed for all frames at once.
"""

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
    masked_max,
    run_packed,
)

ATTENTIONS = ("general", "dot")


class MatchingAttention(nn.Module):
    """Luong-style attention of every frame over all valid frames of the same utterance.

    With encoder outputs ``h_1..h_T`` and valid frames ``s < length``::

        score(t, s) = (W_a h_t) . h_s           # "general"; "dot" uses h_t . h_s
        a(t, s)     = softmax over valid s of score(t, s)   # padded s get weight 0
        c_t         = sum_s a(t, s) h_s
        z_t         = tanh(W_c [c_t; h_t] + b_c)

    All frames at once: ``S = (H W_a^T) H^T`` is one batched matmul ``[batch, frames, frames]`` and
    ``C = A H`` another. ``forward(hidden [batch, frames, dim], mask [batch, frames])`` returns
    ``(z [batch, frames, dim], attention [batch, frames, frames])``; attention rows sum to 1 on
    valid frames and rows and columns of padded frames are 0.
    """

    def __init__(self, dim: int, *, kind: str = "general") -> None:
        super().__init__()
        if kind not in ATTENTIONS:
            raise ConfigError(f"attention must be one of {ATTENTIONS}; got {kind!r}")
        self.query = nn.Linear(dim, dim, bias=False) if kind == "general" else nn.Identity()
        self.combine = nn.Linear(2 * dim, dim)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.bmm(self.query(hidden), hidden.transpose(1, 2))
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        # every row has >= 1 valid column (lengths >= 1), so the softmax never sees an all -inf row
        attention = torch.softmax(scores, dim=-1).masked_fill(~mask[:, :, None], 0.0)
        context = torch.bmm(attention, hidden)
        combined = torch.tanh(self.combine(torch.cat([context, hidden], dim=-1)))
        return combined, attention


class GruAttentionClassifier(nn.Module):
    """BiGRU + matching attention + max-pool classifier; defaults equal the reference system.

    ``forward(features, lengths)``: ``features`` ``[batch, frames, input_dim]`` (or
    ``[batch, num_layers_in, frames, input_dim]`` when ``num_layers_in`` is set), ``lengths``
    ``[batch]`` int64 -> logits ``[batch, num_classes]``; with ``return_attention=True`` returns
    ``(logits, attention [batch, frames, frames])``. The GRU's inter-layer dropout is ``dropout``.

    >>> import torch
    >>> model = GruAttentionClassifier(768, 4).eval()
    >>> logits, attention = model(torch.randn(2, 50, 768), torch.tensor([50, 30]),
    ...                           return_attention=True)
    >>> tuple(logits.shape), tuple(attention.shape)
    ((2, 4), (2, 50, 50))
    """

    name = "gru_attention"
    has_attention = True

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        hidden: int = 256,
        layers: int = 2,
        dropout: float = 0.2,
        input_dropout: float | None = None,
        bidirectional: bool = True,
        num_layers_in: int | None = None,
        attention: str = "general",
    ) -> None:
        super().__init__()
        input_dropout = dropout if input_dropout is None else input_dropout
        if not isinstance(bidirectional, bool):
            raise ConfigError(f"bidirectional must be true or false; got {bidirectional!r}")
        self._hparams: dict[str, Any] = {
            "input_dim": check_int("input_dim", input_dim, minimum=1),
            "num_classes": check_int("num_classes", num_classes, minimum=2),
            "hidden": check_int("hidden", hidden, minimum=1),
            "layers": check_int("layers", layers, minimum=1),
            "dropout": check_probability("dropout", dropout),
            "input_dropout": check_probability("input_dropout", input_dropout),
            "bidirectional": bidirectional,
            "num_layers_in": (
                None
                if num_layers_in is None
                else check_int("num_layers_in", num_layers_in, minimum=1)
            ),
            "attention": attention,
        }
        self.layer_weighting = LayerWeighting(num_layers_in) if num_layers_in is not None else None
        self.input_dropout = nn.Dropout(input_dropout)
        self.gru = nn.GRU(
            input_dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        width = hidden * (2 if bidirectional else 1)
        self.attention = MatchingAttention(width, kind=attention)
        self.activation = nn.LeakyReLU()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable): ``GruAttentionClassifier(**hparams)`` rebuilds it."""
        return dict(self._hparams)

    def encode(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated input -> GRU outputs ``[batch, frames, width]`` (0 on padding) and mask ``[batch, frames]``."""
        lengths = check_inputs(
            features,
            lengths,
            input_dim=self._hparams["input_dim"],
            num_layers_in=self._hparams["num_layers_in"],
        )
        if self.layer_weighting is not None:
            features = self.layer_weighting(features)
        hidden = run_packed(self.gru, self.input_dropout(features), lengths)
        return hidden, frame_mask(lengths, hidden.shape[1])

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        hidden, mask = self.encode(features, lengths)
        combined, attention = self.attention(hidden, mask)
        pooled = masked_max(combined, mask)
        logits = self.classifier(self.dropout(self.activation(pooled)))
        return (logits, attention) if return_attention else logits
