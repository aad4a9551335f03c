"""A bundle's inference contract: what a scorer must do to the audio before its model.

``bundle.json`` (format 2) states it in four typed fields::

    "preprocess":    the sertk.audio.Preprocess chain (null: an ensemble of mixed members)
    "features":      the feature extractor config (build_extractor rebuilds it; null: ditto)
    "normalization": "global" | "speaker"   (speaker: the speaker-adapted protocol)
    "views":         [{"speed": 0.9}, {"crop": [0.0, 0.7]}, ...]   test-time views
    "adaptation":    optional: {"method": "zscore" | "shrinkage", "prior_seconds": s,
                     "min_seconds": s} (sertk.features.normalization.Adaptation): how speaker
                     statistics normalise at test time; absent: z-score, no minimum (as every
                     bundle before it). Shrinkage reads the population prior from
                     ``files.population`` (population.safetensors).

Format 1 bundles kept the last two as loose keys of ``extra`` (``feature_normalization``,
``tta_speeds``, ``tta_crops``); :meth:`InferenceContract.from_document` reads both formats and
takes those keys out of ``extra``, so nothing else ever reads them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from sertk.audio import Preprocess
from sertk.augment import View
from sertk.errors import BundleError, ConfigError
from sertk.features import build_extractor
from sertk.features.normalization import Adaptation
from sertk.inference import FeatureInput

NORMALIZATIONS = ("global", "speaker")
# format-1 keys of bundle.json "extra" that were part of the contract
LEGACY_KEYS = ("feature_normalization", "tta_speeds", "tta_crops")


@dataclasses.dataclass(frozen=True)
class InferenceContract:
    """``preprocess`` and ``features`` (None for an ensemble whose members differ),
    ``normalization`` (``"global"`` or ``"speaker"``), test-time ``views`` and the
    ``adaptation`` (None: z-score without a minimum, for a speaker-adapted bundle)."""

    preprocess: Preprocess | None
    features: Mapping[str, Any] | None
    normalization: Literal["global", "speaker"] = "global"
    views: tuple[View, ...] = ()
    adaptation: Adaptation | None = None

    @property
    def speaker_adapted(self) -> bool:
        return self.normalization == "speaker"

    def feature_input(self, extractor: Any = None, **options: Any) -> FeatureInput:
        """The preprocessing and extractor pair a scorer runs (``extractor`` replaces the one
        of ``features``, e.g. an ONNX encoder; ``options``: runtime-only extractor options)."""
        if self.preprocess is None or self.features is None:
            raise BundleError(
                "this bundle's members use different feature extractors or preprocessing, so "
                "it has no single feature input; score it with its scorer"
            )
        return FeatureInput(self.preprocess, extractor or build_extractor(self.features, **options))

    def to_document(self) -> dict[str, Any]:
        """The ``bundle.json`` fields (``adaptation`` only when set)."""
        document = {
            "features": None if self.features is None else dict(self.features),
            "preprocess": None if self.preprocess is None else self.preprocess.to_dict(),
            "normalization": self.normalization,
            "views": [view.to_dict() for view in self.views],
        }
        if self.adaptation is not None:
            document["adaptation"] = self.adaptation.to_dict()
        return document

    @classmethod
    def of(
        cls, features: Any, preprocess: Any, *, speaker_adapted: bool = False,
        views: Sequence[View] = (), adaptation: Adaptation | None = None,
    ) -> InferenceContract:  # fmt: skip
        """From objects or dicts: an extractor or its ``config()``, a ``Preprocess`` or its dict."""
        if features is not None and callable(getattr(features, "config", None)):
            features = features.config()
        if preprocess is not None and not isinstance(preprocess, Preprocess):
            preprocess = _preprocess(preprocess, "preprocess")
        views = tuple(views)
        if not all(isinstance(view, View) for view in views):
            raise BundleError(f"views must be sertk.augment.View objects, got {views!r}")
        return cls(
            preprocess=preprocess,
            features=None if features is None else dict(features),
            normalization="speaker" if speaker_adapted else "global",
            views=views,
            adaptation=_adaptation(adaptation, speaker_adapted, "adaptation"),
        )

    @classmethod
    def from_document(cls, document: dict[str, Any], meta: Path) -> InferenceContract:
        """Read the contract of a checked ``bundle.json`` of format 1 or 2 (see the module
        docstring); format 1's keys are removed from ``document["extra"]``."""
        if document["format_version"] == 1:
            extra = dict(document.get("extra") or {})
            legacy = {key: extra.pop(key) for key in LEGACY_KEYS if key in extra}
            document["extra"] = None if document.get("extra") is None else extra
            normalization = legacy.get("feature_normalization", "global")
            views = _legacy_views(legacy, meta)
        else:
            normalization, views = document["normalization"], _views(document["views"], meta)
        if normalization not in NORMALIZATIONS:
            raise BundleError(
                f"{meta}: unknown normalization {normalization!r} (expected global or speaker); "
                "upgrade sertk"
            )
        features, preprocess = document["features"], document["preprocess"]
        return cls(
            preprocess=None
            if preprocess is None
            else _preprocess(preprocess, f"{meta}: preprocess"),
            features=None if features is None else dict(features),
            normalization=normalization,
            views=views,
            adaptation=_adaptation(
                document.get("adaptation"), normalization == "speaker", f"{meta}: adaptation"
            ),
        )


def _adaptation(data: Any, speaker: bool, where: str) -> Adaptation | None:
    """The checked adaptation of a contract (BundleError naming ``where``)."""
    if data is None:
        return None
    if not speaker:
        raise BundleError(f"{where}: only a speaker-adapted bundle (normalization speaker) has one")
    try:
        return data if isinstance(data, Adaptation) else Adaptation.from_dict(data)
    except ConfigError as error:
        raise BundleError(f"{where}: {error}") from None


def _preprocess(data: Any, where: str) -> Preprocess:
    try:
        return Preprocess.from_dict(data)
    except ConfigError as error:
        raise BundleError(f"{where}: {error}") from None


def _views(entries: Any, meta: Path) -> tuple[View, ...]:
    if not isinstance(entries, list):
        raise BundleError(f"{meta}: 'views' must be a list of {{'speed': f}} / {{'crop': [s, l]}}")
    try:
        return tuple(View.from_dict(entry) for entry in entries)
    except ConfigError as error:
        raise BundleError(f"{meta}: views: {error}") from None


def _legacy_views(legacy: dict[str, Any], meta: Path) -> tuple[View, ...]:
    """Format 1: ``extra.tta_speeds`` then ``extra.tta_crops``."""
    speeds, crops = legacy.get("tta_speeds") or [], legacy.get("tta_crops") or []
    if not isinstance(speeds, list):
        raise BundleError(
            f"{meta}: tta_speeds must be a list of speed factors in [0.5, 2], got {speeds!r}"
        )
    if not isinstance(crops, list) or not all(
        isinstance(c, list | tuple) and len(c) == 2 for c in crops
    ):
        raise BundleError(
            f"{meta}: tta_crops must be a list of [start, length] fractions with 0 <= start, "
            f"0 < length and start + length <= 1, got {crops!r}"
        )
    try:
        return View.from_lists(speeds, crops)
    except ConfigError as error:
        key = "tta_crops" if "crop" in str(error) else "tta_speeds"
        raise BundleError(f"{meta}: {key}: {error}") from None
