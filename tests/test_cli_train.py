"""``sertk train`` and ``sertk evaluate`` end to end on a toy corpus (class carried by pitch)."""

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from conftest import voice
from test_experiment import write_toy_corpus

import sertk.training
from sertk.bundle import load_bundle
from sertk.cli import main
from sertk.corpora import Utterance, write_manifest

FOLD_FILES = ("metrics.json", "predictions.csv", "curves.png", "confusion.png", "bundle")
RUN_FILES = (
    "config.yaml", "env.json", "splits.json", "summary.json", "report.md", "confusion_pooled.png",
)  # fmt: skip


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A toy corpus, its recipe, a feature cache and one finished run (with a final model)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only adds contention
    root = tmp_path_factory.mktemp("toy")
    csv_path = write_toy_corpus(root / "corpus", speakers=4, per_class=3)
    recipe = root / "toy.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "output_dir": str(root / "runs"),
                "data": {"corpus": "generic", "root": str(csv_path)},
                "folds": {"strategy": "logo", "valid_speakers": 1},
                "features": {"name": "logmel", "params": {"n_mels": 24}},
                "preprocess": {"duration": 0.5},
                "model": {"name": "mean_pool"},
                "train": {"lr": 0.05, "batch_size": 8, "epochs": 3, "patience": None},
                "final_model": True,
            }
        )
    )
    cache = root / "cache"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["train", str(recipe), "--cache", str(cache), "--no-progress"])
    assert code == 0
    (run_dir,) = (root / "runs").iterdir()
    yield {"root": root, "recipe": recipe, "cache": cache, "run_dir": run_dir,
           "stdout": out.getvalue(), "csv": csv_path}  # fmt: skip
    torch.set_num_threads(threads)


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_train_prints_folds_summary_and_run_folder(toy):
    lines = toy["stdout"].splitlines()
    fold_lines = [line for line in lines if line.startswith("fold speaker_spk")]
    assert len(fold_lines) == 4 and all("UA " in line and "WA " in line for line in fold_lines)
    assert any(line.startswith("summary (speaker-independent, 4 folds)") for line in lines)
    assert any("UA " in line and "±" in line and "pooled" in line for line in lines)
    assert lines[-1] == f"run folder: {toy['run_dir']}"


def test_better_than_chance(toy):
    summary = summary_of(toy["run_dir"])
    assert summary["labels"] == ["neutral", "happy", "angry"]
    assert summary["pooled"]["ua"] > 0.6  # chance is 1/3
    assert summary["pooled"]["n"] == 36 and set(summary["per_fold"]) == {
        f"speaker_spk{i}" for i in range(4)
    }


def test_run_folder_holds_every_artifact(toy):
    run_dir = toy["run_dir"]
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    for fold in (run_dir / "folds").iterdir():
        for name in FOLD_FILES:
            assert (fold / name).exists(), f"{fold.name}/{name}"
        assert not (fold / "checkpoint").exists()  # the bundle holds the weights
        metrics = json.loads((fold / "metrics.json").read_text())
        assert metrics["report"]["labels"] == ["neutral", "happy", "angry"]
        assert len(metrics["training"]["history"]["valid_ua"]) == 3
    assert (run_dir / "final" / "bundle" / "bundle.json").is_file()
    env = json.loads((run_dir / "env.json").read_text())
    assert {"python", "torch", "sertk"} <= set(env["versions"])
    assert env["machine"]["cpu_count"] >= 1 and "git" in env
    report = (run_dir / "report.md").read_text()
    assert "Protocol: speaker-independent" in report.split("\n## ")[0]
    for needle in ("## Folds", "speaker_spk2", "dropped (label not in the map): none",
                   "neutral happy angry", "final/bundle", "confusion_pooled.png"):  # fmt: skip
        assert needle in report, needle
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["root"] == str(toy["csv"])  # resolved: absolute paths


def test_splits_never_share_speakers(toy):
    speaker = {}
    with toy["csv"].open() as handle:
        for row in csv.DictReader(handle):
            speaker[row["path"].rsplit(".", 1)[0]] = row["speaker"]
    splits = json.loads((toy["run_dir"] / "splits.json").read_text())
    tested = []
    for fold in splits["folds"]:
        sides = {side: {speaker[uid] for uid in fold[side]} for side in ("train", "valid", "test")}
        assert sides == {side: set(ids) for side, ids in fold["speakers"].items()}
        assert not sides["train"] & sides["test"] and not sides["valid"] & sides["test"]
        assert not sides["train"] & sides["valid"] and sides["valid"]
        tested += fold["test"]
    assert sorted(tested) == sorted(speaker)  # every utterance tested exactly once


def test_bundles_load_and_reproduce_the_fold_predictions(toy):
    for fold in (toy["run_dir"] / "folds").iterdir():
        bundle = load_bundle(fold / "bundle")
        assert bundle.labels == ("neutral", "happy", "angry")
        assert bundle.contract.normalization == "global"
        assert bundle.training["best_epoch"] >= 1 and bundle.normalization is not None
    final = load_bundle(toy["run_dir"] / "final" / "bundle")
    per_fold = summary_of(toy["run_dir"])["per_fold"].values()
    best = sorted(fold["best_epoch"] for fold in per_fold)
    assert final.training["epochs_run"] == max(1, int(np.floor(np.median(best) + 0.5)))


def test_resume_after_an_interruption_equals_an_uninterrupted_run(toy, tmp_path, monkeypatch):
    real = sertk.training.train_model
    calls = []

    def interrupt_second_fold(*args, **kwargs):
        calls.append(kwargs["out_dir"])
        if len(calls) == 2:

            def stop(epoch, _history):
                if epoch == 2:
                    raise KeyboardInterrupt

            kwargs["on_epoch_end"] = stop
        return real(*args, **kwargs)

    monkeypatch.setattr(sertk.training, "train_model", interrupt_second_fold)
    common = ["--cache", str(toy["cache"]), "--no-progress"]
    assert main(["train", str(toy["recipe"]), "--output-dir", str(tmp_path), *common]) == 130
    (run_dir,) = tmp_path.iterdir()
    first, second = run_dir / "folds" / "speaker_spk0", run_dir / "folds" / "speaker_spk1"
    assert (first / "metrics.json").is_file() and not (second / "metrics.json").exists()
    checkpoint = json.loads((second / "checkpoint" / "last.json").read_text())
    assert checkpoint["state"]["epoch"] == 2
    done = (first / "metrics.json").stat().st_mtime_ns
    monkeypatch.undo()
    assert main(["train", "--resume", str(run_dir), *common]) == 0
    assert (first / "metrics.json").stat().st_mtime_ns == done  # a finished fold is not redone
    assert summary_of(run_dir) == summary_of(toy["run_dir"])
    assert (toy["run_dir"] / "summary.json").is_file()  # the other run folder is untouched


def test_resume_refuses_a_changed_config(toy, capsys):
    code = main(["train", str(toy["recipe"]), "--set", "train.lr=0.1", "--resume",
                 str(toy["run_dir"]), "--no-progress"])  # fmt: skip
    assert code == 2
    assert "train.lr: 0.05 -> 0.1" in capsys.readouterr().err


def test_evaluate_maps_labels_and_reports_the_unmappable(toy, tmp_path, capsys):
    pitch = {"neutral": 220.0, "happy": 330.0, "angry": 495.0, "calm": 220.0, "surprised": 700.0}
    rng = np.random.default_rng(1)
    t = np.arange(8000) / 16000
    utterances = []
    for label, f0 in pitch.items():
        for k in range(3):
            path = tmp_path / "other" / f"{label}_{k}.wav"
            path.parent.mkdir(exist_ok=True)
            signal = voice(0.5, f0 * 1.05, noise=0.0, seed=k) + 0.05 * rng.standard_normal(t.size)
            sf.write(path, signal.astype(np.float32), 16000)
            utterances.append(Utterance(f"{label}_{k}", str(path), label, f"other{k}"))
    manifest = write_manifest(utterances, tmp_path / "other" / "manifest.csv")
    output = tmp_path / "report.json"
    bundle = toy["run_dir"] / "final" / "bundle"
    code = main(["evaluate", str(bundle), "--manifest", str(manifest), "--map", "calm=neutral",
                 "--output", str(output), "--cache", str(toy["cache"]), "--no-progress"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "labels with no mapping, excluded: surprised (3)" in out
    assert "evaluated 12 of 15 utterances" in out and "calm->neutral" in out
    result = json.loads(output.read_text())
    assert result["unmapped"] == {"surprised": 3} and result["mapping"]["calm"] == "neutral"
    assert result["report"]["labels"] == ["neutral", "happy", "angry"]
    assert result["report"]["per_class"]["neutral"]["support"] == 6
    assert result["report"]["ua"] > 1 / 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trian: {lr: 0.1}\n", "unknown key 'trian' at the top level"),
        ("model: {name: transformer}\n", "unknown model.name 'transformer'"),
        ("train: {lr: fast}\n", "train.lr must be of type float"),
        ("- a list\n", "must hold a mapping of sections"),
    ],
)
def test_bad_recipe_is_a_clean_error(tmp_path, capsys, text, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("data: {manifest: m.csv}\n" + text if not text.startswith("-") else text)
    assert main(["train", str(recipe), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sertk train: error: ") and message in err
    assert "Traceback" not in err


def test_missing_inputs_are_clean_errors(tmp_path, toy, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "give a RECIPE.yaml" in capsys.readouterr().err
    code = main(["train", str(toy["recipe"]), "--set", f"data.root={tmp_path / 'gone.csv'}",
                 "--output-dir", str(tmp_path / "runs")])  # fmt: skip
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no run folder for a run that could not start
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,path,label,speaker\n")
    bundle = str(toy["run_dir"] / "final" / "bundle")
    assert main(["evaluate", bundle, "--manifest", str(manifest), "--map", "calm"]) == 2
    assert "--map expects SRC=DST" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none"), "--manifest", str(manifest)]) == 2
    assert "does not exist" in capsys.readouterr().err
