"""Study of leave-one-corpus-out variants on cached feature matrices (fast numpy ridge).

The toolkit's ``sertk benchmark loco`` is the reference; this script reproduces its ridge
pipeline (standardise on the training rows, clip +-10, one-vs-rest +-1 targets, no intercept,
``alpha = dim / C``, C by nested leave-one-corpus-out over the training corpora, scored by UA on
original recordings) in plain numpy so that many variants can be compared quickly (inner splits
reuse the outer split's standardisation: without an intercept this depresses the inner scores of
plain global variants, see docs/results.md). Every choice inside a variant
is made on the training corpora only, and ``select`` chooses among variants the same way: for
each held-out corpus, the variant with the best inner leave-one-corpus-out score. Held-out means
of single variants are diagnostics, not results (choosing by them tunes on the test corpora).
A variant is a JSON object over ``DEFAULTS``; the study and its figures are in docs/results.md
("Leave-one-corpus-out benchmark").

    python scripts/loco_study.py dump recipes/loco_default.yaml build/study/default.npz
    python scripts/loco_study.py run build/study/default.npz --log build/study/results.jsonl \
        --variant '{"copies": false}' --variant '{"protocol": "speaker", "shrink": 10}'
    python scripts/loco_study.py select build/study/results.jsonl --protocol speaker
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

CS = (0.1, 0.3, 1.0, 3.0, 10.0)
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def dump(recipe: str, out: str) -> None:
    from sertk.experiment import resolve_config
    from sertk.experiment.loco import load_benchmark_config
    from sertk.experiment.loco.data import feature_table, load_corpora
    from sertk.experiment.loco.fit import units_of
    from sertk.features import build_extractor
    from sertk.features.cache import FeatureCache

    config = resolve_config(load_benchmark_config(recipe))
    data = load_corpora(config)
    table = feature_table(config, data, cache=FeatureCache(), log=print)
    extractor = build_extractor({"name": config.features.name, **config.features.params})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out, x=table.x.astype(np.float32), copies=np.stack(table.copies).astype(np.float32),
        label=data.column("label"), corpus=data.column("corpus"), speaker=data.column("speaker"),
        unit=units_of(data, config.benchmark), id=data.column("id"),
        columns=np.array(getattr(extractor, "columns", [])),
    )  # fmt: skip


# --- ridge ---------------------------------------------------------------------------------


class Blocks:
    """Gram matrices and sums of the standardised, clipped rows per (corpus, class) block: the
    ridge system of any union of corpora, with per-block weights, is a weighted sum of blocks.
    Inner splits reuse the outer split's standardisation (an approximation; see the module)."""

    def __init__(self, z: np.ndarray, corpus: np.ndarray, label: np.ndarray) -> None:
        self.dim = z.shape[1]
        self.gram, self.sums, self.counts = {}, {}, {}
        for key in sorted(set(zip(corpus.tolist(), label.tolist(), strict=True))):
            rows = z[(corpus == key[0]) & (label == key[1])]
            self.gram[key], self.sums[key], self.counts[key] = rows.T @ rows, rows.sum(0), len(rows)

    def nuisance(self, corpora, classes, rank: int) -> np.ndarray | None:
        """``[dim, rank]``: the main directions of the corpora's class means around each class's
        mean over corpora (where corpora differ for the same emotion), or None for rank 0."""
        if rank <= 0:
            return None
        deviations = []
        for label in classes:
            means = [self.sums[(c, label)] / self.counts[(c, label)] for c in corpora
                     if (c, label) in self.counts]  # fmt: skip
            if len(means) > 1:
                deviations += [m - np.mean(means, axis=0) for m in means]
        if not deviations:
            return None
        _, _, vt = np.linalg.svd(np.array(deviations), full_matrices=False)
        return vt[:rank].T

    def consistency(self, corpora, classes) -> np.ndarray:
        """``[dim]``: how consistently each feature separates the emotions across ``corpora``:
        sum over emotions of the squared mean (over corpora) of the emotion's mean, over the sum
        of its variance across corpora (standardised features, so 0 is the overall mean)."""
        effect = np.zeros(self.dim)
        spread = np.zeros(self.dim)
        for label in classes:
            means = [self.sums[(c, label)] / self.counts[(c, label)] for c in corpora
                     if (c, label) in self.counts]  # fmt: skip
            if len(means) > 1:
                effect += np.mean(means, axis=0) ** 2
                spread += np.var(means, axis=0)
        return effect / (spread + 0.01)

    def solve_selected(self, corpora, classes, weighting, cs, nap, select, factors=(None,)):
        """``{(C, M, F): weights}``: ridge on the ``M`` most consistent features for each ``M``
        of ``select`` (None: all features), columns scaled by each ``F`` of ``factors`` (an
        index into ``self.factors``; None: unscaled), and each C."""
        out = {}
        order = np.argsort(-self.consistency(corpora, classes))
        for m in select:
            chosen = None if m is None else np.sort(order[:m])
            for f in factors:
                scale = None if f is None else self.factors[f]
                solved = self.solve(corpora, classes, weighting, cs, nap, chosen, scale)
                for c, w in solved.items():
                    out[(c, m, f)] = w
        return out

    def solve(self, corpora, classes, weighting: str, cs, nap: int = 0, chosen=None,
              scale=None) -> dict[float, np.ndarray]:  # fmt: skip
        """Weights ``[dim, classes]`` for each C of ridge on the blocks of ``corpora`` (with
        ``nap`` > 0 on features whose ``nap`` nuisance directions are projected out; only the
        ``chosen`` columns when given, zero weight elsewhere)."""
        keys = [k for k in self.gram if k[0] in corpora and k[1] in classes]
        n = sum(self.counts[k] for k in keys)
        weight = {k: 1.0 for k in keys}
        if "class" in weighting:
            per = {c: sum(self.counts[k] for k in keys if k[1] == c) for c in classes}
            weight = {k: weight[k] * n / (len(classes) * per[k[1]]) for k in keys}
        if "corpus" in weighting:
            per = {c: sum(self.counts[k] for k in keys if k[0] == c) for c in corpora}
            weight = {k: weight[k] * n / (len(corpora) * per[k[0]]) for k in keys}
        gram = sum(weight[k] * self.gram[k] for k in keys)
        total = sum(weight[k] * self.sums[k] for k in keys)
        b = np.stack(
            [2 * sum(weight[k] * self.sums[k] for k in keys if k[1] == c) - total for c in classes],
            axis=1,
        )
        from scipy.linalg import solve

        u = self.nuisance(corpora, classes, nap)
        if u is not None:  # P = I - U U^T: fit on Z P, so scores are Z (P W)
            gram = gram - u @ (u.T @ gram)
            gram = gram - (gram @ u) @ u.T
            b = b - u @ (u.T @ b)
        if scale is not None:  # fit on Z diag(scale): scores Z (scale W)
            gram = scale[:, None] * gram * scale[None, :]
            b = scale[:, None] * b
        if chosen is not None:
            gram, b = gram[np.ix_(chosen, chosen)], b[chosen]
        dim = gram.shape[0]
        eye = np.eye(dim)
        solved = {c: solve(gram + (dim / c) * eye, b, assume_a="pos") for c in cs}
        if chosen is not None:
            full = {}
            for c, w in solved.items():
                full[c] = np.zeros((self.dim, w.shape[1]))
                full[c][chosen] = w
            solved = full
        if scale is not None:
            solved = {c: scale[:, None] * w for c, w in solved.items()}
        if u is not None:
            solved = {c: w - u @ (u.T @ w) for c, w in solved.items()}
        return solved


def ua(truth: np.ndarray, predicted: np.ndarray) -> float:
    classes = np.unique(truth)
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in classes]))


def wa(truth, predicted) -> float:
    return float(np.mean(truth == predicted))


def f1(truth, predicted) -> float:
    out = []
    for c in np.unique(truth):
        tp = np.sum((predicted == c) & (truth == c))
        p = tp / max(np.sum(predicted == c), 1)
        r = tp / np.sum(truth == c)
        out.append(0 if p + r == 0 else 2 * p * r / (p + r))
    return float(np.mean(out))


# --- variants ---------------------------------------------------------------------------------


DEFAULTS = {
    "protocol": "global",  # global | speaker
    # global protocol: none | corpus | speaker, training rows only (test rows and inner
    # held-out rows: the training population's statistics)
    "train_norm": "none",
    "statistic": "mean_std",  # speaker protocol: mean_std | median_mad | mean
    "shrink": 0.0,
    "copies": True,  # the recipe's speed/noise copies join the training rows
    "weights": "none",  # none | class | corpus | class_corpus
    "columns": None,  # a column subset name (see ``column_mask``)
    "cs": CS,
    "clip": 10.0,
    "nap": 0,  # nuisance directions (between-corpus, within-class) projected out
    "select": [None],  # numbers of most consistent features tried by the inner CV (None: all)
    "block_weights": None,  # [[w_mel, w_lld, w_rest], ...] tried by the inner CV
    # also: "relative": "mel" | "all" (level-free columns, see ``relative``); "subspace": rank
    # of a speaker subspace removed (speaker protocol); "one_sided": true (score one-sided units)
}


def block_factors(dim: int, weights, widths=(1408, 550, 840)) -> np.ndarray:
    """Column factors of the emotion_functionals blocks (log-mel and delta statistics 1408,
    LLD statistics 550, segments and voicing shapes 840), as sertk.classical's
    ``column_weights``."""
    from sertk.classical._params import column_weights

    return column_weights(list(widths), list(weights), dim)


def column_mask(columns: np.ndarray, name: str | None) -> np.ndarray:
    """Boolean mask of the columns kept by a named subset."""
    names = np.asarray(columns)
    if name is None:
        return np.ones(names.size, dtype=bool)
    level = ("__mean", "__p1", "__p25", "__p50", "__p75", "__p99")
    is_mel = np.array([n.startswith(("mel_", "seg")) and "_d__" not in n for n in names])
    location = np.array([n.endswith(level) for n in names])
    voicing = np.array([n.startswith(("voiced_mel", "unvoiced_mel")) for n in names])
    segment_mean = np.array([n.startswith("seg") and "__mean" in n for n in names])
    sets = {
        # no absolute log-mel level/shape columns (channel- and level-dependent)
        "no_mel_level": ~(is_mel & location) & ~segment_mean,
        "no_mel_level_voicing": ~(is_mel & location) & ~segment_mean & ~voicing,
        "prosody": np.array(
            [any(k in n for k in ("f0", "log_energy", "voic", "envelope", "zcr")) for n in names]
        ),  # fmt: skip
        "no_segments": ~np.array([n.startswith("seg") for n in names]),
        # the 50 LLD columns' functionals only (no log-mel band statistics)
        "lld": ~np.array(
            [n.startswith(("mel_", "seg", "voiced_mel", "unvoiced_mel")) for n in names]
        ),  # fmt: skip
        "lld_seg": ~np.array(
            [
                n.startswith(("mel_", "voiced_mel", "unvoiced_mel"))
                or n.startswith("seg")
                and "_mel_" in n
                for n in names
            ]
        ),  # fmt: skip
    }
    return sets[name]


def relative(d: dict, which: str) -> dict:
    """Level-free columns: each location statistic (p1, p25, p75, p99, mean) of a frame column
    minus that column's median, its median dropped, and each segment mean minus the column's
    overall mean; ``which`` is ``mel`` (log-mel bands only) or ``all`` (every base column)."""
    names = list(d["columns"])
    index = {name: i for i, name in enumerate(names)}
    keep, pairs = [], []  # (column, reference or -1)
    for i, name in enumerate(names):
        base, _, stat = name.rpartition("__")
        target = base.startswith("mel_") if which == "mel" else not base.endswith("_d")
        if name.startswith("seg"):
            column = base.split("_", 1)[1]
            if stat == "mean" and (column.startswith("mel_") or which == "all"):
                pairs.append((i, index[f"{column}__mean"]))
                continue
        elif target and stat == "p50" and not base.startswith(("voiced", "f0")):
            continue
        elif (
            target
            and stat in ("p1", "p25", "p75", "p99", "mean")
            and not base.startswith(("voiced",))
        ):
            pairs.append((i, index[f"{base}__p50"]))
            continue
        keep.append(i)
    columns = keep + [i for i, _ in pairs]
    refs = np.array([-1] * len(keep) + [r for _, r in pairs])

    def apply(x: np.ndarray) -> np.ndarray:
        out = x[..., columns].copy()
        has = refs >= 0
        out[..., has] -= x[..., refs[has]]
        return out

    return {**d, "x": apply(d["x"]), "copies": apply(d["copies"]),
            "columns": np.array([names[i] for i in columns])}  # fmt: skip


def normaliser(d: dict, train: np.ndarray, v: dict):
    """``apply(rows, units) -> (x, copies)``: the variant's normalisation of ``rows`` (and of
    their copies), unit statistics computed from exactly those rows of each unit."""
    from sertk.experiment.loco.adapt import normalize_units, population_statistics, unit_statistics

    x, copies = d["x"], d["copies"]
    population = population_statistics(x[train])
    if v["protocol"] == "speaker" and v.get("subspace"):
        u = speaker_subspace(d, train, v["subspace"], population)

        def apply(rows, units):
            z = (x[rows] - population["mean"]) / population["std"]
            zc = (copies[:, rows] - population["mean"]) / population["std"]
            for unit in np.unique(units):
                mine = units == unit
                offset = u @ (u.T @ (z[mine].sum(0) / (mine.sum() + v["shrink"])))
                z[mine] -= offset
                zc[:, mine] -= offset
            return z, zc

        return apply
    options = {"statistic": v["statistic"], "shrink": v["shrink"], "population": population}

    def apply(rows, units):
        inside = units != "population"
        stats = unit_statistics(x[rows][inside], units[inside], **options) if inside.any() else {}
        stats["population"] = population
        return normalize_units(x[rows], units, stats), np.stack(
            [normalize_units(c[rows], units, stats) for c in copies]
        )

    return apply


def normalise(d: dict, train: np.ndarray, v: dict) -> tuple[np.ndarray, np.ndarray]:
    """(x, copies) of all rows under variant ``v`` for a split whose training rows are ``train``."""
    if v["protocol"] == "global" and v["train_norm"] == "none":
        return d["x"], d["copies"]
    if v["protocol"] == "speaker":
        units = d["unit"]
    else:  # training rows per corpus or speaker; the others with the training population
        units = (d["corpus"] if v["train_norm"] == "corpus" else d["unit"]).astype(object)
        outside = np.ones(units.size, dtype=bool)
        outside[train] = False
        units[outside] = "population"
        units = units.astype(str)
    return normaliser(d, train, v)(np.arange(units.size), units)


def speaker_subspace(d, train, rank: int, population) -> np.ndarray:
    """``[dim, rank]``: main directions of training speakers' per-emotion means (standardised
    by the population) around each emotion's mean: where speakers differ, emotion held fixed."""
    z = (d["x"] - population["mean"]) / population["std"]
    labels = d["label"][train]
    deviations = []
    for label in np.unique(labels):
        rows = train[labels == label]
        centre = z[rows].mean(0)
        for speaker in np.unique(d["speaker"][rows]):
            mine = rows[d["speaker"][rows] == speaker]
            if mine.size >= 2:
                deviations.append(z[mine].mean(0) - centre)
    _, _, vt = np.linalg.svd(np.array(deviations), full_matrices=False)
    return vt[:rank].T


def standardise(x: np.ndarray, rows: np.ndarray, clip: float):
    """``(mean, std)`` of ``rows`` and the function mapping features to clipped z-scores."""
    mean, std = rows.mean(0), np.maximum(rows.std(0), 1e-5)

    def z(features: np.ndarray) -> np.ndarray:
        out = (features - mean) / std
        return np.clip(out, -clip, clip) if clip else out

    return z


def prepare(d: dict, v: dict, train: np.ndarray, mask: np.ndarray):
    """``(z, blocks, zx, held)`` of one outer split: the standardiser, the per-block ridge
    systems of the training rows (plus copies), every row's standardised features, and the rows
    as an inner held-out corpus sees them: with ``train_norm`` normalised by the training
    population (as the outer test corpus), not by their own corpus or speaker."""
    from sertk.experiment.loco.adapt import population_statistics

    corpus, labels = d["corpus"], d["label"]
    x, copies = normalise(d, train, v)
    x = x[:, mask]
    copies = copies[:, :, mask] if v["copies"] else copies[:0]
    rows = np.concatenate([x[train], *(c[train] for c in copies)])
    owners = np.concatenate([train] * (1 + len(copies)))
    z = standardise(x, rows, v["clip"])
    blocks = Blocks(z(rows), corpus[owners], labels[owners])
    widths = v.get("blocks") or [1408, 550, 840]
    blocks.factors = [block_factors(x.shape[1], w, widths) for w in v["block_weights"] or []]
    if v["protocol"] != "global" or v["train_norm"] == "none":
        return z, blocks, z(x), z(x)
    population = population_statistics(d["x"][train])
    held = (d["x"] - population["mean"]) / population["std"]
    return z, blocks, z(x), z(held[:, mask])


def inner_choice(d, v, train, blocks, held_rows, classes):
    """``(key, inner mean UA per key, per-held-out-corpus solutions)``: (C, M, F) by
    leave-one-corpus-out over the training corpora."""
    corpus, labels = d["corpus"], d["label"]
    factor_keys = list(range(len(blocks.factors))) or [None]
    train_corpora = list(dict.fromkeys(corpus[train].tolist()))
    inner, models = [], {}
    for held in train_corpora:
        others = [c for c in train_corpora if c != held]
        inner_classes = [c for c in classes if any((o, c) in blocks.counts for o in others)]
        solved = blocks.solve_selected(
            others, inner_classes, v["weights"], v["cs"], v["nap"], v["select"], factor_keys
        )
        rows_h = train[corpus[train] == held]
        truth = np.array([inner_classes.index(y) if y in inner_classes else -1
                          for y in labels[rows_h]])  # fmt: skip
        inner.append([ua(truth, (held_rows[rows_h] @ solved[key]).argmax(1)) for key in solved])
        models[held] = (others, inner_classes, solved)
    grid = list(solved)
    mean = np.mean(inner, axis=0)
    return grid[int(np.argmax(mean))], mean, models


def run(d: dict, v: dict, heldout: list[str] | None = None) -> dict:
    """Leave-one-corpus-out of variant ``v``: per held-out corpus restricted/open UA, WA, F1,
    the grid key (C, M, F) chosen by leave-one-corpus-out over the training corpora and the
    inner mean UA of every grid key (``inner``, used by ``select``)."""
    if v.get("relative"):
        d = relative(d, v["relative"])
    corpus, labels = d["corpus"], d["label"]
    mask = column_mask(d["columns"], v["columns"])
    out = {}
    for name in heldout or list(dict.fromkeys(corpus.tolist())):
        train = np.flatnonzero(corpus != name)
        classes = [c for c in LABELS if c in set(labels[train])]
        z, blocks, zx, held = prepare(d, v, train, mask)
        (c, m, f), mean, _ = inner_choice(d, v, train, blocks, held, classes)
        train_corpora = list(dict.fromkeys(corpus[train].tolist()))
        weights = blocks.solve_selected(
            train_corpora, classes, v["weights"], [c], v["nap"], [m], [f]
        )[(c, m, f)]
        test = np.flatnonzero((corpus == name) & np.isin(labels, classes))
        shared = [c_ for c_ in classes if c_ in set(labels[test])]
        scores = zx[test] @ weights
        truth = np.array([classes.index(y) for y in labels[test]])
        index = np.array([classes.index(s) for s in shared])
        predicted = {"restricted": index[scores[:, index].argmax(1)], "open": scores.argmax(1)}
        out[name] = {"C": c, "M": m, "F": f, "inner": mean.tolist(), "n": int(test.size),
                     "classes": len(shared)}  # fmt: skip
        for kind, guess in predicted.items():
            out[name][kind] = {"ua": ua(truth, guess), "wa": wa(truth, guess),
                               "f1": f1(truth, guess)}  # fmt: skip
        if v.get("one_sided") and v["protocol"] == "speaker":
            model = (z, weights)
            out[name]["one_sided"] = one_sided(d, model, train, test, classes, shared, v, mask)
    for kind in ("restricted", "open"):
        out.setdefault("mean", {})[kind] = {
            m: float(np.mean([r[kind][m] for k, r in out.items() if k != "mean"]))
            for m in ("ua", "wa", "f1")
        }
    return out


def select(log: str, protocol: str) -> dict:
    """Nested selection over the variants logged in ``log`` for ``protocol``: for each held-out
    corpus, the variant (with its own C/M/F) whose best inner leave-one-corpus-out UA over the
    four training corpora is highest, and that variant's held-out scores. Variants with
    ``train_norm`` count only when logged with ``inner_held: population`` (their inner held-out
    corpus normalised by the training population, as the outer test corpus; earlier runs
    normalised it with its own statistics, an inner score that does not estimate the test)."""
    runs = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
    runs = [r for r in runs if r["variant"].get("protocol", "global") == protocol
            and (r["variant"].get("train_norm", "none") == "none"
                 or r.get("inner_held") == "population")]  # fmt: skip
    corpora = [k for k in runs[0]["result"] if k != "mean"]
    chosen = {}
    for name in corpora:
        best = max(runs, key=lambda r: max(r["result"][name]["inner"]))
        chosen[name] = {"variant": best["variant"], **best["result"][name]}
    chosen["mean"] = {
        kind: {m: float(np.mean([chosen[c][kind][m] for c in corpora])) for m in ("ua", "wa", "f1")}
        for kind in ("restricted", "open")
    }  # fmt: skip
    return chosen


def one_sided(d, model, train, test, classes, shared, v, mask) -> dict:
    """Restricted UA when each test unit's statistics come from a subset dominated (70 %) by,
    or made only (100 %) of, one emotion; pooled over units and dominant emotions."""
    from sertk.experiment.loco.adapt import one_sided_subsets

    apply = normaliser(d, train, v)
    index = np.array([classes.index(s) for s in shared])
    result = {}
    for share in (0.7, 1.0):
        truth_all, predicted_all = [], []
        for unit, _, rows in one_sided_subsets(d["label"][test], d["unit"][test], share=share):
            chosen = test[rows]
            z, _ = apply(chosen, np.array([unit] * chosen.size))
            scores = model[0](z[:, mask]) @ model[1]
            predicted_all.append(index[scores[:, index].argmax(1)])
            truth_all.append([classes.index(y) for y in d["label"][chosen]])
        result[f"{share:g}"] = ua(np.concatenate(truth_all), np.concatenate(predicted_all))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("dump", help="cache a recipe's feature matrices")
    p.add_argument("recipe")
    p.add_argument("out")
    p = sub.add_parser("run", help="leave-one-corpus-out of variants")
    p.add_argument("npz")
    p.add_argument("--variant", action="append", default=[], help="JSON of settings")
    p.add_argument("--name", default="variant")
    p.add_argument("--heldout", default=None)
    p.add_argument("--log", default=None, help="append JSON lines here")
    p = sub.add_parser("select", help="nested selection over the logged variants")
    p.add_argument("log")
    p.add_argument("--protocol", choices=("global", "speaker"), default="global")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.recipe, args.out)
        return 0
    if args.command == "select":
        chosen = select(args.log, args.protocol)
        for name, r in chosen.items():
            what = "" if name == "mean" else f"{json.dumps(r['variant'])} C={r['C']} "
            inner = "" if name == "mean" else f"inner {100 * max(r['inner']):.1f} "
            print(f"{name}: {what}{inner}restricted UA {100 * r['restricted']['ua']:.1f}, "
                  f"open {100 * r['open']['ua']:.1f}")  # fmt: skip
        return 0
    base = dict(np.load(args.npz, allow_pickle=False))
    for text in args.variant or ["{}"]:
        v = {**DEFAULTS, **json.loads(text)}
        start = time.time()
        result = run(base, v, args.heldout.split(",") if args.heldout else None)
        line = {"name": args.name, "npz": args.npz, "variant": json.loads(text),
                "seconds": round(time.time() - start), "result": result}  # fmt: skip
        if v["train_norm"] != "none":
            line["inner_held"] = "population"
        mean = result["mean"]
        per = " ".join(f"{k} {100 * r['restricted']['ua']:.1f}/{100 * r['open']['ua']:.1f}"
                       for k, r in result.items() if k != "mean")  # fmt: skip
        print(
            f"{text}: mean UA {100 * mean['restricted']['ua']:.1f} restricted, "
            f"{100 * mean['open']['ua']:.1f} open | {per} ({line['seconds']} s)",
            flush=True,
        )
        if args.log:
            with open(args.log, "a") as handle:
                handle.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
