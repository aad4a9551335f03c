"""Feature stacking with block weights, the one-decomposition ridge search, and test-time
augmentation (bundle, scorer, runner, cross-corpus evaluation)."""

import json

import numpy as np
import pytest
import soundfile as sf
from test_experiment import toy_overrides, write_toy_corpus

from sertk.audio import Preprocess
from sertk.augment import View, change_speed, combine_views
from sertk.bundle import load_bundle
from sertk.classical import ClassicalModel, fit_classifier
from sertk.classical._params import column_weights, resolve_params
from sertk.classical.fit import _fit, _search, build_pipeline, grouped_splits, unweighted_accuracy
from sertk.config import load_config
from sertk.errors import BundleError, ConfigError, FeatureError
from sertk.experiment import evaluate_bundle, prepare_data, resolve_config, run_experiment
from sertk.features import build_extractor
from sertk.recognizer import Recognizer

CROPS = "[[0.0, 0.7], [0.3, 0.7]]"
PARTS = [{"name": "functionals"}, {"name": "emotion_functionals", "n_mels": 32, "segments": 2}]


# --- stack ---------------------------------------------------------------------------------


def test_stack_puts_its_parts_side_by_side(make_signal):
    stack = build_extractor({"name": "stack", "parts": PARTS})
    parts = [build_extractor(part) for part in PARTS]
    assert stack.blocks == tuple(p.dim for p in parts) and stack.dim == sum(stack.blocks)
    assert stack.frame_rate == 0
    signal = make_signal(duration=1.0, noise=0.05)
    expected = np.concatenate([p(signal, 16000) for p in parts], axis=1)
    np.testing.assert_array_equal(stack(signal, 16000), expected)
    assert build_extractor(stack.config()).config() == stack.config()


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([{"name": "functionals"}], "at least 2 parts"),
        ({"name": "functionals"}, "parts must be a list of feature configs"),
        ([{"name": "functionals"}, {"name": "logmel"}], r"part\(s\) \['logmel'\] give frames"),
        ([{"name": "functionals"}, {"name": "stack", "parts": []}], "not 'stack'"),
        ([{"name": "functionals"}, {"name": "mfccc"}], "unknown feature extractor 'mfccc'"),
    ],
)
def test_stack_rejects_bad_parts(parts, message):
    with pytest.raises(FeatureError, match=message):
        build_extractor({"name": "stack", "parts": parts})


# --- block weights and the ridge search ------------------------------------------------------


def test_column_weights_mix_the_blocks_size_normalised_kernels():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 50))
    factors = column_weights([30, 20], [1.0, 0.25], 50)
    weighted = z * factors
    kernel = weighted @ weighted.T / 50
    expected = 0.8 * (z[:, :30] @ z[:, :30].T / 30) + 0.2 * (z[:, 30:] @ z[:, 30:].T / 20)
    np.testing.assert_allclose(kernel, expected, rtol=1e-12)
    with pytest.raises(ConfigError, match="add up to 49 columns but the features have 50"):
        column_weights([30, 19], None, 50)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"block_weights": [1, 1]}, r"block_weights'\] needs params\['blocks'\]"),
        ({"blocks": [10, 0]}, "list of positive widths"),
        ({"blocks": [10, 10], "block_weights": [1]}, "must be 2 numbers >= 0"),
        ({"blocks": [10, 10], "block_weights": [0, 0]}, "not all 0"),
    ],
)
def test_bad_blocks_are_refused(params, message):
    with pytest.raises(ConfigError, match=message):
        resolve_params("ridge", params)


@pytest.mark.parametrize(("rows", "dim"), [(300, 40), (90, 300)])  # primal and dual forms
def test_ridge_search_equals_refitting_sklearn_for_every_candidate(rows, dim):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((rows, dim))
    y = rng.integers(0, 4, rows)
    x[:, :3] += 0.7 * y[:, None]
    groups = rng.integers(0, 6, rows)
    params = resolve_params("ridge", {"clip": 3.0, "blocks": [dim - 20, 20]})
    grid = [{"C": c, "block_weights": w} for c in (0.1, 1.0, 10.0) for w in ([1, 0.5], [1, 1])]
    splits, _ = grouped_splits(groups, 4, required=True)
    best, record = _search(x, y, "ridge", params, grid, splits, 0)
    for candidate in record["candidates"]:
        merged = {**params, **candidate["params"]}
        expected = [
            unweighted_accuracy(
                y[v], _fit(build_pipeline("ridge", merged, 0, dim), x[t], y[t], "ridge", merged)
                .predict(x[v]),
            )
            for t, v in splits
        ]  # fmt: skip
        np.testing.assert_allclose(candidate["fold_ua"], expected)
    assert record["grid"]["block_weights"] == [[1, 0.5], [1, 1]]
    assert best == record["best"]


def test_block_weighted_model_round_trips_through_arrays():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((120, 30))
    y = rng.integers(0, 3, 120)
    x[:, 0] += y
    model = fit_classifier(
        x, y, kind="ridge", num_classes=3, groups=rng.integers(0, 4, 120),
        params={"clip": 5.0, "blocks": [10, 20], "block_weights": [1.0, 0.5]},
    )  # fmt: skip
    arrays, meta = model.to_arrays()
    assert meta["format_version"] == 3 and meta["column_weight"] is True
    np.testing.assert_allclose(arrays["column_weight"], column_weights([10, 20], [1.0, 0.5], 30))
    loaded = ClassicalModel.from_arrays(arrays, meta)
    np.testing.assert_allclose(
        loaded.predict_proba(x), model.estimator.predict_proba(x), atol=1e-12
    )
    del arrays["column_weight"]
    with pytest.raises(Exception, match=r"missing \['column_weight'\]"):
        ClassicalModel.from_arrays(arrays, meta)


# --- test-time augmentation ----------------------------------------------------------------


def test_combine_views_is_the_softmax_of_the_mean_scores():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((3, 5, 4))
    probabilities = [np.exp(s) / np.exp(s).sum(axis=1, keepdims=True) for s in scores]
    mean = scores.mean(axis=0)
    expected = np.exp(mean) / np.exp(mean).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(combine_views(probabilities), expected, rtol=1e-5)


def test_change_speed_resamples_and_checks_the_factor(make_signal):
    signal = make_signal(duration=1.0, noise=0.05)
    assert change_speed(signal, 0.9, sampling_rate=16000).shape[0] == pytest.approx(
        16000 / 0.9, abs=2
    )
    assert change_speed(signal, 1.25, sampling_rate=16000).shape[0] == pytest.approx(12800, abs=2)
    with pytest.raises(ConfigError, match=r"speed factor must be a number in \[0.5, 2\]"):
        change_speed(signal, 3.0, sampling_rate=16000)


@pytest.mark.parametrize(
    ("value", "message"),
    [("[1.0]", "differ from 1"), ("[0.3]", r"in \[0.5, 2\]"), ("[0.9, 0.9]", "repeats")],
)
def test_tta_speeds_are_checked(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"features.tta_speeds={value}"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[[0.5, 0.7]]", r"start \+ length <= 1"),
        ("[[0.0, 1.0]]", "0 < length < 1"),
        ("[[-0.1, 0.5]]", "0 <= start"),
        ("[[0.1]]", r"each crop is \[start, length\]"),
        ("[[0.0, 0.5], [0.0, 0.5]]", "repeats a crop"),
        ("[0.5]", "must be of type"),
    ],
)
def test_crops_are_checked(value, message):
    with pytest.raises(ConfigError, match=f"features.tta_crops.*{message}|{message}"):
        load_config(None, [f"features.tta_crops={value}"])
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"train.augment.crops={value}"])


def test_crop_view_takes_its_part_and_keeps_a_fixed_length():
    signal = np.arange(100, dtype=np.float32)
    part = View(crop=(0.15, 0.7))(signal, 16000, Preprocess(duration=None))
    np.testing.assert_array_equal(part, np.arange(15, 85, dtype=np.float32))
    fixed = Preprocess(sampling_rate=16000, duration=0.01, crop="start")  # 160 samples
    assert View(crop=(0.0, 0.5))(np.ones(160, np.float32), 16000, fixed).shape == (160,)
    assert str(View(crop=(0.15, 0.7))) == "crop 0.15+0.7" and str(View(speed=0.9)) == "speed 0.9"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"tta_crops": [[0.5, 0.7]]}, "tta_crops: a view's crop is"),
        ({"tta_crops": [0.5]}, "tta_crops must be a list of"),
        ({"tta_speeds": [3.0]}, "tta_speeds: a view's speed must be a number in"),
        ({"tta_speeds": 0.9}, "tta_speeds must be a list of speed factors"),
    ],
)
def test_bad_views_in_a_format_1_bundle_get_a_clear_error(extra, message, tmp_path):
    from sertk.bundle import InferenceContract

    document = {"format_version": 1, "extra": extra, "features": {}, "preprocess": {}}
    with pytest.raises(BundleError, match=message):
        InferenceContract.from_document(document, tmp_path / "bundle.json")
    with pytest.raises(ConfigError, match="a view's speed"):
        View(speed=0.3)


def test_neural_models_refuse_crop_copies(tmp_path):
    from sertk.experiment.augmentation import check_augment

    config = load_config(None, ["model.name=mean_pool", "train.augment.crops=[[0.0, 0.7]]"])
    with pytest.raises(ConfigError, match="crop copies to classical models"):
        check_augment(config, "torch")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{speed_factors: [0.9, 1.1]}", "set copies: 2 and leave speed_p at 0"),
        ("{speed_factors: [0.9], copies: 1, speed_p: 0.5}", "leave speed_p at 0"),
        ("{speed_factors: [2.5], copies: 1}", r"in \[0.5, 2\] and differ from 1"),
    ],
)
def test_speed_factors_are_checked(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"train.augment={value}"])


def test_runner_scores_with_tta_and_the_bundle_does_the_same(tmp_path):
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=2)
    overrides = toy_overrides(
        csv_path, tmp_path, "features.name=stack", f"features.params={{parts: {json.dumps(PARTS)}}}",
        "features.tta_speeds=[0.9, 1.1]", f"features.tta_crops={CROPS}", "model.name=ridge",
        "model.hparams={clip: 10.0}",
        "model.search={C: [0.3, 3.0], block_weights: [[1.0, 0.5], [1.0, 1.0]]}",
        "preprocess.duration=null",
        f"train.augment={{speed_factors: [0.9, 1.1], copies: 2, crops: {CROPS}, allow_expensive: true}}",
    )  # fmt: skip
    config = load_config(None, overrides)
    run_dir = run_experiment(config, cache_dir=tmp_path / "cache", progress=False)
    report = (run_dir / "report.md").read_text()
    assert "also scored as speed 0.9, speed 1.1, its 0.7 from 0, its 0.7 from 0.3" in report
    assert (
        "speed copies at 0.9, 1.1" in report and "crop copies (0.7 from 0, 0.7 from 0.3" in report
    )
    assert "scored on their original recordings" in report
    data = prepare_data(resolve_config(config))
    splits = {f["name"]: f for f in json.loads((run_dir / "splits.json").read_text())["folds"]}
    for fold_dir in sorted((run_dir / "folds").iterdir()):
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        bundle = load_bundle(fold_dir / "bundle")
        assert bundle.contract.views == View.from_lists([0.9, 1.1], [[0.0, 0.7], [0.3, 0.7]])
        assert metrics["training"]["search"]["best"]["block_weights"] in ([1.0, 0.5], [1.0, 1.0])
        assert metrics["training"]["augmented_rows"] == 4 * len(splits[fold_dir.name]["train"])
        tested = [u for u in data.utterances if u.id in set(splits[fold_dir.name]["test"])]
        # from raw audio through the bundle alone: the same predictions as the runner's
        result = evaluate_bundle(bundle.path, tested)
        assert result["report"]["confusion"] == metrics["report"]["confusion"]
    # predict_signals = the geometric mean of the five versions' probabilities
    bundle = load_bundle(sorted((run_dir / "folds").iterdir())[0] / "bundle")
    scorer = bundle.build_scorer()
    signals = [sf.read(data.utterances[i].path, dtype="float32")[0] for i in (0, 5)]
    preprocess, extractor = scorer.inputs[0]
    views = []
    expected = (View(speed=0.9), View(speed=1.1), View(crop=(0.0, 0.7)), View(crop=(0.3, 0.7)))
    assert scorer.views == expected
    assert scorer.requests == ((0, None), *((0, view) for view in expected))
    alone = load_bundle(bundle.path).build_scorer()
    alone.views = ()  # the same model without its views
    for view in (None, *expected):
        items = [preprocess(s, 16000) for s in signals]
        if view is not None:
            items = [view(s, 16000, preprocess) for s in items]
        features = [{(0, None): extractor(s, 16000)} for s in items]
        views.append(alone.score(features).probabilities)
    np.testing.assert_allclose(
        scorer.predict_signals(signals, 16000), combine_views(views), atol=1e-6
    )
    assert not np.allclose(views[0], combine_views(views))  # the other versions do count
    assert not np.allclose(combine_views(views[:3]), combine_views(views))  # crops too
    # the Recognizer (CLI, server, GUI, live) applies them too
    recognizer = Recognizer.load(bundle.path)
    assert recognizer.scorer.views == expected
    predictions = recognizer.predict_batch(signals, sampling_rate=16000)
    got = np.array([list(p.probabilities.values()) for p in predictions])
    np.testing.assert_allclose(got, combine_views(views), atol=1e-6)


def test_inner_cv_scores_only_the_rows_it_is_told_to():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((160, 20))
    y = rng.integers(0, 3, 160)
    x[:, 0] += y
    groups = np.repeat(np.arange(4), 40)
    scored = np.arange(160) % 2 == 0  # e.g. originals; the odd rows are "copies"
    model = fit_classifier(
        x, y, kind="ridge", num_classes=3, groups=groups, search={"C": [0.1, 10.0]}, scored=scored
    )
    assert model.search["scored_rows"] == 80
    splits, _ = grouped_splits(groups, 5, required=True)
    params = resolve_params("ridge", None)
    for candidate in model.search["candidates"]:
        merged = {**params, **candidate["params"]}
        expected = []
        for train, valid in splits:
            fitted = _fit(
                build_pipeline("ridge", merged, 0, 20), x[train], y[train], "ridge", merged
            )
            kept = valid[scored[valid]]
            expected.append(unweighted_accuracy(y[kept], fitted.predict(x[kept])))
        np.testing.assert_allclose(candidate["fold_ua"], expected)
    with pytest.raises(ConfigError, match="boolean mask over the rows"):
        fit_classifier(x, y, kind="ridge", num_classes=3, groups=groups, search={"C": [1.0]},
                       scored=np.zeros(160, bool))  # fmt: skip
