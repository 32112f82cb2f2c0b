"""The verdict table on hand-made tables whose verdicts are known."""

import numpy as np
import pandas as pd
import pytest

from fragility.scoring.verdict import VERDICT_COLUMNS, drop_word, network_order, verdict_table

RUN = {"dataset": "mnist", "model": "net", "attack": "fgsm"}
LAYERS = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "fc"]


def scores(labels: dict, seeds=(0, 1), usable=True) -> pd.DataFrame:
    """Combined-filter score rows: ``labels`` maps unit -> per-seed clean labels (the other
    readings robust), at checkpoints 1 and 2 (only 2 counts)."""
    rows = []
    for unit, per_seed in labels.items():
        kind = "block" if unit == "layer1.0" else ("global" if unit == "__global__" else "layer")
        for seed, label in zip(seeds, per_seed):
            for epoch in (1, 2):
                rows.append(
                    {**RUN, "seed": seed, "epoch": epoch, "layer": unit, "unit_kind": kind, "filter": "combined",
                     "label_clean": label if epoch == 2 else "robust", "label_clean_conf": 0.9 if epoch == 2 else 0.1,
                     "score_clean": {"fragile": -0.1, "robust": 0.0, "antifragile": 0.1}.get(label, np.nan),
                     "label_adv": "robust", "label_adv_conf": 1.0, "score_adv": 0.0,
                     "label_diff": "robust", "label_diff_conf": 1.0, "score_diff": 0.0, "usable": usable}
                )  # fmt: skip
    return pd.DataFrame(rows)


def drops(values: dict, perturbation="reinit") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**RUN, "seed": seed, "epoch": 2, "layer": unit, "perturbation": perturbation, "drop_clean": d, "usable": True}
            for unit, per_seed in values.items()
            for seed, d in enumerate(per_seed)
        ]
    )


def cell(table: pd.DataFrame, unit: str, measure: str) -> dict:
    found = table[(table["unit"] == unit) & (table["measure"] == measure)]
    assert len(found) == 1, (unit, measure, found)
    return found.iloc[0].to_dict()


def test_a_drop_beyond_the_tolerance_is_fragile_below_minus_it_antifragile():
    assert [drop_word(d, 0.02) for d in (0.03, 0.02, 0.0, -0.02, -0.021)] == [
        "fragile",
        "robust",
        "robust",
        "robust",
        "antifragile",
    ]


def test_blocks_go_right_before_their_first_layer():
    assert network_order(LAYERS, ["layer2.0", "layer1.0", "elsewhere"]) == [
        "conv1",
        "layer1.0",
        "layer1.0.conv1",
        "layer1.0.conv2",
        "layer2.0",
        "layer2.0.conv1",
        "fc",
        "elsewhere",
    ]


def test_synaptic_labels_take_the_last_checkpoint_majority_and_a_tie_is_undetermined():
    table = verdict_table({"scores": scores({"conv1": ["fragile", "fragile"], "fc": ["fragile", "antifragile"]})}, 0.02, LAYERS)
    assert list(table.columns) == VERDICT_COLUMNS
    conv1 = cell(table, "conv1", "r_x")
    assert conv1["verdict"] == "fragile" and conv1["seeds_agreeing"] == 2 and conv1["confidence"] == pytest.approx(0.9)
    assert conv1["value"] == pytest.approx(-0.1) and conv1["epoch"] == 2
    fc = cell(table, "fc", "r_x")
    assert fc["verdict"] == "undetermined" and fc["why"] == "seeds split (fragile 1, antifragile 1)"
    assert "r_xε white-box" not in set(table["measure"])  # not measured: no row, drawn as n/a
    assert "__global__" not in set(table["unit"])


def test_an_unusable_checkpoint_gives_undetermined_synaptic_verdicts():
    table = verdict_table({"scores": scores({"conv1": ["undetermined", "undetermined"]}, usable=False)}, 0.02, LAYERS)
    row = cell(table, "conv1", "r_x")
    assert row["verdict"] == "undetermined" and row["why"] == "checkpoint not usable (trust.parquet)"


def test_drops_are_judged_on_the_mean_over_seeds_with_the_seeds_that_agree():
    tables = {
        "scores": scores({"conv1": ["robust", "robust"], "fc": ["robust", "robust"]}),
        "criticality": pd.concat([drops({"conv1": [0.05, 0.0], "fc": [-0.04, -0.03]}), drops({"conv1": [0.0, 0.0]}, "rerandom")]),
    }
    table = verdict_table(tables, 0.02, LAYERS)
    conv1 = cell(table, "conv1", "re-initialisation drop")
    assert conv1["verdict"] == "fragile" and conv1["value"] == pytest.approx(0.025) and conv1["seeds_agreeing"] == 1
    assert cell(table, "fc", "re-initialisation drop")["verdict"] == "antifragile"
    assert cell(table, "conv1", "re-randomisation drop")["verdict"] == "robust"
    # conv1: fragile by re-initialisation only, of r_x, r_xε, r_ε and the two drops
    assert (cell(table, "conv1", "r_x")["fragile_by"], cell(table, "conv1", "r_x")["measured_by"]) == (1, 5)


def semirobust(gain: float, usable: bool, why: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**RUN, "seed": seed, "epoch": 2, "split_k": 2, "first_fb_layer": "layer2.0.conv1", "acc_sr_gain": gain,
             "usable": usable, "why": why}
            for seed in (0, 1)
        ]
    )  # fmt: skip


@pytest.mark.parametrize("gain, word", [(0.1, "robust"), (0.01, "fragile")])
def test_the_semirobust_split_judges_f_a_and_leaves_f_b_and_the_count_alone(gain, word):
    units = {"conv1": ["robust"] * 2, "layer1.0": ["robust"] * 2, "fc": ["fragile"] * 2}
    table = verdict_table({"scores": scores(units), "semirobust_scores": semirobust(gain, True)}, 0.02, LAYERS)
    assert cell(table, "conv1", "semirobust k=2 (f_a)")["verdict"] == word
    assert cell(table, "layer1.0", "semirobust k=2 (f_a)")["verdict"] == word  # all its layers before the cut
    assert cell(table, "fc", "semirobust k=2 (f_b)")["verdict"] == "n/a"
    assert cell(table, "conv1", "r_x")["measured_by"] == 3  # the split is not one of the measures counted
    assert list(table.drop_duplicates("unit")["unit"]) == ["conv1", "layer1.0", "fc"]  # network order


def test_a_split_whose_robust_network_is_not_robust_is_undetermined_with_its_reason():
    why = "F* not robust: McNemar p = 0.4"
    table = verdict_table(
        {"scores": scores({"conv1": ["robust"] * 2}), "semirobust_scores": semirobust(0.2, False, why)}, 0.02, LAYERS
    )
    row = cell(table, "conv1", "semirobust k=2 (f_a)")
    assert row["verdict"] == "undetermined" and row["why"] == why
