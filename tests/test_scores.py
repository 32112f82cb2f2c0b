import numpy as np
import pandas as pd
import pytest

from fragility.scoring.bootstrap import INTERVAL_COLUMNS
from fragility.scoring.scores import (
    SCORE_COLUMNS,
    adversarial_score,
    area,
    baseline,
    clean_score,
    difference_score,
    label,
    normalise,
    scaled_performance,
)
from fragility.scoring.tables import score_table


def test_baseline_and_scaling():
    assert baseline([0, 5, 10], 10).tolist() == [1.0, 0.5, 0.0]
    assert scaled_performance([0.9, 0.45], 0.9).tolist() == [1.0, 0.5]


def test_zero_unfiltered_accuracy_gives_nan_and_warns():
    with pytest.warns(RuntimeWarning, match="undefined"):
        out = scaled_performance([0.0, 0.0], 0.0)
    assert np.isnan(out).all()


# f = β̄ − φ̄ sampled at A = 2 (Δα̂ = 1/2): [0.1, −0.2, 0.3]
@pytest.mark.parametrize(
    "integration, expected",
    [
        ("rectangle", 0.5 * (0.1 - 0.2 + 0.3)),
        ("trapezoid", 0.5 * (0.05 - 0.2 + 0.15)),
        ("simpson", 0.5 / 3 * (0.1 - 0.8 + 0.3)),
    ],
)
def test_area_rules_by_hand(integration, expected):
    assert area([0.1, -0.2, 0.3], integration) == pytest.approx(expected, abs=1e-12)


def test_scores_signs():
    base = [1.0, 0.5, 0.0]
    assert clean_score([1.0, 1.0, 1.0], base) == pytest.approx(0.5 * 1.5)  # above baseline: antifragile
    assert adversarial_score([0.5, 0.0, 0.0], base) == pytest.approx(0.5 * (-0.5 - 0.5))  # below: fragile
    assert difference_score([0.5, 0.5, 0.5], [1.0, 1.0, 1.0]) == pytest.approx(-0.75)


def test_labels_with_tolerance():
    assert [label(s, 0.02) for s in (-0.03, -0.02, 0.0, 0.02, 0.021)] == ["fragile", "robust", "robust", "robust", "antifragile"]
    assert label(float("nan")) is None


def test_normalise_bounds_and_sign():
    out = normalise([-4.0, 1.0, 2.0])
    assert out.tolist() == [-0.5, 0.125, 0.25]
    assert normalise([0.0, 0.0]).tolist() == [0.0, 0.0]


def sweep_rows(layer, curves, n_total=4):
    """curves: filter -> list of (n_removed, acc_clean, acc_adv) per step."""
    rows = []
    for name, steps in curves.items():
        for i, (n, clean, adv) in enumerate(steps):
            rows.append(
                dict(
                    dataset="d",
                    model="m",
                    seed=0,
                    epoch=1,
                    attack="fgsm",
                    layer=layer,
                    filter=name,
                    step=i,
                    alpha=float(i),
                    alpha_norm=i / (len(steps) - 1),
                    n_removed=n,
                    n_total=n_total,
                    acc_clean=clean,
                    acc_adv=adv,
                    acc_clean_unfiltered=0.8,
                    acc_adv_unfiltered=0.4,
                )
            )
    return pd.DataFrame(rows)


def test_score_table_by_hand():
    df = sweep_rows(
        "fc",
        {
            "h1": [(0, 0.8, 0.4), (2, 0.4, 0.4), (4, 0.0, 0.0)],
            "h2": [(1, 0.8, 0.4), (2, 0.8, 0.2), (4, 0.0, 0.0)],
            "h3": [(0, 0.8, 0.4), (4, 0.0, 0.0), (0, 0.8, 0.4)],
        },
    )
    scores = score_table(df, "rectangle", tau=0.02)
    assert list(scores.columns) == SCORE_COLUMNS + INTERVAL_COLUMNS and scores[INTERVAL_COLUMNS].isna().all().all()
    table = scores.set_index("filter")
    # h1: β̄ = [1, .5, 0], β̄ε = [1, 1, 0], φ̄ = [1, .5, 0]
    assert table.loc["h1", "score_clean"] == pytest.approx(0.0)
    assert table.loc["h1", "score_adv"] == pytest.approx(0.5 * 0.5)
    assert table.loc["h1", "score_diff"] == pytest.approx(0.5 * 0.5)
    assert table.loc["h1", ["label_clean", "label_adv"]].tolist() == ["robust", "antifragile"]
    # h3: β̄ = β̄ε = [1, 0, 1], φ̄ = [1, 0, 1]
    assert table.loc["h3", "score_clean"] == pytest.approx(0.0)
    # combined: means per step of the three filters
    beta = np.mean([[1, 0.5, 0], [1, 1, 0], [1, 0, 1]], axis=0)
    phi = np.mean([[1, 0.5, 0], [0.75, 0.5, 0], [1, 0, 1]], axis=0)
    assert table.loc["combined", "score_clean"] == pytest.approx(0.5 * (beta - phi).sum())
    assert table["norm_clean"].abs().max() <= 0.5 and table["norm_diff"].abs().max() == pytest.approx(0.5)
    assert np.sign(table["norm_adv"]).equals(np.sign(table["score_adv"]))


def test_the_two_adversarial_readings_differ_exactly_where_their_accuracies_do():
    curves = {
        "h1": [(0, 0.8, 0.4), (2, 0.4, 0.4), (4, 0.0, 0.0)],
        "h2": [(1, 0.8, 0.4), (2, 0.8, 0.2), (4, 0.0, 0.0)],
        "h3": [(0, 0.8, 0.4), (4, 0.0, 0.0), (0, 0.8, 0.4)],
    }
    df = sweep_rows("fc", curves)
    without = score_table(df)
    assert without[[c for c in SCORE_COLUMNS if "whitebox" in c]].isna().all().all()
    same = score_table(df.assign(acc_adv_whitebox=df["acc_adv"], acc_adv_whitebox_unfiltered=df["acc_adv_unfiltered"]))
    for kind in ("adv", "diff"):
        assert same[f"score_{kind}_whitebox"].equals(same[f"score_{kind}"])
        assert same[f"label_{kind}_whitebox"].equals(same[f"label_{kind}"])
    assert same["score_clean"].equals(without["score_clean"]) and same["score_adv"].equals(without["score_adv"])
    # h2 step 0 attacked white-box: 0.2 instead of 0.4 -> β̄ε drops by 0.5 there, Δα̂ = 1/2
    whitebox = df["acc_adv"].where(~((df["filter"] == "h2") & (df["step"] == 0)), 0.2)
    table = score_table(df.assign(acc_adv_whitebox=whitebox, acc_adv_whitebox_unfiltered=0.4)).set_index("filter")
    moved = table["score_adv_whitebox"] - table["score_adv"]
    assert moved.to_dict() == pytest.approx({"h1": 0.0, "h2": -0.25, "h3": 0.0, "combined": -0.25 / 3})
    assert (table["score_diff_whitebox"] - table["score_diff"]).to_dict() == pytest.approx(moved.to_dict())
    # h2: β̄ε = [1, .5, 0] transferred, [.5, .5, 0] white-box; φ̄ = [.75, .5, 0]: r_xε = ±0.125
    assert table.loc["h2", ["score_adv", "score_adv_whitebox"]].tolist() == pytest.approx([0.125, -0.125])
    assert table.loc["h2", ["label_adv", "label_adv_whitebox"]].tolist() == ["antifragile", "fragile"]
