"""The docstring examples of ``src/sertk`` run as tests (``--doctest-modules``, pyproject.toml).

Only pytest imports this module (as numpy and scipy, the package keeps its doctest set-up here).

- Each example runs in a fresh temporary folder that holds ``examples/`` (a link to the
  repository's example clips), so examples read ``examples/03a02Wc.flac`` and write their outputs
  (bundles, manifests, ONNX files) next to it as a user in a checkout would, and leave nothing behind.
- A module or an example that needs an optional extra which is not installed (torch, transformers,
  PySide6, fastapi, onnxruntime, ray, ...) is skipped with the extra's name, so the suite passes on
  the core install and runs every example where all extras are installed (``make test``, CI).
  Anything else that fails to import or raises still fails.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem, DoctestModule

from sertk.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[2]  # the repository

# top-level import names of the optional extras in pyproject.toml
OPTIONAL = {
    "torch", "torchaudio", "transformers", "PySide6", "fastapi", "uvicorn", "multipart",
    "onnx", "onnxruntime", "onnxscript", "sounddevice", "opensmile", "ray",
}  # fmt: skip


def missing_extra(error: BaseException | None) -> str | None:
    """The optional package whose absence caused ``error`` (or its causes), else None."""
    while error is not None:
        if isinstance(error, MissingDependencyError):
            return str(error)
        if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in OPTIONAL:
            return f"needs {error.name}, which is not installed"
        error = error.__cause__ or error.__context__
    return None


class NeedsExtra(pytest.File):
    """Stands for a module that cannot be imported without an optional extra: one skip."""

    reason: str = ""

    def collect(self):
        pytest.skip(f"doctests of {self.path.relative_to(ROOT / 'src')}: {self.reason}")


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    """Replace the doctest collector of a module whose import needs a missing extra by a skip."""
    collectors = yield
    for index, collector in enumerate(collectors or []):
        if not isinstance(collector, DoctestModule) or "sertk" not in file_path.parts:
            continue
        module = ".".join(file_path.relative_to(ROOT / "src").with_suffix("").parts)
        try:
            importlib.import_module(module.removesuffix(".__init__"))
        except ImportError as error:
            reason = missing_extra(error)
            if reason is None:
                raise
            collectors[index] = NeedsExtra.from_parent(parent, path=file_path)
            collectors[index].reason = reason
    return collectors


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """An example that raises because an optional extra is missing is skipped, not failed."""
    try:
        return (yield)
    except doctest.UnexpectedException as failure:
        reason = missing_extra(failure.exc_info[1])
        if reason is None:
            raise
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def doctest_folder(request):
    """Docstring examples run in a temporary folder holding a link to ``examples/``."""
    if not isinstance(request.node, DoctestItem):
        return
    folder = request.getfixturevalue("tmp_path")
    (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    request.getfixturevalue("monkeypatch").chdir(folder)
