"""The claims on hand-made score, sweep and retrain tables whose answers are known."""

import math

import numpy as np
import pandas as pd
import pytest

from fragility.scoring.claims import CLAIMS_COLUMNS, claims_html, claims_markdown, claims_table, removable
from fragility.scoring.propagation import SPLIT_SCORES_COLUMNS

ROLES = {"net": {"first_conv": "conv1", "last_layer": "fc", "bn_convs": ["block.conv"], "layers": ["conv1", "block.conv", "fc"]}}
CHANCE = {"a": 0.1, "b": 0.1}


def scores_rows(dataset, labels, global_scores):
    """labels: (seed, epoch) -> {layer: (clean label, adv label)}; global_scores: (seed, epoch) -> r."""
    rows = []
    for (seed, epoch), by_layer in labels.items():
        for layer, (clean, adv) in by_layer.items():
            rows.append(
                {
                    "dataset": dataset,
                    "model": "net",
                    "seed": seed,
                    "epoch": epoch,
                    "layer": layer,
                    "filter": "combined",
                    "label_clean": clean,
                    "label_adv": adv,
                    "label_clean_conf": 0.9,
                    "label_adv_conf": 0.8,
                    "score_clean": -0.1,
                    "score_adv": -0.1,
                    "score_diff": 0.0,
                }
            )
        r = global_scores[(seed, epoch)]
        rows.append(
            {
                "dataset": dataset,
                "model": "net",
                "seed": seed,
                "epoch": epoch,
                "layer": "__global__",
                "filter": "combined",
                "label_clean": "fragile",
                "label_adv": "fragile",
                "label_clean_conf": 1.0,
                "label_adv_conf": 1.0,
                "score_clean": r,
                "score_adv": r,
                "score_diff": r,
            }
        )
    return rows


def sweep_rows(dataset, full_removal):
    """full_removal: (seed, epoch) -> clean accuracy of block.conv with every weight removed (h1, step A = 2)."""
    rows = []
    for (seed, epoch), accuracy in full_removal.items():
        for step, acc in ((0, 0.9), (1, 0.8), (2, accuracy)):
            rows.append(
                {
                    "dataset": dataset,
                    "model": "net",
                    "seed": seed,
                    "epoch": epoch,
                    "layer": "block.conv",
                    "filter": "h1",
                    "step": step,
                    "acc_clean": acc,
                }
            )
    return rows


def retrain_rows(dataset, differences):
    """differences: (seed, epoch) -> (selective − regular clean, selective − regular adversarial)."""
    rows = []
    for (seed, epoch), (clean, adv) in differences.items():
        rows.append(
            {
                "dataset": dataset,
                "model": "net",
                "seed": seed,
                "epoch": epoch,
                "branch": "regular",
                "acc_clean": 0.5,
                "acc_adv": 0.3,
            }
        )
        rows.append(
            {
                "dataset": dataset,
                "model": "net",
                "seed": seed,
                "epoch": epoch,
                "branch": "selective",
                "acc_clean": 0.5 + clean,
                "acc_adv": 0.3 + adv,
            }
        )
    return rows


@pytest.fixture(scope="module")
def claims():
    runs = [(seed, epoch) for seed in (0, 1, 2) for epoch in (2, 4, 6)]
    # dataset a: conv1 fragile everywhere; fc fragile but for seed 2 at epoch 6; global scores converge
    labels_a = {
        run: {"conv1": ("fragile", "fragile"), "fc": ("fragile", "robust" if run == (2, 6) else "fragile")} for run in runs
    }
    global_a = {(s, e): {2: [-0.1, -0.3, -0.5], 4: [-0.2, -0.3, -0.4], 6: [-0.29, -0.3, -0.31]}[e][s] for s, e in runs}
    # dataset b: conv1 fragile clean but not adversarially at one run; global scores spread out
    labels_b = {
        run: {"conv1": ("fragile", "antifragile" if run == (0, 2) else "fragile"), "fc": ("robust", "robust")} for run in runs
    }
    global_b = {(s, e): {2: [-0.3, -0.3, -0.31], 4: [-0.2, -0.3, -0.4], 6: [-0.1, -0.3, -0.5]}[e][s] for s, e in runs}
    scores = pd.DataFrame(scores_rows("a", labels_a, global_a) + scores_rows("b", labels_b, global_b))
    # BatchNorm rescue: a keeps 0.5 > 2 x chance at 6 of 9 runs; b never
    sweep = pd.DataFrame(
        sweep_rows("a", {run: 0.5 if run[1] != 6 else 0.1 for run in runs}) + sweep_rows("b", {run: 0.15 for run in runs})
    )
    # a: selective beats regular adversarially at all 9 pairs; clean: mean 0; b: mixed
    retrain = pd.DataFrame(
        retrain_rows("a", {run: (0.0, 0.01 * (i + 1)) for i, run in enumerate(runs)})
        + retrain_rows("b", {run: (0.02 if i % 2 else -0.02, -0.01 if i % 2 else 0.01) for i, run in enumerate(runs)})
    )
    table = claims_table(scores, sweep, retrain, ROLES, CHANCE, tau=0.02)
    return table.set_index(["claim", "dataset"])


def test_every_claim_row(claims):
    assert list(claims.reset_index().columns) == CLAIMS_COLUMNS
    assert len(claims) == 2 * 7 + 1
    assert np.isnan(claims.loc[("transfer_inflates_adversarial_score", "a")]["value"])  # no white-box reading


def test_layer_claims(claims):
    first = claims.loc[("first_conv_fragile", "a")]
    assert first["value"] == 1.0 and first["holds"] and first["n"] == 9 and first["spread"] == 0.0
    assert "mean label confidence clean 0.90, adv 0.80" in first["detail"]
    first_b = claims.loc[("first_conv_fragile", "b")]
    assert first_b["value"] == pytest.approx(8 / 9) and not first_b["holds"]
    assert first_b["spread"] == pytest.approx(np.std([2 / 3, 1, 1], ddof=1))  # per seed: 2/3, 1, 1
    last = claims.loc[("last_linear_fragile", "a")]
    assert last["value"] == pytest.approx(8 / 9) and not last["holds"] and "layer fc" in last["detail"]
    assert claims.loc[("last_linear_fragile", "b")]["value"] == 0.0


def test_batchnorm_rescue(claims):
    rescue = claims.loc[("batchnorm_rescue", "a")]
    assert rescue["value"] == pytest.approx(6 / 9) and rescue["holds"] and rescue["n"] == 9
    assert claims.loc[("batchnorm_rescue", "b")]["value"] == 0.0 and not claims.loc[("batchnorm_rescue", "b")]["holds"]


def test_selective_beats_regular(claims):
    adv = claims.loc[("selective_beats_regular_adv", "a")]
    assert adv["value"] == pytest.approx(0.05) and adv["n"] == 9 and adv["holds"]
    assert adv["spread"] == pytest.approx(np.std(np.arange(1, 10) * 0.01, ddof=1))
    assert "Wilcoxon p = 0.0039" in adv["detail"]  # 9 positive differences: exact two-sided p = 2 / 2^9
    clean = claims.loc[("selective_beats_regular_clean", "a")]
    assert clean["value"] == 0.0 and not clean["holds"]
    assert not claims.loc[("selective_beats_regular_adv", "b")]["holds"]


def test_global_scores_converge_and_similarity(claims):
    converge = claims.loc[("global_scores_converge", "a")]
    assert converge["value"] == pytest.approx(np.std([-0.29, -0.3, -0.31], ddof=1) / np.std([-0.1, -0.3, -0.5], ddof=1))
    assert converge["holds"] and not claims.loc[("global_scores_converge", "b")]["holds"]
    similar = claims.loc[("global_scores_similar_across_datasets", "a,b")]
    mean_a = np.mean([-0.1, -0.3, -0.5, -0.2, -0.3, -0.4, -0.29, -0.3, -0.31])
    mean_b = np.mean([-0.3, -0.3, -0.31, -0.2, -0.3, -0.4, -0.1, -0.3, -0.5])
    assert similar["value"] == pytest.approx(abs(mean_a - mean_b)) and similar["holds"]


def test_markdown_has_one_line_per_claim(claims):
    text = claims_markdown(claims.reset_index())
    assert text.count("\n") == 2 + len(claims) and "| first_conv_fragile | a | net | 1.000 |" in text


def test_removable_fraction_within_the_loss():
    sweep = pd.DataFrame(
        {
            "layer": "l",
            "filter": "h1",
            "step": [0, 1, 2, 3],
            "n_removed": [1, 4, 7, 10],
            "n_total": 10,
            "acc_clean": [0.90, 0.895, 0.85, 0.10],
            "acc_adv": [0.50, 0.45, 0.50, 0.10],
            "acc_clean_unfiltered": 0.90,
            "acc_adv_unfiltered": 0.50,
        }
    )
    row = removable(sweep, max_loss=0.01).iloc[0]
    assert row["removable_clean"] == 0.4 and row["removable_adv"] == 0.7 and row["removable"] == 0.1
    assert math.isclose(removable(sweep, max_loss=0.06).iloc[0]["removable"], 0.7)


def test_a_model_never_retrained_has_no_retraining_claim():
    from fragility.scoring.claims import selective_beats_regular

    row = selective_beats_regular(
        pd.DataFrame(columns=["dataset", "model", "seed", "epoch", "branch", "acc_clean", "acc_adv"]), "adv", "held_out", "net"
    )
    assert math.isnan(row["value"]) and row["n"] == 0 and not row["holds"] and "not retrained" in row["detail"]


def test_transfer_inflates_adversarial_score_by_hand():
    from fragility.scoring.claims import transfer_inflates_adversarial_score

    scores = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1, 1],
            "epoch": 2,
            "layer": ["conv1", "fc", "conv1", "fc", "layer1.0.conv1"],
            "filter": ["combined", "combined", "combined", "combined", "h1"],
            "score_adv": [0.05, 0.10, 0.02, -0.01, 0.5],
            "score_adv_whitebox": [-0.24, -0.10, -0.03, 0.01, np.nan],
            "label_diff": ["antifragile", "antifragile", "robust", "robust", "robust"],
            "label_diff_whitebox": ["fragile", "fragile", "robust", "robust", None],
        }
    )
    row = transfer_inflates_adversarial_score(scores, "d", "m")
    assert row["value"] == pytest.approx(3 / 4) and row["n"] == 4  # the h1 row is not a combined response
    assert row["spread"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert "mean +0.130" in row["detail"] and "Δr labels differ at 2 of 4" in row["detail"]  # (.29 + .2 + .05 − .02) / 4
    assert "over 4 (seed, checkpoint, unit) of 2 units" in row["detail"] and row["holds"]  # interval above 0
    balanced = transfer_inflates_adversarial_score(scores.assign(score_adv=[0.1, -0.1, 0.1, -0.1, 0.0]), "d", "m")
    assert not balanced["holds"]  # differences +.34, 0, +.13, −.11: the interval reaches below 0


def _retrain_pairs(selective_frozen, n_layers=4, gain=0.01):
    rows = []
    for i, frozen in enumerate(selective_frozen):
        base = {"dataset": "d", "model": "m", "seed": i, "epoch": 2, "n_layers": n_layers}
        rows.append({**base, "branch": "regular", "acc_clean": 0.5, "acc_adv": 0.3, "n_frozen": 0, "label_attack": None})
        adv = 0.3 if frozen == 0 else 0.3 + gain * (i + 1)
        rows.append(
            {**base, "branch": "selective", "acc_clean": 0.5, "acc_adv": adv, "n_frozen": frozen, "label_attack": "whitebox"}
        )
    return pd.DataFrame(rows)


def test_a_branch_that_froze_nothing_or_all_but_one_is_reported_not_compared():
    from fragility.scoring.claims import selective_beats_regular

    nothing = selective_beats_regular(_retrain_pairs([0, 0, 0]), "adv", "d", "m")
    assert np.isnan(nothing["value"]) and nothing["n"] == 0 and not nothing["holds"]
    assert "3 pairs froze no layer (identical to regular by construction)" in nothing["detail"]
    assert "labels of the whitebox reading" in nothing["detail"]
    mixed = selective_beats_regular(_retrain_pairs([0, 2, 3, 2, 4]), "adv", "d", "m")
    assert mixed["n"] == 2 and mixed["value"] == pytest.approx(np.mean([0.02, 0.04]))  # seeds 1 and 3 compare
    assert "1 pairs froze no layer" in mixed["detail"] and "2 froze every labelled layer but at most one" in mixed["detail"]


def test_selective_rows_for_each_reading():
    from fragility.scoring.claims import selective_by_reading

    table = _retrain_pairs([1, 2, 1])
    other = table[table["branch"] == "selective"].assign(branch="selective_transfer", label_attack="transfer", acc_adv=0.2)
    rows = {r["claim"]: r for r in selective_by_reading(pd.concat([table, other]), "d", "m")}
    assert set(rows) == {"selective_beats_regular_adv_whitebox", "selective_beats_regular_adv_transfer"}
    assert rows["selective_beats_regular_adv_whitebox"]["value"] == pytest.approx(0.02)
    assert rows["selective_beats_regular_adv_transfer"]["value"] == pytest.approx(-0.1)


def test_unusable_checkpoints_are_left_out_and_counted():
    """Seed 1 did not learn (trust.parquet): its rows are left out, n shrinks, the detail says so,
    and the warning that opens claims.md and claims.html names it."""
    runs = [(0, 2), (1, 2)]
    labels = {(0, 2): {"conv1": ("fragile", "fragile"), "fc": ("fragile", "fragile")}, (1, 2): {"conv1": ("robust", "robust")}}
    scores = pd.DataFrame(scores_rows("a", labels, {run: -0.1 for run in runs}))
    scores["usable"] = scores["seed"] == 0
    sweep = pd.DataFrame(sweep_rows("a", {run: 0.5 for run in runs})).assign(usable=lambda t: t["seed"] == 0)
    retrain = pd.DataFrame(retrain_rows("a", {run: (0.0, 0.01) for run in runs})).assign(usable=lambda t: t["seed"] == 0)
    table = claims_table(scores, sweep, retrain, ROLES, CHANCE, tau=0.02).set_index("claim")
    first = table.loc["first_conv_fragile"]
    assert first["value"] == 1.0 and first["n"] == 1 and first["holds"]  # seed 1's robust conv1 is not counted
    assert first["detail"].endswith("; 1 unusable (seed, checkpoint) left out (trust.parquet)")
    assert table.loc["batchnorm_rescue", "n"] == 1
    trust = pd.DataFrame(
        [
            {"dataset": "a", "model": "net", "seed": 0, "epoch": 2, "usable": True, "why": ""},
            {
                "dataset": "a",
                "model": "net",
                "seed": 1,
                "epoch": 2,
                "usable": False,
                "why": "clean accuracy 0.100 is not above chance",
            },
        ]
    )
    markdown = claims_markdown(table.reset_index(), trust)
    assert (
        markdown.startswith("> **Warning: 1 of 2 checkpoints are not usable")
        and "a/net seed 1 epoch 2: clean accuracy" in markdown
    )
    assert claims_html(table.reset_index(), trust).startswith('<div style="border:2px solid #b00')
    nothing = claims_table(scores.assign(usable=False), sweep, retrain, ROLES, CHANCE, tau=0.02)
    assert nothing["value"].isna().all() and nothing["detail"].str.startswith("no usable checkpoint; 2 unusable").all()


def triage_rows(curves, base=0.9):
    """curves: (seed, block, scheme) -> clean accuracies at triage epochs 0, 1, 2."""
    return pd.DataFrame(
        [
            {
                "dataset": "a",
                "model": "net",
                "seed": seed,
                "epoch": 4,
                "block": block,
                "scheme": scheme,
                "triage_epoch": epoch,
                "acc_clean": acc,
                "acc_adv": acc / 2,
                "base_acc_clean": base,
                "base_acc_adv": base / 2,
            }
            for (seed, block, scheme), accs in curves.items()
            for epoch, acc in enumerate(accs)
        ]
    )


def test_triage_claims_by_hand():
    from fragility.scoring.claims import recovery_epochs, triage_claims

    curves = {
        (0, "b1", "local"): [0.1, 0.80, 0.86],
        (0, "b2", "local"): [0.1, 0.70, 0.84],
        (1, "b1", "local"): [0.1, 0.80, 0.88],
        (1, "b2", "local"): [0.1, 0.70, 0.82],
        (0, "b1", "global"): [0.1, 0.85, 0.895],  # recovers at 2 (0.895 ≥ 0.89)
        (0, "b2", "global"): [0.1, 0.89, 0.90],  # at 1
        (1, "b1", "global"): [0.1, 0.80, 0.85],  # never
        (1, "b2", "global"): [0.1, 0.88, 0.95],  # at 2
        (0, "b1", "distil"): [0.1, 0.89, 0.90],  # at 1
        (0, "b2", "distil"): [0.1, 0.89, 0.90],  # at 1
        (1, "b1", "distil"): [0.1, 0.80, 0.85],  # never (nor global: left out)
        (1, "b2", "distil"): [0.1, 0.90, 0.905],  # at 1
    }
    table = triage_rows(curves)
    found = recovery_epochs(table, 0.01).set_index(["seed", "block", "scheme"])
    assert found.loc[(0, "b1", "global"), "epochs_to_recover"] == 2
    assert np.isnan(found.loc[(1, "b1", "global"), "epochs_to_recover"]) and found.loc[(1, "b1", "global"), "last_epoch"] == 2
    independent, recovers, distil = triage_claims(table, 0.01, 0.05, "a", "net")
    # final local means: b1 (0.86 + 0.88)/2 = 0.87, b2 (0.84 + 0.82)/2 = 0.83; range 0.04; per seed 0.02 and 0.06
    assert independent["claim"] == "triage_block_independent" and independent["value"] == pytest.approx(0.04)
    assert independent["spread"] == pytest.approx(np.std([0.02, 0.06], ddof=1)) and independent["holds"]
    assert independent["n"] == 2
    # global recovers in 3 of 4
    assert recovers["value"] == pytest.approx(0.75) and recovers["n"] == 4 and recovers["holds"]
    # global − distil where one recovered: 2 − 1, 1 − 1, 2 − 1 = 1, 0, 1; mean 2/3; distil ≤ base + 0.005
    assert distil["value"] == pytest.approx(2 / 3) and distil["n"] == 3
    assert distil["holds"] and "+0.005" in distil["detail"]
    capped = triage_rows({**curves, (1, "b2", "distil"): [0.1, 0.90, 0.95]})  # distil 0.05 above the base
    assert not triage_claims(capped, 0.01, 0.05, "a", "net")[2]["holds"]
    assert not triage_claims(table, 0.01, 0.03, "a", "net")[0]["holds"]  # a range of 0.04 is above 0.03


def test_triage_claims_join_the_claims_table_and_say_what_is_missing():
    from fragility.scoring.claims import triage_claims

    scores = pd.DataFrame(
        scores_rows("a", {(0, 4): {"conv1": ("fragile", "fragile"), "fc": ("fragile", "fragile")}}, {(0, 4): 0.0})
    )
    sweep, retrain = pd.DataFrame(sweep_rows("a", {(0, 4): 0.5})), pd.DataFrame(retrain_rows("a", {(0, 4): (0.0, 0.0)}))
    table = triage_rows({(0, "b1", "local"): [0.1, 0.5], (0, "b2", "local"): [0.1, 0.6]})
    claims = claims_table(scores, sweep, retrain, ROLES, CHANCE, 0.02, table, {"tolerance": 0.01, "block_range": 0.05})
    triage = claims[claims["claim"].str.startswith("triage_")].set_index("claim")
    assert list(triage.index) == ["triage_block_independent", "triage_finetune_recovers", "triage_distillation_faster_capped"]
    assert triage.loc["triage_block_independent", "value"] == pytest.approx(0.1)
    assert "global scheme was not run" in triage.loc["triage_finetune_recovers", "detail"]
    assert "needs the global and distil" in triage.loc["triage_distillation_faster_capped", "detail"]
    assert not claims_table(scores, sweep, retrain, ROLES, CHANCE, 0.02)["claim"].str.startswith("triage_").any()
    assert triage_claims(table, 0.01, 0.05, "a", "net")[0]["value"] == pytest.approx(0.1)


def semirobust_rows(accuracies, robust=0.5, normal=0.2):
    """accuracies: (seed, split) -> (semirobust acc_adv, [fine-tuned acc_adv per epoch])."""
    rows = []
    for (seed, k), (semirobust, tuned) in accuracies.items():
        run = {"dataset": "a", "model": "net", "seed": seed, "epoch": 4, "split_k": k}
        rows += [
            {**run, "network": "normal", "finetune_epoch": 0, "acc_adv": normal},
            {**run, "network": "robust", "finetune_epoch": 0, "acc_adv": robust},
            {**run, "network": "semirobust", "finetune_epoch": 0, "acc_adv": semirobust},
        ]
        rows += [{**run, "network": "finetuned", "finetune_epoch": e, "acc_adv": acc} for e, acc in enumerate(tuned, 1)]
    return pd.DataFrame(rows)


def test_semirobust_claims_by_hand():
    from fragility.scoring.claims import semirobust_claims

    table = semirobust_rows(
        {
            (0, 4): (0.30, [0.40, 0.46]),  # reaches 0.5 − 0.05 at epoch 2
            (0, 12): (0.25, [0.30]),  # never
            (1, 4): (0.35, [0.47]),  # at 1
            (1, 12): (0.20, [0.44, 0.45]),  # at 2
        }
    )
    # CKA per (seed, split, network): positions 0, 1, 2; τ = 1 (rising), −1/3 (one swap), 1
    dependency = pd.DataFrame(
        [
            {"dataset": "a", "model": "net", "seed": 0, "epoch": 4, "split_k": 4, "network": net, "position": p, "cka": c}
            for net, ckas in (("robust", [0.1, 0.2, 0.3]), ("semirobust", [0.3, 0.1, 0.2]), ("finetuned", [0.5, 0.6, 0.9]))
            for p, c in enumerate(ckas)
        ]
    )
    no_scores = pd.DataFrame(columns=SPLIT_SCORES_COLUMNS)
    promotes, recovers, rises, follows = semirobust_claims(table, dependency, 0.05, "a", "net", no_scores)
    # semirobust − normal: 0.10, 0.05, 0.15, 0.00 → mean 0.075; Wilcoxon on 3 non-zero pairs cannot reach p < 0.05
    assert promotes["claim"] == "semirobust_promotes_robustness" and promotes["value"] == pytest.approx(0.075)
    assert promotes["n"] == 4 and not promotes["holds"]
    assert recovers["value"] == pytest.approx(0.75) and recovers["n"] == 4 and recovers["holds"]
    assert rises["value"] == pytest.approx((1 - 1 / 3 + 1) / 3) and rises["n"] == 3 and rises["holds"]
    assert follows["claim"] == "semirobust_follows_scores" and follows["n"] == 0 and not follows["holds"]
