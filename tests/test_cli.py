import subprocess
import sys

from sertk import __version__
from sertk.cli import main


def test_info_lists_versions_device_and_extras(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert __version__ in out
    assert "torch" in out and "device" in out
    assert "ssl" in out and "onnx" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: sertk" in capsys.readouterr().out


def test_console_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "sertk", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"sertk {__version__}"
