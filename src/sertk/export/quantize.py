"""Dynamic int8 quantization: onnxruntime for ONNX graphs, ``torch.ao`` for the torch backend.

Both quantize weights to int8 ahead of time and activations per batch at run time, so they need no
calibration data. Only matrix products are quantized: ``MatMul``/``Gemm`` in ONNX, ``nn.Linear``
(plus ``nn.GRU``/``nn.LSTM``) in torch. Quantizing HuBERT's convolutional front end as well
(ONNX ``ConvInteger``) makes it about 2x *slower* on CPU than fp32, so convolutions stay fp32;
the ONNX ``GRU``/``LSTM`` ops of a head also stay fp32 (onnxruntime's dynamic quantizer does
not cover GRU). See ``benchmarks/bench_onnx.py`` for the measured effect on speed, size and
accuracy.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from sertk.errors import SertkError

QUANTIZED_OPS = ("MatMul", "Gemm")


def quantize_onnx(source: str | Path, target: str | Path) -> Path:
    """Write an int8 copy of the ONNX graph ``source`` to ``target`` (MatMul/Gemm, QInt8 weights)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise SertkError(
            "int8 quantization needs onnxruntime: pip install 'sertk[onnx]'"
        ) from error
    logger = logging.getLogger()  # the quantizer logs advice about pre-processing at WARNING
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            Path(source),
            Path(target),
            op_types_to_quantize=list(QUANTIZED_OPS),
            weight_type=QuantType.QInt8,
        )
    finally:
        logger.setLevel(level)
    return Path(target)


def quantize_torch(model: Any) -> Any:
    """A dynamically int8-quantized copy of a torch module (``nn.Linear``, ``nn.GRU``, ``nn.LSTM``).

    For the torch backend: ``quantize_torch(bundle.build_model())`` for a head, or
    ``quantize_torch(ssl_encoder.model)`` for an encoder; CPU only, inference only. Uses
    ``torch.ao.quantization.quantize_dynamic``, which torch marks deprecated (moving to torchao)
    but still ships; a torch without it raises SertkError.

    >>> import torch
    >>> head = quantize_torch(torch.nn.Sequential(torch.nn.Linear(8, 4)))
    >>> head(torch.zeros(2, 8)).shape
    torch.Size([2, 4])
    """
    import copy

    import torch
    from torch import nn

    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as error:  # pragma: no cover - removed in some future torch
        raise SertkError(
            f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic; "
            "use the ONNX backend's int8 export instead"
        ) from error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return quantize_dynamic(
            copy.deepcopy(model).eval(), {nn.Linear, nn.GRU, nn.LSTM}, dtype=torch.qint8
        )
