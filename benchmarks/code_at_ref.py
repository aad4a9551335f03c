"""Import sertk modules as they were at a git commit, next to today's, in the same process.

``modules_at("a074939", ["sertk.features.handcrafted", "sertk.features.emotion"])`` reads each
file with ``git show <ref>:src/<path>`` and executes it as a private module
(``_sertk_at_<ref>.<name>``). While a listed module runs its imports, ``sys.modules`` maps the
names of the modules listed before it to their old versions, so the old ``emotion`` binds the old
``handcrafted``; every other import (``sertk.errors``, numpy, scipy) is today's. Used by the
benchmarks (before vs after measured in one run) and by
``tests/data/make_feature_references.py --ref``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def modules_at(ref: str, names: list[str]) -> dict[str, ModuleType]:
    """Modules ``names`` (dotted, under ``src/``; dependencies first) at git commit ``ref``."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    loaded: dict[str, ModuleType] = {}
    for name in names:
        source = subprocess.run(
            ["git", "show", f"{commit}:src/{name.replace('.', '/')}.py"],
            cwd=REPO, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        module = ModuleType(f"_sertk_at_{commit}.{name}")
        module.__file__ = f"{commit}:src/{name.replace('.', '/')}.py"
        saved = {key: sys.modules.get(key) for key in loaded}
        sys.modules.update(loaded)
        try:
            exec(compile(source, module.__file__, "exec"), module.__dict__)
        finally:
            for key, value in saved.items():
                if value is None:
                    sys.modules.pop(key, None)
                else:
                    sys.modules[key] = value
        loaded[name] = module
    return loaded
