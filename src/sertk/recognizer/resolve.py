"""Model names and paths to bundle folders: :func:`resolve_bundle`, shared by every front end."""

from __future__ import annotations

import os
from pathlib import Path

from sertk.errors import BundleError

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "default_model"
BUNDLE_FILE = "bundle.json"


def resolve_bundle(name_or_path: str | os.PathLike = "default") -> Path:
    """The bundle folder for a model name or path.

    ``"default"`` is the bundle shipped inside the package (``sertk/default_model``); anything
    else is a path: a bundle folder, or a run folder holding ``final/bundle`` (or ``bundle``).
    Raises BundleError when there is nothing there; ``load_bundle`` checks the contents.
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
        raise BundleError(
            f"no model bundle at {str(name_or_path)!r}: no such folder (the only model name "
            "is 'default'); give the folder that holds bundle.json"
        )
    return path
