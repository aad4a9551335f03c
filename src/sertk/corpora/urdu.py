"""URDU (Latif et al., 2018), natural speech from Urdu talk shows: ``Angry/SM1_F10_A010.<ext>``.

Name: ``S`` + gender (M/F) + speaker number, ``F`` + file number, emotion letter (A angry, H
happy, N neutral, S sad) + running number. The speaker ids (``SM1``, ``SF10``, ...) are kept as
the names give them, but they are approximate: 29 ids where the paper reports 38 speakers, and 26
of the 29 ids have clips of a single emotion only. Normalising features per speaker would erase
the label there, so every utterance also records ``fields["corpus"] = "urdu"``: a unit for
statistics (speaker-adapted protocols) that holds all four emotions.

The folder states the emotion too; when it disagrees with the name, the folder wins and the file
is reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, folder_label, summarise

EMOTIONS = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}
FOLDERS = {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"}
GENDERS = {"M": "male", "F": "female"}

NAME = re.compile(
    r"^S(?P<gender>[MF])(?P<speaker>\d+)_F(?P<file>\d+)_(?P<code>[AHNS])(?P<number>\d+)$",
    re.IGNORECASE,
)


def scan(root: Path) -> ScanResult:
    """Scan the four emotion folders below ``root`` (``Angry/`` ``Happy/`` ``Neutral/`` ``Sad/``)."""
    utterances, problems, odd, moved = [], [], [], []
    for path in find_audio(root):
        match = NAME.match(path.stem)
        if match is None:
            odd.append(path.name)
            continue
        gender, code = match["gender"].upper(), match["code"].upper()
        label = EMOTIONS[code]
        stated = folder_label(path.parent.name, FOLDERS)
        if stated is not None and stated != label:
            moved.append(f"{path.parent.name}/{path.name} ({label} -> {stated})")
            label = stated
        fields = {
            "emotion_code": code,
            "gender": GENDERS[gender],
            "file_number": str(int(match["file"])),
            "corpus": "urdu",
        }
        speaker = f"S{gender}{int(match['speaker'])}"
        utterances.append(Utterance(path.stem, str(path), label, speaker, fields))
    summarise(problems, odd, "files not named like SM1_F10_A010.wav (skipped)")
    summarise(problems, moved, "files whose name contradicts their folder (labelled by folder)")
    return ScanResult(utterances, problems)


ADAPTER = Adapter(
    name="urdu",
    summary="URDU: natural talk-show speech, ~29 approximate speaker ids, 4 emotions (Urdu)",
    layout="ROOT/Angry/SM1_F10_A010.wav (S+gender+speaker, F+file, emotion letter+number)",
    scan=scan,
)
