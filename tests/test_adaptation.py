"""Test-time adaptation: the Adaptation contract (z-score, shrinkage), population priors, the
adaptive bundle kind, and adaptation in the Recognizer, ``sertk predict``, ``sertk evaluate``
and ``sertk bundle pair``."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from toy_adaptation import LABELS, RATE, make_bundles, new_speaker

from sertk.bundle import AdaptiveBundle, load_bundle, save_adaptive_bundle, save_ensemble_bundle
from sertk.cli import main
from sertk.corpora import Utterance, write_manifest
from sertk.errors import BundleError, ConfigError, SertkError
from sertk.features.normalization import (
    Adaptation,
    FeatureStatistics,
    population_prior,
)
from sertk.inference.speakers import normalize_speakers
from sertk.recognizer import Recognizer


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    return make_bundles(tmp_path_factory.mktemp("toys"))


@pytest.fixture(scope="module")
def shrunk(tmp_path_factory):
    return make_bundles(tmp_path_factory.mktemp("shrunk"), method="shrinkage")


def stats_of(rows, seconds=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return FeatureStatistics.of([rng.normal(2.0, 3.0, (rows, 4))], seconds=seconds)


# --- the Adaptation contract ---------------------------------------------------------------


def test_zscore_is_exactly_the_speakers_own_statistics():
    stats = stats_of(20)
    items = [np.random.default_rng(1).normal(size=(1, 4)).astype(np.float32) for _ in range(3)]
    assert Adaptation().normaliser(stats).keys() == {"mean", "std"}
    for key in ("mean", "std"):
        assert np.array_equal(Adaptation().normaliser(stats)[key], stats.to_dict()[key])
    got = normalize_speakers((0, None), items, None, {(0, None): stats}, None)
    for x, y in zip(got, items, strict=True):
        assert np.array_equal(x, stats.apply(y))  # bit for bit what every stored result used


def test_shrinkage_pulls_towards_the_prior_by_seconds_of_speech():
    speaker = stats_of(50, seconds=10.0)
    prior = {"mean": np.zeros(4, np.float32), "std": np.ones(4, np.float32)}
    shrink = Adaptation("shrinkage", prior_seconds=30.0)
    got = shrink.normaliser(speaker, prior)
    weight = 10.0 / 40.0
    np.testing.assert_allclose(got["mean"], weight * speaker.total / speaker.count, rtol=1e-6)
    np.testing.assert_allclose(got["std"], np.sqrt(weight * speaker.variance + (1 - weight)),
                               rtol=1e-5)  # fmt: skip
    much = FeatureStatistics(speaker.count, speaker.total, speaker.total_sq, 1e6)
    np.testing.assert_allclose(shrink.normaliser(much, prior)["mean"], speaker.mean, rtol=1e-4)
    with pytest.raises(SertkError, match="prior statistics"):
        shrink.normaliser(speaker, None)
    with pytest.raises(SertkError, match="seconds"):
        shrink.normaliser(stats_of(5), prior)  # no seconds behind the statistics


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"method": "median"}, "must be one of zscore, shrinkage"),
        ({"method": "shrinkage"}, "needs prior_seconds > 0"),
        ({"method": "zscore", "prior_seconds": 5}, "needs prior_seconds > 0"),
        ({"min_seconds": -1}, "min_seconds must be seconds >= 0"),
        ({"min_seconds": True}, "min_seconds must be seconds >= 0"),
        ({"prior": 3}, "unknown adaptation keys"),
    ],
)
def test_bad_adaptations_are_refused(data, message):
    with pytest.raises(ConfigError, match=message):
        Adaptation.from_dict(data)


def test_statistics_carry_seconds_and_the_prior_weighs_speakers_equally():
    a, b = stats_of(10, seconds=3.0), stats_of(30, seconds=7.5, seed=1)
    assert a.merge(b).seconds == 10.5 and a.update(np.ones((1, 4)), seconds=1).seconds == 4.0
    prior = population_prior([a, b])
    np.testing.assert_allclose(prior["mean"], (a.mean + b.mean) / 2, rtol=1e-6)
    np.testing.assert_allclose(prior["std"], np.sqrt((a.variance + b.variance) / 2), rtol=1e-5)


# --- bundles ---------------------------------------------------------------------------------


def test_a_shrinkage_bundle_stores_its_adaptation_and_prior(shrunk):
    bundle = load_bundle(shrunk["adapted"])
    document = json.loads((shrunk["adapted"] / "bundle.json").read_text())
    assert document["adaptation"] == {"method": "shrinkage", "prior_seconds": 5.0,
                                      "min_seconds": 0.0}  # fmt: skip
    assert document["files"]["population"]["name"] == "population.safetensors"
    assert bundle.contract.adaptation == Adaptation("shrinkage", prior_seconds=5.0)
    assert set(bundle.priors) == {(0, None)} and bundle.priors[(0, None)]["std"].min() > 0
    scorer = bundle.build_scorer()
    assert scorer.adaptation.method == "shrinkage" and (0, None) in scorer.priors


def test_bundles_without_an_adaptation_keep_plain_zscore(toys):
    bundle = load_bundle(toys["adapted"])
    assert bundle.contract.adaptation is None and bundle.priors is None
    assert "adaptation" not in json.loads((toys["adapted"] / "bundle.json").read_text())
    assert bundle.build_scorer().adaptation == Adaptation()
    assert load_bundle(toys["global"]).build_scorer().adaptation is None


def test_broken_adaptation_contracts_are_refused(toys, shrunk, tmp_path):
    copy = shutil.copytree(shrunk["adapted"], tmp_path / "copy")
    (copy / "population.safetensors").write_bytes(b"garbage")
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(copy)
    document = json.loads((toys["global"] / "bundle.json").read_text())
    document["adaptation"] = {"method": "zscore"}
    other = shutil.copytree(toys["global"], tmp_path / "global")
    (other / "bundle.json").write_text(json.dumps(document))
    with pytest.raises(BundleError, match="only a speaker-adapted bundle"):
        load_bundle(other)
    document = json.loads((toys["adapted"] / "bundle.json").read_text())
    document["adaptation"] = {"method": "shrinkage", "prior_seconds": 5}
    third = shutil.copytree(toys["adapted"], tmp_path / "adapted")
    (third / "bundle.json").write_text(json.dumps(document))
    with pytest.raises(BundleError, match="needs the training population's prior"):
        load_bundle(third)


# --- the adaptive bundle kind ----------------------------------------------------------------


def test_the_pair_answers_globally_until_enough_speech_then_adapted(toys):
    pair = Recognizer.load(toys["pair"])
    general, adapted = Recognizer.load(toys["global"]), Recognizer.load(toys["adapted"])
    assert isinstance(pair.bundle, AdaptiveBundle) and pair.adaptive and not pair.speaker_adapted
    signals, truth = new_speaker()
    lone = pair.predict_signal(signals[0], RATE)  # no statistics: the global model, as is
    assert lone.adaptation is None
    assert lone.probabilities == pytest.approx(
        general.predict_signal(signals[0], RATE).probabilities
    )
    got, summaries = pair.predict_adapted(signals, sampling_rate=RATE, speakers=["new"] * 6)
    summary = summaries["new"]
    assert summary.adapted and summary.files == summary.speech_files == 6
    assert summary.total_seconds > 4.0 and summary.statistics[(0, None)].count == 6
    expected = adapted.predict_batch(signals, sampling_rate=RATE, speakers=["new"] * 6)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.adaptation.adapted and mine.probabilities == pytest.approx(theirs.probabilities)
    assert [LABELS.index(p.label) for p in got] == truth  # adapting fixes the unseen speaker
    few, summaries = pair.predict_adapted(signals[:3], sampling_rate=RATE, speakers=["new"] * 3)
    assert not summaries["new"].adapted and "needs 4 s of speech" in summaries["new"].describe()
    for prediction, signal in zip(few, signals[:3], strict=True):
        assert prediction.adaptation.adapted is False
        assert prediction.probabilities == pytest.approx(
            general.predict_signal(signal, RATE).probabilities
        )


def test_pairs_are_a_global_then_an_adapted_bundle(toys, tmp_path):
    with pytest.raises(BundleError, match="pairs a global bundle"):
        save_adaptive_bundle(tmp_path / "x", toys["adapted"], toys["global"])
    with pytest.raises(BundleError, match="pairs a global bundle"):
        save_adaptive_bundle(tmp_path / "y", toys["global"], toys["global"])
    with pytest.raises(BundleError, match="itself an adaptive bundle"):
        save_ensemble_bundle(tmp_path / "z", [toys["pair"], toys["global"]])
    with pytest.raises(BundleError, match="min_seconds must be"):
        save_adaptive_bundle(tmp_path / "w", toys["global"], toys["adapted"], min_seconds=-1)


def test_sertk_bundle_pair_writes_an_adaptive_bundle(toys, tmp_path, capsys):
    out = tmp_path / "pair"
    code = main(["bundle", "pair", str(toys["global"]), str(toys["adapted"]), "-o", str(out),
                 "--min-seconds", "12"])  # fmt: skip
    assert code == 0 and "until 12 s of a speaker's speech" in capsys.readouterr().out
    bundle = load_bundle(out)
    assert bundle.kind == "adaptive" and bundle.min_seconds == 12.0
    assert [m.kind for m in bundle.members] == ["classical", "classical"]
    code = main(["bundle", "pair", str(toys["adapted"]), str(toys["global"]), "-o", str(out)])
    assert code == 2 and "pairs a global bundle" in capsys.readouterr().err


# --- the Recognizer and the CLI --------------------------------------------------------------


def test_a_speaker_with_too_little_speech_gets_a_precise_error(toys):
    adapted = Recognizer.load(toys["adapted"])
    signals, _ = new_speaker(1)
    with pytest.raises(
        SertkError, match=r"speaker 'x': 3\.\d s of speech, but .* adapts from 10 s"
    ):
        adapted.predict_adapted(signals, sampling_rate=RATE, speakers=["x"] * 3, min_seconds=10)
    results, summaries = adapted.predict_adapted(
        [*signals, np.zeros(RATE, np.float32)], sampling_rate=RATE, speakers=["x"] * 3 + ["y"],
        min_seconds=2, on_error="return",
    )  # fmt: skip
    assert all(r.adaptation.adapted for r in results[:3])
    assert results[3].label == "no speech" and results[3].probabilities is None  # no statistics
    assert summaries["y"].speech_files == 0 and "no speech" in summaries["y"].describe()
    with pytest.raises(SertkError, match="cannot adapt to speakers"):
        Recognizer.load(toys["global"]).predict_adapted(signals, sampling_rate=RATE,
                                                        speakers=["x"] * 3)  # fmt: skip


@pytest.fixture
def speaker_folder(tmp_path):
    """Two unseen speakers, six clips each, in ``clips/spkA`` and ``clips/spkB``."""
    for name, factor in (("A", 1.3), ("B", 0.9)):
        signals, _ = new_speaker(factor=factor)
        for k, signal in enumerate(signals):
            path = tmp_path / "clips" / f"spk{name}" / f"{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, signal, RATE)
    return tmp_path / "clips"


def run(capsys, *args):
    code = main(["predict", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_adapts_per_speaker_from_a_pattern_or_a_table(toys, speaker_folder, capsys):
    code, out, err = run(capsys, speaker_folder, "--recursive", "--model", toys["pair"], "--adapt",
                         "speaker", "--speaker-pattern", r"spk(\w)", "--format", "json")  # fmt: skip
    assert code == 0, err
    assert "adapting to 2 speakers (2 adapted; needs 4 s of speech each)" in err
    assert "A: 6 files, 6.1 s of speech, adapted" in err.replace("6.0 s", "6.1 s")
    records = json.loads(out)
    assert {r["adaptation"]["speaker"] for r in records} == {"A", "B"}
    assert all(r["adaptation"]["adapted"] and r["speech"] for r in records)
    table = speaker_folder / "speakers.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "speaker"])
        for path in sorted(speaker_folder.rglob("*.wav")):
            writer.writerow(
                [path.relative_to(speaker_folder), "one" if "spkA" in str(path) else "two"]
            )
    code, out, err = run(capsys, speaker_folder, "--recursive", "--model", toys["pair"], "--adapt",
                         "speaker", "--speakers", table, "--format", "csv")  # fmt: skip
    rows = list(csv.DictReader(out.splitlines()))
    assert code == 0 and "one: 6 files" in err and "two: 6 files" in err
    assert list(rows[0])[:5] == ["file", "label", "confidence", "speech", "adapted"]
    assert {row["adapted"] for row in rows} == {"true"}


def test_predict_adapt_all_and_its_errors(toys, speaker_folder, capsys):
    folder = speaker_folder / "spkA"
    code, out, err = run(capsys, folder, "--model", toys["pair"], "--adapt", "all")
    assert code == 0 and "all: 6 files" in err and out.count("[adapted]") == 6
    code, out, err = run(capsys, folder, "--model", toys["pair"], "--adapt", "all",
                         "--adapt-min-seconds", "60")  # fmt: skip
    assert code == 0 and "not adapted: needs 60 s of speech" in err and "[global 6/60 s]" in out
    code, _, err = run(capsys, speaker_folder, "--recursive", "--model", toys["pair"], "--adapt",
                       "speaker", "--speaker-pattern", r"spkA")  # fmt: skip
    assert code == 2 and "finds no speaker in 6 of 12 files" in err and "spkB" in err
    code, _, err = run(capsys, folder, "--model", toys["pair"], "--adapt", "speaker",
                       "--speaker-pattern", "(")  # fmt: skip
    assert code == 2 and "is not a regular expression" in err
    code, _, err = run(capsys, folder, "--model", toys["pair"], "--adapt", "speaker")
    assert code == 2 and "--speaker-pattern REGEX or --speakers FILE.csv" in err
    code, _, err = run(capsys, folder, "--model", toys["global"], "--adapt", "all")
    assert code == 2 and "has no speaker-adapted model to adapt" in err
    code, _, err = run(capsys, folder, "--model", toys["pair"], "--adapt", "session")
    assert code == 2 and "needs --timeline" in err
    code, _, err = run(capsys, folder, "--model", toys["adapted"])
    assert code == 2 and "is speaker-adapted: give --adapt all" in err
    code, _, err = run(capsys, folder, "--model", toys["adapted"], "--adapt", "all",
                       "--adapt-min-seconds", "30")  # fmt: skip
    assert code == 1 and "6.1 s of speech, but" in err.replace("6.0 s", "6.1 s")


def test_a_timeline_adapts_to_the_recordings_own_speech(toys, tmp_path, capsys):
    signals, truth = new_speaker(3)
    gap = (1e-3 * np.random.default_rng(0).standard_normal(RATE // 2)).astype(np.float32)
    recording = np.concatenate([gap] + [np.concatenate([s, gap]) for s in signals])
    path = tmp_path / "talk.wav"
    sf.write(path, recording, RATE)
    timeline = Recognizer.load(toys["pair"]).timeline(path, adapt=True, hop=0.5)
    assert timeline.adaptation.adapted and timeline.adaptation.seconds > 4.0
    assert all(w.speech for w in timeline.windows)
    plain = Recognizer.load(toys["pair"]).timeline(path, hop=0.5)
    assert plain.adaptation is None
    code, out, _ = run(capsys, path, "--model", toys["pair"], "--timeline", "--adapt", "session")
    assert (
        code == 0 and "adapted: " in out.splitlines()[0] and "s of speech)" in out.splitlines()[0]
    )
    code, _, err = run(capsys, path, "--model", toys["pair"], "--timeline", "--adapt", "all")
    assert code == 2 and "use --adapt session" in err


def test_evaluate_adapt_speaker_prints_the_usual_report(toys, tmp_path, capsys):
    utterances = []
    for name, factor in (("A", 1.3), ("B", 0.9)):
        signals, truth = new_speaker(factor=factor)
        for k, (signal, label) in enumerate(zip(signals, truth, strict=True)):
            path = tmp_path / f"{name}{k}.wav"
            sf.write(path, signal, RATE)
            utterances.append(Utterance(f"{name}{k}", str(path), LABELS[label], name))
    manifest = write_manifest(utterances, tmp_path / "manifest.csv")
    reports = {}
    for model, extra in ((toys["pair"], ["--adapt", "speaker"]), (toys["adapted"], []),
                         (toys["pair"], [])):  # fmt: skip
        code = main(["evaluate", str(model), "--manifest", str(manifest), "--no-progress", *extra])
        out = capsys.readouterr().out
        assert code == 0
        reports[(str(model), bool(extra))] = [
            line for line in out.splitlines() if line.startswith("UA ")
        ]
    adapted_line = reports[(str(toys["adapted"]), False)]
    assert reports[(str(toys["pair"]), True)] == adapted_line  # the same UA line
    assert adapted_line[0].startswith("UA 1.0000")
    code = main(
        ["evaluate", str(toys["global"]), "--manifest", str(manifest), "--adapt", "speaker"]
    )
    assert code == 2 and "cannot adapt to speakers" in capsys.readouterr().err
