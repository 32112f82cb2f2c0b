import numpy as np
import pandas as pd
import pytest

from fragility.scoring.propagation import SPLIT_SCORES_COLUMNS, gain_agreement, split_scores
from fragility.stress.semirobust import follows_scores

LAYERS = {"net": ["l1", "l2", "l3", "l4"]}
# (layer, filter, unit_kind) -> (r_xε, r_ε) at seed 0, epoch 4
SCORES = {
    ("l1", "combined", "layer"): (0.1, -0.1),
    ("l2", "combined", "layer"): (0.3, 0.1),
    ("l3", "combined", "layer"): (0.5, 0.2),
    ("l4", "combined", "layer"): (0.9, 0.6),
    ("l4", "h1", "layer"): (-5.0, -5.0),  # another filter: not read
    ("l3", "combined", "block"): (7.0, 7.0),  # a block's row: not a layer
}


def scores_table(seed=0):
    return pd.DataFrame(
        [
            {"dataset": "a", "model": "net", "seed": seed, "epoch": 4, "layer": layer, "filter": f, "unit_kind": kind}
            | {"score_adv": adv, "score_diff": diff}
            for (layer, f, kind), (adv, diff) in SCORES.items()
        ]
    )


def semirobust_table(gains):
    """gains: (seed, k) -> Acc_sr − Acc, on a normal network at 0.2."""
    rows = []
    for (seed, k), gain in gains.items():
        run = {"dataset": "a", "model": "net", "seed": seed, "epoch": 4, "split_k": k, "first_fb_layer": f"l{5 - k}"}
        rows += [
            {**run, "network": "normal", "finetune_epoch": 0, "acc_adv": 0.2},
            {**run, "network": "robust", "finetune_epoch": 0, "acc_adv": 0.6},
            {**run, "network": "semirobust", "finetune_epoch": 0, "acc_adv": 0.2 + gain},
            {**run, "network": "finetuned", "finetune_epoch": 1, "acc_adv": 0.55},
        ]
    return pd.DataFrame(rows)


def test_split_scores_by_hand():
    table = split_scores(scores_table(), semirobust_table({(0, 1): 0.25, (0, 2): 0.125}), LAYERS)
    assert list(table.columns) == SPLIT_SCORES_COLUMNS
    one, two = (table[table["split_k"] == k].iloc[0] for k in (1, 2))
    # k = 1: f_a = l1..l3, f_b = l4; k = 2: f_a = l1, l2, f_b = l3, l4
    assert one["acc_sr_gain"] == pytest.approx(0.25) and one["first_fb_layer"] == "l4"
    assert one["score_adv_fa"] == pytest.approx(0.3) and one["score_diff_fa"] == pytest.approx(0.2 / 3)
    assert one["score_adv_fb"] == pytest.approx(0.9) and one["score_diff_fb"] == pytest.approx(0.6)
    assert (one["n_fa"], one["n_fb"]) == (3, 1)
    assert two["score_adv_fa"] == pytest.approx(0.2) and two["score_diff_fa"] == pytest.approx(0.0)
    assert two["score_adv_fb"] == pytest.approx(0.7) and two["score_diff_fb"] == pytest.approx(0.4)
    assert (two["n_fa"], two["n_fb"]) == (2, 2)


def test_a_part_without_scored_layers_has_nan_means():
    scores = scores_table()
    scores = scores[scores["layer"] != "l4"]
    table = split_scores(scores, semirobust_table({(0, 1): 0.1}), LAYERS)
    assert np.isnan(table["score_adv_fb"].iloc[0]) and table["n_fb"].iloc[0] == 0
    assert table["n_fa"].iloc[0] == 3


def test_gain_agreement_and_the_claim_by_hand():
    # f_b's mean r_xε per split: k = 1 → 0.9, k = 2 → 0.7 (both seeds); gains 0.3, 0.1 and 0.2, 0.0:
    # the pairs (0.9, 0.3), (0.7, 0.1), (0.9, 0.2), (0.7, 0.0) are concordant except the ties in r_xε
    scores = pd.concat([scores_table(0), scores_table(1)])
    semirobust = semirobust_table({(0, 1): 0.3, (0, 2): 0.1, (1, 1): 0.2, (1, 2): 0.0})
    table = split_scores(scores, semirobust, LAYERS)
    taus = gain_agreement(table)
    # 4 concordant, 0 discordant, 2 ties in x only: τ_b = 4 / sqrt(6 · 4)
    assert taus["score_adv_fb"] == pytest.approx(4 / np.sqrt(24))
    assert taus["score_adv_fa"] == pytest.approx(4 / np.sqrt(24))  # f_a: 0.3 at k = 1, 0.2 at k = 2
    found = follows_scores({"semirobust_scores": table}, {})
    assert found.holds and found.n == 4 and found.value == pytest.approx(4 / np.sqrt(24))
    assert "r_xε of f_b 0.82" in found.detail
