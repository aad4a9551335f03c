"""Inference speed of ``sertk predict`` and the Recognizer: cold start, latency, real-time factor.

For a bundle (``--model``: a path, ``"default"`` for the shipped model, or ``"random-logmel"``
for an untrained 64-band log-mel + GRU-attention bundle built here) and, unless ``--no-hubert``,
for a full-size HuBERT-base bundle with random weights (``HubertConfig()`` saved with
``save_pretrained`` to a temporary folder, an untrained ``gru_attention`` head on its last layer
saved with ``save_bundle``), measures

- cold start: wall time of ``python -m sertk predict clip.wav --model BUNDLE`` as a subprocess
  (median of ``--runs``) next to ``python -c pass``, ``python -c "import sertk.cli"`` and
  ``python -c "import torch"`` (what any torch bundle must pay);
- per-clip latency of ``Recognizer.predict_file`` on a 3 s clip (warm, median), per-clip time
  of ``predict_batch`` over 16 clips, and the real-time factor (seconds of compute per second
  of audio; below 1 is faster than real time);
- ``Recognizer.timeline`` of a 60 s recording (window = the bundle's crop, hop 1 s);
- HuBERT only: the ratio of an end-to-end ``predict_signal`` of a 3 s clip to the encoder's own
  forward pass on the same clip (``SslEncoder(clip)``; goal: within 1.1x).

Timings vary run to run on shared machines: compare the ratios printed by one run; pass
``--threads 1`` when the machine is busy (also exported as OMP_NUM_THREADS to subprocesses).

Run: ``python benchmarks/bench_predict.py [--model random-logmel] [--runs 5] [--threads 1]
[--no-hubert] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
LABELS = ["neutral", "happy", "sad", "angry"]


def clip(seconds: float, *, seed: int = 0) -> np.ndarray:
    """A gliding tone with bursts of noise: float32 ``[samples]`` at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    pitch = 180 + 60 * np.sin(2 * np.pi * 0.5 * t)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    signal = 0.3 * envelope * np.sin(2 * np.pi * np.cumsum(pitch) / RATE)
    return (signal + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def long_recording(seconds: float = 60.0) -> np.ndarray:
    """Alternating 4 s of sound and 2 s of near silence."""
    parts, total, seed = [], 0.0, 0
    while total < seconds:
        parts += [clip(4.0, seed=seed), np.zeros(2 * RATE, np.float32)]
        total, seed = total + 6.0, seed + 1
    return np.concatenate(parts)[: round(seconds * RATE)]


def median_wall(command: list[str], runs: int, env: dict) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_call(function, runs: int) -> float:
    function()  # warm-up: first-call costs (lazy imports, allocator) are not latency
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def save_head(path: Path, input_dim: int, features, duration: float = 3.0) -> Path:
    """An untrained reference-size GRU-attention head over ``features`` saved as a bundle."""
    import torch

    from sertk.audio import Preprocess
    from sertk.bundle import save_bundle
    from sertk.models import build_model

    torch.manual_seed(0)
    model = build_model("gru_attention", input_dim=input_dim, num_classes=len(LABELS))
    label_map = {"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}}
    return save_bundle(path, model=model, model_name="gru_attention", labels=LABELS,
                       label_map=label_map, features=features,
                       preprocess=Preprocess(duration=duration))  # fmt: skip


def random_logmel(folder: Path) -> Path:
    from sertk.features import build_extractor

    return save_head(folder / "logmel", 64, build_extractor({"name": "logmel", "n_mels": 64}))


def random_hubert(folder: Path):
    """A HuBERT-base with random weights and a head on it; returns (bundle, encoder)."""
    import torch
    from transformers import HubertConfig, HubertModel

    from sertk.features.ssl import SslEncoder

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(folder / "hubert-base")
    encoder = SslEncoder(str(folder / "hubert-base"))
    return save_head(folder / "hubert-bundle", encoder.dim, encoder), encoder


def measure(name: str, bundle: Path, folder: Path, args, env: dict, encoder=None) -> dict:
    """Every figure for one bundle (see the module docstring)."""
    from sertk.recognizer import Recognizer

    wav = folder / "clip.wav"
    sf.write(wav, clip(3.0), RATE)
    command = [sys.executable, "-m", "sertk", "predict", str(wav), "--model", str(bundle),
               "--no-progress"]  # fmt: skip
    row = {"bundle": name, "cold_start_s": median_wall(command, args.runs, env)}
    start = time.perf_counter()
    recognizer = Recognizer.load(bundle)
    row["load_s"] = time.perf_counter() - start
    row["latency_s"] = median_call(lambda: recognizer.predict_file(wav), args.calls)
    clips = [clip(3.0, seed=i) for i in range(16)]
    batch_s = median_call(lambda: recognizer.predict_batch(clips, sampling_rate=RATE), 3)
    row["batch_per_clip_s"] = batch_s / len(clips)
    row["rtf_single"] = row["latency_s"] / 3.0
    row["rtf_batch"] = row["batch_per_clip_s"] / 3.0
    recording = long_recording(60.0)
    start = time.perf_counter()
    timeline = recognizer.timeline(recording, sampling_rate=RATE)
    row["timeline_60s_s"] = time.perf_counter() - start
    row["timeline_windows"] = len(timeline.windows)
    if encoder is not None:
        row.update(encoder_ratio(recognizer, encoder, args.calls))
    return row


def encoder_ratio(recognizer, encoder, calls: int) -> dict:
    """End-to-end ``predict_signal`` of a 3 s clip vs the encoder's forward on it.

    The two are timed alternately, so a change in machine load hits both; the ratio is the
    median of the per-pair ratios. ``head_s`` is the model head alone on the clip's features.
    """
    signal = clip(3.0)

    def encode():
        return encoder(signal, RATE)

    def predict():
        return recognizer.predict_signal(signal, RATE)

    encode(), predict()  # warm-up
    pairs = []
    for _ in range(calls):
        start = time.perf_counter()
        encode()
        middle = time.perf_counter()
        predict()
        pairs.append((middle - start, time.perf_counter() - middle))
    features = recognizer.features([signal], sampling_rate=RATE)
    return {
        "encoder_s": statistics.median(e for e, _ in pairs),
        "end_to_end_s": statistics.median(p for _, p in pairs),
        "end_to_end_over_encoder": statistics.median(p / e for e, p in pairs),
        "head_s": median_call(
            lambda: recognizer.scorer.score([{(0, None): f} for f in features]), calls
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default",
                        help="bundle path, 'default', or 'random-logmel'")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="subprocess runs per cold start")
    parser.add_argument("--calls", type=int, default=10, help="calls per warm latency")
    parser.add_argument("--threads", type=int, help="torch threads (1 on a busy machine)")
    parser.add_argument("--no-hubert", action="store_true", help="skip the HuBERT-base bundle")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    env = dict(os.environ)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    baseline = {
        "python_pass_s": median_wall([sys.executable, "-c", "pass"], args.runs, env),
        "import_sertk_cli_s": median_wall([sys.executable, "-c", "import sertk.cli"], args.runs, env),
        "import_torch_s": median_wall([sys.executable, "-c", "import torch"], args.runs, env),
    }  # fmt: skip
    print(f"python -c pass {baseline['python_pass_s']:.3f} s, "
          f"import sertk.cli {baseline['import_sertk_cli_s']:.3f} s, "
          f"import torch {baseline['import_torch_s']:.3f} s")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.model == "random-logmel":
            rows.append(measure("random-logmel", random_logmel(folder), folder, args, env))
        else:
            from sertk.errors import SertkError
            from sertk.recognizer import resolve_bundle

            try:
                rows.append(measure(args.model, resolve_bundle(args.model), folder, args, env))
            except SertkError as error:
                print(f"{args.model}: skipped ({error})")
        if not args.no_hubert:
            bundle, encoder = random_hubert(folder)
            rows.append(measure("hubert-base (random)", bundle, folder, args, env, encoder))
    report(rows, baseline)
    if args.json:
        Path(args.json).write_text(json.dumps({**baseline, "bundles": rows}, indent=2))
    return 0


def report(rows: list[dict], baseline: dict) -> None:
    for row in rows:
        print(f"\n{row['bundle']}")
        print(f"  cold start `sertk predict` {row['cold_start_s']:.2f} s "
              f"({row['cold_start_s'] / baseline['python_pass_s']:.0f}x python -c pass, "
              f"+{row['cold_start_s'] - baseline['python_pass_s']:.2f} s; "
              f"{row['cold_start_s'] / baseline['import_torch_s']:.2f}x import torch)")  # fmt: skip
        print(f"  Recognizer.load            {row['load_s']:.2f} s (in process)")
        print(f"  predict_file 3 s clip      {row['latency_s'] * 1000:.1f} ms "
              f"(RTF {row['rtf_single']:.4f})")  # fmt: skip
        print(f"  predict_batch 16 x 3 s     {row['batch_per_clip_s'] * 1000:.1f} ms/clip "
              f"(RTF {row['rtf_batch']:.4f})")  # fmt: skip
        print(f"  timeline 60 s              {row['timeline_60s_s']:.2f} s "
              f"({row['timeline_windows']} windows)")  # fmt: skip
        if "encoder_s" in row:
            print(f"  encoder forward 3 s        {row['encoder_s'] * 1000:.1f} ms "
                  f"(head alone {row['head_s'] * 1000:.1f} ms)")  # fmt: skip
            print(f"  end-to-end predict 3 s     {row['end_to_end_s'] * 1000:.1f} ms "
                  f"({row['end_to_end_over_encoder']:.3f}x the encoder; goal <= 1.1x)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
