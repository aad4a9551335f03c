"""Recording level of each corpus: the median over its files of the RMS level in dBFS.

The figure behind docs/results.md ("EmoDB is recorded about 24 dB louder than RAVDESS"), which
prompted the default model's loudness normalisation:

    python scripts/corpus_levels.py emodb ravdess [--corpora ../shared/corpora]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def median_level(corpus: str, root: Path) -> tuple[int, float]:
    """``(files, median RMS level in dBFS)`` of the corpus at ``root`` (16 kHz mono)."""
    from sertk.audio import load_audio
    from sertk.corpora import scan_corpus

    levels = []
    for utterance in scan_corpus(corpus, root).utterances:
        signal, _ = load_audio(utterance.path, sampling_rate=16000)
        rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))
        levels.append(20 * np.log10(max(rms, 1e-10)))
    return len(levels), float(np.median(levels))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", help="corpus names (folders under --corpora)")
    default = (
        os.environ.get("SERTK_CORPORA") or Path(__file__).resolve().parents[2] / "shared/corpora"
    )
    parser.add_argument("--corpora", dest="root", type=Path, default=Path(default))
    args = parser.parse_args()
    for corpus in args.corpora:
        count, level = median_level(corpus, args.root / corpus)
        print(f"{corpus}: {count} files, median RMS {level:.1f} dBFS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
