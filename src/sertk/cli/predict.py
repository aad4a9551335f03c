"""``sertk predict``: emotions of audio files with a model bundle (a thin adapter over Recognizer).

    sertk predict clip.wav                               # the default model, a table
    sertk predict recordings/ --recursive --format csv --output predictions.csv
    sertk predict meeting.wav --timeline --hop 0.5 --smooth 1.5 --plot meeting.png

Folders expand to the audio files in them (``--recursive``: also in sub-folders). Files are read
and predicted in batches with a progress bar on stderr. A file that cannot be read is reported on
stderr with its error and the others still go on; the exit status is then 1. Results go to
stdout (or ``--output``): an aligned table, a JSON array, or CSV (one row per file, or per
segment with ``--timeline``).

``--timeline`` finds speech with an absolute floor (``--vad-floor`` dBFS) and a margin over the
noise floor (``--vad-margin`` dB), and averages probabilities over ``--smooth`` seconds centred
on each window: the same options, with the same meaning, as ``sertk listen`` and ``sertk gui``.

Recordings are read block by block: ``--timeline`` of a two-hour file holds one block of audio
at a time, and a file longer than 60 s without ``--timeline`` gets one label from its timeline
(the windows' probabilities averaged, weighted by the speech each covers; a note on stderr says
so, the JSON's ``windows`` counts them). ``--max-duration S`` (default 4 h) refuses longer
recordings from their header; ``--model-sha256 HASH`` refuses any model but the one you tested.
JSON and CSV results carry the model's content hash (``model_sha256``).

``--adapt`` adapts a bundle that can adapt (speaker-adapted, or adaptive: a global and an
adapted model) to each speaker's own speech, unlabelled: ``--adapt speaker`` with
``--speaker-pattern REGEX`` or ``--speakers FILE.csv``, ``--adapt all`` when the files are one
speaker, ``--timeline --adapt session`` for a recording's own speech (see ``sertk.cli.adapt``).
Which speakers, with how many files and seconds of speech, is printed on stderr. A file without
speech (silence, a tone, noise) is labelled ``no speech``, in every format.

``--plot OUT.png`` writes the explain picture (waveform, attention or timeline, probabilities),
titled with the file and the model, and prints the path it wrote on stderr; with several files
it writes one picture per file, ``OUT-<file stem>.png`` beside ``OUT.png`` (a file stem met again
gets ``OUT-<file stem>-2.png`` and so on, in input order).

``--engine ray --output preds.parquet`` (or .csv, .jsonl) predicts on a Ray cluster instead
(see :mod:`sertk.scale.predict`): one row per file, resumable, progress in files/s.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from sertk.cli import adapt, options
from sertk.cli._engine import add_engine_options, check_engine_options, predict_on_ray
from sertk.errors import ConfigError, SertkError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".caf", ".w64")
TOP = 3  # probabilities shown per file in the table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict the emotion of audio files (or a timeline of a long recording)"
    )
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                        help="audio files or folders (--engine ray: also manifest CSVs)")  # fmt: skip
    parser.add_argument(
        "--model", default="default", metavar="BUNDLE",
        help="model bundle folder, run folder, or 'default' (the shipped model)",
    )  # fmt: skip
    parser.add_argument("--timeline", action="store_true", help="segments over time per file")
    parser.add_argument("--window", type=float, metavar="S", help="timeline window (s)")
    parser.add_argument("--hop", type=float, default=1.0, metavar="S", help="timeline hop (s)")
    options.add_smooth(parser, default=0.0, where="centred on each timeline window")
    options.add_vad(parser)
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--plot", metavar="OUT.png", help="write the explain picture(s)")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write results here instead of stdout"
    )
    parser.add_argument("--recursive", action="store_true", help="also search sub-folders")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N")
    adapt.add_options(parser)
    options.add_max_duration(parser)
    options.add_model_pin(parser)
    options.add_device(parser)
    options.add_jobs(parser)
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="onnx: run a folder written by `sertk export` with onnxruntime",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_options(parser, workers_help="with --engine ray: predictor actors (default: "
                       "the cluster's CPUs less one, or its GPUs)")  # fmt: skip
    parser.set_defaults(run=run)


def expand_inputs(inputs: list[str], *, recursive: bool) -> tuple[list[Path], list[str]]:
    """Files to predict (folders expanded, sorted) and messages for inputs that gave none."""
    files: list[Path] = []
    problems: list[str] = []
    for name in inputs:
        path = Path(name)
        if not path.is_dir():
            files.append(path)  # missing or unreadable files fail with their precise error later
            continue
        pattern = path.rglob("*") if recursive else path.glob("*")
        found = sorted(p for p in pattern if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not found:
            hint = "" if recursive else "; add --recursive to search sub-folders"
            problems.append(
                f"{name}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder{hint}"
            )
        files += found
    return files, problems


def plot_paths(plot: str, files: list[Path]) -> dict[Path, Path]:
    """``--plot`` target per file: ``plot`` itself for one file, else ``<stem>-<file stem>.png``
    beside it (a repeated file stem gets ``-2``, ``-3``... in input order)."""
    out = Path(plot)
    if len(files) == 1:
        return {files[0]: out}
    targets: dict[Path, Path] = {}
    seen: dict[str, int] = {}
    for file in files:
        seen[file.stem] = seen.get(file.stem, 0) + 1
        suffix = "" if seen[file.stem] == 1 else f"-{seen[file.stem]}"
        targets[file] = out.with_name(f"{out.stem}-{file.stem}{suffix}{out.suffix or '.png'}")
    return targets


def run(args: argparse.Namespace) -> int:
    from sertk.recognizer import Recognizer

    check_engine_options(args)
    if args.engine == "ray":
        return predict_on_ray(args)
    files, problems = expand_inputs(args.inputs, recursive=args.recursive)
    for problem in problems:
        print(f"sertk predict: {problem}", file=sys.stderr)
    if not files:
        raise SertkError("no audio files to predict; give files or folders that hold some")
    timeline = _check_options(args)
    recognizer = Recognizer.load(
        args.model, device=options.check_device(args.device or "cpu"), backend=args.backend,
        jobs=options.check_jobs(args), sha256=args.model_sha256,
    )  # fmt: skip
    args.mode = adapt.check_options(args, recognizer)
    speakers = adapt.speakers_of(files, args, args.mode)
    # adaptation needs all utterances of a speaker in one call
    step = 1 if args.timeline else len(files) if speakers else args.batch_size
    writer = _Writer(args, recognizer.labels, files)
    targets = plot_paths(args.plot, files) if args.plot else {}
    failed = len(problems)
    with progress_bar(len(files), show=not args.no_progress) as bar:
        for start in range(0, len(files), step):
            chunk = files[start : start + step]
            for file, result in zip(
                chunk, _predict(recognizer, chunk, args, timeline, speakers), strict=True
            ):
                if not isinstance(result, SertkError) and args.plot:
                    result = _plot(
                        recognizer, file, result, targets[file], timeline["max_duration"]
                    )
                    if not isinstance(result, SertkError):
                        bar.write(f"sertk predict: wrote {targets[file]}", file=sys.stderr)
                if _summarised(result):
                    bar.write(_summary_note(file, result), file=sys.stderr)
                if isinstance(result, SertkError):
                    failed += 1
                    message = str(result)  # AudioErrors already start with the file name
                    message = message if message.startswith(str(file)) else f"{file}: {message}"
                    bar.write(f"sertk predict: {message}", file=sys.stderr)
                else:
                    writer.add(file, result)
            bar.update(len(chunk))
    writer.close()
    return 1 if failed else 0


def progress_bar(total: int, *, show: bool) -> Any:
    """A tqdm bar of ``total`` files on stderr when it is a terminal (and ``show``), else one
    that draws nothing; both print messages with ``write``. tqdm loads only to draw a bar."""
    if show and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, unit="file", file=sys.stderr)
    return _NoBar()


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, count: int) -> None:
        pass

    def write(self, text: str, file: Any = None) -> None:
        print(text, file=file or sys.stdout)


def _check_options(args: argparse.Namespace) -> dict[str, Any]:
    """Fail early (exit 2) on bad --batch-size/--window/--hop/--smooth; returns the timeline's
    smoothing and speech detection options (``smooth``, ``vad``)."""
    from sertk.recognizer.timeline import check_seconds
    from sertk.smoothing import check_smooth, seconds_from_windows

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be a positive integer, got {args.batch_size}")
    hop = check_seconds("--hop", args.hop)
    if args.window is not None and hop > check_seconds("--window", args.window):
        raise ConfigError(f"--hop {hop} must not exceed --window {args.window}")
    smooth = check_smooth(args.smooth, name="--smooth")
    limit = options.max_duration(args)
    if args.smoothing is not None:
        if smooth:
            raise ConfigError("give --smooth (seconds) or the deprecated --smoothing, not both")
        smooth, note = seconds_from_windows(args.smoothing, hop=hop)
        options.warn(
            "predict",
            f"--smoothing (a number of windows) is now --smooth SECONDS; --smoothing "
            f"{args.smoothing} {note}",
        )
    return {"smooth": smooth, "vad": options.vad_options(args, "predict"), "max_duration": limit}


def _predict(recognizer, files: list[Path], args, timeline: dict[str, Any], speakers) -> list:
    """Predictions (or timelines) for ``files``; a SertkError in place of each one that failed."""
    attention = bool(args.plot) and recognizer.has_attention
    if not args.timeline and speakers is not None:
        results, summaries = recognizer.predict_adapted(
            files, batch_size=args.batch_size, speakers=speakers, attention=attention,
            min_seconds=args.adapt_min_seconds, on_error="return",
            max_duration=timeline["max_duration"],
        )  # fmt: skip
        adapt.report(summaries)
        return results
    if not args.timeline:
        return recognizer.predict_batch(
            files, batch_size=args.batch_size, attention=attention, on_error="return",
            max_duration=timeline["max_duration"],
        )  # fmt: skip
    results: list[Any] = []
    for file in files:
        try:
            results.append(recognizer.timeline(
                file, window=args.window, hop=args.hop, speaker=args.speaker,
                adapt=args.mode == "session", batch_size=args.batch_size, **timeline,
            ))  # fmt: skip
        except SertkError as error:
            results.append(error)
    return results


def _summarised(result: Any) -> bool:
    """A Prediction of a long recording, summarised from its timeline."""
    return not hasattr(result, "segments") and getattr(result, "windows", None) is not None


def _summary_note(file: Path, result: Any) -> str:
    return (
        f"sertk predict: {file} lasts {result.duration:.1f} s: its label averages the "
        f"probabilities of {result.windows} timeline windows, weighted by the speech each "
        "covers (--timeline shows them)"
    )


def _plot(recognizer, file: Path, result: Any, path: Path, limit: float | None) -> Any:
    """Write the explain picture of ``file``; returns ``result``, or a SertkError if that failed.
    A long recording is drawn from its outline (``envelope``), read block by block."""
    from sertk.audio import audio_blocks, load_audio
    from sertk.audio.stream import envelope
    from sertk.plotting import plot_prediction
    from sertk.recognizer.long_audio import LONG_RECORDING

    try:
        if result.duration > LONG_RECORDING or _summarised(result):
            stream = audio_blocks(file, sampling_rate=recognizer.sampling_rate, max_duration=limit)
            signal, rate = envelope(stream), 1000
        else:
            signal, rate = load_audio(file, sampling_rate=recognizer.sampling_rate)
        if not hasattr(result, "segments") and not _summarised(result):
            signal = recognizer.preprocess(signal, rate)  # attention refers to the model input
        title = f"{file} · model {_model_name(recognizer)}"
        plot_prediction(path, signal, rate, result, recognizer.labels, title=title)
    except OSError as error:
        return SertkError(f"cannot write the plot {path}: {error}")
    except SertkError as error:
        return error
    return result


def _model_name(recognizer) -> str:
    """How the picture names the model: "default" or the bundle's path."""
    from sertk.recognizer import DEFAULT_MODEL

    path = Path(recognizer.bundle.path)
    return "default" if path.resolve() == Path(DEFAULT_MODEL).resolve() else str(path)


def _csv_cells(result: Any, labels, *, adapted: bool) -> list[str]:
    """``label, confidence, speech[, adapted], p...`` of one file (empty cells where None)."""
    probabilities = result.probabilities or {}
    cells = [result.label, "" if result.confidence is None else f"{result.confidence:.6f}",
             str(result.speech).lower()]  # fmt: skip
    if adapted:
        cells.append("" if result.adaptation is None else str(result.adaptation.adapted).lower())
    return cells + [f"{probabilities[k]:.6f}" if k in probabilities else "" for k in labels]


def _open_output(path: str):

    try:
        return open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close())
    except OSError as error:
        raise SertkError(f"cannot write --output {path}: {error}") from None


class _Writer:
    """Streams table/CSV rows as results arrive; JSON is written as one array at the end."""

    def __init__(self, args: argparse.Namespace, labels: tuple[str, ...], files: list[Path]):
        self.format, self.timeline, self.labels = args.format, args.timeline, labels
        self.stream = _open_output(args.output) if args.output else sys.stdout
        self.records: list[dict] = []
        self.width = max(len("file"), *(len(str(f)) for f in files))
        self.csv = csv.writer(self.stream) if self.format == "csv" else None
        self.adapted = args.mode is not None
        if self.csv is not None:
            head = ["start", "end", "label", "confidence", "speech"] if self.timeline else [
                "label", "confidence", "speech", *(["adapted"] if self.adapted else [])]  # fmt: skip
            self.csv.writerow(["file", *head, *labels, "model_sha256"])
        elif self.format == "table" and not self.timeline:
            self._line(f"{'file':<{self.width}}  {'label':<12} {'conf':>5}  top probabilities")

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def add(self, file: Path, result: Any) -> None:
        if self.format == "json":
            self.records.append({"file": str(file), **result.to_dict()})
        elif self.timeline:
            self._add_timeline(file, result)
        elif self.csv is not None:
            self.csv.writerow(
                [file, *_csv_cells(result, self.labels, adapted=self.adapted), result.model_sha256]
            )
        elif not result.speech:  # no emotion: say why instead of the model's guess
            self._line(f"{str(file):<{self.width}}  {result.label:<12} {'-':>5}  "
                       f"({result.no_speech})")  # fmt: skip
        else:
            top = "  ".join(f"{label} {value:.2f}" for label, value in result.top(TOP))
            mark = "" if result.adaptation is None else f"  [{result.adaptation.describe()}]"
            self._line(
                f"{str(file):<{self.width}}  {result.label:<12} {result.confidence:5.2f}  "
                f"{top}{mark}"
            )

    def _add_timeline(self, file: Path, timeline: Any) -> None:
        if self.csv is not None:
            for row in timeline.to_rows():
                values = ["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)
                          for v in row.values()]  # fmt: skip
                self.csv.writerow([file, *values, timeline.model_sha256])
            return
        state = timeline.adaptation
        note = "" if state is None else f", {state.describe()}: {state.seconds:.1f} s of speech"
        self._line(f"{file}  ({timeline.duration:.2f} s{note})")
        for s in timeline.segments:
            detail = f"{s.confidence:5.2f}" if s.speech else ""
            self._line(f"  {s.start:8.2f} {s.end:8.2f}  {s.label:<12} {detail}")

    def close(self) -> None:
        if self.format == "json":
            json.dump(self.records, self.stream, indent=2)
            self.stream.write("\n")
        if self.stream is not sys.stdout:
            self.stream.close()
        else:
            self.stream.flush()
