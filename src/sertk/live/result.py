"""``Result``: one live analysis step, and saving a history of them to CSV or JSON Lines."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sertk.errors import ConfigError

SILENCE = "silence"  # the label of a window without speech (as in sertk.recognizer)
NO_SPEECH = "no speech"  # sound the gate let through, but no speech in it (sertk.recognizer)
HISTORY_FORMATS = (".csv", ".jsonl")


@dataclasses.dataclass(frozen=True)
class Result:
    """The emotion at one moment of a stream.

    ``time`` is the stream time (seconds of audio since the start) at the end of the analysed
    window and ``start`` where the window began. Speech results (``speech=True``) carry the
    smoothed ``probabilities`` (bundle label order), the best ``label`` and its ``confidence``;
    silence results have ``label == "silence"``, ``confidence`` None and ``probabilities`` None
    (the model was not called). ``level_db`` is the RMS level of the newest hop in dBFS.
    ``latency_s`` runs from the moment the window's last sample entered the engine to the moment
    this result was ready; ``skipped`` counts the windows dropped since the previous result
    because analysis fell behind. ``wall_time`` is the Unix time the result was made. A window
    with sound but no speech (a tone, a hum) has ``label == "no speech"``, ``speech`` False and
    no probabilities. ``adaptation`` (an adaptive bundle's session: a
    :class:`sertk.recognizer.AdaptationState`) says whether the global model answered (and how
    much speech the session holds) or the adapted one; None without adaptation.
    """

    time: float
    start: float
    label: str
    confidence: float | None
    probabilities: dict[str, float] | None
    level_db: float
    speech: bool
    latency_s: float
    skipped: int
    wall_time: float
    adaptation: Any = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the fields."""
        return dataclasses.asdict(self)

    def to_row(self, labels: Sequence[str]) -> dict[str, Any]:
        """Flat CSV row: the scalar fields (``adaptation`` as its short text, e.g. ``global
        12/20 s``), then one probability column per label."""
        row = {k: v for k, v in self.to_dict().items() if k != "probabilities"}
        row["adaptation"] = "" if self.adaptation is None else self.adaptation.describe()
        probabilities = self.probabilities or {}
        row.update({label: probabilities.get(label) for label in labels})
        return row


def save_history(path: str | Path, results: Iterable[Result], *, labels: Sequence[str]) -> Path:
    """Write ``results`` to ``path``: ``.csv`` (one column per label) or ``.jsonl`` (one object
    per line), chosen by the extension. The file is written beside its target and renamed into
    place, so an interrupted save never leaves a half file. Returns the path."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in HISTORY_FORMATS:
        raise ConfigError(
            f"cannot save the history as {target.name!r}: use a .csv or .jsonl file name"
        )
    if target.is_dir():
        raise ConfigError(f"{target} is a directory; give a .csv or .jsonl file path")
    text = _csv(results, labels) if suffix == ".csv" else _jsonl(results)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _csv(results: Iterable[Result], labels: Sequence[str]) -> str:
    fields = [f.name for f in dataclasses.fields(Result) if f.name != "probabilities"]
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=[*fields, *labels], lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.to_row(labels) for result in results)
    return stream.getvalue()


def _jsonl(results: Iterable[Result]) -> str:
    return "".join(json.dumps(result.to_dict()) + "\n" for result in results)
