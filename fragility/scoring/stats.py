"""Statistics over seeds and checkpoints (no torch): how sure the retraining comparison is."""

from __future__ import annotations

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = ["dataset", "model", "scope", "epoch", "accuracy", "n_pairs", "mean_diff", "std_diff", "wilcoxon_p"]


def paired_differences(table: pd.DataFrame, branch: str = "selective") -> pd.DataFrame:
    """``branch`` − regular accuracy per (dataset, model, seed, epoch) pair: ``diff_clean``, ``diff_adv``."""
    keys = [k for k in ("dataset", "model", "seed", "epoch") if k in table]
    wide = table.pivot_table(index=keys, columns="branch", values=["acc_clean", "acc_adv"], aggfunc="first")
    return pd.DataFrame(
        {
            "diff_clean": wide[("acc_clean", branch)] - wide[("acc_clean", "regular")],
            "diff_adv": wide[("acc_adv", branch)] - wide[("acc_adv", "regular")],
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
