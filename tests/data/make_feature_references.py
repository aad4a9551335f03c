"""Write ``feature_references.npz``: outputs of the hand-crafted extractors that later code must keep.

For every signal of :func:`synthetic_signals` (seeded sines, chirps, noise, silence, very short,
long, stereo, other sampling rates) and for the corpus clips in ``CORPUS_CLIPS`` (paths relative
to ``../shared/corpora``), stores the output of each extractor in ``EXTRACTORS`` (``lld``,
``functionals`` and ``emotion_functionals`` at defaults, for synthetic signals also at other
settings) as float32 arrays under ``<signal>/<extractor>``; frame-level outputs longer than
``MAX_FRAMES`` keep every ``ROW_STEP``-th row and the last one. The file loads with
``np.load(path, allow_pickle=False)``; its ``meta`` entry (a JSON string) names the commit the
features came from. ``tests/test_feature_references.py`` compares today's extractors against it.

Regenerate from a commit (its extractor modules are loaded from git, next to today's code):
``PYTHONPATH=src python tests/data/make_feature_references.py --ref a074939``. Without ``--ref``
the working tree's extractors are used. Needs ``../shared/corpora`` (or ``$SERTK_CORPORA``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "feature_references.npz"
MAX_FRAMES, ROW_STEP = 150, 5
CORPUS_CLIPS = (
    "emodb/wav/03a01Fa.flac",
    "emodb/wav/08b01Wa.flac",
    "emodb/wav/13a05Tc.flac",
    "emodb/wav/16b10Lb.flac",
    "ravdess/Actor_01/03-01-05-02-01-01-01.flac",
    "ravdess/Actor_12/03-01-04-01-02-02-12.flac",
    "ased/05Angry/a5-03-01-02-50.flac",
    "ased/01Neutral/n1-01-01-01-01.flac",
    "urdu/Angry/SM1_F10_A010.flac",
    "urdu/Sad/SF10_F1_S01.flac",
    "turev/Sound Source/Angry/1157_kz_acik.flac",
    "turev/Sound Source/Calm/1234_sk_acik.flac",
)
# name -> (class name, constructor options); corpus clips get the defaults only (CORPUS_EXTRACTORS)
EXTRACTORS = {
    "lld": ("Lld", {}),
    "lld_short_frames": ("Lld", {"frame_s": 0.02, "hop_s": 0.005, "n_mfcc": 20, "deltas": False}),
    "functionals": ("Functionals", {}),
    "functionals_subset": (
        "Functionals",
        {"lld": {"n_mfcc": 8, "deltas": False, "fmin": 80.0}, "statistics": ["p50", "std", "p1"]},
    ),
    "emotion_functionals": ("EmotionFunctionals", {}),
    "emotion_functionals_small": (
        "EmotionFunctionals",
        {"n_mels": 40, "activity_db": 25.0, "segments": 3},
    ),
}
CORPUS_EXTRACTORS = ("lld", "functionals", "emotion_functionals")


def corpora_root() -> Path:
    default = HERE.parents[2] / "shared" / "corpora"
    return Path(os.environ.get("SERTK_CORPORA", default))


def synthetic_signals() -> dict[str, tuple[np.ndarray, int]]:
    """Seeded test signals: name -> (float32 ``[samples]`` or ``[channels, samples]``, rate)."""
    rng = np.random.default_rng(14)

    def tone(freq, seconds, sr=16000, amplitude=0.5):
        t = np.arange(round(seconds * sr)) / sr
        return amplitude * np.sin(2 * np.pi * freq * t)

    def harmonic(f0_track, sr=16000):
        phase = 2 * np.pi * np.cumsum(f0_track) / sr
        return sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.2

    sr = 16000
    t2 = np.arange(2 * sr) / sr
    # "speech-like": syllables of a gliding harmonic voice, noise bursts, pauses (20 s)
    long_f0 = 140 + 40 * np.sin(2 * np.pi * 0.3 * np.arange(20 * sr) / sr)
    syllables = (np.sin(2 * np.pi * 3.0 * np.arange(20 * sr) / sr) > -0.2).astype(float)
    bursts = rng.standard_normal(20 * sr) * 0.05 * (np.arange(20 * sr) % (3 * sr) < sr // 4)
    long_signal = harmonic(long_f0) * syllables + bursts
    long_signal[5 * sr : 7 * sr] = 0.0
    signals = {
        "sine_200": tone(200, 1.0),
        "harmonic_150": harmonic(np.full(2 * sr, 150.0)),
        "chirp_120_280": 0.5 * np.sin(2 * np.pi * (120 * t2 + 40 * t2**2)),
        "noise": 0.1 * rng.standard_normal(sr),
        "silence": np.zeros(sr),
        "silence_then_tone": np.concatenate([np.zeros(sr), tone(200, 1.0)]),
        "quiet_tone_in_noise": tone(330, 1.5, amplitude=1e-4) + 1e-6 * rng.standard_normal(24000),
        "square_clipped": np.clip(3 * np.sign(tone(110, 1.0)), -1, 1) * 0.9,
        "dc_offset_tone": 0.3 + tone(250, 1.0, amplitude=0.2),
        "one_sample": np.array([0.3]),
        "ten_samples": rng.standard_normal(10) * 0.2,
        "samples_159": tone(200, 1.0)[:159],
        "samples_400": rng.standard_normal(400) * 0.2,
        "long_20s": long_signal,
        "stereo": np.stack([tone(220, 1.5), 0.1 * rng.standard_normal(24000)]),
        "rate_8000": tone(220, 1.0, sr=8000) + 0.01 * rng.standard_normal(8000),
        "rate_22050": harmonic(np.linspace(100, 300, 22050), sr=22050),
        "rate_44100": tone(180, 1.0, sr=44100),
        "rate_48000": harmonic(np.full(48000, 210.0), sr=48000) + 0.02 * rng.standard_normal(48000),
    }
    rates = {"rate_8000": 8000, "rate_22050": 22050, "rate_44100": 44100, "rate_48000": 48000}
    return {name: (s.astype(np.float32), rates.get(name, sr)) for name, s in signals.items()}


def corpus_signals(root: Path) -> dict[str, tuple[np.ndarray, int]]:
    """The clips of ``CORPUS_CLIPS`` as float32 ``[samples]`` (soundfile's decoding)."""
    import soundfile as sf

    out = {}
    for relative in CORPUS_CLIPS:
        signal, rate = sf.read(root / relative, dtype="float32")
        out[relative] = (signal, rate)
    return out


def kept_rows(frames: int) -> np.ndarray:
    """Row indices stored of a ``[frames, dim]`` output: all up to ``MAX_FRAMES``, else every
    ``ROW_STEP``-th row plus the last (the edge frames see the zero padding)."""
    if frames <= MAX_FRAMES:
        return np.arange(frames)
    return np.unique(np.append(np.arange(0, frames, ROW_STEP), frames - 1))


def build(classes: dict[str, type]) -> dict[str, object]:
    """Extractor name -> instance, from the classes ``Lld``, ``Functionals``, ``EmotionFunctionals``."""
    return {name: classes[cls](**options) for name, (cls, options) in EXTRACTORS.items()}


def compute(
    classes: dict[str, type], signals: dict, *, prefix: str, only: tuple[str, ...] | None = None
) -> dict[str, np.ndarray]:
    """``{"<prefix>/<signal>/<extractor>": features}`` (of the extractors in ``only``, or all).

    Each signal gets fresh extractors: at a074939 ``Lld`` cached its mel filters by FFT size
    alone, so one instance fed 44.1 kHz and then 48 kHz audio reused the 44.1 kHz filters.
    """
    out = {}
    for name, (signal, rate) in signals.items():
        for key, extractor in build(classes).items():
            if only is not None and key not in only:
                continue
            features = extractor(signal, rate)
            out[f"{prefix}/{name}/{key}"] = features[kept_rows(len(features))].astype(np.float32)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="git commit whose extractors to use (default: working tree)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    if args.ref:
        sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))
        from code_at_ref import modules_at

        old = modules_at(args.ref, ["sertk.features.handcrafted", "sertk.features.emotion"])
        handcrafted, emotion = old["sertk.features.handcrafted"], old["sertk.features.emotion"]
        source = args.ref
    else:
        from sertk.features import emotion, handcrafted

        source = "working tree"
    classes = {
        "Lld": handcrafted.Lld,
        "Functionals": handcrafted.Functionals,
        "EmotionFunctionals": emotion.EmotionFunctionals,
    }
    root = corpora_root()
    if not (root / "emodb").is_dir():
        print(f"corpora not found at {root}: set SERTK_CORPORA", file=sys.stderr)
        return 1
    arrays = compute(classes, synthetic_signals(), prefix="synthetic")
    arrays |= compute(classes, corpus_signals(root), prefix="corpus", only=CORPUS_EXTRACTORS)
    meta = {"source": source, "max_frames": MAX_FRAMES, "row_step": ROW_STEP}
    np.savez_compressed(args.output, meta=np.array(json.dumps(meta)), **arrays)
    size = args.output.stat().st_size / 1e6
    print(f"wrote {len(arrays)} arrays from {source} to {args.output} ({size:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
