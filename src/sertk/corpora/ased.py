"""ASED v1, Amharic Speech Emotion Dataset (Retta et al., 2023): ``05Angry/a5-03-01-02-50.<ext>``.

Name: emotion letter + folder number (``n1`` neutral, ``f2`` fearful, ``h3`` happy, ``s4`` sad,
``a5`` angry) - sentence (01-07 within the emotion's folder) - repetition - gender (01 female,
02 male) - speaker (01-65). Speakers become ``S01`` ... ``S65``.

The folder states the emotion too; when it disagrees with the name, the folder wins and the file
is reported. Gender is the speaker's: 5 files of the official release carry the other gender
code than the rest of their speaker's files, so each speaker gets the gender of most of its
files and those files are reported.

Caveat for every result on ASED: 25 of its 27 sentences are each spoken in one emotion only
(``fields["sentence"]`` with the folder identifies the sentence), so the words predict the label;
only two sentences are spoken in all five emotions.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, folder_label, summarise

EMOTIONS = {"n": "neutral", "f": "fearful", "h": "happy", "s": "sad", "a": "angry"}
NUMBERS = {"n": "1", "f": "2", "h": "3", "s": "4", "a": "5"}  # the folder number of each letter
FOLDERS = {"neutral": "neutral", "fearful": "fearful", "happy": "happy", "sad": "sad"}
FOLDERS |= {"angry": "angry"}
GENDERS = {"01": "female", "02": "male"}
CAVEAT = (
    "25 of ASED's 27 sentences are each spoken in one emotion only, so the words predict the "
    "label; only 2 sentences are spoken in all five emotions"
)

NAME = re.compile(
    r"^(?P<letter>[nfhsa])(?P<number>\d)-(?P<sentence>\d\d)-(?P<repetition>\d\d)"
    r"-(?P<gender>\d\d)-(?P<speaker>\d\d)$",
    re.IGNORECASE,
)


def scan(root: Path) -> ScanResult:
    """Scan the five emotion folders below ``root`` (``01Neutral/`` ... ``05Angry/``)."""
    found, problems = [], []
    odd, bad_codes, moved = [], [], []
    for path in find_audio(root):
        match = NAME.match(path.stem)
        if match is None:
            odd.append(path.name)
            continue
        letter = match["letter"].lower()
        if NUMBERS[letter] != match["number"] or match["gender"] not in GENDERS:
            bad_codes.append(path.name)
            continue
        label = EMOTIONS[letter]
        stated = folder_label(path.parent.name, FOLDERS)
        if stated is not None and stated != label:
            moved.append(f"{path.parent.name}/{path.name} ({label} -> {stated})")
            label = stated
        found.append((path, match, label))
    genders = _speaker_genders(found, problems)
    utterances = []
    for path, match, label in found:
        speaker = f"S{match['speaker']}"
        fields = {
            "emotion_code": f"{match['letter'].lower()}{match['number']}",
            "sentence": match["sentence"],
            "repetition": str(int(match["repetition"])),
            "gender": genders[speaker],
        }
        utterances.append(Utterance(path.stem, str(path), label, speaker, fields))
    summarise(problems, odd, "files not named like a5-03-01-02-50.wav (skipped)")
    summarise(problems, bad_codes, "files with unknown emotion/folder/gender codes (skipped)")
    summarise(problems, moved, "files whose name contradicts their folder (labelled by folder)")
    return ScanResult(utterances, problems)


def _speaker_genders(found: list, problems: list[str]) -> dict[str, str]:
    """Speaker -> the gender of most of its files; files that say otherwise are reported."""
    codes: dict[str, Counter] = defaultdict(Counter)
    for _, match, _ in found:
        codes[f"S{match['speaker']}"][match["gender"]] += 1
    genders = {speaker: GENDERS[count.most_common(1)[0][0]] for speaker, count in codes.items()}
    other = [
        path.name
        for path, match, _ in found
        if GENDERS[match["gender"]] != genders[f"S{match['speaker']}"]
    ]
    summarise(problems, other, "files whose gender code differs from their speaker's other files "
              "(speaker's gender kept)")  # fmt: skip
    return genders


ADAPTER = Adapter(
    name="ased",
    summary="ASED v1: 65 speakers, 5 emotions (Amharic); caveat: sentence predicts emotion",
    layout="ROOT/05Angry/a5-03-01-02-50.wav (emotion+folder, sentence, repetition, gender, "
    "speaker)",
    scan=scan,
)
