"""nEMO, emotional speech in Polish (Christop, LREC-COLING 2024): ``samples/SB0_anger_0.<ext>``.

Official layout: ``samples/<speaker>_<emotion>_<n>.wav`` and ``data.tsv`` at the root with the
columns ``file_id, emotion, raw_text, normalized_text, speaker_id, gender, age`` (4481 files, 9
speakers; emotions anger, fear, happiness, neutral, sadness, surprised). ``data.tsv`` is the
source of labels and metadata; its ``file_id`` is matched to the audio by the name without
extension, so ``SB0_anger_0.wav`` in the table finds ``SB0_anger_0.flac`` on disk. Text, gender
and age go into ``fields`` (``text``, ``normalized_text``, ``gender``, ``age``).

Files missing from the table are labelled from their names and reported; rows without audio, and
names whose emotion contradicts the table (the table wins), are reported. Without ``data.tsv``
every file is labelled from its name (no text, gender or age) and that is reported.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, summarise
from sertk.corpora.labels import canonical_label
from sertk.errors import CorpusError

NAME = re.compile(r"^(?P<speaker>[A-Za-z0-9]+)_(?P<emotion>[A-Za-z]+)_(?P<number>\d+)$")
TABLE = "data.tsv"
REQUIRED = ("file_id", "emotion", "speaker_id")
FIELDS = {"raw_text": "text", "normalized_text": "normalized_text", "gender": "gender"}
FIELDS |= {"age": "age"}


def scan(root: Path) -> ScanResult:
    """Scan ``root/samples`` (or ``root``) with the labels of ``root/data.tsv``."""
    folder = root / "samples" if (root / "samples").is_dir() else root
    problems: list[str] = []
    rows, incomplete = _read_table(root / TABLE) if (root / TABLE).is_file() else (None, [])
    summarise(problems, incomplete, f"rows of {TABLE} without file_id, emotion or speaker_id "
              "(skipped)")  # fmt: skip
    if rows is None:
        problems.append(f"no {TABLE} in {root}: labels and speakers from the file names only "
                        "(no text, gender or age)")  # fmt: skip
    utterances, unlisted, odd, unknown, contradicted = [], [], [], [], []
    seen: set[str] = set()
    for path in find_audio(folder):
        name = NAME.match(path.stem)
        row = None if rows is None else rows.get(path.stem)
        if row is None:
            if name is None:
                odd.append(path.name)
                continue
            if rows is not None:
                unlisted.append(path.name)
            raw, speaker, fields = name["emotion"], name["speaker"], {}
        else:
            seen.add(path.stem)
            raw, speaker = row["emotion"], row["speaker_id"]
            fields = {key: row[column] for column, key in FIELDS.items() if row.get(column)}
            if name is not None and canonical_label(name["emotion"]) != canonical_label(raw):
                contradicted.append(f"{path.name} (table: {raw})")
        label = canonical_label(raw)
        if label is None:
            unknown.append(f"{path.name} ({raw})")
            continue
        fields = {"emotion_code": raw.strip().lower(), **fields}
        utterances.append(Utterance(path.stem, str(path), label, speaker, fields))
    absent = [] if rows is None else [rows[stem]["file_id"] for stem in rows if stem not in seen]
    summarise(problems, unlisted, f"files not in {TABLE} (labelled from their names)")
    summarise(problems, odd, "files not in the table nor named like SB0_anger_0.wav (skipped)")
    summarise(problems, unknown, "files with unknown emotions (skipped)")
    summarise(problems, contradicted, f"file names whose emotion contradicts {TABLE} (table kept)")
    summarise(problems, absent, f"rows of {TABLE} without an audio file (skipped)")
    return ScanResult(utterances, problems)


def _read_table(path: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``data.tsv`` as file name without extension -> row (stripped cells), and the lines
    of incomplete rows."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"{path} is not a readable UTF-8 TSV: {error}") from None
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise CorpusError(
            f"{path} lacks column(s) {', '.join(missing)}; nEMO's {TABLE} has file_id, emotion, "
            f"raw_text, normalized_text, speaker_id, gender, age (tab-separated), got "
            f"{', '.join(header) or '(no header)'}"
        )
    table, incomplete = {}, []
    for line, row in rows:
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if all(cells.get(column) for column in REQUIRED):
            table[Path(cells["file_id"]).stem] = cells
        else:
            incomplete.append(f"line {line}")
    return table, incomplete


ADAPTER = Adapter(
    name="nemo",
    summary="nEMO: 9 actors, 6 emotions (Polish); labels and text from data.tsv",
    layout="ROOT/samples/SB0_anger_0.wav + ROOT/data.tsv (file_id, emotion, raw_text, "
    "normalized_text, speaker_id, gender, age)",
    scan=scan,
)
