"""Range checks of every number in ``bundle.json`` that inference reads, at load.

A bundle is data from elsewhere: a hand-edited or hostile ``bundle.json`` must fail at load with
a :class:`~sertk.errors.BundleError` naming the field, never later with a MemoryError while
predicting. :func:`check_numbers` checks

- the fields with a known meaning against their own range (:data:`RANGES`: the crop duration,
  sampling rates, the ONNX encoder's geometry);
- every other number the scorer reads (``preprocess``, ``features``, ``model.hparams``, the
  classical model's ``meta``, ``views``, ensemble ``members``, ``onnx.encoder``): finite and at
  most :data:`MAX_MAGNITUDE` in size (JSON parsers accept ``NaN``, ``Infinity`` and ``1e999``).

Free-form records (``training``, ``extra``, ``model.meta.search``/``calibration``/``training``,
parity figures) are not read by inference and not checked. Hyper-parameters that size arrays are
checked against the weights themselves: a torch model is first built on the ``meta`` device
(no memory) and its shapes compared with the safetensors file (:mod:`sertk.bundle.torch_bundle`);
a classical model's arrays are checked against its meta; feature configs are checked by building
their extractor (:func:`check_features`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sertk.errors import BundleError, FeatureError, MissingDependencyError
from sertk.features import build_extractor

MAX_MAGNITUDE = 1e9  # no number inference reads is larger (sizes, rates, hyper-parameters)
MAX_INPUT_SECONDS = 600.0  # the longest model input (crop duration) a bundle may declare
# JSON path (dotted; "*" any list item) -> (low, high, unit); views check their own ranges
RANGES: dict[str, tuple[float, float, str]] = {
    "preprocess.duration": (1e-3, MAX_INPUT_SECONDS, "seconds"),
    "preprocess.sampling_rate": (1000, 384_000, "Hz"),
    "onnx.encoder.sampling_rate": (1000, 384_000, "Hz"),
    "onnx.encoder.dim": (1, 65_536, "dimensions"),
    "onnx.encoder.layers": (1, 1024, "layers"),
    "onnx.encoder.frame_rate": (0.1, 10_000, "frames per second"),
    "onnx.encoder.min_samples": (1, 10_000_000, "samples"),
    "onnx.encoder.conv.*.*": (1, 100_000, "samples"),
    "members.*.weight": (0, MAX_MAGNITUDE, ""),
}
RECORDS = ("model.meta.search", "model.meta.calibration", "model.meta.training")
SECTIONS = ("preprocess", "features", "model", "views", "members", "onnx.encoder")


def check_numbers(document: dict[str, Any], meta: Path) -> None:
    """BundleError naming the first number of ``document`` (read from ``meta``) out of range."""
    for section in SECTIONS:
        node: Any = document
        for key in section.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        for path, value in _numbers(node, section):
            _check(path, value, meta)


def _numbers(node: Any, path: str) -> Iterator[tuple[str, float]]:
    """``(dotted path, number)`` of every number under ``node`` (booleans are not numbers)."""
    if path in RECORDS:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _numbers(value, f"{path}.{index}")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path, node


def _pattern(path: str) -> str:
    return ".".join("*" if part.isdigit() else part for part in path.split("."))


def _check(path: str, value: float, meta: Path) -> None:
    if not math.isfinite(value):
        raise BundleError(f"{meta}: {path} is {value}; every number in a bundle must be finite")
    bounds = RANGES.get(_pattern(path))
    if bounds is not None:
        low, high, unit = bounds
        if not low <= value <= high:
            raise BundleError(
                f"{meta}: {path} is {value:g} {unit}, outside [{low:g}, {high:g}]; the bundle is "
                "corrupt or was edited wrongly (re-export it from its run)"
            )
    elif abs(value) > MAX_MAGNITUDE:
        raise BundleError(
            f"{meta}: {path} is {value:g}, larger than any size, rate or hyper-parameter a "
            f"model uses ({MAX_MAGNITUDE:g}); the bundle is corrupt or was edited wrongly"
        )


def check_features(features: Any, meta: Path) -> None:
    """The feature config's own checks (names, options, ranges), by building its extractor;
    an SSL encoder (a checkpoint to load) and extractors whose package is not installed are
    checked when the scorer is built."""
    if not isinstance(features, dict) or features.get("name") == "ssl":
        return
    try:
        build_extractor(features)
    except MissingDependencyError:
        return
    except FeatureError as error:
        raise BundleError(f"{meta}: features: {error}") from None
