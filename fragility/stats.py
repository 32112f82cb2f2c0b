"""Statistics over seeds and checkpoints (no torch): how sure a comparison is."""

from __future__ import annotations

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = ["dataset", "model", "scope", "epoch", "accuracy", "n_pairs", "mean_diff", "std_diff", "wilcoxon_p"]


def paired_differences(table: pd.DataFrame) -> pd.DataFrame:
    """Selective − regular accuracy per (dataset, model, seed, epoch) pair: ``diff_clean``, ``diff_adv``."""
    keys = [k for k in ("dataset", "model", "seed", "epoch") if k in table]
    wide = table.pivot_table(index=keys, columns="branch", values=["acc_clean", "acc_adv"], aggfunc="first")
    return pd.DataFrame(
        {
            "diff_clean": wide[("acc_clean", "selective")] - wide[("acc_clean", "regular")],
            "diff_adv": wide[("acc_adv", "selective")] - wide[("acc_adv", "regular")],
        }
    ).reset_index()


def summarise_differences(differences) -> dict:
    """Number of pairs, mean and sample std of the differences, and the Wilcoxon signed-rank
    p-value (NaN with fewer than 2 pairs; 1 when every difference is 0)."""
    from scipy.stats import wilcoxon

    values = np.asarray(differences, dtype=float)
    n = len(values)
    if n < 2:
        p = np.nan
    elif not values.any():
        p = 1.0
    else:
        p = float(wilcoxon(values).pvalue)
    return {
        "n_pairs": n,
        "mean_diff": float(values.mean()) if n else np.nan,
        "std_diff": float(values.std(ddof=1)) if n > 1 else np.nan,
        "wilcoxon_p": p,
    }


def retrain_summary(table: pd.DataFrame) -> pd.DataFrame:
    """How sure the comparison is: per checkpoint epoch (``scope`` epoch) and over all epochs
    (``scope`` all, ``epoch`` missing), for clean and adversarial accuracy."""
    pairs = paired_differences(table)
    rows = []
    for (dataset, model), group in pairs.groupby(["dataset", "model"], sort=False):
        parts = [("epoch", epoch, part) for epoch, part in group.groupby("epoch")] + [("all", None, group)]
        for scope, epoch, part in parts:
            for accuracy_name in ("clean", "adv"):
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "scope": scope,
                        "epoch": epoch,
                        "accuracy": accuracy_name,
                        **summarise_differences(part[f"diff_{accuracy_name}"]),
                    }
                )
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    summary["epoch"] = summary["epoch"].astype("Int64")
    return summary


AGREEMENT_COLUMNS = ["dataset", "model", "epoch", "measure_a", "measure_b", "kendall_tau", "spread", "n_layers"]
SCORE_MEASURES = {f"{f}_{kind}": (f, f"score_{kind}") for f in ("h1", "h2", "h3", "combined") for kind in ("clean", "adv")}
CRITICALITY_MEASURES = {f"{p}_{kind}": (p, f"drop_{kind}") for p in ("reinit", "rerandom") for kind in ("clean", "adv")}


def layer_measures(scores: pd.DataFrame, criticality: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, seed, epoch, layer), every measure that orders layers from least to
    most robust: the scores r and r_ε of h1, h2, h3 and combined, and −drop (clean,
    adversarial) of re-initialisation and re-randomisation. ``__global__`` excluded."""
    keys = ["dataset", "model", "seed", "epoch", "layer"]
    local = scores[scores["layer"] != "__global__"]
    columns = {name: local[local["filter"] == f].set_index(keys)[column] for name, (f, column) in SCORE_MEASURES.items()}
    perturbed = criticality[criticality["layer"] != "__global__"]
    columns |= {
        name: -perturbed[perturbed["perturbation"] == p].set_index(keys)[column]
        for name, (p, column) in CRITICALITY_MEASURES.items()
    }
    return pd.DataFrame(columns).reset_index()


def kendall_tau_b(a, b) -> float:
    """Kendall's τ_b (ties accounted for); NaN when either ranking is constant or too short."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 2 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return float("nan")
    return float(kendalltau(a[keep], b[keep], variant="b").statistic)


def rank_agreement(scores: pd.DataFrame, criticality: pd.DataFrame) -> pd.DataFrame:
    """Kendall's τ_b between every pair of measures, per (seed, epoch) over the swept layers;
    ``kendall_tau`` is the mean over seeds and ``spread`` the std (ddof 1; NaN for one seed)."""
    measures = layer_measures(scores, criticality)
    names = list(SCORE_MEASURES) + list(CRITICALITY_MEASURES)
    rows = []
    for (dataset, model, epoch), part in measures.groupby(["dataset", "model", "epoch"], sort=True):
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                taus = [kendall_tau_b(run[a], run[b]) for _, run in part.groupby("seed")]
                finite = [t for t in taus if np.isfinite(t)]
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "epoch": epoch,
                        "measure_a": a,
                        "measure_b": b,
                        "kendall_tau": float(np.mean(finite)) if finite else np.nan,
                        "spread": float(np.std(finite, ddof=1)) if len(finite) > 1 else np.nan,
                        "n_layers": int(part.groupby("seed")[[a, b]].count().min().min()),
                    }
                )
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
