import math

import pandas as pd
import pytest

from fragility.scoring.stats import SUMMARY_COLUMNS, retrain_summary, summarise_differences


def _table(rows):
    """rows: (seed, epoch, regular clean, regular adv, selective clean, selective adv)."""
    records = []
    for seed, epoch, rc, ra, sc, sa in rows:
        records.append(
            {"dataset": "digits", "model": "m", "seed": seed, "epoch": epoch, "branch": "regular", "acc_clean": rc, "acc_adv": ra}
        )
        records.append(
            {
                "dataset": "digits",
                "model": "m",
                "seed": seed,
                "epoch": epoch,
                "branch": "selective",
                "acc_clean": sc,
                "acc_adv": sa,
            }
        )
    return pd.DataFrame(records)


def test_summary_matches_a_hand_computed_case():
    # adversarial differences: epoch 2 -> +0.1, +0.3; epoch 4 -> +0.2, -0.1 (all: 0.1, 0.3, 0.2, -0.1)
    table = _table(
        [(0, 2, 0.9, 0.4, 0.9, 0.5), (1, 2, 0.8, 0.3, 0.9, 0.6), (0, 4, 0.9, 0.5, 0.8, 0.7), (1, 4, 0.9, 0.5, 0.9, 0.4)]
    )
    summary = retrain_summary(table)
    assert list(summary.columns) == SUMMARY_COLUMNS
    adv = summary[summary["accuracy"] == "adv"].set_index("scope", drop=False)
    overall = adv[adv["scope"] == "all"].iloc[0]
    assert overall["n_pairs"] == 4 and pd.isna(overall["epoch"])
    assert overall["mean_diff"] == pytest.approx(0.125)
    # sample std of 0.1, 0.3, 0.2, -0.1: deviations -0.025, 0.175, 0.075, -0.225 -> sum of squares 0.0875 / 3
    assert overall["std_diff"] == pytest.approx(math.sqrt(0.0875 / 3))
    # Wilcoxon signed-rank, exact: ranks of |d| 0.1, 0.1, 0.2, 0.3 -> 1.5, 1.5, 3, 4; W- = 1.5 (the -0.1).
    # Of the 2^4 = 16 equally likely sign patterns, W- <= 1.5 for 3: none negative, or either 1.5 alone
    # (any other set of negative ranks sums to >= 3). Two-sided: p = 2 * 3/16 = 0.375.
    assert overall["wilcoxon_p"] == pytest.approx(6 / 16, abs=1e-12)
    epoch2 = adv[(adv["scope"] == "epoch") & (adv["epoch"] == 2)].iloc[0]
    assert epoch2["n_pairs"] == 2 and epoch2["mean_diff"] == pytest.approx(0.2)
    assert epoch2["std_diff"] == pytest.approx(math.sqrt(0.02))
    assert epoch2["wilcoxon_p"] == pytest.approx(2 / 2**2, abs=1e-12)  # 0.1, 0.3 both positive: W- = 0 in 1 of 4 patterns
    clean = summary[(summary["accuracy"] == "clean") & (summary["scope"] == "epoch") & (summary["epoch"] == 4)].iloc[0]
    assert clean["mean_diff"] == pytest.approx(-0.05)


def test_fewer_than_two_pairs_and_all_zero_differences():
    one = summarise_differences([0.2])
    assert one["n_pairs"] == 1 and math.isnan(one["wilcoxon_p"]) and math.isnan(one["std_diff"])
    assert summarise_differences([0.0, 0.0, 0.0])["wilcoxon_p"] == 1.0
    consistent = summarise_differences([0.1, 0.2, 0.15, 0.3, 0.25, 0.05, 0.12, 0.22])
    assert consistent["wilcoxon_p"] == pytest.approx(2 / 2**8)  # every sign positive: exact two-sided p = 2 / 2^n
