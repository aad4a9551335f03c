"""TESS, Toronto emotional speech set (Dupuis & Pichora-Fuller, 2010).

Folders such as ``OAF_angry/``, ``OAF_Pleasant_surprise/``, ``YAF_pleasant_surprised/`` hold
``{OAF|YAF}_{word}_{emotion}.<ext>``; emotion is one of angry, disgust, fear, happy, neutral,
ps (pleasant surprise), sad. The speaker is OAF (older) or YAF (younger adult female). When a
folder names an emotion that contradicts the file name, the file is skipped and reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, summarise

EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "sad": "sad",
}
# folder spellings of the same emotions
FOLDER_EMOTIONS = {**EMOTIONS, "pleasant_surprise": "surprised", "pleasant_surprised": "surprised"}
SPEAKERS = {"OAF": "64", "YAF": "26"}  # speaker -> age

NAME = re.compile(r"^(?P<speaker>OAF|YAF)_(?P<word>.+)_(?P<emotion>[A-Za-z]+)$", re.IGNORECASE)
FOLDER = re.compile(r"^(?:OAF|YAF)_(?P<emotion>.+)$", re.IGNORECASE)


def scan(root: Path) -> ScanResult:
    """Scan all audio below ``root`` (the folder holding ``OAF_angry/`` ...)."""
    utterances, problems = [], []
    odd, unknown, conflicting = [], [], []
    for path in find_audio(root):
        match = NAME.match(path.stem)
        if match is None:
            odd.append(path.name)
            continue
        code = match["emotion"].lower()
        if code not in EMOTIONS:
            unknown.append(f"{path.name} ({code})")
            continue
        folder = FOLDER.match(path.parent.name)
        folder_label = FOLDER_EMOTIONS.get(folder["emotion"].lower()) if folder else None
        if folder_label is not None and folder_label != EMOTIONS[code]:
            conflicting.append(f"{path.parent.name}/{path.name}")
            continue
        speaker = match["speaker"].upper()
        fields = {"emotion_code": code, "word": match["word"].lower(), "gender": "female"}
        fields["age"] = SPEAKERS[speaker]
        uid = f"{speaker}_{fields['word']}_{code}"
        utterances.append(Utterance(uid, str(path), EMOTIONS[code], speaker, fields))
    summarise(problems, odd, "files not named like OAF_back_angry.wav (skipped)")
    summarise(problems, unknown, "files with unknown emotion words (skipped)")
    summarise(problems, conflicting, "files whose emotion contradicts their folder (skipped)")
    return ScanResult(utterances, problems)


ADAPTER = Adapter(
    name="tess",
    summary="TESS: 2 female speakers (OAF, YAF), 7 emotions, 200 words each (English)",
    layout="ROOT/OAF_angry/OAF_back_angry.wav, ROOT/YAF_pleasant_surprised/YAF_back_ps.wav, ...",
    scan=scan,
    preset="merge_calm",
)
