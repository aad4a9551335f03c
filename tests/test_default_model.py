"""The default model shipped inside the package and the example clips it is documented with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sertk.recognizer import Recognizer, resolve_bundle

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
# EmoDB emotion letter (6th character of the file name) -> the default model's label
EMODB_LETTERS = {
    "W": "angry", "F": "happy", "T": "sad", "N": "neutral", "A": "fearful", "E": "disgust",
}  # fmt: skip


def example_clips() -> list[Path]:
    return sorted(EXAMPLES.glob("*.flac"))


def true_label(path: Path) -> str:
    return EMODB_LETTERS[path.name[5]]


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.load("default")


def test_default_resolves_to_the_bundle_inside_the_package(recognizer):
    folder = resolve_bundle("default")
    assert folder.name == "default_model" and folder.parent.name == "sertk"
    assert (folder / "bundle.json").is_file() and (folder / "MODEL_CARD.md").is_file()
    assert recognizer.bundle.kind == "classical" and not recognizer.speaker_adapted
    assert sum(f.stat().st_size for f in folder.iterdir()) < 2_000_000  # a few hundred kB


def test_labels_are_the_documented_seven(recognizer):
    assert recognizer.labels == LABELS
    mapping = recognizer.bundle.label_map["mapping"]
    assert mapping["calm"] == "neutral" and "boredom" not in mapping


def test_model_card_states_data_licence_and_measured_accuracy(recognizer):
    card = recognizer.bundle.extra["model_card"]
    assert card["labels"] == list(LABELS)
    assert set(card["training_data"]["corpora"]) == {"emodb", "ravdess"}
    assert "CC BY-NC-SA 4.0" in card["licence"] and "commercial" in card["licence"]
    cv = card["speaker_independent"]
    assert 40.0 < cv["ua_pooled"] < 100.0 and cv["ua_std"] >= 0
    assert set(cv["per_corpus"]) == {"emodb", "ravdess"}
    directions = {(c["trained_on"], c["evaluated_on"]) for c in card["cross_corpus"]}
    assert len(directions) == 2
    assert all(0.0 < c["ua"] <= 100.0 for c in card["cross_corpus"])
    assert any("sertk train recipes/default_model.yaml" in line for line in card["commands"])
    text = (resolve_bundle("default") / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"{cv['ua_pooled']}" in text and "CC BY-NC-SA 4.0" in text


def test_package_data_ships_every_file_of_the_default_model():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    section = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert '"default_model/*"' in section
    folder = resolve_bundle("default")
    assert all(path.is_file() for path in folder.iterdir())  # "*" does not reach sub-folders


def test_example_clips_are_documented():
    clips = example_clips()
    assert 6 <= len(clips) <= 8
    assert len({path.name[:2] for path in clips}) >= 6  # different speakers
    assert len({true_label(path) for path in clips}) == 6  # every EmoDB label of the model
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert "Burkhardt" in readme and "CC0" in readme and "training data" in readme
    for path in clips:
        assert f"`{path.name}` | {true_label(path)}" in readme


def test_predicts_the_examples_without_importing_torch():
    script = f"""
import json, sys
sys.modules["torch"] = None  # any import of torch now fails
from sertk.recognizer import Recognizer
recognizer = Recognizer.load("default")
paths = {[str(p) for p in example_clips()]!r}
predictions = recognizer.predict_batch(paths)
print(json.dumps([[p.label, p.confidence, p.probabilities] for p in predictions]))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    )
    rows = json.loads(result.stdout)
    assert len(rows) == len(example_clips())
    for label, confidence, probabilities in rows:
        assert label in LABELS and list(probabilities) == list(LABELS)
        assert confidence == pytest.approx(max(probabilities.values()))
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.corpora
def test_examples_are_emodb_clips_and_mostly_recognised(corpora_dir, recognizer):
    from sertk.corpora import scan_corpus

    corpus = {Path(u.path).name: u for u in scan_corpus("emodb", corpora_dir / "emodb").utterances}
    clips = example_clips()
    for path in clips:
        original = Path(corpus[path.name].path)
        assert original.read_bytes() == path.read_bytes()  # copied as they are
        assert corpus[path.name].label == true_label(path)  # README labels = EmoDB's
    predicted = [p.label for p in recognizer.predict_batch(clips)]
    hits = sum(label == true_label(path) for label, path in zip(predicted, clips, strict=True))
    assert hits >= len(clips) - 2, dict(zip([p.name for p in clips], predicted, strict=True))
