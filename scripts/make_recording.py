"""Build the long recordings the README's pictures and claims are made from, out of corpus clips.

Two recordings, each fully determined by ``--seed`` and the corpus (nothing else is random):

``timeline``
    11 EmoDB clips (one of each of its 7 emotions, then 4 more drawn at random), each from a
    speaker drawn at random, in random order, with 1.5-3 s of digital silence before each clip
    (uniform), padded with silence to 60 s. The README's 60 s timeline claim and
    ``docs/screenshots/timeline.png`` (``sertk predict rec.wav --timeline --plot rec.png``).
``gui``
    5 RAVDESS clips of one actor (drawn at random), neutral, happy, angry, sad, fearful in that
    order (normal intensity, statement and repetition drawn at random), 1 s of digital silence
    before each and after the last. The GUI screenshots (``tests/test_gui.py::test_screenshots``).

Writes ``OUT`` (16 kHz mono 16-bit WAV) and ``OUT`` with ``.json``: the clips with their corpus
label and true start/end in the recording (seconds), the corpus and the seed. Never writes corpus
audio into the repository: give an output path outside it (``build/`` is ignored by git).

    python scripts/make_recording.py timeline -o build/rec.wav
    python scripts/make_recording.py gui -o build/shot.wav
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
GUI_EMOTIONS = ("neutral", "happy", "angry", "sad", "fearful")


def default_corpora() -> Path:
    """``$SERTK_CORPORA``, else ``../shared/corpora`` next to the repository."""
    return Path(os.environ.get("SERTK_CORPORA") or REPO.parent / "shared" / "corpora")


def _scan(corpus: str, root: Path) -> list:
    from sertk.corpora import scan_corpus

    return sorted(scan_corpus(corpus, root).utterances, key=lambda u: u.id)


def pick_timeline_clips(root: Path, rng: np.random.Generator) -> list:
    """11 EmoDB utterances: one per emotion (sorted by name), 4 more of random emotions, each
    from a random speaker, shuffled."""
    utterances = _scan("emodb", root)
    emotions = sorted({u.label for u in utterances})
    wanted = emotions + [str(x) for x in rng.choice(emotions, size=4)]
    chosen: list = []
    for emotion in wanted:
        pool = [u for u in utterances if u.label == emotion and u not in chosen]
        speakers = sorted({u.speaker for u in pool})
        speaker = speakers[rng.integers(len(speakers))]
        mine = [u for u in pool if u.speaker == speaker]
        chosen.append(mine[rng.integers(len(mine))])
    return [chosen[i] for i in rng.permutation(len(chosen))]


def pick_gui_clips(root: Path, rng: np.random.Generator) -> list:
    """One RAVDESS actor's normal-intensity clips of ``GUI_EMOTIONS``, in that order."""
    utterances = _scan("ravdess", root)
    speakers = sorted({u.speaker for u in utterances})
    speaker = speakers[rng.integers(len(speakers))]
    statement, repetition = str(rng.integers(1, 3)).zfill(2), str(rng.integers(1, 3))
    chosen = []
    for emotion in GUI_EMOTIONS:
        matches = [
            u
            for u in utterances
            if u.speaker == speaker
            and u.label == emotion
            and u.fields["intensity"] == "normal"
            and u.fields["statement"] == statement
            and u.fields["repetition"] == repetition
        ]
        if len(matches) != 1:
            raise SystemExit(f"expected one {emotion} clip of {speaker}, found {len(matches)}")
        chosen.append(matches[0])
    return chosen


def assemble(clips: list, gaps: list[float], *, total: float | None = None) -> tuple:
    """``gaps[i]`` seconds of silence before clip ``i`` (one more gap after the last when
    ``len(gaps) > len(clips)``), padded to ``total`` seconds; returns ``(signal, entries)``."""
    from sertk.audio import load_audio

    parts, entries, cursor = [], [], 0
    for index, clip in enumerate(clips):
        silence = round(gaps[index] * RATE)
        signal, _ = load_audio(clip.path, sampling_rate=RATE)
        parts += [np.zeros(silence, np.float32), signal.astype(np.float32)]
        start = cursor + silence
        cursor = start + len(signal)
        entries.append({"id": clip.id, "path": str(clip.path), "label": clip.label,
                        "speaker": clip.speaker, "start": start / RATE, "end": cursor / RATE})  # fmt: skip
    tail = round(gaps[len(clips)] * RATE) if len(gaps) > len(clips) else 0
    if total is not None:
        tail = max(tail, round(total * RATE) - cursor)
    parts.append(np.zeros(tail, np.float32))
    return np.concatenate(parts), entries


def build(kind: str, out: Path, *, corpora: Path | None = None, seed: int = 0) -> dict:
    """Write the ``kind`` recording to ``out`` (and its ``.json``); returns the description."""
    corpora = Path(corpora) if corpora is not None else default_corpora()
    rng = np.random.default_rng(seed)
    if kind == "timeline":
        corpus = "emodb"
        clips = pick_timeline_clips(corpora / corpus, rng)
        gaps = [float(x) for x in rng.uniform(1.5, 3.0, size=len(clips))]
        signal, entries = assemble(clips, gaps, total=60.0)
    elif kind == "gui":
        corpus = "ravdess"
        clips = pick_gui_clips(corpora / corpus, rng)
        signal, entries = assemble(clips, [1.0] * (len(clips) + 1))
    else:
        raise SystemExit(f"unknown recording {kind!r}: timeline or gui")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, signal, RATE, subtype="PCM_16")
    description = {"kind": kind, "corpus": corpus, "seed": seed, "sampling_rate": RATE,
                   "duration": len(signal) / RATE, "clips": entries}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(description, indent=2) + "\n", "utf-8")
    return description


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("timeline", "gui"))
    parser.add_argument("-o", "--output", type=Path, required=True, help="the WAV to write")
    parser.add_argument("--corpora", type=Path, help="default: $SERTK_CORPORA or ../shared/corpora")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    made = build(args.kind, args.output, corpora=args.corpora, seed=args.seed)
    for clip in made["clips"]:
        print(f"{clip['start']:6.2f} {clip['end']:6.2f}  {clip['label']:<9} {clip['id']}")
    print(f"{args.output}: {made['duration']:.2f} s, {len(made['clips'])} clips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
