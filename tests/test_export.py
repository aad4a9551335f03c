"""ONNX export (sertk.export): parity with torch, dynamic axes, int8, refusal, torch-free ONNX scorer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from conftest import as_items  # noqa: E402

from sertk.augment import View  # noqa: E402
from sertk.bundle import OnnxBundle, load_bundle, save_bundle  # noqa: E402
from sertk.cli import main  # noqa: E402
from sertk.errors import BundleError  # noqa: E402
from sertk.export import export_onnx, quantize_torch  # noqa: E402
from sertk.export.parity import HEAD_TOLERANCE  # noqa: E402
from sertk.features.normalization import apply_statistics  # noqa: E402
from sertk.inference.onnx import OnnxSslEncoder  # noqa: E402
from sertk.models import build_model  # noqa: E402


def torch_scorer(path):
    return load_bundle(path).build_scorer()


def onnx_scorer(path, **options):
    return load_bundle(path, backend="onnx").build_scorer(**options)


def score(scorer, items, **options):
    return scorer.score(as_items(items), **options).probabilities


LABELS = ["neutral", "happy", "angry"]
LABEL_MAP = {"name": None, "labels": LABELS, "mapping": {label: label for label in LABELS}}
HPARAMS = {
    "gru_attention": {"hidden": 8},
    "cnn_lstm": {"channels": [8, 8], "lstm_hidden": 8},
    "mean_pool": {"hidden": 8, "std": True},
}
TINY_HUBERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": (16, 16, 16),
    "conv_kernel": (10, 8, 4),
    "conv_stride": (5, 8, 8),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
LENGTHS = (1, 9, 50, 173, 401)  # export example had 37 frames: every one of these is new


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_head(kind: str, *, input_dim: int = 8, seed: int = 0, **extra) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(kind, input_dim=input_dim, num_classes=3, **HPARAMS[kind], **extra)
    if kind == "cnn_lstm":  # give the batch norms running statistics that are not 0/1
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(3 * torch.randn(4, 30, input_dim) + 1, torch.tensor([30, 20, 10, 5]))
    return model.eval()


def save_head_bundle(folder, kind: str):
    rng = np.random.default_rng(0)
    stats = {"mean": rng.normal(size=8), "std": rng.uniform(0.5, 2.0, size=8)}
    return save_bundle(
        folder,
        model=make_head(kind),
        model_name=kind,
        labels=LABELS,
        label_map=LABEL_MAP,
        features={"name": "logmel", "n_mels": 8},
        preprocess={"sampling_rate": 16000},
        normalization=stats if kind != "mean_pool" else None,
        speaker_adapted=kind == "mean_pool",
    )


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """kind -> (torch bundle, fp32 ONNX bundle), exported once per module."""
    root = tmp_path_factory.mktemp("heads")
    return {
        kind: (
            save_head_bundle(root / kind, kind),
            export_onnx(root / kind, root / f"{kind}-onnx", threads=1),
        )
        for kind in HPARAMS
    }


def features(lengths=LENGTHS, *, seed: int = 1, dim: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, dim)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize("kind", sorted(HPARAMS))
@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_onnx_head_matches_torch_on_new_lengths_and_batches(heads, kind, batch_size):
    source, exported = heads[kind]
    items, speakers = features(), ["a", "b", "a", "b", "a"]  # mean_pool: speaker protocol
    expected = score(torch_scorer(source), items, speakers=speakers)
    onnx_side = onnx_scorer(exported, threads=1, batch_size=batch_size)
    got = score(onnx_side, items, speakers=speakers)
    assert onnx_side.labels == tuple(LABELS)
    assert got.shape == (len(LENGTHS), 3)
    np.testing.assert_allclose(got, expected, atol=HEAD_TOLERANCE, rtol=0)
    parity = json.loads((exported / "bundle.json").read_text())["onnx"]["parity"]["head"]
    assert parity["max_abs_probabilities"] <= HEAD_TOLERANCE


def test_attention_output_matches_torch(heads):
    source, exported = heads["gru_attention"]
    items = features((40, 7))
    attention = onnx_scorer(exported).score(as_items(items), attention=True).attention
    bundle = load_bundle(source)
    model = bundle.build_model()
    for item, weights in zip(items, attention, strict=True):
        x = torch.from_numpy(apply_statistics(item, bundle.normalization))[None]
        with torch.no_grad():
            _, expected = model(x, torch.tensor([len(item)]), return_attention=True)
        assert weights.shape == (len(item),)  # the mean over query frames
        np.testing.assert_allclose(weights, expected[0].numpy().mean(axis=0), atol=1e-5)
    no_attention = onnx_scorer(heads["mean_pool"][1])
    assert not no_attention.has_attention
    assert no_attention.score(as_items(items), speakers=["a", "a"]).attention == [None, None]


def test_onnx_bundle_is_still_a_torch_bundle(heads):
    source, exported = heads["cnn_lstm"]
    document = json.loads((exported / "bundle.json").read_text())
    assert {"head.onnx", "model.safetensors", "normalization.safetensors"} <= {
        p.name for p in exported.iterdir()
    }
    assert document["onnx"]["encoder"] is None and document["onnx"]["quantize"] is None
    assert load_bundle(exported).labels == load_bundle(source).labels


def test_runner_rejects_wrong_features(heads):
    from sertk.errors import FeatureError, SertkError

    onnx_side = onnx_scorer(heads["mean_pool"][1])
    with pytest.raises(SertkError, match="speakers="):
        score(onnx_side, [np.zeros((10, 8), np.float32)])
    with pytest.raises(FeatureError, match="shape"):
        score(onnx_side, [np.zeros((10, 5), np.float32)], speakers=["a"])
    with pytest.raises(FeatureError, match="NaN"):
        score(onnx_side, [np.full((10, 8), np.nan, np.float32)], speakers=["a"])


def test_predict_signals_runs_the_whole_path_like_torch(heads, make_signal):
    source, exported = heads["gru_attention"]
    signals = [make_signal(duration=d, frequency=f) for d, f in ((0.4, 220), (1.3, 440))]
    bundle = load_bundle(exported, backend="onnx")
    assert isinstance(bundle, OnnxBundle)
    assert (bundle.source_kind, bundle.model_name) == ("torch", "gru_attention")
    onnx_side = bundle.build_scorer()
    assert onnx_side.sampling_rate == 16000 and not onnx_side.inputs[0].extractor.layers
    np.testing.assert_allclose(
        onnx_side.predict_signals(signals, 16000),
        torch_scorer(source).predict_signals(signals, 16000),
        atol=HEAD_TOLERANCE,
    )


def test_int8_head_agrees_with_fp32(heads, tmp_path):
    source, _ = heads["gru_attention"]
    exported = export_onnx(source, tmp_path / "int8", quantize="int8", threads=1)
    section = json.loads((exported / "bundle.json").read_text())["onnx"]
    assert section["quantize"] == "int8"
    assert section["parity"]["int8"]["head"]["argmax_agreement"] >= 0.9
    items = features(range(3, 90, 3), seed=7)
    expected = score(torch_scorer(source), items)
    got = score(onnx_scorer(exported), items)
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.9
    assert np.abs(got - expected).max() < 0.05
    # a second RNN export in one process keeps its dynamic time axis (torch dispatch-cache bug)
    again = onnx_scorer(export_onnx(source, tmp_path / "again", threads=1))
    np.testing.assert_allclose(score(again, items), expected, atol=HEAD_TOLERANCE)


def test_quantize_torch_keeps_predictions_and_the_original(heads):
    model = load_bundle(heads["gru_attention"][0]).build_model()
    quantized = quantize_torch(model)
    assert type(model.gru) is torch.nn.GRU  # the original is untouched
    assert "quantized" in type(quantized.gru).__module__
    x, lengths = torch.randn(6, 40, 8), torch.tensor([40, 33, 20, 9, 3, 1])
    with torch.no_grad():
        a, b = model(x, lengths).softmax(-1), quantized(x, lengths).softmax(-1)
    assert (a - b).abs().max() < 0.05


def test_a_graph_that_does_not_match_torch_is_not_written(heads, tmp_path, monkeypatch):
    import sertk.export.export_mode as export_mode

    # a plausible export bug: the backward RNN direction run forwards
    monkeypatch.setattr(export_mode, "reverse_within", lambda values, lengths: values)
    with pytest.raises(BundleError, match="refusing"):
        export_onnx(heads["gru_attention"][0], tmp_path / "bad", threads=1)
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor a staging folder


def test_bad_inputs_raise_bundle_error(heads, tmp_path):
    source = heads["mean_pool"][0]
    with pytest.raises(BundleError, match="does not exist"):
        export_onnx(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(BundleError, match="quantize"):
        export_onnx(source, tmp_path / "out", quantize="int4")
    with pytest.raises(BundleError, match="opset"):
        export_onnx(source, tmp_path / "out", opset=9)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not an ONNX bundle"):
        export_onnx(source, tmp_path / "busy")
    with pytest.raises(BundleError, match="not into it"):
        export_onnx(source, source / "onnx")
    with pytest.raises(BundleError, match="sertk export"):
        load_bundle(source, backend="onnx")


def test_cli_export_prints_sizes_and_parity(heads, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["export", str(heads["mean_pool"][0]), "-o", str(out), "--quantize", "int8"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "head.onnx" in printed and "parity head" in printed and "int8 vs torch" in printed
    assert (out / "head.onnx").is_file()


def test_runner_does_not_import_torch(heads):
    script = (
        "import sys, numpy as np\n"
        "from sertk.bundle import load_bundle\n"
        f"bundle = load_bundle({str(heads['gru_attention'][1])!r}, backend='onnx')\n"
        "signal = np.sin(np.arange(16000) / 10).astype(np.float32)\n"
        "p = bundle.build_scorer(threads=1).predict_signals([signal], 16000)\n"
        "assert p.shape == (1, 3) and abs(p.sum() - 1) < 1e-5\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- SSL bundles: tiny random HuBERTs ----------------------------------------------------------


def save_ssl_bundle(root, *, layer_norm: bool, kind: str):
    transformers = pytest.importorskip("transformers")
    from sertk.features import build_extractor

    extra = {"feat_extract_norm": "layer", "do_stable_layer_norm": True} if layer_norm else {}
    torch.manual_seed(0)
    config = transformers.HubertConfig(**TINY_HUBERT, **extra)
    transformers.AutoModel.from_config(config).save_pretrained(root / "hubert")
    layers = [1, 2] if layer_norm else "last"
    encoder = build_extractor({"name": "ssl", "model": str(root / "hubert"), "layers": layers})
    model = make_head(kind, input_dim=32, **({"num_layers_in": 2} if layer_norm else {}))
    return save_bundle(
        root / "bundle",
        model=model,
        model_name=kind,
        labels=LABELS,
        label_map=LABEL_MAP,
        features=encoder,
        preprocess={"sampling_rate": 16000},
    )


def signals(seconds=(0.005, 0.3, 1.1, 2.5, 1.1), seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.normal(size=int(s * 16000))).astype(np.float32) for s in seconds]


@pytest.mark.slow
def test_ssl_bundle_matches_torch_end_to_end(tmp_path):
    source = save_ssl_bundle(tmp_path, layer_norm=False, kind="gru_attention")
    exported = export_onnx(source, tmp_path / "onnx", threads=1)
    assert {"encoder.onnx", "head.onnx"} <= {p.name for p in exported.iterdir()}
    bundle = load_bundle(source)
    onnx_bundle = load_bundle(exported, backend="onnx")
    torch_encoder, onnx_encoder = bundle.build_extractor(), onnx_bundle.build_extractor(threads=1)
    assert isinstance(onnx_encoder, OnnxSslEncoder)
    assert onnx_encoder.config() == torch_encoder.config()
    assert (onnx_encoder.dim, onnx_encoder.frame_rate) == (torch_encoder.dim, 50.0)
    audio = signals()
    expected = torch_encoder.extract_batch(audio, 16000)
    got = onnx_encoder.extract_batch(audio, 16000)
    for a, b in zip(expected, got, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=1e-4 * max(1.0, float(np.abs(a).max())))
    np.testing.assert_allclose(onnx_encoder(audio[1], 16000), got[1], atol=1e-5)
    probabilities = score(onnx_bundle.build_scorer(), got)
    reference = score(bundle.build_scorer(), expected)
    np.testing.assert_allclose(probabilities, reference, atol=HEAD_TOLERANCE, rtol=0)


@pytest.mark.slow
def test_ssl_int8_with_attention_mask_and_stacked_layers(tmp_path):
    source = save_ssl_bundle(tmp_path, layer_norm=True, kind="mean_pool")
    exported = export_onnx(source, tmp_path / "onnx", quantize="int8", threads=1)
    section = json.loads((exported / "bundle.json").read_text())["onnx"]
    assert section["encoder"]["inputs"] == ["waveform", "attention_mask"]
    assert section["encoder"]["layers"] == 2
    assert section["parity"]["encoder"]["max_rel_hidden"] <= 1e-4  # fp32, checked before int8
    assert section["parity"]["int8"]["encoder"]["min_cosine"] > 0.99
    onnx_bundle = load_bundle(exported, backend="onnx")
    audio = signals((0.4, 0.9, 1.3, 0.7, 2.0, 1.6), seed=4)
    got = score(
        onnx_bundle.build_scorer(), onnx_bundle.build_extractor().extract_batch(audio, 16000)
    )
    bundle = load_bundle(source)
    expected = score(bundle.build_scorer(), bundle.build_extractor().extract_batch(audio, 16000))
    assert got.shape == expected.shape == (len(audio), 3)
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 5 / 6


def test_recognizer_onnx_backend_matches_torch_with_attention(heads, make_signal, tmp_path):
    from sertk.errors import BundleError
    from sertk.recognizer import Recognizer

    source, exported = heads["gru_attention"]
    signal = make_signal(duration=1.2, frequency=330)
    torch_side = Recognizer.load(source).predict_signal(signal, 16000, attention=True)
    onnx_side = Recognizer.load(exported, backend="onnx", threads=1).predict_signal(
        signal, 16000, attention=True
    )
    assert onnx_side.label == torch_side.label
    np.testing.assert_allclose(
        list(onnx_side.probabilities.values()),
        list(torch_side.probabilities.values()),
        atol=HEAD_TOLERANCE,
    )
    np.testing.assert_allclose(onnx_side.attention, torch_side.attention, atol=1e-4)
    with pytest.raises(BundleError, match="sertk export"):
        Recognizer.load(source, backend="onnx")


def test_cli_predict_with_the_onnx_backend(heads, make_wav, capsys):
    from sertk.cli import main

    _, exported = heads["cnn_lstm"]
    path = make_wav("clip.wav", duration=1.0)
    assert (
        main(
            [
                "predict",
                str(path),
                "--model",
                str(exported),
                "--backend",
                "onnx",
                "--format",
                "json",
                "--no-progress",
            ]
        )
        == 0
    )
    assert '"label"' in capsys.readouterr().out


def test_test_time_views_travel_with_the_export(tmp_path, make_signal):
    rng = np.random.default_rng(0)
    source = save_bundle(
        tmp_path / "tta", model=make_head("gru_attention"), model_name="gru_attention",
        labels=LABELS, label_map=LABEL_MAP, features={"name": "logmel", "n_mels": 8},
        preprocess={"sampling_rate": 16000, "duration": 1.0},
        normalization={"mean": rng.normal(size=8), "std": rng.uniform(0.5, 2.0, size=8)},
        views=View.from_lists([0.9, 1.1], [[0.2, 0.6]]),
    )  # fmt: skip
    exported = export_onnx(source, tmp_path / "tta-onnx", threads=1)
    signals = [make_signal(duration=d, frequency=f) for d, f in ((0.7, 220), (1.3, 440))]
    onnx_side, reference = onnx_scorer(exported), torch_scorer(source)
    views = (View(speed=0.9), View(speed=1.1), View(crop=(0.2, 0.6)))
    assert onnx_side.views == reference.views == views
    with_tta = reference.predict_signals(signals, 16000)
    np.testing.assert_allclose(
        onnx_side.predict_signals(signals, 16000), with_tta, atol=HEAD_TOLERANCE
    )
    reference.views = ()
    plain = reference.predict_signals(signals, 16000)
    assert np.abs(with_tta - plain).max() > 1e-4  # the speed versions changed the answer
