"""The default model shipped inside the package and the example clips it is documented with."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sertk.recognizer import Recognizer, resolve_bundle

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
# EmoDB emotion letter (6th character of the file name) -> the default model's label
EMODB_LETTERS = {
    "W": "angry", "F": "happy", "T": "sad", "N": "neutral", "A": "fearful", "E": "disgust",
}  # fmt: skip


def example_clips() -> list[Path]:
    return sorted(EXAMPLES.glob("*.flac"))


def true_label(path: Path) -> str:
    return EMODB_LETTERS[path.name[5]]


def readme_text() -> str:
    """README.md with every run of white space as one space (sentences wrap)."""
    return " ".join(README.read_text(encoding="utf-8").split())


def readme_block(first_line: str) -> list[str]:
    """The lines of the README's fenced block that starts with ``first_line``."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(encoding="utf-8"),
                        re.MULTILINE | re.DOTALL)  # fmt: skip
    found = [b.splitlines() for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"README.md has {len(found)} blocks starting with {first_line!r}"
    return found[0]


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.load("default")


def test_default_resolves_to_the_bundle_inside_the_package(recognizer):
    folder = resolve_bundle("default")
    assert folder.name == "default_model" and folder.parent.name == "sertk"
    assert (folder / "bundle.json").is_file() and (folder / "MODEL_CARD.md").is_file()
    # adaptive: the global model answers until 20 s of a speaker's speech, then the adapted one
    assert recognizer.bundle.kind == "adaptive" and recognizer.adaptive
    assert not recognizer.speaker_adapted  # one clip alone gets the global model
    pipeline = recognizer.bundle.extra["model_card"]["pipeline"]
    assert recognizer.bundle.min_seconds == pipeline["min_seconds"] == 20.0
    adapted = recognizer.bundle.members[1]
    assert adapted.speaker_adapted and adapted.contract.adaptation.to_dict() == {
        "method": "shrinkage", "prior_seconds": pipeline["prior_seconds"], "min_seconds": 0.0
    }  # fmt: skip
    assert (folder / "members" / "adapted" / "population.safetensors").is_file()
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) <= 1_000_000


def test_labels_are_the_documented_seven(recognizer):
    assert recognizer.labels == LABELS
    mapping = recognizer.bundle.label_map["mapping"]
    assert mapping["calm"] == "neutral" and "boredom" not in mapping


def test_model_card_states_data_licence_and_commands(recognizer):
    card = recognizer.bundle.extra["model_card"]
    assert card["labels"] == list(LABELS)
    corpora = card["training_data"]["corpora"]
    assert list(corpora) == ["emodb", "ravdess", "ased", "urdu", "turev"]
    assert "CC0" in corpora["emodb"] and "CC BY-NC-SA 4.0" in corpora["ravdess"]
    assert "CC BY-NC-ND 4.0" in corpora["turev"] and "research" in corpora["urdu"]
    assert "research" in corpora["ased"]
    assert "non-commercial" in card["licence"] and "commercially" in card["licence"]
    assert any("25 of its 27 sentences" in c for c in card["training_data"]["caveats"])
    assert list(card["loco"]) in (["baseline"], ["baseline", "final"])
    for entry in card["loco"].values():  # the recipes' leave-one-corpus-out figures
        protocols = entry["protocols"]
        assert set(protocols) == {"global", "speaker"}
        assert all(set(p["per_corpus"]) == set(corpora) for p in protocols.values())
    assert {"balanced", "70%", "single"} <= set(card["adaptation"]["one_sided"])
    commands = "\n".join(card["commands"])
    assert "sertk train recipes/default_model.yaml\n" in commands
    assert "--set features.normalization=speaker" in commands and "bench_adaptation" in commands


@pytest.fixture(scope="module")
def stored() -> dict:
    """The stored run summaries and pooled test predictions the card's CV figures come from,
    per part (``global``, ``adapted``; ``cv_summary.json``, written by
    ``scripts/train_default_model.py package``)."""
    return json.loads((resolve_bundle("default") / "cv_summary.json").read_text("utf-8"))


def prediction_rows(evidence: dict) -> list[list[str]]:
    """``[fold, corpus, label, predicted]`` rows of the stored (index-coded) predictions."""
    table = evidence["predictions"]
    assert table["columns"] == ["fold", "corpus", "label", "predicted"]
    names = (table["folds"], table["corpora"], table["labels"], table["labels"])
    return [[n[k] for n, k in zip(names, row, strict=True)] for row in table["rows"]]


def percent(value: float) -> float:
    return round(100.0 * value, 1)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # EmoDB: no surprised
@pytest.mark.parametrize("part", ["global", "adapted"])
def test_model_card_figures_are_the_stored_run_summarys(recognizer, stored, part):
    """Every speaker-independent figure of the card is the stored summary's, and the summary's
    are what its stored test predictions give (recomputed here with scikit-learn)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

    evidence = stored[part]
    summary, rows = evidence["summary"], prediction_rows(evidence)
    assert summary["normalization"] == {"global": "global", "adapted": "speaker"}[part]
    truth, predicted = [r[2] for r in rows], [r[3] for r in rows]
    pooled = summary["pooled"]
    assert len(rows) == pooled["n"] == summary["utterances"]
    assert balanced_accuracy_score(truth, predicted) == pytest.approx(pooled["ua"], abs=1e-12)
    assert accuracy_score(truth, predicted) == pytest.approx(pooled["wa"], abs=1e-12)
    labels = list(summary["labels"])
    macro_f1 = f1_score(truth, predicted, average="macro", labels=labels)
    assert macro_f1 == pytest.approx(pooled["macro_f1"], abs=1e-12)
    folds = sorted({r[0] for r in rows})
    assert len(folds) == summary["folds"] == len(summary["per_fold"])
    fold_ua = [
        balanced_accuracy_score(
            [r[2] for r in rows if r[0] == f], [r[3] for r in rows if r[0] == f]
        )
        for f in folds
    ]
    assert fold_ua == pytest.approx([summary["per_fold"][f]["ua"] for f in folds], abs=1e-12)
    assert np.mean(fold_ua) == pytest.approx(summary["mean"]["ua"], abs=1e-12)
    assert np.std(fold_ua, ddof=1) == pytest.approx(summary["std"]["ua"], abs=1e-12)

    cv = recognizer.bundle.extra["model_card"]["speaker_independent"][part]
    assert (cv["ua_mean"], cv["ua_std"]) == (
        percent(np.mean(fold_ua)),
        percent(summary["std"]["ua"]),
    )
    assert (cv["ua_pooled"], cv["wa_pooled"], cv["macro_f1_pooled"]) == (
        percent(pooled["ua"]), percent(pooled["wa"]), percent(pooled["macro_f1"])
    )  # fmt: skip
    recall = recall_score(truth, predicted, average=None, labels=labels)
    assert cv["recall_per_class"] == {k: percent(v) for k, v in zip(labels, recall, strict=True)}
    for corpus, figures in cv["per_corpus"].items():
        mine = [r for r in rows if r[1] == corpus]
        assert figures == {
            "utterances": len(mine),
            "ua": percent(balanced_accuracy_score([r[2] for r in mine], [r[3] for r in mine])),
            "wa": percent(accuracy_score([r[2] for r in mine], [r[3] for r in mine])),
        }
    assert sum(f["utterances"] for f in cv["per_corpus"].values()) == len(rows)


@pytest.mark.parametrize("part", ["global", "adapted"])
def test_the_stored_summary_is_the_shipped_bundles_run(recognizer, stored, part):
    """Each summary's final model is the shipped bundle's member: same utterances, speakers,
    parameters."""
    folder = resolve_bundle("default")
    document = json.loads((folder / "bundle.json").read_text("utf-8"))
    entry = document["members"][["global", "adapted"].index(part)]
    assert entry["role"] == part and entry["source"].startswith(f"runs/{stored[part]['run']}/")
    member = json.loads((folder / entry["path"] / "bundle.json").read_text("utf-8"))
    summary = stored[part]["summary"]
    final, shipped = summary["final_model"]["training"], member["training"]
    for key in ("train_utterances", "train_speakers", "augmented_rows", "model", "params"):
        assert final[key] == shipped[key], key
    assert final["params"]["C"] == member["model"]["hparams"]["C"]
    card = document["extra"]["model_card"]
    assert card["training_data"]["utterances"] == shipped["train_utterances"]
    assert card["training_data"]["speakers"] == len(shipped["train_speakers"])
    assert card["training_data"]["dropped"] == summary["dropped"]
    assert summary["labels"] == member["labels"] == document["labels"] == list(recognizer.labels)


def test_model_card_text_is_the_cards_json():
    """MODEL_CARD.md is exactly what the packaging script writes from bundle.json's card."""
    card = json.loads((resolve_bundle("default") / "bundle.json").read_text("utf-8"))
    text = (resolve_bundle("default") / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert load_script("train_default_model").markdown(card["extra"]["model_card"]) == text


def section(text: str, title: str) -> str:
    """The markdown section under the heading ``title`` (up to the next heading of its level)."""
    level = re.match(r"#+", title).group(0)
    start = text.index(title + "\n")
    following = re.search(rf"^{level} ", text[start + len(title) :], re.MULTILINE)
    return text[start : start + len(title) + (following.start() if following else len(text))]


def card_figures(card: dict) -> set[str]:
    """Every number of the card (one decimal) and the chance levels of its label sets."""
    numbers: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, float | int) and not isinstance(value, bool):
            numbers.add(f"{value:.1f}")

    walk({k: v for k, v in card.items() if k != "commands"})
    classes = [len(card["labels"])] + [
        row["classes"]
        for entry in card["loco"].values()
        for protocol in entry["protocols"].values()
        for row in protocol["per_corpus"].values()
    ]
    return numbers | {f"{100 / k:.1f}" for k in classes}


def table_numbers(text: str) -> list[str]:
    """The decimal numbers in the markdown tables of ``text``, first column (row names) apart."""
    cells = [
        cell
        for line in text.splitlines()
        if line.startswith("|")
        for cell in line.strip().strip("|").split("|")[1:]
    ]
    return re.findall(r"(?<![\d.])\d+\.\d(?![\d.])", "\n".join(cells))


def test_readme_and_results_show_the_cards_figures(recognizer):
    """The default-model figures of README.md and docs/results.md are the card's: every number
    in their default-model tables (and the README's prose before the timeline example) is one,
    and the card's headline figures are in the README's table."""
    card = recognizer.bundle.extra["model_card"]
    figures = card_figures(card)
    readme = section(README.read_text(encoding="utf-8"), "## Default model")
    readme = readme[: readme.index("A 60 s recording")]
    prose = re.findall(r"(?<![\d.])\d+\.\d(?![\d.])", readme)
    assert prose and set(prose) <= figures, set(prose) - figures
    cv = card["speaker_independent"]
    rows = "\n".join(line for line in readme.splitlines() if line.startswith("|"))
    for part in cv.values():
        for figure in (f"{part['ua_mean']} ± {part['ua_std']}", part["ua_pooled"],
                       part["wa_pooled"], part["macro_f1_pooled"],
                       *(c["ua"] for c in part["per_corpus"].values())):  # fmt: skip
            assert f"{figure}" in rows, figure
    for entry in card["loco"].values():  # the mean leave-one-corpus-out rows
        for protocol in entry["protocols"].values():
            assert f"| {protocol['mean']['restricted_ua']} |" in rows
    assert set(re.findall(r"(\d+) speakers", readme)) == {str(card["training_data"]["speakers"])}
    results = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    tables = table_numbers(
        section(results, '## Default model (`sertk/default_model`, `Recognizer.load("default")`)')
    )
    assert tables and set(tables) <= figures, set(tables) - figures


def test_package_data_ships_every_file_of_the_default_model():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    section = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    patterns = re.findall(r'"default_model/([^"]*)"', section)
    assert patterns == ["*", "members/*/*"]  # "*" does not reach sub-folders
    folder = resolve_bundle("default")
    files = [path.relative_to(folder) for path in folder.rglob("*") if path.is_file()]
    assert {len(path.parts) for path in files} == {1, 3}  # the top folder and each member's
    assert {path.parts[:2] for path in files if len(path.parts) == 3} == {
        ("members", "global"), ("members", "adapted")
    }  # fmt: skip


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


def test_every_example_clip_is_recognised_as_the_readme_says(recognizer):
    """The clips are training data of the model: as many as the README says come out with their
    own emotion (one clip at a time: the global part), and the one it names does not."""
    clips = [path for path in example_clips() if true_label(path) in recognizer.labels]
    assert clips
    predicted = [p.label for p in recognizer.predict_batch(clips)]
    claim = re.search(r"(\d+) of the (\d+) come out with their own emotion, the (\w+) clip "
                      r"`(\w+)` as (\w+)\)", readme_text())  # fmt: skip
    assert claim, "the README no longer says how many example clips come out right"
    right = [p == true_label(path) for path, p in zip(clips, predicted, strict=True)]
    assert (sum(right), len(right)) == (int(claim[1]), int(claim[2]))
    missed = [(true_label(c), c.stem, p) for c, p, ok in zip(clips, predicted, right, strict=True)
              if not ok]  # fmt: skip
    assert missed == [(claim[3], claim[4], claim[5])]


def test_readme_demo_output_is_what_sertk_predict_prints():
    """README's ``make demo`` block: the command ``make`` echoes is the Makefile's demo recipe
    and the lines under it are exactly what that command prints."""
    recipe = re.search(r"^demo:.*\n\t(.*sertk predict .*)$", MAKEFILE.read_text(), re.MULTILINE)
    assert recipe, "the Makefile's demo target runs no sertk predict"
    command = recipe.group(1).replace("$(VENV)", ".venv")
    block = readme_block("$ make demo")
    assert block[1] == command
    arguments = command.split()[command.split().index("predict") :]
    shown = subprocess.run(
        [sys.executable, "-m", "sertk", *arguments], cwd=REPO, check=True, capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    ).stdout.splitlines()  # fmt: skip
    assert [line.rstrip() for line in shown] == [line.rstrip() for line in block[2:]]


@pytest.mark.corpora
def test_examples_are_emodb_clips(corpora_dir):
    from sertk.corpora import scan_corpus

    corpus = {Path(u.path).name: u for u in scan_corpus("emodb", corpora_dir / "emodb").utterances}
    for path in example_clips():
        original = Path(corpus[path.name].path)
        assert original.read_bytes() == path.read_bytes()  # copied as they are
        assert corpus[path.name].label == true_label(path)  # README labels = EmoDB's


# --- the README's 60 s timeline (scripts/make_recording.py) ---------------------------------


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def timeline_recording(corpora_dir, tmp_path_factory):
    """The README's recording, rebuilt from the corpus by its script: ``(folder, description)``
    with the WAV at ``folder/build/rec.wav`` (the path the README's command names)."""
    folder = tmp_path_factory.mktemp("timeline")
    made = load_script("make_recording").build(
        "timeline", folder / "build" / "rec.wav", corpora=corpora_dir, seed=0
    )
    return folder, made


@pytest.mark.corpora
def test_readme_timeline_output_is_what_sertk_predict_prints(timeline_recording):
    folder, made = timeline_recording
    block = readme_block("$ sertk predict build/rec.wav --timeline")
    shown = subprocess.run(
        [sys.executable, "-m", "sertk", *block[0].split()[2:]], cwd=folder, check=True,
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    ).stdout.splitlines()  # fmt: skip
    assert [line.rstrip() for line in shown] == [line.rstrip() for line in block[1:]]
    claim = re.search(r"A (\d+) s recording made of (\d+) EmoDB clips separated by ([\d.]+)-"
                      r"([\d.]+) s of silence", readme_text())  # fmt: skip
    assert claim, "the README no longer describes the recording"
    seconds, count, shortest, longest = (float(x) for x in claim.groups())
    assert made["duration"] == seconds and len(made["clips"]) == count
    starts = [0.0] + [clip["end"] for clip in made["clips"]]
    gaps = [clip["start"] - end for clip, end in zip(made["clips"], starts, strict=False)]
    assert shortest <= min(gaps) and max(gaps) <= longest


@pytest.mark.corpora
def test_readme_timeline_claims_hold(timeline_recording, recognizer):
    """Every gap is silence; as many clips as the README says come out as one segment within
    its tolerance of their true boundaries, with their emotion (boredom, which the model does
    not have, as neutral)."""
    folder, made = timeline_recording
    claim = re.search(
        r"(\d+) of the (\d+) clips come out as one segment within ([\d.]+) s", readme_text()
    )
    assert claim, "the README no longer states how many clips come out right"
    right, count, tolerance = int(claim[1]), int(claim[2]), float(claim[3])
    timeline = recognizer.timeline(folder / "build" / "rec.wav")
    speech = [s for s in timeline.segments if s.label != "silence"]
    clips = made["clips"]
    assert len(clips) == count
    edges = [0.0] + [x for clip in clips for x in (clip["start"], clip["end"])] + [made["duration"]]
    for start, end in zip(edges[::2], edges[1::2], strict=True):  # the gaps, end to end
        inside = [s for s in speech if s.start < end - tolerance and s.end > start + tolerance]
        assert not inside, f"speech found in the silence {start:.2f}-{end:.2f} s: {inside}"
    expected = {"boredom": "neutral"}
    good = []
    for clip in clips:
        mine = [s for s in speech if s.start < clip["end"] and s.end > clip["start"]]
        good.append(
            len(mine) == 1
            and abs(mine[0].start - clip["start"]) <= tolerance
            and abs(mine[0].end - clip["end"]) <= tolerance
            and mine[0].label == expected.get(clip["label"], clip["label"])
        )
    assert sum(good) == right, [c["id"] for c, ok in zip(clips, good, strict=True) if not ok]
