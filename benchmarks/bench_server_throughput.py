"""Throughput of ``sertk serve`` against one in-process loop, and threads against processes.

In one run, on the same 3 s WAV clip and bundle (``--model``, default the shipped model):

- **loop**: one ``Recognizer`` calling ``predict_file(clip bytes)`` in a loop, in this process:
  clips/s, the baseline. Measured before and after the server; ratios use the mean of the two;
- **threads**: ``--threads`` threads, each with its own ``Recognizer``, doing the same loop, and
  the process's CPU time over wall time (above 1.0 only if the threads truly run in parallel);
- **server**: ``python -m sertk serve --workers W`` (default: one per core, the server's
  default; ``--worker-threads 1``) with 1, 8 and 32 clients (``--clients``), each a thread with
  its own keep-alive ``httpx.Client`` POSTing the clip as a raw body to ``/v1/predict`` until
  ``--requests`` answers or ``--cap`` seconds: requests/s and its ratio to the loop.

The clients run on the same machine as the server and take CPU from it; timings on a shared
machine vary run to run, so compare ratios within one run, and read the load average printed.

Run: ``python benchmarks/bench_server_throughput.py [--model default] [--workers 2]
[--clients 1 8 32] [--requests 400] [--json out.json]``. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server_common import (  # noqa: E402
    clip,
    load,
    machine,
    model_path,
    start_server,
    stop_server,
    wav_bytes,
)


def loop_rate(model: str, data: bytes, count: int) -> float:
    """Clips per second of one Recognizer predicting ``data`` ``count`` times in a loop."""
    from sertk.recognizer import Recognizer

    recognizer = Recognizer.load(model)
    recognizer.predict_file(data)  # warm-up
    start = time.perf_counter()
    for _ in range(count):
        recognizer.predict_file(data)
    return count / (time.perf_counter() - start)


def thread_rate(model: str, data: bytes, count: int, threads: int) -> tuple[float, float]:
    """Clips/s of ``threads`` threads with a Recognizer each, and CPU time / wall time."""
    from sertk.recognizer import Recognizer

    recognizers = [Recognizer.load(model) for _ in range(threads)]
    for recognizer in recognizers:
        recognizer.predict_file(data)

    def work(recognizer) -> None:
        for _ in range(count // threads):
            recognizer.predict_file(data)

    runners = [threading.Thread(target=work, args=(r,)) for r in recognizers]
    cpu, start = time.process_time(), time.perf_counter()
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    wall = time.perf_counter() - start
    return (count // threads) * threads / wall, (time.process_time() - cpu) / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=400, help="answers per level")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per level at most")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the loops, as each worker: one thread
    data = wav_bytes(clip(3.0))
    with tempfile.TemporaryDirectory() as folder:
        model, about = model_path(args.model, Path(folder))
        print(f"model: {about}\nclip: 3.0 s WAV, {len(data)} bytes; {machine()}")
        before = loop_rate(model, data, args.requests)
        print(f"loop (one Recognizer, in process): {before:7.1f} clips/s")
        threaded, cpu = thread_rate(model, data, args.requests, args.threads)
        print(f"{args.threads} threads, a Recognizer each:     {threaded:7.1f} clips/s "
              f"({threaded / before:.2f}x the loop; CPU/wall {cpu:.2f})")  # fmt: skip
        options = ["--workers", str(args.workers), "--worker-threads", "1"]
        process, base = start_server(model, options, Path(folder) / "server.log")
        rows = []
        try:
            load(base, data, 4, 40, args.cap)  # warm-up
            for clients in args.clients:
                rows.append(load(base, data, clients, args.requests, args.cap))
        finally:
            stop_server(process)
        after = loop_rate(model, data, args.requests)
    baseline = (before + after) / 2
    print(f"loop again: {after:7.1f} clips/s; baseline (mean) {baseline:.1f}")
    print(f"\nsertk serve --workers {args.workers} ({machine()})")
    print(f"{'clients':>7} {'answered':>8} {'503':>5} {'failed':>6} {'req/s':>7} "
          f"{'vs loop':>7} {'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
    for row in rows:
        row["vs_loop"] = row["rps"] / baseline
        print(f"{row['concurrency']:>7} {row['answered']:>8} {row['refused']:>5} "
              f"{row['failed']:>6} {row['rps']:>7.1f} {row['vs_loop']:>6.2f}x "
              f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}")  # fmt: skip
        for failure in row["failures"]:
            print(f"  failure: {failure}")
    if args.json:
        figures = {"model": about, "loop": [before, after], "threads": [threaded, cpu],
                   "rows": rows, "machine": machine()}  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if any(row["failed"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
