"""Feature extractors: registry, LogMel/Mfcc against librosa, SslEncoder on tiny random models."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest

from sertk.errors import FeatureError
from sertk.features import FEATURES, build_extractor, feature_class
from sertk.features.spectral import LogMel, Mfcc

RATE = 16000


def chirp(samples: int, *, seed: int = 0) -> np.ndarray:
    """A rising chirp plus a little noise: float32 ``[samples]``."""
    t = np.arange(samples) / RATE
    noise = np.random.default_rng(seed).normal(0.0, 0.05, samples)
    return (0.5 * np.sin(2 * np.pi * 220 * t * (1 + t)) + noise).astype(np.float32)


# --- registry ----------------------------------------------------------------------------------


def test_import_stays_light():
    code = "import sys, sertk.features; print(sorted({'torch', 'transformers', 'scipy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_registered_extractor_resolves():
    for name in FEATURES:
        assert feature_class(name).name == name


@pytest.mark.parametrize("name", ["logmel", "mfcc", "lld", "functionals"])
def test_config_round_trip(name):
    extractor = build_extractor(name)
    config = extractor.config()
    assert config["name"] == name
    json.dumps(config)
    rebuilt = build_extractor(json.loads(json.dumps(config)))
    assert rebuilt.config() == config
    signal = chirp(8000)
    np.testing.assert_array_equal(rebuilt(signal, RATE), extractor(signal, RATE))


def test_overrides_replace_options():
    extractor = build_extractor({"name": "mfcc", "n_mfcc": 20}, n_mfcc=13, deltas=2)
    assert extractor.dim == 39 and extractor.config()["n_mfcc"] == 13


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ("nope", "unknown feature extractor 'nope'"),
        ({"n_mels": 3}, "has no 'name'"),
        ({"name": "logmel", "n_mel": 3}, r"unknown option\(s\) \['n_mel'\]"),
        ({"name": "logmel", "n_mels": 0}, "n_mels must lie in"),
        ({"name": "logmel", "n_mels": "64"}, "n_mels must be int"),
        ({"name": "logmel", "f_max": 9000}, "f_max must lie in"),
        ({"name": "logmel", "norm": "l2"}, "norm must be 'slaney' or null"),
        ({"name": "mfcc", "deltas": 3}, "deltas must lie in"),
        ({"name": "mfcc", "delta_width": 8}, "delta_width must be odd"),
        ({"name": "mfcc", "n_mfcc": 80}, "n_mfcc must lie in"),
        (42, "a name or a dict"),
    ],
)
def test_bad_configs_raise_feature_error(config, match):
    with pytest.raises(FeatureError, match=match):
        build_extractor(config)


# --- spectral ----------------------------------------------------------------------------------

MEL_CASES = [
    {},
    {"n_fft": 512, "win_length": 400, "n_mels": 80, "f_min": 50.0, "f_max": 7600.0},
    {"htk": True, "norm": None, "n_mels": 40},
    {"power": 1.0, "hop_length": 256},
]


def _librosa_mel(signal, options):
    librosa = pytest.importorskip("librosa")
    with warnings.catch_warnings():  # librosa warns when n_fft exceeds a short signal
        warnings.simplefilter("ignore")
        return librosa.feature.melspectrogram(
            y=signal,
            sr=RATE,
            n_fft=options.get("n_fft", 400),
            hop_length=options.get("hop_length", 160),
            win_length=options.get("win_length"),
            n_mels=options.get("n_mels", 64),
            fmin=options.get("f_min", 0.0),
            fmax=options.get("f_max"),
            htk=options.get("htk", False),
            norm=options.get("norm", "slaney"),
            power=options.get("power", 2.0),
        )


@pytest.mark.parametrize("options", MEL_CASES)
@pytest.mark.parametrize("samples", [48000, 48001, 399, 1])
def test_logmel_matches_librosa(options, samples):
    signal = chirp(samples)
    ours = LogMel(**options)(signal, RATE)
    reference = np.log(_librosa_mel(signal, options) + 1e-6).T
    assert ours.dtype == np.float32 and ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)


@pytest.mark.parametrize("deltas", [0, 1, 2])
def test_mfcc_matches_librosa(deltas):
    librosa = pytest.importorskip("librosa")
    signal = chirp(24000, seed=deltas)
    ours = Mfcc(n_mfcc=40, deltas=deltas)(signal, RATE)
    mfcc = librosa.feature.mfcc(
        y=signal, sr=RATE, n_mfcc=40, n_fft=400, hop_length=160, n_mels=64, dct_type=2, norm="ortho"
    )
    rows = [mfcc] + [librosa.feature.delta(mfcc, order=k) for k in range(1, deltas + 1)]
    reference = np.concatenate(rows).T
    assert ours.shape == reference.shape == (151, 40 * (1 + deltas))
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)


def test_spectral_shapes_and_short_signals():
    logmel, mfcc = LogMel(), Mfcc(n_mfcc=13, deltas=2)
    assert (logmel.dim, logmel.frame_rate, logmel.sampling_rate) == (64, 100.0, 16000)
    assert logmel(chirp(16000), RATE).shape == (101, 64)
    for samples in (1, 150, 399):  # shorter than n_fft: zero padded, still frames
        assert logmel(chirp(samples), RATE).shape == (1 + samples // 160, 64)
        out = mfcc(chirp(samples), RATE)  # fewer frames than delta_width
        assert out.shape == (1 + samples // 160, 39) and np.isfinite(out).all()


def test_extract_batch_equals_per_item():
    logmel = LogMel()
    signals = [chirp(n, seed=n) for n in (16000, 3000, 777)]
    for batched, signal in zip(logmel.extract_batch(signals, RATE), signals, strict=True):
        np.testing.assert_array_equal(batched, logmel(signal, RATE))


@pytest.mark.parametrize(
    ("signal", "rate", "match"),
    [
        (chirp(1000), 8000, "needs 16000 Hz audio but got 8000 Hz: resample"),
        (chirp(1000), 16000.0, "sampling_rate must be an integer"),
        (np.zeros((2, 1000), np.float32), RATE, "mono"),
        (np.zeros(1000, np.int16), RATE, "floating point"),
        (np.zeros(0, np.float32), RATE, "empty"),
        (np.full(1000, np.nan, np.float32), RATE, "NaN"),
        ([0.0] * 1000, RATE, "numpy array"),
    ],
)
def test_bad_signals_raise_feature_error(signal, rate, match):
    for extractor in (LogMel(), Mfcc()):
        with pytest.raises(FeatureError, match=match):
            extractor(signal, rate)


# --- SSL encoders on tiny random models ---------------------------------------------------------

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": (16, 16, 16),
    "conv_kernel": (10, 8, 4),
    "conv_stride": (5, 8, 8),  # 320 samples per frame: 50 Hz, as the real models
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
KINDS = {  # name -> (config class, extra options); covers group-norm, layer-norm and data2vec
    "hubert": ("HubertConfig", {}),
    "wav2vec2": ("Wav2Vec2Config", {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),
    "wavlm": (
        "WavLMConfig",
        {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "num_buckets": 16},
    ),
    "data2vec": (
        "Data2VecAudioConfig",
        {"conv_pos_kernel_size": 5, "num_conv_pos_embedding_layers": 2},
    ),
}


def save_tiny(folder, kind: str, *, seed: int = 0):
    transformers = pytest.importorskip("transformers")
    import torch

    class_name, extra = KINDS[kind]
    config = getattr(transformers, class_name)(**TINY, **extra)
    torch.manual_seed(seed)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """kind -> folder of a tiny random model written by save_pretrained."""
    root = tmp_path_factory.mktemp("ssl")
    return {kind: str(save_tiny(root / kind, kind)) for kind in KINDS}


@pytest.fixture
def no_network(monkeypatch):
    """Fail on any network access; run torch on one thread (tiny models on a shared, busy
    2-core machine are many times slower with two spinning OpenMP threads)."""
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("kind", list(KINDS))
def test_ssl_batch_equals_single_items(tiny_models, kind):
    from sertk.features.ssl import SslEncoder

    encoder = SslEncoder(tiny_models[kind], layers="all")
    assert not any(p.requires_grad for p in encoder.model.parameters())
    assert not encoder.model.training
    assert (encoder.dim, encoder.frame_rate, encoder.layers) == (32, 50.0, 3)
    lengths = [16000, 8000, 16000, 300, 12345, 8000]  # equal and unequal lengths, one too short
    signals = [chirp(n, seed=i) for i, n in enumerate(lengths)]
    singles = [encoder(signal, RATE) for signal in signals]
    batched = encoder.extract_batch(signals, RATE)
    for n, single, batch in zip(lengths, singles, batched, strict=True):
        assert single.dtype == np.float32
        assert single.shape == (3, encoder.num_frames(n), 32) == batch.shape
        np.testing.assert_allclose(batch, single, atol=1e-5, rtol=0)
    assert singles[0].shape[1] == 50 and singles[3].shape[1] == 1  # (16000-10)//5+1 ... = 50


@pytest.mark.usefixtures("no_network")
def test_ssl_layer_selection(tiny_models):
    from sertk.features.ssl import SslEncoder

    folder = tiny_models["wav2vec2"]
    signal = chirp(8000)
    every = SslEncoder(folder, layers="all")(signal, RATE)
    last = SslEncoder(folder)(signal, RATE)
    assert last.shape == (25, 32)
    np.testing.assert_allclose(every[-1], last, atol=1e-6)  # "last" is the top entry of "all"
    picked = SslEncoder(folder, layers=[0, -1])
    assert picked.layers == 2 and picked.config()["layers"] == [0, 2]
    np.testing.assert_allclose(picked(signal, RATE), every[[0, 2]], atol=1e-6)
    one = SslEncoder(folder, layers=1)
    assert one.layers is None
    np.testing.assert_allclose(one(signal, RATE), every[1], atol=1e-6)
    for bad in ("first", 3, [], [0, 7]):
        with pytest.raises(FeatureError, match="layers"):
            SslEncoder(folder, layers=bad)


@pytest.mark.usefixtures("no_network")
def test_ssl_matches_transformers_feature_extractor(tiny_models):
    import torch
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    from sertk.features.ssl import SslEncoder

    folder = tiny_models["wav2vec2"]
    encoder = SslEncoder(folder, layers="last")
    assert encoder.normalize  # layer-norm model without preprocessor_config.json
    processor = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    signals = [chirp(16000), chirp(9000, seed=1)]
    inputs = processor(signals, sampling_rate=RATE, padding=True, return_tensors="pt")
    with torch.inference_mode():
        reference = model(**inputs).last_hidden_state.numpy()
    for row, features in enumerate(encoder.extract_batch(signals, RATE)):
        np.testing.assert_allclose(features, reference[row, : len(features)], atol=1e-5)


@pytest.mark.usefixtures("no_network")
def test_ssl_normalisation_follows_preprocessor_config(tiny_models, tmp_path):
    from sertk.features.ssl import SslEncoder

    plain = SslEncoder(tiny_models["hubert"])
    assert plain.normalize is False  # group-norm model: no normalisation by default
    folder = shutil.copytree(tiny_models["hubert"], tmp_path / "hubert")
    (folder / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True}))
    normalising = SslEncoder(str(folder))
    assert normalising.normalize is True
    assert normalising.fingerprint != plain.fingerprint  # the preprocessor config is identity
    signal = 0.1 * chirp(8000)
    expected = SslEncoder(tiny_models["hubert"], normalize=True)(signal, RATE)
    np.testing.assert_allclose(normalising(signal, RATE), expected, atol=1e-6)
    assert not np.allclose(plain(signal, RATE), expected, atol=1e-3)


@pytest.mark.usefixtures("no_network")
def test_ssl_identity_follows_checkpoint_content(tiny_models, tmp_path):
    from sertk.features.ssl import SslEncoder

    original = SslEncoder(tiny_models["hubert"], layers="all")
    config = original.config()
    assert config["fingerprint"] == original.fingerprint and len(original.fingerprint) == 64
    rebuilt = build_extractor(json.loads(json.dumps(config)))
    signal = chirp(5000)
    np.testing.assert_array_equal(rebuilt(signal, RATE), original(signal, RATE))
    copy = shutil.copytree(tiny_models["hubert"], tmp_path / "copy")
    moved = SslEncoder(str(copy), layers="all")
    assert moved.cache_key() == original.cache_key()  # same content, other path: same cache key
    changed = save_tiny(tmp_path / "changed", "hubert", seed=1)
    other = SslEncoder(str(changed), layers="all")
    assert other.fingerprint != original.fingerprint
    with pytest.raises(FeatureError, match="not the one these features were made with"):
        build_extractor({**config, "model": str(changed)})


@pytest.mark.usefixtures("no_network")
def test_ssl_bad_models_and_inputs(tiny_models, tmp_path):
    from sertk.features.ssl import SslEncoder

    with pytest.raises(FeatureError, match="does not exist"):
        SslEncoder(str(tmp_path / "missing" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeatureError, match="no config.json"):
        SslEncoder(str(tmp_path / "empty"))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(FeatureError, match="is a file"):
        SslEncoder(str(tmp_path / "file.bin"))
    transformers = pytest.importorskip("transformers")
    bert = transformers.BertConfig(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        vocab_size=10,
    )
    transformers.AutoModel.from_config(bert).save_pretrained(tmp_path / "bert")
    with pytest.raises(FeatureError, match="not a wav2vec2-style audio encoder"):
        SslEncoder(str(tmp_path / "bert"))
    encoder = SslEncoder(tiny_models["hubert"])
    with pytest.raises(FeatureError, match="resample"):
        encoder(chirp(8000), 8000)
    with pytest.raises(FeatureError, match="mono"):
        encoder.extract_batch([chirp(800), np.zeros((2, 800), np.float32)], RATE)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(FeatureError, match="no CUDA GPU"):
            SslEncoder(tiny_models["hubert"], device="cuda")


def test_ssl_hub_id_offline_explains(monkeypatch):
    pytest.importorskip("transformers")
    import huggingface_hub.constants

    from sertk.features.ssl import SslEncoder

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-hf-cache")
    with pytest.raises(FeatureError, match="not a local model folder.*--model DIR"):
        SslEncoder("sertk-test/no-such-model")


@pytest.mark.usefixtures("no_network")
def test_ssl_through_extract_utterances_and_cache(tiny_models, make_wav, tmp_path):
    from sertk.audio import Preprocess
    from sertk.corpora import Utterance
    from sertk.features.cache import FeatureCache, extract_utterances
    from sertk.features.ssl import SslEncoder

    utterances = [
        Utterance(f"u{i}", str(make_wav(f"u{i}.wav", frequency=f, duration=d)), "sad", "s1")
        for i, (f, d) in enumerate([(200, 1.0), (300, 0.4), (250, 1.0)])
    ]
    encoder = SslEncoder(tiny_models["hubert"], layers=[0, 2], max_batch_seconds=2.0)
    preprocess, cache = Preprocess(duration=None), FeatureCache(tmp_path / "cache")
    features = extract_utterances(utterances, encoder, preprocess=preprocess, cache=cache)
    assert [f.shape for f in features] == [(2, 50, 32), (2, 20, 32), (2, 50, 32)]
    for utterance, array in zip(utterances, features, strict=True):
        signal = preprocess(*load_audio_16k(utterance.path))
        np.testing.assert_allclose(array, encoder(signal, RATE), atol=1e-5)
    copy = shutil.copytree(tiny_models["hubert"], tmp_path / "copy")
    moved = SslEncoder(str(copy), layers=[0, 2])
    extract_utterances(utterances, moved, preprocess=preprocess, cache=cache, progress=False)
    assert (cache.hits, cache.misses) == (3, 3)  # same checkpoint content elsewhere: cache hits


def load_audio_16k(path):
    from sertk.audio import load_audio

    return load_audio(path, sampling_rate=RATE)
