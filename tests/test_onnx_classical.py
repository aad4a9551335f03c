"""ONNX for classical and ensemble bundles: linear graphs equal numpy, other kinds are refused
with a reason, ensembles export member by member, and the default model runs on onnxruntime
with numpy's probabilities (example clips and 100 corpus clips)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from conftest import as_items  # noqa: E402

from sertk.bundle import load_bundle, save_classical_bundle, save_ensemble_bundle  # noqa: E402
from sertk.classical import fit_classifier  # noqa: E402
from sertk.cli import main  # noqa: E402
from sertk.corpora import LabelMap  # noqa: E402
from sertk.errors import BundleError  # noqa: E402
from sertk.export import export_onnx  # noqa: E402
from sertk.features import build_extractor  # noqa: E402
from sertk.recognizer import Recognizer  # noqa: E402

PARITY = 1e-5  # what the issue asks of the ONNX backend against numpy
FEATURES = {"name": "functionals", "statistics": ["mean", "std"]}


def classical_bundle(path, kind, *, classes=3, params=None, dim=None, seed=0):
    """A classical model fitted on random rows whose class shifts the mean."""
    dim = dim or build_extractor(FEATURES).dim  # rows as wide as the bundle's features
    rng = np.random.default_rng(seed)
    y = np.arange(90) % classes
    x = rng.normal(size=(90, dim)) + 0.7 * y[:, None] + rng.normal(size=dim) * 5
    model = fit_classifier(x, y, kind=kind, num_classes=classes, params=params)
    labels = ["neutral", "happy", "angry", "sad"][:classes]
    return save_classical_bundle(
        path, model=model, labels=labels, label_map=LabelMap.from_labels(labels),
        features=FEATURES, preprocess={"duration": None},
    ), x  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "classes", "params"),
    [
        ("ridge", 3, {"clip": 3.0}),
        ("ridge", 2, None),
        ("logreg", 3, {"projection": "pca", "n_components": 5}),
        ("logreg", 2, None),
        ("linear_svm", 3, {"projection": "lda"}),
        ("linear_svm", 2, None),
        ("ridge", 4, {"blocks": [50, 50], "block_weights": [1.0, 0.5]}),
    ],
)
def test_linear_graphs_equal_numpy(tmp_path, kind, classes, params):
    source, x = classical_bundle(tmp_path / "b", kind, classes=classes, params=params)
    exported = export_onnx(source, tmp_path / "onnx", threads=1)
    section = json.loads((exported / "bundle.json").read_text())["onnx"]
    assert section["head"]["name"] == "head.onnx" and section["precision"] == "float64"
    assert section["parity"]["head"]["max_abs_probabilities"] <= 1e-6
    rows = as_items(x[:40, None, :].astype(np.float32))
    expected = load_bundle(source).build_scorer().score(rows).probabilities
    got = load_bundle(exported, backend="onnx").build_scorer(threads=1).score(rows).probabilities
    assert got.shape == (40, classes)
    np.testing.assert_allclose(got, expected, atol=PARITY, rtol=0)
    assert load_bundle(exported).kind == "classical"  # still runs with numpy too


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("svm", None, r"a classical 'svm' model does not export to ONNX.*numpy backend"),
        ("random_forest", {"n_estimators": 3}, "'random_forest' model does not export"),
    ],
)
def test_other_classical_kinds_are_refused_with_the_reason(tmp_path, kind, params, message):
    source, _ = classical_bundle(tmp_path / "b", kind, params=params)
    with pytest.raises(BundleError, match=message):
        export_onnx(source, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_int8_on_a_linear_bundle_says_why_it_is_skipped(tmp_path, capsys):
    source, _ = classical_bundle(tmp_path / "b", "ridge")
    assert main(["export", str(source), "-o", str(tmp_path / "q"), "--quantize", "int8"]) == 0
    printed = capsys.readouterr().out
    assert "int8 skipped: a linear head of" in printed and "float64" in printed
    section = json.loads((tmp_path / "q" / "bundle.json").read_text())["onnx"]
    assert section["quantize"] is None and "feature extraction" in section["quantize_skipped"]


def test_ensembles_export_member_by_member(tmp_path, make_signal):
    a, _ = classical_bundle(tmp_path / "a", "ridge", seed=1)
    b, _ = classical_bundle(tmp_path / "b", "logreg", seed=2)
    ensemble = save_ensemble_bundle(tmp_path / "mix", [a, b], rule="weighted", weights=[1, 3])
    with pytest.raises(BundleError, match="sertk export .* --format onnx"):
        load_bundle(ensemble, backend="onnx")
    exported = export_onnx(ensemble, tmp_path / "mix-onnx", threads=1)
    assert (exported / "members" / "0" / "head.onnx").is_file()
    assert (exported / "members" / "1" / "head.onnx").is_file()
    section = json.loads((exported / "bundle.json").read_text())["onnx"]
    assert [m["path"] for m in section["members"]] == ["members/0", "members/1"]
    signals = [make_signal(duration=0.6, frequency=f, noise=0.01) for f in (180, 300, 420)]
    expected = load_bundle(ensemble).build_scorer().predict_signals(signals, 16000)
    onnx_bundle = load_bundle(exported, backend="onnx")
    assert [m.bundle.kind for m in onnx_bundle.members] == ["onnx", "onnx"]
    got = onnx_bundle.build_scorer(threads=1).predict_signals(signals, 16000)
    np.testing.assert_allclose(got, expected, atol=PARITY, rtol=0)
    np.testing.assert_allclose(  # the exported folder still loads as a plain ensemble
        load_bundle(exported).build_scorer().predict_signals(signals, 16000), expected, rtol=1e-6
    )


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "d.onnx"
    assert main(["export", "default", "--format", "onnx", "-o", str(out)]) == 0
    return out


def test_default_model_exports_and_predicts_the_examples_like_numpy(default_onnx, capsys):
    code = main(["predict", "examples/", "--format", "json", "--no-progress"])
    numpy_side = json.loads(capsys.readouterr().out)
    code |= main(["predict", "examples/", "--model", str(default_onnx), "--backend", "onnx",
                  "--format", "json", "--no-progress"])  # fmt: skip
    onnx_side = json.loads(capsys.readouterr().out)
    assert code == 0 and len(onnx_side) == len(numpy_side) == 7
    for a, b in zip(onnx_side, numpy_side, strict=True):
        assert a["file"] == b["file"] and a["label"] == b["label"]
        difference = max(
            abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"]
        )
        assert difference <= PARITY


@pytest.mark.corpora
def test_default_model_on_100_corpus_clips_like_numpy(default_onnx, corpora_dir):
    files = sorted((corpora_dir / "emodb" / "wav").glob("*.flac"))[::10][:50]
    files += sorted((corpora_dir / "ravdess").rglob("*.flac"))[::28][:50]
    if len(files) < 100:
        pytest.skip(f"only {len(files)} EmoDB/RAVDESS clips under {corpora_dir}")
    numpy_side = Recognizer.load("default").predict_batch(files)
    onnx_side = Recognizer.load(default_onnx, backend="onnx", threads=1).predict_batch(files)
    a = np.array([list(p.probabilities.values()) for p in numpy_side])
    b = np.array([list(p.probabilities.values()) for p in onnx_side])
    assert a.shape == (100, 7)
    assert np.abs(a - b).max() <= PARITY
    assert [p.label for p in numpy_side] == [p.label for p in onnx_side]


def test_the_onnx_backend_needs_neither_torch_nor_sklearn(default_onnx):
    from test_no_torch import hiding

    code = hiding("torch", "sklearn") + (
        "from sertk.recognizer import Recognizer\n"
        f"r = Recognizer.load({str(default_onnx)!r}, backend='onnx', threads=1)\n"
        "print(r.predict_file('examples/03a02Wc.flac').label)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "angry"
