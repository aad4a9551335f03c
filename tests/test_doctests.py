"""The docstring examples of the package run in the test command and stay runnable.

pytest collects them (``--doctest-modules`` over ``src/sertk``, see pyproject.toml and
src/sertk/conftest.py). An example may be skipped (``# doctest: +SKIP``) only where it needs what the
repository does not hold (a corpus, trained runs, a microphone, a window, a checkpoint), and
says so in a comment before the directive. The number of skipped examples may not grow.
"""

from __future__ import annotations

import ast
import doctest
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "sertk"

# skipped examples left, each with its reason; lower it when one becomes runnable
SKIP_BUDGET = 25
REASON = re.compile(r"#\s*[a-z][^#]*?\s*#\s*doctest:[^\n]*\+SKIP")


def docstring_examples() -> list[tuple[str, doctest.Example]]:
    """(``file:line``, example) for every example in every docstring of the package, read from
    the source (nothing imported, so no extra is needed)."""
    parser = doctest.DocTestParser()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(
                node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
            ):
                continue
            text = ast.get_docstring(node, clean=False)
            if not text:
                continue
            line = node.body[0].lineno if node.body else 0
            for example in parser.get_examples(text, name=str(path)):
                where = f"{path.relative_to(ROOT)}:{line + example.lineno}"
                found.append((where, example))
    return found


def skipped(example: doctest.Example) -> bool:
    return example.options.get(doctest.SKIP, False)


def test_doctests_are_collected_by_the_test_command():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split()
    assert "src/sertk" in options["testpaths"]


def test_every_skipped_example_says_why():
    missing = [
        where
        for where, example in docstring_examples()
        if skipped(example) and not REASON.search(example.source)
    ]
    assert not missing, (
        f"+SKIP without a reason comment ('# needs a corpus  # doctest: +SKIP'): {missing}"
    )


def test_skipped_examples_do_not_grow():
    examples = docstring_examples()
    skips = [where for where, example in examples if skipped(example)]
    assert len(skips) <= SKIP_BUDGET, (
        f"{len(skips)} skipped docstring examples, at most {SKIP_BUDGET}: make the new one run "
        f"on examples/, the default model or a synthetic signal ({skips})"
    )
    assert len(examples) - len(skips) >= 3 * len(skips), "most examples must run"
