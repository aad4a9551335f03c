"""TESS, Toronto emotional speech set (Dupuis & Pichora-Fuller, 2010).

Folders such as ``OAF_angry/``, ``OAF_Pleasant_surprise/``, ``YAF_pleasant_surprised/`` hold
``{OAF|YAF}_{word}_{emotion}.<ext>``; emotion is one of angry, disgust, fear, happy, neutral,
ps (pleasant surprise), sad. The speaker is OAF (older) or YAF (younger adult female).

The folder is the authority: when a file's name is malformed or names another speaker or emotion
than its folder (the official release has ``OAF_neutral/OA_bite_neutral.wav``), the speaker and
emotion come from the folder, the word from the name, and the file is reported; so a scan of the
complete release yields all 2800 files. Outside the official folders, the name must parse.
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

CODES = {label: code for code, label in EMOTIONS.items()}  # canonical label -> name code

NAME = re.compile(r"^(?P<speaker>OAF|YAF)_(?P<word>.+)_(?P<emotion>[A-Za-z]+)$", re.IGNORECASE)
FOLDER = re.compile(r"^(?P<speaker>OAF|YAF)_(?P<emotion>.+)$", re.IGNORECASE)


def scan(root: Path) -> ScanResult:
    """Scan all audio below ``root`` (the folder holding ``OAF_angry/`` ...)."""
    utterances, problems = [], []
    odd, unknown, relabelled = [], [], []
    for path in find_audio(root):
        speaker, word, label = _from_name(path.stem)
        folder = _from_folder(path.parent.name)
        if folder is not None and (speaker, label) != folder:
            shown = f"{path.parent.name}/{path.name}"
            relabelled.append(f"{shown} (name: {speaker or '?'}/{label or '?'})")
            speaker, label = folder
        if speaker is None or not word:
            odd.append(path.name)
            continue
        if label is None:
            unknown.append(path.name)
            continue
        code = CODES[label]
        fields = {"emotion_code": code, "word": word, "gender": "female", "age": SPEAKERS[speaker]}
        utterances.append(Utterance(f"{speaker}_{word}_{code}", str(path), label, speaker, fields))
    summarise(problems, odd, "files not named like OAF_back_angry.wav (skipped)")
    summarise(problems, unknown, "files with unknown emotion words outside an emotion folder "
              "(skipped)")  # fmt: skip
    summarise(problems, relabelled, "files whose name is malformed or contradicts their folder "
              "(speaker and emotion taken from the folder)")  # fmt: skip
    return ScanResult(utterances, problems)


def _from_name(stem: str) -> tuple[str | None, str | None, str | None]:
    """(speaker, word, label) as far as the file name gives them (None where it does not)."""
    match = NAME.match(stem)
    if match is not None:
        code = match["emotion"].lower()
        return match["speaker"].upper(), match["word"].lower(), EMOTIONS.get(code)
    # e.g. OA_bite_neutral: a word and an emotion but no valid speaker
    parts = [part for part in stem.lower().split("_") if part]
    if len(parts) >= 3:
        return None, "_".join(parts[1:-1]), EMOTIONS.get(parts[-1])
    if len(parts) == 2:  # word_emotion or speaker_word
        if parts[1] in EMOTIONS:
            return None, parts[0], EMOTIONS[parts[1]]
        return None, parts[1], None
    return None, "_".join(parts), None


def _from_folder(name: str) -> tuple[str, str] | None:
    """(speaker, label) that a folder such as ``OAF_angry`` states, or None."""
    folder = FOLDER.match(name)
    if folder is None:
        return None
    label = FOLDER_EMOTIONS.get(folder["emotion"].lower())
    return None if label is None else (folder["speaker"].upper(), label)


ADAPTER = Adapter(
    name="tess",
    summary="TESS: 2 female speakers (OAF, YAF), 7 emotions, 200 words each (English)",
    layout="ROOT/OAF_angry/OAF_back_angry.wav, ROOT/YAF_pleasant_surprised/YAF_back_ps.wav, ...",
    scan=scan,
    preset="merge_calm",
)
