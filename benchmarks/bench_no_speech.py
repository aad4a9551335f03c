"""The "no speech" detector (``sertk.features.voicing.check_speech``) measured: how often it
calls real speech "no speech", how often it catches non-speech, and what it costs.

- **false "no speech"**: every clip of the corpora in ``--corpora`` (default: the five shared
  ones; each folder's ``manifest.csv`` lists them), per corpus, with the clips it rejects and why;
- **detection**: synthetic non-speech signals (:func:`non_speech`: digital silence and silence
  with dither, a single sample, 10 ms, DC offsets, pure tones at several frequencies and levels,
  tones with vibrato, chirps, square and sawtooth waves, DTMF, hum, white/pink/brown noise at
  several levels, clicks and click trains), the share judged "no speech", and the speech-like
  synthetic voices (:func:`voices`) that must pass;
- **speech in noise**: every 8th clip of EmoDB and RAVDESS with white or pink noise added at
  20, 10, 5 and 0 dB SNR (against the clip's RMS), the share still heard as speech;
- **cost**: the detector's CPU time per clip next to the default model's feature extraction
  (``emotion_functionals``) on the same clips, one thread, in one run.

``--measures FILE.csv`` also writes the per-clip quantities the thresholds were chosen from
(seconds of loud, voiced and voiced-speech frames, F0 spread).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_no_speech.py [--corpora DIR] [--limit N]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from sertk.features import build_extractor
from sertk.features.voicing import check_speech

RATE = 16000
CORPORA = ("emodb", "ravdess", "ased", "urdu", "turev")


def _t(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * RATE)) / RATE


def _db(level_db: float) -> float:
    return 10 ** (level_db / 20) * np.sqrt(2)  # peak amplitude of a sine at that RMS level


def _noise(colour: str, seconds: float, seed: int) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise, unit RMS."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(round(seconds * RATE))
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(len(white), 1 / RATE)
    power = {"white": 0, "pink": 1, "brown": 2}[colour]
    spectrum[1:] /= f[1:] ** (power / 2)
    spectrum[0] = 0
    out = np.fft.irfft(spectrum, len(white))
    return out / np.sqrt(np.mean(out**2))


def non_speech() -> dict[str, np.ndarray]:
    """Named synthetic signals without speech (float32 at 16 kHz)."""
    t = _t(3.0)
    rng = np.random.default_rng(0)
    dither = rng.uniform(-1, 1, t.size) / 32768 + rng.uniform(-1, 1, t.size) / 32768
    out = {
        "digital silence 3 s": np.zeros(t.size),
        "silence with 16-bit dither": dither,
        "one sample": np.array([0.5]),
        "10 ms of noise": 0.1 * rng.standard_normal(160),
        "100 ms tone 220 Hz": 0.3 * np.sin(2 * np.pi * 220 * _t(0.1)),
        "DC 0.1": np.full(t.size, 0.1),
        "DC 0.5 + dither": 0.5 + dither,
    }
    for frequency in (50, 100, 220, 440, 1000, 3000, 7000):
        for level in (-6, -20, -40, -60):
            out[f"tone {frequency} Hz {level} dBFS"] = _db(level) * np.sin(
                2 * np.pi * frequency * t
            )
    for frequency in (150, 300):
        phase = (
            2 * np.pi * np.cumsum(frequency * 2 ** (0.5 / 12 * np.sin(2 * np.pi * 5 * t))) / RATE
        )
        out[f"tone {frequency} Hz, vibrato 5 Hz ±50 cents"] = 0.3 * np.sin(phase)
    for low, high in ((100, 1000), (100, 4000), (200, 400), (50, 8000)):
        phase = 2 * np.pi * np.cumsum(np.geomspace(low, high, t.size)) / RATE
        out[f"chirp {low}-{high} Hz"] = 0.3 * np.sin(phase)
    out["square 220 Hz"] = 0.3 * np.sign(np.sin(2 * np.pi * 220 * t))
    out["sawtooth 150 Hz"] = 0.3 * (2 * ((150 * t) % 1) - 1)
    out["DTMF 697+1209 Hz"] = 0.2 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 1209 * t))
    out["mains hum 50 Hz + harmonics"] = sum(
        0.1 / k * np.sin(2 * np.pi * 50 * k * t) for k in range(1, 8)
    )
    for colour in ("white", "pink", "brown"):
        for level in (-20, -40):
            out[f"{colour} noise {level} dBFS"] = 10 ** (level / 20) * _noise(colour, 3.0, 1)
    click = np.zeros(t.size)
    click[RATE] = 0.9
    out["one click"] = click
    for rate in (2, 10, 100):
        train = np.zeros(t.size)
        train[:: RATE // rate] = 0.9
        out[f"click train {rate} Hz"] = train
    random_clicks = np.zeros(t.size)
    random_clicks[rng.choice(t.size, 30, replace=False)] = rng.uniform(-0.9, 0.9, 30)
    out["30 random clicks"] = random_clicks
    return {name: np.asarray(x, dtype=np.float32) for name, x in out.items()}


def voice(seconds: float = 2.0, f0: float = 140.0, *, seed: int = 0) -> np.ndarray:
    """A speech-like synthetic voice: a harmonic series (1/k) with an intonation contour (±2
    semitones) and syllable-rate loudness, float32 at 16 kHz (what sertk's tests use as speech)."""
    rng = np.random.default_rng(seed)
    t = _t(seconds)
    contour = 2 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 0.5 * np.sin(
        2 * np.pi * 3.1 * t
    )
    pitch = f0 * 2 ** (contour / 12)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 1 + int(4000 // (f0 * 1.2))))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.15 * envelope * harmonics + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def voices() -> dict[str, np.ndarray]:
    """Named speech-like synthetic voices that the detector must pass."""
    return {f"synthetic voice F0 {f0} Hz": voice(2.0, f0, seed=i)
            for i, f0 in enumerate((90, 140, 220, 330))}  # fmt: skip


def corpus_clips(root: Path, names, limit: int | None):
    for name in names:
        rows = list(csv.DictReader(open(root / name / "manifest.csv", encoding="utf-8")))
        for row in rows[:limit]:
            yield name, root / name / row["path"]


def run_corpora(root: Path, names, limit, measures_path) -> dict:
    found: dict[str, dict] = {}
    writer = None
    if measures_path:
        handle = open(measures_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        writer = csv.writer(handle)
        writer.writerow(
            ["corpus", "path", "duration", "speech_s", "voiced_s", "f0_spread", "speech"]
        )
    for corpus, path in corpus_clips(root, names, limit):
        signal, rate = sf.read(path, dtype="float32", always_2d=False)
        check = check_speech(signal.T if signal.ndim == 2 else signal, rate)
        entry = found.setdefault(corpus, {"clips": 0, "no_speech": 0, "rejected": []})
        entry["clips"] += 1
        if not check.speech:
            entry["no_speech"] += 1
            entry["rejected"].append(f"{path.relative_to(root)} ({check.reason})")
        if writer:
            writer.writerow(
                [
                    corpus,
                    path.relative_to(root),
                    *(
                        round(v, 4) if isinstance(v, float) else v
                        for v in (
                            check.duration,
                            check.speech_seconds,
                            check.voiced_seconds,
                            check.f0_spread,
                        )
                    ),
                    check.speech,
                ]
            )
    for entry in found.values():
        entry["false_no_speech_pct"] = round(100 * entry["no_speech"] / entry["clips"], 3)
    return found


def run_synthetic() -> dict:
    rows = {}
    for name, signal in {**non_speech(), **voices()}.items():
        check = check_speech(signal, RATE)
        rows[name] = {"speech": check.speech, "reason": check.reason}
    caught = [not r["speech"] for n, r in rows.items() if not n.startswith("synthetic voice")]
    passed = [r["speech"] for n, r in rows.items() if n.startswith("synthetic voice")]
    return {"signals": rows, "detected": sum(caught), "non_speech": len(caught),
            "voices_passed": sum(passed), "voices": len(passed)}  # fmt: skip


def run_noisy(root: Path) -> dict:
    """False "no speech" of clean speech with noise added at several SNRs."""
    paths = [p for _, p in corpus_clips(root, ("emodb", "ravdess"), None)][::8]
    rng = np.random.default_rng(0)
    out = {}
    for colour in ("white", "pink"):
        for snr in (20, 10, 5, 0):
            missed = 0
            for path in paths:
                signal, rate = sf.read(path, dtype="float32")
                noise = _noise(colour, len(signal) / rate, int(rng.integers(1 << 30)))
                level = np.sqrt(np.mean(signal**2)) / 10 ** (snr / 20)
                noisy = signal + (level * noise[: len(signal)]).astype(np.float32)
                missed += not check_speech(noisy, rate).speech
            out[f"{colour} noise {snr} dB SNR"] = {"clips": len(paths), "no_speech": missed}
    return out


def run_cost(root: Path, clips: int = 50) -> dict:
    """CPU seconds per clip: the detector vs emotion_functionals, interleaved, same clips."""
    paths = [p for _, p in corpus_clips(root, ("emodb",), clips)]
    signals = [sf.read(p, dtype="float32")[0] for p in paths]
    extractor = build_extractor({"name": "emotion_functionals"})
    for x in signals[:3]:
        check_speech(x, RATE), extractor(x, RATE)  # warm-up
    detector = features = 0.0
    for x in signals:
        start = time.process_time()
        check_speech(x, RATE)
        detector += time.process_time() - start
        start = time.process_time()
        extractor(x, RATE)
        features += time.process_time() - start
    seconds = sum(len(x) for x in signals) / RATE
    return {"clips": len(signals), "audio_s": round(seconds, 1),
            "detector_ms_per_clip": round(1000 * detector / len(signals), 2),
            "features_ms_per_clip": round(1000 * features / len(signals), 2),
            "ratio": round(detector / features, 3)}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    parser.add_argument("--corpora", type=Path, default=default)
    parser.add_argument("--names", default=",".join(CORPORA))
    parser.add_argument("--limit", type=int, help="clips per corpus (default: all)")
    parser.add_argument("--measures", type=Path, help="write per-clip measures to this CSV")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    synthetic = run_synthetic()
    for name, row in synthetic["signals"].items():
        print(f"{name:<40} {'speech' if row['speech'] else 'no speech':<10} {row['reason']}")
    print(f"non-speech detected: {synthetic['detected']} of {synthetic['non_speech']}; "
          f"synthetic voices passed: {synthetic['voices_passed']} of {synthetic['voices']}")  # fmt: skip
    result = {"synthetic": synthetic}
    if args.corpora.is_dir():
        names = args.names.split(",")
        result["corpora"] = run_corpora(args.corpora, names, args.limit, args.measures)
        for corpus, entry in result["corpora"].items():
            print(f"{corpus:<8} {entry['clips']:>5} clips, false 'no speech' {entry['no_speech']} "
                  f"({entry['false_no_speech_pct']} %): {'; '.join(entry['rejected'][:10])}")  # fmt: skip
        result["noisy"] = run_noisy(args.corpora)
        for name, entry in result["noisy"].items():
            print(f"{name}: false 'no speech' {entry['no_speech']} of {entry['clips']}")
        result["cost"] = run_cost(args.corpora)
        print(f"cost: {result['cost']}")
    else:
        print(f"no corpora at {args.corpora}: skipped the false 'no speech' rate", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
