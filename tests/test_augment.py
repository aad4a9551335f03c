"""Seeded augmentation: determinism, identity when off, exact SNR, speed/stretch/pitch, masks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sertk.augment import (
    AugmentConfig,
    Augmenter,
    augment_features,
    augment_waveform,
    mask_spans,
    time_stretch,
)
from sertk.errors import AudioError, ConfigError, FeatureError

RATE = 16000
EVERYTHING = AugmentConfig(
    noise_p=1.0, gain_p=1.0, speed_p=1.0, time_stretch_p=1.0, pitch_shift_p=1.0, mask_p=1.0
)


def rng(seed=0):
    return np.random.default_rng(seed)


def tone(make_signal, frequency=440.0, duration=1.0):
    return make_signal(duration=duration, frequency=frequency, sampling_rate=RATE, noise=0.01)


def peak_frequency(signal, rate=RATE):
    """Frequency of the strongest spectral peak (parabolic interpolation on log magnitude)."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / signal.size


def test_same_seed_same_result_and_other_seeds_differ(make_signal):
    signal = tone(make_signal)
    first = augment_waveform(signal, RATE, EVERYTHING, rng(7))
    again = augment_waveform(signal, RATE, EVERYTHING, rng(7))
    other = augment_waveform(signal, RATE, EVERYTHING, rng(8))
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)
    features = rng().normal(size=(50, 20)).astype(np.float32)
    np.testing.assert_array_equal(
        augment_features(features, EVERYTHING, rng(3)),
        augment_features(features, EVERYTHING, rng(3)),
    )


def test_disabled_config_is_the_identity(make_signal):
    signal = tone(make_signal).astype(np.float64)
    generator = rng(1)
    state = generator.bit_generator.state
    out = augment_waveform(signal, RATE, AugmentConfig(), generator)
    assert out.dtype == np.float32 and out is not signal
    np.testing.assert_array_equal(out, signal.astype(np.float32))
    features = rng().normal(size=(30, 8)).astype(np.float32)
    masked = augment_features(
        features, AugmentConfig(mask_p=1.0, time_masks=0, freq_masks=0), generator
    )
    np.testing.assert_array_equal(masked, features)
    assert masked is not features
    assert generator.bit_generator.state == state  # nothing was drawn
    assert not AugmentConfig().waveform_enabled and not AugmentConfig().features_enabled


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_noise_is_added_at_the_requested_snr(make_signal, snr):
    signal = tone(make_signal)
    config = AugmentConfig(noise_p=1.0, noise_snr_db=(snr, snr))
    out = augment_waveform(signal, RATE, config, rng(2))
    noise = out.astype(np.float64) - signal
    measured = 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(measured - snr) < 0.5


def test_noise_snr_stays_in_range_and_silence_gets_none(make_signal):
    signal = tone(make_signal)
    config = AugmentConfig(noise_p=1.0, noise_snr_db=(5.0, 20.0))
    for seed in range(5):
        noise = augment_waveform(signal, RATE, config, rng(seed)).astype(np.float64) - signal
        snr = 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean(noise**2))
        assert 4.5 < snr < 20.5
    silence = np.zeros(RATE, dtype=np.float32)
    np.testing.assert_array_equal(augment_waveform(silence, RATE, config, rng()), silence)


def test_gain_scales_by_the_requested_db(make_signal):
    signal = tone(make_signal)
    out = augment_waveform(signal, RATE, AugmentConfig(gain_p=1.0, gain_db=(-6.0, -6.0)), rng())
    np.testing.assert_allclose(out, signal * 10 ** (-6 / 20), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_and_pitch_by_the_factor(make_signal, factor):
    signal = tone(make_signal)
    out = augment_waveform(signal, RATE, AugmentConfig(speed_p=1.0, speed=(factor, factor)), rng())
    assert abs(out.size - signal.size / factor) <= 1
    assert peak_frequency(out[1000:-1000]) / 440.0 == pytest.approx(factor, rel=0.01)


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_changes_length_and_keeps_pitch(make_signal, rate):
    signal = tone(make_signal)
    config = AugmentConfig(time_stretch_p=1.0, time_stretch=(rate, rate))
    out = augment_waveform(signal, RATE, config, rng())
    assert out.size == round(signal.size / rate)
    assert peak_frequency(out[1000:-1000]) == pytest.approx(440.0, rel=0.01)


@pytest.mark.parametrize("semitones", [-3.0, 2.0, 5.0])
def test_pitch_shift_moves_frequency_and_keeps_length(make_signal, semitones):
    signal = tone(make_signal, frequency=330.0)
    config = AugmentConfig(pitch_shift_p=1.0, pitch_shift=(semitones, semitones))
    out = augment_waveform(signal, RATE, config, rng())
    assert abs(out.size - signal.size) <= 0.02 * signal.size
    ratio = peak_frequency(out[1000:-1000]) / 330.0
    assert ratio == pytest.approx(2 ** (semitones / 12), rel=0.03)


def test_time_stretch_matches_librosa(make_signal):
    librosa = pytest.importorskip("librosa")
    signal = tone(make_signal).astype(np.float64)
    for rate in (0.85, 1.2):
        expected = librosa.effects.time_stretch(signal, rate=rate, n_fft=1024, hop_length=256)
        np.testing.assert_allclose(
            time_stretch(signal, rate, sampling_rate=RATE), expected, atol=1e-9
        )


def test_output_is_finite_float32_for_mono_and_stereo(make_signal):
    mono = tone(make_signal)
    stereo = make_signal(duration=0.5, sampling_rate=RATE, channels=2, noise=0.1)
    for seed in range(4):
        for signal in (mono, stereo):
            out = augment_waveform(signal, RATE, EVERYTHING, rng(seed))
            assert out.dtype == np.float32 and np.isfinite(out).all()
            assert out.ndim == signal.ndim and out.shape[:-1] == signal.shape[:-1]


def test_one_step_probability_does_not_shift_the_others(make_signal):
    signal = tone(make_signal)
    noise_only = AugmentConfig(noise_p=1.0)
    with_silent_gain = AugmentConfig(noise_p=1.0, gain_p=1.0, gain_db=(0.0, 0.0))
    np.testing.assert_array_equal(
        augment_waveform(signal, RATE, noise_only, rng(4)),
        augment_waveform(signal, RATE, with_silent_gain, rng(4)),
    )


# --- feature masks -------------------------------------------------------------------------


def test_masks_zero_out_exactly_the_drawn_frames_and_bands():
    features = rng().normal(3.0, 1.0, size=(100, 40)).astype(np.float32)
    config = AugmentConfig(
        mask_p=1.0, mask_value="zero", time_masks=3, time_mask_width=(7, 7),
        freq_masks=2, freq_mask_width=(4, 4),
    )  # fmt: skip
    for seed in range(5):
        out = augment_features(features, config, rng(seed))
        assert out.dtype == np.float32
        assert (out == 0).all(axis=1).sum() == 3 * 7  # masked frames
        assert (out == 0).all(axis=0).sum() == 2 * 4  # masked bands
        untouched = ~(out == 0).all(axis=1)
        kept = (out[untouched] != 0).all(axis=0)
        np.testing.assert_array_equal(out[untouched][:, kept], features[untouched][:, kept])


def test_mean_masks_and_layered_features_share_masks():
    features = rng().normal(2.0, 1.0, size=(3, 60, 16)).astype(np.float32)
    config = AugmentConfig(mask_p=1.0, time_masks=1, time_mask_width=(10, 10), freq_masks=0)
    out = augment_features(features, config, rng(5))
    filled = np.isclose(out, features.mean()).all(axis=(0, 2))  # frames equal to the mean
    assert filled.sum() == 10
    np.testing.assert_array_equal(out[:, ~filled], features[:, ~filled])


def test_mask_spans_never_overlap_and_shrink_to_fit():
    for seed in range(20):
        spans = mask_spans(30, 4, (0, 12), rng(seed))
        covered = np.zeros(30, int)
        for start, stop in spans:
            assert 0 <= start <= stop <= 30
            covered[start:stop] += 1
        assert covered.max() <= 1
    spans = mask_spans(10, 3, (8, 8), rng())
    assert sum(stop - start for start, stop in spans) <= 10


def test_mask_probability_is_respected():
    features = np.ones((40, 10), dtype=np.float32)
    config = AugmentConfig(mask_p=0.3, mask_value="zero", time_mask_width=(5, 5))
    masked = [
        not np.array_equal(augment_features(features, config, rng(s)), features) for s in range(200)
    ]
    assert 0.2 < np.mean(masked) < 0.4


# --- Augmenter -----------------------------------------------------------------------------


def test_augmenter_is_reproducible_and_independent_of_order(make_signal):
    signal = tone(make_signal, duration=0.5)
    augmenter = Augmenter(EVERYTHING, seed=11)
    forward = [augmenter.waveform(signal, RATE, 2, i) for i in range(4)]
    backward = [Augmenter(EVERYTHING, seed=11)(signal, RATE, 2, i) for i in reversed(range(4))][
        ::-1
    ]
    for a, b in zip(forward, backward, strict=True):
        np.testing.assert_array_equal(a, b)
    other_epoch = augmenter.waveform(signal, RATE, 3, 0)
    other_seed = Augmenter(EVERYTHING, seed=12).waveform(signal, RATE, 2, 0)
    for different in (forward[1], other_epoch, other_seed):
        assert different.shape != forward[0].shape or not np.array_equal(different, forward[0])
    features = rng().normal(size=(80, 20)).astype(np.float32)
    np.testing.assert_array_equal(
        augmenter.features(features, epoch=1, index=5), augmenter.features(features, 1, 5)
    )


def test_augmenter_rejects_bad_arguments(make_signal):
    with pytest.raises(ConfigError, match="AugmentConfig"):
        Augmenter({"noise_p": 1.0})
    with pytest.raises(ConfigError, match="Augmenter seed"):
        Augmenter(AugmentConfig(), seed=-1)
    with pytest.raises(ConfigError, match="epoch must be a whole number"):
        Augmenter(AugmentConfig()).waveform(tone(make_signal), RATE, -1, 0)


# --- config and bad input ------------------------------------------------------------------


def test_config_round_trips_through_plain_dicts():
    config = AugmentConfig(noise_p=0.5, noise_snr_db=(5, 15), speed_p=0.2, mask_value="zero")
    data = config.to_dict()
    assert data["noise_snr_db"] == [5.0, 15.0] and isinstance(data["time_mask_width"], list)
    assert AugmentConfig.from_dict(data) == config
    assert AugmentConfig.from_dict({}) == AugmentConfig()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"noise_prob": 0.5}, "unknown augment keys: noise_prob"),
        ({"noise_p": 1.5}, r"noise_p must be a number in \[0.0, 1.0\]"),
        ({"gain_p": True}, "gain_p must be a number"),
        ({"noise_snr_db": [20, 10]}, "min <= max"),
        ({"speed": [0.1, 1.0]}, r"speed\[0\] must be a number in \[0.5, 2.0\]"),
        ({"pitch_shift": [1.0]}, r"\[min, max\] pair"),
        ({"time_masks": -1}, "time_masks must be a whole number"),
        ({"freq_mask_width": [0, 2.5]}, r"freq_mask_width\[1\] must be a whole number"),
        ({"mask_value": "noise"}, "mask_value must be one of mean, zero"),
    ],
)
def test_bad_config_raises_config_error(data, match):
    with pytest.raises(ConfigError, match=match):
        AugmentConfig.from_dict(data)


def test_from_dict_needs_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping"):
        AugmentConfig.from_dict([("noise_p", 1.0)])


def test_bad_signals_and_features_raise_precise_errors():
    with pytest.raises(AudioError, match="non-finite"):
        augment_waveform(np.array([0.0, np.nan, 0.1] * 100), RATE, EVERYTHING, rng())
    with pytest.raises(FeatureError, match=r"\[frames, dim\]"):
        augment_features(np.zeros(10), EVERYTHING, rng())
    with pytest.raises(FeatureError, match="NaN or inf"):
        augment_features(np.full((4, 4), np.inf), EVERYTHING, rng())


def test_import_needs_no_torch():
    script = "import sys, sertk.augment, sertk.classical; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", script], check=True)
