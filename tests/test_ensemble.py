"""Ensemble bundles (build, load, predict, refuse), weight fitting, ``sertk ensemble``."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import voice

from sertk.bundle import (
    load_bundle,
    rehash_bundle,
    save_bundle,
    save_classical_bundle,
    save_ensemble_bundle,
)
from sertk.classical import fit_classifier
from sertk.cli import main
from sertk.corpora import LabelMap
from sertk.ensemble import build_ensemble, fit_weights
from sertk.errors import BundleError, ConfigError, SertkError
from sertk.features import build_extractor
from sertk.inference import EnsembleScorer


def scorer_of(path):
    return load_bundle(path).build_scorer()


def rows(x, key=(0, None)):
    """Scorer features of utterance-level rows ``[n, dim]``."""
    return [{key: row[None, :]} for row in x]


LABELS = ("neutral", "happy", "angry")
PITCH = {"neutral": 200.0, "happy": 300.0, "angry": 450.0}
PREPROCESS = {"sampling_rate": 16000, "duration": 0.5}
FEATURES_A = {"name": "functionals", "statistics": ["mean", "std"]}
FEATURES_B = {"name": "functionals", "lld": {"n_mfcc": 8, "deltas": False}, "statistics": ["mean"]}


def signals(n_per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(8000) / 16000
    out, labels = [], []
    for index, f0 in enumerate(PITCH.values()):
        for _ in range(n_per_class):
            pitch = f0 * (1 + 0.03 * rng.standard_normal())  # a voice: tones are no speech
            tone = voice(len(t) / 16000, pitch, noise=0.0, seed=len(out))
            out.append((tone + 0.02 * rng.standard_normal(t.size)).astype(np.float32))
            labels.append(index)
    return out, np.array(labels)


def features(config, items):
    extractor = build_extractor(config)
    return np.concatenate([extractor(x, 16000) for x in items])


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Three member bundles of three kinds/inputs: logreg on A, random forest on B, torch on A."""
    root = tmp_path_factory.mktemp("members")
    items, y = signals()
    label_map = LabelMap.from_labels(LABELS)
    common = {"labels": LABELS, "label_map": label_map, "preprocess": PREPROCESS}
    xa, xb = features(FEATURES_A, items), features(FEATURES_B, items)
    a = save_classical_bundle(root / "a", model=fit_classifier(xa, y, kind="logreg",
                              num_classes=3), features=FEATURES_A, **common)  # fmt: skip
    forest = fit_classifier(xb, y, kind="random_forest", num_classes=3,
                            params={"n_estimators": 10})  # fmt: skip
    b = save_classical_bundle(root / "b", model=forest, features=FEATURES_B, **common)
    from sertk.models import MeanPoolClassifier

    torch.manual_seed(0)
    stats = {"mean": xa.mean(axis=0), "std": xa.std(axis=0) + 1e-3}
    c = save_bundle(root / "c", model=MeanPoolClassifier(xa.shape[1], 3, hidden=8),
                    model_name="mean_pool", features=FEATURES_A, normalization=stats,
                    **common)  # fmt: skip
    return {"paths": [a, b, c], "signals": items, "y": y, "root": root}


def test_soft_ensemble_is_the_mean_of_its_members(members, tmp_path):
    out = build_ensemble(members["paths"], tmp_path / "mix")
    assert sorted(p.name for p in (out / "members").iterdir()) == ["0", "1", "2"]
    copy = tmp_path / "moved"  # self-contained: the member sources are not needed
    shutil.copytree(out, copy)
    bundle = load_bundle(copy)
    scorer = bundle.build_scorer()
    assert bundle.kind == "ensemble" and isinstance(scorer, EnsembleScorer)
    assert scorer.labels == LABELS and len(scorer.inputs) == 2 and scorer.sampling_rate == 16000
    assert [m.bundle.kind for m in bundle.members] == ["classical", "classical", "torch"]
    assert scorer.requests == ((0, None), (1, None))
    items = members["signals"]
    combined = scorer.predict_signals(items, 16000)
    each = [scorer_of(p).predict_signals(items, 16000) for p in members["paths"]]
    np.testing.assert_allclose(combined, np.mean(each, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(combined.sum(axis=1), 1.0, rtol=1e-5)
    assert (combined.argmax(axis=1) == members["y"]).mean() > 0.6
    with pytest.raises(SertkError, match=r"item 0 lacks features input 1"):
        scorer.score([{(0, None): np.zeros((1, 4))}])
    with pytest.raises(BundleError, match="no single feature extractor"):
        bundle.build_extractor()
    assert not hasattr(bundle, "build_model")  # an ensemble runs through its scorer


def test_weighted_ensemble_and_shared_input(members, tmp_path):
    a, _, c = members["paths"]
    out = build_ensemble([a, c], tmp_path / "w", rule="weighted", weights=[1, 3])
    scorer = scorer_of(out)
    assert len(scorer.inputs) == 1  # both read FEATURES_A: features are extracted once
    np.testing.assert_allclose(scorer.weights, [0.25, 0.75])
    x = rows(features(FEATURES_A, members["signals"]))
    expected = 0.25 * scorer_of(a).score(x).probabilities
    expected += 0.75 * scorer_of(c).score(x).probabilities
    np.testing.assert_allclose(scorer.score(x).probabilities, expected, rtol=1e-5, atol=1e-6)
    assert load_bundle(out).build_extractor().config() == build_extractor(FEATURES_A).config()


def relabel(path, target, labels, mapping=None):
    """A copy of the bundle at ``path`` whose labels are ``labels`` (same model), its edited
    ``bundle.json`` re-hashed as a deliberate edit must be (``sertk info BUNDLE --rehash``)."""
    shutil.copytree(path, target)
    mapping = mapping or {label: label for label in labels}

    def change(document):
        document.update(labels=list(labels))
        document["label_map"].update(labels=list(labels), mapping=mapping)

    document = json.loads((target / "bundle.json").read_text())
    change(document)
    (target / "bundle.json").write_text(json.dumps(document))
    rehash_bundle(target)
    return target


def test_labels_must_match_or_be_mapped(members, tmp_path):
    a, b, _ = members["paths"]
    other = relabel(b, tmp_path / "calm", ("calm", "happy", "angry"))
    with pytest.raises(BundleError, match="members must share the label list"):
        build_ensemble([a, other], tmp_path / "x")
    assert not (tmp_path / "x").exists()
    mapped = build_ensemble([a, other], tmp_path / "mapped", mapping=[None, {"calm": "neutral"}])
    assert load_bundle(mapped).members[1].label_mapping == {
        "calm": "neutral", "happy": "happy", "angry": "angry"}  # fmt: skip
    with pytest.raises(BundleError, match="maps to 'relaxed', which is not an ensemble label"):
        build_ensemble([a, other], tmp_path / "y", mapping={"calm": "relaxed"})
    # the same classes in another order are matched by name
    shuffled = relabel(b, tmp_path / "shuffled", ("angry", "neutral", "happy"))
    scorer = scorer_of(build_ensemble([a, shuffled], tmp_path / "z"))
    xa = features(FEATURES_A, members["signals"])
    xb = features(FEATURES_B, members["signals"])
    both = [{**ra, **rb} for ra, rb in zip(rows(xa), rows(xb, (1, None)), strict=True)]
    raw = scorer_of(shuffled).score(rows(xb)).probabilities
    np.testing.assert_allclose(scorer.member_scores(both)[1], raw[:, [1, 2, 0]], rtol=1e-6)
    # merging two member classes into one ensemble class adds their probabilities
    merged = build_ensemble([a, b], tmp_path / "merged", labels=("neutral", "emotional"),
                            mapping={"happy": "emotional", "angry": "emotional"})  # fmt: skip
    p = scorer_of(merged).predict_signals(members["signals"][:2], 16000)
    assert p.shape == (2, 2) and load_bundle(merged).label_map["labels"] == ["neutral", "emotional"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rule": "vote"}, "rule must be one of soft, weighted"),
        ({"rule": "weighted"}, "rule 'weighted' needs one weight per member"),
        ({"rule": "weighted", "weights": [1.0]}, "must be 2 finite numbers >= 0"),
        ({"rule": "weighted", "weights": [0, 0]}, "must not all be 0"),
        ({"rule": "weighted", "weights": [1, float("nan")]}, "must be 2 finite numbers"),
        ({"weights": [1, 2]}, "unequal weights need rule 'weighted'"),
    ],
)
def test_bad_rules_and_weights(members, tmp_path, options, message):
    with pytest.raises(BundleError, match=message):
        save_ensemble_bundle(tmp_path / "e", members["paths"][:2], **options)


def test_damaged_ensembles_raise_precise_errors(members, tmp_path):
    a, b, _ = members["paths"]
    with pytest.raises(BundleError, match="at least two member bundles"):
        save_ensemble_bundle(tmp_path / "one", [a])
    out = save_ensemble_bundle(tmp_path / "e", [a, b])
    with pytest.raises(BundleError, match="is itself an ensemble"):
        save_ensemble_bundle(tmp_path / "nested", [out, a])
    member_json = out / "members" / "1" / "bundle.json"
    member_json.write_text(member_json.read_text().replace('"sertk_version"', ' "sertk_version"'))
    with pytest.raises(BundleError, match="does not match its checksum"):
        load_bundle(out)
    out = save_ensemble_bundle(tmp_path / "e2", [a, b])
    document = json.loads((out / "bundle.json").read_text())
    document["members"][0]["path"] = "../e"
    (out / "bundle.json").write_text(json.dumps(document))
    with pytest.raises(BundleError, match="must be a folder inside the bundle"):
        load_bundle(out)
    shutil.rmtree(out)
    out = save_ensemble_bundle(tmp_path / "e3", [a, b])
    shutil.rmtree(out / "members" / "0")
    with pytest.raises(BundleError, match="lacks member members/0"):
        load_bundle(out)


def test_fit_weights_prefers_the_informative_member():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    good = np.full((300, 3), 0.1)
    good[np.arange(300), truth] = 0.8
    noise = rng.dirichlet(np.ones(3), 300)
    weights = fit_weights([noise, good], truth)
    assert weights.shape == (2,) and weights.sum() == pytest.approx(1.0)
    assert weights[1] > 0.9
    with pytest.raises(ConfigError, match="same n=300"):
        fit_weights([good, good[:10]], truth)


def test_weights_fitted_on_held_out_utterances(members, tmp_path):
    import soundfile as sf

    from sertk.corpora import Utterance

    items, y = signals(n_per_class=2, seed=5)
    utterances = []
    for k, (signal, label) in enumerate(zip(items, y, strict=True)):
        sf.write(tmp_path / f"{k}.wav", signal, 16000)
        utterances.append(Utterance(f"u{k}", str(tmp_path / f"{k}.wav"), LABELS[label], "s1"))
    out = build_ensemble(members["paths"], tmp_path / "fit", rule="weighted", fit_on=utterances)
    bundle = load_bundle(out)
    fitted = bundle.training["weights_fitted_on"]
    assert fitted["utterances"] == 6 and len(fitted["weights"]) == 3
    np.testing.assert_allclose([m.weight for m in bundle.members], fitted["weights"], rtol=1e-9)
    assert bundle.hparams["rule"] == "weighted"


def test_cli_builds_an_ensemble(members, tmp_path, capsys):
    a, b, _ = members["paths"]
    out = tmp_path / "cli"
    assert main(["ensemble", str(a), str(b), "-o", str(out), "--weights", "1,3"]) == 0
    text = capsys.readouterr().out
    assert "ensemble of 2 bundles (weighted; weights 0.250, 0.750)" in text
    assert f"bundle: {out}" in text
    assert main(["ensemble", str(a), str(b), "-o", str(out), "--weights", "1,x"]) == 2
    assert "--weights expects numbers" in capsys.readouterr().err
    assert main(["ensemble", str(a), "-o", str(tmp_path / "one")]) == 2
    assert "at least two member bundles" in capsys.readouterr().err


# --- cross-validated ensembles of runs ------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two classical runs and two quick neural runs on one toy corpus, same folds."""
    from test_experiment import write_toy_corpus

    from sertk.config import load_config
    from sertk.experiment import run_experiment

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    csv_path = write_toy_corpus(root / "toy", speakers=3, per_class=2)
    base = ["data.corpus=generic", f"data.root={csv_path}", "folds.valid_speakers=1",
            "preprocess.duration=0.5", f"output_dir={root / 'out'}"]  # fmt: skip
    functionals = ["features.name=functionals", "features.params={statistics: [mean, std]}"]
    neural = ["features.name=logmel", "features.params={n_mels: 16}", "model.name=mean_pool",
              "train={lr: 0.05, batch_size: 8, epochs: 2, patience: null}"]  # fmt: skip
    settings = {
        "logreg": [*functionals, "model.name=logreg"],
        "svm": [*functionals, "model.name=linear_svm"],
        "net1": neural,
        "net2": [*neural, "train.seed=1"],
    }
    done = {
        name: run_experiment(
            load_config(None, [*base, f"name={name}", *extra]),
            cache_dir=root / "cache",
            progress=False,
        )  # fmt: skip
        for name, extra in settings.items()
    }
    yield {**done, "root": root, "base": base, "functionals": functionals}
    torch.set_num_threads(threads)


def probabilities_of(path):
    import csv

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {r["id"]: np.array([float(r[f"p_{x}"]) for x in LABELS]) for r in rows}


def test_cv_ensemble_soft_votes_the_fold_predictions(runs, tmp_path):
    from sertk.ensemble import evaluate_ensemble_cv
    from sertk.metrics import classification_report

    out = tmp_path / "report"
    result = evaluate_ensemble_cv([runs["logreg"], runs["net1"]], out_dir=out)
    assert result["folds"] == 3 and result["labels"] == list(LABELS)
    assert [m["model"] for m in result["members"]] == ["logreg", "mean_pool"]
    assert all(w == [0.5, 0.5] for w in result["weights"].values())
    for fold, report in result["fold_reports"].items():
        a = probabilities_of(runs["logreg"] / "folds" / fold / "predictions.csv")
        b = probabilities_of(runs["net1"] / "folds" / fold / "predictions.csv")
        truth = [LABELS.index(u.split("/")[0]) for u in a]
        combined = np.stack([(a[uid] + b[uid]) / 2 for uid in a])
        assert report == classification_report(truth, combined.argmax(axis=1), list(LABELS))
        own = json.loads((runs["logreg"] / "folds" / fold / "metrics.json").read_text())
        assert result["members"][0]["mean"]  # each member re-scored on the same files
        assert own["report"]["n"] == report["n"]
    logreg_summary = json.loads((runs["logreg"] / "summary.json").read_text())
    assert result["members"][0]["mean"]["ua"] == pytest.approx(logreg_summary["mean"]["ua"])
    report_md = (out / "report.md").read_text()
    assert "| fold | recall neutral" in report_md and "| logreg-" in report_md
    assert json.loads((out / "summary.json").read_text())["rule"] == "soft"


def test_cv_ensemble_weights_given_or_fitted_on_validation_speakers(runs):
    from sertk.ensemble import evaluate_ensemble_cv

    given = evaluate_ensemble_cv([runs["logreg"], runs["svm"]], rule="weighted", weights=[3, 1])
    assert all(w == [0.75, 0.25] for w in given["weights"].values())
    fitted = evaluate_ensemble_cv([runs["net1"], runs["net2"]], rule="weighted")
    for weights in fitted["weights"].values():
        assert len(weights) == 2 and sum(weights) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="has no validation predictions"):
        evaluate_ensemble_cv([runs["logreg"], runs["net1"]], rule="weighted")


def test_cv_ensemble_refuses_runs_that_do_not_match(runs):
    from test_experiment import write_toy_corpus

    from sertk.config import load_config
    from sertk.ensemble import evaluate_ensemble_cv
    from sertk.experiment import run_experiment

    with pytest.raises(ConfigError, match="at least two runs"):
        evaluate_ensemble_cv([runs["logreg"]])
    root = runs["root"]
    other_csv = write_toy_corpus(root / "other", speakers=4, per_class=1)
    common = [f"output_dir={root / 'out'}", *runs["functionals"], "model.name=logreg"]
    other = run_experiment(load_config(None, [*runs["base"], *common, "name=other",
                                              f"data.root={other_csv}"]),
                           cache_dir=root / "cache", progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="have different folds"):
        evaluate_ensemble_cv([runs["logreg"], other])
    adapted = run_experiment(load_config(None, [*runs["base"], *common, "name=adapted",
                                                "features.normalization=speaker"]),
                             cache_dir=root / "cache", progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="never mix speaker-adapted and speaker-independent"):
        evaluate_ensemble_cv([runs["logreg"], adapted])


def test_cli_cv_ensemble(runs, tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["ensemble", "--cv", str(runs["logreg"]), str(runs["svm"]), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "member logreg (logreg): UA" in text and "ensemble (soft, 3 folds): UA" in text
    assert (out / "report.md").is_file() and (out / "confusion_pooled.png").is_file()
    code = main(["ensemble", "--cv", str(runs["logreg"]), str(runs["svm"]), "-o", str(out),
                 "--map", "calm=neutral"])  # fmt: skip
    assert code == 2 and "--map, --labels and --fit-weights do not apply" in capsys.readouterr().err


def test_a_bundle_kind_can_choose_its_own_combination(members):
    """What a kind holding a global and a speaker-adapted model needs: a rule per item."""
    a, _, c = members["paths"]
    first, second = scorer_of(a), scorer_of(c)
    eye = np.eye(len(LABELS))
    seen = {}

    def second_for_speaker_x(probabilities, *, speakers, statistics):
        seen["statistics"] = statistics
        chosen = [1 if s == "x" else 0 for s in speakers]
        return np.stack([probabilities[k][row] for row, k in enumerate(chosen)])

    scorer = EnsembleScorer(labels=LABELS, members=[first, second], matrices=[eye, eye],
                            weights=[0.5, 0.5], combine=second_for_speaker_x)  # fmt: skip
    items = members["signals"][:4]
    got = scorer.predict_signals(items, 16000, speakers=["x", "y", "x", "y"])
    np.testing.assert_allclose(got[[0, 2]], second.predict_signals(items, 16000)[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(got[[1, 3]], first.predict_signals(items, 16000)[[1, 3]], rtol=1e-6)
    assert seen["statistics"] is None
