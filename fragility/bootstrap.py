"""How sure a score is: the bootstrap over test images (docs/method.md).

The sweep keeps, beside every accuracy, which test images that variant classified
correctly, packed as bits (:func:`pack_correct`); a replicate draws N image indices with
replacement — the same for every variant of one (run, checkpoint, layer), and image i's
adversarial version goes with i — and recomputes accuracies, scaled responses, scores and
labels exactly as the point estimate does. No torch needed.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from .scores import INTEGRATIONS, area, baseline, labels_of

KINDS = ("clean", "adv", "diff")
FILTER_ORDER = ("h1", "h2", "h3")


def pack_correct(correct) -> bytes:
    """Per-image correctness (booleans in test-set order) as packed bits."""
    return np.packbits(np.asarray(correct, dtype=bool)).tobytes()


def unpack_correct(packed: bytes, n: int) -> np.ndarray:
    """The booleans :func:`pack_correct` packed, for ``n`` images."""
    return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=n).astype(bool)


def replicate_counts(n: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n`` images is drawn in each replicate (replicates × n)."""
    draws = rng.integers(0, n, size=(replicates, n))
    counts = np.zeros((replicates, n))
    np.add.at(counts, (np.repeat(np.arange(replicates), n), draws.ravel()), 1)
    return counts


def run_generator(bootstrap_seed: int, keys) -> np.random.Generator:
    """A generator seeded by ``scores.bootstrap_seed`` and the run's keys (dataset, model,
    seed, epoch, layer): every layer of every run gets its own reproducible draws."""
    entropy = [int(bootstrap_seed)] + [k if isinstance(k, (int, np.integer)) else zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng([int(e) for e in entropy])


def bootstrap_layer(
    curve: pd.DataFrame, integration: str, tau: float, replicates: int, rng: np.random.Generator, point_labels: dict
) -> list[dict]:
    """Interval rows (one per filter h1, h2, h3, combined present) for one layer's sweep rows
    with their ``correct_*`` bit columns. ``point_labels[(filter, kind)]`` is the label of the
    point estimate, whose replicate frequency is the confidence."""
    if integration not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r}; choose from {INTEGRATIONS}")
    curve = curve.sort_values(["filter", "step"])
    n = int(curve["n_images"].iloc[0])
    counts = replicate_counts(n, replicates, rng)

    def accuracies(packed):  # variants × replicates: each accuracy as the mean over the drawn images
        return np.stack([unpack_correct(b, n) for b in packed]).astype(float) @ counts.T / n

    clean, adv = accuracies(curve["correct_clean"]), accuracies(curve["correct_adv"])
    unfiltered_clean = accuracies(curve["correct_clean_unfiltered"].iloc[:1])[0]
    unfiltered_adv = accuracies(curve["correct_adv_unfiltered"].iloc[:1])[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled_clean = np.where(unfiltered_clean > 0, clean / unfiltered_clean, np.nan)
        scaled_adv = np.where(unfiltered_adv > 0, adv / unfiltered_adv, np.nan)
    base = baseline(curve["n_removed"], curve["n_total"])[:, None]
    filters = [f for f in FILTER_ORDER if f in set(curve["filter"])]
    steps = len(curve) // len(filters)
    per_filter = {}
    for index, name in enumerate(filters):
        rows = slice(index * steps, (index + 1) * steps)
        per_filter[name] = (scaled_clean[rows], scaled_adv[rows], base[rows])
    per_filter["combined"] = tuple(np.mean([per_filter[f][i] for f in filters], axis=0) for i in range(3))
    results = []
    for name, (sc, sa, b) in per_filter.items():
        scores = {
            "clean": area(sc - b, integration, axis=0),
            "adv": area(sa - b, integration, axis=0),
            "diff": area(sa - sc, integration, axis=0),
        }
        row = {"filter": name}
        for kind, values in scores.items():
            finite = values[np.isfinite(values)]
            row[f"score_{kind}_lo"], row[f"score_{kind}_hi"] = (
                np.quantile(finite, [0.025, 0.975]) if len(finite) else (np.nan, np.nan)
            )
            point = point_labels.get((name, kind))
            row[f"label_{kind}_conf"] = np.nan if pd.isna(point) else float(np.mean(labels_of(values, tau) == point))
        results.append(row)
    return results
