"""Rank agreement (METHOD §11): do the stress tests order a network's layers alike?

Every stress test with a :class:`fragility.stress.base.RankMeasures` entry orders the swept
layers (``__global__`` excluded) from least to most robust, one ordering per measure; this
module takes Kendall's τ_b between every pair of measures, per (seed, checkpoint), and
reports mean and spread over seeds. No torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import GLOBAL_LAYER

KEYS = ["dataset", "model", "seed", "epoch", "layer"]
AGREEMENT_COLUMNS = [
    "dataset",
    "model",
    "unit_kind",  # layers and blocks are ranked apart: blocks are not layers
    "epoch",
    "measure_a",
    "measure_b",
    "kendall_tau",
    "spread",
    "n_layers",
    "usable",
]


def layer_measures(tables: dict[str, pd.DataFrame], families: list[dict]) -> pd.DataFrame:
    """Per (dataset, model, seed, epoch, layer), every measure that orders layers from least to
    most robust, ``__global__`` excluded. Each family (a stress test's
    :class:`fragility.stress.base.RankMeasures` as a dict) reads ``tables[family["table"]]``:
    measure ``{value}_{kind}`` is column ``{stem}_{kind}`` of the rows whose ``by`` column is
    ``value``, times ``sign`` (−1 turns a drop into "higher = more robust"), of the rows whose
    columns hold the values of ``where`` (if given; a table made before such a column existed
    keeps all its rows)."""
    columns = {}
    for family in [f for f in families if f["table"] in tables]:  # results made before a test existed lack its table
        rows = tables[family["table"]]
        rows = rows[rows["layer"] != GLOBAL_LAYER]
        for column, value in family.get("where", {}).items():
            rows = rows[rows[column] == value] if column in rows else rows
        for value in family["values"]:
            chosen = rows[rows[family["by"]] == value].set_index(KEYS)
            for column in family["columns"]:
                columns[f"{value}_{column.rsplit('_', 1)[1]}"] = family["sign"] * chosen[column]
    measures = pd.DataFrame(columns).reset_index()
    kinds = [t[KEYS + ["unit_kind"]] for t in tables.values() if "unit_kind" in t]
    if kinds:
        measures = measures.merge(pd.concat(kinds).drop_duplicates(KEYS), on=KEYS, how="left")
    else:  # tables written before blocks: every unit a layer
        measures["unit_kind"] = "layer"
    return measures


def kendall_tau_b(a, b) -> float:
    """Kendall's τ_b (ties accounted for); NaN when either ranking is constant or too short."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 2 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return float("nan")
    return float(kendalltau(a[keep], b[keep], variant="b").statistic)


def _unusable_runs(tables: dict[str, pd.DataFrame]) -> set[tuple]:
    """(dataset, model, seed, epoch) of every checkpoint a table flags as not usable."""
    flagged = [t.loc[~t["usable"].astype(bool), KEYS[:4]] for t in tables.values() if "usable" in t]
    return {tuple(row) for part in flagged for row in part.itertuples(index=False)}


def rank_agreement(tables: dict[str, pd.DataFrame], families: list[dict]) -> pd.DataFrame:
    """Kendall's τ_b between every pair of measures (:func:`layer_measures`), per (seed,
    epoch) over the swept layers, and apart over the blocks (``unit_kind``; a measure only
    blocks have, such as triage's, is paired over blocks only); ``kendall_tau`` is the mean over seeds and ``spread`` the
    std (ddof 1; NaN for one seed). Seeds whose checkpoint is not usable
    (:mod:`fragility.trust`) are left out of the mean where another seed is usable;
    ``usable`` says whether one was."""
    measures = layer_measures(tables, families)
    names = [c for c in measures.columns if c not in KEYS + ["unit_kind"]]
    unusable = _unusable_runs(tables)
    # a measure only some kinds of unit have (triage: blocks) pairs up within those kinds
    present = {kind: [n for n in names if rows[n].notna().any()] for kind, rows in measures.groupby("unit_kind")}
    rows = []
    for (dataset, model, kind, epoch), part in measures.groupby(["dataset", "model", "unit_kind", "epoch"], sort=True):
        trusted = part[[(dataset, model, seed, epoch) not in unusable for seed in part["seed"]]]
        usable = not trusted.empty
        part = trusted if usable else part
        kind_names = present[kind]
        for i, a in enumerate(kind_names):
            for b in kind_names[i + 1 :]:
                taus = [kendall_tau_b(run[a], run[b]) for _, run in part.groupby("seed")]
                finite = [t for t in taus if np.isfinite(t)]
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "unit_kind": kind,
                        "epoch": epoch,
                        "measure_a": a,
                        "measure_b": b,
                        "kendall_tau": float(np.mean(finite)) if finite else np.nan,
                        "spread": float(np.std(finite, ddof=1)) if len(finite) > 1 else np.nan,
                        "n_layers": int(part.groupby("seed")[[a, b]].count().min().min()),
                        "usable": usable,
                    }
                )
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
