"""Baselines, scaled responses and the fragility scores r_x, r_xε, r_ε (paper Eq. 10–16).

Sign convention: negative = fragile, about zero = robust, positive = antifragile.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

INTEGRATIONS = ("rectangle", "trapezoid", "simpson")
RUN_KEYS = ("dataset", "model", "seed", "epoch", "attack")  # attack: which attack made the adversarial set
SCORE_COLUMNS = [
    "dataset",
    "model",
    "seed",
    "epoch",
    "attack",
    "layer",
    "unit_kind",  # layer, block or global
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
    # the same adversarial scores from the white-box reading (NaN, null without it)
    "score_adv_whitebox",
    "score_diff_whitebox",
    "norm_adv_whitebox",
    "norm_diff_whitebox",
    "label_adv_whitebox",
    "label_diff_whitebox",
]
# The adversarial readings of a sweep (fragility.stress.synaptic): transferred (the paper's
# acc_adv) and white-box (acc_adv_whitebox); each gives r_xε and r_ε under its suffix.
ADVERSARIAL_READINGS = {"transfer": "", "whitebox": "_whitebox"}
# the scores r_x, r_xε, r_ε, then r_xε and r_ε of the white-box reading
KINDS = ("clean", "adv", "diff", "adv_whitebox", "diff_whitebox")


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
        from scipy.integrate import simpson  # here: the figures read responses without paying scipy's import

        result = simpson(values, dx=dx, axis=along)
    else:
        raise ValueError(f"unknown integration {integration!r}; choose from {INTEGRATIONS}")
    return float(result) if axis is None else result


def clean_score(scaled, base, integration: str = "rectangle") -> float:
    """r = Σ (β̄ − φ̄) Δα̂."""
    return area(np.asarray(scaled) - np.asarray(base), integration)


def adversarial_score(scaled_adv, base, integration: str = "rectangle") -> float:
    """r_xε = Σ (β̄^ε − φ̄) Δα̂."""
    return area(np.asarray(scaled_adv) - np.asarray(base), integration)


def difference_score(scaled_adv, scaled, integration: str = "rectangle") -> float:
    """r_ε = Σ (β̄^ε − β̄) Δα̂."""
    return area(np.asarray(scaled_adv) - np.asarray(scaled), integration)


def label(score, tau: float = 0.02):
    """fragile if s < −τ, robust if |s| ≤ τ, antifragile if s > τ (None for NaN)."""
    return labels_of(np.nan if score is None else score, tau).item()


def labels_of(scores, tau: float = 0.02) -> np.ndarray:
    """:func:`label` of every score in an array (None for NaN): the one labelling rule."""
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
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
    (mean over filters per step) as rows with ``filter == "combined"`` (for figures)."""
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


def filter_scores(curve: pd.DataFrame, clean, unfiltered_clean, adversarial: dict, integration: str) -> dict:
    """Eq. 10–16 on one unit's sweep rows: ``filter -> kind -> score`` for each filter
    present (h1, h2, h3) and ``combined`` (mean response over them), kinds ``clean`` (r_x) and,
    per adversarial reading ``suffix -> (accuracies, unfiltered accuracy)``, ``adv{suffix}``
    (r_xε) and ``diff{suffix}`` (r_ε).

    ``curve`` holds the rows (grouped by filter, each sorted by step) with ``n_removed`` and
    ``n_total``; ``clean`` and the adversarial accuracies are those of the rows, either one
    value per row (the point estimate) or with a trailing axis of bootstrap replicates: the
    same maths serves both. A zero unfiltered accuracy makes the scores NaN
    (:func:`scaled_performance`), and so does a reading the sweep did not take (NaN)."""
    clean = np.asarray(clean, dtype=float)
    scaled = {"clean": scaled_performance(clean, unfiltered_clean)}
    for suffix, (accuracies, unfiltered) in adversarial.items():
        scaled[f"adv{suffix}"] = scaled_performance(np.asarray(accuracies, dtype=float), unfiltered)
    base = baseline(curve["n_removed"], curve["n_total"]).reshape((-1,) + (1,) * (clean.ndim - 1))
    filters = list(dict.fromkeys(curve["filter"]))
    steps = len(curve) // len(filters)
    per_filter = {}
    for index, name in enumerate(filters):
        rows = slice(index * steps, (index + 1) * steps)
        per_filter[name] = {"base": base[rows], **{kind: values[rows] for kind, values in scaled.items()}}
    per_filter["combined"] = {key: np.mean([per_filter[f][key] for f in filters], axis=0) for key in per_filter[filters[0]]}
    scores = {}
    for name, curves in per_filter.items():
        scores[name] = {"clean": area(curves["clean"] - curves["base"], integration, axis=0)}
        for suffix in adversarial:
            scores[name][f"adv{suffix}"] = area(curves[f"adv{suffix}"] - curves["base"], integration, axis=0)
            scores[name][f"diff{suffix}"] = area(curves[f"adv{suffix}"] - curves["clean"], integration, axis=0)
    return scores


def adversarial_accuracies(curve: pd.DataFrame) -> dict:
    """The point estimate's ``suffix -> (accuracies, unfiltered accuracy)`` of every
    adversarial reading (a sweep table written before the white-box reading has none)."""
    return {
        suffix: (
            curve.get(f"acc_adv{suffix}", pd.Series(np.nan, index=curve.index)),
            curve.get(f"acc_adv{suffix}_unfiltered", pd.Series(np.nan, index=curve.index)).iloc[0],
        )
        for suffix in ADVERSARIAL_READINGS.values()
    }


def unit_curves(sweep_df: pd.DataFrame):
    """(keys, run and unit values, rows) of every unit of a sweep table, the rows grouped by
    filter in the sweep's order (``sweep.filters``) and each filter's sorted by step."""
    keys = [k for k in RUN_KEYS if k in sweep_df] + ["layer"]
    for group, curve in sweep_df.groupby(keys, sort=False):
        order = {name: rank for rank, name in enumerate(dict.fromkeys(curve["filter"]))}
        yield keys, group, curve.sort_values(["filter", "step"], key=lambda c: c.map(order) if c.name == "filter" else c)


def point_scores(sweep_df: pd.DataFrame, integration: str = "rectangle", tau: float = 0.02) -> pd.DataFrame:
    """Scores, labels and normalised scores per unit and filter (h1, h2, h3, then every
    unit's ``combined``): :data:`SCORE_COLUMNS`."""
    if integration not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r}; choose from {INTEGRATIONS}")
    filter_rows, combined_rows, undefined = [], [], []
    for keys, group, curve in unit_curves(sweep_df):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores = filter_scores(
                curve, curve["acc_clean"], curve["acc_clean_unfiltered"].iloc[0], adversarial_accuracies(curve), integration
            )
        undefined += [group[-1]] if caught else []
        for name, values in scores.items():
            row = {**dict(zip(keys, group)), "filter": name, **{f"score_{kind}": float(v) for kind, v in values.items()}}
            (combined_rows if name == "combined" else filter_rows).append(row)
    if undefined:
        warnings.warn(
            f"unfiltered accuracy is 0 for {sorted(set(undefined))}: their scaled performance and scores are undefined (NaN)",
            RuntimeWarning,
            stacklevel=2,
        )
    table = pd.DataFrame(filter_rows + combined_rows)
    for kind in KINDS:
        table[f"label_{kind}"] = labels_of(table[f"score_{kind}"], tau)
    table = normalise_scores(table)
    return table[[c for c in SCORE_COLUMNS if c in table]]


def normalise_scores(table: pd.DataFrame) -> pd.DataFrame:
    """norm_* columns per (dataset, model): r_x and both readings' r_xε scaled together, both
    readings' r_ε together (one scale per heatmap, so the readings compare)."""
    table = table.copy()
    groups = [k for k in ("dataset", "model") if k in table]
    parts = table.groupby(groups, sort=False).groups.values() if groups else [table.index]
    for together in (("clean", "adv", "adv_whitebox"), ("diff", "diff_whitebox")):
        columns = [kind for kind in together if f"score_{kind}" in table]
        for index in parts:
            scaled = normalise(np.concatenate([table.loc[index, f"score_{kind}"] for kind in columns]))
            for position, kind in enumerate(columns):
                table.loc[index, f"norm_{kind}"] = scaled[position * len(index) : (position + 1) * len(index)]
    return table
