"""Pieces shared by the model heads: input checks, frame masks, masked pooling, layer weighting.

Every head takes padded ``features`` plus ``lengths`` (valid frames per utterance). The helpers here
make sure padding never reaches a result: masks come from ``lengths``, pooling ignores padded frames,
and bad input raises :class:`~sertk.errors.FeatureError` (or :class:`~sertk.errors.ConfigError` for
bad hyper-parameters) with a message that says what to do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sertk.errors import ConfigError, FeatureError


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """Return ``value`` if it is an int ``>= minimum``; raise ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"model hyper-parameter {name} must be an integer >= {minimum}; got {value!r}"
        )
    return value


def check_probability(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a dropout probability in [0, 1); raise ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"model hyper-parameter {name} must be a number in [0, 1); got {value!r}")
    return float(value)


def _value_checks_enabled() -> bool:
    # Data-dependent checks (min/max of lengths) cannot be traced by torch.compile / torch.export;
    # skip them there and keep them in eager mode, where users make mistakes.
    compiler = getattr(torch, "compiler", None)
    for probe in ("is_compiling", "is_exporting"):
        if compiler is not None and getattr(compiler, probe, lambda: False)():
            return False
    return not torch.jit.is_tracing()


def check_inputs(
    features: torch.Tensor,
    lengths: torch.Tensor,
    *,
    input_dim: int,
    num_layers_in: int | None = None,
) -> torch.Tensor:
    """Validate a padded batch and return ``lengths`` as int64 on ``features.device``.

    ``features`` is ``[batch, frames, input_dim]``, or ``[batch, num_layers_in, frames, input_dim]``
    when ``num_layers_in`` is set; ``lengths`` is ``[batch]`` integer valid-frame counts in
    ``1..frames``; valid frames must be finite (padding may hold anything). Raises FeatureError
    naming the first problem found.
    """
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        kind = features.dtype if isinstance(features, torch.Tensor) else type(features).__name__
        raise FeatureError(f"features must be a floating-point torch.Tensor; got {kind}")
    want = 3 if num_layers_in is None else 4
    layout = "[batch, frames, dim]" if want == 3 else "[batch, layers, frames, dim]"
    if features.ndim != want:
        hint = (
            f"this model weights {num_layers_in} encoder layers; pass all layers"
            if num_layers_in is not None
            else "for multi-layer SSL features build the model with num_layers_in=<layers>"
        )
        raise FeatureError(f"features must be {layout}; got shape {tuple(features.shape)} ({hint})")
    if features.shape[-1] != input_dim:
        raise FeatureError(
            f"features have dim {features.shape[-1]} but the model expects input_dim={input_dim}; "
            "use the feature extractor the model was built for"
        )
    if num_layers_in is not None and features.shape[1] != num_layers_in:
        raise FeatureError(
            f"features have {features.shape[1]} layers but the model weights "
            f"num_layers_in={num_layers_in}; use the encoder the model was built for"
        )
    batch, frames = features.shape[0], features.shape[-2]
    lengths = _check_lengths(lengths, batch=batch, frames=frames, device=features.device)
    if _value_checks_enabled():
        _check_finite(features, lengths)
    return lengths


def _check_finite(features: torch.Tensor, lengths: torch.Tensor) -> None:
    # only valid frames matter: padding may hold anything, the models never read it
    bad = ~torch.isfinite(features).all(dim=-1)  # [batch, (layers,) frames]
    if bad.ndim == 3:
        bad = bad.any(dim=1)
    bad &= frame_mask(lengths, bad.shape[-1])
    if bool(bad.any()):
        utterance, frame = (int(i) for i in bad.nonzero()[0])
        raise FeatureError(
            f"features of utterance {utterance} in the batch are NaN or infinite at frame {frame}; "
            "check the audio and the feature extractor"
        )


def _check_lengths(lengths: Any, *, batch: int, frames: int, device: torch.device) -> torch.Tensor:
    if not isinstance(lengths, torch.Tensor):
        raise FeatureError(
            f"lengths must be a [batch] int64 torch.Tensor; got {type(lengths).__name__}"
        )
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise FeatureError(f"lengths must hold integer frame counts; got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise FeatureError(
            f"lengths must have shape [batch]=[{batch}] to match features; got {tuple(lengths.shape)}"
        )
    if batch == 0:
        raise FeatureError("the batch is empty: give at least one utterance")
    if _value_checks_enabled():
        shortest, longest = int(lengths.min()), int(lengths.max())
        if shortest < 1:
            index = int(torch.argmin(lengths))
            raise FeatureError(
                f"utterance {index} in the batch has length {shortest}; every utterance needs at "
                "least 1 frame: drop empty or too-short utterances before batching"
            )
        if longest > frames:
            index = int(torch.argmax(lengths))
            raise FeatureError(
                f"lengths[{index}]={longest} exceeds the {frames} padded frames of features; "
                "lengths must count valid frames of the padded batch"
            )
    return lengths.to(device=device, dtype=torch.int64)


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """Boolean mask ``[batch, frames]``: True on the first ``lengths[b]`` frames of each row."""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid frames: ``values [batch, frames, dim]``, ``mask [batch, frames]`` -> ``[batch, dim]``."""
    weights = mask.to(values.dtype).unsqueeze(-1)
    total = torch.where(mask.unsqueeze(-1), values, torch.zeros_like(values)).sum(dim=1)
    return total / weights.sum(dim=1)


def masked_std(
    values: torch.Tensor, mask: torch.Tensor, *, mean: torch.Tensor | None = None, eps: float = 1e-5
) -> torch.Tensor:
    """Population std over valid frames, ``[batch, frames, dim]`` -> ``[batch, dim]``.

    ``eps`` inside the square root keeps gradients finite for one-frame utterances.
    """
    mean = masked_mean(values, mask) if mean is None else mean
    return (masked_mean((values - mean.unsqueeze(1)) ** 2, mask) + eps).sqrt()


def masked_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over valid frames (padding set to -inf first), ``[batch, frames, dim]`` -> ``[batch, dim]``."""
    return values.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


class LayerWeighting(nn.Module):
    """Learned softmax-weighted sum of encoder layers (SUPERB style), weights initialised equal.

    ``forward(features [batch, layers, frames, dim]) -> [batch, frames, dim]``.
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    @property
    def weights(self) -> torch.Tensor:
        """The current layer weights ``[layers]`` (non-negative, summing to 1)."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        weights = self.weights.to(features.dtype)
        return torch.einsum("l,bltd->btd", weights, features)


def run_packed(rnn: nn.RNNBase, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a batch-first RNN on packed sequences so padding never enters the recurrent state.

    ``inputs [batch, frames, dim]`` -> ``[batch, frames, rnn_out]`` with zeros on padded frames.
    """
    packed = nn.utils.rnn.pack_padded_sequence(
        inputs, lengths.cpu(), batch_first=True, enforce_sorted=False
    )
    outputs, _ = rnn(packed)
    outputs, _ = nn.utils.rnn.pad_packed_sequence(
        outputs, batch_first=True, total_length=inputs.shape[1]
    )
    return outputs
