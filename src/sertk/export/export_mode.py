"""Export-friendly stand-ins for the three model parts ``torch.export`` cannot trace with a dynamic
time axis, each numerically equal to the original on valid frames (ONNX parity is checked after
every export against the unmodified model):

- packed RNNs (``sertk.models.common.run_packed``: ``pack_padded_sequence`` has data-dependent
  shapes). :func:`masked_rnn` runs each layer and direction as a plain unidirectional RNN
  (``torch.gru``/``torch.lstm`` -> the ONNX GRU/LSTM op). Padding sits after the valid frames, so
  the forward direction never sees it before a valid frame; the backward direction runs on each
  utterance reversed *within its length* (valid frames first, padding last) and is reversed back.
  Padded output frames are zeroed, as ``pad_packed_sequence`` leaves them.
- ``MaskedBatchNorm1d`` (boolean indexing of valid frames): in eval mode batch norm is a per-channel
  affine map, so normalising every frame and zeroing padding gives the same values.
- ``MaxPool1d(ceil_mode=True)`` (its output size guard pins the time axis): pad the end with
  ``kernel - 1`` frames of ``-inf`` and take the max of each whole window (what ceil mode means).

>>> with export_mode():  # needs a torch model and its inputs  # doctest: +SKIP
...     program = torch.export.export(exportable(model), (features, lengths), dynamic_shapes=...)
"""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Iterator

import torch
from torch import nn

from sertk.errors import BundleError
from sertk.models import common
from sertk.models.cnn_lstm import MaskedBatchNorm1d


def reverse_within(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` frames of each row, padding stays in place.

    ``values [batch, frames, dim]``, ``lengths [batch]`` -> ``[batch, frames, dim]``; its own inverse.
    """
    steps = torch.arange(values.shape[1], device=values.device).unsqueeze(0)
    ends = lengths.unsqueeze(1)
    index = torch.where(steps < ends, ends - 1 - steps, steps)
    return values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


def _run_direction(rnn: nn.RNNBase, inputs: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    """One layer, one direction of ``rnn`` from a zero state: ``[batch, frames, hidden]``."""
    names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if rnn.bias else ())
    params = [getattr(rnn, f"{name}_l{layer}{suffix}") for name in names]
    state = inputs.new_zeros(1, inputs.shape[0], rnn.hidden_size)
    if isinstance(rnn, nn.GRU):
        outputs, _ = torch.gru(inputs, state, params, rnn.bias, 1, 0.0, False, False, True)
    else:
        outputs, _, _ = torch.lstm(
            inputs, (state, state), params, rnn.bias, 1, 0.0, False, False, True
        )
    return outputs


def masked_rnn(rnn: nn.RNNBase, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Same contract and values as ``run_packed`` (eval mode), without packing.

    ``inputs [batch, frames, dim]`` -> ``[batch, frames, rnn_out]``, zeros on padded frames.
    """
    if not isinstance(rnn, (nn.GRU, nn.LSTM)) or not rnn.batch_first:
        raise BundleError(f"cannot export {type(rnn).__name__}: only batch-first GRU/LSTM export")
    if getattr(rnn, "proj_size", 0):
        raise BundleError("cannot export an LSTM with proj_size to ONNX")
    values = inputs
    for layer in range(rnn.num_layers):
        outputs = _run_direction(rnn, values, layer, "")
        if rnn.bidirectional:
            backward = _run_direction(rnn, reverse_within(values, lengths), layer, "_reverse")
            outputs = torch.cat([outputs, reverse_within(backward, lengths)], dim=-1)
        values = outputs
    valid = torch.arange(values.shape[1], device=values.device)[None, :] < lengths[:, None]
    return values.masked_fill(~valid.unsqueeze(-1), 0.0)


class EvalMaskedBatchNorm(nn.Module):
    """Eval-mode ``MaskedBatchNorm1d``: ``forward(x [batch, channels, frames], mask [batch, frames])``."""

    def __init__(self, norm: nn.BatchNorm1d) -> None:
        super().__init__()
        if norm.running_mean is None or norm.running_var is None:
            raise BundleError("cannot export a batch norm without running statistics")
        self.norm = norm

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n = self.norm
        y = nn.functional.batch_norm(
            x, n.running_mean, n.running_var, n.weight, n.bias, False, 0.0, n.eps
        )
        return y.masked_fill(~mask.unsqueeze(1), 0.0)


class CeilMaxPool1d(nn.Module):
    """``MaxPool1d(k, stride=k, ceil_mode=True)`` as ``-inf`` end padding + floor-mode pooling."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = self.kernel_size = kernel  # ConvBlock reads kernel_size as its stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # kernel - 1 end frames make floor((T + k - 1) / k) = ceil(T / k) whole windows; a padding
        # size that depends on T, or max_pool1d itself, would pin T in torch.export
        x = nn.functional.pad(x, (0, self.kernel - 1), value=float("-inf"))
        windows = (x.shape[-1] // self.kernel) * self.kernel
        x = x[..., :windows]
        return x.reshape(x.shape[0], x.shape[1], -1, self.kernel).amax(dim=-1)


def _swap(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, MaskedBatchNorm1d):
            setattr(module, name, EvalMaskedBatchNorm(child))
        elif isinstance(child, nn.MaxPool1d) and child.ceil_mode:
            kernel, stride = child.kernel_size, child.stride
            simple = child.padding in (0, (0,)) and child.dilation in (1, (1,))
            if not simple or kernel != stride or child.return_indices:
                raise BundleError(f"cannot export {child}: only kernel == stride ceil pooling")
            setattr(module, name, CeilMaxPool1d(int(kernel)))
        else:
            _swap(child)


def exportable(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy of ``model`` with the stand-ins above swapped in."""
    clone = copy.deepcopy(model).eval()
    _swap(clone)
    return clone


@contextlib.contextmanager
def export_mode() -> Iterator[None]:
    """Within the block, sertk model modules run RNNs through :func:`masked_rnn`.

    The models call ``run_packed`` by the name they imported, so each ``sertk.models.*`` module that
    holds it is patched and restored on exit (export is a one-off, single-threaded step).
    """
    original = common.run_packed
    patched = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("sertk.models") and getattr(module, "run_packed", None) is original
    ]
    for module in patched:
        module.run_packed = masked_rnn
    try:
        yield
    finally:
        for module in patched:
            module.run_packed = original
