"""Classical bundles: a ``sertk.classical.ClassicalModel`` as float64/int64 arrays in safetensors.

``model.safetensors`` holds ``ClassicalModel.to_arrays()``'s arrays (written with
``safetensors.numpy``), ``bundle.json`` its meta under ``model.meta`` and the chosen
hyper-parameters under ``model.hparams``. Loading and predicting need numpy only: neither
torch nor scikit-learn is imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sertk.bundle._files import WEIGHTS_FILE, read_arrays, write_arrays, write_bundle_dir
from sertk.errors import BundleError


def save_classical_bundle(
    path: str | Path,
    *,
    model: Any,
    labels: Sequence[str],
    label_map: Any,
    features: Any,
    preprocess: Any,
    training: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a classical bundle atomically; ``model`` is a fitted ``ClassicalModel``.

    The model's own standardisation (fitted on its training rows) is part of its arrays, so a
    classical bundle has no ``normalization`` file.

    >>> save_classical_bundle("runs/x/bundle", model=fit_classifier(x, y, kind="svm", ...),
    ...     labels=label_map.labels, label_map=label_map, features=extractor,
    ...     preprocess=Preprocess())  # doctest: +SKIP
    """
    from sertk.bundle import base_document
    from sertk.classical import ClassicalModel

    if not isinstance(model, ClassicalModel):
        raise BundleError(
            f"save_classical_bundle needs a sertk.classical.ClassicalModel, got "
            f"{type(model).__name__}; torch models go through save_bundle"
        )
    document = base_document(
        "classical", labels, label_map, features, preprocess, training=training, extra=extra
    )
    if model.num_classes != len(document["labels"]):
        raise BundleError(
            f"the classical model has {model.num_classes} classes but {len(document['labels'])} "
            "labels were given"
        )
    arrays, meta = model.to_arrays()
    document["model"] = {"name": model.kind, "hparams": model.params, "meta": meta}
    return write_bundle_dir(
        Path(path),
        document,
        lambda folder: {"weights": write_arrays(arrays, folder / WEIGHTS_FILE)},
    )


def check_classical_model(document: dict[str, Any], meta_path: Path) -> None:
    """The ``model`` section of a classical bundle: known kind, meta that fits the labels."""
    from sertk.classical import KINDS

    model = document["model"]
    if model["name"] not in KINDS:
        raise BundleError(
            f"{meta_path}: classical model {model['name']!r} is not one of {', '.join(KINDS)}; "
            "upgrade sertk"
        )
    meta = model.get("meta")
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_path}: a classical bundle needs 'model.meta' (a JSON object)")
    if meta.get("kind") != model["name"]:
        raise BundleError(
            f"{meta_path}: model.name is {model['name']!r} but model.meta.kind is "
            f"{meta.get('kind')!r}; the bundle is inconsistent, re-export it"
        )
    if meta.get("num_classes") != len(document["labels"]):
        raise BundleError(
            f"{meta_path}: the model has num_classes={meta.get('num_classes')!r} but "
            f"{len(document['labels'])} labels are listed"
        )


def read_classical(path: Path, document: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The arrays of ``files.weights`` and the ``ClassicalModel`` they make (checked)."""
    from sertk.classical import ClassicalModel

    arrays = read_arrays(path, document["files"].get("weights"), "weights")
    try:
        model = ClassicalModel.from_arrays(arrays, document["model"]["meta"])
    except BundleError as error:
        raise BundleError(f"{path}: {error}") from None
    return arrays, model
