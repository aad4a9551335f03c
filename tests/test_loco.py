"""`sertk benchmark`: leave-one-corpus-out and per-corpus CV on toy corpora in official layouts.

Three tiny corpora (EmoDB, TurEV-DB and URDU layouts) whose emotion is carried by pitch and
loudness contour, each with its own recording gain (a corpus "channel"), so that a model trained
on two of them must transfer to the third.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from sertk.cli import main
from sertk.errors import ConfigError
from sertk.experiment.loco import load_benchmark_config, run_benchmark
from sertk.experiment.loco.adapt import (
    normalize_units,
    one_sided_subsets,
    population_statistics,
    unit_statistics,
)

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
PITCH = {"neutral": 140.0, "happy": 260.0, "sad": 105.0, "angry": 330.0, "disgust": 190.0}
PITCH["boredom"] = 120.0


def tone(label: str, *, speaker: int, take: int, gain: float) -> np.ndarray:
    """0.4 s of a voiced-like tone: pitch from the emotion, shifted per speaker, with a seeded
    vibrato and noise."""
    rng = np.random.default_rng(1000 * speaker + take)
    t = np.arange(int(0.4 * RATE)) / RATE
    f0 = PITCH[label] * (1 + 0.04 * (speaker % 3)) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.hanning(t.size) ** (0.5 if label in ("angry", "happy") else 2.0)
    signal = gain * envelope * wave + 0.003 * rng.standard_normal(t.size)
    return signal.astype(np.float32)


def write(path: Path, signal: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, signal, RATE)


def make_corpora(root: Path) -> dict[str, Path]:
    emodb = {"angry": "W", "happy": "F", "sad": "T", "neutral": "N", "disgust": "E",
             "boredom": "L"}  # fmt: skip
    for s, speaker in enumerate(("03", "08", "09")):
        for label, code in emodb.items():
            for take in range(3):
                signal = tone(label, speaker=s, take=take, gain=0.5)
                write(root / "emodb" / "wav" / f"{speaker}a0{take}{code}a.wav", signal)
    turev = {"angry": ("Angry", "kz"), "happy": ("Happy", "mt"), "sad": ("Sad", "hl"),
             "neutral": ("Calm", "sk")}  # fmt: skip
    for s, speaker in enumerate(("1157", "1234", "1358")):
        for label, (folder, code) in turev.items():
            for take in range(3):
                signal = tone(label, speaker=s + 3, take=take, gain=0.05)
                path = root / "turev" / "Sound Source" / folder / f"{speaker}_{code}_w{take}.wav"
                write(path, signal)
    urdu = {"angry": "A", "happy": "H", "sad": "S", "neutral": "N"}
    for s, speaker in enumerate(("SM1", "SF2", "SM3")):
        for label, code in urdu.items():
            for take in range(3):
                signal = tone(label, speaker=s + 6, take=take, gain=0.2)
                name = f"{speaker}_F{take}_{code}{10 * s + take:03d}.wav"
                write(root / "urdu" / label.capitalize() / name, signal)
    return {name: root / name for name in ("emodb", "turev", "urdu")}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    return make_corpora(tmp_path_factory.mktemp("corpora"))


def recipe(tmp_path: Path, corpora: dict[str, Path], **benchmark) -> Path:
    document = {
        "name": "toy",
        "output_dir": str(tmp_path / "runs"),
        "data": {
            "corpora": [{"corpus": name, "root": str(root)} for name, root in corpora.items()],
            "labels": "shared",
        },  # fmt: skip
        "features": {"name": "emotion_functionals"},
        "preprocess": {"duration": None, "normalize": "loudness"},
        "model": {"name": "ridge", "hparams": {"clip": 10.0}, "search": {"C": [0.1, 1.0]}},
        "benchmark": {"one_sided": [0.7, 1.0], **benchmark},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def loco_run(corpora, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("loco")
    config = load_benchmark_config(recipe(folder, corpora))
    return run_benchmark(config, mode="loco", cache_dir=folder / "cache")


def test_loco_run_folder_splits_and_scores(loco_run):
    names = {p.name for p in loco_run.iterdir()}
    assert {"config.yaml", "env.json", "splits.json", "labels.json", "summary.json",
            "report.md", "ua.png", "global", "speaker"} <= names  # fmt: skip
    splits = json.loads((loco_run / "splits.json").read_text())
    assert splits["mode"] == "loco" and splits["corpora"] == ["emodb", "turev", "urdu"]
    for split in splits["splits"]:
        assert {uid.split(":")[0] for uid in split["test"]} == {split["name"]}
    for protocol in ("global", "speaker"):
        for corpus in ("emodb", "turev", "urdu"):
            where = loco_run / protocol / corpus
            files = {p.name for p in where.iterdir()}
            assert {"metrics.json", "predictions.csv", "confusion_restricted.png",
                    "confusion_open.png"} <= files  # fmt: skip
            metrics = json.loads((where / "metrics.json").read_text())
            assert corpus not in metrics["training"]["train_corpora"]
            assert metrics["training"]["inner_groups"] == "corpus"  # nested leave-one-corpus-out
    summary = json.loads((loco_run / "summary.json").read_text())
    for protocol in ("global", "speaker"):
        mean = summary["protocols"][protocol]["mean"]
        assert mean["restricted"]["ua"] > 0.5  # 4 classes: chance 0.25
        assert mean["restricted"]["ua"] >= mean["open"]["ua"] - 1e-9


def test_loco_restricted_open_and_excluded_classes(loco_run):
    """EmoDB's disgust is absent from the other corpora: excluded when EmoDB is held out,
    a class the model has (open) but the held-out corpus lacks (restricted) otherwise."""
    emodb = json.loads((loco_run / "global" / "emodb" / "metrics.json").read_text())
    assert emodb["excluded"] == {"disgust": 9}
    assert emodb["shared"] == ["neutral", "happy", "sad", "angry"]
    turev = json.loads((loco_run / "global" / "turev" / "metrics.json").read_text())
    assert turev["classes"] == ["neutral", "happy", "sad", "angry", "disgust"]
    assert turev["restricted"]["labels"] == ["neutral", "happy", "sad", "angry"]
    assert turev["open"]["labels"] == turev["classes"]
    rows = (loco_run / "global" / "turev" / "predictions.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:6] == ["id", "corpus", "speaker", "label", "restricted", "open"]
    assert {row.split(",")[4] for row in rows[1:]} <= set(turev["shared"])


def test_loco_reports_merged_and_unmappable_labels(loco_run):
    labels = json.loads((loco_run / "labels.json").read_text())["per_corpus"]
    assert labels["emodb"]["dropped"] == {"boredom": 9}
    assert labels["turev"]["merged"] == {"calm -> neutral": 9}
    report = (loco_run / "report.md").read_text()
    assert "boredom 9" in report and "calm -> neutral 9" in report
    assert "SPEAKER-ADAPTED" in report and "One-sided test units" in report


def test_loco_speaker_protocol_uses_the_corpus_as_urdu_unit_and_one_sided_subsets(loco_run):
    metrics = json.loads((loco_run / "speaker" / "urdu" / "metrics.json").read_text())
    assert set(metrics["one_sided"]) == {"0.7", "1"}
    # URDU's unit is the corpus: one subset per emotion of the whole corpus
    assert metrics["one_sided"]["1"]["subsets"] == 4
    turev = json.loads((loco_run / "speaker" / "turev" / "metrics.json").read_text())
    assert turev["one_sided"]["1"]["subsets"] == 3 * 4  # speakers x emotions


def test_loco_resume_redoes_only_missing_splits(loco_run, capsys):
    summary = (loco_run / "summary.json").read_text()
    kept = loco_run / "global" / "emodb" / "predictions.csv"
    stamp = kept.stat().st_mtime_ns
    (loco_run / "speaker" / "urdu" / "metrics.json").unlink()
    assert main(["benchmark", "loco", "--resume", str(loco_run)]) == 0
    out = capsys.readouterr().out
    assert "global emodb: done before the resume" in out
    assert "speaker urdu: restricted UA" in out
    assert kept.stat().st_mtime_ns == stamp
    assert json.loads((loco_run / "summary.json").read_text()) == json.loads(summary)


def test_within_mode_folds_per_corpus(corpora, tmp_path):
    config = load_benchmark_config(recipe(tmp_path, corpora, protocols=["global"]))
    folder = run_benchmark(config, mode="within", corpora=["turev"], cache_dir=tmp_path / "c")
    splits = json.loads((folder / "splits.json").read_text())["splits"]
    assert [s["name"] for s in splits] == ["turev/S1157", "turev/S1234", "turev/S1358"]
    assert (folder / "global" / "turev" / "S1157" / "metrics.json").is_file()
    for split in splits:
        assert len(split["test_speakers"]) == 1 and split["train_speakers"] == 2
    summary = json.loads((folder / "summary.json").read_text())
    entry = summary["protocols"]["global"]["per_corpus"]["turev"]
    assert entry["folds"] == 3 and entry["n"] == 36 and entry["restricted"]["ua"] > 0.5


def test_cli_benchmark_prints_summary_and_refuses_bad_input(corpora, tmp_path, capsys):
    path = recipe(tmp_path, corpora, protocols=["global"])
    code = main(["benchmark", "loco", str(path), "--corpora", "turev,urdu", "--cache",
                 str(tmp_path / "c")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "global: UA restricted / open (%)" in out and "mean" in out
    assert main(["benchmark", "loco", str(path), "--corpora", "turev,crema"]) == 2
    assert "--corpora names crema" in capsys.readouterr().err
    assert main(["benchmark", "loco", str(path), "--corpora", "turev"]) == 2
    assert "at least 2 corpora" in capsys.readouterr().err
    assert main(["benchmark", "loco", str(path), "--resume", str(tmp_path)]) == 2
    assert "give no RECIPE" in capsys.readouterr().err
    assert main(["benchmark", "loco", "--resume", str(tmp_path)]) == 2
    assert "not a benchmark run folder" in capsys.readouterr().err


def test_benchmark_recipe_checks(corpora, tmp_path):
    path = recipe(tmp_path, corpora)
    config = load_benchmark_config(path, ["benchmark.adapt.shrink=5", "benchmark.weights=class"])
    assert config.benchmark.adapt.shrink == 5.0 and config.benchmark.weights == "class"
    assert config.benchmark.adapt.units == {"urdu": "corpus"}
    with pytest.raises(ConfigError, match="leaves features.normalization"):
        load_benchmark_config(path, ["features.normalization=speaker"])
    with pytest.raises(ConfigError, match="unknown key 'shrnk'"):
        load_benchmark_config(path, ["benchmark.adapt.shrnk=5"])
    with pytest.raises(ConfigError, match="benchmark.protocols"):
        load_benchmark_config(path, ["benchmark.protocols=[global, global]"])
    with pytest.raises(ConfigError, match="shrink must be >= 0"):
        load_benchmark_config(path, ["benchmark.adapt.shrink=-1"])
    with pytest.raises(ConfigError, match="benchmark.weights must be one of 'none', 'class'"):
        load_benchmark_config(path, ["benchmark.weights=corpus"])  # never implemented


def test_final_recipe_searches_block_weights_by_inner_corpus_cv(corpora, tmp_path):
    """recipes/loco_final.yaml on the toy corpora: its model section (emotion_functionals
    blocks, block weights and C searched by leave-one-training-corpus-out) fits every split;
    each split records the grid and a choice from it, made without the held-out corpus."""
    final = yaml.safe_load((REPO / "recipes" / "loco_final.yaml").read_text())
    document = yaml.safe_load(recipe(tmp_path, corpora).read_text())
    document.update(model=final["model"], train=final["train"])
    document["benchmark"] = {**final["benchmark"], "protocols": ["global"]}
    path = tmp_path / "final.yaml"
    path.write_text(yaml.safe_dump(document))
    config = load_benchmark_config(path)
    assert config.benchmark.adapt.shrink == 10.0 and not config.train.augment.waveform_enabled
    run = run_benchmark(config, mode="loco", cache_dir=tmp_path / "cache")
    grid = final["model"]["search"]
    for corpus in ("emodb", "turev", "urdu"):
        training = json.loads((run / "global" / corpus / "metrics.json").read_text())["training"]
        assert training["params"]["blocks"] == [1408, 550, 840]
        search = training["search"]
        assert search["grid"]["block_weights"] == grid["block_weights"]
        assert search["best"]["block_weights"] in grid["block_weights"]
        assert search["best"]["C"] in grid["C"] and 0 < search["best_ua"] <= 1
        assert training["train_rows"] == training["train_utterances"]  # no copies


# --- adaptation statistics ----------------------------------------------------------------------


def test_unit_statistics_z_robust_mean_only_and_shrinkage():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)) * [1.0, 2.0, 3.0] + [5.0, -1.0, 0.0]
    units = ["a"] * 20 + ["b"] * 20
    z = unit_statistics(x, units)
    assert np.allclose(z["a"]["mean"], x[:20].mean(0)) and np.allclose(z["b"]["std"], x[20:].std(0))
    normalised = normalize_units(x, units, z)
    assert np.allclose(normalised[:20].mean(0), 0) and np.allclose(normalised[:20].std(0), 1)
    robust = unit_statistics(x, units, statistic="median_mad")
    assert np.allclose(robust["a"]["mean"], np.median(x[:20], axis=0))
    outlier = x.copy()
    outlier[0] = 1e6  # one wild utterance moves the mean, not the median
    assert np.allclose(unit_statistics(outlier, units, statistic="median_mad")["a"]["mean"],
                       np.median(outlier[:20], axis=0))  # fmt: skip
    assert unit_statistics(outlier, units)["a"]["mean"][0] > 1e4
    population = population_statistics(x)
    centre_only = unit_statistics(x, units, statistic="mean", population=population)
    assert np.allclose(centre_only["a"]["std"], population["std"])
    shrunk = unit_statistics(x, units, shrink=1e9, population=population)
    assert np.allclose(shrunk["a"]["mean"], population["mean"])
    assert np.allclose(shrunk["a"]["std"], population["std"])
    half = unit_statistics(x, units, shrink=20, population=population)["a"]["mean"]
    assert np.allclose(half, (x[:20].mean(0) + population["mean"]) / 2)


def test_one_sided_subsets_have_the_asked_share():
    labels = np.array(["a"] * 10 + ["b"] * 10 + ["c"] * 10 + ["a"] * 6)
    units = np.array(["u"] * 30 + ["v"] * 6)
    subsets = one_sided_subsets(labels, units, share=0.7, seed=0)
    # unit v has one emotion only: no subset can be 70 % of it
    assert [(unit, emotion) for unit, emotion, _ in subsets] == [("u", "a"), ("u", "b"), ("u", "c")]
    for unit, emotion, rows in subsets[:3]:
        share = np.mean(labels[rows] == emotion)
        assert abs(share - 0.7) < 0.05 and set(units[rows]) == {unit}
    single = one_sided_subsets(labels, units, share=1.0)
    assert all(set(labels[rows]) == {emotion} for _, emotion, rows in single)
    assert len(single) == 4 and list(single[3][2]) == list(range(30, 36))


def test_within_summary_pools_folds_whose_test_speakers_lack_classes():
    """URDU's speakers are mostly single-emotion: a fold's restricted classes can be a subset
    of another fold's. Pooling pads each fold's confusion to the union; each fold's own UA
    stays what it was."""
    from sertk.experiment.loco.report import summarise_protocol
    from sertk.metrics import classification_report

    classes = ["neutral", "happy", "sad", "angry"]

    def fold(truth, restricted, shared):
        reports = {"restricted": classification_report(truth, restricted, shared),
                   "open": classification_report(truth, restricted, classes)}  # fmt: skip
        one = {"0.7": {"subsets": 1, **reports}}
        return {"corpus": "urdu", "classes": classes, "shared": shared, "excluded": {},
                "test_utterances": len(truth), "one_sided": one, **reports}  # fmt: skip

    first = fold(["neutral", "happy", "happy"], ["neutral", "neutral", "happy"], classes[:2])
    second = fold(["sad", "angry", "neutral", "happy"], ["sad", "sad", "neutral", "happy"],
                  classes)  # fmt: skip
    summary = summarise_protocol({"urdu/fold1": first, "urdu/fold2": second})
    entry = summary["per_corpus"]["urdu"]
    assert entry["shared"] == classes and entry["n"] == 7 and entry["folds"] == 2
    restricted = entry["restricted"]
    assert restricted["fold_mean"]["ua"] == pytest.approx((0.75 + 0.75) / 2)
    # pooled recalls: neutral 2/2, happy 2/3, sad 1/1, angry 0/1
    assert restricted["ua"] == pytest.approx((1 + 2 / 3 + 1 + 0) / 4)
    assert restricted["recall"]["happy"] == pytest.approx(2 / 3)
    assert entry["one_sided"]["0.7"]["restricted"]["ua"] == pytest.approx(restricted["ua"])
