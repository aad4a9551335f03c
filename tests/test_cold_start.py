"""A lean cold start: what ``sertk --help`` and ``sertk predict`` load in a fresh interpreter
(the times themselves are measured by ``benchmarks/bench_predict.py``)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from sertk.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]


def loaded_by(*args: str) -> tuple[set[str], str]:
    """The modules ``sertk ARGS`` imported (run in a fresh interpreter) and its stdout."""
    code = (
        "import json, sys\nfrom sertk.cli import main\ntry:\n"
        f"    code = main({list(args)!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    return set(json.loads(done.stderr.splitlines()[-1])), done.stdout


def test_help_lists_every_command_and_imports_no_library():
    modules, out = loaded_by("--help")
    assert all(f"    {name}" in out for name in COMMANDS)
    assert not {"numpy", "scipy", "tqdm", "soundfile"} & modules
    assert {m for m in modules if m.startswith("sertk")} == {
        "sertk", "sertk._version", "sertk.cli", "sertk.errors"
    }  # fmt: skip


def test_predict_loads_its_command_alone_and_no_progress_bar_library(tmp_path):
    modules, out = loaded_by("predict", "examples/03a02Wc.flac", "--format", "csv")
    assert out.splitlines()[1].startswith("examples/03a02Wc.flac,angry,")
    commands = {m.removeprefix("sertk.cli.") for m in modules if m.startswith("sertk.cli.")}
    assert commands == {"predict", "options", "adapt", "_engine"}  # the command and its options
    assert not {"tqdm", "torch", "sertk.features.cache", "sertk.experiment"} & modules


def test_the_command_list_agrees_with_each_command_s_own_help():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {choice.dest: choice.help for choice in action._choices_actions} == COMMANDS
    assert list(action.choices) == list(COMMANDS)
