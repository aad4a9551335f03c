"""``sertk listen``: the emotion of live speech from a microphone (or a file played in real time).

A thin adapter over :class:`sertk.live.StreamingEngine`: results are drawn as a panel redrawn in
place on a terminal, or printed one line each when stdout is not a terminal; messages go to
stderr. Ctrl-C (or ``--duration``) stops; ``--output`` then saves the history.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sertk.cli import options
from sertk.errors import ConfigError
from sertk.smoothing import LIVE_SMOOTH

HISTORY_LIMIT = 20_000  # results kept for --output: ~2.8 hours at a 0.5 s hop


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "listen",
        help="show the emotion of live speech (microphone, or a file played in real time)",
        description="Analyse the newest --window seconds every --hop seconds, once a full window "
        "has arrived, and show the emotion, its confidence, every class and the input level as "
        "you speak. Silence is shown as silence. Ctrl-C stops and saves the history (--output).",
    )
    parser.add_argument(
        "--model", default="default", metavar="BUNDLE",
        help="model bundle folder, run folder, or 'default' (the shipped model)",
    )  # fmt: skip
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="INPUT", help=options.input_help("listen"))
    source.add_argument(
        "--file", type=Path, help="play this recording in real time instead of a microphone"
    )
    source.add_argument(
        "--list-devices", action="store_true", help="list the audio devices and exit"
    )
    parser.add_argument(
        "--window", type=float, metavar="S",
        help="seconds analysed each step (default: the model's input length)",
    )  # fmt: skip
    parser.add_argument(
        "--hop", type=float, default=0.5, metavar="S", help="seconds between analyses (default 0.5)"
    )
    options.add_smooth(parser, default=LIVE_SMOOTH, where="up to each result")
    parser.add_argument(
        "--no-vad", action="store_true", help="score every window, silence included"
    )
    parser.add_argument(
        "--no-adapt", action="store_true",
        help="an adaptive bundle: keep to its global model (default: adapt to the speaker "
        "once --adapt-min-seconds of speech were heard)",
    )  # fmt: skip
    parser.add_argument("--adapt-min-seconds", type=float, metavar="S",
                        help="speech heard before adapting (default: the bundle's)")  # fmt: skip
    options.add_vad(parser, old_threshold=True)
    options.add_model_pin(parser)
    parser.add_argument(
        "--fast",
        action="store_true",
        help="with --file: analyse every hop as fast as possible instead of in real time",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="save the history on exit: .csv or .jsonl"
    )
    parser.add_argument(
        "--duration", type=float, metavar="S", help="stop after this many seconds of audio"
    )
    options.add_device(parser, audio=True)
    parser.set_defaults(run=run)


def _check_options(args: argparse.Namespace) -> None:
    if args.output is not None and args.output.suffix.lower() not in (".csv", ".jsonl"):
        raise ConfigError(f"--output {args.output}: use a .csv or .jsonl file name")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be a positive number of seconds, got {args.duration}")
    if args.fast and args.file is None:
        raise ConfigError("--fast only applies to --file (a microphone runs in real time)")
    if args.adapt_min_seconds is not None and not args.adapt_min_seconds >= 0:
        raise ConfigError(f"--adapt-min-seconds must be >= 0, got {args.adapt_min_seconds}")


def _smooth(args: argparse.Namespace) -> float:
    """``--smooth``, or the deprecated ``--smoothing`` weight converted to seconds."""
    from sertk.smoothing import seconds_from_weight

    if args.smoothing is None:
        return args.smooth
    try:
        weight = float(args.smoothing)
    except ValueError:
        weight = args.smoothing
    span, note = seconds_from_weight(weight, hop=args.hop)
    options.warn(
        "listen",
        f"--smoothing (a weight) is now --smooth SECONDS; --smoothing {args.smoothing} {note}",
    )
    return span


def _engine(args: argparse.Namespace, recognizer: Any, results: queue.Queue) -> Any:
    from sertk.live import EnergyGate, StreamingEngine

    model_window = recognizer.preprocess.duration
    window = args.window if args.window is not None else (model_window or 3.0)
    if model_window is not None and window > model_window + 1e-9:
        raise ConfigError(
            f"--window {window:g} s is longer than the model's {model_window:g} s input: the "
            f"model would see only part of each window; use --window {model_window:g} or less"
        )
    return StreamingEngine.from_recognizer(
        recognizer,
        window=window,
        hop=args.hop,
        smooth=_smooth(args),
        vad=False if args.no_vad else EnergyGate(**options.vad_options(args, "listen")),
        deterministic=args.fast,
        on_result=results.put,
        history=HISTORY_LIMIT,
        adapt=False if args.no_adapt else None,
        min_seconds=args.adapt_min_seconds,
    )


def run(args: argparse.Namespace) -> int:
    from sertk.live import FileSource, MicrophoneSource, format_devices, list_devices
    from sertk.live.display import TerminalDisplay
    from sertk.live.sources import resolve_device

    if args.list_devices:
        print(format_devices(list_devices()))
        return 0
    compute, audio_input = options.split_devices(args, "listen")
    if args.file is not None and audio_input is not None:
        raise ConfigError("give --file or an audio --input, not both")
    _check_options(args)
    device = None if args.file is not None else resolve_device(audio_input)  # fail fast
    from sertk.recognizer import Recognizer

    recognizer = Recognizer.load(args.model, device=compute, sha256=args.model_sha256)
    rate = recognizer.sampling_rate
    if args.file is not None:
        source = FileSource(args.file, sampling_rate=rate, realtime=not args.fast)
        what = f"{args.file} ({'as fast as possible' if args.fast else 'in real time'})"
    else:
        source = MicrophoneSource(device, sampling_rate=rate)
        what = f"microphone {source.device_name!r}"
    results: queue.Queue = queue.Queue()
    engine = _engine(args, recognizer, results)
    print(
        f"listening to {what} with {recognizer.bundle.path} (window {engine.window:g} s, hop "
        f"{engine.hop:g} s, smooth {engine.smooth:g} s; the first result once {engine.window:g} s "
        "have arrived); Ctrl-C stops",
        file=sys.stderr,
    )
    if hasattr(engine.predict, "statistics"):
        print(f"adapting to the speaker: the global model answers until {_needed(engine):g} s "
              "of speech were heard, then the adapted one", file=sys.stderr)  # fmt: skip
    display = TerminalDisplay(recognizer.labels)
    interrupted = _show(engine.start(source), results, display, args.duration, source.realtime)
    engine.stop()
    if args.output is not None:
        engine.save_history(args.output)
        print(f"saved {len(engine.history)} results to {args.output}", file=sys.stderr)
    engine.raise_error()
    _summary(engine, interrupted)
    return 0


def _show(engine: Any, results: queue.Queue, display: Any, duration, realtime: bool) -> bool:
    """Display results until the stream ends, ``duration`` is reached or Ctrl-C (-> True)."""
    began = time.monotonic()
    try:
        while True:
            try:
                result = results.get(timeout=0.1)
            except queue.Empty:
                if engine.wait(0) and results.empty():
                    return False
                # a stalled real-time source must not outlive --duration
                if realtime and duration and time.monotonic() - began > duration + 1.0:
                    return False
                continue
            display.show(result)
            if duration is not None and result.time >= duration:
                return False
    except KeyboardInterrupt:
        return True


def _needed(engine: Any) -> float:
    session = engine.predict
    return session.recognizer.scorer.adaptation.min_seconds if session.min_seconds is None else (
        session.min_seconds)  # fmt: skip


def _adapted(engine: Any) -> str:
    """``; adapted after 20.5 s of speech`` for an adaptive session (else empty)."""
    session = engine.predict
    if not hasattr(session, "statistics"):
        return ""
    history = [r for r in engine.history if r.adaptation is not None and r.adaptation.adapted]
    if history:
        return f"; adapted from {history[0].time:.1f} s (after {session.seconds:.0f} s of speech in all)"
    return f"; never adapted: {session.seconds:.1f} s of speech heard"


def _summary(engine: Any, interrupted: bool) -> None:
    stats = engine.stats
    latencies = [r.latency_s for r in engine.history]
    median = f"{statistics.median(latencies) * 1000:.0f} ms" if latencies else "-"
    print(
        f"{'stopped' if interrupted else 'done'}: {stats['results']} results ({stats['speech']} "
        f"speech, {stats['silence']} silence, {stats['no_speech']} no speech), "
        f"{stats['skipped']} windows skipped, median latency {median}{_adapted(engine)}",
        file=sys.stderr,
    )
