"""ONNX export of model bundles of every kind, and int8 quantization.

- :func:`export_onnx` (``onnx_export.py``): bundle -> ONNX bundle directory (the source bundle
  plus graphs), each graph checked against its source before anything is written: a torch head
  with dynamic batch and time axes and, for SSL bundles, the encoder (``graphs.py``, checked by
  ``parity.py``; needs torch); a linear classical model as a float64 graph built with
  ``onnx.helper`` (``classical_graph.py``; checked against numpy); an ensemble member by member.
  Spectral and hand-crafted features and the normalisation stay numpy.
- :func:`quantize_onnx` (onnxruntime dynamic int8, MatMul/Gemm) and :func:`quantize_torch`
  (``torch.ao`` dynamic int8 on Linear/GRU/LSTM, for the torch backend).

Running an ONNX bundle is not this package's job: ``load_bundle(path, backend="onnx")`` gives an
``OnnxBundle`` whose scorer uses onnxruntime (``sertk.inference.onnx``), without torch.
Names are imported on first use, so ``import sertk.export`` is cheap and torch-free.

>>> from sertk.bundle import load_bundle
>>> from sertk.export import export_onnx
>>> export_onnx("default", "default-onnx")  # or a bundle folder: "runs/x/bundle"
PosixPath('default-onnx')
>>> load_bundle("default-onnx", backend="onnx").build_scorer()
<sertk.inference.adaptive.AdaptiveScorer object at ...>
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
