"""The claims: every registered claim can hold and fail (tests/claim_cases.py), the machinery
that turns findings into the claims table (METHOD §15), and each claim on hand-made tables
whose answers are known."""

import math

import numpy as np
import pandas as pd
import pytest
from claim_cases import (
    CASES,
    OPTIONS,
    ROLES,
    both_readings,
    dependency,
    frame,
    layer_labels,
    retrain,
    semirobust,
    split_scores,
    triage,
)
from scipy.stats import wilcoxon

from fragility import GLOBAL_LAYER
from fragility.scoring.claims import (
    CLAIMS,
    CLAIMS_COLUMNS,
    binomial_interval,
    claims_html,
    claims_markdown,
    claims_table,
    verdict,
    wilcoxon_min_n,
)
from fragility.scoring.stats import summarise_differences
from fragility.stress import semirobust as semirobust_claims
from fragility.stress import synaptic
from fragility.stress import triage as triage_claims


def first_finding(name: str, tables: dict[str, pd.DataFrame], options: dict):
    """The claim's own finding (the first, before any variant) on ``tables``."""
    spec = CLAIMS[name]
    run = {"across_datasets": {"model": "m"}, "across_models": {"dataset": "d"}}.get(spec.scope, {"dataset": "d", "model": "m"})
    found = spec.compute(tables, {**options, **run})
    return found[0] if isinstance(found, list) else found


def holds(name: str, finding) -> str:
    return verdict(CLAIMS[name], finding)[0]


# ------------------------------------------------------------ every claim can hold and fail (METHOD §15)


def test_every_registered_claim_has_a_case():
    assert set(CASES) == set(CLAIMS)


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_the_claim_can_hold_and_can_fail(name):
    spec, case = CLAIMS[name], CASES[name]
    for tables, expected in ((case.holds, "yes"), (case.fails, "no")):
        finding = first_finding(name, tables, case.options)
        assert finding.n >= spec.min_n
        assert verdict(spec, finding)[0] == expected, finding.detail
        # the same verdict through the claims table, which says what n counts
        row = claims_table(tables, case.options, {name: spec}).set_index("claim").loc[name]
        assert row["holds"] == expected and row["min_n"] == spec.min_n and row["n"] == finding.n
        assert row["detail"].endswith(f"; n counts {spec.counts}")


# ------------------------------------------------------------ the machinery


def test_the_claims_table_has_its_columns_and_each_claims_min_n():
    tables = {
        "scores": pd.concat([layer_labels("conv1"), CASES["global_scores_converge"].holds["scores"]]),
        **CASES["batchnorm_rescue"].holds,
        **CASES["selective_beats_regular_adv"].holds,
        **CASES["triage_distillation_faster_capped"].holds,
        **CASES["semirobust_finetune_recovers"].holds,
        **CASES["dependency_falls_toward_output"].holds,
        **CASES["semirobust_follows_scores"].holds,
    }
    table = claims_table(tables, OPTIONS)
    assert list(table.columns) == CLAIMS_COLUMNS
    assert {name for name, spec in CLAIMS.items() if spec.scope == "model"} <= set(table["claim"])
    for row in table.itertuples():
        assert row.min_n == CLAIMS[row.claim].min_n
        assert row.holds in ("yes", "no", "undetermined")


def test_a_claim_below_its_min_n_is_undetermined_and_says_why():
    table = claims_table({"retrain": retrain([0.0, 0.0], [0.01, 0.02])}, OPTIONS).set_index("claim")
    adv = table.loc["selective_beats_regular_adv"]
    assert adv["n"] == 2 and adv["min_n"] == 6 and adv["value"] == pytest.approx(0.015)
    assert adv["holds"] == "undetermined" and "needs n ≥ 6 (has 2)" in adv["detail"]
    assert adv["detail"].endswith("; n counts seeds (each the mean over its checkpoints)")


def test_unusable_rows_are_left_out_and_said_so():
    """Seed 1 did not learn at epoch 4: its robust first conv is not counted, n stays the seeds."""
    scores = layer_labels("conv1", robust_at={(1, 4)})
    scores["usable"] = ~((scores["seed"] == 1) & (scores["epoch"] == 4))
    first = claims_table({"scores": scores}, OPTIONS).set_index("claim").loc["first_conv_fragile"]
    assert first["value"] == 1.0 and first["n"] == 2 and first["holds"] == "yes"
    assert first["detail"].endswith("; 1 unusable (seed, checkpoint) left out (trust.parquet)")
    assert "fragile (r_x and r_xε) at 3 of 3 (seed, checkpoint)" in first["detail"]


def test_a_pair_runs_only_the_claims_of_the_tables_it_has():
    tables = {"scores": layer_labels("conv1"), "sweep": CASES["batchnorm_rescue"].holds["sweep"].assign(dataset="e")}
    table = claims_table(tables, {**OPTIONS, "chance": {"d": 0.1, "e": 0.1}})
    by_pair = table.groupby("dataset")["claim"].apply(set)
    assert by_pair["d"] == {name for name, spec in CLAIMS.items() if spec.tables == ("scores",) and spec.scope == "model"}
    assert by_pair["e"] == {"batchnorm_rescue"}  # e has no scores: no claim on them, nor across datasets
    assert set(claims_table({}, OPTIONS)["claim"]) == set()


def test_no_usable_checkpoint_is_undetermined():
    table = claims_table({"scores": layer_labels("conv1").assign(usable=False)}, OPTIONS)
    assert len(table) == 4 and table["value"].isna().all() and (table["holds"] == "undetermined").all()
    assert table["detail"].str.startswith("no usable checkpoint; n counts").all()
    assert table["detail"].str.endswith("; 4 unusable (seed, checkpoint) left out (trust.parquet)").all()


def mixed_claims() -> pd.DataFrame:
    """A claims table with a yes, a no and an undetermined row."""
    return pd.concat(
        [
            claims_table(CASES["first_conv_fragile"].holds, OPTIONS),
            claims_table(CASES["batchnorm_rescue"].fails, OPTIONS),
            claims_table({"retrain": retrain([0.0, 0.0], [0.01, 0.02])}, OPTIONS),
        ],
        ignore_index=True,
    )


def test_markdown_shows_the_verdicts_and_min_n():
    claims = mixed_claims()
    text = claims_markdown(claims)
    assert text.startswith("| claim | dataset | model | value | spread | n | min n | holds | detail |")
    assert text.count("\n") == 2 + len(claims)
    assert "| first_conv_fragile | d | m | 1.000 | 0.000 | 2 | 1 | **yes** |" in text
    assert "| batchnorm_rescue | d | m | 0.000 | 0.000 | 2 | 1 | no |" in text
    assert "| selective_beats_regular_adv | d | m | 0.015 | 0.007 | 2 | 6 | *undetermined* |" in text
    assert "| n/a |" in claims_markdown(claims_table({"scores": layer_labels("conv1")}, OPTIONS))


def test_markdown_and_html_open_with_the_unusable_checkpoints():
    trust = pd.DataFrame(
        [
            {"dataset": "d", "model": "m", "seed": 0, "epoch": 2, "usable": True, "why": ""},
            {
                "dataset": "d",
                "model": "m",
                "seed": 1,
                "epoch": 2,
                "usable": False,
                "why": "clean accuracy 0.100 is not above chance",
            },
        ]
    )
    claims = mixed_claims()
    markdown = claims_markdown(claims, trust)
    assert markdown.startswith("> **Warning: 1 of 2 checkpoints are not usable")
    assert "d/m seed 1 epoch 2: clean accuracy" in markdown
    page = claims_html(claims, trust)
    assert page.startswith('<div style="border:2px solid #b00') and "<table" in page
    plain = claims_html(claims)
    assert plain.startswith("<table") and "<th>min_n</th>" in plain and "<td>undetermined</td>" in plain


def test_the_wilcoxon_test_needs_six_seeds():
    assert wilcoxon_min_n() == 6
    six, five = wilcoxon(np.arange(1.0, 7.0), method="exact").pvalue, wilcoxon(np.arange(1.0, 6.0), method="exact").pvalue
    assert six == pytest.approx(2 / 64) and six < 0.05
    assert five == pytest.approx(2 / 32) and five > 0.05
    # the claims' own test (the default method) is the exact one at these n
    assert summarise_differences(np.arange(1.0, 7.0))["wilcoxon_p"] == pytest.approx(2 / 64)
    assert summarise_differences(np.arange(1.0, 6.0))["wilcoxon_p"] == pytest.approx(2 / 32)


def test_binomial_interval():
    assert binomial_interval(0, 10)[0] == 0.0 and binomial_interval(10, 10)[1] == 1.0
    assert binomial_interval(0, 10)[1] == pytest.approx(1 - 0.025 ** (1 / 10))  # Clopper–Pearson at 0
    low, high = binomial_interval(5, 10)
    assert low == pytest.approx(0.1871, abs=1e-4) and high == pytest.approx(0.8129, abs=1e-4)


# ------------------------------------------------------------ the synaptic claims by hand

CHANCE = {"a": 0.1, "b": 0.1}


def scores_rows(dataset, labels, global_scores):
    """labels: (seed, epoch) -> {layer: (clean label, adv label)}; global_scores: (seed, epoch) -> r."""
    rows = []
    for (seed, epoch), by_layer in labels.items():
        run = {"seed": seed, "epoch": epoch, "filter": "combined"}
        for layer, (clean, adv) in by_layer.items():
            rows.append(
                {
                    **run,
                    "layer": layer,
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
                **run,
                "layer": GLOBAL_LAYER,
                "label_clean": "fragile",
                "label_adv": "fragile",
                "label_clean_conf": 1.0,
                "label_adv_conf": 1.0,
                "score_clean": r,
                "score_adv": r,
                "score_diff": r,
            }
        )
    return frame(rows, dataset)


def sweep_rows(dataset, full_removal):
    """full_removal: (seed, epoch) -> clean accuracy of block.conv with every weight removed (h1, step A = 2)."""
    rows = [
        {"seed": seed, "epoch": epoch, "layer": "block.conv", "filter": "h1", "step": step, "acc_clean": acc}
        for (seed, epoch), accuracy in full_removal.items()
        for step, acc in ((0, 0.9), (1, 0.8), (2, accuracy))
    ]
    return frame(rows, dataset)


def retrain_rows(dataset, differences):
    """differences: (seed, epoch) -> (selective − regular clean, selective − regular adversarial)."""
    rows = []
    for (seed, epoch), (clean, adv) in differences.items():
        rows.append({"seed": seed, "epoch": epoch, "branch": "regular", "acc_clean": 0.5, "acc_adv": 0.3})
        rows.append({"seed": seed, "epoch": epoch, "branch": "selective", "acc_clean": 0.5 + clean, "acc_adv": 0.3 + adv})
    return frame(rows, dataset)


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
    scores = pd.concat([scores_rows("a", labels_a, global_a), scores_rows("b", labels_b, global_b)])
    # BatchNorm rescue: a keeps 0.5 > 2 x chance at 6 of 9 runs (2 of 3 per seed); b never
    sweep = pd.concat(
        [sweep_rows("a", {run: 0.5 if run[1] != 6 else 0.1 for run in runs}), sweep_rows("b", {run: 0.15 for run in runs})]
    )
    # a: selective beats regular adversarially at all 9 pairs; clean: mean 0; b: mixed
    retrain_table = pd.concat(
        [
            retrain_rows("a", {run: (0.0, 0.01 * (i + 1)) for i, run in enumerate(runs)}),
            retrain_rows("b", {run: (0.02 if i % 2 else -0.02, -0.01 if i % 2 else 0.01) for i, run in enumerate(runs)}),
        ]
    )
    options = {**OPTIONS, "roles": {"m": ROLES}, "chance": CHANCE}
    table = claims_table({"scores": scores, "sweep": sweep, "retrain": retrain_table}, options)
    return table.set_index(["claim", "dataset"])


def test_every_claim_row(claims):
    assert list(claims.reset_index().columns) == CLAIMS_COLUMNS
    assert len(claims) == 2 * 7 + 1
    transfer = claims.loc[("transfer_inflates_adversarial_score", "a")]  # no white-box reading
    assert np.isnan(transfer["value"]) and transfer["holds"] == "undetermined"
    assert transfer["detail"].startswith("no unit has the white-box reading")


def test_layer_claims(claims):
    first = claims.loc[("first_conv_fragile", "a")]
    assert first["value"] == 1.0 and first["holds"] == "yes" and first["n"] == 3 and first["spread"] == 0.0
    assert "mean label confidence clean 0.90, adv 0.80" in first["detail"]
    assert "at 9 of 9 (seed, checkpoint)" in first["detail"] and "(95 % 0.66–1.00)" in first["detail"]
    first_b = claims.loc[("first_conv_fragile", "b")]
    assert first_b["value"] == pytest.approx(8 / 9) and first_b["holds"] == "no" and first_b["n"] == 3
    assert first_b["spread"] == pytest.approx(np.std([2 / 3, 1, 1], ddof=1))  # per seed: 2/3, 1, 1
    last = claims.loc[("last_linear_fragile", "a")]
    assert last["value"] == pytest.approx(8 / 9) and last["holds"] == "no" and "layer fc" in last["detail"]
    assert claims.loc[("last_linear_fragile", "b")]["value"] == 0.0


def test_layer_fragile_counts_seeds_not_checkpoints():
    """Seed 0 fragile at 1 of 2 checkpoints, seed 1 at 2 of 2: the mean of 1/2 and 1, n = 2."""
    finding = first_finding("first_conv_fragile", {"scores": layer_labels("conv1", robust_at={(0, 2)})}, OPTIONS)
    assert finding.value == pytest.approx(0.75) and finding.n == 2 and not finding.holds
    assert finding.spread == pytest.approx(np.std([0.5, 1.0], ddof=1))
    missing = first_finding("first_conv_fragile", {"scores": layer_labels("fc")}, OPTIONS)
    assert missing.holds is None and missing.detail == "layer conv1 was not swept"


def test_batchnorm_rescue(claims):
    rescue = claims.loc[("batchnorm_rescue", "a")]
    assert rescue["value"] == pytest.approx(6 / 9) and rescue["holds"] == "yes" and rescue["n"] == 3
    assert rescue["spread"] == 0.0  # 2 of 3 at every seed
    assert claims.loc[("batchnorm_rescue", "b")]["value"] == 0.0 and claims.loc[("batchnorm_rescue", "b")]["holds"] == "no"
    options = {**OPTIONS, "roles": {"m": {**ROLES, "bn_convs": []}}, "dataset": "d", "model": "m"}
    assert synaptic.batchnorm_rescue(CASES["batchnorm_rescue"].holds, options).holds is None


def test_selective_beats_regular_needs_six_seeds(claims):
    # a: per seed the mean over epochs 2, 4, 6: 0.02, 0.05, 0.08; three positive seeds: p = 2 / 2^3
    adv = claims.loc[("selective_beats_regular_adv", "a")]
    assert adv["value"] == pytest.approx(0.05) and adv["n"] == 3 and adv["spread"] == pytest.approx(0.03)
    assert "Wilcoxon p = 0.25" in adv["detail"] and adv["holds"] == "undetermined" and "needs n ≥ 6 (has 3)" in adv["detail"]
    assert claims.loc[("selective_beats_regular_clean", "a")]["value"] == 0.0


def test_selective_beats_regular_by_hand():
    # six seeds of three checkpoints each; per seed the mean difference is 0.01 · (seed + 1)
    table = pd.concat(
        [
            retrain_rows("d", {(seed, epoch): (0.0, 0.01 * (seed + 1) + shift) for seed in range(6)})
            for epoch, shift in ((2, -0.01), (4, 0.0), (6, 0.01))
        ]
    )
    adv = synaptic.selective_beats_regular(table, "adv")
    assert adv.value == pytest.approx(0.035) and adv.n == 6 and adv.holds and adv.claim is None
    assert adv.spread == pytest.approx(np.std(np.arange(1, 7) * 0.01, ddof=1))
    assert "Wilcoxon p = 0.0312" in adv.detail  # six positive seeds: exact two-sided p = 2 / 2^6
    assert holds("selective_beats_regular_adv", adv) == "yes"
    clean = synaptic.selective_beats_regular(table, "clean")
    assert clean.value == 0.0 and not clean.holds and "Wilcoxon p = 1" in clean.detail
    assert holds("selective_beats_regular_clean", clean) == "no"


def test_a_model_never_retrained_has_no_retraining_claim():
    empty = pd.DataFrame(columns=["dataset", "model", "seed", "epoch", "branch", "acc_clean", "acc_adv"])
    found = synaptic.selective_beats_regular(empty, "adv", "held_out")
    assert math.isnan(found.value) and found.n == 0 and found.holds is None
    assert found.detail == "no held_out branch was retrained"


def _retrain_pairs(selective_frozen, n_layers=4, gain=0.01):
    rows = []
    for i, frozen in enumerate(selective_frozen):
        base = {"seed": i, "epoch": 2, "n_layers": n_layers}
        rows.append({**base, "branch": "regular", "acc_clean": 0.5, "acc_adv": 0.3, "n_frozen": 0, "label_attack": None})
        adv = 0.3 if frozen == 0 else 0.3 + gain * (i + 1)
        rows.append(
            {**base, "branch": "selective", "acc_clean": 0.5, "acc_adv": adv, "n_frozen": frozen, "label_attack": "whitebox"}
        )
    return frame(rows)


def test_a_branch_that_froze_nothing_or_all_but_one_is_counted_out_not_compared():
    nothing = synaptic.selective_beats_regular(_retrain_pairs([0, 0, 0]), "adv")
    assert np.isnan(nothing.value) and nothing.n == 0 and nothing.holds is None
    assert "no (seed, checkpoint) compares" in nothing.detail
    assert "3 (seed, checkpoint) froze no layer (identical to regular by construction)" in nothing.detail
    assert "labels of the whitebox reading" in nothing.detail
    mixed = synaptic.selective_beats_regular(_retrain_pairs([0, 2, 3, 2, 4]), "adv")
    assert mixed.n == 2 and mixed.value == pytest.approx(np.mean([0.02, 0.04]))  # seeds 1 and 3 compare
    assert "1 (seed, checkpoint) froze no layer" in mixed.detail
    assert "2 froze every labelled layer but at most one" in mixed.detail
    assert "froze 2.2 layers on average" in mixed.detail


def test_selective_rows_for_each_reading():
    table = _retrain_pairs([1, 2, 1])
    other = table[table["branch"] == "selective"].assign(branch="selective_transfer", label_attack="transfer", acc_adv=0.2)
    retrain_table = pd.concat([table, other])
    found = CLAIMS["selective_beats_regular_adv"].compute({"retrain": retrain_table}, {**OPTIONS, "dataset": "d", "model": "m"})
    assert [f.claim for f in found] == [None, "selective_beats_regular_adv_whitebox", "selective_beats_regular_adv_transfer"]
    assert found[0].value == pytest.approx(0.02) and found[1].value == pytest.approx(0.02)
    assert found[2].value == pytest.approx(-0.1)
    clean = CLAIMS["selective_beats_regular_clean"].compute({"retrain": retrain_table}, {**OPTIONS, "dataset": "d", "model": "m"})
    assert [f.claim for f in clean] == [None]
    rows = claims_table({"retrain": retrain_table}, OPTIONS).set_index("claim")
    variants = rows.loc[["selective_beats_regular_adv_whitebox", "selective_beats_regular_adv_transfer"]]
    assert (variants["min_n"] == 6).all() and (variants["holds"] == "undetermined").all()  # 3 seeds


def test_global_scores_converge_and_similarity(claims):
    converge = claims.loc[("global_scores_converge", "a")]
    assert converge["value"] == pytest.approx(np.std([-0.29, -0.3, -0.31], ddof=1) / np.std([-0.1, -0.3, -0.5], ddof=1))
    assert converge["holds"] == "yes" and converge["n"] == 3
    assert claims.loc[("global_scores_converge", "b")]["holds"] == "no"
    similar = claims.loc[("global_scores_similar_across_datasets", "a,b")]
    mean_a = np.mean([-0.1, -0.3, -0.5, -0.2, -0.3, -0.4, -0.29, -0.3, -0.31])
    mean_b = np.mean([-0.3, -0.3, -0.31, -0.2, -0.3, -0.4, -0.1, -0.3, -0.5])
    assert similar["value"] == pytest.approx(abs(mean_a - mean_b)) and similar["holds"] == "yes" and similar["n"] == 2
    assert similar["min_n"] == 2 and similar["detail"].endswith("; n counts datasets")


def test_global_scores_converge_needs_two_seeds_and_two_checkpoints():
    from claim_cases import global_scores

    one_seed = first_finding("global_scores_converge", {"scores": global_scores({2: [-0.1], 4: [-0.2]})}, OPTIONS)
    assert one_seed.holds is None and one_seed.detail == "needs 2 seeds and 2 checkpoints (has 1 and 2)"


def test_transfer_inflates_adversarial_score_by_hand():
    scores = frame(
        [
            {
                "seed": seed,
                "epoch": 2,
                "layer": layer,
                "filter": filter_,
                "score_adv": adv,
                "score_adv_whitebox": whitebox,
                "label_diff": label,
                "label_diff_whitebox": label_whitebox,
            }
            for seed, layer, filter_, adv, whitebox, label, label_whitebox in (
                (0, "conv1", "combined", 0.05, -0.24, "antifragile", "fragile"),
                (0, "fc", "combined", 0.10, -0.10, "antifragile", "fragile"),
                (1, "conv1", "combined", 0.02, -0.03, "robust", "robust"),
                (1, "fc", "combined", -0.01, 0.01, "robust", "robust"),
                (1, "layer1.0.conv1", "h1", 0.5, np.nan, "robust", None),  # not a combined response
            )
        ]
    )
    options = {**OPTIONS, "dataset": "d", "model": "m"}
    found = synaptic.transfer_inflates_adversarial_score({"scores": scores}, options)
    # differences .29, .20, .05, −.02: mean 0.13; per seed 0.245 and 0.015
    assert found.value == pytest.approx(0.13) and found.n == 4
    assert found.spread == pytest.approx(np.std([0.245, 0.015], ddof=1))
    assert "mean +0.130" in found.detail and "r_ε labels differ at 2 of 4" in found.detail
    assert "over 4 (seed, unit) of 2 units" in found.detail and found.holds  # the interval lies above 0
    balanced = synaptic.transfer_inflates_adversarial_score(
        {"scores": scores.assign(score_adv=[0.1, -0.1, 0.1, -0.1, 0.0])}, options
    )
    assert not balanced.holds  # differences +.34, 0, +.13, −.11: the interval reaches below 0
    # two checkpoints of one (seed, unit) are averaged first: still one unit
    twice = pd.concat([both_readings({(0, "conv1"): 0.1}), both_readings({(0, "conv1"): 0.3}).assign(epoch=4)])
    once = synaptic.transfer_inflates_adversarial_score({"scores": twice}, options)
    assert once.n == 1 and once.value == pytest.approx(0.2)
    assert holds("transfer_inflates_adversarial_score", once) == "undetermined"


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
    row = synaptic.removable(sweep, max_loss=0.01).iloc[0]
    assert row["removable_clean"] == 0.4 and row["removable_adv"] == 0.7 and row["removable"] == 0.1
    assert math.isclose(synaptic.removable(sweep, max_loss=0.06).iloc[0]["removable"], 0.7)
    assert list(synaptic.removable(sweep).columns) == ["layer", "filter", "removable_clean", "removable_adv", "removable"]


# ------------------------------------------------------------ the triage claims by hand

TRIAGE_OPTIONS = {**OPTIONS, "dataset": "d", "model": "m"}
CURVES = {
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


def test_recovery_epochs():
    found = triage_claims.recovery_epochs(triage(CURVES), 0.01).set_index(["seed", "block", "scheme"])
    assert found.loc[(0, "b1", "global"), "epochs_to_recover"] == 2
    assert found.loc[(0, "b2", "global"), "epochs_to_recover"] == 1
    assert np.isnan(found.loc[(1, "b1", "global"), "epochs_to_recover"]) and found.loc[(1, "b1", "global"), "last_epoch"] == 2
    # exceeded: best clean accuracy after training above base + 0.01 = 0.91
    assert found["exceeded"].dtype == bool and found.index[found["exceeded"]].tolist() == [(1, "b2", "global")]
    assert (found["init"] == "fit").all()
    # epoch 0 (the compressed network before any training) never counts, not for recovery nor for exceeding
    start = triage({(0, "b1", "global"): [0.95, 0.5, 0.6]})
    found = triage_claims.recovery_epochs(start, 0.01).iloc[0]
    assert np.isnan(found["epochs_to_recover"]) and not found["exceeded"]
    # per initialisation
    both = pd.concat([triage(CURVES), triage({(0, "b1", "global"): [0.1, 0.95]}, init="random")])
    found = triage_claims.recovery_epochs(both, 0.01).set_index(["seed", "block", "init", "scheme"]).loc[(0, "b1")]
    assert found.loc[("random", "global"), "epochs_to_recover"] == 1 and found.loc[("random", "global"), "exceeded"]
    assert found.loc[("fit", "global"), "epochs_to_recover"] == 2 and not found.loc[("fit", "global"), "exceeded"]


def test_triage_block_independent():
    # final local means: b1 (0.86 + 0.88)/2 = 0.87, b2 (0.84 + 0.82)/2 = 0.83; range 0.04; per seed 0.02 and 0.06
    found = triage_claims.block_independent({"triage": triage(CURVES)}, TRIAGE_OPTIONS)
    assert found.value == pytest.approx(0.04) and found.n == 2 and found.holds
    assert found.spread == pytest.approx(np.std([0.02, 0.06], ddof=1))
    assert "from 0.830 (b2) to 0.870 (b1) over 2 blocks" in found.detail
    narrow = {**TRIAGE_OPTIONS, "triage": {**OPTIONS["triage"], "block_range": 0.03}}
    assert not triage_claims.block_independent({"triage": triage(CURVES)}, narrow).holds  # 0.04 is above 0.03
    # on the fit initialisation only: a random draw that leaves b2 far behind changes nothing
    drawn = triage({(s, b, "local"): [0.1, 0.1 if b == "b2" else 0.8] for s in (0, 1) for b in ("b1", "b2")}, init="random")
    found = triage_claims.block_independent({"triage": pd.concat([triage(CURVES), drawn])}, TRIAGE_OPTIONS)
    assert found.value == pytest.approx(0.04) and found.holds
    found = triage_claims.block_independent({"triage": drawn}, TRIAGE_OPTIONS)
    assert found.holds is None and "fit initialisation was not run" in found.detail


def test_triage_finetune_recovers():
    # global recovers at both blocks of seed 0 and one of seed 1: per seed 1 and 1/2; exceeded at (1, b2) only
    found = triage_claims.finetune_recovers({"triage": triage(CURVES)}, TRIAGE_OPTIONS)
    assert found.value == pytest.approx(0.75) and found.n == 2 and found.holds
    assert found.spread == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert "for 3 of 4 (seed, checkpoint, block, init) within 2 triage epochs" in found.detail
    assert "exceeded base + 0.01 for 1 of 4 (fraction 0.250, mean over seeds)" in found.detail
    half = {key: curve for key, curve in CURVES.items() if key[0] == 1}
    assert triage_claims.finetune_recovers({"triage": triage(half)}, TRIAGE_OPTIONS).holds is False  # 1/2 is not above 1/2


def test_triage_distillation_faster_capped():
    # global − distil where both recovered: seed 0: 2 − 1, 1 − 1; seed 1: (b1 neither) 2 − 1; per seed 1/2 and 1;
    # global exceeds the base at (1, b2) (0.95 > 0.91), distil at most 0.005 above it
    found = triage_claims.distillation_faster_capped({"triage": triage(CURVES)}, TRIAGE_OPTIONS)
    assert found.value == pytest.approx(0.75) and found.n == 2 and found.holds
    assert found.spread == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert "over 3 (seed, checkpoint, block, init) where both recovered" in found.detail and "+0.005" in found.detail
    capped = triage({**CURVES, (1, "b2", "distil"): [0.1, 0.90, 0.95]})  # distil 0.05 above the base
    assert triage_claims.distillation_faster_capped({"triage": capped}, TRIAGE_OPTIONS).holds is False
    # only where both recover: distil recovering where global never does says nothing about speed
    one_sided = triage({**CURVES, (1, "b1", "distil"): [0.1, 0.9, 0.9]})
    assert triage_claims.distillation_faster_capped({"triage": one_sided}, TRIAGE_OPTIONS).value == pytest.approx(0.75)
    never = triage({key: [0.1, 0.5] for key in CURVES})
    found = triage_claims.distillation_faster_capped({"triage": never}, TRIAGE_OPTIONS)
    assert found.holds is None and found.detail.startswith("no (seed, checkpoint, block, init) where both global and distil")
    # global never above base + 0.01: nothing to cap, so faster alone cannot make it hold ...
    below = triage({**CURVES, (1, "b2", "global"): [0.1, 0.88, 0.90]})
    found = triage_claims.distillation_faster_capped({"triage": below}, TRIAGE_OPTIONS)
    assert found.value > 0 and found.holds is None and "global never exceeded base + 0.01: nothing to cap" in found.detail
    # ... but slower distillation fails it all the same
    slower = triage({key: ([0.1, 0.5, 0.9] if key[2] == "distil" else [0.1, 0.9, 0.9]) for key in CURVES})
    assert triage_claims.distillation_faster_capped({"triage": slower}, TRIAGE_OPTIONS).holds is False


def test_triage_claims_say_what_is_missing():
    local = triage({(0, "b1", "local"): [0.1, 0.5], (0, "b2", "local"): [0.1, 0.6]})
    table = claims_table({"triage": local}, OPTIONS).set_index("claim")
    assert list(table.index) == ["triage_block_independent", "triage_finetune_recovers", "triage_distillation_faster_capped"]
    assert table.loc["triage_block_independent", "value"] == pytest.approx(0.1)
    assert table.loc["triage_block_independent", "holds"] == "no"
    assert "global scheme was not run" in table.loc["triage_finetune_recovers", "detail"]
    assert "needs the global and distil" in table.loc["triage_distillation_faster_capped", "detail"]
    assert (table.loc[["triage_finetune_recovers", "triage_distillation_faster_capped"], "holds"] == "undetermined").all()
    one_block = triage({(0, "b1", "local"): [0.1, 0.5]})
    row = claims_table({"triage": one_block}, OPTIONS).set_index("claim").loc["triage_block_independent"]
    assert row["holds"] == "undetermined" and "needs n ≥ 2 (has 1)" in row["detail"]


# ------------------------------------------------------------ the semirobust claims by hand

SPLITS = {
    (0, 4): (0.30, [0.40, 0.46]),  # reaches 0.5 − 0.05 at epoch 2
    (0, 12): (0.25, [0.30]),  # never
    (1, 4): (0.35, [0.47]),  # at 1
    (1, 12): (0.20, [0.44, 0.45]),  # at 2
}
SEMIROBUST_OPTIONS = {**OPTIONS, "dataset": "d", "model": "m"}


def test_semirobust_promotes_robustness_averages_the_splits_of_a_checkpoint():
    # semirobust − normal: seed 0: 0.10, 0.05; seed 1: 0.15, 0.00 → per checkpoint 0.075 and 0.075
    found = semirobust_claims.promotes_robustness({"semirobust": semirobust(SPLITS)}, SEMIROBUST_OPTIONS)
    assert found.value == pytest.approx(0.075) and found.n == 2 and not found.holds  # p = 2 / 2^2
    assert "mean over splits k = 4, 12" in found.detail
    assert holds("semirobust_promotes_robustness", found) == "undetermined"
    assert "needs n ≥ 6 (has 2)" in verdict(CLAIMS["semirobust_promotes_robustness"], found)[1]
    # six checkpoints (three seeds at two epochs), each gaining: n = 6 pairs, p = 2 / 2^6
    six = semirobust({(seed, k): (0.2 + 0.01 * (seed + 1) + 0.001 * k, []) for seed in range(3) for k in (4, 12)})
    six = pd.concat([six, six.assign(epoch=6, acc_adv=six["acc_adv"] + (six["network"] == "semirobust") * 0.05)])
    found = semirobust_claims.promotes_robustness({"semirobust": six}, SEMIROBUST_OPTIONS)
    assert found.n == 6 and found.holds and "Wilcoxon p = 0.0312" in found.detail
    assert found.value == pytest.approx(np.mean([0.01, 0.02, 0.03]) + 0.008 + 0.025)


def test_semirobust_finetune_recovers():
    found = semirobust_claims.finetune_recovers({"semirobust": semirobust(SPLITS)}, SEMIROBUST_OPTIONS)
    # per seed 1/2 (k = 12 never reaches 0.45) and 1
    assert found.value == pytest.approx(0.75) and found.n == 2 and found.holds
    assert found.spread == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert "in 3 of 4 trials over 4 (seed, checkpoint, split) within 2 epochs" in found.detail
    assert "mean epochs to converge 1.67 over the 3 that did" in found.detail  # epochs 2, 1, 2


def test_semirobust_finetune_recovers_averages_the_trials_of_a_split_first():
    # seed 0: its split recovers in 1 of 3 trials; seed 1: in 2 of 2 → per seed 1/3 and 1
    trials = {(0, 4): (0.3, [[0.4], [0.46], [0.44]]), (1, 4): (0.3, [[0.45], [0.3, 0.5]])}
    found = semirobust_claims.finetune_recovers({"semirobust": semirobust(trials)}, SEMIROBUST_OPTIONS)
    assert found.value == pytest.approx((1 / 3 + 1) / 2) and found.n == 2 and found.holds
    assert "in 3 of 5 trials over 2 (seed, checkpoint, split)" in found.detail
    # the best epoch counts, not the last: 0.46 then 0.40 reached Acc* − δ
    best = semirobust({(0, 4): (0.3, [0.46, 0.40])})
    assert semirobust_claims.finetune_recovers({"semirobust": best}, SEMIROBUST_OPTIONS).value == 1.0


def test_semirobust_finetune_recovers_counts_out_splits_already_there():
    # seed 2's split starts at 0.46 ≥ Acc* − δ = 0.45: it shows nothing about fine-tuning
    already = {**SPLITS, (2, 4): (0.46, [0.47])}
    found = semirobust_claims.finetune_recovers({"semirobust": semirobust(already)}, SEMIROBUST_OPTIONS)
    assert found.value == pytest.approx(0.75) and found.n == 2
    assert "counted out: 1 (seed, checkpoint, split) already at Acc* − 0.05 before fine-tuning" in found.detail
    # where every split starts there, nothing is left to judge
    everywhere = semirobust({(seed, 4): (0.46, [0.46]) for seed in range(2)})
    none = semirobust_claims.finetune_recovers({"semirobust": everywhere}, SEMIROBUST_OPTIONS)
    assert none.holds is None and none.detail.startswith("no split started below Acc* − 0.05; counted out: 2")
    assert (
        semirobust_claims.finetune_recovers({"semirobust": semirobust({(0, 4): (0.3, [])})}, SEMIROBUST_OPTIONS).detail
        == "no fine-tuning was run"
    )


def test_dependency_falls_toward_output_averages_per_seed():
    # seed 0: τ = −1 (falling), 1/3 (one swap), −1 → −5/9; seed 1: τ = 1
    mis = {(0, "robust"): [3.0, 2.0, 1.0], (0, "semirobust"): [1.0, 3.0, 2.0], (0, "finetuned"): [5.0, 4.0, 1.0]}
    found = semirobust_claims.dependency_falls_toward_output({"dependency": dependency(mis)}, SEMIROBUST_OPTIONS)
    assert found.value == pytest.approx(-(1 - 1 / 3 + 1) / 3) and found.n == 1 and found.holds
    mis[(1, "robust")] = [1.0, 2.0, 3.0]
    found = semirobust_claims.dependency_falls_toward_output({"dependency": dependency(mis)}, SEMIROBUST_OPTIONS)
    assert found.value == pytest.approx((-5 / 9 + 1) / 2) and found.n == 2 and not found.holds  # pooled: −5/12 < 0
    assert found.spread == pytest.approx(np.std([-5 / 9, 1], ddof=1))
    assert "over 4 (seed, checkpoint, split, network)" in found.detail and "EDGE mutual information" in found.detail
    flat = semirobust_claims.dependency_falls_toward_output(
        {"dependency": dependency({(0, "robust"): [2.0, 2.0, 2.0]})}, SEMIROBUST_OPTIONS
    )
    assert flat.holds is None and flat.detail == "no split has two layer pairs with a mutual information"


def test_semirobust_claims_count_out_a_checkpoint_whose_f_star_is_not_robust():
    table = semirobust({(seed, 4): (0.2 + d, [0.46]) for seed, d in enumerate([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, -0.5])})
    table.loc[table["seed"] == 6, ["usable", "why"]] = (False, "F* not robust: McNemar p = 0.4 ≥ α = 0.01")
    row = claims_table({"semirobust": table}, OPTIONS).set_index("claim").loc["semirobust_promotes_robustness"]
    assert row["holds"] == "yes" and row["n"] == 6
    assert "1 unusable (seed, checkpoint) left out (F* not robust: McNemar p = 0.4 ≥ α = 0.01)" in row["detail"]


def test_semirobust_follows_scores():
    # one discordant pair of six: τ_b = (5 − 1) / 6
    found = semirobust_claims.follows_scores({"semirobust_scores": split_scores([0.1, 0.2, 0.3, 0.4], [0.1, 0.3, 0.2, 0.4])}, {})
    assert found.value == pytest.approx(2 / 3) and found.n == 4 and found.holds
    assert "r_xε of f_b 0.67" in found.detail and "over 4 (seed, checkpoint, split)" in found.detail
    # splits whose f_b has no scored layer are not counted
    table = split_scores([0.1, 0.2, 0.3, 0.4], [0.1, 0.3, np.nan, 0.4])
    assert semirobust_claims.follows_scores({"semirobust_scores": table}, {}).n == 3
    nothing = semirobust_claims.follows_scores({"semirobust_scores": split_scores([], [])}, {})
    assert nothing.n == 0 and np.isnan(nothing.value) and not nothing.holds
    assert holds("semirobust_follows_scores", nothing) == "undetermined"
