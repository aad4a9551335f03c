"""TurEV-DB, Turkish Emotion-Voice Database (Canpolat et al., 2020), single words:
``Sound Source/Angry/1157_kz_acik.<ext>``.

Name: speaker id, emotion code (``kz`` angry, ``hl`` sad, ``mt`` happy, ``sk`` calm), the spoken
word. Speakers become ``S1157`` ...; gender is not in the names. The folder states the emotion
too; when it disagrees with the name, the folder wins and the file is reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, folder_label, summarise

EMOTIONS = {"kz": "angry", "hl": "sad", "mt": "happy", "sk": "calm"}
FOLDERS = {"angry": "angry", "sad": "sad", "happy": "happy", "calm": "calm"}

NAME = re.compile(r"^(?P<speaker>\d+)_(?P<code>[a-z]{2})_(?P<word>.+)$", re.IGNORECASE)


def scan(root: Path) -> ScanResult:
    """Scan ``root`` (the repository folder or its ``Sound Source`` folder) for the four
    emotion folders."""
    utterances, problems, odd, unknown, moved = [], [], [], [], []
    for path in find_audio(root):
        match = NAME.match(path.stem)
        if match is None:
            odd.append(path.name)
            continue
        code = match["code"].lower()
        if code not in EMOTIONS:
            unknown.append(f"{path.name} ({code})")
            continue
        label = EMOTIONS[code]
        stated = folder_label(path.parent.name, FOLDERS)
        if stated is not None and stated != label:
            moved.append(f"{path.parent.name}/{path.name} ({label} -> {stated})")
            label = stated
        fields = {"emotion_code": code, "word": match["word"].lower()}
        speaker = f"S{match['speaker']}"
        utterances.append(Utterance(path.stem, str(path), label, speaker, fields))
    summarise(problems, odd, "files not named like 1157_kz_acik.wav (skipped)")
    summarise(problems, unknown, "files with unknown emotion codes (skipped)")
    summarise(problems, moved, "files whose name contradicts their folder (labelled by folder)")
    return ScanResult(utterances, problems)


ADAPTER = Adapter(
    name="turev",
    summary="TurEV-DB: 6 speakers, 4 emotions incl. calm, single words (Turkish)",
    layout="ROOT/Sound Source/Angry/1157_kz_acik.wav (speaker, emotion code, word)",
    scan=scan,
)
