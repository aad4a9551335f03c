"""Berlin EmoDB (Burkhardt et al., 2005): ``wav/03a01Fa.<ext>``.

Name: speaker (2 digits), text id (``a01``), emotion letter, version letter. Speaker gender
and age come from the official speaker table.
"""

from __future__ import annotations

import re
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, summarise

EMOTIONS = {
    "W": "angry",  # Wut / Ärger
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fearful",  # Angst
    "F": "happy",  # Freude
    "T": "sad",  # Trauer
    "N": "neutral",
}

# official speaker table: speaker -> (gender, age)
SPEAKERS = {
    "03": ("male", "31"),
    "08": ("female", "34"),
    "09": ("female", "21"),
    "10": ("male", "32"),
    "11": ("male", "26"),
    "12": ("male", "30"),
    "13": ("female", "32"),
    "14": ("female", "35"),
    "15": ("male", "25"),
    "16": ("female", "31"),
}

NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})(?P<code>[A-Z])(?P<version>[a-z])$")


def scan(root: Path) -> ScanResult:
    """Scan ``root/wav`` (or ``root`` itself when it has no ``wav`` folder)."""
    folder = root / "wav" if (root / "wav").is_dir() else root
    utterances, problems = [], []
    odd_names, unknown_codes, unknown_speakers = [], [], []
    for path in find_audio(folder):
        match = NAME.match(path.stem)
        if match is None:
            odd_names.append(path.name)
            continue
        code, speaker = match["code"], match["speaker"]
        if code not in EMOTIONS:
            unknown_codes.append(f"{path.name} ({code})")
            continue
        fields = {"emotion_code": code, "text_id": match["text"], "version": match["version"]}
        if speaker in SPEAKERS:
            fields["gender"], fields["age"] = SPEAKERS[speaker]
        else:
            unknown_speakers.append(path.name)
        utterances.append(Utterance(path.stem, str(path), EMOTIONS[code], speaker, fields))
    summarise(problems, odd_names, "files not named like 03a01Fa.wav (skipped)")
    summarise(problems, unknown_codes, "files with unknown emotion letters (skipped)")
    summarise(problems, unknown_speakers, "files from speakers not in the EmoDB table (kept)")
    return ScanResult(utterances, problems)


ADAPTER = Adapter(
    name="emodb",
    summary="Berlin EmoDB: 10 speakers, 7 emotions (German)",
    layout="ROOT/wav/03a01Fa.wav (speaker, text, emotion letter WLEAFTN, version)",
    scan=scan,
    preset="emodb7",
)
