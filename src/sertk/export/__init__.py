"""ONNX export of model bundles, an onnxruntime runner that needs no torch, and int8 quantization.

- :func:`export_onnx` (torch): bundle -> ONNX bundle directory with ``head.onnx`` (features +
  lengths -> logits, probabilities[, attention]) and, for SSL bundles, ``encoder.onnx`` (waveform ->
  hidden states), dynamic batch and time axes, each checked against torch before it is written
  (probabilities within 1e-4 absolute; see :mod:`sertk.export.parity`). Spectral and hand-crafted
  features and the normalisation stay numpy.
- :func:`load_onnx_bundle`, :class:`OnnxBundleModel` (the ``BundleModel`` API) and
  :class:`OnnxSslEncoder` (the extractor contract) run an ONNX bundle with onnxruntime; importing
  them imports neither torch nor transformers.
- :func:`quantize_onnx` (onnxruntime dynamic int8, MatMul/Gemm) and :func:`quantize_torch`
  (``torch.ao`` dynamic int8 on Linear/GRU/LSTM, for the torch backend).

Names are imported on first use, so ``import sertk.export`` is cheap and torch-free.

>>> from sertk.export import export_onnx, OnnxBundleModel  # doctest: +SKIP
>>> export_onnx("runs/x/bundle", "runs/x/bundle-onnx")  # doctest: +SKIP
>>> OnnxBundleModel.load("runs/x/bundle-onnx").predict_features([features])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

_LAZY = {
    "export_onnx": "sertk.export.onnx_export",
    "quantize_onnx": "sertk.export.quantize",
    "quantize_torch": "sertk.export.quantize",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sertk.export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
