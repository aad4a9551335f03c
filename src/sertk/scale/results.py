"""Resumable prediction output: rows written in atomic parts as they arrive, merged at the end.

While a job runs, finished rows go to ``OUTPUT.parts/part-<n>-<id>.jsonl`` (each part written to
a temporary file, synced and renamed, so a part is whole or absent; one every ``flush_rows``
rows or ``flush_seconds``). When the job ends, the rows of the previous output, of the parts
and of this run are merged (one row per path, the newest wins, sorted by path), written to
``OUTPUT`` atomically in the format of its extension (``.parquet``, ``.csv``, ``.jsonl``), and
the parts folder is removed. A job that is interrupted (Ctrl-C) or fails writes the rows it
received as a last part; one killed outright loses at most the rows of one unfinished part. The
next run with the same output reads the output and the parts back and
skips every path that already has a prediction (rows with an error are tried again).

Row columns: ``path``, ``label``, ``confidence`` (None for "no speech"), ``speech`` (bool),
``p_<label>`` per bundle label (the prefix keeps label names from colliding with the fixed
columns), ``duration``, ``bundle_hash``, ``error``
(None, or the message of the file's error: then the prediction columns are None).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sertk.errors import ConfigError

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}


def output_format(path: str | Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` from the extension of ``path``; ConfigError otherwise."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"--output {path}: the extension picks the format; use .parquet, .csv or .jsonl"
        )
    return fmt


def columns(labels: Sequence[str]) -> list[str]:
    """The output columns for a bundle with ``labels``, in order."""
    return ["path", "label", "confidence", "speech", *(f"p_{x}" for x in labels), "duration",
            "bundle_hash", "error"]  # fmt: skip


class ResultStore:
    """The rows of one output file and its parts folder (see the module docstring)."""

    def __init__(
        self, output: str | Path, *, flush_rows: int = 256, flush_seconds: float = 10.0
    ) -> None:
        self.output = Path(output).resolve()
        self.format = output_format(self.output)
        self.parts = self.output.with_name(self.output.name + ".parts")
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.previous: dict[str, dict[str, Any]] = {}
        self.pending: list[dict[str, Any]] = []
        self.written: dict[str, dict[str, Any]] = {}
        self._last_flush = time.monotonic()

    def load(self, *, bundle_hash: str) -> set[str]:
        """Read the earlier output and parts; returns the paths already predicted without error.

        ConfigError when they hold another bundle's predictions (a different content hash).
        """
        rows = read_rows(self.output, self.format) if self.output.is_file() else []
        for part in sorted(self.parts.glob("part-*.jsonl")) if self.parts.is_dir() else ():
            rows += read_rows(part, "jsonl")
        for row in rows:
            if row.get("bundle_hash") != bundle_hash:
                raise ConfigError(
                    f"{self.output} (or {self.parts.name}) holds predictions of another bundle "
                    f"(content hash {str(row.get('bundle_hash'))[:12]}..., this one is "
                    f"{bundle_hash[:12]}...); give another --output, or delete it to start over"
                )
            self.previous[row["path"]] = row
        return {path for path, row in self.previous.items() if row.get("error") is None}

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Queue finished rows; a part is written when enough rows or seconds have gathered."""
        self.pending.extend(rows)
        due = time.monotonic() - self._last_flush >= self.flush_seconds
        if len(self.pending) >= self.flush_rows or (self.pending and due):
            self.flush()

    def flush(self) -> None:
        """Write the queued rows as one atomic part."""
        self._last_flush = time.monotonic()
        if not self.pending:
            return
        self.parts.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl"
        _write_atomic(self.parts / name, "jsonl", self.pending)
        self.written.update((row["path"], row) for row in self.pending)
        self.pending = []

    def finish(self) -> list[dict[str, Any]]:
        """Merge earlier and new rows into the output (atomically); returns the merged rows."""
        self.flush()
        merged = {**self.previous, **self.written}
        rows = [merged[path] for path in sorted(merged)]
        _write_atomic(self.output, self.format, rows)
        shutil.rmtree(self.parts, ignore_errors=True)
        return rows


def read_rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The rows of an output or part file, as dicts (None for missing values)."""
    if fmt == "parquet":
        import pyarrow.parquet

        return pyarrow.parquet.read_table(path).to_pylist()
    with path.open(encoding="utf-8", newline="") as handle:
        if fmt == "jsonl":
            return [json.loads(line) for line in handle if line.strip()]
        return [_typed(row) for row in csv.DictReader(handle)]


def _typed(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row back to the types the other formats keep (empty cell: None)."""
    typed: dict[str, Any] = {}
    for key, value in row.items():
        if value == "":
            typed[key] = None
        elif _numeric(key):
            typed[key] = float(value)
        elif key == "speech":
            typed[key] = value == "true"
        else:
            typed[key] = value
    return typed


def _write_atomic(path: Path, fmt: str, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _write(temporary, fmt, rows)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write(path: Path, fmt: str, rows: list[dict[str, Any]]) -> None:
    if fmt == "parquet":
        import pyarrow
        import pyarrow.parquet

        names = list(rows[0]) if rows else ["path"]
        schema = pyarrow.schema([(name, _arrow_type(pyarrow, name)) for name in names])
        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows, schema=schema), path)
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, allow_nan=False) + "\n")
            return
        names = list(rows[0]) if rows else ["path"]
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows({k: "" if v is None else _cell(v) for k, v in row.items()} for row in rows)


def _numeric(name: str) -> bool:
    return name in ("confidence", "duration") or name.startswith("p_")


def _arrow_type(pyarrow: Any, name: str) -> Any:
    if name == "speech":
        return pyarrow.bool_()
    return pyarrow.float64() if _numeric(name) else pyarrow.string()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()  # as sertk predict's CSV
    return repr(value) if isinstance(value, float) and math.isfinite(value) else value
