"""Classical baselines: sklearn fitting, pure-numpy inference, inner speaker CV, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sertk.classical import KINDS, ClassicalModel, fit_classifier
from sertk.errors import BundleError, ConfigError, FeatureError, FoldError

FAST = {"random_forest": {"n_estimators": 25}}  # small forests keep the suite quick


def blobs(*, classes=3, per_class=40, dim=6, speakers=6, seed=0, spread=1.0):
    """Gaussian blobs far apart (separable), on a non-zero mean and scale, with speaker ids."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 4, (classes, dim))
    x = np.concatenate([c + rng.normal(0, spread, (per_class, dim)) for c in centers])
    y = np.repeat(np.arange(classes), per_class)
    speaker = np.array([f"spk{i % speakers}" for i in range(y.size)])
    return x * 3.0 + 50.0, y, speaker


def sklearn_side(model):
    """The fitted sklearn object whose decision values the numpy model repeats."""
    estimator = model.estimator
    if hasattr(estimator, "calibrated_classifiers_"):
        return estimator.calibrated_classifiers_[0].estimator
    return estimator


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_learns_and_numpy_reproduces_sklearn(kind, classes):
    x, y, speaker = blobs(classes=classes)
    x_test, y_test, _ = blobs(classes=classes, seed=1, spread=1.5)
    model = fit_classifier(
        x, y, kind=kind, num_classes=classes, groups=speaker, params=FAST.get(kind)
    )
    restored = ClassicalModel.from_arrays(*model.to_arrays())
    assert restored.estimator is None
    assert np.mean(restored.predict(x_test) == y_test) > 0.9

    expected_proba = model.estimator.predict_proba(x_test)
    proba = restored.predict_proba(x_test)
    assert proba.shape == (len(x_test), classes)
    np.testing.assert_allclose(proba, expected_proba, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(restored.predict(x_test), model.estimator.predict(x_test))
    np.testing.assert_array_equal(restored.predict(x_test), np.argmax(proba, axis=1))
    if kind != "random_forest":
        np.testing.assert_allclose(
            restored.decision_function(x_test),
            sklearn_side(model).decision_function(x_test),
            rtol=1e-12,
            atol=1e-12,
        )


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("logreg", {"projection": "pca", "n_components": 3}),
        ("svm", {"projection": "lda", "class_weight": "balanced"}),
        ("random_forest", {"projection": "pca", "n_components": 0.9, "n_estimators": 10}),
        ("linear_svm", {"projection": "lda", "n_components": 1}),
        ("ridge", {"projection": "pca", "n_components": 4, "class_weight": "balanced"}),
        ("logreg", {"clip": 0.5}),
        ("svm", {"clip": 1.0, "projection": "lda"}),
    ],
)
def test_projections_and_class_weights_round_trip(kind, params):
    x, y, speaker = blobs(classes=3, dim=8)
    x_test, _, _ = blobs(classes=3, dim=8, seed=2, spread=2.0)
    model = fit_classifier(x, y, kind=kind, num_classes=3, groups=speaker, params=params)
    restored = ClassicalModel.from_arrays(*model.to_arrays())
    assert restored.meta["projection"] == params.get("projection", "none")
    assert restored.meta["clip"] == params.get("clip")
    np.testing.assert_allclose(
        restored.predict_proba(x_test), model.estimator.predict_proba(x_test), atol=1e-12
    )
    np.testing.assert_array_equal(restored.predict(x_test), model.estimator.predict(x_test))


def test_arrays_are_plain_and_meta_is_json(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    x, y, speaker = blobs()
    x_test, _, _ = blobs(seed=3)
    for kind in KINDS:
        model = fit_classifier(
            x, y, kind=kind, num_classes=3, groups=speaker, params=FAST.get(kind)
        )
        arrays, meta = model.to_arrays()
        assert all(a.dtype in (np.float64, np.int64) for a in arrays.values())
        # the way a bundle stores them: safetensors for arrays, JSON text for meta
        path = tmp_path / f"{kind}.safetensors"
        safetensors_numpy.save_file(arrays, str(path))
        text = json.dumps(meta, allow_nan=False)
        loaded = ClassicalModel.from_arrays(
            safetensors_numpy.load_file(str(path)), json.loads(text)
        )
        np.testing.assert_array_equal(loaded.predict_proba(x_test), model.predict_proba(x_test))


@pytest.mark.parametrize("kind", ["svm", "ridge"])
def test_inference_needs_neither_sklearn_nor_torch(tmp_path, kind):
    x, y, speaker = blobs()
    model = fit_classifier(x, y, kind=kind, num_classes=3, groups=speaker, params={"clip": 2.0})
    arrays, meta = model.to_arrays()
    np.savez(tmp_path / "arrays.npz", **arrays)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    np.save(tmp_path / "x.npy", x[:5])
    expected = model.predict_proba(x[:5])
    script = f"""
import json, sys
import numpy as np
sys.modules["sklearn"] = None  # any import of scikit-learn now fails
from sertk.classical import ClassicalModel
arrays = dict(np.load({str(tmp_path / "arrays.npz")!r}))
meta = json.loads(open({str(tmp_path / "meta.json")!r}).read())
proba = ClassicalModel.from_arrays(arrays, meta).predict_proba(np.load({str(tmp_path / "x.npy")!r}))
assert "torch" not in sys.modules
np.save({str(tmp_path / "out.npy")!r}, proba)
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_standardisation_is_fitted_on_training_rows_only():
    x, y, speaker = blobs()
    model = fit_classifier(x, y, kind="logreg", num_classes=3, groups=speaker)
    mean, scale = model.arrays["scaler_mean"].copy(), model.arrays["scaler_scale"].copy()
    np.testing.assert_allclose(mean, x.mean(axis=0))
    np.testing.assert_allclose(scale, x.std(axis=0))
    shifted = x + 100.0  # test data with a very different mean
    model.predict(shifted)
    np.testing.assert_array_equal(model.arrays["scaler_mean"], mean)
    np.testing.assert_allclose(model.transform(shifted), (shifted - mean) / scale)


def imbalanced(seed=1):
    """90 % class 0; class 1 is separable but only a strong enough C finds it."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, (180, 5)), rng.normal(0, 1, (20, 5)) + 3])
    y = np.r_[np.zeros(180, int), np.ones(20, int)]
    return x, y, rng.integers(0, 6, 200)


@pytest.mark.parametrize("kind", ["logreg", "svm"])
def test_inner_cv_picks_a_sensible_c(kind):
    x, y, speaker = imbalanced()
    grid = [1e-6, 1e-4, 1.0]
    model = fit_classifier(x, y, kind=kind, num_classes=2, groups=speaker, search={"C": grid})
    assert model.params["C"] == 1.0
    search = model.search
    assert search["scoring"] == "ua" and search["best"] == {"C": 1.0}
    scores = {c["params"]["C"]: c["mean_ua"] for c in search["candidates"]}
    assert set(scores) == set(grid)
    assert scores[1.0] > 0.95 > 0.8 > scores[1e-6]  # tiny C predicts the majority class
    assert all(len(c["fold_ua"]) == len(search["splits"]) for c in search["candidates"])
    assert search["best_ua"] == scores[1.0]


@pytest.mark.parametrize(("speakers", "splits"), [(4, 4), (9, 5)])
def test_inner_splits_keep_speakers_apart(speakers, splits):
    x, y, speaker = blobs(per_class=36, speakers=speakers)
    model = fit_classifier(
        x, y, kind="linear_svm", num_classes=3, groups=speaker, search={"C": [0.1, 1.0]}
    )
    record = model.search["splits"]
    assert len(record) == splits  # leave-one-speaker-out up to inner_folds speakers
    everyone = set(np.unique(speaker).tolist())
    validated = []
    for split in record:
        train, valid = set(split["train_groups"]), set(split["valid_groups"])
        assert not train & valid
        assert train | valid == everyone
        validated += split["valid_groups"]
    assert sorted(validated) == sorted(everyone)  # each speaker validated exactly once
    assert model.meta["calibration"]["cv"] == "speakers"
    assert model.meta["calibration"]["splits"] == record


def test_svm_calibration_without_speakers_uses_stratified_folds():
    x, y, _ = blobs()
    model = fit_classifier(x, y, kind="linear_svm", num_classes=3)
    assert model.meta["calibration"] == {"method": "sigmoid", "cv": "stratified", "folds": 5}
    assert model.search is None


def test_same_seed_same_model():
    x, y, speaker = blobs()
    first = fit_classifier(x, y, kind="random_forest", num_classes=3, params=FAST["random_forest"])
    second = fit_classifier(x, y, kind="random_forest", num_classes=3, params=FAST["random_forest"])
    other = fit_classifier(
        x, y, kind="random_forest", num_classes=3, params=FAST["random_forest"], seed=1
    )
    for name, array in first.arrays.items():
        np.testing.assert_array_equal(array, second.arrays[name])
    assert not np.array_equal(first.arrays["threshold"], other.arrays["threshold"])


# --- bad input -----------------------------------------------------------------------------


def fit(x=None, y=None, **options):
    bx, by, speaker = blobs()
    options = {"kind": "logreg", "num_classes": 3, "groups": speaker, **options}
    return fit_classifier(bx if x is None else x, by if y is None else y, **options)


def poke(x, value):
    """A copy of ``x`` with ``value`` at row 1, column 1."""
    x = x.copy()
    x[1, 1] = value
    return x


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x, y: fit(x=poke(x, np.nan)), FeatureError, "NaN or inf"),
        (lambda x, y: fit(x=poke(x, -np.inf)), FeatureError, "row 1, column 1"),
        (lambda x, y: fit(x=x[:, 0]), FeatureError, r"\[n, dim\]"),
        (lambda x, y: fit(x=x[:-1]), FeatureError, "one label per feature row"),
        (lambda x, y: fit(y=np.where(y == 1, 0, y)), ConfigError, r"class\(es\) \[1\] have no"),
        (lambda x, y: fit(y=y + 1), ConfigError, "outside"),
        (lambda x, y: fit(y=y.astype(str)), ConfigError, "integer class indices"),
        (lambda x, y: fit(num_classes=1), ConfigError, "num_classes"),
        (lambda x, y: fit(kind="knn"), ConfigError, "unknown classical kind"),
        (lambda x, y: fit(params={"gamma": 1.0}), ConfigError, "unknown parameter 'gamma'"),
        (lambda x, y: fit(params={"C": -1.0}), ConfigError, "cannot fit logreg"),
        (lambda x, y: fit(params={"projection": "ica"}), ConfigError, "projection"),
        (lambda x, y: fit(params={"n_components": 3}), ConfigError, "needs projection"),
        (lambda x, y: fit(params={"class_weight": {"0": 2}}), ConfigError, "must be a number"),
        (lambda x, y: fit(search={"C": []}), ConfigError, "is empty"),
        (lambda x, y: fit(search={"C": 1.0}), ConfigError, "list of values"),
        (lambda x, y: fit(groups=None, search={"C": [1.0]}), FoldError, "no groups were given"),
        (lambda x, y: fit(groups=["a"] * len(y), search={"C": [1.0]}), FoldError, "only speaker"),
        (lambda x, y: fit(groups=["a"] * 3), FeatureError, "one speaker id per row"),
    ],
)  # fmt: skip
def test_bad_training_input_raises_precise_errors(call, error, match):
    x, y, _ = blobs()
    with pytest.raises(error, match=match):
        call(x, y)


def test_calibration_refuses_speakers_that_hold_a_whole_class():
    x, y, _ = blobs()
    speaker = np.where(y == 2, "only_two", np.where(np.arange(y.size) % 2, "a", "b"))
    with pytest.raises(FoldError, match="removes every sample of class"):
        fit_classifier(x, y, kind="svm", num_classes=3, groups=speaker)


def test_calibration_groups_differ_from_the_search_groups():
    """Search grouped by corpus (a class lives in one corpus), calibration by speaker."""
    x, y, _ = blobs()
    corpus = np.where(y == 2, "c1", np.where(np.arange(y.size) % 2, "c2", "c3"))
    speaker = np.array([f"s{i % 6}" for i in range(y.size)])
    model = fit_classifier(
        x, y, kind="ridge", num_classes=3, groups=corpus, search={"C": [0.1, 1.0]},
        calibration_groups=speaker,
    )  # fmt: skip
    assert [s["valid_groups"] for s in model.search["splits"]] == [["c1"], ["c2"], ["c3"]]
    assert model.meta["calibration"]["cv"] == "speakers"
    assert {g for s in model.meta["calibration"]["splits"] for g in s["valid_groups"]} == {
        f"s{i}" for i in range(6)
    }


def test_bad_inference_input_raises_feature_error():
    x, y, speaker = blobs()
    model = fit(x, y)
    with pytest.raises(FeatureError, match="model was fit on 6"):
        model.predict(x[:, :5])
    with pytest.raises(FeatureError, match="NaN or inf"):
        model.predict_proba(np.full((1, 6), np.nan))
    forest = fit_classifier(x, y, kind="random_forest", num_classes=3, params={"n_estimators": 3})
    with pytest.raises(ConfigError, match="no decision function"):
        forest.decision_function(x)


def test_damaged_arrays_or_meta_raise_bundle_error():
    x, y, _ = blobs()
    forest = fit_classifier(x, y, kind="random_forest", num_classes=3, params={"n_estimators": 3})
    arrays, meta = forest.to_arrays()

    def broken(change_arrays=None, change_meta=None):
        a, m = forest.to_arrays()
        (change_arrays or (lambda _: None))(a)
        (change_meta or (lambda _: None))(m)
        return a, m

    cases = [
        (broken(lambda a: a.pop("threshold")), "missing \\['threshold'\\]"),
        (broken(lambda a: a.update(extra=np.zeros(1))), "unexpected \\['extra'\\]"),
        (broken(lambda a: a.update(value=a["value"][:, :2])), "'value' has shape"),
        (broken(lambda a: a["children_left"].__setitem__(0, 0)), "point outside their tree"),
        (broken(lambda a: a.update(threshold=a["threshold"].astype(np.int64))), "finite floats"),
        (broken(change_meta=lambda m: m.update(kind="knn")), "kind 'knn'"),
        (broken(change_meta=lambda m: m.update(input_dim=7)), "'scaler_mean' has shape"),
        (broken(change_meta=lambda m: m.update(format_version=99)), "upgrade sertk"),
        ((arrays, {**meta, "params": {"C": float("nan")}}), "plain JSON"),
    ]
    for (bad_arrays, bad_meta), match in cases:
        with pytest.raises(BundleError, match=match):
            ClassicalModel.from_arrays(bad_arrays, bad_meta)


# --- ridge and clip ------------------------------------------------------------------------


def test_ridge_is_the_kernel_ridge_of_the_study():
    """alpha = dim / C on standardised, clipped features == kernel ridge with K = Z Z^T / dim,
    regulariser I / C and one-vs-rest +-1 targets, no intercept."""
    x, y, speaker = blobs(classes=4, dim=12, spread=3.0)
    x_test, _, _ = blobs(classes=4, dim=12, seed=5, spread=3.0)
    x[3, 2] = 1e4  # an outlier the clip bounds
    c, clip = 0.3, 2.0
    model = fit_classifier(
        x, y, kind="ridge", num_classes=4, groups=speaker, params={"C": c, "clip": clip}
    )
    mean, std = x.mean(axis=0), x.std(axis=0)
    z, z_test = (np.clip((v - mean) / std, -clip, clip) for v in (x, x_test))
    kernel = z @ z.T / z.shape[1]
    targets = np.eye(4)[y] * 2 - 1
    dual = np.linalg.solve(kernel + np.eye(len(z)) / c, targets)
    expected = z_test @ z.T / z.shape[1] @ dual
    restored = ClassicalModel.from_arrays(*model.to_arrays())
    np.testing.assert_allclose(restored.decision_function(x_test), expected, atol=1e-9)
    np.testing.assert_array_equal(restored.predict(x_test), expected.argmax(axis=1))
    np.testing.assert_array_equal(restored.arrays["intercept"], np.zeros(4))
    assert restored.meta["format_version"] == 2 and restored.meta["clip"] == clip


@pytest.mark.parametrize("classes", [2, 4])
def test_ridge_temperature_keeps_the_argmax_and_lowers_the_log_loss(classes):
    x, y, speaker = blobs(classes=classes, spread=4.0)
    x_test, _, _ = blobs(classes=classes, seed=7, spread=4.0)
    model = fit_classifier(x, y, kind="ridge", num_classes=classes, groups=speaker)
    calibration = model.meta["calibration"]
    assert calibration["method"] == "temperature" and calibration["cv"] == "speakers"
    assert calibration["log_loss"] <= calibration["log_loss_t1"]
    temperature = model.arrays["calibration_temperature"][0]
    assert temperature == pytest.approx(calibration["temperature"]) and temperature > 0
    proba = model.predict_proba(x_test)
    assert proba.shape == (len(x_test), classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.predict(x_test))
    decision = model.decision_function(x_test)
    if classes == 2:  # one score d: p1 = expit(2 d / T)
        np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-2 * decision / temperature)))
    else:
        np.testing.assert_array_equal(proba.argmax(axis=1), decision.argmax(axis=1))


def test_ridge_inner_cv_records_every_c_and_old_kinds_stay_format_1():
    x, y, speaker = blobs(classes=3, spread=3.0)
    model = fit_classifier(
        x, y, kind="ridge", num_classes=3, groups=speaker, search={"C": [0.1, 1.0, 10.0]}
    )
    assert [c["params"]["C"] for c in model.search["candidates"]] == [0.1, 1.0, 10.0]
    assert model.params["C"] == model.search["best"]["C"]
    plain = fit_classifier(x, y, kind="logreg", num_classes=3, groups=speaker)
    assert plain.meta["format_version"] == 1 and plain.meta["clip"] is None


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"clip": -1.0}, "clip"),
        ({"clip": "10"}, "clip"),
        ({"C": 0.0}, "cannot fit ridge"),
        ({"alpha": 1.0}, "unknown parameter 'alpha'"),
    ],
)
def test_bad_ridge_params_raise_config_error(params, match):
    x, y, speaker = blobs()
    with pytest.raises(ConfigError, match=match):
        fit_classifier(x, y, kind="ridge", num_classes=3, groups=speaker, params=params)


def test_damaged_ridge_arrays_or_clip_raise_bundle_error():
    x, y, speaker = blobs()
    model = fit_classifier(x, y, kind="ridge", num_classes=3, groups=speaker, params={"clip": 3})
    arrays, meta = model.to_arrays()
    with pytest.raises(BundleError, match="calibration_temperature must be positive"):
        ClassicalModel.from_arrays({**arrays, "calibration_temperature": np.zeros(1)}, meta)
    with pytest.raises(BundleError, match="'calibration_temperature' has shape"):
        ClassicalModel.from_arrays({**arrays, "calibration_temperature": np.ones(2)}, meta)
    with pytest.raises(BundleError, match="meta clip"):
        ClassicalModel.from_arrays(arrays, {**meta, "clip": -1})


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("plain", [True, False])  # one decomposition for every C / a refit per C
def test_ridge_temperature_reuses_the_search_scores_without_refitting(classes, plain, monkeypatch):
    from sertk.classical import _ridge
    from sertk.classical._params import resolve_params
    from sertk.classical.fit import _fit, build_pipeline, grouped_splits

    x, y, speaker = blobs(classes=classes, spread=5.0, per_class=30)
    scored = np.arange(y.size) % 4 != 0  # every fourth row is an unscored "copy"
    params = {"clip": 4.0} if plain else {"clip": 4.0, "class_weight": "balanced"}
    fits = []
    original_fit = _ridge.ScaledRidgeClassifier.fit
    monkeypatch.setattr(
        _ridge.ScaledRidgeClassifier,
        "fit",
        lambda self, *a, **k: fits.append(1) or original_fit(self, *a, **k),
    )
    model = fit_classifier(
        x, y, kind="ridge", num_classes=classes, groups=speaker, params=params,
        search={"C": [0.03, 0.3, 3.0]}, scored=scored,
    )  # fmt: skip
    splits, _ = grouped_splits(speaker, 5, required=True)
    assert len(fits) == (1 if plain else 1 + 3 * len(splits))  # the final fit (+ the search's)
    # the temperature the refits of the chosen C gave (every held-out row, copies included)
    merged = {**resolve_params("ridge", params), **model.search["best"]}
    out_of_fold = np.zeros((y.size, *(() if classes == 2 else (classes,))))
    for train, valid in splits:
        fitted = _fit(
            build_pipeline("ridge", merged, 0, x.shape[1]), x[train], y[train], "ridge", merged
        )
        out_of_fold[valid] = fitted.decision_function(x[valid])
    expected = _ridge.fit_temperature(out_of_fold, y)
    calibration = model.meta["calibration"]
    assert calibration["temperature"] == pytest.approx(expected["temperature"], rel=1e-7)
    assert calibration["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-9)
    assert calibration["log_loss_t1"] == pytest.approx(expected["log_loss_t1"], rel=1e-9)
