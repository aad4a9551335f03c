"""Today's hand-crafted extractors against stored outputs of the code they replaced.

``tests/data/feature_references.npz`` holds ``lld``, ``functionals`` and ``emotion_functionals``
outputs (made by ``tests/data/make_feature_references.py``; its ``meta`` names the commit) for
seeded synthetic signals (silence, a single sample, unvoiced F0, stereo, 8-48 kHz, 20 s) and real
corpus clips; speed-ups of the extractors must keep them within 1e-6 relative.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from sertk.features.emotion import EmotionFunctionals
from sertk.features.handcrafted import Functionals, Lld

DATA = Path(__file__).parent / "data"
spec = importlib.util.spec_from_file_location("make_refs", DATA / "make_feature_references.py")
make_refs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_refs)
REFERENCES = np.load(DATA / "feature_references.npz", allow_pickle=False)
CLASSES = {"Lld": Lld, "Functionals": Functionals, "EmotionFunctionals": EmotionFunctionals}
# relative 1e-6; values below 1e-3 in magnitude (e.g. deltas that cancel) are held to 1e-9 absolute
RTOL, FLOOR = 1e-6, 1e-3


def assert_same(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, what
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{what}: NaN positions differ"
    error = np.abs(actual.astype(np.float64) - expected) / np.maximum(np.abs(expected), FLOOR)
    worst = np.unravel_index(np.nanargmax(error), error.shape) if error.size else ()
    assert not error.size or np.nanmax(error) <= RTOL, (
        f"{what}: relative difference {np.nanmax(error):.3g} at {worst} "
        f"({actual[worst]!r} vs {expected[worst]!r})"
    )


def check(prefix: str, signals: dict) -> None:
    extractors = make_refs.build(CLASSES)
    only = make_refs.CORPUS_EXTRACTORS if prefix == "corpus" else tuple(extractors)
    for name, (signal, rate) in signals.items():
        for key in only:
            features = extractors[key](signal, rate)
            expected = REFERENCES[f"{prefix}/{name}/{key}"]
            assert_same(features[make_refs.kept_rows(len(features))], expected, f"{name}/{key}")


def test_references_are_complete_and_pickle_free():
    meta = json.loads(str(REFERENCES["meta"]))
    assert meta["source"] and meta["max_frames"] == make_refs.MAX_FRAMES
    names = {key.split("/")[1] for key in REFERENCES.files if key.startswith("synthetic/")}
    assert names == set(make_refs.synthetic_signals())
    assert {"one_sample", "silence", "silence_then_tone", "stereo", "rate_8000"} <= names
    silent_f0 = REFERENCES["synthetic/silence/functionals"][
        0, Functionals().columns.index("f0__p50")
    ]
    assert silent_f0 == 0.0  # all frames unvoiced: F0 statistics are 0, not NaN


@pytest.mark.parametrize("name", sorted(make_refs.synthetic_signals()))
def test_synthetic_signals_match_references(name):
    check("synthetic", {name: make_refs.synthetic_signals()[name]})


def test_corpus_clips_match_references(corpora_dir):
    check("corpus", make_refs.corpus_signals(corpora_dir))
