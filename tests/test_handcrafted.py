from __future__ import annotations

import json

import numpy as np
import pytest

from sertk.errors import FeatureError
from sertk.features import build_extractor
from sertk.features.emotion import EmotionFunctionals
from sertk.features.handcrafted import BASE_COLUMNS, STATISTICS, Functionals, Lld, yin
from sertk.features.statistics import PERCENTILES, masked_statistics, sorted_percentiles

SR = 16000


def sine(freq: float, seconds: float = 1.0, *, amplitude: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def column(features: np.ndarray, extractor: Lld, name: str) -> np.ndarray:
    return features[:, extractor.columns.index(name)]


@pytest.fixture
def noise() -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)


def test_shape_dtype_columns_and_frame_rate():
    lld = Lld()
    out = lld(sine(200, 1.5), SR)
    assert out.shape == (1 + 24000 // 160, lld.dim) and out.dtype == np.float32
    assert lld.frame_rate == 100.0 and len(lld.columns) == lld.dim == 2 * (len(BASE_COLUMNS) + 13)
    assert lld.columns[:3] == ("log_energy", "zcr", "envelope") and lld.columns[-1] == "mfcc_12_d"
    no_deltas = Lld(n_mfcc=20, deltas=False)
    assert no_deltas(sine(200), SR).shape[1] == no_deltas.dim == len(BASE_COLUMNS) + 20


@pytest.mark.parametrize("freq", [90.0, 147.0, 220.0, 410.0])
def test_f0_of_sine_within_two_percent(freq):
    lld = Lld()
    out = lld(sine(freq), SR)[5:-5]  # edges are half zero padding
    assert column(out, lld, "voiced").mean() > 0.95
    f0 = column(out, lld, "f0")
    assert np.all(np.abs(f0 / freq - 1) < 0.02)
    assert column(out, lld, "voicing_prob").min() > 0.9


def test_f0_follows_harmonic_tone_not_its_overtones():
    t = np.arange(SR) / SR
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8)).astype(np.float32)
    f0, _, voiced = yin(tone.astype(np.float64), SR, hop=160)
    assert voiced[5:-5].all() and np.allclose(f0[5:-5], 150, rtol=0.02)


def test_silence_and_noise_are_unvoiced(noise):
    lld = Lld()
    for signal in (np.zeros(SR, np.float32), noise):
        out = lld(signal, SR)
        assert np.isfinite(out).all()
        assert column(out, lld, "voiced").mean() < 0.05
    silent = lld(np.zeros(SR, np.float32), SR)
    assert not column(silent, lld, "f0").any() and not column(silent, lld, "voicing_prob").any()


def test_flatness_of_noise_far_above_sine(noise):
    lld = Lld()
    noise_flat = np.median(column(lld(noise, SR), lld, "spectral_flatness"))
    sine_flat = np.median(column(lld(sine(1000), SR), lld, "spectral_flatness"))
    # one periodogram of white noise is exponentially distributed: flatness exp(-gamma) ~ 0.56
    assert 0.4 < noise_flat <= 1.0 and sine_flat < 0.01


@pytest.mark.parametrize("freq", [500.0, 1000.0, 3000.0])
def test_centroid_peak_and_zcr_of_sine(freq):
    lld = Lld()
    out = lld(sine(freq), SR)[5:-5]
    assert np.allclose(column(out, lld, "spectral_centroid"), freq, rtol=0.02)
    assert np.all(np.abs(column(out, lld, "spectral_peak") - freq) <= SR / 512)
    assert np.allclose(column(out, lld, "zcr"), 2 * freq / SR, rtol=0.05, atol=1.0 / 400)
    assert np.all(column(out, lld, "spectral_rolloff") >= freq - SR / 512)


def test_noise_entropy_above_sine_and_energy_tracks_gain(noise):
    lld = Lld()
    assert column(lld(noise, SR), lld, "spectral_entropy").mean() > 0.8
    assert column(lld(sine(440), SR), lld, "spectral_entropy").mean() < 0.5
    quiet = column(lld(sine(440, amplitude=0.05), SR), lld, "log_energy")
    loud = column(lld(sine(440, amplitude=0.5), SR), lld, "log_energy")
    assert np.allclose((loud - quiet)[5:-5], np.log(100.0), atol=1e-3)


def test_deltas_vanish_on_a_stationary_sine():
    lld = Lld()
    out = lld(sine(300, 2.0), SR)[10:-10]
    deltas = out[:, lld.columns.index("log_energy_d") :]
    assert np.abs(deltas).max() < 0.05


@pytest.mark.parametrize("samples", [1, 10, 159, 400])
def test_very_short_input_gives_finite_frames(samples):
    lld = Lld()
    out = lld(sine(200, 1.0)[:samples], SR)
    assert out.shape == (1 + samples // 160, lld.dim) and np.isfinite(out).all()
    functionals = Functionals()(sine(200, 1.0)[:samples], SR)
    assert functionals.shape == (1, Functionals().dim) and np.isfinite(functionals).all()


def test_multichannel_is_mixed_down_and_other_rates_work():
    lld = Lld()
    stereo = np.stack([sine(220), sine(220)])
    assert np.allclose(lld(stereo, SR), lld(sine(220), SR))
    out8k = lld(sine(220, sr=8000), 8000)
    assert out8k.shape[0] == 101 and np.allclose(column(out8k, lld, "f0")[5:-5], 220, rtol=0.02)


@pytest.mark.parametrize(
    ("signal", "rate", "match"),
    [
        (np.zeros(0, np.float32), SR, "empty"),
        (np.array([0.0, np.nan], np.float32), SR, "NaN"),
        (np.zeros((2, 2, 2), np.float32), SR, "shape"),
        (np.zeros(100, np.float32), 16000.5, "sampling_rate"),
        (np.zeros(100, np.float32), 100, "sampling_rate"),
    ],
)
def test_bad_input_raises_feature_error(signal, rate, match):
    with pytest.raises(FeatureError, match=match):
        Lld()(signal, rate)


def test_bad_settings_raise_feature_error():
    with pytest.raises(FeatureError, match="n_mfcc"):
        Lld(n_mfcc=50, n_mels=40)
    with pytest.raises(FeatureError, match="hop_s"):
        Lld(hop_s=0.05, frame_s=0.025)
    with pytest.raises(FeatureError, match="Nyquist"):
        Lld(fmax=2500.0)(np.zeros(100, np.float32), 4000)
    with pytest.raises(FeatureError, match="statistics"):
        Functionals(statistics=("mean", "median"))
    with pytest.raises(FeatureError, match="LLDs"):
        Functionals().from_lld(np.zeros((10, 3), np.float32))


def test_functionals_shape_names_and_config_roundtrip():
    extractor = Functionals(lld={"n_mfcc": 8, "deltas": False}, statistics=["std", "mean"])
    out = extractor(sine(200), SR)
    assert out.shape == (1, extractor.dim) and extractor.frame_rate == 0
    assert extractor.dim == (len(BASE_COLUMNS) + 8) * 2
    assert extractor.columns[:2] == ("log_energy__mean", "log_energy__std")
    config = json.loads(json.dumps(extractor.config()))
    rebuilt = Functionals(**{k: v for k, v in config.items() if k != "name"})
    assert rebuilt.config() == config and np.array_equal(rebuilt(sine(200), SR), out)
    assert Functionals().dim == Lld().dim * len(STATISTICS)


def test_f0_functionals_use_voiced_frames_only():
    extractor = Functionals()
    signal = np.concatenate([np.zeros(SR, np.float32), sine(200)])
    out = dict(zip(extractor.columns, extractor(signal, SR)[0], strict=True))
    assert abs(out["f0__mean"] / 200 - 1) < 0.02 and abs(out["f0__p1"] / 200 - 1) < 0.02
    assert 0.4 < out["voiced__mean"] < 0.6
    assert out["log_energy__range"] > 10  # silence vs tone is counted for non-F0 columns


def test_slope_of_rising_chirp_is_positive():
    t = np.arange(2 * SR) / SR
    chirp = (0.5 * np.sin(2 * np.pi * (120 * t + 40 * t**2))).astype(np.float32)  # 120 -> 280 Hz
    extractor = Functionals()
    out = dict(zip(extractor.columns, extractor(chirp, SR)[0], strict=True))
    assert 0.7 < out["f0__slope"] < 0.9  # 80 Hz per second at 100 frames per second
    assert out["f0__p99"] > 260 and out["f0__p1"] < 140


def test_f0_agrees_with_librosa_yin():
    librosa = pytest.importorskip("librosa")
    t = np.arange(SR) / SR
    tone = sum(np.sin(2 * np.pi * 180 * k * t + k) / k**1.5 for k in range(1, 6))
    ours, _, _ = yin(tone, SR, hop=160, fmin=60, fmax=500)
    ref = librosa.yin(tone, fmin=60, fmax=500, sr=SR, frame_length=1024, hop_length=160)
    n = min(len(ours), len(ref))
    assert np.median(np.abs(ours[5 : n - 5] / ref[5 : n - 5] - 1)) < 0.01


def test_emotion_functionals_shape_names_and_edge_cases(noise):
    extractor = EmotionFunctionals()
    assert extractor.dim == len(extractor.columns) == 2798 and extractor.frame_rate == 0
    assert len(set(extractor.columns)) == extractor.dim
    for signal in (sine(200), np.zeros(SR, np.float32), sine(200)[:10], noise):
        out = extractor(signal, SR)
        assert (
            out.shape == (1, extractor.dim) and out.dtype == np.float32 and np.isfinite(out).all()
        )
    config = json.loads(json.dumps(extractor.config()))
    assert EmotionFunctionals(**{k: v for k, v in config.items() if k != "name"}).dim == 2798
    with pytest.raises(FeatureError, match="n_mels"):
        EmotionFunctionals(n_mels=2)


def test_emotion_functionals_ignore_leading_silence_and_track_pitch():
    extractor = EmotionFunctionals()
    names = extractor.columns
    low = dict(zip(names, extractor(sine(150), SR)[0], strict=True))
    padded = np.concatenate([np.zeros(SR // 2, np.float32), sine(150)])
    low_padded = dict(zip(names, extractor(padded, SR)[0], strict=True))
    high = dict(zip(names, extractor(sine(300), SR)[0], strict=True))
    assert abs(high["f0__mean"] - low["f0__mean"] - 12.0) < 0.5  # one octave in semitones
    assert abs(low_padded["f0__mean"] - low["f0__mean"]) < 0.1
    assert abs(low_padded["log_energy__p1"] - low["log_energy__p1"]) < 1.0  # silence is not active


def test_emotion_functionals_are_registered_and_rebuild_from_config():
    extractor = build_extractor({"name": "emotion_functionals", "segments": 2})
    assert isinstance(extractor, EmotionFunctionals) and extractor.frame_rate == 0
    rebuilt = build_extractor(extractor.config())
    assert rebuilt.config() == extractor.config() and rebuilt.dim == extractor.dim
    np.testing.assert_array_equal(rebuilt(sine(220), SR), extractor(sine(220), SR))
    with pytest.raises(FeatureError, match="unknown option"):
        build_extractor({"name": "emotion_functionals", "n_mfcc": 13})


@pytest.mark.parametrize("rows", [1, 2, 3, 10, 101, 301])
def test_sorted_percentiles_equal_numpy_exactly(rows):
    rng = np.random.default_rng(rows)
    values = np.round(rng.standard_normal((rows, 7)) * 3, 1)  # rounding makes ties
    ordered = np.sort(values, axis=0)
    for q in [PERCENTILES, (0, 50, 100), (12.5, 33.3, 99.9)]:
        assert np.array_equal(sorted_percentiles(ordered, q), np.percentile(values, q, axis=0))


def test_masked_statistics_match_plain_numpy_per_column():
    from scipy.stats import kurtosis, skew

    rng = np.random.default_rng(3)
    values = rng.standard_normal((200, 6)) * [1, 2, 3, 4, 5, 6] + np.arange(200)[:, None] * 0.01
    mask = np.ones_like(values, dtype=bool)
    mask[:, 2] = mask[:, 4] = rng.random(200) > 0.4  # two columns share one mask
    mask[:, 5] = rng.random(200) > 0.8  # one column has a mask of its own
    mask[:, 1] = False  # no frame at all: zeros
    out = dict(zip(STATISTICS, masked_statistics(values, mask), strict=True))
    for column in (0, 2, 3, 4, 5):
        rows = np.flatnonzero(mask[:, column])
        kept = values[rows, column]
        pct = np.percentile(kept, PERCENTILES)
        expected = {
            "mean": kept.mean(), "std": kept.std(), "range": pct[4] - pct[0],
            "slope": np.polyfit(rows, kept, 1)[0], "skew": skew(kept), "kurtosis": kurtosis(kept),
            **{f"p{q}": p for q, p in zip(PERCENTILES, pct, strict=True)},
        }  # fmt: skip
        for name, value in expected.items():
            assert out[name][column] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, column)
    assert all(out[name][1] == 0.0 for name in STATISTICS)
    assert masked_statistics(values[:0], mask[:0]).shape == (len(STATISTICS), 6)


def test_one_lld_instance_serves_several_sampling_rates():
    # the mel filters are cached per (rate, FFT size): 44.1 and 48 kHz share a 2048-point FFT
    shared = Lld()
    for rate in (44100, 48000, 16000, 22050, 44100):
        signal = sine(180, 0.5, sr=rate)
        np.testing.assert_array_equal(shared(signal, rate), Lld()(signal, rate))


def test_extractors_give_the_same_features_from_several_threads():
    from concurrent.futures import ThreadPoolExecutor

    extractor = EmotionFunctionals()  # one instance; its scratch arrays are per thread
    rng = np.random.default_rng(5)
    signals = [sine(110 + 40 * k, 1.0 + 0.25 * k) for k in range(8)]
    signals = [s + 0.05 * rng.standard_normal(len(s)).astype(np.float32) for s in signals]
    serial = [extractor(signal, SR) for signal in signals]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda signal: extractor(signal, SR), signals * 3))
    for k, features in enumerate(threaded):
        np.testing.assert_array_equal(features, serial[k % len(signals)])


def test_functionals_reject_non_finite_llds():
    lld = Lld()(sine(200), SR)
    lld[3, 0] = np.nan
    with pytest.raises(FeatureError, match="NaN"):
        Functionals().from_lld(lld)
