"""Peak memory and wall time of ``sertk predict REC --timeline`` for 1 to 120 minute recordings,
before (a git commit's code) and after (this tree), in one run.

Each recording is EmoDB clips (``../shared/corpora/emodb`` or ``$SERTK_CORPORA``) separated by
1.5-3 s of quiet background, cycled to the length, written block by block as 16 kHz mono 16-bit
WAV (``--rate``/``--channels`` for other layouts). Every measurement is one child process running
the CLI with the default model; its peak resident memory is the kernel's high-water mark of that
process (``VmHWM`` in ``/proc/self/status``, read as it exits), its time the wall clock. The
"before" code is ``git archive REF src`` unpacked into a temporary folder and put first on
PYTHONPATH; it runs under an address-space limit (``--before-limit-gb``) so that a version that
needs tens of GB fails with a MemoryError instead of taking the shared machine down. Lengths run
in increasing order, before then after for each (``--repeat N``: alternating N times, the fastest
run kept), so both see the same machine load.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_timeline_memory.py [--minutes 1 10 60 120]
[--ref e2a2a31] [--after HEAD] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
PEAK = """
import runpy, sys
out, sys.argv = sys.argv[1], ["sertk", *sys.argv[2:]]
try:
    runpy.run_module("sertk", run_name="__main__")
finally:
    status = open("/proc/self/status").read()
    open(out, "w").write(status.split("VmHWM:")[1].split()[0])
"""


def corpus_dir() -> Path:
    default = REPO.parent / "shared" / "corpora"
    path = Path(os.environ.get("SERTK_CORPORA", default)) / "emodb" / "wav"
    if not path.is_dir():
        sys.exit(f"EmoDB not found at {path}; set SERTK_CORPORA")
    return path


def write_recording(path: Path, minutes: float, *, rate: int, channels: int) -> Path:
    """EmoDB clips with quiet gaps, cycled to ``minutes``, written block by block."""
    from sertk.audio import load_audio

    clips = [load_audio(f, sampling_rate=rate)[0] for f in sorted(corpus_dir().glob("*.flac"))]
    rng = np.random.default_rng(0)
    total, index = round(minutes * 60 * rate), 0
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16") as out:
        written = 0
        while written < total:
            gap = rng.normal(0, 3e-4, round(rng.uniform(1.5, 3.0) * rate))
            part = np.concatenate([clips[index % len(clips)], gap])[: total - written]
            out.write(np.repeat(part[:, None], channels, axis=1) if channels > 1 else part)
            written, index = written + len(part), index + 1
    return path


def before_tree(ref: str, folder: Path) -> Path:
    """``src`` of git commit ``ref`` unpacked under ``folder`` (created)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", ref, "src"], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def sertk_peak_rss(
    arguments: list[str], *, env: dict | None = None, limit_gb: float | None = None
) -> tuple[float | None, subprocess.CompletedProcess, float]:
    """``sertk ARGUMENTS`` in a child process (under an address-space limit of ``limit_gb``):
    its peak resident memory in MB (None if it died before reporting), the completed process,
    and the wall time (also used by tests/test_long_audio.py)."""

    def cap() -> None:
        if limit_gb is not None:
            size = int(limit_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "peak"
        command = [sys.executable, "-c", PEAK, str(report), *arguments]
        start = time.perf_counter()
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, preexec_fn=cap, check=False
        )
        wall = time.perf_counter() - start
        peak = int(report.read_text()) / 1024 if report.exists() else None
    return peak, result, wall


def measure(src: Path, recording: Path, *, limit_gb: float | None) -> dict:
    """Wall time and peak RSS of ``sertk predict recording --timeline`` with ``src`` first."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    arguments = ["predict", str(recording), "--timeline", "--format", "json", "--no-progress"]
    peak, result, wall = sertk_peak_rss(arguments, env=env, limit_gb=limit_gb)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return {"ok": False, "wall_s": wall, "peak_mb": peak, "error": last[:200]}
    (timeline,) = json.loads(result.stdout)
    speech = sum(s["end"] - s["start"] for s in timeline["segments"] if s["speech"])
    return {"ok": True, "wall_s": wall, "peak_mb": peak, "windows": len(timeline["windows"]),
            "segments": len(timeline["segments"]), "speech_s": speech}  # fmt: skip


def best(results: list[dict]) -> dict:
    """The fastest run, with the highest peak of all (failed runs win: they are the news)."""
    failed = [r for r in results if not r["ok"]]
    if failed:
        return failed[0]
    fastest = min(results, key=lambda r: r["wall_s"])
    peaks = [r["peak_mb"] for r in results if r["peak_mb"] is not None]
    return {**fastest, "peak_mb": max(peaks) if peaks else None, "runs": len(results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60, 120])
    parser.add_argument("--ref", default="e2a2a31", help="git commit of the 'before' code")
    parser.add_argument(
        "--after", help="git commit of the 'after' code (default: this working tree's src)"
    )
    parser.add_argument("--rate", type=int, default=RATE)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--before-limit-gb", type=float, default=8.0)
    parser.add_argument("--no-before", action="store_true", help="measure this tree only")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="runs of each (before, after alternating); the fastest is kept, and the highest peak",
    )  # fmt: skip
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        before = None if args.no_before else before_tree(args.ref, folder / "before")
        after = REPO / "src" if args.after is None else before_tree(args.after, folder / "after")
        for minutes in args.minutes:
            recording = write_recording(folder / f"rec_{minutes:g}min.wav", minutes,
                                        rate=args.rate, channels=args.channels)  # fmt: skip
            row = {"minutes": minutes, "file_mb": recording.stat().st_size / 1e6}
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.repeat):
                if before is not None:
                    runs["before"].append(measure(before, recording, limit_gb=args.before_limit_gb))
                runs["after"].append(measure(after, recording, limit_gb=None))
            row.update({name: best(results) for name, results in runs.items() if results})
            recording.unlink()
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nsertk predict REC --timeline, default model ({args.rate} Hz, {args.channels} ch WAV); "
          f"before = {args.ref}, after = {args.after or 'working tree'}")  # fmt: skip
    print(f"{'minutes':>8} {'before s':>9} {'before MB':>10} {'after s':>8} {'after MB':>9} "
          f"{'after s/min':>11} {'windows':>8}")  # fmt: skip
    for row in rows:
        old, new = row.get("before", {}), row["after"]

        def cell(result: dict, key: str, width: int) -> str:
            if not result:
                return f"{'-':>{width}}"
            if not result["ok"] and key == "wall_s":
                return f"{'failed':>{width}}"
            value = result.get(key)
            return f"{value:>{width}.1f}" if value is not None else f"{'?':>{width}}"

        per_minute = new["wall_s"] / row["minutes"]
        print(f"{row['minutes']:>8g} {cell(old, 'wall_s', 9)} {cell(old, 'peak_mb', 10)} "
              f"{cell(new, 'wall_s', 8)} {cell(new, 'peak_mb', 9)} {per_minute:>11.2f} "
              f"{new.get('windows', 0):>8}")  # fmt: skip
        if old and not old["ok"]:
            print(f"{'':>8} before failed: {old['error']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
