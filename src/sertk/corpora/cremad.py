"""CREMA-D (Cao et al., 2014): ``AudioWAV/1001_DFA_ANG_XX.<ext>``.

Name: actor (4 digits), sentence code, emotion (ANG DIS FEA HAP NEU SAD), intensity (LO MD HI,
XX unspecified). Actor gender and age come from ``VideoDemographics.csv`` when it is in
``root`` (optional).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, summarise

EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
INTENSITIES = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}

NAME = re.compile(
    r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$"
)


def scan(root: Path) -> ScanResult:
    """Scan ``root/AudioWAV`` (or ``root`` itself when it has no ``AudioWAV`` folder)."""
    folder = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    problems: list[str] = []
    demographics = _demographics(root / "VideoDemographics.csv", problems)
    utterances, odd, unknown = [], [], []
    for path in find_audio(folder):
        match = NAME.match(path.stem)
        if match is None:
            odd.append(path.name)
            continue
        code, level, sentence = match["emotion"], match["level"], match["sentence"]
        if code not in EMOTIONS or level not in INTENSITIES or sentence not in SENTENCES:
            unknown.append(path.name)
            continue
        fields = {
            "emotion_code": code,
            "intensity": INTENSITIES[level],
            "sentence": sentence,
            "text": SENTENCES[sentence],
            **demographics.get(match["actor"], {}),
        }
        utterances.append(Utterance(path.stem, str(path), EMOTIONS[code], match["actor"], fields))
    summarise(problems, odd, "files not named like 1001_DFA_ANG_XX.wav (skipped)")
    summarise(problems, unknown, "files with unknown emotion/intensity/sentence codes (skipped)")
    return ScanResult(utterances, problems)


def _demographics(path: Path, problems: list[str]) -> dict[str, dict[str, str]]:
    """Actor id -> {gender, age} from VideoDemographics.csv, or {} when absent/unreadable."""
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        problems.append(f"cannot read {path.name} ({error}); actor gender/age left out")
        return {}
    table = {}
    for row in rows:
        actor = (row.get("ActorID") or "").strip()
        if actor:
            entry = {
                "gender": (row.get("Sex") or "").strip().lower(),
                "age": (row.get("Age") or "").strip(),
            }
            table[actor] = {k: v for k, v in entry.items() if v}
    if not table:
        problems.append(f"{path.name} has no ActorID/Sex/Age rows; actor gender/age left out")
    return table


ADAPTER = Adapter(
    name="cremad",
    summary="CREMA-D: 91 actors, 6 emotions, 12 sentences (English)",
    layout="ROOT/AudioWAV/1001_DFA_ANG_XX.wav (+ optional ROOT/VideoDemographics.csv)",
    scan=scan,
    preset="common",
)
