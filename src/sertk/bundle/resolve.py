"""Model names and paths to bundle folders: :func:`resolve_bundle`, the one resolver every
command that takes a model uses (predict, evaluate, export, serve, listen, gui, ensemble)."""

from __future__ import annotations

import os
from pathlib import Path

from sertk.bundle.files import BUNDLE_FILE
from sertk.errors import BundleError

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "default_model"


def resolve_bundle(name_or_path: str | os.PathLike = "default") -> Path:
    """The bundle folder for a model name or path.

    ``"default"`` is the bundle shipped inside the package (``sertk/default_model``); anything
    else is a path: a bundle folder, or a run folder holding ``final/bundle`` (or ``bundle``).
    Raises BundleError when there is nothing there; ``load_bundle`` checks the contents.

    >>> resolve_bundle("default").name
    'default_model'
    """
    if isinstance(name_or_path, str) and name_or_path == "default":
        if not (DEFAULT_MODEL / BUNDLE_FILE).is_file():
            raise BundleError(
                f"the default model is not shipped with this sertk installation (no bundle in "
                f"{DEFAULT_MODEL}); pass a bundle you trained, e.g. --model "
                "runs/<name>/final/bundle (sertk train ... --set final_model=true)"
            )
        return DEFAULT_MODEL
    path = Path(name_or_path).expanduser()
    if path.is_dir() and not (path / BUNDLE_FILE).is_file():
        for candidate in (path / "final" / "bundle", path / "bundle"):
            if (candidate / BUNDLE_FILE).is_file():
                return candidate
    if not path.exists():
        aside = sorted(path.parent.glob(f".{path.name}.*.old"))
        hint = (
            f"; a save was interrupted while replacing it: the previous bundle is at "
            f"{aside[-1]}, rename it back"
            if aside
            else f" (the only model name is 'default'); give the folder that holds {BUNDLE_FILE}"
        )
        raise BundleError(f"no model bundle at {str(name_or_path)!r}: it does not exist{hint}")
    if not path.is_dir():
        raise BundleError(
            f"model bundle {path} is a file, not a bundle directory; give the folder that holds "
            f"{BUNDLE_FILE}"
        )
    return path
