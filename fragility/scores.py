"""Baselines, scaled responses and the fragility scores r, r_ε, Δr (paper Eq. 10–16).

Sign convention: negative = fragile, about zero = robust, positive = antifragile.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.integrate import simpson

INTEGRATIONS = ("rectangle", "trapezoid", "simpson")
RUN_KEYS = ("dataset", "model", "seed", "epoch", "attack")  # attack: which attack made the adversarial set
SCORE_COLUMNS = [
    "dataset",
    "model",
    "seed",
    "epoch",
    "attack",
    "layer",
    "filter",
    "score_clean",
    "score_adv",
    "score_diff",
    "norm_clean",
    "norm_adv",
    "norm_diff",
    "label_clean",
    "label_adv",
    "label_diff",
]
# Bootstrap intervals (2.5 % and 97.5 % quantiles) and label confidences: NaN when off.
INTERVAL_COLUMNS = [f"score_{k}_{q}" for k in ("clean", "adv", "diff") for q in ("lo", "hi")] + [
    f"label_{k}_conf" for k in ("clean", "adv", "diff")
]


def baseline(n_removed, n_total):
    """φ̄ = 1 − φ/N: the accuracy of a network whose every weight matters equally."""
    return 1.0 - np.asarray(n_removed, dtype=float) / np.asarray(n_total, dtype=float)


def scaled_performance(accuracy, unfiltered_accuracy):
    """β̄ = acc(filtered) / acc(unfiltered); NaN (with a warning) where the latter is 0."""
    accuracy = np.asarray(accuracy, dtype=float)
    unfiltered = np.asarray(unfiltered_accuracy, dtype=float)
    if np.any(unfiltered == 0):
        warnings.warn(
            "unfiltered accuracy is 0: the scaled performance and its scores are undefined (NaN)", RuntimeWarning, stacklevel=2
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(unfiltered == 0, np.nan, accuracy / np.where(unfiltered == 0, 1, unfiltered))


def area(values, integration: str = "rectangle", axis: int | None = None):
    """∫ over α̂ ∈ [0, 1] of A+1 equally spaced samples, Δα̂ = 1/A (along ``axis``: one
    area per slice, e.g. per bootstrap replicate)."""
    values = np.asarray(values, dtype=float)
    along = 0 if axis is None else axis
    if values.shape[along] < 2:
        raise ValueError("an area needs at least two steps (A >= 1)")
    dx = 1.0 / (values.shape[along] - 1)
    if integration == "rectangle":
        result = values.sum(axis=along) * dx
    elif integration == "trapezoid":
        result = np.trapezoid(values, dx=dx, axis=along)
    elif integration == "simpson":
        result = simpson(values, dx=dx, axis=along)
    else:
        raise ValueError(f"unknown integration {integration!r}; choose from {INTEGRATIONS}")
    return float(result) if axis is None else result


def clean_score(scaled, base, integration: str = "rectangle") -> float:
    """r = Σ (β̄ − φ̄) Δα̂."""
    return area(np.asarray(scaled) - np.asarray(base), integration)


def adversarial_score(scaled_adv, base, integration: str = "rectangle") -> float:
    """r_ε = Σ (β̄^ε − φ̄) Δα̂."""
    return area(np.asarray(scaled_adv) - np.asarray(base), integration)


def difference_score(scaled_adv, scaled, integration: str = "rectangle") -> float:
    """Δr = Σ (β̄^ε − β̄) Δα̂."""
    return area(np.asarray(scaled_adv) - np.asarray(scaled), integration)


def label(score, tau: float = 0.02):
    """fragile if s < −τ, robust if |s| ≤ τ, antifragile if s > τ (None for NaN)."""
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if score is None or np.isnan(score):
        return None
    return "fragile" if score < -tau else "antifragile" if score > tau else "robust"


def labels_of(scores, tau: float = 0.02) -> np.ndarray:
    """:func:`label` of every score in an array (None for NaN), vectorised."""
    scores = np.asarray(scores, dtype=float)
    named = np.where(scores < -tau, "fragile", np.where(scores > tau, "antifragile", "robust")).astype(object)
    named[np.isnan(scores)] = None
    return named


def normalise(scores) -> np.ndarray:
    """Sign-preserving scaling into [−0.5, 0.5]: s / (2·max|s|)."""
    scores = np.asarray(scores, dtype=float)
    peak = np.nanmax(np.abs(scores)) if np.isfinite(scores).any() else 0.0
    return scores * 0.0 if peak == 0 else scores / (2 * peak)


def responses(sweep_df: pd.DataFrame) -> pd.DataFrame:
    """Per-row baseline φ̄ and scaled performances β̄, β̄^ε, plus the combined response
    (mean over filters per step) as rows with ``filter == "combined"``."""
    keys = [k for k in RUN_KEYS if k in sweep_df] + ["layer"]
    df = sweep_df.copy()
    df["baseline"] = baseline(df["n_removed"], df["n_total"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df["scaled_clean"] = scaled_performance(df["acc_clean"], df["acc_clean_unfiltered"])
        df["scaled_adv"] = scaled_performance(df["acc_adv"], df["acc_adv_unfiltered"])
    if caught:
        warnings.warn(str(caught[0].message), RuntimeWarning, stacklevel=2)
    value_columns = ["baseline", "scaled_clean", "scaled_adv", "alpha_norm"]
    combined = df.groupby(keys + ["step"], as_index=False, sort=False)[value_columns].mean()
    combined["filter"] = "combined"
    return pd.concat([df, combined], ignore_index=True)


def score_table(
    sweep_df: pd.DataFrame, integration: str = "rectangle", tau: float = 0.02, bootstrap: int = 0, bootstrap_seed: int = 0
) -> pd.DataFrame:
    """Scores, labels and normalised scores per layer and filter (h1, h2, h3, combined); with
    ``bootstrap`` replicates (and the sweep's per-image ``correct_*`` columns) their 95 %
    intervals and label confidences (:mod:`fragility.bootstrap`), else NaN there."""
    if integration not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r}; choose from {INTEGRATIONS}")
    keys = [k for k in RUN_KEYS if k in sweep_df] + ["layer", "filter"]
    rows = []
    for group, curve in responses(sweep_df).groupby(keys, sort=False):
        curve = curve.sort_values("step")
        base, clean, adv = curve["baseline"], curve["scaled_clean"], curve["scaled_adv"]
        rows.append(
            {
                **dict(zip(keys, group)),
                "score_clean": clean_score(clean, base, integration),
                "score_adv": adversarial_score(adv, base, integration),
                "score_diff": difference_score(adv, clean, integration),
            }
        )
    table = pd.DataFrame(rows)
    for kind in ("clean", "adv", "diff"):
        table[f"label_{kind}"] = [label(s, tau) for s in table[f"score_{kind}"]]
    table = normalise_scores(table)
    table = table[[c for c in SCORE_COLUMNS if c in table]]
    return add_intervals(table, sweep_df, keys[:-1], integration, tau, bootstrap, bootstrap_seed)


def add_intervals(table, sweep_df, keys, integration, tau, bootstrap, bootstrap_seed) -> pd.DataFrame:
    """``table`` with :data:`INTERVAL_COLUMNS` from ``bootstrap`` replicates per (run, layer)."""
    from .bootstrap import bootstrap_layer, run_generator

    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0 replicates, got {bootstrap}")
    if bootstrap == 0 or "correct_clean" not in sweep_df:
        return table.assign(**{c: np.nan for c in INTERVAL_COLUMNS})
    kinds = ("clean", "adv", "diff")
    labels = {
        group: {(row["filter"], kind): row[f"label_{kind}"] for row in rows.to_dict("records") for kind in kinds}
        for group, rows in table.groupby(keys, sort=False)
    }
    rows = []
    for group, curve in sweep_df.groupby(keys, sort=False):
        point = labels[group]
        rng = run_generator(bootstrap_seed, group)
        rows += [{**dict(zip(keys, group)), **row} for row in bootstrap_layer(curve, integration, tau, bootstrap, rng, point)]
    intervals = pd.DataFrame(rows)
    return table.merge(intervals, on=keys + ["filter"], how="left")[list(table.columns) + INTERVAL_COLUMNS]


def normalise_scores(table: pd.DataFrame) -> pd.DataFrame:
    """norm_* columns: r and r_ε scaled together, Δr on its own, per (dataset, model)."""
    table = table.copy()
    groups = [k for k in ("dataset", "model") if k in table]
    parts = table.groupby(groups, sort=False).groups.values() if groups else [table.index]
    for index in parts:
        both = normalise(np.concatenate([table.loc[index, "score_clean"], table.loc[index, "score_adv"]]))
        table.loc[index, "norm_clean"] = both[: len(index)]
        table.loc[index, "norm_adv"] = both[len(index) :]
        table.loc[index, "norm_diff"] = normalise(table.loc[index, "score_diff"])
    return table
