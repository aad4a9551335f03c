"""Model bundles: the self-describing directory that is the single source of truth for inference.

A bundle is a directory::

    model.safetensors          weights (safetensors; never pickle)
    normalization.safetensors  optional per-dimension feature mean/std (torch bundles)
    members/<i>/               member bundles (ensemble bundles only)
    bundle.json                format version, sertk version, kind, model name + hyper-parameters,
                               ordered labels + LabelMap dict, feature-extractor config,
                               preprocess dict, training summary, file checksums, created time

Kinds (``bundle.json`` ``kind``):

- ``torch``: a ``sertk.models`` head (``save_bundle``); loading imports torch.
- ``classical``: a ``sertk.classical.ClassicalModel`` as float64/int64 arrays
  (``save_classical_bundle``); loading and predicting import neither torch nor scikit-learn.
- ``ensemble``: member bundles combined by soft voting or weighted averaging
  (``save_ensemble_bundle``; see :mod:`sertk.bundle._ensemble`).

Saving writes into a temporary directory beside the target and renames it into place, so an
interrupted save never leaves a half bundle and never destroys the previous one. ``load_bundle``
checks every part and raises :class:`~sertk.errors.BundleError` saying what is wrong; it
rebuilds the model once so a weight/architecture mismatch surfaces at load time.

>>> save_bundle("runs/x/bundle", model=model, model_name="mean_pool", labels=label_map.labels,
...             label_map=label_map, features=extractor.config(),
...             preprocess=Preprocess())  # doctest: +SKIP
>>> bundle = load_bundle("runs/x/bundle")  # doctest: +SKIP
>>> model = bundle.build_model()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk._version import __version__
from sertk.bundle._classical import check_classical_model, read_classical, save_classical_bundle
from sertk.bundle._ensemble import RULES, EnsembleMember, read_members, save_ensemble_bundle
from sertk.bundle._files import BUNDLE_FILE, NORMALIZATION_FILE, WEIGHTS_FILE, read_arrays
from sertk.bundle._torch import build_torch_model, check_torch_model, read_weights, save_bundle
from sertk.errors import BundleError

__all__ = [
    "BUNDLE_FILE", "FORMAT_VERSION", "KINDS", "NORMALIZATION_FILE", "RULES", "WEIGHTS_FILE",
    "Bundle", "EnsembleMember", "load_bundle", "save_bundle", "save_classical_bundle",
    "save_ensemble_bundle",
]  # fmt: skip

FORMAT_VERSION = 1
KINDS = ("torch", "classical", "ensemble")
REQUIRED_KEYS = (
    "format_version", "sertk_version", "kind", "created", "model", "labels", "label_map",
    "features", "preprocess", "files",
)  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)  # arrays have no truth value for ==
class Bundle:
    """A loaded bundle.

    ``normalization`` maps ``mean``/``std`` to float32 ``[dim]`` (or ``[layers, dim]``) arrays,
    or is None. Per kind: ``state_dict`` holds a torch bundle's weights as CPU tensors (empty
    otherwise); ``arrays``/``model_meta`` a classical model's arrays and meta; ``members`` an
    ensemble's members. An ensemble whose members use different extractors or preprocessing
    has ``features`` and ``preprocess`` None.
    """

    path: Path
    format_version: int
    sertk_version: str
    kind: str
    created: str
    model_name: str
    hparams: dict[str, Any]
    labels: tuple[str, ...]
    label_map: dict[str, Any]
    features: dict[str, Any] | None
    preprocess: dict[str, Any] | None
    normalization: dict[str, np.ndarray] | None
    training: dict[str, Any] | None
    extra: dict[str, Any] | None
    state_dict: dict[str, Any] = dataclasses.field(repr=False)
    arrays: dict[str, np.ndarray] | None = dataclasses.field(default=None, repr=False)
    model_meta: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    members: tuple[EnsembleMember, ...] = ()

    def build_model(self, *, models: Mapping[str, Callable[..., Any]] | None = None) -> Any:
        """torch: ``models[model_name](**hparams)`` (default ``sertk.models.MODELS``) with the
        weights, in eval mode; classical: the ``ClassicalModel``. An ensemble has no single
        model: run it with ``sertk.inference.BundleModel``."""
        if self.kind == "classical":
            from sertk.classical import ClassicalModel

            return ClassicalModel.from_arrays(self.arrays, self.model_meta)
        if self.kind == "ensemble":
            raise BundleError(
                f"{self.path} is an ensemble of {len(self.members)} bundles; run it with "
                "sertk.inference.BundleModel (or build each member's model)"
            )
        return build_torch_model(self, models)

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """Apply the stored statistics to ``[frames, dim]`` (or ``[layers, frames, dim]``) features."""
        from sertk.normalization import apply_statistics

        if self.normalization is None:
            return np.asarray(features, dtype=np.float32)
        return apply_statistics(features, self.normalization)

    def build_label_map(self) -> Any:
        """The ``sertk.corpora.LabelMap`` stored in the bundle."""
        from sertk.corpora import LabelMap

        return LabelMap.from_dict(self.label_map)

    def build_preprocess(self) -> Any:
        """The ``sertk.audio.Preprocess`` chain stored in the bundle."""
        from sertk.audio import Preprocess

        return Preprocess.from_dict(self._single("preprocess"))

    def build_extractor(self) -> Any:
        """The feature extractor stored in the bundle (``sertk.features.build_extractor``)."""
        from sertk.features import build_extractor

        return build_extractor(self._single("features"))

    def _single(self, what: str) -> dict[str, Any]:
        value = getattr(self, what)
        if value is None:
            raise BundleError(
                f"{self.path} is an ensemble whose members use different feature extractors or "
                f"preprocessing, so it has no single {what}; run it with "
                "sertk.inference.BundleModel.predict_signals, or use each member's own"
            )
        return value


def base_document(
    kind: str, labels: Sequence[str], label_map: Any, features: Any, preprocess: Any, *,
    training: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The ``bundle.json`` fields every kind shares, checked (labels agree with the label map)."""
    labels = list(labels)
    if (
        not labels
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise BundleError(f"labels must be unique non-empty strings; got {labels!r}")
    label_map = label_map.to_dict() if hasattr(label_map, "to_dict") else dict(label_map)
    if list(label_map.get("labels", [])) != labels:
        raise BundleError(
            f"label_map has labels {label_map.get('labels')} but labels are {labels}; "
            "pass the LabelMap the model was trained with"
        )
    features = features.config() if callable(getattr(features, "config", None)) else dict(features)
    preprocess = preprocess.to_dict() if hasattr(preprocess, "to_dict") else dict(preprocess)
    return {
        "format_version": FORMAT_VERSION,
        "sertk_version": __version__,
        "kind": kind,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "labels": labels,
        "label_map": label_map,
        "features": features,
        "preprocess": preprocess,
        "training": None if training is None else dict(training),
        "extra": None if extra is None else dict(extra),
    }


def load_bundle(
    path: str | Path, *, models: Mapping[str, Callable[..., Any]] | None = None
) -> Bundle:
    """Read and check a bundle directory; a torch model is rebuilt once to verify the weights,
    a classical model checked array by array, an ensemble's members loaded and checked."""
    path = Path(path)
    if not path.is_dir():
        what = "is a file, not a bundle directory" if path.exists() else "does not exist"
        aside = sorted(path.parent.glob(f".{path.name}.*.old")) if not path.exists() else []
        hint = (
            f"; a save was interrupted while replacing it: the previous bundle is at {aside[-1]}, "
            "rename it back"
            if aside
            else f"; give the folder that holds {BUNDLE_FILE}"
        )
        raise BundleError(f"model bundle {path} {what}{hint}")
    document = _read_document(path)
    kind, files = document["kind"], document["files"]
    parts: dict[str, Any] = {"state_dict": {}}
    if kind == "torch":
        parts["state_dict"] = read_weights(path, files.get("weights"))
    elif kind == "classical":
        parts["arrays"], model = read_classical(path, document)
        parts["model_meta"] = model.meta
    normalization = None
    if files.get("normalization") is not None:
        stats = read_arrays(path, files["normalization"], "normalization")
        normalization = {k: stats[k] for k in ("mean", "std") if k in stats}
        if len(normalization) != 2:
            raise BundleError(f"{path}: {NORMALIZATION_FILE} lacks 'mean' or 'std'")
    if kind == "ensemble":
        parts["members"] = read_members(path, document, models)
    bundle = Bundle(
        path=path,
        format_version=document["format_version"],
        sertk_version=str(document["sertk_version"]),
        kind=kind,
        created=str(document["created"]),
        model_name=document["model"]["name"],
        hparams=dict(document["model"]["hparams"]),
        labels=tuple(document["labels"]),
        label_map=dict(document["label_map"]),
        features=None if document["features"] is None else dict(document["features"]),
        preprocess=None if document["preprocess"] is None else dict(document["preprocess"]),
        normalization=normalization,
        training=document.get("training"),
        extra=document.get("extra"),
        **parts,
    )
    if kind == "torch":
        bundle.build_model(models=models)
    return bundle


def _read_document(path: Path) -> dict[str, Any]:
    meta = path / BUNDLE_FILE
    if not meta.is_file():
        raise BundleError(
            f"{path} has no {BUNDLE_FILE}; it is not a model bundle (or an incomplete copy)"
        )
    try:
        document = json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{meta} is not valid JSON ({error}); the bundle is corrupt") from None
    if not isinstance(document, dict):
        raise BundleError(f"{meta} must hold a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise BundleError(f"{meta} lacks required keys: {', '.join(missing)}")
    version = document["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{meta}: format_version must be a positive integer; got {version!r}")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format {version} (made by sertk {document['sertk_version']}); "
            f"this sertk {__version__} reads formats up to {FORMAT_VERSION}: upgrade sertk"
        )
    if document["kind"] not in KINDS:
        raise BundleError(
            f"{path} is a {document['kind']!r} bundle; sertk {__version__} loads {', '.join(KINDS)}"
        )
    _check_sections(document, meta)
    return document


def _check_sections(document: dict[str, Any], meta: Path) -> None:
    model, labels = document["model"], document["labels"]
    if (
        not isinstance(model, dict)
        or not isinstance(model.get("name"), str)
        or not isinstance(model.get("hparams"), dict)
    ):
        raise BundleError(f"{meta}: 'model' must be {{'name': str, 'hparams': dict}}")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise BundleError(f"{meta}: 'labels' must be a non-empty list of strings")
    optional = ("features", "preprocess") if document["kind"] == "ensemble" else ()
    for key in ("label_map", "features", "preprocess", "files"):
        if not isinstance(document[key], dict) and not (key in optional and document[key] is None):
            raise BundleError(f"{meta}: '{key}' must be a JSON object")
    if list(document["label_map"].get("labels", [])) != labels:
        raise BundleError(
            f"{meta}: label_map labels {document['label_map'].get('labels')} differ from labels {labels}"
        )
    if document["kind"] == "torch":
        check_torch_model(document, meta)
    elif document["kind"] == "classical":
        check_classical_model(document, meta)
