"""Your own data: a CSV file (``path,label[,speaker,id,...]``) or one folder per label.

* CSV (``root`` is a ``.csv`` file): paths relative to the CSV's folder; ``id`` defaults to
  the path as written without its extension; extra columns become fields.
* Folders (``root`` is a directory): ``root/<label>/**/*.<ext>``; id is the path relative to
  ``root`` without extension.

Labels are mapped to canonical names (``anger -> angry``, ``ps -> surprised``, ...); labels
outside the vocabulary are kept lower-cased and reported. Without a speaker column, the speaker
comes from ``speaker_pattern`` (a regex searched in the relative path; its group ``speaker`` or
first group or whole match); without either, every file is its own speaker, which makes
speaker-independent folds impossible, and that is reported.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from sertk.corpora.base import Adapter, ScanResult, Utterance, find_audio, summarise
from sertk.corpora.labels import canonical_label
from sertk.errors import ConfigError, CorpusError


def scan(root: Path, *, speaker_pattern: str | None = None) -> ScanResult:
    """Scan a CSV file or a folder-per-label tree at ``root``."""
    pattern = _compile(speaker_pattern)
    if root.is_file():
        entries, problems = _csv_entries(root)
        base = root.parent
    else:
        entries, problems = _folder_entries(root)
        base = root
    utterances, no_speaker, own_speaker, odd_labels = [], [], [], set()
    for uid, relative, raw_label, speaker, fields in entries:
        label = canonical_label(raw_label)
        if label is None:
            label = raw_label.strip().lower()
            odd_labels.add(label)
        if not speaker and pattern is not None:
            speaker = _speaker(pattern, relative)
            if not speaker:
                no_speaker.append(relative)
                continue
        if not speaker:
            speaker = uid
            own_speaker.append(relative)
        path = os.path.normpath(base / relative)
        fields = {"emotion_code": raw_label, **fields}
        utterances.append(Utterance(uid, path, label, speaker, fields))
    summarise(
        problems,
        no_speaker,
        f"files where speaker_pattern {speaker_pattern!r} found nothing (skipped)",
    )
    if own_speaker:
        problems.append(
            f"no speaker for {len(own_speaker)} files: each is its own speaker, so speaker-"
            "independent folds are impossible; add a speaker column or pass speaker_pattern"
        )
    if odd_labels:
        problems.append(
            f"labels outside the canonical vocabulary (kept; presets drop them, use "
            f"LabelMap.from_labels): {', '.join(sorted(odd_labels))}"
        )
    return ScanResult(utterances, problems)


def _compile(pattern: str | None) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"speaker_pattern {pattern!r} is not a valid regex: {error}") from None


def _speaker(pattern: re.Pattern, relative: str) -> str | None:
    match = pattern.search(relative)
    if match is None:
        return None
    if "speaker" in pattern.groupindex:
        return match["speaker"]
    return match[1] if pattern.groups else match[0]


Entry = tuple[str, str, str, str, dict[str, str]]  # id, relative path, label, speaker, fields


def _folder_entries(root: Path) -> tuple[list[Entry], list[str]]:
    entries, problems, loose = [], [], []
    for path in find_audio(root):
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            loose.append(relative.as_posix())
            continue
        uid = relative.with_suffix("").as_posix()
        entries.append((uid, relative.as_posix(), relative.parts[0], "", {}))
    summarise(problems, loose, "files directly in the root, not in a label folder (skipped)")
    return entries, problems


def _csv_entries(csv_path: Path) -> tuple[list[Entry], list[str]]:
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"{csv_path} is not a readable UTF-8 CSV: {error}") from None
    missing = [name for name in ("path", "label") if name not in header]
    if missing:
        raise CorpusError(
            f"{csv_path} lacks column(s) {', '.join(missing)}; a generic CSV needs "
            f"path,label[,speaker,id,...] but its header is {','.join(header) or '(empty)'}"
        )
    entries, problems, incomplete, absent = [], [], [], []
    for line, row in rows:
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not cells.get("path") or not cells.get("label"):
            incomplete.append(f"line {line}")
            continue
        if not (csv_path.parent / cells["path"]).is_file():
            absent.append(f"{cells['path']} (line {line})")
            continue
        uid = cells.get("id") or str(Path(cells["path"]).with_suffix("").as_posix())
        fields = {
            k: v for k, v in cells.items() if k not in ("id", "path", "label", "speaker") and v
        }
        entries.append((uid, cells["path"], cells["label"], cells.get("speaker", ""), fields))
    summarise(problems, incomplete, "rows with an empty path or label (skipped)")
    summarise(problems, absent, "rows whose audio file does not exist (skipped)")
    return entries, problems


ADAPTER = Adapter(
    name="generic",
    summary="your own data: a CSV (path,label[,speaker,...]) or one folder per label",
    layout="ROOT.csv with columns path,label[,speaker,id,...] or ROOT/<label>/*.wav",
    scan=scan,
    options=("speaker_pattern",),
)
