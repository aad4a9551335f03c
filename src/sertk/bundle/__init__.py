"""Model bundles: the self-describing directory that is the single source of truth for inference.

A bundle is a directory::

    model.safetensors          weights (safetensors; never pickle)
    normalization.safetensors  optional per-dimension feature mean/std (torch bundles)
    members/<i>/               member bundles (ensemble bundles only)
    head.onnx, encoder.onnx    graphs of an ONNX export (``sertk export``)
    bundle.json                format version, sertk version, kind, model name + hyper-parameters,
                               ordered labels + LabelMap dict, the inference contract
                               (preprocess, features, normalization, views), training summary,
                               file checksums, created time

One class per kind, each with one way to build its scorer (``bundle.build_scorer()``):

- :class:`TorchBundle` (``torch``): a ``sertk.models`` head; needs torch (the ``neural`` extra);
- :class:`ClassicalBundle` (``classical``): a ``sertk.classical.ClassicalModel`` as arrays;
  loading and scoring import neither torch nor scikit-learn;
- :class:`EnsembleBundle` (``ensemble``): member bundles combined by soft voting or weights;
- :class:`AdaptiveBundle` (``adaptive``): a global bundle and a speaker-adapted one; the global
  answers until a speaker's (or session's) statistics hold enough speech, then the adapted one;
- :class:`OnnxBundle` (``backend="onnx"``): the ONNX export of a torch or classical bundle,
  run by onnxruntime.

A new kind is one more subclass of :class:`~sertk.bundle.base.Bundle` (``read`` and
``make_scorer``, plus its ``save_*``) and one entry in :data:`KINDS`.

Saving writes into a temporary directory beside the target and renames it into place, so an
interrupted save never leaves a half bundle and never destroys the previous one.
:func:`load_bundle` takes a bundle folder, a run folder or ``"default"`` (:func:`resolve_bundle`),
checks every part and raises :class:`~sertk.errors.BundleError` saying what is wrong; bundles of
format 1 load as well (their contract was kept in ``extra``).

>>> bundle = load_bundle("default")
>>> bundle.kind, bundle.contract.normalization, bundle.labels[:2]
('classical', 'global', ('neutral', 'happy'))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sertk.bundle.adaptive_bundle import AdaptiveBundle, save_adaptive_bundle
from sertk.bundle.base import FORMAT_VERSION, Bundle, base_document, read_document
from sertk.bundle.classical_bundle import ClassicalBundle, save_classical_bundle
from sertk.bundle.contract import InferenceContract
from sertk.bundle.ensemble_bundle import EnsembleBundle, EnsembleMember, save_ensemble_bundle
from sertk.bundle.files import BUNDLE_FILE, NORMALIZATION_FILE, WEIGHTS_FILE
from sertk.bundle.onnx_bundle import ONNX_FORMAT_VERSION, OnnxBundle
from sertk.bundle.resolve import DEFAULT_MODEL, resolve_bundle
from sertk.bundle.torch_bundle import TorchBundle, save_bundle
from sertk.errors import ConfigError
from sertk.inference import RULES, Scorer

__all__ = [
    "BACKENDS", "BUNDLE_FILE", "DEFAULT_MODEL", "FORMAT_VERSION", "KINDS", "NORMALIZATION_FILE",
    "ONNX_FORMAT_VERSION", "RULES", "WEIGHTS_FILE", "AdaptiveBundle", "Bundle", "ClassicalBundle",
    "EnsembleBundle", "EnsembleMember", "InferenceContract", "OnnxBundle", "TorchBundle",
    "base_document", "load_bundle", "load_scorer", "resolve_bundle", "save_adaptive_bundle",
    "save_bundle", "save_classical_bundle", "save_ensemble_bundle",
]  # fmt: skip

KINDS: dict[str, type[Bundle]] = {
    TorchBundle.kind: TorchBundle,
    ClassicalBundle.kind: ClassicalBundle,
    EnsembleBundle.kind: EnsembleBundle,
    AdaptiveBundle.kind: AdaptiveBundle,
}
# "torch": the bundle's own model (numpy for classical, torch for neural heads); "onnx": its export
BACKENDS = ("torch", "onnx")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    return backend


def load_bundle(
    name_or_path: str | Path = "default",
    *,
    backend: str = "torch",
    models: Mapping[str, Callable[..., Any]] | None = None,
) -> Bundle:
    """Read and check the bundle at ``name_or_path`` (see :func:`resolve_bundle`).

    ``backend="onnx"`` reads the ONNX export (an :class:`OnnxBundle`, or an ensemble of them)
    and needs neither torch nor scikit-learn. A torch model is rebuilt once to verify the
    weights, a classical model checked array by array, an ensemble's members loaded and checked.
    """
    check_backend(backend)
    path = resolve_bundle(name_or_path)
    document = read_document(path, tuple(KINDS))
    if backend == "onnx" and not KINDS[document["kind"]].composite:
        return OnnxBundle.read(path, document)
    return KINDS[document["kind"]].read(path, document, backend=backend, models=models)


def load_scorer(
    name_or_path: str | Path = "default", *, backend: str = "torch", **runtime: Any
) -> Scorer:
    """``load_bundle(name_or_path, backend=backend).build_scorer(**runtime)``: what a worker
    process calls to rebuild a scorer from a bundle path (``runtime``: ``device``, ``threads``,
    ``batch_size``).

    >>> load_scorer("default").labels[:2]
    ('neutral', 'happy')
    """
    return load_bundle(name_or_path, backend=backend).build_scorer(**runtime)
