"""``Utterance``, CSV manifests, and what every corpus adapter shares.

A manifest is a CSV with columns ``id,path,label,speaker`` followed by the union of the
utterances' field names. Paths inside the manifest's folder are written relative to it (so a
corpus folder with its manifest can move), others absolute; relative paths are resolved
against the manifest's folder on reading. An empty field cell means "field absent".

>>> u = Utterance("03a01Fa", "/data/emodb/wav/03a01Fa.wav", "happy", "03", {"gender": "male"})
>>> write_manifest([u], "manifest.csv")
PosixPath('.../manifest.csv')
>>> read_manifest("manifest.csv")[0] == u
True
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sertk.errors import CorpusError

REQUIRED_COLUMNS = ("id", "path", "label", "speaker")

# Suffixes treated as audio when walking a corpus folder (case-insensitive). The shared
# corpora are FLAC with the official names; users usually have WAV.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff"}
    | {".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".wma", ".webm", ".sph", ".nist"}
)


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One labelled recording.

    ``path`` is absolute, ``label`` a canonical emotion name (see ``CANONICAL_LABELS``),
    ``speaker`` a corpus-unique speaker id, ``fields`` extra corpus metadata as strings
    (session, gender, intensity, text, emotion_code, ...).
    """

    id: str
    path: str
    label: str
    speaker: str
    fields: dict[str, str] = dataclasses.field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", os.fspath(self.path))
        for name in ("id", "label", "speaker"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise CorpusError(f"utterance {self.id!r}: {name} must be a non-empty string")
        if not os.path.isabs(self.path):
            raise CorpusError(f"utterance {self.id!r}: path {self.path!r} must be absolute")
        reserved = sorted(set(self.fields) & set(REQUIRED_COLUMNS))
        if reserved:
            raise CorpusError(f"utterance {self.id!r}: field names {reserved} are reserved")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.fields.items()):
            raise CorpusError(f"utterance {self.id!r}: fields must map strings to strings")


@dataclasses.dataclass
class ScanResult:
    """What scanning a corpus found: usable utterances plus human-readable problems."""

    utterances: list[Utterance]
    problems: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Adapter:
    """A corpus adapter: ``scan(root, **options)`` turns an official layout into utterances.

    ``options`` names the keyword options ``scan`` accepts; ``preset`` is the default
    ``LabelMap`` preset of the corpus's usual protocol (None: the labels found).
    """

    name: str
    summary: str
    layout: str
    scan: Callable[..., ScanResult]
    options: tuple[str, ...] = ()
    preset: str | None = None  # the LabelMap preset its usual protocol uses


def natural_key(value: str) -> list:
    """Sort key that puts ``Actor_2`` before ``Actor_10``."""
    parts = re.split(r"(\d+)", value)
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts]


def find_audio(folder: Path) -> list[Path]:
    """All audio files under ``folder`` (recursively), sorted; hidden and ``._`` files skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in filenames:
            if filename.startswith(".") or Path(filename).suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            found.append(Path(dirpath) / filename)
    return sorted(found)


def summarise(problems: list[str], items: list[str], what: str, *, shown: int = 3) -> None:
    """Append one problem line for a group of similar items (count plus the first few)."""
    if items:
        more = f", ... ({len(items) - shown} more)" if len(items) > shown else ""
        problems.append(f"{len(items)} {what}: {', '.join(items[:shown])}{more}")


def folder_label(folder: str, table: Mapping[str, str]) -> str | None:
    """The emotion a corpus folder name states, or None: ``05Angry`` -> ``table["angry"]``.

    Leading digits and separators are ignored and the rest is matched case-insensitively, so
    ``01Neutral``, ``Angry`` and ``angry`` all work; ``table`` maps lower-case folder words to
    canonical labels.
    """
    word = re.sub(r"^[\d_\- ]+", "", folder).strip().lower().replace(" ", "_")
    return table.get(word)


def write_manifest(utterances: Iterable[Utterance], path: str | os.PathLike) -> Path:
    """Write utterances to a CSV manifest atomically (temp file + rename); return its path."""
    path = Path(os.path.abspath(path))
    utterances = list(utterances)
    seen: set[str] = set()
    columns: dict[str, None] = dict.fromkeys(REQUIRED_COLUMNS)
    for utterance in utterances:
        if utterance.id in seen:
            raise CorpusError(f"cannot write {path}: duplicate utterance id {utterance.id!r}")
        seen.add(utterance.id)
        columns.update(dict.fromkeys(utterance.fields))
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent
    handle = tempfile.NamedTemporaryFile(
        "w", newline="", encoding="utf-8", dir=folder, prefix=f".{path.name}.", delete=False
    )
    try:
        with handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for u in utterances:
                audio = Path(u.path)
                shown = (
                    audio.relative_to(folder).as_posix() if audio.is_relative_to(folder) else u.path
                )
                row = [u.id, shown, u.label, u.speaker]
                writer.writerow(row + [u.fields.get(c, "") for c in list(columns)[4:]])
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Read a CSV manifest; relative audio paths resolve against the manifest's folder."""
    path = Path(os.path.abspath(path))
    if not path.is_file():
        raise CorpusError(
            f"manifest {path} does not exist; create one with `sertk corpus scan NAME ROOT -o {path}`"
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _parse_manifest(csv.reader(handle), path)
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"manifest {path} is not UTF-8 text ({error}); save it as UTF-8"
        ) from None
    except csv.Error as error:
        raise CorpusError(f"manifest {path} is not valid CSV: {error}") from None


def _parse_manifest(reader, path: Path) -> list[Utterance]:
    header = next(reader, None)
    if header is None:
        raise CorpusError(
            f"manifest {path} is empty; expected a header {','.join(REQUIRED_COLUMNS)}"
        )
    header = [name.strip() for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CorpusError(
            f"manifest {path} lacks column(s) {', '.join(missing)}; its header is "
            f"{','.join(header)} but a manifest needs {','.join(REQUIRED_COLUMNS)},<fields...>"
        )
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise CorpusError(f"manifest {path}: repeated column(s) {', '.join(repeated)}")
    index = {name: i for i, name in enumerate(header)}
    extra = [name for name in header if name not in REQUIRED_COLUMNS]
    utterances: list[Utterance] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise CorpusError(
                f"{path}:{line}: {len(row)} cells but the header has {len(header)} columns"
            )
        values = _required_cells(row, index, path, line)
        if values["id"] in first_line:
            raise CorpusError(
                f"{path}:{line}: duplicate id {values['id']!r} (first on line "
                f"{first_line[values['id']]}); ids must be unique"
            )
        first_line[values["id"]] = line
        audio = os.path.normpath(os.path.join(path.parent, values["path"]))
        fields = {name: row[index[name]] for name in extra if row[index[name]] != ""}
        utterances.append(
            Utterance(values["id"], audio, values["label"], values["speaker"], fields)
        )
    return utterances


def _required_cells(row: list[str], index: Mapping[str, int], path: Path, line: int) -> dict:
    values = {name: row[index[name]].strip() for name in REQUIRED_COLUMNS}
    empty = [name for name, value in values.items() if not value]
    if empty:
        raise CorpusError(f"{path}:{line}: empty {', '.join(empty)}; every row needs all four")
    return values
