import io
import json
import pickle
import re
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf
from bad_inputs import flac_streaminfo

from sertk.audio import (
    LevelMeter,
    Preprocess,
    audio_blocks,
    check_signal,
    crop_or_pad,
    denoise,
    frame_levels,
    load_audio,
    normalize_loudness,
    normalize_peak,
    probe_audio,
    regions_of_levels,
    resample,
    speech_frames,
    speech_regions,
    trim_silence,
)
from sertk.audio.stream import envelope
from sertk.errors import AudioError, AudioTooLongError, ConfigError

SR = 16000


def peak_frequency(signal: np.ndarray, sampling_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / sampling_rate)[np.argmax(spectrum)])


def rms_db(signal: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(signal, dtype=np.float64))))


def snr_db(clean: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((estimate - clean) ** 2)))


def bursts(spans, *, duration=3.0, amplitude=0.5, frequency=300.0) -> np.ndarray:
    """Silence with sine bursts at ``spans`` [(start_s, end_s), ...]."""
    t = np.arange(round(duration * SR)) / SR
    gate = np.zeros_like(t)
    for start, end in spans:
        gate[(t >= start) & (t < end)] = 1.0
    return (amplitude * np.sin(2 * np.pi * frequency * t) * gate).astype(np.float32)


# --- load_audio: formats, rates, channels, sources -------------------------------------------


@pytest.mark.parametrize(
    ("name", "subtype", "format", "tolerance"),
    [
        ("pcm16.wav", "PCM_16", None, 1e-4),
        ("pcm32.wav", "PCM_32", None, 1e-7),
        ("float.wav", "FLOAT", None, 0.0),
        ("u8.wav", "PCM_U8", None, 1e-2),
        ("a.flac", "PCM_16", None, 1e-4),
        ("a24.flac", "PCM_24", None, 1e-6),
        ("vorbis.ogg", "VORBIS", None, None),
        ("opus.ogg", "OPUS", "OGG", None),
        ("a.mp3", "MPEG_LAYER_III", None, None),
    ],
)
def test_load_audio_reads_each_format(make_wav, make_signal, name, subtype, format, tolerance):
    original = make_signal(frequency=440.0)
    path = make_wav(name, signal=original, subtype=subtype, format=format)
    signal, rate = load_audio(path)
    assert rate == SR and signal.dtype == np.float32 and signal.shape == original.shape
    if tolerance is not None:  # lossless: the samples come back
        np.testing.assert_allclose(signal, original, atol=tolerance)
    else:  # lossy: same tone at about the same level
        assert abs(peak_frequency(signal, rate) - 440.0) <= 2.0
        assert abs(rms_db(signal) - rms_db(original)) < 1.5


def test_integer_samples_are_scaled_exactly(make_wav):
    pcm = np.array([-32768, -16384, 0, 16384, 32767] * 100, dtype=np.int16)
    path = make_wav("int.wav", signal=pcm, subtype="PCM_16")
    signal, _ = load_audio(path)
    np.testing.assert_array_equal(signal, pcm.astype(np.float32) / 32768)


@pytest.mark.parametrize("native", [8000, 44100, 48000])
def test_load_audio_resamples_and_keeps_frequency(make_wav, native):
    path = make_wav(f"r{native}.wav", sampling_rate=native, frequency=1000.0, subtype="FLOAT")
    signal, rate = load_audio(path, sampling_rate=SR)
    assert rate == SR and signal.dtype == np.float32
    assert abs(len(signal) - SR) <= 1  # one second
    assert abs(peak_frequency(signal, rate) - 1000.0) <= 1.0
    assert abs(rms_db(signal[200:-200]) - rms_db(np.full(1, 0.5 / np.sqrt(2)))) < 0.1


def test_sampling_rate_none_keeps_the_native_rate(make_wav):
    signal, rate = load_audio(make_wav("a.wav", sampling_rate=22050), sampling_rate=None)
    assert rate == 22050 and len(signal) == 22050


def test_multichannel_downmix_and_channels_first(make_wav, make_signal):
    stereo = np.stack([make_signal(frequency=440.0), make_signal(frequency=0.0, noise=0.1)])
    path = make_wav("stereo.wav", signal=stereo, subtype="FLOAT")
    mono, _ = load_audio(path)
    np.testing.assert_allclose(mono, stereo.mean(axis=0), atol=1e-7)
    both, _ = load_audio(path, mono=False)
    assert both.shape == (2, SR) and both.flags.c_contiguous
    np.testing.assert_allclose(both, stereo, atol=1e-7)
    six = make_wav("six.flac", channels=6, noise=0.05)
    assert load_audio(six, mono=False, sampling_rate=8000)[0].shape == (6, 8000)
    assert load_audio(make_wav("m.wav"), mono=False)[0].shape == (1, SR)


def test_file_like_and_bytes_input(make_wav):
    path = make_wav("a.flac")
    expected, _ = load_audio(path)
    data = path.read_bytes()
    for source in (io.BytesIO(data), data, bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(load_audio(source)[0], expected)
    with open(path, "rb") as handle:
        np.testing.assert_array_equal(load_audio(handle)[0], expected)

    class Stream:  # an upload that cannot seek
        def __init__(self):
            self.buffer = io.BytesIO(data)

        def read(self, size=-1):
            return self.buffer.read(size)

    np.testing.assert_array_equal(load_audio(Stream())[0], expected)


def test_streaming_wav_with_unknown_data_size_loads(make_wav):
    data = bytearray(make_wav("a.wav").read_bytes())
    at = data.index(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    assert len(load_audio(bytes(data))[0]) == SR


# --- load_audio: bad input, each with its message ---------------------------------------------


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: no such file"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_empty_and_zero_frame_files(tmp_path, make_wav):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: is empty \(0 bytes\)"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match=r"is empty \(0 bytes\)"):
        load_audio(b"")
    for name in ("zero.wav", "zero.ogg", "zero.aiff"):
        path = make_wav(name, signal=np.zeros(0, dtype=np.float32))
        with pytest.raises(AudioError, match=rf"{name}: contains no audio \(0 frames\)"):
            load_audio(path)


def test_non_audio_bytes(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_bytes(b"this is a text file, not audio\n" * 50)
    with pytest.raises(AudioError, match=r"notes\.wav: not a recognised audio format"):
        load_audio(path)
    named = io.BytesIO(np.random.default_rng(0).bytes(4000))
    named.name = "upload.ogg"
    with pytest.raises(AudioError, match=r"upload\.ogg: not a recognised audio format"):
        load_audio(named)


def test_wav_truncated_inside_header_or_data(tmp_path, make_wav):
    data = make_wav("a.wav").read_bytes()  # 16-bit mono, 44-byte header
    cases = {
        10: "cut inside its header",
        30: "no 'data' chunk",
        44: "announces 16000 frames but the file holds only 0",
        44 + 2 * 8000: "announces 16000 frames but the file holds only 8000 (50%)",
    }
    for size, message in cases.items():
        path = tmp_path / f"cut{size}.wav"
        path.write_bytes(data[:size])
        with pytest.raises(AudioError, match=rf"cut{size}\.wav: truncated .*{re.escape(message)}"):
            load_audio(path)


CUT_CASES = {
    "a.flac": (None, "audio data is corrupt or truncated; decoding failed"),
    "a.ogg": (None, "truncated or damaged OGG stream; it ends inside a page"),
    "opus.ogg": ("OPUS", "cannot be decoded; it is corrupt, truncated or unsupported"),
    "a.mp3": (None, "truncated or corrupt: its header announces 16000 frames but only"),
}


# MP3 lengths are estimates, so only a cut of more than 5 % is caught there
@pytest.mark.parametrize(
    ("name", "fraction"),
    [(name, f) for name in CUT_CASES for f in (0.5, 0.95) if name != "a.mp3"]
    + [("a.mp3", 0.5), ("a.mp3", 0.9)],
)
def test_compressed_file_cut_mid_stream(tmp_path, make_wav, name, fraction):
    subtype, message = CUT_CASES[name]
    data = make_wav(name, noise=0.1, subtype=subtype).read_bytes()
    path = tmp_path / f"cut_{name}"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(AudioError, match=rf"cut_{name}: {re.escape(message)}"):
        load_audio(path)


def test_no_raw_exception_escapes_on_cut_or_damaged_files(tmp_path, make_wav):
    rng = np.random.default_rng(1)
    for name in ("a.wav", "a.flac", "a.ogg", "a.mp3"):
        data = make_wav(name, noise=0.1, duration=0.5).read_bytes()
        for size in np.linspace(1, len(data) - 1, 12).astype(int):
            damaged = bytearray(data)
            damaged[size:] = rng.bytes(len(data) - size)
            for variant in (data[:size], bytes(damaged)):
                try:
                    signal, _ = load_audio(variant)
                except AudioError:
                    continue
                assert signal.dtype == np.float32 and np.isfinite(signal).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(make_wav, make_signal, bad):
    signal = make_signal()
    signal[8000] = bad
    path = make_wav("bad.wav", signal=signal, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"bad\.wav: contains 1 non-finite .* at 0\.500 s"):
        load_audio(path)


@pytest.mark.parametrize("header_rate", [500, 999, 400_000, 1_000_000])
def test_absurd_header_sampling_rate(make_wav, header_rate):
    path = make_wav("odd.wav", sampling_rate=header_rate, duration=0.05)
    with pytest.raises(AudioError, match=rf"odd\.wav: its header says {header_rate} Hz, outside"):
        load_audio(path)


@pytest.mark.parametrize("requested", [0, 999, 384_001, 16000.5, True, "16k"])
def test_absurd_requested_sampling_rate(make_wav, requested):
    with pytest.raises(AudioError, match="requested sampling_rate must be a whole number of Hz"):
        load_audio(make_wav(), sampling_rate=requested)


def test_wrong_source_types(make_wav):
    path = make_wav()
    with open(path, encoding="latin-1") as text, pytest.raises(AudioError, match="text mode"):
        load_audio(text)
    with pytest.raises(AudioError, match="cannot read audio from a int"):
        load_audio(3)
    closed = io.BytesIO(path.read_bytes())
    closed.close()
    with pytest.raises(AudioError, match="<file-like object>: cannot be read"):
        load_audio(closed)


# --- check_signal and resample ----------------------------------------------------------------


def test_check_signal_converts_and_copies():
    source = np.linspace(-1, 1, 100)
    out = check_signal(source, SR)
    assert out.dtype == np.float32 and not np.shares_memory(out, source)
    pcm = check_signal(np.array([-32768, 0, 16384], dtype=np.int16), SR)
    np.testing.assert_array_equal(pcm, [-1.0, 0.0, 0.5])
    np.testing.assert_array_equal(check_signal(np.array([0, 128], np.uint8), SR), [-1.0, 0.0])
    assert check_signal([[0.1, 0.2], [0.3, 0.4]], 8000).shape == (2, 2)


@pytest.mark.parametrize(
    ("signal", "rate", "message"),
    [
        (np.zeros(10), 100, "clip: sampling_rate must be"),
        (np.zeros(10, dtype=complex), SR, "dtype complex128"),
        (np.array(["a", "b"]), SR, "dtype <U1"),
        (np.zeros(10, dtype=np.int64), SR, "dtype int64"),
        (np.zeros((1, 2, 10)), SR, r"shape \[samples\] or \[channels, samples\], got \(1, 2, 10\)"),
        (np.zeros((48000, 2)), SR, "pass its transpose"),
        (np.zeros(0), SR, "is empty"),
        (np.array([0.0, np.nan, np.inf]), SR, "contains 2 non-finite samples"),
        ([[0.0, 1.0], [2.0]], SR, "cannot be converted"),
    ],
)
def test_check_signal_rejects(signal, rate, message):
    with pytest.raises(AudioError, match=message):
        check_signal(signal, rate, name="clip")


def test_resample_shapes_and_rates(make_signal):
    stereo = make_signal(channels=2, noise=0.1, sampling_rate=48000)
    out = resample(stereo, 48000, SR)
    assert out.shape == (2, SR) and out.dtype == np.float32
    same = resample(stereo, 48000, 48000)
    np.testing.assert_array_equal(same, stereo)
    assert not np.shares_memory(same, stereo)
    with pytest.raises(AudioError, match="target_sr must be"):
        resample(stereo, 48000, 10)


# --- pure preprocessing -----------------------------------------------------------------------


def test_crop_or_pad_start_and_center():
    signal = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(crop_or_pad(signal, 4), [1, 2, 3, 4])
    np.testing.assert_array_equal(crop_or_pad(signal, 12)[-3:], [10, 0, 0])
    np.testing.assert_array_equal(crop_or_pad(signal, 4, policy="center"), [4, 5, 6, 7])
    padded = crop_or_pad(signal, 14, policy="center")
    np.testing.assert_array_equal(padded[:3], [0, 0, 1])
    np.testing.assert_array_equal(padded[-3:], [10, 0, 0])
    stereo = np.stack([signal, -signal])
    assert crop_or_pad(stereo, 3, policy="center").tolist() == [[4, 5, 6], [-4, -5, -6]]
    out = crop_or_pad(signal, 10)
    out[0] = 99
    assert signal[0] == 1  # no aliasing


def test_crop_or_pad_random_is_seeded_and_in_bounds():
    signal = np.arange(100, dtype=np.float32)
    offsets = set()
    for seed in range(20):
        crop = crop_or_pad(signal, 10, policy="random", rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(np.diff(crop), 1)  # a contiguous slice
        offsets.add(int(crop[0]))
        again = crop_or_pad(signal, 10, policy="random", rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(crop, again)
    assert len(offsets) > 5 and min(offsets) >= 0 and max(offsets) <= 90
    padded = crop_or_pad(signal, 120, policy="random", rng=np.random.default_rng(0))
    np.testing.assert_array_equal(padded[:100], signal)


def test_crop_or_pad_rejects_bad_options():
    signal = np.zeros(10, dtype=np.float32)
    with pytest.raises(ConfigError, match="needs rng"):
        crop_or_pad(signal, 5, policy="random")
    with pytest.raises(ConfigError, match="must be one of start, center, random; got 'middle'"):
        crop_or_pad(signal, 5, policy="middle")
    for length in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="positive number of samples"):
            crop_or_pad(signal, length)
    with pytest.raises(AudioError, match="expected float samples"):
        crop_or_pad(np.zeros(10, dtype=np.int16), 5)


def test_normalize_peak(make_signal):
    stereo = np.stack([make_signal(amplitude=0.2), make_signal(amplitude=0.1)])
    out = normalize_peak(stereo)
    assert np.max(np.abs(out)) == pytest.approx(0.99, rel=1e-6)
    np.testing.assert_allclose(out[1], out[0] / 2, atol=1e-6)  # channels scaled together
    assert not normalize_peak(np.zeros(10, dtype=np.float32)).any()
    with pytest.raises(ConfigError, match="peak must be"):
        normalize_peak(stereo, peak=0.0)


def test_normalize_loudness_hits_target_and_guards_silence(make_signal):
    out = normalize_loudness(make_signal(amplitude=0.01, noise=0.001), SR, target_db=-23.0)
    assert rms_db(out) == pytest.approx(-23.0, abs=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        silent = normalize_loudness(np.zeros(SR, dtype=np.float32), SR)
    assert silent.dtype == np.float32 and not silent.any()
    with pytest.raises(ConfigError, match="target_db must be"):
        normalize_loudness(out, SR, target_db=3.0)


def test_trim_silence_keeps_the_sound_and_a_margin():
    signal = bursts([(1.0, 2.0)], duration=3.0)
    signal += np.random.default_rng(0).normal(0, 1e-4, signal.shape).astype(np.float32)  # -80 dB
    trimmed = trim_silence(signal, SR, margin_ms=100.0)
    assert 1.15 * SR < len(trimmed) < 1.3 * SR
    start = int(np.flatnonzero(np.abs(trimmed) > 0.01)[0])
    assert abs(start - 0.1 * SR) < 0.03 * SR
    silence = np.zeros(SR, dtype=np.float32)
    np.testing.assert_array_equal(trim_silence(silence, SR), silence)


def test_speech_regions_on_bursts():
    regions = speech_regions(bursts([(0.5, 1.0), (1.8, 2.5)]), SR)
    assert len(regions) == 2 and all(isinstance(x, float) for r in regions for x in r)
    for (start, end), (true_start, true_end) in zip(regions, [(0.5, 1.0), (1.8, 2.5)], strict=True):
        assert abs(start - true_start) < 0.03 and abs(end - true_end) < 0.03
    merged = speech_regions(bursts([(0.5, 1.0), (1.1, 1.5)]), SR)
    assert len(merged) == 1 and merged[0][1] == pytest.approx(1.5, abs=0.03)
    click = speech_regions(bursts([(0.5, 1.0), (2.0, 2.03)]), SR)
    assert len(click) == 1  # 30 ms is shorter than min_duration
    assert speech_regions(np.zeros(3 * SR, dtype=np.float32), SR) == []
    faint = np.random.default_rng(0).normal(0, 1e-4, 3 * SR).astype(np.float32)
    assert speech_regions(faint, SR) == []  # below the absolute floor


def test_speech_regions_find_bursts_in_noise():
    noise = np.random.default_rng(0).normal(0, 0.05, 3 * SR).astype(np.float32)  # ~13 dB SNR
    regions = speech_regions(bursts([(0.5, 1.0), (1.8, 2.5)], amplitude=0.3) + noise, SR)
    assert len(regions) == 2
    assert abs(regions[0][0] - 0.5) < 0.05 and abs(regions[1][1] - 2.5) < 0.05
    with pytest.raises(ConfigError, match="threshold_db must be"):
        speech_regions(noise, SR, threshold_db=10.0)
    for bad, message in [({"floor_db": 3.0}, "floor_db must be"), ({"margin_db": -1}, "margin_db")]:
        with pytest.raises(ConfigError, match=message):
            speech_regions(noise, SR, **bad)


def two_speakers(gap_db: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Two "speakers" (300 Hz bursts with a 4 Hz syllable rhythm) ``gap_db`` apart, over a
    -80 dBFS background: the loud one at 1-3 s, stressing one syllable 12 dB louder (at 2.0 s),
    the quiet one at 4-6 s."""
    t = np.arange(7 * SR) / SR
    rhythm = 0.55 + 0.45 * np.cos(2 * np.pi * 4 * t)
    rhythm = np.where((t >= 2.0) & (t < 2.25), 4 * rhythm, rhythm)
    voice = 0.2 * np.sin(2 * np.pi * 300 * t) * rhythm
    level = np.where((t >= 1) & (t < 3), 1.0, 0.0) + np.where(
        (t >= 4) & (t < 6), 10 ** (-gap_db / 20), 0.0
    )
    noise = np.random.default_rng(0).normal(0, 1e-4, t.size)
    return (voice * level + noise).astype(np.float32), [(1.0, 3.0), (4.0, 6.0)]


@pytest.mark.parametrize("gap_db", [35.0, 50.0])
def test_speech_regions_keep_a_speaker_35_db_quieter(gap_db):
    signal, truth = two_speakers(gap_db)
    regions = speech_regions(signal, SR)
    assert len(regions) == 2
    for (start, end), (true_start, true_end) in zip(regions, truth, strict=True):
        assert abs(start - true_start) < 0.03 and abs(end - true_end) < 0.03
    assert speech_regions(signal, SR, floor_db=-40.0) == regions[:1]  # the absolute floor
    # the old rule, kept for one release: within 40 dB of the loudest frame, the stressed
    # syllable's, loses the quiet speaker
    with pytest.warns(DeprecationWarning, match="relative to the loudest frame drops quiet"):
        assert speech_regions(signal, SR, threshold_db=-40.0) == regions[:1]
    with pytest.warns(DeprecationWarning, match="called margin_db now"):
        assert speech_regions(signal, SR, noise_margin_db=10.0) == regions


def test_speech_regions_learn_a_steady_background():
    """A loud hum (-29 dBFS) is background once the estimate has settled on it; bursts 15 dB
    above it are speech. (The relative-to-the-loudest rule called all of it one region.)"""
    t = np.arange(12 * SR) / SR
    hum = 0.05 * np.sin(2 * np.pi * 60 * t)
    gate = np.zeros_like(t)
    for start in (2.0, 5.0, 8.0):
        gate[(t >= start) & (t < start + 1.5)] = 1.0
    signal = (hum + 0.3 * np.sin(2 * np.pi * 700 * t) * gate).astype(np.float32)
    regions = speech_regions(signal, SR)
    assert [(round(s, 1), round(e, 1)) for s, e in regions] == [(2.0, 3.5), (5.0, 6.5), (8.0, 9.5)]


def test_speech_frames_run_block_by_block_with_a_carried_noise_floor():
    signal, _ = two_speakers(35.0)
    levels, frame, hop = frame_levels(signal, SR)
    assert levels.dtype == np.float32 and (frame, hop) == (400, 160)
    start = -85.0  # the estimate the first block starts from
    whole, noise = speech_frames(levels, hop_s=0.01, noise_db=start)
    assert np.array_equal(whole, speech_frames(levels, hop_s=0.01)[0])  # the same as afresh
    carried, pieces = start, []
    for first in range(0, len(levels), 37):
        active, estimate = speech_frames(levels[first : first + 37], hop_s=0.01, noise_db=carried)
        pieces.append(active)
        carried = float(estimate[-1])
    assert np.array_equal(np.concatenate(pieces), whole)
    assert noise[-1] == pytest.approx(carried, abs=1e-4)


def test_speech_detection_works_in_float32_without_float64_copies():
    """10 minutes of audio (38 MB of float32): the detector's working memory stays a small
    fraction of it (the old one held three float64 copies, about 300 MB)."""
    import tracemalloc

    signal, _ = two_speakers(20.0)
    long = np.tile(signal, 86)[: 600 * SR]
    tracemalloc.start()
    try:
        regions = speech_regions(long, SR)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(regions) == 2 * 86  # two speakers in each 7 s copy
    assert peak < long.nbytes / 8


def test_denoise_improves_snr_and_keeps_shape():
    clean = bursts([(0.0, 0.5), (1.0, 1.5), (2.0, 2.5)], amplitude=0.3, frequency=1000.0)
    noisy = clean + np.random.default_rng(0).normal(0, 0.05, clean.shape).astype(np.float32)
    out = denoise(noisy, SR)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert snr_db(clean, out) > snr_db(clean, noisy) + 4.0
    stereo = denoise(np.stack([noisy, noisy]), SR)
    np.testing.assert_allclose(stereo[1], out, atol=1e-6)
    assert not denoise(np.zeros(SR, dtype=np.float32), SR).any()
    short = np.ones(100, dtype=np.float32)
    np.testing.assert_array_equal(denoise(short, SR), short)
    with pytest.raises(ConfigError, match="over_subtraction must be"):
        denoise(noisy, SR, over_subtraction=-1.0)


# --- Preprocess -------------------------------------------------------------------------------


def test_preprocess_defaults_resample_downmix_and_pad(make_signal):
    chain = Preprocess()
    assert chain.num_samples == 48000
    stereo = make_signal(channels=2, sampling_rate=44100, frequency=1000.0)
    out = chain(stereo, 44100)
    assert out.shape == (48000,) and out.dtype == np.float32
    assert abs(peak_frequency(out[:SR], SR) - 1000.0) <= 1.0
    assert not out[SR + 10 :].any()  # "start" policy pads at the end


def test_preprocess_round_trip_and_defaults():
    chain = Preprocess(duration=2, crop="random", normalize="loudness", trim_silence=True)
    data = chain.to_dict()
    assert json.loads(json.dumps(data)) == data and data["duration"] == 2.0
    assert Preprocess.from_dict(data) == chain
    assert Preprocess.from_dict({"duration": None}) == Preprocess(duration=None)
    with pytest.raises(ConfigError, match="unknown Preprocess keys: foo; allowed: sampling_rate"):
        Preprocess.from_dict({"foo": 1})
    with pytest.raises(ConfigError, match="must be a mapping"):
        Preprocess.from_dict([("duration", 1.0)])
    with pytest.raises(AttributeError):
        chain.duration = 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sampling_rate", 10),
        ("sampling_rate", "16000"),
        ("duration", -1.0),
        ("duration", 0),
        ("duration", float("nan")),
        ("duration", "3"),
        ("crop", "middle"),
        ("normalize", "rms"),
        ("trim_silence", "yes"),
        ("denoise", 1),
    ],
)
def test_preprocess_rejects_bad_fields(field, value):
    with pytest.raises(ConfigError, match=f"Preprocess.{field} must be"):
        Preprocess.from_dict({field: value})


def test_preprocess_random_crop_only_when_training():
    signal = np.arange(5 * SR, dtype=np.float32) / (5 * SR)
    chain = Preprocess(duration=1.0, crop="random")
    inference = chain(signal, SR)
    np.testing.assert_array_equal(inference, crop_or_pad(signal, SR, policy="center"))
    starts = {
        float(chain(signal, SR, train=True, rng=np.random.default_rng(s))[0]) for s in range(5)
    }
    assert len(starts) == 5
    with pytest.raises(ConfigError, match="needs rng"):
        chain(signal, SR, train=True)
    assert Preprocess(duration=None)(signal, SR).shape == signal.shape


def test_preprocess_trims_and_normalizes_before_cropping():
    signal = bursts([(1.0, 2.0)], amplitude=0.1)
    out = Preprocess(duration=0.5, trim_silence=True, normalize="peak")(signal, SR)
    assert np.max(np.abs(out)) == pytest.approx(0.99, rel=1e-4)
    assert np.abs(out[: int(0.08 * SR)]).max() < 1e-6  # the 100 ms margin, then sound
    assert np.abs(out[int(0.12 * SR) :]).min() < 0.99 and np.abs(out[int(0.12 * SR) :]).max() > 0.9
    denoised = Preprocess(duration=None, denoise=True)(signal, SR)
    assert denoised.shape == signal.shape
    with pytest.raises(AudioError, match="signal: contains 1 non-finite"):
        Preprocess()(np.array([0.0, np.nan]), SR)


# --- import cost and real corpora -------------------------------------------------------------


def test_import_is_light():
    code = (
        "import sys, sertk.audio; print(sorted({'scipy', 'torch', 'librosa'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def quiet_speaker_recording(corpora_dir) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Two EmoDB speakers (speaker 03 angry, speaker 08 fearful), the second attenuated by 35 dB,
    over a -90 dBFS background: ``(recording, quiet clip at full level, where it starts, where
    it ends)`` (seconds)."""
    loud, _ = load_audio(corpora_dir / "emodb" / "wav" / "03a01Wa.flac")
    quiet, _ = load_audio(corpora_dir / "emodb" / "wav" / "08a01Ab.flac")
    rng = np.random.default_rng(0)
    gap = lambda seconds: rng.normal(0, 3e-5, round(seconds * SR)).astype(np.float32)  # noqa: E731
    attenuated = quiet * np.float32(10 ** (-35 / 20))
    recording = np.concatenate([gap(1.0), loud, gap(1.5), attenuated, gap(1.0)])
    start = 1.0 + len(loud) / SR + 1.5
    return recording, quiet, start, start + len(quiet) / SR


@pytest.mark.corpora
def test_a_real_speaker_35_db_quieter_keeps_its_speech(corpora_dir):
    """Two EmoDB speakers, the second attenuated by 35 dB, with background noise between them:
    both are speech, the quiet one over the stretch it has when heard alone at full level."""
    recording, quiet, start, _ = quiet_speaker_recording(corpora_dir)
    rng = np.random.default_rng(1)
    gap = lambda seconds: rng.normal(0, 3e-5, round(seconds * SR)).astype(np.float32)  # noqa: E731
    regions = speech_regions(recording, SR, min_duration=0.5)
    assert len(regions) == 2
    alone = speech_regions(np.concatenate([gap(1.0), quiet, gap(1.0)]), SR, min_duration=0.5)
    (alone_start, alone_end), (found_start, found_end) = alone[0], regions[1]
    assert found_start - start >= alone_start - 1.0 - 0.15  # within 0.15 s of the loud version
    assert found_end - start <= alone_end - 1.0 + 0.15
    covered = (found_end - found_start) / (alone_end - alone_start)
    assert covered > 0.85
    # the rule before (within 40 dB of the loudest frame, at least -60 dBFS) lost that speaker:
    # fragments of 0.4 and 0.25 s, under the timeline's shortest speech region (0.5 s)
    with pytest.warns(DeprecationWarning):
        old = speech_regions(recording, SR, threshold_db=-40.0, floor_db=-60.0)
    assert sum(end - begin for begin, end in old if begin >= start - 0.2) < 0.7
    with pytest.warns(DeprecationWarning):
        assert speech_regions(recording, SR, threshold_db=-40, floor_db=-60, min_duration=0.5) == [
            old[0]
        ]


@pytest.mark.corpora
def test_real_corpus_files_load_with_speech(corpora_dir):
    files = [
        *sorted((corpora_dir / "emodb").rglob("*.flac"))[:2],
        *sorted((corpora_dir / "ravdess").rglob("*.flac"))[:2],
    ]
    if not files:
        pytest.skip("no FLAC files in the corpora folder")
    for path in files:
        signal, rate = load_audio(path)
        assert rate == SR and signal.ndim == 1 and np.abs(signal).max() > 0.01
        regions = speech_regions(signal, rate)
        assert regions and all(0.0 <= s < e <= len(signal) / rate for s, e in regions)


# --- header checks, the duration limit, block-wise reading ------------------------------------


@pytest.mark.parametrize(
    ("name", "offset", "fmt", "value", "message"),
    [
        ("zero.wav", 24, "<I", 0, r"its header says 0 Hz, outside the supported sample rates"),
        ("one.wav", 24, "<I", 1, r"its header says 1 Hz, outside the supported sample rates"),
        ("huge.wav", 24, "<I", 4_000_000_000, r"its header says 4000000000 Hz, outside the"),
        ("many.wav", 22, "<H", 65535, r"its header says 65535 channels; sertk reads 1 to 64"),
        ("none.wav", 22, "<H", 0, r"its header says 0 channels"),
    ],
)
def test_lying_wav_headers_are_refused_naming_the_field(
    make_wav, name, offset, fmt, value, message
):
    data = bytearray(make_wav(name).read_bytes())
    data[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    with pytest.raises(AudioError, match=rf"{re.escape(name)}: {message}"):
        load_audio(_named(bytes(data), name))


def _named(data: bytes, name: str) -> io.BytesIO:
    source = io.BytesIO(data)
    source.name = name
    return source


def test_lying_flac_ogg_and_aiff_headers(make_wav):
    flac = make_wav("a.flac").read_bytes()
    for rate in (0, 1):
        with pytest.raises(AudioError, match=rf"says {rate} Hz, outside the supported sample"):
            load_audio(flac_streaminfo(flac, rate=rate))
    ogg = bytearray(make_wav("a.ogg").read_bytes())
    ogg[ogg.index(b"\x01vorbis") + 11] = 0  # the identification header's channel count
    with pytest.raises(AudioError, match="its header says 0 channels"):
        load_audio(bytes(ogg))
    aiff = bytearray(make_wav("a.aiff").read_bytes())
    at = aiff.index(b"COMM") + 8
    aiff[at + 8 : at + 18] = bytes(10)  # an 80-bit float 0: a 0 Hz sample rate
    with pytest.raises(AudioError, match="its header says 0 Hz"):
        load_audio(bytes(aiff))


def test_a_file_over_max_duration_is_refused_from_its_header(make_wav):
    """The FLAC holds 1 s but announces 3 h: with a 1 h limit it is refused before any decoding
    (decoding would find it cut); without a limit low enough, decoding finds the truth."""
    data = flac_streaminfo(make_wav("a.flac").read_bytes(), total=3 * 3600 * SR)
    with pytest.raises(
        AudioTooLongError, match=r"announces 3:00:00 \(10800 s\), longer than the limit of 1:00:00"
    ) as error:
        load_audio(data, max_duration=3600)
    assert (error.value.duration, error.value.limit) == (10800.0, 3600.0)
    assert pickle.loads(pickle.dumps(error.value)).limit == 3600.0  # crosses process pools
    with pytest.raises(AudioError, match="corrupt or truncated"):
        load_audio(data)  # 3 h is under the default 4 h: decoded, found cut
    assert probe_audio(data, max_duration=None).duration == 3 * 3600


def test_a_file_that_decodes_past_the_limit_is_stopped_there(tmp_path):
    """A FLAC whose header does not say its length (0 samples: unknown) holds 10 s."""
    path = tmp_path / "unknown.flac"
    sf.write(path, np.zeros(10 * SR, np.float32) + 0.01, SR)
    path.write_bytes(flac_streaminfo(path.read_bytes(), total=0))
    assert probe_audio(path).duration is None
    with pytest.raises(
        AudioTooLongError,
        match=r"decoding passed .* \(more than its header announced\), longer than the limit of 5\.0 s",
    ):
        load_audio(path, max_duration=5)
    assert len(load_audio(path, max_duration=None)[0]) == 10 * SR
    with pytest.raises(AudioError, match="max_duration must be a number of seconds > 0"):
        load_audio(path, max_duration=-1)


def test_blocks_equal_the_whole_file_resampled_and_downmixed(make_wav, make_signal):
    stereo = make_signal(duration=70.0, channels=2, noise=0.1, sampling_rate=44100)
    path = make_wav("long.flac", signal=stereo, sampling_rate=44100, subtype="PCM_24")
    whole, _ = load_audio(path)
    stream = audio_blocks(path, sampling_rate=SR)
    blocks = list(stream)
    assert len(blocks) > 3 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)
    assert stream.duration == pytest.approx(70.0) and np.array_equal(
        np.concatenate(list(stream)), np.concatenate(blocks)
    )
    memory = audio_blocks(stereo, source_rate=44100, sampling_rate=SR)
    np.testing.assert_allclose(
        np.concatenate(list(memory)), resample(stereo.mean(axis=0), 44100, SR), atol=1e-6
    )
    with pytest.raises(AudioError, match="needs its sampling_rate"):
        audio_blocks(stereo)


def test_nan_in_a_later_block_says_where(make_wav, make_signal):
    signal = make_signal(duration=70.0, frequency=300.0)
    signal[65 * SR] = np.nan
    path = make_wav("late.wav", signal=signal, subtype="FLOAT")
    with pytest.raises(
        AudioError,
        match=r"contains 1 non-finite samples \(NaN or inf\) in its first 65\.5 s, the first at 65\.000 s",
    ):
        load_audio(path)


@pytest.mark.parametrize("size", [1, 399, 4096, 100_003])
def test_level_meter_gives_the_frames_of_one_call(size):
    signal = np.random.default_rng(size).normal(0, 0.1, 160_123).astype(np.float32)
    meter = LevelMeter(SR)
    for start in range(0, len(signal), size):
        meter.add(signal[start : start + size])
    expected, frame, hop = frame_levels(signal, SR)
    assert np.array_equal(meter.levels(), expected) and (meter.frame, meter.hop) == (frame, hop)
    empty = LevelMeter(SR)
    assert len(empty.levels()) == 0
    empty.add(signal[:10])
    assert np.array_equal(empty.levels(), frame_levels(signal[:10], SR)[0])


def test_speech_regions_block_by_block_equal_one_call():
    signal = np.concatenate([two_speakers(35.0)[0]] * 40)  # 4.4 min: several decision blocks
    levels, frame, hop = frame_levels(signal, SR)
    options = {"frame": frame, "hop": hop, "sampling_rate": SR, "samples": len(signal)}
    assert regions_of_levels(levels, **options, min_duration=0.1) == speech_regions(signal, SR)
    assert len(speech_regions(signal, SR)) == 80
    active, _ = speech_frames(levels, hop_s=0.01)
    from sertk.audio.speech import DECIDE_BLOCK, frame_regions

    assert len(levels) > DECIDE_BLOCK / 3
    regions = frame_regions(active, **options, merge_gap=0.3, min_duration=0.1)
    assert regions == speech_regions(signal, SR)  # the decisions of one speech_frames call


def test_envelope_keeps_the_outline_at_1_khz():
    signal = np.zeros(10 * SR, np.float32)
    signal[5 * SR : 5 * SR + 100] = np.linspace(-0.5, 0.8, 100)
    outline = envelope(audio_blocks(signal, source_rate=SR, sampling_rate=SR))
    assert (
        len(outline) == 10_000
        and outline.max() == pytest.approx(0.8)
        and outline.min() == pytest.approx(-0.5)
    )
    assert np.flatnonzero(outline)[0] // 1000 == 5  # at 5 s
