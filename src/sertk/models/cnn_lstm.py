"""CNN + LSTM head on spectral frames (MFCC, log-mel).

features -> Conv1D blocks (conv, masked BatchNorm, ReLU, MaxPool) -> BiLSTM (packed) -> masked mean
and max over time -> dense -> linear. Padding is kept at zero through the convolutions and lengths
follow the pooling, so the amount of padding never changes a result.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    masked_mean,
    run_packed,
)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm whose statistics come from valid frames only.

    ``forward(x [batch, channels, frames], mask [batch, frames])`` -> ``[batch, channels, frames]``,
    0 on padded frames. Plain BatchNorm would count padding in its training statistics, so a model's
    running mean would depend on how much padding its training batches had.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        frames = x.transpose(1, 2)  # [batch, frames, channels]
        normed = super().forward(frames[mask])  # [valid frames, channels]
        out = frames.new_zeros(frames.shape).masked_scatter(mask.unsqueeze(-1), normed)
        return out.transpose(1, 2)


class ConvBlock(nn.Module):
    """Conv1d -> masked BatchNorm -> ReLU -> MaxPool; ``forward(x [batch, in, frames], lengths)``.

    Returns ``(y [batch, out, ceil(frames / pool)], new_lengths)`` with ``y`` zero on padding. Pooling
    uses ``ceil_mode``: a window that straddles the end of an utterance sees its valid frames plus zero
    padding, and since ReLU outputs are >= 0 its maximum equals that of the valid frames alone, so the
    result does not depend on padding and no utterance pools down to zero frames.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int, pool: int) -> None:
        super().__init__()
        # "same" length with zeros at both ends (left gets the smaller half for even kernels)
        self.padding = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, bias=False)
        self.norm = MaskedBatchNorm1d(out_channels)
        self.pool = nn.MaxPool1d(pool, ceil_mode=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = frame_mask(lengths, x.shape[-1])
        x = torch.relu(self.norm(self.conv(nn.functional.pad(x, self.padding)), mask))
        stride = self.pool.kernel_size
        return self.pool(x), torch.div(lengths + stride - 1, stride, rounding_mode="floor")


class CnnLstmClassifier(nn.Module):
    """Conv1D blocks + BiLSTM + masked mean/max pooling classifier for MFCC or log-mel frames.

    ``forward(features [batch, frames, input_dim], lengths [batch]) -> logits [batch, num_classes]``;
    with ``num_layers_in`` set, features are ``[batch, num_layers_in, frames, input_dim]`` and a learned
    softmax-weighted sum of the layers comes first.
    It has no attention: ``return_attention=True`` returns ``(logits, None)``.

    >>> import torch
    >>> model = CnnLstmClassifier(40, 4).eval()
    >>> model(torch.randn(2, 300, 40), torch.tensor([300, 120])).shape
    torch.Size([2, 4])
    """

    name = "cnn_lstm"
    has_attention = False

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        channels: Sequence[int] = (64, 128),
        kernel_size: int = 5,
        pool: int = 2,
        lstm_hidden: int = 128,
        dropout: float = 0.3,
        bidirectional: bool = True,
        num_layers_in: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
            raise ConfigError(f"channels must be a non-empty list of integers; got {channels!r}")
        if not isinstance(bidirectional, bool):
            raise ConfigError(f"bidirectional must be true or false; got {bidirectional!r}")
        self._hparams: dict[str, Any] = {
            "input_dim": check_int("input_dim", input_dim, minimum=1),
            "num_classes": check_int("num_classes", num_classes, minimum=2),
            "channels": [check_int("channels[]", c, minimum=1) for c in channels],
            "kernel_size": check_int("kernel_size", kernel_size, minimum=1),
            "pool": check_int("pool", pool, minimum=1),
            "lstm_hidden": check_int("lstm_hidden", lstm_hidden, minimum=1),
            "dropout": check_probability("dropout", dropout),
            "bidirectional": bidirectional,
            "num_layers_in": (
                None
                if num_layers_in is None
                else check_int("num_layers_in", num_layers_in, minimum=1)
            ),
        }
        self.layer_weighting = LayerWeighting(num_layers_in) if num_layers_in is not None else None
        widths = [input_dim, *self._hparams["channels"]]
        self.blocks = nn.ModuleList(
            ConvBlock(a, b, kernel_size=kernel_size, pool=pool)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.lstm = nn.LSTM(widths[-1], lstm_hidden, batch_first=True, bidirectional=bidirectional)
        width = lstm_hidden * (2 if bidirectional else 1)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(2 * width, lstm_hidden)
        self.classifier = nn.Linear(lstm_hidden, num_classes)

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable): ``CnnLstmClassifier(**hparams)`` rebuilds it."""
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
        # zero padding so the convolutions see the same zeros as at the true end of an utterance
        x = features.masked_fill(~mask.unsqueeze(-1), 0.0).transpose(1, 2)
        for block in self.blocks:
            x, lengths = block(x, lengths)
        hidden = run_packed(self.lstm, x.transpose(1, 2), lengths)
        mask = frame_mask(lengths, hidden.shape[1])
        pooled = torch.cat([masked_mean(hidden, mask), masked_max(hidden, mask)], dim=-1)
        x = self.dropout(torch.relu(self.dense(self.dropout(pooled))))
        logits = self.classifier(x)
        return (logits, None) if return_attention else logits
