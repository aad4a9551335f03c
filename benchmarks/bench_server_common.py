"""What the ``bench_server_*`` benchmarks share (not a benchmark itself): test audio, the model
to serve, ``sertk serve`` as a subprocess, client load, and the memory of a server and its
worker processes (from ``/proc``)."""

from __future__ import annotations

import io
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
from bench_predict import clip, long_recording  # the same test audio as bench_predict

__all__ = ["clip", "long_recording"]  # and the functions below

RATE = 16000
LABELS = ["neutral", "happy", "sad", "angry"]


def wav_bytes(signal: np.ndarray, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, signal, RATE, format="WAV", subtype=subtype)
    return buffer.getvalue()


def model_path(name: str, folder: Path) -> tuple[str, str]:
    """The bundle to serve and what it is: ``name`` if it resolves, else (for ``default``) an
    untrained reference-size bundle (64-band log-mel + GRU-attention, 3 s input) built here."""
    from sertk.errors import BundleError
    from sertk.recognizer import resolve_bundle

    try:
        return str(resolve_bundle(name)), name
    except BundleError as error:
        if name != "default":
            raise
        print(f"note: {error}\nnote: serving an untrained log-mel + GRU-attention bundle instead")
    import torch

    from sertk.audio import Preprocess
    from sertk.bundle import save_bundle
    from sertk.features import build_extractor
    from sertk.models import build_model

    torch.manual_seed(0)
    model = build_model("gru_attention", input_dim=64, num_classes=len(LABELS))
    path = save_bundle(
        folder / "logmel-gru", model=model, model_name="gru_attention", labels=LABELS,
        label_map={"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}},
        features=build_extractor({"name": "logmel", "n_mels": 64}),
        preprocess=Preprocess(duration=3.0),
    )  # fmt: skip
    return str(path), "untrained logmel-64 + gru_attention (hidden 256, 2 layers), 3 s input"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str, options: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """``python -m sertk serve --model MODEL OPTIONS`` on a free loopback port, once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "sertk", "serve", "--model", model, "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", *options]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the server did not answer /healthz within 300 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (the server and its workers), MB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
        )
        todo += _children(current)
    return total / 1024


def post(session: httpx.Client, data: bytes, path: str = "/v1/predict", **kw) -> httpx.Response:
    """One upload as a raw body (what a client that is not a form sends)."""
    return session.post(path, content=data, headers={"content-type": "audio/wav"}, **kw)


def load(base: str, data: bytes, concurrency: int, requests: int, cap: float) -> dict:
    """``concurrency`` threads, each with its own keep-alive client, POSTing ``data`` to
    ``/v1/predict`` until ``requests`` answers or ``cap`` seconds. A 503 is counted apart
    (``refused``: the server's deliberate answer to overload); anything else but 200 fails."""
    lock, issued = threading.Lock(), [0]
    latencies: list[float] = []
    refused, failures = [0], []
    start = time.perf_counter()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=300) as session:
            while True:
                with lock:
                    if issued[0] >= requests or time.perf_counter() - start > cap:
                        return
                    issued[0] += 1
                began = time.perf_counter()
                try:
                    response = post(session, data)
                    status = response.status_code
                    problem = (
                        None if status in (200, 503) else f"HTTP {status}: {response.text[:200]}"
                    )
                except httpx.HTTPError as error:
                    status, problem = None, f"{type(error).__name__}: {error}"
                with lock:
                    if status == 200:
                        latencies.append(time.perf_counter() - began)
                    elif status == 503:
                        refused[0] += 1
                    else:
                        failures.append(problem)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    pick = lambda q: 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "concurrency": concurrency, "answered": len(latencies), "refused": refused[0],
        "failed": len(failures), "seconds": wall, "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else None,
        "p99_ms": pick(0.99) if ordered else None, "failures": failures[:5],
    }  # fmt: skip


def machine() -> str:
    load1, load5, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load1:.1f} (1 min) / {load5:.1f} (5 min)"
