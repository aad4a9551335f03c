import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import as_items
from torch import nn

from sertk import __version__
from sertk.audio import Preprocess
from sertk.bundle import (
    FORMAT_VERSION,
    HASH_KEY,
    Bundle,
    content_hash,
    load_bundle,
    pin_bundle,
    rehash_bundle,
    resolve_bundle,
    save_bundle,
)
from sertk.errors import BundleError, ConfigError

CLIP = Path(__file__).resolve().parents[1] / "examples" / "03a02Wc.flac"
LABELS = ["neutral", "happy", "angry"]
LABEL_MAP = {"name": None, "labels": LABELS, "mapping": {label: label for label in LABELS}}
FEATURES = {"name": "logmel", "n_mels": 8}
PREPROCESS = {"sampling_rate": 16000, "duration": 2.0, "crop": "center", "normalize": "peak"}


class Tiny(nn.Module):
    """A small model following the sertk model contract, registered under "tiny"."""

    name = "tiny"

    def __init__(self, input_dim, num_classes, *, hidden=4):
        super().__init__()
        self.hparams = {"input_dim": input_dim, "num_classes": num_classes, "hidden": hidden}
        self.body = nn.Linear(input_dim, hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, features, lengths):
        pooled = features.sum(dim=1) / lengths[:, None]
        return self.classifier(torch.tanh(self.body(pooled)))


MODELS = {"tiny": Tiny}


def save(path, model=None, **options):
    torch.manual_seed(0)
    options = {
        "model": model or Tiny(8, 3),
        "model_name": "tiny",
        "labels": LABELS,
        "label_map": LABEL_MAP,
        "features": FEATURES,
        "preprocess": PREPROCESS,
        **options,
    }
    return save_bundle(path, **options)


def edit_json(path, change, *, keep_hash=False):
    """Edit bundle.json; the stored content hash goes too (a bundle saved before hashes, or by
    another writer), so the check under test answers, not the hash (``keep_hash``: it stays)."""
    document = json.loads((path / "bundle.json").read_text())
    change(document)
    if not keep_hash:
        document.pop("content_hash", None)
    (path / "bundle.json").write_text(json.dumps(document))


def test_round_trip(tmp_path):
    torch.manual_seed(1)
    model = Tiny(8, 3)
    stats = {"mean": np.arange(8, dtype=np.float32), "std": np.full(8, 2.0, np.float32)}
    path = save(tmp_path / "bundle", model, normalization=stats, training={"ua": np.float64(0.5)})
    assert sorted(p.name for p in path.iterdir()) == [
        "bundle.json",
        "model.safetensors",
        "normalization.safetensors",
    ]
    document = json.loads((path / "bundle.json").read_text())
    assert document["format_version"] == FORMAT_VERSION and document["sertk_version"] == __version__
    assert document["kind"] == "torch" and document["created"].endswith("+00:00")
    assert "mean" not in json.dumps(document["files"])  # statistics live in safetensors

    bundle = load_bundle(path, models=MODELS)
    assert isinstance(bundle, Bundle)
    assert bundle.labels == tuple(LABELS) and bundle.label_map == LABEL_MAP
    assert bundle.features == FEATURES and bundle.build_preprocess() == Preprocess(**PREPROCESS)
    assert bundle.contract.normalization == "global" and bundle.contract.views == ()
    assert bundle.hparams == {"input_dim": 8, "num_classes": 3, "hidden": 4}
    assert bundle.training == {"ua": 0.5} and bundle.extra is None
    np.testing.assert_array_equal(bundle.normalization["mean"], stats["mean"])
    rebuilt = bundle.build_model(models=MODELS)
    assert not rebuilt.training
    features, lengths = torch.randn(2, 5, 8), torch.tensor([5, 3])
    torch.testing.assert_close(rebuilt(features, lengths), model.eval()(features, lengths))
    scorer = bundle.build_scorer()  # the global statistics are applied before the model
    assert scorer.global_stats is bundle.normalization
    x = np.ones((4, 8), np.float32)
    expected = torch.softmax(model(torch.from_numpy((x - stats["mean"]) / stats["std"])[None],
                                   torch.tensor([4])), -1)  # fmt: skip
    np.testing.assert_allclose(scorer.score(as_items([x])).probabilities, expected.detach().numpy(),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_real_objects_and_model_registry(tmp_path):
    models = pytest.importorskip("sertk.models")
    corpora = pytest.importorskip("sertk.corpora")
    audio = pytest.importorskip("sertk.audio")
    label_map = corpora.LabelMap.preset("iemocap4")
    model = models.MeanPoolClassifier(8, 4, hidden=6)
    path = save_bundle(
        tmp_path / "b",
        model=model,
        model_name="mean_pool",
        labels=label_map.labels,
        label_map=label_map,
        features=FEATURES,
        preprocess=audio.Preprocess(duration=1.5),
    )
    bundle = load_bundle(path)
    assert bundle.build_label_map() == label_map
    assert bundle.build_preprocess() == audio.Preprocess(duration=1.5)
    assert bundle.normalization is None and bundle.build_scorer().global_stats is None
    rebuilt = bundle.build_model()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(rebuilt.state_dict()[name], tensor)


def test_replacing_a_bundle_and_refusing_foreign_directories(tmp_path):
    path = save(tmp_path / "bundle", training={"run": 1})
    save(path, training={"run": 2})
    assert load_bundle(path, models=MODELS).training == {"run": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # no temporary leftovers
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with pytest.raises(BundleError, match="not a bundle; refusing to replace it"):
        save(foreign)
    assert (foreign / "notes.txt").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError, match="is a file"):
        save(tmp_path / "file")


def test_interrupted_save_keeps_the_previous_bundle(tmp_path, monkeypatch):
    path = save(tmp_path / "bundle", training={"run": 1})
    real_save = safetensors.torch.save_file

    def crash(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as handle:  # leave a torn file behind, then die
            handle.truncate(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save(path, training={"run": 2})
    monkeypatch.undo()
    assert load_bundle(path, models=MODELS).training == {"run": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_failed_rename_restores_the_previous_bundle(tmp_path, monkeypatch):
    import os

    path = save(tmp_path / "bundle", training={"run": 1})
    real_rename, calls = os.rename, []

    def flaky(source, target):
        calls.append(target)
        if len(calls) == 2:  # moving the new bundle into place fails
            raise OSError("disk full")
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", flaky)
    with pytest.raises(OSError, match="disk full"):
        save(path, training={"run": 2})
    monkeypatch.undo()
    assert load_bundle(path, models=MODELS).training == {"run": 1}


def test_missing_bundle_points_at_an_interrupted_swap(tmp_path):
    path = save(tmp_path / "bundle")
    path.rename(tmp_path / ".bundle.0123abcd.old")  # as if killed between the two renames
    with pytest.raises(BundleError, match=r"previous bundle is at .*\.bundle\.0123abcd\.old"):
        load_bundle(path, models=MODELS)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "bundle.json").unlink(), "has no bundle.json"),
        (lambda p: (p / "bundle.json").write_text("{not json"), "is not valid JSON"),
        (lambda p: (p / "bundle.json").write_text("[1, 2]"), "must hold a JSON object"),
        (lambda p: edit_json(p, lambda d: d.pop("labels")), "lacks required keys: labels"),
        (
            lambda p: edit_json(p, lambda d: d.update(format_version=FORMAT_VERSION + 1)),
            f"reads formats up to {FORMAT_VERSION}: upgrade sertk",
        ),
        (
            lambda p: edit_json(p, lambda d: d.update(format_version="1")),
            "format_version must be a positive integer",
        ),
        (lambda p: edit_json(p, lambda d: d.update(kind="sklearn")), "is a 'sklearn' bundle"),
        (
            lambda p: edit_json(p, lambda d: d.update(labels=LABELS[:2])),
            "label_map labels .* differ from labels",
        ),
        (
            lambda p: edit_json(
                p, lambda d: (d.update(labels=LABELS[:2]), d["label_map"].update(labels=LABELS[:2]))
            ),
            "num_classes=3 but 2 labels",
        ),
        (
            lambda p: edit_json(p, lambda d: d["model"].update(name="gru")),
            "model 'gru' is not known",
        ),
        (
            lambda p: edit_json(p, lambda d: d["model"]["hparams"].update(hidden=5)),
            r"shape mismatch \(bundle vs model\): body.weight \(4, 8\) vs \(5, 8\)",
        ),
        (
            lambda p: edit_json(p, lambda d: d["model"]["hparams"].update(depth=2)),
            "cannot rebuild model 'tiny'",
        ),
        (
            lambda p: edit_json(p, lambda d: d["files"]["weights"].update(name="../x.safetensors")),
            "must be a file inside the bundle",
        ),
        (lambda p: (p / "model.safetensors").unlink(), "lacks model.safetensors"),
        (
            lambda p: (p / "model.safetensors").write_bytes(b"garbage"),
            "does not match its checksum",
        ),
    ],
)
def test_damaged_bundles_raise_precise_errors(tmp_path, damage, message):
    path = save(tmp_path / "bundle")
    damage(path)
    with pytest.raises(BundleError, match=message):
        load_bundle(path, models=MODELS)


def test_weights_that_do_not_fit_the_model(tmp_path):
    path = save(tmp_path / "bundle")
    # a consistent file (checksum removed) with a renamed tensor
    weights = safetensors.torch.load_file(path / "model.safetensors")
    weights["head.weight"] = weights.pop("classifier.weight")
    safetensors.torch.save_file(weights, str(path / "model.safetensors"))
    edit_json(path, lambda d: d["files"]["weights"].pop("sha256"))
    with pytest.raises(
        BundleError, match="missing weights: classifier.weight; unexpected weights: head.weight"
    ):
        load_bundle(path, models=MODELS)
    (path / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(BundleError, match="not a readable safetensors file"):
        load_bundle(path, models=MODELS)


def test_missing_path(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "f").write_text("x")
    with pytest.raises(BundleError, match="is a file"):
        load_bundle(tmp_path / "f")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"labels": ["a", "a", "b"]}, "labels must be unique"),
        ({"labels": ["x", "y", "z"]}, "pass the LabelMap the model was trained with"),
        ({"model": Tiny(8, 2)}, "num_classes=2 but 3 labels"),
        ({"model_name": "other"}, "differs from the model's name 'tiny'"),
        ({"model": nn.Linear(2, 3)}, "pass hparams="),
        ({"normalization": {"mean": np.zeros(8)}}, "exactly 'mean' and 'std'"),
        ({"normalization": {"mean": np.zeros(8), "std": np.zeros(8)}}, "std > 0"),
        ({"normalization": {"mean": np.zeros(8), "std": np.ones(4)}}, "must match"),
        ({"training": {"when": object()}}, "must be plain JSON"),
        ({"training": {"ua": float("nan")}}, "must be plain JSON"),
    ],
)
def test_save_rejects_bad_input(tmp_path, options, message):
    with pytest.raises(BundleError, match=message):
        save(tmp_path / "bundle", **options)
    assert not (tmp_path / "bundle").exists()
    assert list(tmp_path.iterdir()) == []


# --- classical bundles --------------------------------------------------------------------


def fit_toy_classical(kind="logreg", classes=3, dim=6, seed=0):
    """A fitted ClassicalModel on rows whose class shifts their mean."""
    from sertk.classical import fit_classifier

    rng = np.random.default_rng(seed)
    y = np.arange(60) % classes
    x = rng.normal(size=(60, dim)) + y[:, None]
    params = {"n_estimators": 5} if kind == "random_forest" else None
    return fit_classifier(x, y, kind=kind, num_classes=classes, params=params), x


def save_classical(path, model, **options):
    from sertk.bundle import save_classical_bundle

    options = {"labels": LABELS, "label_map": LABEL_MAP, "features": FEATURES,
               "preprocess": PREPROCESS, **options}  # fmt: skip
    return save_classical_bundle(path, model=model, **options)


@pytest.mark.parametrize("kind", ["logreg", "svm", "random_forest"])
def test_classical_round_trip(tmp_path, kind):
    model, x = fit_toy_classical(kind)
    path = save_classical(tmp_path / "bundle", model, training={"folds": 1})
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json", "model.safetensors"]
    document = json.loads((path / "bundle.json").read_text())
    assert document["kind"] == "classical" and document["model"]["name"] == kind
    assert document["model"]["meta"]["num_classes"] == 3
    bundle = load_bundle(path)
    assert bundle.kind == "classical" and bundle.labels == tuple(LABELS)
    assert bundle.contract.normalization == "global" and not hasattr(bundle, "state_dict")
    rebuilt = bundle.build_model()
    np.testing.assert_array_equal(rebuilt.predict_proba(x), model.predict_proba(x))
    for name, array in model.to_arrays()[0].items():
        np.testing.assert_array_equal(bundle.arrays[name], array)


def test_classical_bundle_predicts_without_torch(tmp_path):
    """In a fresh interpreter: load + predict a classical bundle; torch and sklearn never load."""
    import subprocess
    import sys

    model, x = fit_toy_classical("svm")
    path = save_classical(tmp_path / "bundle", model)
    np.save(tmp_path / "x.npy", x[:5])
    code = (
        "import sys, json, numpy as np\n"
        "from sertk.bundle import load_bundle\n"
        f"scorer = load_bundle({str(path)!r}).build_scorer()\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "p = scorer.score([{(0, None): row[None, :]} for row in x]).probabilities\n"
        "print(json.dumps({'p': p.tolist(), 'torch': 'torch' in sys.modules,\n"
        "                  'sklearn': 'sklearn' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["torch"] is False and result["sklearn"] is False
    np.testing.assert_allclose(result["p"], model.predict_proba(x[:5]), rtol=1e-6, atol=1e-7)


def test_bundle_and_inference_import_without_torch():
    import subprocess
    import sys

    code = "import sys, sertk.bundle, sertk.inference, sertk.ensemble; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_classical_bundle_rejects_wrong_input(tmp_path):
    from sertk.errors import FeatureError

    model, _ = fit_toy_classical("logreg")
    scorer = load_bundle(save_classical(tmp_path / "bundle", model)).build_scorer()
    with pytest.raises(FeatureError, match=r"one row of utterance-level features .* \(5, 6\)"):
        scorer.score(as_items([np.zeros((5, 6))]))
    with pytest.raises(FeatureError, match="model was fit on 6"):
        scorer.score(as_items([np.zeros((1, 4))]))
    with pytest.raises(BundleError, match="needs a sertk.classical.ClassicalModel"):
        save_classical(tmp_path / "b2", Tiny(8, 3))
    with pytest.raises(BundleError, match="3 classes but 2 labels"):
        save_classical(tmp_path / "b3", model, labels=LABELS[:2],
                       label_map={**LABEL_MAP, "labels": LABELS[:2]})  # fmt: skip


def drop_array(path, name):
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(path / "model.safetensors"))
    del arrays[name]
    save_file(arrays, str(path / "model.safetensors"))
    edit_json(path, lambda d: d["files"]["weights"].pop("sha256"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: edit_json(p, lambda d: d["model"].update(name="svm")),
         "model.name is 'svm' but model.meta.kind is 'logreg'"),
        (lambda p: edit_json(p, lambda d: d["model"].update(name="boosting")),
         "classical model 'boosting' is not one of"),
        (lambda p: edit_json(p, lambda d: d["model"].pop("meta")), "needs 'model.meta'"),
        (lambda p: edit_json(p, lambda d: d["model"]["meta"].update(num_classes=4)),
         "num_classes=4 but 3 labels"),
        (lambda p: drop_array(p, "coef"), r"arrays missing \['coef'\]"),
        (lambda p: (p / "model.safetensors").write_bytes(b"junk"), "does not match its checksum"),
        (lambda p: edit_json(p, lambda d: d["model"]["meta"].update(input_dim=7)),
         r"array 'scaler_mean' has shape \(6,\), expected \(7,\)"),
    ],
)  # fmt: skip
def test_damaged_classical_bundles_raise_precise_errors(tmp_path, damage, message):
    model, _ = fit_toy_classical("logreg")
    path = save_classical(tmp_path / "bundle", model)
    damage(path)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test_format_1_bundles_load_with_their_contract_from_extra(tmp_path):
    """A bundle written before format 2 kept its normalisation protocol and test-time views in
    ``extra``; it loads with the same contract, and those keys leave ``extra``."""
    from sertk.augment import View

    path = save(tmp_path / "bundle", extra={"run": "r1"}, speaker_adapted=True,
                views=View.from_lists([0.9], [[0.0, 0.7]]))  # fmt: skip
    new = load_bundle(path, models=MODELS)

    def to_format_1(document):
        document["format_version"] = 1
        document["extra"].update(feature_normalization=document.pop("normalization"),
                                 tta_speeds=[0.9], tta_crops=[[0.0, 0.7]])  # fmt: skip
        del document["views"]

    edit_json(path, to_format_1)
    old = load_bundle(path, models=MODELS)
    assert old.format_version == 1 and old.contract == new.contract
    assert old.contract.views == (View(speed=0.9), View(crop=(0.0, 0.7)))
    assert old.extra == {"run": "r1"} and old.speaker_adapted
    edit_json(path, lambda d: d["extra"].update(tta_speeds=[3.0]))
    with pytest.raises(BundleError, match="tta_speeds: a view's speed must be a number in"):
        load_bundle(path, models=MODELS)
    edit_json(path, lambda d: d["extra"].update(tta_speeds=[], feature_normalization="odd"))
    with pytest.raises(BundleError, match="unknown normalization 'odd'"):
        load_bundle(path, models=MODELS)


def test_format_2_requires_the_typed_contract(tmp_path):
    path = save(tmp_path / "bundle")
    edit_json(path, lambda d: d.pop("views"))
    with pytest.raises(BundleError, match=r"\(format 2\) lacks required keys: views"):
        load_bundle(path, models=MODELS)
    edit_json(path, lambda d: d.update(views=[{"speed": 0.9, "crop": [0, 1]}]))
    with pytest.raises(BundleError, match="views: a view is"):
        load_bundle(path, models=MODELS)


# --- numbers in range, content hash, pins -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["preprocess"].update(duration=1e12),
            r"preprocess\.duration is 1e\+12 seconds",
        ),
        (lambda d: d["preprocess"].update(duration=700.0), r"duration is 700 seconds, outside \[0"),
        (lambda d: d["preprocess"].update(sampling_rate=1), r"sampling_rate is 1 Hz, outside"),
        (lambda d: d["model"]["hparams"].update(hidden=float("nan")), r"hparams\.hidden is nan"),
        (lambda d: d["model"]["hparams"].update(hidden=float("inf")), r"hparams\.hidden is inf"),
        (
            lambda d: d["model"]["hparams"].update(hidden=10**12),
            r"hparams\.hidden is 1e\+12, larger",
        ),
        (lambda d: d["features"].update(n_mels=10**6), r"features: n_mels must lie in \[1, "),
        (lambda d: d["views"].append({"speed": 5.0}), r"views: a view's speed must be"),
    ],
)
def test_every_number_inference_reads_is_range_checked_at_load(tmp_path, change, message):
    path = save(tmp_path / "bundle")
    edit_json(path, change)
    with pytest.raises(BundleError, match=message):
        load_bundle(path, models=MODELS)


def test_hyperparameters_that_size_arrays_are_checked_against_the_weights(tmp_path, monkeypatch):
    """hidden=2**20 would build a [2**20, 2**20]-sized model: it is built on the meta device
    first, its shapes compared with the weights, and refused without allocating it."""
    path = save(tmp_path / "bundle")
    edit_json(path, lambda d: d["model"]["hparams"].update(input_dim=2**20, hidden=2**20))
    built = []
    monkeypatch.setitem(MODELS, "tiny", lambda **kw: built.append(kw) or Tiny(**kw))
    with pytest.raises(
        BundleError, match=r"shape mismatch .*body\.weight \(4, 8\) vs \(1048576, 1048576\)"
    ):
        load_bundle(path, models=MODELS)
    assert len(built) == 1  # only the meta-device build ran


def test_a_saved_bundle_stores_its_content_hash_and_refuses_edits(tmp_path):
    path = save(tmp_path / "bundle")
    stored = json.loads((path / "bundle.json").read_text())["content_hash"]
    bundle = load_bundle(path, models=MODELS)
    assert bundle.content_hash == stored == content_hash(path)

    def reverse(document):  # consistent: the label map follows, every structural check passes
        document["labels"].reverse()
        document["label_map"]["labels"].reverse()

    edit_json(path, reverse, keep_hash=True)
    with pytest.raises(BundleError, match=r"bundle\.json was changed after the bundle was saved"):
        load_bundle(path, models=MODELS)
    with pytest.raises(BundleError, match=r"--rehash"):
        load_bundle(path, models=MODELS)
    weights = path / "model.safetensors"
    edit_json(path, reverse, keep_hash=True)  # back as saved
    assert load_bundle(path, models=MODELS).content_hash == stored
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.safetensors .*does not match its checksum"):
        load_bundle(path, models=MODELS)


def test_rehash_stores_a_deliberate_edit_and_refuses_a_broken_one(tmp_path):
    path = save(tmp_path / "bundle")
    edit_json(path, lambda d: d["preprocess"].update(duration=2.5), keep_hash=True)
    digest = rehash_bundle(path, models=MODELS)
    bundle = load_bundle(path, models=MODELS)
    assert bundle.content_hash == digest and bundle.preprocess["duration"] == 2.5
    edit_json(path, lambda d: d["preprocess"].update(duration=1e12), keep_hash=True)
    before = (path / "bundle.json").read_bytes()
    with pytest.raises(BundleError, match="preprocess.duration is 1e"):
        rehash_bundle(path, models=MODELS)
    assert (path / "bundle.json").read_bytes() == before  # put back as it was


def test_pinning_a_bundle_by_its_content_hash(tmp_path):
    path = save(tmp_path / "bundle")
    digest = load_bundle(path, models=MODELS).content_hash
    assert load_bundle(path, models=MODELS, sha256=digest.upper()).content_hash == digest
    other = save(tmp_path / "other", model=Tiny(8, 3, hidden=5))
    with pytest.raises(
        BundleError, match=rf"its content hash is [0-9a-f]{{64}}, not the pinned {digest}"
    ):
        load_bundle(other, models=MODELS, sha256=digest)
    with pytest.raises(ConfigError, match="64 hex digits"):
        load_bundle(path, models=MODELS, sha256="123")
    assert pin_bundle(path, digest) == path
    with pytest.raises(BundleError, match="not the pinned"):
        pin_bundle(other, digest)


def test_old_bundles_without_a_stored_hash_load_with_a_computed_one(tmp_path):
    path = save(tmp_path / "bundle")
    edit_json(path, lambda d: None)  # drops the stored hash: as bundles saved before hashes
    assert load_bundle(path, models=MODELS).content_hash == content_hash(path)
    default = load_bundle("default")  # its hash stored when it was written
    stored = json.loads((default.path / "bundle.json").read_text(encoding="utf-8"))[HASH_KEY]
    assert default.content_hash == content_hash(default.path) == stored


def test_info_prints_the_hash_and_rehashes(tmp_path, capsys):
    from sertk.cli import main

    assert main(["info", "default"]) == 0
    out = capsys.readouterr().out
    assert f"content hash   {load_bundle('default').content_hash}" in out
    assert "stored hash    verified" in out and "labels         neutral happy" in out
    path = tmp_path / "copy"
    shutil.copytree(resolve_bundle("default"), path)
    edit_json(path, lambda d: d["extra"].update(note="edited"), keep_hash=True)
    assert main(["predict", str(CLIP), "--model", str(path)]) == 2
    assert "was changed after the bundle was saved" in capsys.readouterr().err
    assert main(["info", str(path), "--rehash"]) == 0
    assert "stored content hash" in capsys.readouterr().out
    assert main(["predict", str(CLIP), "--model", str(path), "--no-progress"]) == 0
