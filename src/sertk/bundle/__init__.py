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

Trust: every number inference reads is range-checked at load (:mod:`sertk.bundle.limits`).
Saving stores the bundle's content hash (:func:`content_hash`: canonical JSON + weights + members)
in ``bundle.json``; loading recomputes it and refuses a bundle whose JSON or files changed since
(:mod:`sertk.bundle.integrity`); ``load_bundle(path, sha256=HASH)`` (CLI ``--model-sha256``)
refuses any other content. :func:`rehash_bundle` (``sertk info BUNDLE --rehash``) stores the
hash of a ``bundle.json`` edited on purpose.

>>> bundle = load_bundle("default")
>>> bundle.kind, bundle.contract.normalization, bundle.labels[:2]
('adaptive', 'global', ('neutral', 'happy'))
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sertk.bundle._hash import HASH_KEY, content_hash
from sertk.bundle.adaptive_bundle import AdaptiveBundle, save_adaptive_bundle
from sertk.bundle.base import FORMAT_VERSION, Bundle, base_document, read_document
from sertk.bundle.classical_bundle import ClassicalBundle, save_classical_bundle
from sertk.bundle.contract import InferenceContract
from sertk.bundle.ensemble_bundle import EnsembleBundle, EnsembleMember, save_ensemble_bundle
from sertk.bundle.files import BUNDLE_FILE, NORMALIZATION_FILE, WEIGHTS_FILE, write_document
from sertk.bundle.files import sha256 as sha256_of
from sertk.bundle.integrity import check_pin, check_sha256, with_content_hash
from sertk.bundle.onnx_bundle import ONNX_FORMAT_VERSION, OnnxBundle
from sertk.bundle.resolve import DEFAULT_MODEL, resolve_bundle
from sertk.bundle.torch_bundle import TorchBundle, save_bundle
from sertk.errors import BundleError, ConfigError
from sertk.inference import RULES, Scorer

__all__ = [
    "BACKENDS", "BUNDLE_FILE", "DEFAULT_MODEL", "FORMAT_VERSION", "KINDS", "NORMALIZATION_FILE",
    "ONNX_FORMAT_VERSION", "RULES", "WEIGHTS_FILE", "AdaptiveBundle", "Bundle", "ClassicalBundle",
    "EnsembleBundle", "EnsembleMember", "HASH_KEY", "InferenceContract", "OnnxBundle",
    "TorchBundle", "base_document", "check_sha256", "content_hash", "load_bundle", "load_scorer",
    "pin_bundle", "rehash_bundle", "resolve_bundle", "save_adaptive_bundle", "save_bundle",
    "save_classical_bundle", "save_ensemble_bundle",
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
    sha256: str | None = None,
) -> Bundle:
    """Read and check the bundle at ``name_or_path`` (see :func:`resolve_bundle`).

    ``backend="onnx"`` reads the ONNX export (an :class:`OnnxBundle`, or an ensemble of them)
    and needs neither torch nor scikit-learn. A torch model is rebuilt once to verify the
    weights, a classical model checked array by array, an ensemble's members loaded and checked.
    ``sha256`` pins the content: BundleError unless :func:`content_hash` is exactly that.
    """
    check_backend(backend)
    if sha256 is not None:
        sha256 = check_sha256(sha256, name="sha256")
    path = resolve_bundle(name_or_path)
    document = read_document(path, tuple(KINDS))
    if backend == "onnx" and not KINDS[document["kind"]].composite:
        bundle = OnnxBundle.read(path, document)
    else:
        bundle = KINDS[document["kind"]].read(path, document, backend=backend, models=models)
    bundle = with_content_hash(bundle, document, content_hash(path))
    check_pin(path, bundle.content_hash, sha256)
    return bundle


def load_scorer(
    name_or_path: str | Path = "default",
    *,
    backend: str = "torch",
    sha256: str | None = None,
    **runtime: Any,
) -> Scorer:
    """``load_bundle(name_or_path, backend=backend, sha256=sha256).build_scorer(**runtime)``:
    what a worker process calls to rebuild a scorer from a bundle path (``runtime``:
    ``device``, ``threads``, ``batch_size``).

    >>> load_scorer("default").labels[:2]
    ('neutral', 'happy')
    """
    return load_bundle(name_or_path, backend=backend, sha256=sha256).build_scorer(**runtime)


def pin_bundle(name_or_path: str | Path, sha256: str | None) -> Path:
    """The bundle folder of ``name_or_path``, after checking its content hash is ``sha256``
    (None: no check) without loading it: for commands that hand the path on (evaluate, export,
    ensemble); BundleError for any other content."""
    path = resolve_bundle(name_or_path)
    if sha256 is not None:
        check_pin(path, content_hash(path), check_sha256(sha256))
    return path


def rehash_bundle(
    name_or_path: str | Path,
    *,
    backend: str = "torch",
    models: Mapping[str, Callable[..., Any]] | None = None,
) -> str:
    """Store the content hash of the bundle as it is now in its ``bundle.json`` (after an edit
    made on purpose) and return it. An ensemble's members are re-hashed first (and their
    checksums in the ensemble updated). The bundle must then load (every other check passes:
    file checksums, ranges, labels); otherwise every ``bundle.json`` touched is put back as it
    was and the BundleError raised.
    """
    path = resolve_bundle(name_or_path)
    originals: dict[Path, bytes] = {}
    try:
        digest = _rehash(path, originals)
        load_bundle(path, backend=backend, models=models)
    except BaseException:
        for meta, text in originals.items():
            staged = meta.with_name(f".{BUNDLE_FILE}.restore")
            staged.write_bytes(text)
            os.replace(staged, meta)
        raise
    return digest


def _rehash(path: Path, originals: dict[Path, bytes]) -> str:
    meta = path / BUNDLE_FILE
    try:
        originals[meta] = meta.read_bytes()
        document = json.loads(originals[meta])
    except (OSError, ValueError) as error:
        raise BundleError(f"cannot re-hash {meta}: {error}") from None
    if not isinstance(document, dict):
        raise BundleError(f"{meta} must hold a JSON object")
    for entry in document.get("members") or ():
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            _rehash(path / entry["path"], originals)
            if "bundle_sha256" in entry:
                entry["bundle_sha256"] = sha256_of(path / entry["path"] / BUNDLE_FILE)
    return write_document(path, document)
