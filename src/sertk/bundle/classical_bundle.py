"""Classical bundles: a ``sertk.classical.ClassicalModel`` as float64/int64 arrays in safetensors.

``model.safetensors`` holds ``ClassicalModel.to_arrays()``'s arrays (written with
``safetensors.numpy``), ``bundle.json`` its meta under ``model.meta`` (its own format, 1 to 3,
all readable) and the chosen hyper-parameters under ``model.hparams``. Loading and scoring need
numpy only: neither torch nor scikit-learn is imported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sertk.augment import View
from sertk.bundle.base import Bundle, Runtime, base_document
from sertk.bundle.contract import InferenceContract
from sertk.bundle.files import (
    BUNDLE_FILE,
    WEIGHTS_FILE,
    read_arrays,
    write_arrays,
    write_bundle_dir,
)
from sertk.bundle.population import check_adaptation, check_priors, write_population
from sertk.classical import KINDS, ClassicalModel
from sertk.errors import BundleError
from sertk.features.normalization import Adaptation
from sertk.inference import Scorer
from sertk.inference.backends import ClassicalForward


@dataclasses.dataclass(frozen=True, eq=False)
class ClassicalBundle(Bundle):
    """A classical model: its ``arrays`` and ``model_meta`` (``ClassicalModel.to_arrays()``)."""

    kind: ClassVar[str] = "classical"
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)
    model_meta: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, path: Path, document: dict[str, Any], **_: Any) -> ClassicalBundle:
        """Read and check the arrays (the model is rebuilt once)."""
        check_classical_model(document, path / BUNDLE_FILE)
        arrays = read_arrays(path, document["files"].get("weights"), "weights")
        try:
            model = ClassicalModel.from_arrays(arrays, document["model"]["meta"])
        except BundleError as error:
            raise BundleError(f"{path}: {error}") from None
        return cls(**Bundle.common(path, document), arrays=arrays, model_meta=model.meta)

    def build_model(self) -> ClassicalModel:
        """The ``ClassicalModel`` (numpy)."""
        return ClassicalModel.from_arrays(self.arrays, self.model_meta)

    def make_scorer(self, runtime: Runtime) -> Scorer:
        return self.model_scorer(ClassicalForward(self.build_model()), runtime.extractor)


def save_classical_bundle(
    path: str | Path,
    *,
    model: ClassicalModel,
    labels: Sequence[str],
    label_map: Any,
    features: Any,
    preprocess: Any,
    speaker_adapted: bool = False,
    views: Sequence[View] = (),
    adaptation: Adaptation | None = None,
    population: Any = None,
    training: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a classical bundle atomically; ``model`` is a fitted ``ClassicalModel``.

    The model's own standardisation (fitted on its training rows) is part of its arrays, so a
    classical bundle has no ``normalization`` file. A speaker-adapted bundle may name its test-time
    ``adaptation`` and carry the training ``population``'s prior (``{"mean", "std"}`` of the
    utterance features, or per feature key; see :mod:`sertk.bundle.population`).

    >>> save_classical_bundle("runs/x/bundle", model=fit_classifier(x, y, kind="svm", ...),
    ...     labels=label_map.labels, label_map=label_map, features=extractor,
    ...     preprocess=Preprocess())  # needs a fitted model and its extractor  # doctest: +SKIP
    """
    if not isinstance(model, ClassicalModel):
        raise BundleError(
            f"save_classical_bundle needs a sertk.classical.ClassicalModel, got "
            f"{type(model).__name__}; torch models go through save_bundle"
        )
    contract = InferenceContract.of(
        features, preprocess, speaker_adapted=speaker_adapted, views=views, adaptation=adaptation
    )
    priors = check_priors(population)
    check_adaptation(adaptation, priors, speaker=speaker_adapted)
    document = base_document(
        "classical", labels, label_map, contract, training=training, extra=extra
    )
    if model.num_classes != len(document["labels"]):
        raise BundleError(
            f"the classical model has {model.num_classes} classes but {len(document['labels'])} "
            "labels were given"
        )
    arrays, meta = model.to_arrays()
    document["model"] = {"name": model.kind, "hparams": model.params, "meta": meta}

    def fill(folder: Path) -> dict[str, Any]:
        files = {"weights": write_arrays(arrays, folder / WEIGHTS_FILE)}
        if priors:
            files["population"] = write_population(priors, folder)
        return files

    return write_bundle_dir(Path(path), document, fill)


def check_classical_model(document: dict[str, Any], meta_path: Path) -> None:
    """The ``model`` section of a classical bundle: known kind, meta that fits the labels."""
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
