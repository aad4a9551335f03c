"""Model bundles: the self-describing directory that is the single source of truth for inference.

A bundle is a directory::

    model.safetensors          weights (safetensors; never pickle)
    normalization.safetensors  optional per-dimension feature mean/std tensors
    bundle.json                format version, sertk version, kind, model name + hyper-parameters,
                               ordered labels + LabelMap dict, feature-extractor config,
                               preprocess dict, training summary, file checksums, created time

``save_bundle`` writes everything into a temporary directory beside the target and renames it
into place, so an interrupted save never leaves a half bundle and never destroys the previous
one. ``load_bundle`` checks every part and raises :class:`~sertk.errors.BundleError` saying what
is wrong; it rebuilds the model once so a weight/architecture mismatch surfaces at load time.

>>> save_bundle("runs/x/bundle", model=model, model_name="mean_pool", labels=label_map.labels,
...             label_map=label_map, features=extractor.config(),
...             preprocess=Preprocess())  # doctest: +SKIP
>>> bundle = load_bundle("runs/x/bundle")  # doctest: +SKIP
>>> model = bundle.build_model()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from sertk._version import __version__
from sertk.errors import BundleError, SertkError

FORMAT_VERSION = 1
KINDS = ("torch",)  # "sklearn" and "ensemble" are planned
BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "model.safetensors"
NORMALIZATION_FILE = "normalization.safetensors"
REQUIRED_KEYS = (
    "format_version", "sertk_version", "kind", "created", "model", "labels", "label_map",
    "features", "preprocess", "files",
)  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)  # tensors have no truth value for ==
class Bundle:
    """A loaded bundle. ``normalization`` maps ``mean``/``std`` to float32 ``[dim]`` (or
    ``[layers, dim]``) arrays, or is None; ``state_dict`` holds the weights as CPU tensors."""

    path: Path
    format_version: int
    sertk_version: str
    kind: str
    created: str
    model_name: str
    hparams: dict[str, Any]
    labels: tuple[str, ...]
    label_map: dict[str, Any]
    features: dict[str, Any]
    preprocess: dict[str, Any]
    normalization: dict[str, np.ndarray] | None
    training: dict[str, Any] | None
    extra: dict[str, Any] | None
    state_dict: dict[str, torch.Tensor] = dataclasses.field(repr=False)

    def build_model(
        self, *, models: Mapping[str, Callable[..., nn.Module]] | None = None
    ) -> nn.Module:
        """Rebuild ``models[model_name](**hparams)`` (default ``sertk.models.MODELS``), load the
        weights and return it in eval mode; BundleError when they do not fit."""
        if models is None:
            from sertk.models import MODELS as models
        if self.model_name not in models:
            raise BundleError(
                f"{self.path}: model {self.model_name!r} is not known to this sertk "
                f"({__version__}; models: {', '.join(sorted(models))}); upgrade sertk"
            )
        try:
            model = models[self.model_name](**self.hparams)
        except (SertkError, TypeError, ValueError) as error:
            raise BundleError(
                f"{self.path}: cannot rebuild model {self.model_name!r} from its hparams: {error}"
            ) from None
        _check_weights(model, self.state_dict, self.path)
        outputs = _num_outputs(model)
        if outputs is not None and outputs != len(self.labels):
            raise BundleError(
                f"{self.path}: the model has {outputs} outputs but the bundle lists "
                f"{len(self.labels)} labels; the bundle is inconsistent, re-export it"
            )
        model.load_state_dict(self.state_dict)
        return model.eval()

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """Apply the stored statistics to ``[frames, dim]`` (or ``[layers, frames, dim]``) features."""
        array = np.asarray(features, dtype=np.float32)
        if self.normalization is None:
            return array
        mean, std = self.normalization["mean"], self.normalization["std"]
        return ((array - mean[..., None, :]) / std[..., None, :]).astype(np.float32)

    def build_label_map(self) -> Any:
        """The ``sertk.corpora.LabelMap`` stored in the bundle."""
        from sertk.corpora import LabelMap

        return LabelMap.from_dict(self.label_map)

    def build_preprocess(self) -> Any:
        """The ``sertk.audio.Preprocess`` chain stored in the bundle."""
        from sertk.audio import Preprocess

        return Preprocess.from_dict(self.preprocess)

    def build_extractor(self) -> Any:
        """The feature extractor stored in the bundle (``sertk.features.build_extractor``)."""
        from sertk.features import build_extractor

        return build_extractor(self.features)


# --- saving --------------------------------------------------------------------------------


def save_bundle(
    path: str | Path,
    *,
    model: nn.Module,
    model_name: str,
    labels: Sequence[str],
    label_map: Any,
    features: Any,
    preprocess: Any,
    normalization: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
) -> Path:
    """Write a bundle directory atomically (replacing an existing bundle there); returns its path.

    ``label_map``, ``features`` and ``preprocess`` may be objects (``LabelMap``, an extractor,
    ``Preprocess``) or their dicts; ``hparams`` defaults to ``model.hparams``. ``normalization``
    holds ``mean`` and ``std`` arrays ``[dim]`` (or ``[layers, dim]``).
    """
    target = Path(path)
    document = _document(model, model_name, labels, label_map, features, preprocess, hparams)
    document["training"] = None if training is None else dict(training)
    document["extra"] = None if extra is None else dict(extra)
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    stats = None if normalization is None else _check_normalization(normalization)
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    temporary.mkdir()
    try:
        files = {"weights": _write_tensors(weights, temporary / WEIGHTS_FILE)}
        if stats is not None:
            files["normalization"] = _write_tensors(stats, temporary / NORMALIZATION_FILE)
        document["files"] = files
        text = _to_json(document)
        (temporary / BUNDLE_FILE).write_text(text, encoding="utf-8")
        _fsync(temporary / BUNDLE_FILE)
        _fsync(temporary)
        _swap_into_place(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def _document(model, model_name, labels, label_map, features, preprocess, hparams) -> dict:
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
    hparams = dict(getattr(model, "hparams", {}) if hparams is None else hparams)
    if not hparams:
        raise BundleError("the model has no hparams; pass hparams= so the bundle can rebuild it")
    if hparams.get("num_classes", len(labels)) != len(labels):
        raise BundleError(
            f"model has num_classes={hparams['num_classes']} but {len(labels)} labels"
        )
    if getattr(model, "name", model_name) != model_name:
        raise BundleError(f"model_name {model_name!r} differs from the model's name {model.name!r}")
    features = features.config() if callable(getattr(features, "config", None)) else dict(features)
    preprocess = preprocess.to_dict() if hasattr(preprocess, "to_dict") else dict(preprocess)
    return {
        "format_version": FORMAT_VERSION,
        "sertk_version": __version__,
        "kind": "torch",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": model_name, "hparams": hparams},
        "labels": labels,
        "label_map": label_map,
        "features": features,
        "preprocess": preprocess,
    }


def _check_normalization(normalization: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    if set(normalization) != {"mean", "std"}:
        raise BundleError(
            f"normalization needs exactly 'mean' and 'std'; got {sorted(normalization)}"
        )
    mean, std = (np.asarray(normalization[k], dtype=np.float32) for k in ("mean", "std"))
    if mean.shape != std.shape or mean.ndim not in (1, 2):
        raise BundleError(
            f"normalization mean {mean.shape} and std {std.shape} must match, [dim] or [layers, dim]"
        )
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise BundleError("normalization statistics must be finite with std > 0")
    return {"mean": torch.from_numpy(mean.copy()), "std": torch.from_numpy(std.copy())}


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise BundleError(f"{target} is a file; give a directory path for the bundle")
    if target.is_dir() and any(target.iterdir()) and not (target / BUNDLE_FILE).exists():
        raise BundleError(
            f"{target} is a non-empty directory that is not a bundle; refusing to replace it"
        )


def _write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, str]:
    safetensors.torch.save_file(tensors, str(path), metadata={"format": "pt"})
    os.chmod(path, 0o644)  # safetensors creates 0600 files; bundles are meant to be shared
    _fsync(path)
    return {"name": path.name, "sha256": _sha256(path)}


def _swap_into_place(temporary: Path, target: Path) -> None:
    """Rename ``temporary`` to ``target``; an old bundle is moved aside first, removed last."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
        os.rename(target, old)
    try:
        os.rename(temporary, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    _fsync(target.parent)  # make the rename itself durable
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _to_json(document: dict) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, (np.generic, torch.Tensor)) and getattr(value, "ndim", 0) == 0:
            return value.item()
        if isinstance(value, (np.ndarray, torch.Tensor, tuple)):
            return value.tolist() if not isinstance(value, tuple) else list(value)
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")

    try:
        return json.dumps(document, indent=2, default=default, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BundleError(
            f"bundle metadata must be plain JSON (numbers, strings, lists, dicts): {error}"
        ) from None


# --- loading -------------------------------------------------------------------------------


def load_bundle(
    path: str | Path, *, models: Mapping[str, Callable[..., nn.Module]] | None = None
) -> Bundle:
    """Read and check a bundle directory; the model is rebuilt once to verify the weights."""
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
    files = document["files"]
    state_dict = _read_tensors(path, files.get("weights"), "weights")
    normalization = None
    if files.get("normalization") is not None:
        stats = _read_tensors(path, files["normalization"], "normalization")
        normalization = {k: stats[k].numpy() for k in ("mean", "std") if k in stats}
        if len(normalization) != 2:
            raise BundleError(f"{path}: {NORMALIZATION_FILE} lacks 'mean' or 'std'")
    bundle = Bundle(
        path=path,
        format_version=document["format_version"],
        sertk_version=str(document["sertk_version"]),
        kind=document["kind"],
        created=str(document["created"]),
        model_name=document["model"]["name"],
        hparams=dict(document["model"]["hparams"]),
        labels=tuple(document["labels"]),
        label_map=dict(document["label_map"]),
        features=dict(document["features"]),
        preprocess=dict(document["preprocess"]),
        normalization=normalization,
        training=document.get("training"),
        extra=document.get("extra"),
        state_dict=state_dict,
    )
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
    for key in ("label_map", "features", "preprocess", "files"):
        if not isinstance(document[key], dict):
            raise BundleError(f"{meta}: '{key}' must be a JSON object")
    if list(document["label_map"].get("labels", [])) != labels:
        raise BundleError(
            f"{meta}: label_map labels {document['label_map'].get('labels')} differ from labels {labels}"
        )
    num_classes = model["hparams"].get("num_classes", len(labels))
    if num_classes != len(labels):
        raise BundleError(
            f"{meta}: the model has num_classes={num_classes} but {len(labels)} labels are listed"
        )


def _read_tensors(path: Path, entry: Any, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise BundleError(f"{path / BUNDLE_FILE}: files.{what} must name a file")
    file = path / entry["name"]
    if file.parent != path:
        raise BundleError(f"{path / BUNDLE_FILE}: files.{what} must be a file inside the bundle")
    if not file.is_file():
        raise BundleError(f"{path} lacks {entry['name']} ({what}); the bundle is incomplete")
    if entry.get("sha256") not in (None, _sha256(file)):
        raise BundleError(
            f"{file} does not match its checksum in {BUNDLE_FILE}; the file is corrupt"
        )
    try:
        return safetensors.torch.load_file(str(file), device="cpu")
    except Exception as error:  # safetensors raises its own SafetensorError for damaged files
        raise BundleError(f"{file} is not a readable safetensors file: {error}") from None


def _check_weights(model: nn.Module, weights: Mapping[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [
        f"{name} {tuple(weights[name].shape)} vs {tuple(expected[name].shape)}"
        for name in expected
        if name in weights and weights[name].shape != expected[name].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing weights: {', '.join(missing[:5])}")
    if unexpected:
        problems.append(f"unexpected weights: {', '.join(unexpected[:5])}")
    if shapes:
        problems.append(f"shape mismatch (bundle vs model): {'; '.join(shapes[:5])}")
    if problems:
        raise BundleError(
            f"{path}: weights do not fit model {type(model).__name__} built from the bundle's "
            f"hparams ({'; '.join(problems)}); the bundle is inconsistent, re-export it"
        )


def _num_outputs(model: nn.Module) -> int | None:
    """Classifier outputs: ``hparams['num_classes']`` or the last Linear layer's width."""
    hparams = getattr(model, "hparams", None)
    if isinstance(hparams, Mapping) and isinstance(hparams.get("num_classes"), int):
        return hparams["num_classes"]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
