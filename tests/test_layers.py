"""Imports flow one way: the import-linter contracts of pyproject.toml hold, imports inside
functions are kept for heavy optional dependencies, and docs/architecture.md draws the layers
that are checked."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "sertk"
# sertk modules that import a heavy optional dependency (torch, transformers, PySide6, fastapi,
# scikit-learn) when they load: the only sertk imports allowed inside functions
HEAVY = (
    "sertk.models", "sertk.training", "sertk.features.ssl", "sertk.classical.fit",
    "sertk.classical._ridge", "sertk.export.graphs", "sertk.export.parity",
    "sertk.export.export_mode", "sertk.gui", "sertk.server",
)  # fmt: skip
# the command line defers its commands' imports so `sertk --help` needs none of them (nothing
# imports sertk.cli, so no circle can hide there); the live/GUI adapters are another helper's
DEFERRING = ("sertk.cli", "sertk.gui", "sertk.live")


def test_import_contracts_hold():
    pytest.importorskip("importlinter")
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_in_functions(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sertk"):
                    yield node.lineno, node.module
                elif isinstance(node, ast.Import):
                    yield from (
                        (node.lineno, a.name) for a in node.names if a.name.startswith("sertk")
                    )


def test_sertk_imports_inside_functions_are_for_heavy_dependencies_only():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        if module.startswith(DEFERRING):
            continue
        for line, target in _imports_in_functions(path):
            if not target.startswith(HEAVY):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not found, "move these imports to the top of their module:\n" + "\n".join(found)


def test_architecture_doc_draws_the_checked_layers():
    pytest.importorskip("tomllib")  # the drawing script reads pyproject.toml with it (3.11+)
    drawn = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py"), "mermaid"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{drawn}\n```" in doc, (
        "regenerate it: python scripts/import_graph.py mermaid"
    )
