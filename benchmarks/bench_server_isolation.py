"""A short request's latency while ``sertk serve`` analyses a 10-minute recording.

In one run, for each server layout (``--layouts``):

- ``pool``: the default: worker processes for short recordings (``--workers``, one per core)
  and one process, at a lower CPU priority, for recordings over 30 s;
- ``in-process`` (``--workers 0``): every request on one inference thread of the server, as
  before the pool (a long job holds everyone up);

measure the latency of a 2 s WAV sent to ``/v1/predict`` alone (``--samples`` sequential
requests, median: "idle"), then send a 10-minute WAV (18.3 MB, 16-bit, sound and pauses) to
``/v1/timeline`` (hop 1 s) and, from the moment a worker analyses it until its answer, the
same 2 s requests again, 0.1 s apart ("busy", median; a request sent while it runs counts even
if it had to wait for its end). The
ratio busy / idle is the figure (goal: <= 2 with the pool). Also printed: the timeline's own
wall time and the resident memory of the server plus its workers before and after.

Run: ``python benchmarks/bench_server_isolation.py [--model default] [--minutes 10]
[--samples 20] [--layouts pool in-process] [--json out.json]``. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server_common import (  # noqa: E402
    clip,
    long_recording,
    machine,
    model_path,
    post,
    rss_mb,
    start_server,
    stop_server,
    wav_bytes,
)

LAYOUTS = {"pool": [], "in-process": ["--workers", "0"]}


def latencies(
    base: str, data: bytes, count: int, *, while_running=None, pause: float = 0.0
) -> list[float]:
    """Seconds per request of up to ``count`` sequential predictions ``pause`` seconds apart,
    each sent while ``while_running()`` (all of them when it is None)."""
    found = []
    with httpx.Client(base_url=base, timeout=3600) as session:
        while len(found) < count and (while_running is None or while_running()):
            start = time.perf_counter()
            post(session, data).raise_for_status()
            found.append(time.perf_counter() - start)
            time.sleep(pause)
    return found


def analysing(base: str) -> bool:
    """Whether a worker of the server is busy (nothing else is sent while this is asked)."""
    lanes = httpx.get(f"{base}/healthz", timeout=60).json()["lanes"].values()
    return any(lane["busy"] for lane in lanes)


def measure(layout: str, model: str, short: bytes, long: bytes, args, folder: Path) -> dict:
    options = [*LAYOUTS[layout], "--request-timeout", "3600"]
    process, base = start_server(model, options, folder / f"{layout}.log")
    try:
        latencies(base, short, 5)  # warm-up
        idle = latencies(base, short, args.samples)
        rss_before = rss_mb(process.pid)
        done, result = threading.Event(), {}

        def timeline() -> None:
            start = time.perf_counter()
            with httpx.Client(base_url=base, timeout=3600) as session:
                response = post(session, long, "/v1/timeline", params={"hop": 1})
            result.update(status=response.status_code, seconds=time.perf_counter() - start)
            done.set()

        runner = threading.Thread(target=timeline)
        runner.start()
        while not analysing(base) and not done.is_set():  # uploaded, now in a worker
            time.sleep(0.05)
        busy = latencies(base, short, 10_000, while_running=lambda: not done.is_set(), pause=0.1)
        runner.join()
        rss_after = rss_mb(process.pid)
    finally:
        stop_server(process)
    idle_ms, busy_ms = 1000 * statistics.median(idle), 1000 * statistics.median(busy or [0])
    return {
        "layout": layout, "idle_ms": idle_ms, "busy_ms": busy_ms, "busy_samples": len(busy),
        "max_busy_ms": 1000 * max(busy or [0]), "ratio": busy_ms / idle_ms,
        "timeline_s": result["seconds"], "timeline_status": result["status"],
        "rss_before_mb": rss_before, "rss_after_mb": rss_after,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    short = wav_bytes(clip(2.0))
    long = wav_bytes(long_recording(60 * args.minutes))
    with tempfile.TemporaryDirectory() as folder:
        model, about = model_path(args.model, Path(folder))
        print(f"model: {about}; {args.minutes:g} min recording: {len(long) / 2**20:.1f} MB; "
              f"{machine()}")  # fmt: skip
        rows = [measure(layout, model, short, long, args, Path(folder)) for layout in args.layouts]
    print(f"\n{'layout':<11} {'idle ms':>8} {'busy ms':>8} {'(n)':>4} {'max busy':>9} "
          f"{'ratio':>6} {'timeline s':>10} {'RSS MB before/after':>20}")  # fmt: skip
    for row in rows:
        print(f"{row['layout']:<11} {row['idle_ms']:>8.1f} {row['busy_ms']:>8.1f} "
              f"{row['busy_samples']:>4} {row['max_busy_ms']:>9.1f} {row['ratio']:>5.2f}x "
              f"{row['timeline_s']:>10.1f} {row['rss_before_mb']:>9.0f} / "
              f"{row['rss_after_mb']:.0f}")  # fmt: skip
    print(f"({machine()})")
    if args.json:
        args.json.write_text(json.dumps({"model": about, "rows": rows}, indent=2))
    return 0 if all(row["timeline_status"] == 200 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
