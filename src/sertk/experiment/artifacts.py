"""The run folder: its creation, atomic JSON files, ``env.json`` and ``splits.json``.

Layout of ``<output_dir>/<name>-<YYYYmmdd-HHMMSS>/``::

    config.yaml  env.json  splits.json  summary.json  report.md  confusion_pooled.png
    folds/<fold>/  bundle/  predictions.csv  valid_predictions.csv  curves.png  confusion.png
                   metrics.json
    final/         bundle/  curves.png  training.json            (with final_model: true/ensemble)

``predictions.csv`` holds every test utterance of the fold (id, speaker, label, predicted and a
``p_<label>`` probability per class), ``valid_predictions.csv`` the same for the validation
speakers (neural models only: a classical model trains on them); ``curves.png`` exists for
neural models. A fold is complete when its ``metrics.json`` exists: it is written atomically
and last, after the bundle and plots, so a resumed run skips exactly the completed folds.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sertk._version import __version__
from sertk.corpora.base import natural_key
from sertk.errors import ConfigError, SertkError
from sertk.folds import folds_from_dict, folds_to_dict

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
SPLITS_FILE = "splits.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
VALID_PREDICTIONS_FILE = "valid_predictions.csv"


def new_run_dir(output_dir: str | Path, name: str) -> Path:
    """Create and return a fresh ``output_dir/<name>-<timestamp>`` (``-2``, ``-3`` on clashes)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = Path(output_dir)
    parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        folder = parent / (f"{name}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise SertkError(f"cannot create a new run folder in {parent}: too many runs named {name}")


def claim_run_dir(path: str | Path) -> Path:
    """Use ``path`` as a new run folder: created if absent, refused unless empty."""
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(
            f"run folder {folder} already exists and is not empty; choose a new folder, or "
            "resume it with resume=True (sertk train --resume)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def write_json(path: Path, data: Any) -> Path:
    """Atomic, indented JSON (NaN refused: every number in an artifact is finite or null)."""
    return write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON artifact; SertkError naming the file when it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SertkError(f"cannot read {path}: {error}; delete it to recompute it") from None


def environment(cache_root: Path | None = None) -> dict[str, Any]:
    """Versions, git commit of the sertk source tree, machine and command line (``env.json``).

    torch's threads and CUDA device are recorded when the run has imported torch (neural
    models); a classical run neither needs nor imports it.
    """
    torch = sys.modules.get("torch")
    cuda = torch.cuda.get_device_name(0) if torch and torch.cuda.is_available() else None
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "versions": {
            "python": platform.python_version(),
            "sertk": __version__,
            **{name: _version(name) for name in ("torch", "numpy", "transformers", "safetensors")},
        },
        "git": git_state(Path(__file__).resolve().parent),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads() if torch else None,
            "cuda_device": cuda,
        },
        "feature_cache": None if cache_root is None else str(cache_root),
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state(folder: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git work tree holding ``folder``, or None outside one."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def splits_document(folds: Sequence[Any], utterances: Sequence[Any]) -> dict[str, Any]:
    """``folds_to_dict(folds)`` plus the sorted speakers of every side (``splits.json``)."""
    speaker_of = {u.id: u.speaker for u in utterances}
    document = folds_to_dict(folds)
    for entry in document["folds"]:
        entry["speakers"] = {
            side: sorted({speaker_of[uid] for uid in entry[side]}, key=natural_key)
            for side in ("train", "valid", "test")
        }
    return document


def check_same_splits(stored: dict[str, Any], folds: Sequence[Any], path: Path) -> None:
    """Raise ConfigError when the folds rebuilt on resume differ from the run's ``splits.json``."""
    old = folds_from_dict(stored)
    if old != list(folds):
        changed = [a.name for a, b in zip(old, folds, strict=False) if a != b]
        detail = f"folds {', '.join(changed)} differ" if changed else "the number of folds differs"
        raise ConfigError(
            f"cannot resume: the corpus or label map now gives other splits than {path} "
            f"({detail}); restore the data the run started with, or start a new run"
        )
