"""The sections of an experiment config: frozen dataclasses with defaults in code.

Each section checks its own invariants in ``__post_init__`` and raises
:class:`~sertk.errors.ConfigError` naming the key; field types are checked on loading by
:mod:`sertk.config.typed`. The ``preprocess`` section *is* :class:`sertk.audio.Preprocess`
(the chain stored in bundles) and ``train.augment`` is a :class:`sertk.augment.AugmentConfig`
with the runner's own fields added (:class:`RunAugmentConfig`): no field is declared twice.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from sertk.audio import Preprocess
from sertk.augment import AugmentConfig
from sertk.corpora import LabelMap
from sertk.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class CorpusSource:
    """One corpus of ``data.corpora``: an adapter name, its folder, and the ``name`` that
    prefixes its speakers and utterance ids (default: the adapter name)."""

    corpus: str
    root: str
    name: str | None = None

    @property
    def prefix(self) -> str:
        """``name`` or ``corpus``: speakers become ``<prefix>:<speaker>``."""
        return self.name or self.corpus


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which corpus and classes: ``corpus`` names an adapter, or ``manifest`` points at a CSV,
    or ``corpora`` lists several ``{corpus, root}`` read together (each speaker and utterance
    id is prefixed with its corpus, ``emodb:03``, so speakers stay distinct across corpora).

    Classes come from ``labels`` (a LabelMap preset name) or, when ``targets`` is set, from an
    explicit LabelMap: ordered ``targets`` plus ``mapping`` canonical label -> target (targets
    map to themselves unless stated; unmapped canonical labels are dropped).
    """

    corpus: str | None = None
    root: str | None = None
    manifest: str | None = None
    corpora: tuple[CorpusSource, ...] | None = None
    labels: str | None = None
    targets: tuple[str, ...] | None = None
    mapping: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.labels is not None and self.targets is not None:
            raise ConfigError("set data.labels (a preset) or data.targets (explicit), not both")
        if self.mapping is not None and self.targets is None:
            raise ConfigError("data.mapping needs data.targets, the ordered target labels")

    def label_map(self) -> Any:
        """The ``sertk.corpora.LabelMap`` this config asks for, or None for the corpus default."""
        if self.labels is not None:
            return LabelMap.preset(self.labels)
        if self.targets is None:
            return None
        return LabelMap(self.targets, {**{t: t for t in self.targets}, **(self.mapping or {})})


@dataclasses.dataclass(frozen=True)
class FoldConfig:
    """Arguments of ``sertk.folds.make_folds`` (strategies logo, group_kfold, explicit, random).

    ``folds`` lists the test groups of each fold for ``strategy: explicit``; ``valid_speakers``
    is a count or the names of the training speakers held out for validation.
    """

    strategy: str = "logo"
    group: str = "speaker"
    n_splits: int | None = None
    folds: tuple[tuple[str, ...], ...] | None = None
    valid_fraction: float = 0.15
    valid_speakers: int | tuple[str, ...] | None = None
    seed: int = 0
    speaker_dependent: bool = False

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``make_folds(utterances, **kwargs)``."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def _check_speeds(name: str, factors: tuple[float, ...]) -> None:
    """ConfigError unless every speed factor lies in [0.5, 2], differs from 1 (the original
    is always there) and appears once."""
    for factor in factors:
        if not 0.5 <= factor <= 2.0 or factor == 1.0:
            raise ConfigError(
                f"{name}: each factor must lie in [0.5, 2] and differ from 1 (the original is "
                f"always included), got {factor}"
            )
    if len(set(factors)) != len(factors):
        raise ConfigError(f"{name} repeats a factor: {list(factors)}")


def _check_crops(name: str, crops: tuple[tuple[float, ...], ...]) -> None:
    """ConfigError unless every crop is ``[start, length]`` with 0 <= start, 0 < length < 1 and
    start + length <= 1 (fractions of the utterance's length), none repeated."""
    for crop in crops:
        if len(crop) != 2:
            raise ConfigError(f"{name}: each crop is [start, length], got {list(crop)}")
        start, length = crop
        if not (0 <= start and 0 < length < 1 and start + length <= 1 + 1e-9):
            raise ConfigError(
                f"{name}: a crop [start, length] needs 0 <= start, 0 < length < 1 and "
                f"start + length <= 1 (fractions of the utterance), got {list(crop)}"
            )
    if len(set(crops)) != len(crops):
        raise ConfigError(f"{name} repeats a crop: {[list(c) for c in crops]}")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Feature extractor: ``FEATURES[name](**params)``.

    ``normalization`` names the evaluation protocol. ``global``: per-dimension statistics fitted
    on each fold's training utterances only (speaker-independent). ``speaker``: every speaker's
    features are first z-normalised with that speaker's own statistics, computed from all of
    the speaker's utterances without labels (test speakers included), then as ``global``; this
    speaker-adapted protocol is reported separately and never mixed with ``global`` results.

    ``tta_speeds``: test-time augmentation. Besides the utterance itself, the model also sees
    it speed-perturbed by each factor (e.g. ``[0.9, 1.1]``: resampled, tempo and pitch); the
    class probabilities are the normalised geometric mean over all versions (for a linear
    model: the mean of its scores). Stored in the bundle, so every prediction (test folds,
    ``sertk predict``, the server) does the same; costs one extraction per version.
    ``tta_crops``: more such versions, each a part of the utterance ``[start, length]`` as
    fractions of its length (e.g. ``[[0, 0.7], [0.15, 0.7], [0.3, 0.7]]``).
    """

    name: str = "logmel"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    normalization: Literal["global", "speaker"] = "global"
    tta_speeds: tuple[float, ...] = ()
    tta_crops: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        _check_speeds("features.tta_speeds", self.tta_speeds)
        _check_crops("features.tta_crops", self.tta_crops)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Model: a torch head ``MODELS[name](input_dim, num_classes, **hparams)``, or a classical
    kind of ``sertk.classical.KINDS`` (``linear_svm``, ``svm``, ``logreg``, ``random_forest``,
    ``ridge``)
    on utterance-level features, fitted with ``hparams`` as its fixed parameters.

    ``search`` (classical only): ``{name: [values]}`` tried by an inner cross-validation grouped
    by speaker over the fold's training speakers, scored by UA; e.g. ``{C: [0.01, 0.1, 1]}``.
    """

    name: str = "gru_attention"
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    search: dict[str, tuple[Any, ...]] | None = None


@dataclasses.dataclass(frozen=True)
class RunAugmentConfig(AugmentConfig):
    """``train.augment``: the fields of :class:`sertk.augment.AugmentConfig` (all off; checked
    there) plus how the runner applies them.

    Neural models: feature masking (``mask_p`` ...) on the fly on the cached training features;
    waveform steps (noise, gain, speed, time stretch, pitch shift) re-extract the training
    features every epoch, which the runner allows for cheap extractors only (logmel, mfcc, lld,
    functionals) unless ``allow_expensive`` (e.g. ssl). Classical models: ``copies`` augmented
    waveform copies of every training utterance join the training rows; ``speed_factors``
    (classical only) makes copy ``k`` the utterance at speed ``speed_factors[k]`` (Kaldi-style
    speed perturbation, e.g. ``[0.9, 1.1]`` to match ``features.tta_speeds``), before any
    other enabled waveform step. ``crops`` (classical only) adds, for each ``[start, length]``
    (fractions of the utterance's length), that part of every training utterance as one more
    training row, e.g. the crops of ``features.tta_crops``. Every draw is seeded
    by ``(train.seed, epoch or copy, utterance)``; validation and test data are never augmented.
    """

    copies: int = 1
    allow_expensive: bool = False
    speed_factors: tuple[float, ...] = ()
    crops: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ConfigError as error:
            raise ConfigError(f"train.{error}") from None
        _check_crops("train.augment.crops", self.crops)
        if self.copies < 1:
            raise ConfigError("train.augment.copies must be >= 1")
        if self.speed_factors:
            _check_speeds("train.augment.speed_factors", self.speed_factors)
            if self.copies != len(self.speed_factors) or self.speed_p > 0:
                raise ConfigError(
                    f"train.augment.speed_factors gives copy k the speed factor k: set copies: "
                    f"{len(self.speed_factors)} and leave speed_p at 0 (random speeds)"
                )

    @property
    def waveform_copies(self) -> bool:
        """Whether augmented copies differ in their waveform: a waveform step has a probability
        above 0, or copies have fixed speed factors."""
        return bool(self.speed_factors) or self.waveform_enabled


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation. ``lr``/``batch_size`` default to the reference system (AdamW, 1e-5, 32).

    ``scheduler``: ``none``, ``cosine`` (to ``min_lr`` over all epochs) or ``plateau`` (multiply
    the rate by ``plateau_factor`` after ``plateau_patience`` epochs without a better validation
    UA); a linear warm-up over ``warmup_steps`` optimiser steps applies to all three.
    ``patience`` epochs without a better validation UA stop training (None: never).
    ``class_weights`` and ``balanced_sampling`` both correct imbalance: choose at most one
    (classical models: ``class_weights`` means ``class_weight="balanced"``). ``augment``:
    training-time augmentation (:class:`RunAugmentConfig`).
    """

    lr: float = 1e-5
    batch_size: int = 32
    epochs: int = 30
    weight_decay: float = 0.01
    optimizer: Literal["adamw"] = "adamw"
    scheduler: Literal["none", "cosine", "plateau"] = "none"
    warmup_steps: int = 0
    min_lr: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    grad_clip: float | None = 1.0
    patience: int | None = 10
    class_weights: bool = False
    balanced_sampling: bool = False
    seed: int = 0
    num_workers: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    augment: RunAugmentConfig = dataclasses.field(default_factory=RunAugmentConfig)

    def __post_init__(self) -> None:
        checks = [
            (self.lr > 0, "train.lr must be > 0"),
            (self.batch_size >= 1, "train.batch_size must be >= 1"),
            (self.epochs >= 1, "train.epochs must be >= 1"),
            (self.weight_decay >= 0, "train.weight_decay must be >= 0"),
            (self.warmup_steps >= 0, "train.warmup_steps must be >= 0"),
            (0 <= self.min_lr <= self.lr, "train.min_lr must be in [0, train.lr]"),
            (0 < self.plateau_factor < 1, "train.plateau_factor must be in (0, 1)"),
            (self.plateau_patience >= 1, "train.plateau_patience must be >= 1"),
            (self.grad_clip is None or self.grad_clip > 0, "train.grad_clip must be > 0 or null"),
            (self.patience is None or self.patience >= 1, "train.patience must be >= 1 or null"),
            (self.num_workers >= 0, "train.num_workers must be >= 0"),
            (
                not (self.class_weights and self.balanced_sampling),
                "train.class_weights and train.balanced_sampling both correct class imbalance; "
                "enable at most one",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment. ``final_model``: ``false``; ``true`` also trains one model on all
    speakers (``final/bundle``; neural: the median best epoch of the folds); ``ensemble`` saves
    the fold models as one soft-voting ensemble bundle (``final/bundle``)."""

    name: str = "experiment"
    output_dir: str = "runs"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    folds: FoldConfig = dataclasses.field(default_factory=FoldConfig)
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)
    preprocess: Preprocess = dataclasses.field(default_factory=Preprocess)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    final_model: bool | Literal["ensemble"] = False
