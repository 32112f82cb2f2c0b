"""How sure a score is: the bootstrap over test images (docs/method.md).

The sweep keeps, beside every accuracy, which test images that variant classified
correctly, packed as bits (:func:`pack_correct`); a replicate draws N image indices with
replacement — the same for every variant of one (run, checkpoint, layer), and image i's
adversarial version goes with i — and recomputes accuracies, scaled responses, scores and
labels exactly as the point estimate does. No torch needed.
"""

from __future__ import annotations

import logging
import warnings
import zlib

import numpy as np
import pandas as pd

from ..progress import progress as bar
from .scores import ADVERSARIAL_READINGS, INTEGRATIONS, KINDS, RUN_KEYS, filter_scores, labels_of, unit_curves

log = logging.getLogger(__name__)

# Bootstrap intervals (2.5 % and 97.5 % quantiles) and label confidences: NaN when off;
# the transferred reading's first, then the white-box reading's.
INTERVAL_COLUMNS = [
    column
    for kinds in (KINDS[:3], KINDS[3:])
    for column in [f"score_{k}_{q}" for k in kinds for q in ("lo", "hi")] + [f"label_{k}_conf" for k in kinds]
]


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


def bootstrap_unit(
    curve: pd.DataFrame, integration: str, tau: float, replicates: int, rng: np.random.Generator, point_labels: dict
) -> list[dict]:
    """Interval rows (one per filter h1, h2, h3, combined present) for one unit's sweep rows
    (sorted by filter and step) with their ``correct_*`` bit columns: every replicate's
    scores come from :func:`fragility.scoring.scores.filter_scores`, the point estimate's
    maths. ``point_labels[(filter, kind)]`` is the point estimate's label, whose replicate
    frequency is its confidence."""
    if integration not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r}; choose from {INTEGRATIONS}")
    n = int(curve["n_images"].iloc[0])
    counts = replicate_counts(n, replicates, rng)

    def accuracies(column, rows=slice(None)):  # variants × replicates: the mean over the drawn images
        packed = curve[column].iloc[rows] if column in curve else [None]
        if any(b is None for b in packed):  # a reading the sweep did not take
            return np.full((len(curve.iloc[rows]), replicates), np.nan)
        return np.stack([unpack_correct(b, n) for b in packed]).astype(float) @ counts.T / n

    adversarial = {
        suffix: (accuracies(f"correct_adv{suffix}"), accuracies(f"correct_adv{suffix}_unfiltered", slice(0, 1))[0])
        for suffix in ADVERSARIAL_READINGS.values()
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = filter_scores(
            curve,
            accuracies("correct_clean"),
            accuracies("correct_clean_unfiltered", slice(0, 1))[0],
            adversarial,
            integration,
        )
    if caught:
        log.info(
            "unit %s: some replicates drew images with unfiltered accuracy 0; their scores are NaN and left out",
            curve["layer"].iloc[0],
        )
    results = []
    for name, per_kind in scores.items():
        row = {"filter": name}
        for kind, values in per_kind.items():
            finite = values[np.isfinite(values)]
            row[f"score_{kind}_lo"], row[f"score_{kind}_hi"] = (
                np.quantile(finite, [0.025, 0.975]) if len(finite) else (np.nan, np.nan)
            )
            point = point_labels.get((name, kind))
            row[f"label_{kind}_conf"] = np.nan if pd.isna(point) else float(np.mean(labels_of(values, tau) == point))
        results.append(row)
    return results


def intervals(
    table: pd.DataFrame,
    sweep_df: pd.DataFrame,
    integration: str,
    tau: float,
    bootstrap: int,
    bootstrap_seed: int,
    progress: bool | None = None,
) -> pd.DataFrame:
    """The score ``table`` with :data:`INTERVAL_COLUMNS` from ``bootstrap`` replicates per
    (run, unit); NaN there with ``bootstrap`` 0 or a sweep table without per-image bits.
    ``progress``: a bar over the units (None: where a person watches)."""
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0 replicates, got {bootstrap}")
    if bootstrap == 0 or "correct_clean" not in sweep_df:
        return table.assign(**{c: np.nan for c in INTERVAL_COLUMNS})
    keys = [k for k in RUN_KEYS if k in sweep_df] + ["layer"]
    labels = {
        group: {(row["filter"], kind): row[f"label_{kind}"] for row in rows.to_dict("records") for kind in KINDS}
        for group, rows in table.groupby(keys, sort=False)
    }
    rows = []
    for keys, group, curve in bar(unit_curves(sweep_df), f"bootstrap ({bootstrap} replicates): units", enabled=progress):
        rng = run_generator(bootstrap_seed, group)
        rows += [
            {**dict(zip(keys, group)), **row} for row in bootstrap_unit(curve, integration, tau, bootstrap, rng, labels[group])
        ]
    found = pd.DataFrame(rows)
    return table.merge(found, on=keys + ["filter"], how="left")[list(table.columns) + INTERVAL_COLUMNS]
