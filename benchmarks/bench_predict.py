"""Inference speed of ``sertk predict`` and the Recognizer: cold start, batch work on every core,
latency, real-time factor.

First, for the default model and every run (``--no-batch`` skips it), as ratios measured side
by side in one run (``batch_figures.py``):

- cold start: ``sertk predict examples/03a02Wc.flac`` and ``sertk --help`` (each a fresh
  interpreter, as a user runs them) over ``python -c "import numpy, soundfile"``, run in turn
  ``--cold-runs`` times; the median of the per-round ratios (goals: <= 2 and <= 1.5), and
  ``import numpy, soundfile, scipy.fft``, which predict with the default model cannot go below;
- folder predict: ``--files`` real EmoDB clips predicted as ``sertk predict DIR`` does (batches
  of 16 files, one Recognizer) with 1 worker and with 2 (``Recognizer.load(jobs=...)``; the
  workers stay between batches), interleaved ``--rounds`` times, predictions checked equal; the
  serial side runs with one BLAS thread, as each worker does (goal >= 1.8x on an idle machine).
  Printed with the load average and the speed-up two processes of pure arithmetic got meanwhile
  (the most any parallel work could get then).

Then for a bundle (``--model``: a path, ``"default"`` for the shipped model, or ``"random-logmel"``
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
[--cold-runs 15] [--files 120] [--rounds 5] [--no-batch] [--no-hubert] [--json out.json]``.
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
from batch_figures import cold_starts, cpu_ceiling, emodb_paths, interleaved, load, ratio

RATE = 16000
LABELS = ["neutral", "happy", "sad", "angry"]
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "03a02Wc.flac"


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


def cold_start(runs: int, env: dict) -> dict:
    """``sertk predict`` (default model) and ``sertk --help`` over numpy + soundfile's import."""
    python = sys.executable
    commands = {
        "baseline": [python, "-c", "import numpy, soundfile"],
        "predict": [python, "-m", "sertk", "predict", str(EXAMPLE), "--no-progress"],
        "help": [python, "-m", "sertk", "--help"],
        # what the default model's features cannot do without: scipy's FFT (YIN in float32)
        "floor": [python, "-c", "import numpy, soundfile, scipy.fft"],
    }
    return cold_starts(commands, runs, env=env)


def folder_predict(count: int, rounds: int) -> dict | None:
    """``count`` EmoDB clips predicted in batches of 16 with 1 worker and with 2 (see above)."""
    from threadpoolctl import threadpool_limits

    from sertk.recognizer import Recognizer

    files = emodb_paths(count)
    if files is None:
        return None

    def folder(recognizer) -> list:
        return [
            p for s in range(0, len(files), 16) for p in recognizer.predict_batch(files[s : s + 16])
        ]

    with Recognizer.load(jobs=1) as one, Recognizer.load(jobs=2) as two:
        with threadpool_limits(limits=1, user_api="blas"):  # as in each worker
            expected = [p.to_dict() for p in folder(one)]
            assert [p.to_dict() for p in folder(two)] == expected, "2 workers changed a result"
            times = interleaved({"1": lambda: folder(one), "2": lambda: folder(two)}, rounds)
    return {
        "files": len(files),
        "seconds_1": statistics.median(times["1"]),
        "seconds_2": statistics.median(times["2"]),
        "speedup_2_over_1": ratio(times, "1", "2"),
        "cpu_ceiling": cpu_ceiling(),
        "load": load(),
    }


def report_batch(cold: dict, folder: dict | None) -> None:
    base = cold["baseline"]["seconds"]
    print(f"cold start, ratio to `python -c \"import numpy, soundfile\"` ({base:.3f} s), "
          "median of paired runs:")  # fmt: skip
    for name, goal in (("predict", 2.0), ("help", 1.5)):
        row = cold[name]
        print(f"  sertk {name:<8} {row['seconds']:.3f} s  {row['ratio']:.2f}x (goal <= {goal})")
    floor = cold["floor"]
    print(f"  import numpy, soundfile, scipy.fft  {floor['seconds']:.3f} s  {floor['ratio']:.2f}x")
    if folder is None:
        print("folder predict: EmoDB not found (../shared/corpora/emodb or $SERTK_CORPORA)")
        return
    print(f"folder predict, {folder['files']} EmoDB clips, default model: 1 worker "
          f"{folder['seconds_1']:.2f} s, 2 workers {folder['seconds_2']:.2f} s: "
          f"{folder['speedup_2_over_1']:.2f}x (goal >= 1.8 idle; pure arithmetic on 2 "
          f"processes meanwhile {folder['cpu_ceiling']:.2f}x, load {folder['load']:.1f})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default",
                        help="bundle path, 'default', or 'random-logmel'")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="subprocess runs per cold start")
    parser.add_argument("--calls", type=int, default=10, help="calls per warm latency")
    parser.add_argument("--threads", type=int, help="torch threads (1 on a busy machine)")
    parser.add_argument("--cold-runs", type=int, default=15, help="paired cold-start rounds")
    parser.add_argument("--files", type=int, default=120, help="EmoDB clips for folder predict")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 1 vs 2 workers")
    parser.add_argument("--no-batch", action="store_true", help="skip cold start and workers")
    parser.add_argument("--no-hubert", action="store_true", help="skip the HuBERT-base bundle")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    env = dict(os.environ)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    batch = {}
    if not args.no_batch:
        batch = {"cold": cold_start(args.cold_runs, env)}
        batch["folder"] = folder_predict(args.files, args.rounds)
        report_batch(batch["cold"], batch["folder"])
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
        Path(args.json).write_text(json.dumps({**baseline, **batch, "bundles": rows}, indent=2))
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
