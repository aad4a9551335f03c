"""Torch -> ONNX for the two graphs of an ONNX bundle: the classifier head and the SSL encoder.

Both go through the dynamo ONNX exporter (``torch.onnx.export(..., dynamo=True)``) with named
dynamic axes. Where model code pins a dynamic axis to the example's size the exporter quietly
falls back to a fixed size; that is checked here and refused. Head inputs/outputs::

    features  float32 [batch, frames, dim] (or [batch, layers, frames, dim])
    lengths   int64   [batch]                  valid frames, 1..frames
    logits, probabilities  float32 [batch, classes]
    attention float32 [batch, frames, frames]  (models with attention only)

Encoder: ``waveform`` float32 ``[batch, samples]`` (+ ``attention_mask`` int64 ``[batch, samples]``
for models that pad) -> ``hidden`` float32 ``[batch, layers, frames, dim]``, the hidden states the
bundle's ``SslEncoder`` returns (``layers`` is 1 for a single layer).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sertk.errors import BundleError
from sertk.export.export_mode import export_mode, exportable

HEAD_INPUTS = ["features", "lengths"]
EXAMPLE_LENGTHS = (37, 23, 6)  # export example: batch >= 2, else torch.export pins batch to 1


class HeadGraph(nn.Module):
    """``(features, lengths) -> (logits, probabilities[, attention])`` of an exportable copy."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = exportable(model)
        self.attention = bool(getattr(model, "has_attention", False))

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.attention:
            logits, attention = self.model(features, lengths, return_attention=True)
            return logits, torch.softmax(logits, dim=-1), attention
        logits = self.model(features, lengths)
        return logits, torch.softmax(logits, dim=-1)


class EncoderGraph(nn.Module):
    """``(waveform[, attention_mask]) -> hidden [batch, layers, frames, dim]`` as ``SslEncoder``."""

    def __init__(self, model: nn.Module, layer_spec: Any, indices: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.last = layer_spec == "last"
        self.indices = list(indices)

    def forward(
        self, waveform: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.model(
            waveform, attention_mask=attention_mask, output_hidden_states=not self.last
        )
        if self.last:
            return out.last_hidden_state.unsqueeze(1)
        states = [*out.hidden_states[:-1], out.last_hidden_state]  # as SslEncoder._forward
        return torch.stack([states[i] for i in self.indices], dim=1)


def export_head(model: nn.Module, path: Path, *, opset: int) -> dict[str, Any]:
    """Write ``model`` (a sertk head) as ONNX to ``path``; returns its ``bundle.json`` entry."""
    hparams = model.hparams
    layers = hparams.get("num_layers_in")
    frames = max(EXAMPLE_LENGTHS)
    shape = (len(EXAMPLE_LENGTHS), *(() if layers is None else (layers,)), frames)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(*shape, hparams["input_dim"], generator=generator)
    lengths = torch.tensor(EXAMPLE_LENGTHS, dtype=torch.int64)
    graph = HeadGraph(model).eval()
    outputs = ["logits", "probabilities"] + (["attention"] if graph.attention else [])
    batch, time = torch.export.Dim("batch"), torch.export.Dim("frames")
    dynamic = ({0: batch, (1 if layers is None else 2): time}, {0: batch})
    classes = hparams["num_classes"]
    dims = {"logits": ["batch", classes], "probabilities": ["batch", classes]}
    dims["attention"] = ["batch", "frames", "frames"]
    _export(graph, (features, lengths), dynamic, path, HEAD_INPUTS, outputs, dims, opset=opset)
    return {"name": path.name, "inputs": HEAD_INPUTS, "outputs": outputs}


def export_encoder(encoder: Any, path: Path, *, opset: int) -> dict[str, Any]:
    """Write an ``SslEncoder``'s model as ONNX to ``path``; returns its ``bundle.json`` entry,
    with what ``OnnxSslEncoder`` needs to reproduce the extractor without torch."""
    cfg = encoder.model.config
    rate = encoder.sampling_rate
    sizes = [rate, rate * 3 // 5] if encoder.pad_batches else [rate, rate]
    waveform = torch.zeros(len(sizes), max(sizes))
    mask = torch.zeros(waveform.shape, dtype=torch.int64)
    generator = torch.Generator().manual_seed(0)
    for row, size in enumerate(sizes):
        waveform[row, :size] = 0.1 * torch.randn(size, generator=generator)
        mask[row, :size] = 1
    # torch.export treats a dynamic size as >= 2; the smallest input giving 2 frames bounds it,
    # shorter inputs (1 frame, down to min_samples) are part of the parity check instead
    shortest = encoder.min_samples
    while encoder.num_frames(shortest) < 2:
        shortest += 1
    batch, samples = torch.export.Dim("batch"), torch.export.Dim("samples", min=shortest)
    inputs = ["waveform"] + (["attention_mask"] if encoder.pad_batches else [])
    args = (waveform, mask)[: len(inputs)]
    dynamic = tuple({0: batch, 1: samples} for _ in inputs)
    graph = EncoderGraph(encoder.model, encoder.layer_spec, encoder.layer_indices).eval()
    dims = {"hidden": ["batch", len(encoder.layer_indices), "frames", encoder.dim]}
    _export(graph, args, dynamic, path, inputs, ["hidden"], dims, opset=opset)
    return {
        "name": path.name,
        "inputs": inputs,
        "outputs": ["hidden"],
        "sampling_rate": rate,
        "normalize": encoder.normalize,
        "pad_batches": encoder.pad_batches,
        "layers": encoder.layers,
        "dim": encoder.dim,
        "frame_rate": encoder.frame_rate,
        "conv": [[int(k), int(s)] for k, s in zip(cfg.conv_kernel, cfg.conv_stride, strict=True)],
        "min_samples": encoder.min_samples,
    }


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    dynamic: tuple[dict[int, Any], ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dims: Mapping[str, list[Any]],
    *,
    opset: int,
) -> None:
    import onnx

    what = type(getattr(module, "model", module)).__name__
    _clear_rnn_dispatch_cache()
    with export_mode(), _quiet():
        try:
            onnx_program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                dynamic_shapes=dynamic,
                opset_version=opset,
                input_names=inputs,
                output_names=outputs,
                verbose=False,
            )
        except Exception as error:  # torch.export / the exporter raise many types
            raise BundleError(
                f"cannot export {what} to ONNX ({_summary(error)}); this model needs an "
                "export-friendly path (see sertk.export.export_mode)"
            ) from error
    proto = onnx_program.model_proto
    # the exporter quietly falls back to a fixed size where the code pins a dynamic axis
    for value, axes in zip(proto.graph.input, dynamic, strict=True):
        pinned = [a for a in axes if value.type.tensor_type.shape.dim[a].HasField("dim_value")]
        if pinned:
            raise BundleError(
                f"cannot export {what} to ONNX with a dynamic axis {pinned} of {value.name!r}: "
                "the model code fixes it to the example's size"
            )
    # the exporter can leave the example's sizes in intermediate and output shapes (seen with
    # GRU), which onnxruntime warns about and the int8 quantizer's shape inference rejects
    del proto.graph.value_info[:]
    for output in proto.graph.output:
        if output.name in dims:
            _set_shape(output, dims[output.name])
    onnx.save_model(proto, str(path))


def _clear_rnn_dispatch_cache() -> None:
    """Work around a torch 2.13 bug that pins the time axis of every RNN export but the first.

    The exporter swaps a while-loop decomposition (dynamic length) into ``aten.gru``/``aten.lstm``
    ``py_kernels`` for the export and restores it afterwards without clearing the ops' dispatch
    cache, so a later export in the same process dispatches to a stale kernel that unrolls the
    time loop; clearing the cache (as ``py_impl`` does) makes every export the same as the first.
    """
    for op in (torch.ops.aten.gru.input, torch.ops.aten.lstm.input):
        cache = getattr(op, "_dispatch_cache", None)
        if isinstance(cache, dict):
            cache.clear()


def _summary(error: Exception) -> str:
    """The root cause from the exporter's long report (its "Exception summary" line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if "## Exception summary" in lines:
        lines = lines[lines.index("## Exception summary") + 1 :]
    return lines[0][:300] if lines else type(error).__name__


def _set_shape(value: Any, dims: list[Any]) -> None:
    shape = value.type.tensor_type.shape
    shape.ClearField("dim")
    for dim in dims:
        entry = shape.dim.add()
        if isinstance(dim, int):
            entry.dim_value = dim
        else:
            entry.dim_param = dim


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress output and warnings about optional packages."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnx_ir", "onnxscript")
    loggers = [logging.getLogger(n) for n in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
