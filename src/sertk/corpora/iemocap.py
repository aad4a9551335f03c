"""IEMOCAP (Busso et al., 2008): labels from ``Session{1..5}/dialog/EmoEvaluation/*.txt``.

A label line reads ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000,
2.5000]`` (start, end, utterance, consensus category, valence/activation/dominance). Audio is
``Session{n}/sentences/wav/<dialog>/<utterance>.<ext>``. The speaker is the session plus the
gender letter that starts the utterance id's last part (``Ses01F_impro01_M003 -> Ses01M``);
the letter after ``Ses01`` only says who wore the motion-capture markers.
"""

from __future__ import annotations

import re
from pathlib import Path

from sertk.corpora.base import AUDIO_EXTENSIONS, Adapter, ScanResult, Utterance, summarise

EMOTIONS = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "ang": "angry",
    "sad": "sad",
    "fru": "frustrated",
    "sur": "surprised",
    "fea": "fearful",
    "dis": "disgust",
    "oth": "other",
    "xxx": "unknown",  # raters did not agree
}

LINE = re.compile(
    r"^\[(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\]\t(?P<id>\S+)\t(?P<code>\S+)\t"
    r"\[(?P<val>[\d.]+),\s*(?P<act>[\d.]+),\s*(?P<dom>[\d.]+)\]"
)
UTTERANCE = re.compile(r"^(?P<session>Ses\d\d)[FM]_(?P<dialog_rest>.+)_(?P<gender>[FM])\d+$")


def scan(root: Path) -> ScanResult:
    """Scan every ``Session*`` folder of ``root``."""
    utterances, problems = [], []
    label_files = sorted(root.glob("Session*/dialog/EmoEvaluation/*.txt"))
    label_files = [p for p in label_files if not p.name.startswith(".")]
    if not label_files:
        problems.append(f"no label files matching {root}/Session*/dialog/EmoEvaluation/*.txt")
    odd_ids, unknown_codes, missing = [], [], []
    for label_file in label_files:
        session_dir = label_file.parents[2]
        audio = _audio_index(session_dir / "sentences" / "wav" / label_file.stem)
        for number, line in _read_lines(label_file, problems):
            match = LINE.match(line)
            if match is None:
                continue
            where = f"{label_file.relative_to(root)}:{number}"
            name = UTTERANCE.match(match["id"])
            if name is None:
                odd_ids.append(f"{match['id']} ({where})")
                continue
            if match["code"] not in EMOTIONS:
                unknown_codes.append(f"{match['id']} code {match['code']!r} ({where})")
                continue
            path = audio.get(match["id"])
            if path is None:
                missing.append(f"{match['id']} ({where})")
                continue
            speaker = name["session"] + name["gender"]
            fields = _fields(match, name, label_file.stem)
            utterances.append(
                Utterance(match["id"], str(path), EMOTIONS[match["code"]], speaker, fields)
            )
    summarise(problems, odd_ids, "labelled utterance ids not like Ses01F_impro01_F000 (skipped)")
    summarise(problems, unknown_codes, "utterances with unknown emotion codes (skipped)")
    summarise(problems, missing, "labelled utterances without audio in sentences/wav (skipped)")
    return ScanResult(utterances, problems)


def _audio_index(folder: Path) -> dict[str, Path]:
    """Utterance id -> audio file in one dialog folder (any audio extension)."""
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    return {p.stem: p for p in files if not p.name.startswith(".")}


def _read_lines(path: Path, problems: list[str]) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        problems.append(f"cannot read {path}: {error}")
        return []
    return list(enumerate(text.splitlines(), start=1))


def _fields(match: re.Match, name: re.Match, dialog: str) -> dict[str, str]:
    return {
        "emotion_code": match["code"],
        "session": name["session"],
        "gender": "female" if name["gender"] == "F" else "male",
        "dialog": dialog,
        "mode": "improvised" if "_impro" in dialog else "scripted",
        "start": match["start"],
        "end": match["end"],
        "valence": match["val"],
        "activation": match["act"],
        "dominance": match["dom"],
    }


ADAPTER = Adapter(
    name="iemocap",
    summary="IEMOCAP: 5 sessions, 10 speakers, categorical + dimensional labels (English)",
    layout="ROOT/Session1/dialog/EmoEvaluation/*.txt and "
    "ROOT/Session1/sentences/wav/<dialog>/<utterance>.wav",
    scan=scan,
    preset="iemocap4",
)
