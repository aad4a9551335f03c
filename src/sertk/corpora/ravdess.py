"""RAVDESS (Livingstone & Russo, 2018): ``Actor_01/03-01-05-02-01-01-01.<ext>``.

Name fields: modality (03 audio-only) - vocal channel (01 speech, 02 song) - emotion -
intensity - statement - repetition - actor (odd actors are male). Only speech is kept unless
``include_song=True``; other modalities are skipped and reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, summarise

EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
CHANNELS = {"01": "speech", "02": "song"}

NAME = re.compile(
    r"^(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<emotion>\d\d)-(?P<intensity>\d\d)"
    r"-(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)$"
)


def speaker_name(actor: int | str) -> str:
    """RAVDESS speaker id of an actor number: ``1 -> "Actor_01"``."""
    return f"Actor_{int(actor):02d}"


def scan(root: Path, *, include_song: bool = False) -> ScanResult:
    """Scan every ``Actor_NN`` folder below ``root`` (the official zips nest them one level)."""
    utterances, problems = [], []
    odd, bad_codes, songs, other_modality, misplaced = [], [], [], [], []
    for path in find_audio(root):
        match = NAME.match(path.stem)
        if match is None:
            odd.append(path.name)
            continue
        if match["modality"] != "03":
            other_modality.append(path.name)
            continue
        if match["channel"] == "02" and not include_song:
            songs.append(path.name)
            continue
        codes = (
            match["channel"] in CHANNELS,
            match["emotion"] in EMOTIONS,
            match["intensity"] in INTENSITIES,
            match["statement"] in STATEMENTS,
        )
        if not all(codes) or int(match["actor"]) == 0:
            bad_codes.append(path.name)
            continue
        speaker = speaker_name(match["actor"])
        if path.parent.name.startswith("Actor_") and path.parent.name != speaker:
            misplaced.append(f"{path.parent.name}/{path.name}")
            continue
        utterances.append(
            Utterance(path.stem, str(path), EMOTIONS[match["emotion"]], speaker, _fields(match))
        )
    summarise(problems, odd, "files not named like 03-01-05-02-01-01-01.wav (skipped)")
    summarise(problems, bad_codes, "files with unknown emotion/intensity/statement codes (skipped)")
    summarise(
        problems, songs, "song files, vocal channel 02 (skipped; include_song=True keeps them)"
    )
    summarise(problems, other_modality, "files of modality other than 03 audio-only (skipped)")
    summarise(problems, misplaced, "files whose actor differs from their Actor_NN folder (skipped)")
    return ScanResult(utterances, problems)


def _fields(match: re.Match) -> dict[str, str]:
    return {
        "emotion_code": match["emotion"],
        "intensity": INTENSITIES[match["intensity"]],
        "statement": match["statement"],
        "text": STATEMENTS[match["statement"]],
        "repetition": str(int(match["repetition"])),
        "gender": "male" if int(match["actor"]) % 2 else "female",
        "vocal_channel": CHANNELS[match["channel"]],
    }


ADAPTER = Adapter(
    name="ravdess",
    summary="RAVDESS audio-only speech: 24 actors, 8 emotions (English)",
    layout="ROOT/Actor_01/03-01-05-02-01-01-01.wav (modality-channel-emotion-intensity-"
    "statement-repetition-actor)",
    scan=scan,
    preset="ravdess8",
    options=("include_song",),
)
