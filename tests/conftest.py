"""Shared fixtures: seeded synthetic audio (in memory or written to tmp_path) and the real corpora.

Parallel runs (pytest-xdist, ``make test``: ``-n auto --dist loadgroup``): the tests of a module
that use one of its module- or class-scoped fixtures (bundles, toy runs, ONNX exports, live
servers, a Qt application, a PulseAudio daemon) run on one worker (``xdist_group``, set below), so
each such fixture is built once and never shared between processes; every other test goes to
whichever worker is free. Every worker has its own temporary folders and feature cache
(``SERTK_CACHE``, below), and the servers, Xvfb displays and PulseAudio daemons the tests start
take free ports, free displays and folders of their own, so two workers never collide.
"""

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


def pytest_collection_modifyitems(config, items) -> None:
    """With xdist: one ``xdist_group`` per module for the tests that share a module- or
    class-scoped fixture (see the module docstring)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        scopes = {
            definition.scope
            for chain in (definitions.name2fixturedefs.values() if definitions else ())
            for definition in chain
        }
        if scopes & {"module", "class"}:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


@pytest.fixture(scope="session", autouse=True)
def own_feature_cache(tmp_path_factory):
    """A feature cache of the test session's own (per xdist worker): tests never read or write
    the user's ``~/.cache/sertk`` and parallel workers never share cache files."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERTK_CACHE", str(tmp_path_factory.mktemp("feature-cache")))
        yield


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


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory):
    """The bad-input corpus (``tests/bad_inputs.py``): every audio kind, then tampered copies
    of the default model, as :class:`bad_inputs.BadInput` records (files made once a session)."""
    from bad_inputs import make_audio_inputs, make_bundle_inputs

    from sertk.bundle import resolve_bundle

    root = tmp_path_factory.mktemp("bad_inputs")
    return make_audio_inputs(root / "audio") + make_bundle_inputs(
        resolve_bundle("default"), root / "bundles"
    )
