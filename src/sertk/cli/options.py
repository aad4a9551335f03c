"""Options that mean the same in every command, spelled once: compute device, audio input,
smoothing and the speech/silence threshold, plus the old spellings kept for one release.

- ``--device``: the compute device (``cpu``, ``cuda``, ``cuda:N``) in predict, listen, gui and
  serve (as in evaluate and extract);
- ``--input``: the audio input of listen and gui (an index or part of the device's name);
- ``--smooth S``: seconds over which probabilities are averaged (:mod:`sertk.smoothing`);
- ``--vad-floor DB`` / ``--vad-margin DB``: speech is at least DB dBFS and DB dB over the
  noise floor (:mod:`sertk.audio.speech`), in timelines, live analysis and the GUI;
- ``--jobs N``: worker processes for feature extraction in predict, evaluate, extract and train.
- ``--model-sha256 HASH``: every command that takes a model refuses one whose content hash
  (``sertk info BUNDLE``) differs (:mod:`sertk.bundle.integrity`);
- ``--max-duration S``: recordings longer than S seconds are refused from their header.

Old spellings (``listen --device 3``, ``--model-device``, ``--smoothing``, ``--vad-threshold``)
still work, each with a deprecation message on stderr; they are hidden from ``--help``.
"""

from __future__ import annotations

import argparse
import re
import sys

from sertk.audio.reader import DEFAULT_MAX_DURATION
from sertk.audio.speech import FLOOR_DB, MARGIN_DB, check_thresholds
from sertk.errors import ConfigError

COMPUTE_DEVICE = re.compile(r"(cpu|cuda(:\d+)?|mps)")
DEVICE_HELP = "compute device: cpu, cuda or cuda:N (default cpu)"


def warn(command: str, message: str) -> None:
    """Print a deprecation message for ``sertk command`` on stderr."""
    print(f"sertk {command}: deprecated: {message}", file=sys.stderr)


def is_compute_device(value: str) -> bool:
    return COMPUTE_DEVICE.fullmatch(value.strip().lower()) is not None


def check_device(value: str) -> str:
    """``value`` if it names a compute device, else ConfigError."""
    if not is_compute_device(value):
        raise ConfigError(f"--device must be a compute device (cpu, cuda or cuda:N), got {value!r}")
    return value.strip().lower()


def add_device(parser: argparse.ArgumentParser, *, audio: bool = False) -> None:
    """``--device`` (compute); with ``audio`` also ``--input`` is expected and the hidden
    ``--model-device`` (the compute device's old spelling there)."""
    parser.add_argument("--device", default=None, metavar="DEVICE", help=DEVICE_HELP)
    if audio:
        parser.add_argument("--model-device", help=argparse.SUPPRESS)


def input_help(command: str) -> str:
    return f"audio input: an index or part of its name (see `sertk {command} --list-devices`)"


def split_devices(args: argparse.Namespace, command: str) -> tuple[str, str | None]:
    """``(compute device, audio input)`` of listen/gui, from ``--device``/``--input`` and the
    old spellings: ``--device`` with a value that is no compute device is the audio input, and
    ``--model-device`` the compute device (each with a deprecation message)."""
    device, audio_input = args.device, args.input
    if device is not None and not is_compute_device(device):
        if audio_input is not None:
            raise ConfigError(
                f"--device {device!r} is not a compute device (cpu, cuda or cuda:N); the audio "
                f"input is already --input {audio_input!r}"
            )
        warn(
            command,
            f"--device {device} names an audio input, not a compute device; use --input "
            f"{device} (--device is the compute device: cpu, cuda or cuda:N)",
        )
        device, audio_input = None, device
    if args.model_device is not None:
        if device is not None:
            raise ConfigError("give the compute device once: --device (not --model-device too)")
        warn(command, f"--model-device is now --device; use --device {args.model_device}")
        device = args.model_device
    return check_device(device or "cpu"), audio_input


def add_smooth(
    parser: argparse.ArgumentParser, *, default: float, where: str, old: bool = True
) -> None:
    """``--smooth S`` (and the hidden old ``--smoothing``, which each command converts)."""
    parser.add_argument(
        "--smooth",
        type=float,
        default=default,
        metavar="S",
        help=f"average the probabilities over S seconds {where} (0: none; default {default:g})",
    )
    if old:
        parser.add_argument("--smoothing", help=argparse.SUPPRESS)


def add_vad(parser: argparse.ArgumentParser, *, old_threshold: bool = False) -> None:
    parser.add_argument(
        "--vad-floor",
        type=float,
        default=FLOOR_DB,
        metavar="DB",
        help=f"speech is at least DB dBFS, an absolute floor (default {FLOOR_DB:g})",
    )
    parser.add_argument(
        "--vad-margin",
        type=float,
        default=MARGIN_DB,
        metavar="DB",
        help=f"speech is also DB dB above the estimated noise floor (default {MARGIN_DB:g}; lower it "
        "for speech in loud noise)",
    )
    if old_threshold:
        parser.add_argument("--vad-threshold", type=float, help=argparse.SUPPRESS)


def add_jobs(parser: argparse.ArgumentParser) -> None:
    """``--jobs N``: worker processes for feature extraction (see :mod:`sertk.parallel`)."""
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes that read audio and extract features (default: one per usable "
        "core; 1 for SSL encoders and on a GPU); results do not depend on it",
    )


def check_jobs(args: argparse.Namespace) -> int | None:
    """``--jobs`` (None: automatic); ConfigError unless it is a positive integer."""
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be a positive number of worker processes, got {args.jobs}")
    return args.jobs


def vad_options(args: argparse.Namespace, command: str) -> dict[str, float]:
    """``{"floor_db", "margin_db"}`` from ``--vad-floor``/``--vad-margin`` (or the deprecated
    ``--vad-threshold``, which was the absolute floor)."""
    floor, name = args.vad_floor, "--vad-floor"
    if getattr(args, "vad_threshold", None) is not None:
        warn(command, f"--vad-threshold is now --vad-floor; use --vad-floor {args.vad_threshold:g}")
        floor, name = args.vad_threshold, "--vad-threshold"
    floor, margin = check_thresholds(floor, args.vad_margin, names=(name, "--vad-margin"))
    return {"floor_db": floor, "margin_db": margin}


def add_model_pin(parser: argparse.ArgumentParser, *, repeat: bool = False) -> None:
    """``--model-sha256 HASH`` (``repeat``: once per model, in order)."""
    parser.add_argument(
        "--model-sha256",
        metavar="HASH",
        action="append" if repeat else "store",
        help="refuse the model unless its content hash (as `sertk info BUNDLE` prints it) is "
        "HASH: pins exactly the bundle you tested"
        + (" (one per model, in order)" if repeat else ""),
    )


def add_max_duration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-duration",
        type=float,
        default=DEFAULT_MAX_DURATION,
        metavar="S",
        help=f"refuse recordings longer than S seconds, from their header, before decoding "
        f"(default {DEFAULT_MAX_DURATION:g} = {DEFAULT_MAX_DURATION / 3600:g} h; 0: no limit)",
    )


def max_duration(args: argparse.Namespace) -> float | None:
    """``--max-duration`` in seconds, None for no limit (0); ConfigError if negative."""
    value = args.max_duration
    if value is None or value == 0:
        return None
    if not value > 0:  # also NaN
        raise ConfigError(f"--max-duration must be seconds > 0 (0: no limit), got {value}")
    return float(value)
