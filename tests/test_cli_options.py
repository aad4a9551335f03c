"""One spelling and one meaning per option across the commands (``sertk.cli.options``)."""

from __future__ import annotations

import argparse

import pytest

from sertk.cli import build_parser, main

MODEL_COMMANDS = ("predict", "listen", "gui", "serve")
HIDDEN = ("--model-device", "--workers-threads", "--smoothing", "--vad-threshold")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_no_option_has_two_long_spellings_in_any_command():
    for name, parser in subparsers().items():
        for action in parser._actions:
            longs = [s for s in action.option_strings if s.startswith("--")]
            assert len(longs) <= 1, f"sertk {name}: {longs} spell one option twice"


def test_device_input_smooth_and_vad_read_the_same_in_every_command():
    helps = {name: parser.format_help() for name, parser in subparsers().items()}
    for name in MODEL_COMMANDS:
        text = " ".join(helps[name].split())
        assert "--device DEVICE compute device: cpu, cuda or cuda:N (default cpu)" in text, name
        assert not any(old in text for old in HIDDEN), name
    for name in ("listen", "gui"):
        assert "--input INPUT audio input: an index or part of its name" in " ".join(
            helps[name].split()
        )
    for name in ("predict", "listen", "gui"):
        text = " ".join(helps[name].split())
        assert "--smooth S average the probabilities over S seconds" in text, name
        assert "--vad-floor DB speech is at least DB dBFS, an absolute floor (default -80)" in text
        assert "--vad-margin DB speech is also DB dB above the estimated noise floor" in text


def test_serve_keeps_the_old_thread_spelling_for_one_release(capsys):
    assert main(["serve", "--workers-threads", "2", "--port", "70000"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "sertk serve: deprecated: --workers-threads is now --worker-threads 2",
        "sertk serve: error: --port must be between 0 and 65535, got 70000",
    ]
    assert main(["serve", "--worker-threads", "2", "--workers-threads", "2"]) == 2
    assert "give --worker-threads once" in capsys.readouterr().err
    assert main(["serve", "--device", "gpu"]) == 2
    assert capsys.readouterr().err == (
        "sertk serve: error: --device must be a compute device (cpu, cuda or cuda:N), got 'gpu'\n"
    )


@pytest.mark.parametrize(
    ("args", "device", "audio_input", "message"),
    [
        (["--device", "cuda:1", "--input", "2"], "cuda:1", "2", None),
        (["--device", "CPU"], "cpu", None, None),
        (["--device", "3"], "cpu", "3", "--device 3 names an audio input"),
        (["--model-device", "cuda"], "cuda", None, "--model-device is now --device"),
    ],
)
def test_the_compute_device_and_the_audio_input_are_told_apart(
    capsys, args, device, audio_input, message
):
    from sertk.cli.options import split_devices

    parsed = subparsers()["listen"].parse_args(args)
    assert split_devices(parsed, "listen") == (device, audio_input)
    err = capsys.readouterr().err
    assert (message in err) if message else err == ""
