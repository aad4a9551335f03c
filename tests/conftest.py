"""Shared fixtures: seeded synthetic audio (in memory or written to tmp_path) and the real corpora."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def synth(
    *,
    duration: float = 1.0,
    sampling_rate: int = 16000,
    frequency: float | None = 440.0,
    amplitude: float = 0.5,
    channels: int = 1,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A sine (``frequency`` None: none) plus white noise of std ``noise``: float32 ``[samples]``
    for one channel, else ``[channels, samples]`` (same sine, independent noise per channel)."""
    t = np.arange(round(duration * sampling_rate)) / sampling_rate
    tone = amplitude * np.sin(2 * np.pi * frequency * t) if frequency else np.zeros_like(t)
    noisy = tone + np.random.default_rng(seed).normal(0.0, noise, (channels, len(t)))
    return (noisy[0] if channels == 1 else noisy).astype(np.float32)


def voice(
    seconds: float = 1.0,
    f0: float = 160.0,
    *,
    sampling_rate: int = 16000,
    amplitude: float = 0.3,
    noise: float = 0.01,
    seed: int = 0,
) -> np.ndarray:
    """A speech-like synthetic voice, float32 ``[samples]``: a harmonic series (1/k, up to 4 kHz)
    whose pitch moves around ``f0`` by about ±2 semitones (intonation), with a syllable-rate
    loudness envelope and a little white noise of std ``noise``. What the tests use where a
    model must hear speech: a pure tone is no speech (``sertk.features.voicing``). The class of
    a toy corpus can ride on ``f0`` (the mean pitch) or ``amplitude``.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sampling_rate)) / sampling_rate
    contour = 2.0 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 0.5 * np.sin(
        2 * np.pi * 3.1 * t
    )
    phase = 2 * np.pi * np.cumsum(f0 * 2 ** (contour / 12)) / sampling_rate
    top = 0.95 * sampling_rate / 2  # harmonics up to 4 kHz, at least 3 (below Nyquist)
    count = max(min(3, int(top // (f0 * 1.2))), int(min(4000, top) // (f0 * 1.2)), 1)
    harmonics = sum(np.sin(k * phase) / k for k in range(1, count + 1)) / 1.5
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    signal = amplitude * envelope * harmonics + rng.normal(0.0, noise, t.size)
    return signal.astype(np.float32)


@pytest.fixture
def make_signal():
    """Factory: ``make_signal(duration=..., sampling_rate=..., frequency=..., ...)`` -> float32."""
    return synth


@pytest.fixture
def make_wav(tmp_path):
    """Factory writing audio under tmp_path and returning its path.

    ``make_wav("a.flac", signal=None, sampling_rate=16000, subtype=None, format=None, **synth_kwargs)``:
    writes ``signal`` (``[samples]`` or ``[channels, samples]``) or a ``synth(...)`` one; the
    format follows the file extension unless given.
    """

    def make(
        name: str = "tone.wav",
        *,
        signal: np.ndarray | None = None,
        sampling_rate: int = 16000,
        subtype: str | None = None,
        format: str | None = None,
        **kwargs,
    ) -> Path:
        if signal is None:
            signal = synth(sampling_rate=sampling_rate, **kwargs)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = signal.T if signal.ndim == 2 else signal
        sf.write(path, data, sampling_rate, subtype=subtype, format=format)
        return path

    return make


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """The real corpora folder (``$SERTK_CORPORA`` or ``../shared/corpora``); skips when absent."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    path = Path(os.environ.get("SERTK_CORPORA", default))
    if not path.is_dir():
        pytest.skip(f"real corpora not found at {path}")
    return path


def as_items(arrays, key=(0, None)):
    """Scorer features (``scorer.score``) of utterances given as one array each: the features
    of the utterance itself for input 0, as ``scorer.extract`` gives them."""
    return [{key: array} for array in arrays]
