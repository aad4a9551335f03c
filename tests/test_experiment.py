"""The cross-validation runner as a library: config checks, recipes, protocols, SSL, evaluation."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from conftest import as_items, voice

from sertk.bundle import load_bundle
from sertk.config import load_config
from sertk.corpora import Utterance
from sertk.errors import ConfigError, CorpusError, SertkError
from sertk.experiment import (
    check_config,
    evaluate_bundle,
    map_labels,
    prepare_data,
    resolve_config,
    run_experiment,
)
from sertk.experiment.loco import load_benchmark_config
from sertk.features.normalization import normalize_per_speaker
from sertk.training import class_weights

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PITCH = {"neutral": 220.0, "happy": 330.0, "angry": 495.0}  # the class is carried by pitch


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models: a second thread only adds contention on the shared 2-core machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_toy_corpus(
    root: Path, *, speakers=4, per_class=3, pitch=PITCH, seed=0, duration=0.5
) -> Path:
    """Folder per label (``root/<label>/<speaker>_<k>.wav``) plus the generic adapter's CSV
    ``root/labels.csv`` (path,label,speaker); each speaker shifts every pitch a little."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration * 16000)) / 16000
    rows = []
    for s in range(speakers):
        for label, f0 in pitch.items():
            for k in range(per_class):
                frequency = f0 * (1 + 0.03 * s) * (1 + 0.02 * rng.standard_normal())
                amplitude = 0.2 + 0.2 * rng.random()
                signal = voice(duration, frequency, amplitude=amplitude, noise=0.0, seed=s * 7 + k)
                signal += 0.05 * rng.standard_normal(t.size)  # a voice: tones are no speech
                relative = f"{label}/spk{s}_{k}.wav"
                (root / label).mkdir(parents=True, exist_ok=True)
                sf.write(root / relative, signal.astype(np.float32), 16000)
                rows.append([relative, label, f"spk{s}"])
    with (root / "labels.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "label", "speaker"], *rows])
    return root / "labels.csv"


def toy_overrides(csv_path: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "name=toy",
        f"output_dir={tmp_path / 'runs'}",
        "data.corpus=generic",
        f"data.root={csv_path}",
        "folds.valid_speakers=1",
        "features.name=logmel",
        "features.params={n_mels: 24}",
        "preprocess.duration=0.5",
        "model.name=mean_pool",
        "train={lr: 0.05, batch_size: 8, epochs: 3, patience: null}",
        *extra,
    ]


# --- config checks and recipes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], r"set exactly one of data.corpus \(with data.root\) and data.manifest"),
        (["name=../x"], r"name '../x' names the run folder"),
        (["data.corpus=emodb", "data.manifest=m.csv"], "set exactly one of data.corpus"),
        (["data.corpus=emodbb", "data.root=x"], "unknown data.corpus 'emodbb'"),
        (["data.corpus=emodb"], "data.corpus 'emodb' needs data.root"),
        (["data.manifest=m.csv", "data.root=x"], "data.root goes with data.corpus"),
        (["data.manifest=m.csv", "data.corpora=[{corpus: emodb, root: x}]"], "exactly one of"),
        (["data.corpora=[]"], "data.corpora is empty"),
        (["data.corpora=[{corpus: emodbb, root: x}]"], "unknown corpus 'emodbb' in data.corpora"),
        (
            ["data.corpora=[{corpus: generic, root: a}, {corpus: generic, root: b}]"],
            "lists generic more than once; give each entry a distinct 'name'",
        ),
        (["data.corpora=[{corpus: generic, root: a, name: 'a:b'}]"], "prefixes speaker ids"),
        (["data.manifest=m.csv", "data.labels=iemocap5"], "unknown label preset 'iemocap5'"),
        (["data.manifest=m.csv", "folds.strategy=loso"], "unknown folds.strategy 'loso'"),
        (["data.manifest=m.csv", "features.name=mel"], "unknown features.name 'mel'"),
        (["data.manifest=m.csv", "model.name=transformer"], "unknown model.name 'transformer'"),
        (["data.manifest=m.csv", "model.name=svm"], "'svm' needs utterance-level features"),
        (
            ["data.manifest=m.csv", "model.hparams.num_classes=4"],
            "model.hparams must not set num_classes",
        ),
        (
            ["data.manifest=m.csv", "final_model=true", "train.scheduler=plateau"],
            "final_model trains on all speakers without a validation set",
        ),
        (["data.manifest=m.csv", "model.search={hidden: [8, 16]}"], "model.search .* classical"),
        (["data.manifest=m.csv", "train.augment.copies=2"], "copies applies to classical models"),
        (
            ["data.manifest=m.csv", "features.name=ssl", "train.augment.noise_p=0.5"],
            "re-extracts 'ssl' features every epoch, which is expensive",
        ),
        *[
            (["data.manifest=m.csv", "features.name=functionals", "model.name=svm", *extra], text)
            for extra, text in [
                (["train.augment.mask_p=0.5"], "classical models take augmented waveform"),
                (["train.balanced_sampling=true"], "for a classical model use train.class_w"),
                (["model.hparams.depth=3"], "model 'svm': params: unknown parameter 'depth'"),
                (["model.search={C: 1}"], r"model.search.C must be of type tuple"),
                (["model.search={depth: [1]}"], "search: unknown parameter 'depth' for svm"),
                (
                    ["train.class_weights=true", "model.hparams.class_weight=null"],
                    "train.class_weights is true but model.hparams.class_weight is None",
                ),
            ]
        ],
    ],
)
def test_check_config_rejects_what_cannot_run(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(load_config(None, overrides))


def test_every_recipe_loads_and_validates():
    recipes = sorted(RECIPES.glob("*.yaml"))
    names = {path.stem for path in recipes}
    assert {"iemocap_hubert", "iemocap_logmel", "ravdess_hubert", "ravdess_logmel"} <= names
    assert {"emodb_hubert", "emodb_logmel", "emodb_svm", "ravdess_svm"} <= names
    assert {"loco_default", "loco_final"} <= names
    for path in recipes:  # benchmark recipes (a ``benchmark:`` section) have their own loader
        benchmark = "benchmark" in (yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        config = resolve_config((load_benchmark_config if benchmark else load_config)(path))
        check_config(config)
        sources = config.data.corpora or [config.data]
        roots = [source.root for source in sources]
        assert config.name == path.stem and all(Path(root).is_absolute() for root in roots)
    reference = load_config(RECIPES / "iemocap_hubert.yaml")
    assert reference.features.params["model"] == "facebook/hubert-base-ls960"
    assert (reference.folds.strategy, reference.folds.group) == ("logo", "session")
    assert reference.model.hparams == {"hidden": 256, "layers": 2, "dropout": 0.2}
    assert (reference.train.lr, reference.train.batch_size) == (1e-5, 32)
    assert (reference.preprocess.duration, reference.preprocess.crop) == (3.0, "start")


@pytest.mark.corpora
@pytest.mark.parametrize(
    ("recipe", "folder", "classes", "folds", "speakers_per_test"),
    [
        ("emodb_logmel", "emodb", 7, 10, {1}),
        ("ravdess_hubert", "ravdess", 8, 6, {4}),
        ("emodb_svm", "emodb", 7, 10, {1}),
        ("ravdess_svm", "ravdess", 8, 6, {4}),
    ],
)
def test_recipes_split_the_real_corpora(corpora_dir, recipe, folder, classes, folds,
                                        speakers_per_test):  # fmt: skip
    config = load_config(RECIPES / f"{recipe}.yaml", [f"data.root={corpora_dir / folder}"])
    data = prepare_data(resolve_config(config))
    assert len(data.label_map.labels) == classes and not data.dropped
    assert len(data.folds) == folds
    speaker = {u.id: u.speaker for u in data.utterances}
    tested = set()
    for fold in data.folds:
        sides = [{speaker[uid] for uid in ids} for ids in (fold.train, fold.valid, fold.test)]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        assert {len(sides[2])} <= speakers_per_test
        tested |= sides[2]
    assert tested == set(speaker.values())  # every speaker is tested exactly once


def test_relative_paths_resolve_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-hubert").mkdir()
    config = load_config(
        None,
        ["data.corpus=emodb", "data.root=corpora/emodb", "features.name=ssl",
         "features.params.model=tiny-hubert", "output_dir=out"],
    )  # fmt: skip
    resolved = resolve_config(config)
    assert resolved.data.root == str(tmp_path / "corpora" / "emodb")
    assert resolved.output_dir == str(tmp_path / "out")
    assert resolved.features.params["model"] == str((tmp_path / "tiny-hubert").resolve())
    hub = resolve_config(load_config(None, ["features.params.model=facebook/hubert-base-ls960"]))
    assert hub.features.params["model"] == "facebook/hubert-base-ls960"  # hub ids stay as they are


# --- protocols ----------------------------------------------------------------------------


def test_normalize_per_speaker_uses_each_speakers_own_statistics():
    rng = np.random.default_rng(0)
    features = [
        rng.normal(5.0, 2.0, (10, 3)),
        rng.normal(5.0, 2.0, (6, 3)),
        rng.normal(size=(8, 3)),
    ]
    out = normalize_per_speaker(features, ["a", "a", "b"])
    a = np.concatenate(out[:2])
    np.testing.assert_allclose(a.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(a.std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(out[2].mean(axis=0), 0.0, atol=1e-5)
    with pytest.raises(SertkError, match="3 feature arrays but 2 speakers"):
        normalize_per_speaker(features, ["a", "b"])


def test_speaker_protocol_is_named_and_recorded_in_the_bundle(tmp_path):
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=2)
    config = load_config(
        None, toy_overrides(csv_path, tmp_path, "features.normalization=speaker", "train.epochs=2")
    )
    run_dir = run_experiment(config, cache_dir=tmp_path / "cache", progress=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["normalization"] == "speaker" and "speaker-adapted" in summary["protocol"]
    assert "SPEAKER-ADAPTED" in (run_dir / "report.md").read_text().split("\n## ")[0]
    bundle_dir = next((run_dir / "folds").iterdir()) / "bundle"
    assert load_bundle(bundle_dir).contract.normalization == "speaker"
    scorer = load_bundle(bundle_dir).build_scorer()
    assert scorer.normalization == "speaker"
    features = as_items([np.ones((5, 24), np.float32), np.zeros((5, 24), np.float32)])
    with pytest.raises(SertkError, match="pass speakers="):
        scorer.score(features)
    assert scorer.score(features, speakers=["x", "x"]).probabilities.shape == (2, 3)
    # statistics a caller keeps (e.g. of a live session) give the same as the speaker's items
    stats = scorer.statistics(features)
    np.testing.assert_array_equal(scorer.score(features, statistics=stats).probabilities,
                                  scorer.score(features, speakers=["x", "x"]).probabilities)  # fmt: skip


# --- the SSL path, end to end -------------------------------------------------------------


def test_ssl_features_end_to_end_with_a_tiny_random_hubert(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.HubertConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8, 8), conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8),
        num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.HubertModel(config).save_pretrained(tmp_path / "tiny-hubert")
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=2)
    overrides = toy_overrides(
        csv_path, tmp_path, "features.name=ssl", "train.epochs=2",
        f"features.params={{model: {tmp_path / 'tiny-hubert'}, layers: all}}",
    )  # fmt: skip
    run_dir = run_experiment(load_config(None, overrides), cache_dir=tmp_path / "cache",
                             progress=False)  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["folds"] == 3 and 0.0 <= summary["pooled"]["ua"] <= 1.0
    bundle = load_bundle(run_dir / "folds" / "speaker_spk0" / "bundle")
    assert bundle.features["name"] == "ssl" and bundle.features["layers"] == "all"
    assert bundle.features["model"] == str((tmp_path / "tiny-hubert").resolve())
    assert bundle.hparams["num_layers_in"] == 3  # hidden states 0..2 stacked
    assert bundle.normalization["mean"].shape == (3, 16)
    # the bundle alone reproduces the fold's test predictions
    utterances = [u for u in prepare_data(resolve_config(load_config(None, overrides))).utterances
                  if u.speaker == "spk0"]  # fmt: skip
    result = evaluate_bundle(bundle.path, utterances)
    fold = json.loads((run_dir / "folds" / "speaker_spk0" / "metrics.json").read_text())
    assert result["report"]["confusion"] == fold["report"]["confusion"]


# --- cross-corpus evaluation --------------------------------------------------------------


def test_map_labels_explicit_then_bundle_map_then_identity():
    labels = ["neutral", "happy", "angry", "sad"]
    bundle_map = {"neutral": "neutral", "happy": "happy", "excited": "happy", "angry": "angry",
                  "sad": "sad"}  # fmt: skip
    table = map_labels(
        ["calm", "excited", "angry", "surprised", "sad"], labels, bundle_map, {"calm": "neutral"}
    )
    assert table == {"calm": "neutral", "excited": "happy", "angry": "angry", "surprised": None,
                     "sad": "sad"}  # fmt: skip
    assert map_labels(["sad"], labels, bundle_map, {"sad": "neutral"}) == {"sad": "neutral"}
    with pytest.raises(ConfigError, match="calm=relaxed targets labels the model does not have"):
        map_labels(["calm"], labels, bundle_map, {"calm": "relaxed"})


def test_evaluate_refuses_a_set_with_nothing_to_map(tmp_path):
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=2)
    config = load_config(None, toy_overrides(csv_path, tmp_path, "train.epochs=1"))
    run_dir = run_experiment(config, cache_dir=tmp_path / "cache", progress=False)
    bundle = next((run_dir / "folds").iterdir()) / "bundle"
    wav = tmp_path / "toy" / "happy" / "spk0_0.wav"
    odd = [Utterance("x", str(wav), "surprised", "s1")]
    with pytest.raises(CorpusError, match="none of the labels surprised maps"):
        evaluate_bundle(bundle, odd)
    with pytest.raises(CorpusError, match="no utterances to evaluate"):
        evaluate_bundle(bundle, [])


def test_prepare_data_reports_dropped_labels(tmp_path):
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=1)
    config = load_config(None, toy_overrides(csv_path, tmp_path, "data.targets=[neutral, angry]"))
    data = prepare_data(resolve_config(config))
    assert data.dropped == {"happy": 3}
    assert {u.label for u in data.utterances} == {"neutral", "angry"}
    bad = dataclasses.replace(config, data=dataclasses.replace(config.data, targets=("sad",)))
    with pytest.raises(CorpusError, match="no utterance of the generic corpus"):
        prepare_data(resolve_config(bad))


def test_data_corpora_keep_speakers_of_each_corpus_apart(tmp_path, monkeypatch):
    first = write_toy_corpus(tmp_path / "one", speakers=2, per_class=1)
    second = write_toy_corpus(tmp_path / "two", speakers=3, per_class=1, seed=1)
    monkeypatch.chdir(tmp_path)
    corpora = (
        "[{corpus: generic, root: one/labels.csv},"
        " {corpus: generic, root: two/labels.csv, name: other}]"
    )
    config = load_config(
        None,
        [
            *toy_overrides(first, tmp_path, f"data.corpora={corpora}", "folds.strategy=logo"),
            "data.corpus=null",
            "data.root=null",
        ],
    )
    config = resolve_config(config)
    assert config.data.corpora[1].root == str(second)
    data = prepare_data(config)
    speakers = sorted({u.speaker for u in data.utterances})
    assert speakers == [
        *(f"generic:spk{i}" for i in range(2)),
        *(f"other:spk{i}" for i in range(3)),
    ]
    assert len(data.utterances) == 5 * 3 and len({u.id for u in data.utterances}) == 15
    assert {u.fields["corpus"] for u in data.utterances} == {"generic", "other"}
    assert all(u.id.startswith(u.fields["corpus"] + ":") for u in data.utterances)
    assert len(data.folds) == 5  # spk0 of each corpus is its own speaker
    assert "corpora generic at" in data.source


# --- classical models in the runner --------------------------------------------------------

FUNCTIONALS = ["features.name=functionals", "features.params={statistics: [mean, std]}"]


def read_predictions(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_classical_run_with_speaker_protocol_copies_and_fold_ensemble(tmp_path):
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=2)
    overrides = toy_overrides(
        csv_path, tmp_path, *FUNCTIONALS, "model.name=logreg", "model.search={C: [0.1, 1.0]}",
        "features.normalization=speaker", "final_model=ensemble", "train.class_weights=true",
        "train.augment={noise_p: 1.0, copies: 1}",
    )  # fmt: skip
    run_dir = run_experiment(load_config(None, overrides), cache_dir=tmp_path / "cache",
                             progress=False)  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["folds"] == 3 and summary["pooled"]["ua"] > 0.6
    splits = {f["name"]: f for f in json.loads((run_dir / "splits.json").read_text())["folds"]}
    data = prepare_data(resolve_config(load_config(None, overrides)))
    for fold_dir in sorted((run_dir / "folds").iterdir()):
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        training, fold = metrics["training"], splits[fold_dir.name]
        assert training["class_weights"] == "balanced" and training["best_epoch"] is None
        assert training["augmented_rows"] == len(fold["train"])  # copies of train, not valid
        assert training["search"]["best"]["C"] in (0.1, 1.0)
        assert not (fold_dir / "curves.png").exists()
        assert not (fold_dir / "valid_predictions.csv").exists()  # validation joined training
        bundle = load_bundle(fold_dir / "bundle")
        assert bundle.kind == "classical" and bundle.contract.normalization == "speaker"
        rows = read_predictions(fold_dir / "predictions.csv")
        assert [row["id"] for row in rows] == fold["test"]
        assert {f"p_{label}" for label in summary["labels"]} <= set(rows[0])
        # the bundle alone (raw audio, per-speaker statistics of the test speaker) reproduces them
        tested = [u for u in data.utterances if u.id in set(fold["test"])]
        result = evaluate_bundle(bundle.path, tested)
        assert result["report"]["confusion"] == metrics["report"]["confusion"]
    report = (run_dir / "report.md").read_text()
    for needle in ("SPEAKER-ADAPTED", "Classical model `logreg`", "| fold | recall neutral",
                   "inner-CV choice", "soft-voting ensemble", "noise p=1.0"):  # fmt: skip
        assert needle in report, needle
    final = load_bundle(run_dir / "final" / "bundle")
    assert final.kind == "ensemble" and len(final.members) == 3
    assert final.contract.normalization == "speaker"
    result = evaluate_bundle(final.path, data.utterances)
    assert result["evaluated"] == 18 and result["report"]["ua"] > 0.6


def test_classical_final_model_refits_on_all_speakers(tmp_path):
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=2)
    overrides = toy_overrides(csv_path, tmp_path, *FUNCTIONALS, "model.name=linear_svm",
                              "final_model=true")  # fmt: skip
    run_dir = run_experiment(load_config(None, overrides), cache_dir=tmp_path / "cache",
                             progress=False)  # fmt: skip
    final = load_bundle(run_dir / "final" / "bundle")
    assert final.kind == "classical" and final.training["train_utterances"] == 18
    record = json.loads((run_dir / "final" / "training.json").read_text())
    assert record["kind"] == "classical" and "fitted on all speakers" in record["description"]
    assert "| speaker_spk0 |" in (run_dir / "report.md").read_text()


# --- augmentation and imbalance in the runner -----------------------------------------------


def imbalanced_toy(root: Path) -> Path:
    """The toy corpus without two of every speaker's three 'happy' utterances."""
    csv_path = write_toy_corpus(root, speakers=3, per_class=3)
    rows = list(csv.reader(csv_path.open()))
    kept = [rows[0]] + [r for r in rows[1:] if r[1] != "happy" or r[0].endswith("_0.wav")]
    with csv_path.open("w", newline="") as handle:
        csv.writer(handle).writerows(kept)
    return csv_path


def test_augmentation_touches_training_utterances_only(tmp_path, monkeypatch):
    """Record every augmented item: each belongs to the training side of the fit running."""
    import sertk.augment
    import sertk.experiment.runner as runner

    csv_path = imbalanced_toy(tmp_path / "toy")
    overrides = toy_overrides(
        csv_path, tmp_path, "train.epochs=2", "train.class_weights=true",
        "train.augment={mask_p: 1.0, noise_p: 0.5, gain_p: 0.5}",
    )  # fmt: skip
    state = {"allowed": None, "touched": [], "outside": []}
    real_fit, real_waveform, real_features = (
        runner.fit_bundle, sertk.augment.Augmenter.waveform, sertk.augment.Augmenter.features
    )  # fmt: skip

    def fit(ctx, train_ids, valid_ids, out_dir, **kwargs):
        state["allowed"] = {ctx.keys[uid] for uid in train_ids}
        state["valid"] = {ctx.keys[uid] for uid in valid_ids}
        state["fits"] = state.get("fits", 0) + 1
        try:
            return real_fit(ctx, train_ids, valid_ids, out_dir, **kwargs)
        finally:
            state["allowed"] = None

    def record(kind):
        def wrapper(self, *args):
            epoch, index = args[-2], args[-1]
            target = state["touched"] if state["allowed"] is not None else state["outside"]
            target.append((kind, epoch, index, state["allowed"] and index in state["allowed"]))
            real = real_waveform if kind == "waveform" else real_features
            return real(self, *args)

        return wrapper

    monkeypatch.setattr(runner, "fit_bundle", fit)
    monkeypatch.setattr(sertk.augment.Augmenter, "waveform", record("waveform"))
    monkeypatch.setattr(sertk.augment.Augmenter, "features", record("features"))
    run_dir = run_experiment(load_config(None, overrides), cache_dir=tmp_path / "cache",
                             progress=False)  # fmt: skip
    assert state["fits"] == 3 and not state["outside"]  # nothing augmented while testing
    assert state["touched"] and all(inside for *_, inside in state["touched"])
    assert {kind for kind, *_ in state["touched"]} == {"waveform", "features"}
    assert {epoch for _, epoch, *_ in state["touched"]} == {0, 1}
    # class weights: the loss used the fold's own training class counts
    data = prepare_data(resolve_config(load_config(None, overrides)))
    folds = {f.name: f for f in data.folds}
    label_of = {u.id: data.label_map.encode(u.label) for u in data.utterances}
    for name, fold in folds.items():
        training = json.loads((run_dir / "folds" / name / "metrics.json").read_text())["training"]
        expected = class_weights([label_of[uid] for uid in fold.train], 3)
        np.testing.assert_allclose(training["class_weights"], expected, rtol=1e-6)
        assert training["class_weights"][1] > training["class_weights"][0]  # happy is rare
        assert (run_dir / "folds" / name / "valid_predictions.csv").is_file()
    assert "imbalance correction: class-weighted loss" in (run_dir / "report.md").read_text()


def test_waveform_set_draws_per_epoch_and_feature_set_without_augmenter_is_plain():
    from sertk.augment import AugmentConfig, Augmenter
    from sertk.experiment.datasets import FeatureSet, WaveformSet
    from sertk.features import build_extractor

    rng = np.random.default_rng(0)
    signals = [rng.normal(0, 0.1, 8000).astype(np.float32) for _ in range(2)]
    extractor = build_extractor({"name": "logmel", "n_mels": 8})
    stats = {"mean": np.zeros(8, np.float32), "std": np.ones(8, np.float32)}
    augmenter = Augmenter(AugmentConfig(noise_p=1.0, speed_p=1.0), seed=3)
    dataset = WaveformSet(
        signals, [0, 1], stats, augmenter=augmenter, keys=[7, 9], extractor=extractor,
        sampling_rate=16000, num_samples=8000, crop="start", speaker_stats=[None, None],
    )  # fmt: skip
    first = dataset[0][0]
    assert first.shape == extractor(signals[0], 16000).shape  # cropped back to 0.5 s
    np.testing.assert_array_equal(dataset[0][0], first)  # same (seed, epoch, key): same draw
    dataset.set_epoch(1)
    assert not np.allclose(dataset[0][0], first)
    clean = [extractor(x, 16000) for x in signals]
    plain = FeatureSet(clean, [0, 1], stats)
    plain.set_epoch(5)
    np.testing.assert_array_equal(plain[1][0], clean[1])
