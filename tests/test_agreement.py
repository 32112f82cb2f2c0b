"""Rank agreement between stress tests: Kendall's τ_b on hand-made rankings."""

import math

import pandas as pd
import pytest

from fragility.scoring.agreement import AGREEMENT_COLUMNS, kendall_tau_b, rank_agreement
from fragility.stress import rank_families


def test_kendall_tau_b_on_hand_made_rankings():
    assert kendall_tau_b([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # a = [1, 2, 2, 3]: 5 concordant pairs, 0 discordant, 1 tied in a only: 5 / sqrt(5 · 6)
    assert kendall_tau_b([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(30))
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))


def test_rank_agreement_means_over_seeds():
    layers = ["a", "b", "c", "d"]
    scores, criticality = [], []
    for seed, order in ((0, [1, 2, 3, 4]), (1, [1, 2, 4, 3])):
        for layer, rank in zip(layers, order):
            for f in ("h1", "h2", "h3", "combined"):
                scores.append(
                    {
                        "dataset": "d",
                        "model": "m",
                        "seed": seed,
                        "epoch": 2,
                        "layer": layer,
                        "filter": f,
                        "score_clean": rank,
                        "score_adv": rank,
                    }
                )
            for p in ("reinit", "rerandom"):  # a larger drop = less robust: −drop orders like the scores
                criticality.append(
                    {
                        "dataset": "d",
                        "model": "m",
                        "seed": seed,
                        "epoch": 2,
                        "layer": layer,
                        "perturbation": p,
                        "drop_clean": -[1, 2, 3, 4][layers.index(layer)],
                        "drop_adv": rank,
                    }
                )
    table = rank_agreement({"scores": pd.DataFrame(scores), "criticality": pd.DataFrame(criticality)}, rank_families())
    assert list(table.columns) == AGREEMENT_COLUMNS and len(table) == 12 * 11 // 2
    same = table[(table["measure_a"] == "h1_clean") & (table["measure_b"] == "h2_adv")].iloc[0]
    assert same["kendall_tau"] == 1.0 and same["spread"] == 0.0 and same["n_layers"] == 4
    # seed 0 agrees (τ 1), seed 1 swaps two layers (τ 4/6): mean 5/6, std of the two
    mixed = table[(table["measure_a"] == "h1_clean") & (table["measure_b"] == "reinit_clean")].iloc[0]
    assert mixed["kendall_tau"] == pytest.approx((1 + 4 / 6) / 2) and mixed["spread"] == pytest.approx(
        math.sqrt(2) * (1 - 4 / 6) / 2
    )
    reversed_ = table[(table["measure_a"] == "h1_clean") & (table["measure_b"] == "reinit_adv")].iloc[0]
    assert reversed_["kendall_tau"] == pytest.approx(-1.0)
