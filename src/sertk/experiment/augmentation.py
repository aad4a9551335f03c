"""Training-time augmentation in the runner: checks, waveforms, and classical augmented copies.

``train.augment`` (:class:`sertk.config.RunAugmentConfig`: a ``sertk.augment.AugmentConfig``
plus how the runner applies it) is applied to training utterances
only, seeded by ``(train.seed, epoch or copy number, the utterance's position in the corpus)``:

- neural models: feature masking on the fly on cached features; waveform steps re-extract the
  features every epoch from the kept preprocessed waveform (:class:`~.datasets.WaveformSet`),
  allowed for the cheap extractors in ``CHEAP_EXTRACTORS`` unless ``allow_expensive``;
- classical models: ``copies`` augmented copies of each training utterance (fold.train, not
  the validation speakers, never test) are extracted once (through the feature cache, keyed by
  the augmented audio) and join the training rows with their speaker as inner-CV group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sertk.audio import load_audio
from sertk.augment import Augmenter, View, change_speed, fit_length
from sertk.errors import ConfigError
from sertk.features.base import runs_own_threads
from sertk.features.cache import cached_extract
from sertk.parallel import Workers, chunk_length, chunked, plan_jobs

# extractors cheap enough to run on every training utterance in every epoch
CHEAP_EXTRACTORS = ("logmel", "mfcc", "lld", "functionals", "emotion_functionals")


def check_augment(config: Any, kind: str) -> None:
    """ConfigError for augmentation settings that cannot apply to this model and extractor."""
    augment = config.train.augment
    if kind == "classical":
        if augment.features_enabled:
            raise ConfigError(
                "train.augment.mask_p masks frames of neural models' features; classical models "
                "take augmented waveform copies instead (noise_p, gain_p, speed_p, ... with "
                "train.augment.copies)"
            )
    elif augment.crops:
        raise ConfigError(
            "train.augment.crops adds crop copies to classical models' training rows; neural "
            "models crop through preprocess.duration and preprocess.crop"
        )
    elif augment.speed_factors:
        raise ConfigError(
            "train.augment.speed_factors fixes the speed of classical models' copies; neural "
            "models draw speeds every epoch (speed_p, speed)"
        )
    elif augment.copies != 1:
        raise ConfigError(
            "train.augment.copies applies to classical models; neural models draw new "
            "augmentations every epoch"
        )
    name = config.features.name
    copies = (augment.copies if augment.waveform_copies else 0) + len(augment.crops)
    if copies and name not in CHEAP_EXTRACTORS and not augment.allow_expensive:
        cost = "every epoch" if kind == "torch" else f"{copies} time(s) per utterance"
        raise ConfigError(
            f"waveform augmentation re-extracts '{name}' features {cost}, which is expensive; "
            "set train.augment.allow_expensive: true to accept that, or use feature masking "
            f"(mask_p) only, or a cheap extractor ({', '.join(CHEAP_EXTRACTORS)})"
        )


def build_augmenter(config: Any) -> Any:
    """The ``sertk.augment.Augmenter`` of ``train.augment`` (seed ``train.seed``), or None when
    nothing is enabled."""
    augment = config.train.augment
    if not (augment.waveform_copies or augment.features_enabled):
        return None
    return Augmenter(augment, seed=config.train.seed)


def load_signal(ctx: Any, uid: str) -> np.ndarray:
    """The preprocessed float32 ``[samples]`` of one utterance (as its cached features saw it)."""
    rate = ctx.preprocess.sampling_rate
    signal, _ = load_audio(ctx.utterances[uid].path, sampling_rate=rate)
    return ctx.preprocess(signal, rate)


def training_signals(ctx: Any, ids: Sequence[str]) -> list[np.ndarray]:
    """Preprocessed waveforms of ``ids``, loaded once per run and kept (``ctx.signals``)."""
    for uid in ids:
        if uid not in ctx.signals:
            ctx.signals[uid] = load_signal(ctx, uid)
    return [ctx.signals[uid] for uid in ids]


def augmented_copies(ctx: Any, ids: Sequence[str]) -> tuple[list[np.ndarray], list[str]]:
    """Features of ``train.augment.copies`` augmented copies and of the ``train.augment.crops``
    of each of ``ids`` and, for each row, the id of the utterance it copies. Copy ``k`` of an
    utterance is drawn with epoch ``k``; the result is the same in every fold, memoised in
    ``ctx.copies``. Utterances are copied in ``ctx.jobs`` worker processes (the same draws: they
    depend on the seed, the copy and the utterance only); a progress bar counts them."""
    copier = _Copier(ctx)
    todo = [uid for uid in ids if any((uid, key) not in ctx.copies for key in copier.keys)]
    jobs = plan_jobs(ctx.jobs, items=len(todo), own_threads=runs_own_threads(ctx.extractor))
    chunks = chunked(todo, chunk_length(len(todo), jobs, limit=8))
    with tqdm(total=len(todo), unit="file", desc=f"augmented copies ({len(copier.keys)} each)",
              disable=not (ctx.progress and todo)) as bar, Workers(copier, jobs=jobs) as workers:  # fmt: skip
        for chunk, copies in zip(chunks, workers.map(chunks), strict=True):
            for uid, made in zip(chunk, copies, strict=True):
                ctx.copies.update(((uid, key), features) for key, features in made.items())
            bar.update(len(chunk))
    rows, sources = [], []
    for uid in ids:
        for key in copier.keys:
            rows.append(ctx.normalize_speaker(ctx.copies[(uid, key)], uid))
            sources.append(uid)
    return rows, sources


class _Copier:
    """The copies of a chunk of utterances not yet in ``ctx.copies`` (here or in a worker):
    per utterance ``{key: features}``; keys are copy numbers, then crop views."""

    def __init__(self, ctx: Any) -> None:
        augment = ctx.config.train.augment
        self.ctx = ctx
        self.augmenter = build_augmenter(ctx.config) if augment.waveform_copies else None
        self.keys: list[Any] = list(range(augment.copies)) if self.augmenter is not None else []
        self.keys += [View(crop=crop) for crop in augment.crops]

    def __call__(self, chunk: Sequence[str]) -> list[dict[Any, np.ndarray]]:
        ctx = self.ctx
        results = []
        for uid in chunk:
            signal = load_signal(ctx, uid)
            results.append({
                key: cached_features(ctx, self.make(signal, key, uid))
                for key in self.keys
                if (uid, key) not in ctx.copies
            })  # fmt: skip
        return results

    def make(self, signal: np.ndarray, key: Any, uid: str) -> np.ndarray:
        ctx, rate = self.ctx, self.ctx.preprocess.sampling_rate
        if isinstance(key, View):
            return key(signal, rate, ctx.preprocess)
        factors = ctx.config.train.augment.speed_factors
        source = change_speed(signal, factors[key], sampling_rate=rate) if factors else signal
        waveform = self.augmenter.waveform(source, rate, key, ctx.keys[uid])
        return fit_length(waveform, ctx.preprocess)


def cached_features(ctx: Any, signal: np.ndarray) -> np.ndarray:
    """The run's extractor on a preprocessed ``signal``, through the feature cache (keyed by the
    audio itself, so a rerun or another fold reuses it)."""
    return cached_extract(
        ctx.extractor,
        signal,
        ctx.preprocess.sampling_rate,
        preprocess=ctx.preprocess,
        cache=ctx.cache,
    )
