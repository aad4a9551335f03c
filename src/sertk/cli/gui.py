"""``sertk gui``: the desktop app (PySide6): live emotion from a microphone, file analysis.

Qt is imported only in ``run``: without PySide6, ``sertk gui`` says how to install it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sertk.cli import options
from sertk.errors import ConfigError
from sertk.smoothing import LIVE_SMOOTH, check_smooth

INSTALL_HINT = "pip install 'sertk[gui]'"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "gui",
        help="desktop app: live emotion from a microphone, timelines of recordings",
        description="A window with Start/Stop, a live level meter, the current emotion with "
        "per-class confidence bars, a scrolling emotion timeline and a history table that can "
        f"be saved; Open file… analyses a recording. Needs PySide6 ({INSTALL_HINT}).",
    )
    parser.add_argument(
        "--model", default="default", metavar="BUNDLE",
        help="model bundle folder, run folder, or 'default' (the shipped model)",
    )  # fmt: skip
    parser.add_argument("--input", metavar="INPUT", help=options.input_help("listen"))
    parser.add_argument(
        "--file", type=Path, help="offer this recording as a live input, played in real time"
    )
    parser.add_argument(
        "--hop", type=float, default=0.5, metavar="S",
        help="seconds between analyses, live and in files (default 0.5)",
    )  # fmt: skip
    options.add_smooth(
        parser,
        default=LIVE_SMOOTH,
        where="up to each live result, around each window of a file",
        old=False,
    )
    options.add_vad(parser)
    options.add_model_pin(parser)
    parser.add_argument(
        "--autostart", action="store_true", help="start listening once the model is loaded"
    )
    parser.add_argument(
        "--quit-after", type=float, metavar="S", help="close the window after S seconds (demos)"
    )
    options.add_device(parser, audio=True)
    parser.set_defaults(run=run)


def _has_display() -> bool:
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    device, audio_input = options.split_devices(args, "gui")
    smooth = check_smooth(args.smooth, name="--smooth")
    vad = options.vad_options(args, "gui")
    if not args.hop > 0:
        raise ConfigError(f"--hop must be a positive number of seconds, got {args.hop}")
    if args.quit_after is not None and not args.quit_after > 0:
        raise ConfigError(
            f"--quit-after must be a positive number of seconds, got {args.quit_after}"
        )
    try:
        import PySide6  # noqa: F401
    except ImportError:
        print(
            f"sertk gui: error: the GUI needs PySide6; install it: {INSTALL_HINT}", file=sys.stderr
        )
        return 2
    if not _has_display():
        print(
            "sertk gui: error: no display (DISPLAY/WAYLAND_DISPLAY unset); run it in a desktop "
            "session, or headless with QT_QPA_PLATFORM=offscreen",
            file=sys.stderr,
        )
        return 2
    from sertk.bundle import pin_bundle
    from sertk.gui.app import run_app

    pin_bundle(args.model, args.model_sha256)  # the window then loads that bundle

    return run_app(
        model=args.model,
        device=device,
        audio_input=audio_input,
        file=args.file,
        hop=args.hop,
        smooth=smooth,
        vad=vad,
        autostart=args.autostart,
        quit_after=args.quit_after,
    )
