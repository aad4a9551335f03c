"""Toy bundles for test-time adaptation: a global and a speaker-adapted classical model of the
same synthetic corpus, and their adaptive pair.

The corpus: four speakers whose voices sit at different pitches (speaker ``s`` multiplies every
pitch by ``1 + 0.15 s``) and loudnesses; the class is the pitch relative to the speaker's own
(160, 240, 360 Hz before the speaker's factor). Per-speaker normalisation removes the speaker's
factor, so the adapted model gets an unseen speaker right where it has enough of their audio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import voice

from sertk.audio import Preprocess
from sertk.bundle import save_adaptive_bundle, save_classical_bundle
from sertk.classical import fit_classifier
from sertk.features import build_extractor
from sertk.features.normalization import (
    Adaptation,
    FeatureStatistics,
    group_by_speaker,
    normalize_per_speaker,
    population_prior,
)

LABELS = ["neutral", "happy", "angry"]
PITCH = (160.0, 240.0, 360.0)
RATE = 16000
LABEL_MAP = {"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}}


def speaker_clip(label: int, factor: float, *, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """One clip of class ``label`` by a speaker whose pitch factor is ``factor``."""
    return voice(seconds, PITCH[label] * factor, amplitude=0.15 * factor, seed=seed)


def training_set():
    extractor = build_extractor("functionals")
    rows, labels, speakers = [], [], []
    for s in range(4):
        for label in range(len(PITCH)):
            for k in range(3):
                clip = speaker_clip(label, 1 + 0.15 * s, seed=100 * s + 10 * label + k)
                rows.append(extractor(clip, RATE))
                labels.append(label)
                speakers.append(f"s{s}")
    return extractor, rows, labels, speakers


def make_bundles(folder: Path, *, method: str = "zscore", min_seconds: float = 4.0) -> dict:
    """``{"global", "adapted", "pair"}`` bundle paths under ``folder``; the adapted bundle uses
    ``method`` (``shrinkage``: prior 5 s, with the training speakers' population prior)."""
    extractor, rows, labels, speakers = training_set()
    preprocess = Preprocess(duration=1.0)
    common = {"labels": LABELS, "label_map": LABEL_MAP, "features": extractor,
              "preprocess": preprocess}  # fmt: skip
    general = save_classical_bundle(
        folder / "global", model=fit_classifier(np.concatenate(rows), labels, kind="logreg",
                                                num_classes=3), **common,
    )  # fmt: skip
    normalised = normalize_per_speaker(rows, speakers)
    stats = [FeatureStatistics.of([rows[i] for i in group]) for group in
             group_by_speaker(speakers).values()]  # fmt: skip
    shrink = method == "shrinkage"
    adapted = save_classical_bundle(
        folder / "adapted",
        model=fit_classifier(np.concatenate(normalised), labels, kind="logreg", num_classes=3),
        speaker_adapted=True,
        adaptation=Adaptation("shrinkage", prior_seconds=5.0) if shrink else None,
        population=population_prior(stats) if shrink else None,
        **common,
    )
    pair = save_adaptive_bundle(folder / "pair", general, adapted, min_seconds=min_seconds)
    return {"global": general, "adapted": adapted, "pair": pair}


def new_speaker(count: int = 2, *, factor: float = 1.3, seconds: float = 1.0) -> tuple[list, list]:
    """``count`` clips of each class by an unseen speaker: (signals, class indices)."""
    signals, labels = [], []
    for k in range(count):
        for label in range(len(PITCH)):
            signals.append(speaker_clip(label, factor, seconds=seconds, seed=900 + 10 * k + label))
            labels.append(label)
    return signals, labels
