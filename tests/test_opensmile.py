"""Tests for the openSMILE extractor (skipped where the opt-in ``opensmile`` extra is missing)."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from sertk.errors import FeatureError
from sertk.features import build_extractor
from sertk.features.opensmile import OpenSmile

SR = 16000
needs_opensmile = pytest.mark.skipif(
    importlib.util.find_spec("opensmile") is None,
    reason="needs the opt-in 'opensmile' extra",
)


def tone(freq: float, amplitude: float, *, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A harmonic-rich voiced-like tone ``[samples]`` float32 with a little seeded noise."""
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
    noise = np.random.default_rng(seed).normal(0.0, 0.01, t.size)
    return (amplitude * (wave / np.abs(wave).max() + noise)).astype(np.float32)


def test_missing_package_raises_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opensmile", None)  # makes `import opensmile` fail
    with pytest.raises(FeatureError, match=r"pip install 'sertk\[opensmile\]'.*non-commercial"):
        OpenSmile()
    with pytest.raises(FeatureError, match="opt-in 'opensmile' extra"):
        build_extractor({"name": "opensmile"})


@needs_opensmile
def test_functionals_shape_and_dtype() -> None:
    extractor = OpenSmile()
    out = extractor(tone(200.0, 0.3), SR)
    assert (extractor.dim, extractor.frame_rate, extractor.layers) == (88, 0.0, None)
    assert out.shape == (1, 88) and out.dtype == np.float32 and np.isfinite(out).all()
    assert len(extractor.columns) == 88 and "F0semitoneFrom27.5Hz_sma3nz_amean" in extractor.columns


@needs_opensmile
@pytest.mark.parametrize("seconds", [1.0, 2.5])
def test_lld_frames_at_100_hz(seconds: float) -> None:
    extractor = OpenSmile(level="lld")
    out = extractor(tone(180.0, 0.3, seconds=seconds), SR)
    assert extractor.frame_rate == 100.0 and out.shape[1] == extractor.dim == 25
    assert abs(len(out) - seconds * 100) <= 5  # 20 ms window, 10 ms hop, no centring
    assert out.dtype == np.float32


@needs_opensmile
def test_config_round_trip() -> None:
    extractor = build_extractor({"name": "opensmile", "feature_set": "GeMAPSv01b", "level": "lld"})
    config = extractor.config()
    assert config == {
        "name": "opensmile",
        "feature_set": "GeMAPSv01b",
        "level": "lld",
        "sampling_rate": 16000,
    }
    rebuilt = build_extractor(json.loads(json.dumps(config)))
    assert rebuilt.config() == config and rebuilt.dim == extractor.dim == 18
    signal = tone(220.0, 0.2)
    np.testing.assert_array_equal(rebuilt(signal, SR), extractor(signal, SR))


@needs_opensmile
def test_louder_and_higher_signals_move_columns() -> None:
    extractor = OpenSmile()
    f0 = extractor.columns.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    loudness = extractor.columns.index("loudness_sma3_amean")
    base = extractor(tone(150.0, 0.05), SR)[0]
    louder = extractor(tone(150.0, 0.5), SR)[0]
    higher = extractor(tone(300.0, 0.05), SR)[0]
    assert louder[loudness] > 2 * base[loudness]
    assert higher[f0] == pytest.approx(base[f0] + 12.0, abs=1.0)  # one octave = 12 semitones


@needs_opensmile
@pytest.mark.parametrize(
    "options, match",
    [
        ({"feature_set": "eGeMAPS"}, "unknown openSMILE feature_set"),
        ({"level": "frames"}, "unknown openSMILE level"),
        ({"sampling_rate": 100}, "sampling_rate"),
        ({"hop": 10}, "unknown option"),
    ],
)
def test_bad_options(options: dict, match: str) -> None:
    with pytest.raises(FeatureError, match=match):
        build_extractor({"name": "opensmile", **options})


@needs_opensmile
def test_bad_signals_raise() -> None:
    extractor = OpenSmile()
    with pytest.raises(FeatureError, match="16000 Hz"):
        extractor(tone(200.0, 0.3), 8000)
    with pytest.raises(FeatureError, match="mono"):
        extractor(np.zeros((2, SR), dtype=np.float32), SR)
    with pytest.raises(FeatureError, match="NaN/inf|too short"):
        extractor(tone(200.0, 0.3)[:100], SR)
