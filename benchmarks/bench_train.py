"""Wall and CPU time of ``sertk train <recipe>``, today's code vs a git commit, interleaved.

Each round runs, one after another: the ``--before`` code cold (empty feature cache), today's code
cold, then both again on their now-filled caches (cached), swapping which version goes first
every round. Every run is a subprocess ``python -m sertk train RECIPE --cache <its cache>
--output-dir <tmp> --no-progress`` with ``OMP_NUM_THREADS=1`` and ``PYTHONPATH`` set to this
checkout's ``src`` or to ``git archive <before> src`` unpacked in a temporary folder. Wall time is
``time.perf_counter``; CPU is the child's user + system time (``RUSAGE_CHILDREN``).

Then it checks that the versions agree: mean and pooled UA of every run (printed in full), the
test-fold predictions (``folds/*/predictions.csv``: predicted labels, probabilities) and the final
bundle's probabilities on ``examples/`` (``sertk predict --model``, today's code).

Run from the repository root: ``python benchmarks/bench_train.py [recipes/emodb_functionals.yaml]
[--before a074939] [--rounds 1]``. Needs the recipe's corpus (``../shared/corpora``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def unpack_src(ref: str, folder: Path) -> Path:
    """``src/`` of git commit ``ref`` under ``folder``; returns that ``src`` path."""
    archive = subprocess.run(
        ["git", "archive", ref, "src"], cwd=REPO, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def train(src: Path, recipe: str, cache: Path, output: Path) -> dict:
    """One ``sertk train`` run: wall and CPU seconds and its run folder."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sertk", "train", recipe, "--cache", str(cache)]
    command += ["--output-dir", str(output), "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    (run,) = [path.parent for path in output.glob("*/summary.json")]
    return {
        "wall": wall,
        "user": after.ru_utime - before.ru_utime,
        "sys": after.ru_stime - before.ru_stime,
        "run": run,
    }


def fold_predictions(run: Path) -> dict[str, dict[str, str]]:
    rows = {}
    for path in sorted(run.glob("folds/*/predictions.csv")):
        with path.open() as handle:
            rows.update({row["id"]: row for row in csv.DictReader(handle)})
    return rows


def bundle_probabilities(run: Path) -> list[list[float]]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "sertk",
        "predict",
        "examples",
        "--model",
        str(run / "final" / "bundle"),
    ]
    output = subprocess.run(
        [*command, "--format", "json", "--no-progress"],
        cwd=REPO, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [list(item["probabilities"].values()) for item in json.loads(output)]


def agreement(first: Path, second: Path) -> str:
    a, b = fold_predictions(first), fold_predictions(second)
    same_labels = a.keys() == b.keys() and all(a[k]["predicted"] == b[k]["predicted"] for k in a)
    columns = [c for c in next(iter(a.values())) if c.startswith("p_")]
    fold_diff = max(abs(float(a[k][c]) - float(b[k][c])) for k in a for c in columns)
    pa, pb = bundle_probabilities(first), bundle_probabilities(second)
    final_diff = max(
        abs(x - y) for ra, rb in zip(pa, pb, strict=True) for x, y in zip(ra, rb, strict=True)
    )
    return (
        f"test-fold predicted labels identical: {same_labels}; max probability difference "
        f"{fold_diff:.2g} (predictions.csv, 6 decimals); final bundle on examples/: {final_diff:.2g}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="recipes/emodb_functionals.yaml")
    parser.add_argument("--before", default="a074939", help="git commit of the 'before' code")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources = {f"@{args.before}": unpack_src(args.before, root / "before"), "now": REPO / "src"}
        results = []
        for round_ in range(args.rounds):
            order = list(sources) if round_ % 2 == 0 else list(sources)[::-1]
            for phase in ("cold", "cached"):
                for version in order:
                    cache = root / f"cache-{version}-{round_}"
                    output = root / f"runs-{version}-{round_}-{phase}"
                    row = train(sources[version], args.recipe, cache, output)
                    summary = json.loads((row["run"] / "summary.json").read_text())
                    row |= {"version": version, "phase": phase, "round": round_}
                    row |= {"ua": summary["mean"]["ua"], "pooled": summary["pooled"]["ua"]}
                    results.append(row)
                    print(
                        f"round {round_} {phase:<6} {version:<10} wall {row['wall']:6.1f} s  "
                        f"CPU {row['user'] + row['sys']:6.1f} s (user {row['user']:.1f}, sys "
                        f"{row['sys']:.1f})  UA {row['ua']!r} pooled {row['pooled']!r}  "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
        for phase in ("cold", "cached"):
            rows = {r["version"]: r for r in results if r["phase"] == phase and r["round"] == 0}
            old, new = rows[f"@{args.before}"], rows["now"]
            cpu = lambda r: r["user"] + r["sys"]  # noqa: E731
            print(
                f"{phase}: now / @{args.before}: wall {new['wall'] / old['wall']:.2f}, "
                f"CPU {cpu(new) / cpu(old):.2f}, sys {new['sys'] / max(old['sys'], 1e-9):.2f}"
            )
        cold = {r["version"]: r["run"] for r in results if r["phase"] == "cold" and r["round"] == 0}
        print(agreement(cold[f"@{args.before}"], cold["now"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
