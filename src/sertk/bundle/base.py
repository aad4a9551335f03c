"""What every bundle kind shares: the :class:`Bundle` fields, ``bundle.json`` reading and writing.

A kind is one subclass of :class:`Bundle` (``kind`` names it in ``bundle.json``) with ``read``
(its payload from a checked document) and ``make_scorer`` (how it runs; callers use
:meth:`Bundle.build_scorer`); its module also holds its ``save_*`` function. ``sertk.bundle.KINDS`` maps kind names to the classes.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sertk._version import __version__
from sertk.audio import Preprocess
from sertk.bundle.contract import LEGACY_KEYS, InferenceContract
from sertk.bundle.files import BUNDLE_FILE
from sertk.bundle.limits import check_features, check_numbers
from sertk.bundle.population import Priors, check_adaptation, read_population
from sertk.corpora import LabelMap
from sertk.errors import BundleError
from sertk.features import build_extractor
from sertk.inference import ModelScorer, Scorer

# 2: the inference contract in typed fields (normalization, views); 1 kept it in "extra"
FORMAT_VERSION = 2
REQUIRED_KEYS = (
    "format_version", "sertk_version", "kind", "created", "model", "labels", "label_map",
    "features", "preprocess", "files",
)  # fmt: skip
REQUIRED_SINCE_2 = ("normalization", "views")


@dataclasses.dataclass(frozen=True)
class Runtime:
    """How a scorer runs, never what it computes: torch ``device``, onnxruntime ``threads``,
    ``batch_size`` of the model forward, an already built ``extractor`` to reuse."""

    device: str = "cpu"
    threads: int | None = None
    batch_size: int = 32
    extractor: Any = None


@dataclasses.dataclass(frozen=True, eq=False)  # arrays have no truth value for ==
class Bundle:
    """A loaded bundle: ``path``, versions, ``model_name`` + ``hparams``, ordered ``labels``,
    ``label_map`` (dict), the :class:`InferenceContract` ``contract``, ``training`` and
    ``extra`` (free-form records; nothing reads them for inference), ``onnx`` (the section
    ``sertk export`` adds, or None) and ``content_hash`` (sha256 of its content, checked against
    the one stored in ``bundle.json`` when there is one; set by ``load_bundle``, see
    :mod:`sertk.bundle.integrity`), and ``priors`` (the training population's statistics per
    feature key that a shrinkage adaptation reads, ``files.population``; or None)."""

    kind: ClassVar[str]
    composite: ClassVar[bool] = False  # made of member bundles (members/<name>/)

    path: Path
    format_version: int
    sertk_version: str
    created: str
    model_name: str
    hparams: dict[str, Any]
    labels: tuple[str, ...]
    label_map: dict[str, Any]
    contract: InferenceContract
    training: dict[str, Any] | None
    extra: dict[str, Any] | None
    onnx: dict[str, Any] | None
    content_hash: str = ""
    priors: Priors | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def read(cls, path: Path, document: dict[str, Any], **options: Any) -> Bundle:
        """The bundle of a checked ``document`` read from ``path`` (payload files included)."""
        raise NotImplementedError

    def build_scorer(
        self,
        *,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        extractor: Any = None,
    ) -> Scorer:
        """The scorer that runs this bundle (``device``: torch device of a torch head or SSL
        encoder; ``threads``: onnxruntime threads; ``extractor``: an already built extractor
        of the bundle's feature config to reuse, e.g. the one a run extracted its features with)."""
        return self.make_scorer(Runtime(device, threads, batch_size, extractor))

    def make_scorer(self, runtime: Runtime) -> Scorer:
        """The kind's scorer under ``runtime`` (each kind defines it; see :meth:`build_scorer`)."""
        raise NotImplementedError

    def model_scorer(
        self, forward: Any, extractor: Any = None, global_stats: Any = None
    ) -> ModelScorer:
        """A :class:`~sertk.inference.ModelScorer` of this bundle's contract around ``forward``."""
        return ModelScorer(
            labels=self.labels,
            input=self.contract.feature_input(extractor),
            forward=forward,
            normalization=self.contract.normalization,
            views=self.contract.views,
            global_stats=global_stats,
            adaptation=self.contract.adaptation,
            priors=self.priors,
            source=self.path,
        )

    @property
    def features(self) -> dict[str, Any] | None:
        """The feature extractor config (None: an ensemble of members with different ones)."""
        return None if self.contract.features is None else dict(self.contract.features)

    @property
    def preprocess(self) -> dict[str, Any] | None:
        """The preprocessing as a dict (None: an ensemble of members with different ones)."""
        return None if self.contract.preprocess is None else self.contract.preprocess.to_dict()

    @property
    def speaker_adapted(self) -> bool:
        """Whether scoring needs per-speaker statistics (the speaker-adapted protocol)."""
        return self.contract.speaker_adapted

    def build_label_map(self) -> LabelMap:
        """The ``sertk.corpora.LabelMap`` stored in the bundle."""
        return LabelMap.from_dict(self.label_map)

    def build_preprocess(self) -> Preprocess:
        """The ``sertk.audio.Preprocess`` chain stored in the bundle."""
        if self.contract.preprocess is None:
            raise self._mixed("preprocessing")
        return self.contract.preprocess

    def build_extractor(self, **options: Any) -> Any:
        """The feature extractor stored in the bundle (``sertk.features.build_extractor``)."""
        if self.contract.features is None:
            raise self._mixed("feature extractor")
        return build_extractor(self.contract.features, **options)

    def _mixed(self, what: str) -> BundleError:
        return BundleError(
            f"{self.path} is an ensemble whose members use different feature extractors or "
            f"preprocessing, so it has no single {what}; score it with bundle.build_scorer(), "
            "or use each member's own"
        )

    @staticmethod
    def common(path: Path, document: dict[str, Any]) -> dict[str, Any]:
        """The :class:`Bundle` fields of a checked document, as keyword arguments."""
        contract = InferenceContract.from_document(document, path / BUNDLE_FILE)
        priors = read_population(path, document["files"].get("population"))
        try:
            check_adaptation(contract.adaptation, priors, speaker=contract.speaker_adapted)
        except BundleError as error:
            raise BundleError(f"{path}: {error}") from None
        return {
            "path": path,
            "format_version": document["format_version"],
            "sertk_version": str(document["sertk_version"]),
            "created": str(document["created"]),
            "model_name": document["model"]["name"],
            "hparams": dict(document["model"]["hparams"]),
            "labels": tuple(document["labels"]),
            "label_map": dict(document["label_map"]),
            "contract": contract,
            "training": document.get("training"),
            "extra": document.get("extra"),
            "onnx": document.get("onnx"),
            "priors": priors,
        }


def base_document(
    kind: str, labels: Sequence[str], label_map: Any, contract: InferenceContract, *,
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
    stale = sorted(set(extra or {}) & set(LEGACY_KEYS))
    if stale:
        raise BundleError(
            f"extra keys {', '.join(stale)} are no longer part of a bundle (format 1 kept its "
            "contract there); pass speaker_adapted=True and views=[sertk.augment.View(...)]"
        )
    label_map = label_map.to_dict() if hasattr(label_map, "to_dict") else dict(label_map)
    if list(label_map.get("labels", [])) != labels:
        raise BundleError(
            f"label_map has labels {label_map.get('labels')} but labels are {labels}; "
            "pass the LabelMap the model was trained with"
        )
    return {
        "format_version": FORMAT_VERSION,
        "sertk_version": __version__,
        "kind": kind,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "labels": labels,
        "label_map": label_map,
        **contract.to_document(),
        "training": None if training is None else dict(training),
        "extra": None if extra is None else dict(extra),
    }


def read_document(path: Path, kinds: Sequence[str]) -> dict[str, Any]:
    """``bundle.json`` of ``path``, checked: required keys, format version, ``kind`` among
    ``kinds``, the shared sections (kind-specific ones are checked by the kind's ``read``) and
    the range of every number inference reads (:mod:`sertk.bundle.limits`)."""
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
    missing = [key for key in REQUIRED_SINCE_2 if version >= 2 and key not in document]
    if missing:
        raise BundleError(f"{meta} (format {version}) lacks required keys: {', '.join(missing)}")
    if document["kind"] not in kinds:
        raise BundleError(
            f"{path} is a {document['kind']!r} bundle; sertk {__version__} loads {', '.join(kinds)}"
        )
    _check_sections(document, meta)
    check_numbers(document, meta)
    check_features(document["features"], meta)
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
    optional = ("features", "preprocess") if document["kind"] in ("ensemble", "adaptive") else ()
    for key in ("label_map", "features", "preprocess", "files"):
        if not isinstance(document[key], dict) and not (key in optional and document[key] is None):
            raise BundleError(f"{meta}: '{key}' must be a JSON object")
    if list(document["label_map"].get("labels", [])) != labels:
        raise BundleError(
            f"{meta}: label_map labels {document['label_map'].get('labels')} differ from labels {labels}"
        )
    extra = document.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise BundleError(f"{meta}: 'extra' must be a JSON object or null")
