"""The real workflow: lint, planning, bad config, and one tiny end-to-end run."""

import os
import platform
import shutil
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from workflow_helpers import ROOT, TINY_SCORES, planned_jobs, scratch_workdir, snakemake

from fragility.artifacts import AdversarialSet, Checkpoint, TestSet
from fragility.figures import FIGURES as REGISTERED_FIGURES
from fragility.figures import figure_names
from fragility.io import parquet_intact
from fragility.retrain import RETRAIN_COLUMNS
from fragility.scoring.agreement import AGREEMENT_COLUMNS
from fragility.scoring.bootstrap import INTERVAL_COLUMNS
from fragility.scoring.claims import CLAIMS_COLUMNS
from fragility.scoring.propagation import SPLIT_SCORES_COLUMNS
from fragility.scoring.scores import SCORE_COLUMNS
from fragility.scoring.stats import SUMMARY_COLUMNS
from fragility.stress.kernels import KERNEL_COLUMNS, TARGETING_COLUMNS
from fragility.stress.reinit import CRITICALITY_COLUMNS
from fragility.stress.semirobust import DEPENDENCY_COLUMNS, SEMIROBUST_COLUMNS
from fragility.stress.synaptic import REMOVABLE_COLUMNS, SWEEP_COLUMNS
from fragility.stress.triage import DROP_COLUMNS, TRIAGE_COLUMNS
from fragility.trust import TRUST_COLUMNS

RUN_KEYS = ["dataset", "model", "seed", "epoch"]
FIGURES = figure_names("model")  # every model figure the registry holds: the tiny run draws them all


def test_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_config_plans_the_whole_dag(tmp_path):
    workdir = scratch_workdir(tmp_path, "config.yaml")
    jobs = planned_jobs(snakemake(workdir, "-n"))
    assert jobs["sweep_resnet18_part0"] == 2  # one job per checkpoint (2 seeds x 1 checkpoint) sweeps every layer
    assert jobs["train"] == 2 and jobs["retrain"] == 2 and jobs["adversarial"] == 2 and jobs["epsilon"] == 2
    assert jobs["kernels"] == 2 and jobs["figure_local_scores"] == 1 and jobs["figure_compare_models"] == 1
    assert jobs["triage_resnet18_part0"] == 2 and jobs["figure_triage"] == 1  # each run's last checkpoint, all 8 blocks
    assert jobs["robust"] == 2 and jobs["semirobust_resnet18_part0"] == 2  # F*, then splits 4 and 12 in one job
    per_layer = planned_jobs(snakemake(workdir, "-n", "--config", "sweep={layers_per_job: 1}", "models=[resnet18,squeezenet1_1]"))
    assert per_layer["sweep"] == 2 * (21 + 1 + 8 + 26 + 1 + 8)  # every Conv2d/Linear, __global__ and block of both models
    assert per_layer["triage"] == 2 * (8 + 8)  # every block (ResNet's 8 residual blocks, SqueezeNet's 8 Fire modules)
    assert per_layer["robust"] == 2 * 2 and per_layer["semirobust"] == 2 * 2 * 2  # models x seeds (x splits 4, 12)
    no_blocks = planned_jobs(snakemake(workdir, "-n", "--config", "sweep={layers_per_job: 1}", "blocks={default: none}"))
    assert no_blocks["sweep"] == 2 * (21 + 1) and no_blocks["criticality"] == 2 * 21  # blocks: none plans no block unit
    assert not [job for job in no_blocks if "triage" in job]  # nor triage


def test_timm_models_are_trained_and_swept_under_their_names(tmp_path):
    workdir = scratch_workdir(tmp_path, "config.yaml")
    jobs = planned_jobs(snakemake(workdir, "-n", "--config", "models=[resnet18,timm/resnet10t]", "sweep={layers_per_job: 8}"))
    assert jobs["train"] == 2 * 2 and jobs["sweep_timm_resnet10t_part0"] == 2 and jobs["sweep_timm_resnet10t_part1"] == 2
    assert jobs["sweep_timm_resnet10t_part2"] == 2  # 15 layers + __global__ + 4 blocks (timm's, by type) in jobs of 8
    assert "sweep_timm_resnet10t_part3" not in jobs


def test_reproduce_config_plans_the_whole_dag(tmp_path):
    from formats import write_mnist

    workdir = scratch_workdir(tmp_path, "config/reproduce.yaml")
    write_mnist(workdir / "data" / "MNIST" / "raw")  # where `make reproduce-data` puts MNIST's IDX files (checked at planning)
    write_mnist(workdir / "data" / "FashionMNIST" / "raw")
    result = snakemake(workdir, "-n")
    jobs = planned_jobs(result)
    assert jobs, result.stderr[-2000:]
    for model in ("resnet18", "squeezenet1_1"):  # 2 datasets x 3 seeds x 3 checkpoints, every layer in one job each
        assert jobs[f"sweep_{model}_part0"] == 2 * 3 * 3
    assert jobs["train"] == 2 * 2 * 3 and jobs["claims"] == 1 and jobs["removable"] == 4


def test_bad_config_fails_before_any_job_with_one_line(tmp_path):
    workdir = scratch_workdir(tmp_path)
    result = snakemake(workdir, "--cores", "1", "--config", "batch_size=0")
    assert result.returncode != 0
    assert "Error: config key 'batch_size': 0 is less than the minimum of 1" in result.stderr.splitlines()
    assert not (workdir / "results").exists()


def test_tiny_run_writes_every_table_with_its_schema(tiny_run):
    results = tiny_run / "results" / "digits" / "resnet18"
    sweep = pd.read_parquet(results / "sweep.parquet")
    assert list(sweep.columns) == RUN_KEYS + SWEEP_COLUMNS + ["attack", "usable"] and (sweep["attack"] == "fgsm").all()
    assert sweep["usable"].all()  # the tiny config's network learns: both checkpoints are usable
    assert set(sweep["layer"]) == {"conv1", "fc", "__global__", "layer1.0", "layer4.1"} and set(sweep["epoch"]) == {1, 2}
    assert len(sweep) == 2 * 5 * 3 * 5  # epochs x units x filters x (A + 1)
    kinds = sweep.groupby("layer")["unit_kind"].first().to_dict()
    assert kinds == {"conv1": "layer", "fc": "layer", "__global__": "global", "layer1.0": "block", "layer4.1": "block"}
    one_layer = pd.read_parquet(results / "seed0" / "sweep" / "epoch001" / "fc.parquet")
    assert list(one_layer.columns) == RUN_KEYS + SWEEP_COLUMNS + ["attack"]
    assert list(pd.read_parquet(results / "scores.parquet").columns) == SCORE_COLUMNS + INTERVAL_COLUMNS + ["usable"]
    trust = pd.read_parquet(results / "trust.parquet")
    assert list(trust.columns) == TRUST_COLUMNS and len(trust) == 2 and trust["usable"].all() and (trust["why"] == "").all()
    retrain = pd.read_parquet(results / "retrain.parquet")
    assert list(retrain.columns) == ["dataset", "model", "seed"] + RETRAIN_COLUMNS + ["usable"] and len(retrain) == 2 * 3
    assert retrain.groupby("branch")["label_attack"].first().fillna("-").to_dict() == {
        "regular": "-",
        "selective": "transfer",  # retrain.label_attack: the paper's reading by default
        "selective_whitebox": "whitebox",
    }
    with_reading = sweep.dropna(subset=["acc_adv_whitebox"])
    assert set(with_reading["layer"]) == {"conv1", "fc"} and set(with_reading["epoch"]) == {1, 2}  # whitebox.layers: ends
    epsilon = pd.read_parquet(results / "epsilon.parquet")
    assert epsilon["epsilon"].gt(0).all() and {"reached", "def7_holds", "def8_holds"} <= set(epsilon.columns)
    train_log = pd.read_parquet(results / "seed0" / "train_log.parquet")
    assert train_log["epoch"].tolist() == [1, 2]
    testset = TestSet.load(tiny_run / "results" / "digits" / "testset.pt")
    adversarial = AdversarialSet.load(results / "seed0" / "adversarial" / "epoch002.pt", testset)
    assert adversarial.x_adv.shape == (100, 1, 8, 8) and adversarial.epsilon == epsilon["epsilon"].iloc[0]
    kernels = pd.read_parquet(results / "kernels.parquet")
    assert list(kernels.columns) == RUN_KEYS + ["attack"] + KERNEL_COLUMNS + ["usable"] and set(kernels["layer"]) == {"conv1"}
    assert len(kernels) == 2 * 64 and kernels.groupby("epoch")["fragile_clean"].any().all()
    targeting = pd.read_parquet(results / "targeting.parquet")
    assert list(targeting.columns) == RUN_KEYS + ["attack"] + TARGETING_COLUMNS + ["usable"] and len(targeting) == 2 * 2
    criticality = pd.read_parquet(results / "criticality.parquet")
    assert list(criticality.columns) == RUN_KEYS + ["attack"] + CRITICALITY_COLUMNS + ["usable"]
    assert len(criticality) == 2 * 4 * 2  # epochs x units (conv1, fc and the two blocks; not __global__) x perturbations
    assert set(criticality.loc[criticality["unit_kind"] == "block", "layer"]) == {"layer1.0", "layer4.1"}
    agreement = pd.read_parquet(results / "agreement.parquet")
    # layers: 12 measures (66 pairs); blocks: the same and triage's two (fit initialisation; 91 pairs), per epoch
    assert list(agreement.columns) == AGREEMENT_COLUMNS and len(agreement) == 2 * (66 + 91)
    by_triage = agreement["measure_a"].str.startswith("triage_") | agreement["measure_b"].str.startswith("triage_")
    assert set(agreement.loc[by_triage, "unit_kind"]) == {"block"} and set(agreement["unit_kind"]) == {"layer", "block"}
    assert agreement.loc[~by_triage | (agreement["epoch"] == 2), "n_layers"].eq(2).all()  # triage: the last checkpoint
    triage = pd.read_parquet(results / "triage.parquet")
    assert list(triage.columns) == RUN_KEYS + ["attack"] + TRIAGE_COLUMNS + ["usable"] and set(triage["epoch"]) == {2}
    assert len(triage) == 2 * 2 * 3 * 3  # blocks x inits x schemes x triage epochs 0, 1, 2 (triage.checkpoints: last)
    assert set(triage["init"]) == {"random", "fit"} and triage["cka"].between(0, 1).all()
    assert (triage["train_size"] == 64).all() and (triage["params_compressed"] < triage["params_block"]).all()
    drops = pd.read_parquet(results / "triage_drops.parquet")
    assert list(drops.columns) == RUN_KEYS + ["attack"] + DROP_COLUMNS + ["usable"] and len(drops) == 2 * 2 * 3
    semirobust = pd.read_parquet(results / "semirobust.parquet")
    assert list(semirobust.columns) == RUN_KEYS + ["attack"] + SEMIROBUST_COLUMNS  # usable last: F* robust and trusted
    assert semirobust["network"].tolist() == ["normal", "robust", "semirobust", "finetuned"]  # delta 0.5: stops at epoch 1
    assert (semirobust["attack"] == "pgd-10").all() and (semirobust["first_fb_layer"] == "layer4.0.downsample.0").all()
    assert (semirobust["protocol"] == "budget").all() and (semirobust["trial"] == 0).all()
    robust = semirobust["mcnemar_p"] < 0.01  # trust.alpha
    assert not (semirobust["usable"] & ~robust).any() and semirobust.loc[~robust, "why"].str.startswith("F* not robust").all()
    dependency = pd.read_parquet(results / "dependency.parquet")
    assert list(dependency.columns) == RUN_KEYS + ["attack"] + DEPENDENCY_COLUMNS
    assert len(dependency) == 3 * 4 and set(dependency["network"]) == {"robust", "semirobust", "finetuned"}
    assert dependency["mi"].between(0.001, 10).all() and dependency["cka"].between(0, 1 + 1e-9).all()
    claims = pd.read_parquet(tiny_run / "results" / "reproduction" / "claims.parquet")
    assert list(claims.columns) == CLAIMS_COLUMNS and len(claims) == 16
    assert set(claims["claim"]) == {
        "first_conv_fragile",
        "last_linear_fragile",
        "batchnorm_rescue",
        "selective_beats_regular_adv",
        "selective_beats_regular_clean",
        "selective_beats_regular_adv_transfer",
        "selective_beats_regular_adv_whitebox",
        "global_scores_converge",
        "transfer_inflates_adversarial_score",
        "triage_block_independent",
        "triage_finetune_recovers",
        "triage_distillation_faster_capped",
        "semirobust_promotes_robustness",
        "semirobust_finetune_recovers",
        "dependency_falls_toward_output",
        "semirobust_follows_scores",
    }
    split_scores = pd.read_parquet(results / "semirobust_scores.parquet")
    assert list(split_scores.columns) == SPLIT_SCORES_COLUMNS and len(split_scores) == 1  # seed 0, epoch 2, k = 4
    assert claims.set_index("claim").loc["transfer_inflates_adversarial_score", "n"] == 2  # (seed, unit): 1 seed, 2 units
    assert claims.set_index("claim").loc["triage_finetune_recovers", "n"] == 1  # seeds
    assert set(claims["holds"]) <= {"yes", "no", "undetermined"} and (claims["min_n"] >= 1).all()
    assert (tiny_run / "results" / "reproduction" / "claims.md").read_text().startswith("| claim |")
    assert list(pd.read_parquet(results / "removable.parquet").columns) == REMOVABLE_COLUMNS
    scores = pd.read_parquet(results / "scores.parquet")
    transferred = [c for c in INTERVAL_COLUMNS if "whitebox" not in c]
    assert scores[transferred].notna().all().all()  # bootstrap: 200 replicates by default
    read = scores["score_adv_whitebox"].notna()
    assert scores.loc[read, INTERVAL_COLUMNS].notna().all().all() and scores.loc[~read, INTERVAL_COLUMNS].isna().any(axis=1).all()
    summary = pd.read_parquet(results / "retrain_summary.parquet")
    assert list(summary.columns) == SUMMARY_COLUMNS and len(summary) == (2 + 1) * 2  # (2 epochs + all) x clean/adv


REFERENCE = ROOT / "tests" / "data" / "tiny_reference"
# Where tests/data/tiny_reference was made. Each job of the tiny run computes on one thread, so
# on the same platform the run is bit for bit the reference; what changes the float rounding is
# the CPU instruction set torch dispatches its kernels to (AVX512 and AVX2 vectorise reductions
# differently), the CPU architecture and torch's own kernels (its version).
REFERENCE_PLATFORM = {"machine": "x86_64", "torch CPU capability": "AVX512", "torch": "2.14.1"}


def this_platform() -> dict:
    return {
        "machine": platform.machine(),
        "torch CPU capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__.split("+")[0],  # the build (+cpu, +cu130) runs the same CPU kernels
    }


def platform_difference() -> str:
    """How this machine differs from the reference's in what changes float rounding ('' if not)."""
    here = this_platform()
    return "; ".join(f"{key} {here[key]} (reference: {value})" for key, value in REFERENCE_PLATFORM.items() if here[key] != value)


@pytest.mark.parametrize("path", sorted(REFERENCE.glob("*.parquet")), ids=lambda p: p.stem)
def test_tiny_run_tables_equal_the_reference(tiny_run, path):
    """Every table of the tiny config equals the one kept in tests/data/tiny_reference (made
    with this config on a 2-core CPU machine, REFERENCE_PLATFORM; remake it with the tiny run's
    tables when a change is meant to move a number): column for column, value for value, on the
    reference's columns and rows, so that columns, branches and claims added later leave it
    standing. Skipped only where the platform differs from the reference's in what changes float
    rounding (a network trained there differs from the first step); a network that differs on the
    reference's platform fails in CI (CI set) and is skipped, with the reason, elsewhere. The
    numbers themselves are checked on any machine by test_tiny_run_numbers_recomputed_by_hand."""
    trained = pd.read_parquet(tiny_run / "results" / "digits" / "resnet18" / "epsilon.parquet")
    expected = pd.read_parquet(REFERENCE / "epsilon.parquet")
    if not trained["acc_clean"].equals(expected["acc_clean"]):
        found = f"clean accuracy {trained['acc_clean'].tolist()} vs the reference's {expected['acc_clean'].tolist()}"
        difference = platform_difference()
        if difference:
            pytest.skip(f"another platform trains another network ({found}): {difference}")
        message = (
            f"the tiny run trains another network than the reference on the reference's platform ({found}); "
            "remake tests/data/tiny_reference from the tiny run's tables if a change is meant to move a number"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message + " (CI fails here)")
    folder = "reproduction" if path.stem == "claims" else "digits/resnet18"
    table = pd.read_parquet(tiny_run / "results" / folder / path.name)
    reference = pd.read_parquet(path)
    if path.stem == "retrain":
        table = table[table["branch"].isin(reference["branch"])].reset_index(drop=True)
    if path.stem == "claims":
        table = table[table["claim"].isin(reference["claim"])].reset_index(drop=True)
    table = table[list(reference.columns)]
    pd.testing.assert_frame_equal(table, reference, check_exact=path.stem != "scores", rtol=1e-12, atol=1e-15)


def test_the_platform_check_names_what_differs(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch, "__version__", "2.14.1+cpu")
    assert platform_difference() == "torch CPU capability AVX2 (reference: AVX512)"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert platform_difference() == ""


def _tiny_config(workdir) -> dict:
    """The tiny run's config: the default config with the tiny overrides on top (one level deep)."""
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    for key, value in yaml.safe_load((workdir / "overrides.yaml").read_text()).items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and isinstance(config.get(key), dict) else value
    return config


def _by_hand_mask(theta: torch.Tensor, name: str, i: int, steps: int) -> tuple[torch.Tensor, float]:
    """METHOD §2 written out: which weights filter ``name`` removes at step ``i``, and its
    threshold (h3: the window's centre), in float64 on the raw signed values."""
    low, high = theta.min().item(), theta.max().item()
    delta = (high - low) / steps
    if name == "h1":  # remove θ ≤ α_i, α_A = M exactly
        alpha = high if i == steps else low + i * delta
        return theta <= alpha, alpha
    if name == "h2":  # remove θ ≥ M − i·Δ, m exactly at i = A
        alpha = low if i == steps else high - i * delta
        return theta >= alpha, alpha
    return (theta > low + (i - 0.5) * delta) & (theta <= low + (i + 0.5) * delta), low + i * delta


def _area(values, steps: int) -> float:
    """Eq. 14–16's rectangle sum over i = 0..A with Δα̂ = 1/A."""
    return sum(value / steps for value in values)


def test_tiny_run_numbers_recomputed_by_hand(tiny_run):
    """The workflow's own numbers, recomputed from its checkpoint, test set and adversarial set
    without the stage code: (a) every sweep row of conv1 at epoch 2 by a plain forward pass with
    the filter's mask applied by hand to conv1's weight; (b) conv1's r_x, r_xε, r_ε per filter and
    combined by Eq. 14–16 from those accuracies, and the labels by τ; (c) the claims
    first_conv_fragile, last_linear_fragile and transfer_inflates_adversarial_score from the
    score table with pandas."""
    run = tiny_run / "results" / "digits" / "resnet18"
    config = _tiny_config(tiny_run)
    steps, tau = config["sweep"]["steps"], config["scores"]["tau"]
    testset = TestSet.load(tiny_run / "results" / "digits" / "testset.pt")
    x_adv = AdversarialSet.load(run / "seed0" / "adversarial" / "epoch002.pt", testset).x_adv
    model = Checkpoint.read(run / "seed0" / "checkpoints" / "epoch002.pt").model()
    weight = model.net.conv1.weight
    original = weight.detach().clone()

    def accuracy(x):
        with torch.no_grad():
            return (model(x).argmax(1) == testset.y).double().mean().item()

    sweep = pd.read_parquet(run / "sweep.parquet")
    rows = sweep[(sweep["epoch"] == 2) & (sweep["layer"] == "conv1")]
    assert len(rows) == 3 * (steps + 1) and rows["usable"].all()
    unfiltered = accuracy(testset.x), accuracy(x_adv)
    assert (rows["acc_clean_unfiltered"] == unfiltered[0]).all() and (rows["acc_adv_unfiltered"] == unfiltered[1]).all()
    # (a) each variant by hand
    measured = {}
    for row in rows.itertuples():
        removed, alpha = _by_hand_mask(original.double(), row.filter, row.step, steps)
        with torch.no_grad():
            weight.copy_(torch.where(removed, torch.zeros_like(original), original))
        measured[row.filter, row.step] = accuracy(testset.x), accuracy(x_adv), int(removed.sum())
        with torch.no_grad():
            weight.copy_(original)
        assert (row.acc_clean, row.acc_adv, row.n_removed) == measured[row.filter, row.step], (row.filter, row.step)
        assert row.alpha == pytest.approx(alpha, rel=1e-12, abs=1e-15) and row.n_total == original.numel()
    assert len({clean for clean, _, _ in measured.values()}) > 3  # the filters do move the accuracy
    # (b) Eq. 14–16 from the hand-measured accuracies (those of the table, by (a))
    scores = pd.read_parquet(run / "scores.parquet").set_index(["epoch", "layer", "filter"])
    by_filter = {}
    for name in ("h1", "h2", "h3"):
        beta = [measured[name, i][0] / unfiltered[0] for i in range(steps + 1)]
        beta_adv = [measured[name, i][1] / unfiltered[1] for i in range(steps + 1)]
        baseline = [1 - measured[name, i][2] / original.numel() for i in range(steps + 1)]
        by_filter[name] = (
            _area([b - p for b, p in zip(beta, baseline)], steps),  # r_x, Eq. 14
            _area([b - p for b, p in zip(beta_adv, baseline)], steps),  # r_xε, Eq. 15
            _area([e - b for e, b in zip(beta_adv, beta)], steps),  # r_ε, Eq. 16
        )
    by_filter["combined"] = tuple(np.mean([by_filter[name][k] for name in ("h1", "h2", "h3")]) for k in range(3))
    for name, expected in by_filter.items():
        score = scores.loc[(2, "conv1", name)]
        found = score[["score_clean", "score_adv", "score_diff"]].tolist()
        assert found == pytest.approx(expected, rel=1e-12, abs=1e-15), (name, found, expected)
        labels = ["fragile" if s < -tau else "antifragile" if s > tau else "robust" for s in expected]
        assert score[["label_clean", "label_adv", "label_diff"]].tolist() == labels, name
    # (c) claims from the score table
    claims = pd.read_parquet(tiny_run / "results" / "reproduction" / "claims.parquet").set_index("claim")
    combined = scores.reset_index()
    combined = combined[(combined["filter"] == "combined") & combined["usable"]]
    for claim, layer in (("first_conv_fragile", "conv1"), ("last_linear_fragile", "fc")):
        rows = combined[combined["layer"] == layer]
        both = (rows["score_clean"] < -tau) & (rows["score_adv"] < -tau)  # fragile on r_x and r_xε
        per_seed = both.groupby(rows["seed"]).mean()
        assert claims.loc[claim, "value"] == pytest.approx(per_seed.mean(), abs=1e-12) and claims.loc[claim, "n"] == len(per_seed)
        assert claims.loc[claim, "holds"] == ("yes" if (per_seed == 1).all() else "no"), claim
    both_readings = combined.dropna(subset=["score_adv_whitebox"])
    per_unit = (
        (both_readings["score_adv"] - both_readings["score_adv_whitebox"])
        .groupby([both_readings["seed"], both_readings["layer"]])
        .mean()
    )
    assert set(per_unit.index.get_level_values("layer")) == {"conv1", "fc"}  # whitebox.layers: ends
    transfer = claims.loc["transfer_inflates_adversarial_score"]
    assert transfer["value"] == pytest.approx(per_unit.mean(), rel=1e-12) and transfer["n"] == len(per_unit)


def test_tiny_run_draws_every_figure(tiny_run):
    figures = tiny_run / "results" / "figures"
    for name in FIGURES:  # what each shows is tested in test_plots.py; here: drawn, a real image
        height, width, _ = plt.imread(figures / "digits" / "resnet18" / f"{name}.png").shape
        assert height > 200 and width > 200, name
    assert (figures / "digits" / "compare_models.png").exists() and (figures / "compare_datasets" / "resnet18.png").exists()


def test_rerun_is_a_no_op(tiny_run):
    result = snakemake(tiny_run, "-n")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


def test_one_figure_rebuilds_alone_from_cached_tables(tiny_run):
    figure = tiny_run / "results" / "figures" / "digits" / "resnet18" / "local_scores.png"
    figure.unlink()
    result = snakemake(tiny_run, "--cores", "1", "results/figures/digits/resnet18/local_scores.png")
    assert result.returncode == 0 and figure.exists()
    assert "1 of 1 steps (100%) done" in result.stderr


def test_changing_a_plot_option_reruns_only_plotting(tiny_run):
    (tiny_run / "plots.yaml").write_text("figures: {dpi: 60}\n")
    jobs = planned_jobs(snakemake(tiny_run, "-n", "--configfile", str(tiny_run / "overrides.yaml"), str(tiny_run / "plots.yaml")))
    assert jobs and all(rule.startswith("figure_") or rule == "default" for rule in jobs), jobs


def _plan_with(workdir, tmp_path, extra: str) -> dict[str, int]:
    (tmp_path / "extra.yaml").write_text(extra)
    return planned_jobs(snakemake(workdir, "-n", "--configfile", str(workdir / "overrides.yaml"), str(tmp_path / "extra.yaml")))


def _sweep_jobs(jobs: dict[str, int]) -> int:
    return sum(count for rule, count in jobs.items() if rule == "sweep" or rule.startswith("sweep_"))


def _copy_of(run, tmp_path):
    """A copy of a finished run (results and Snakemake's records), to change without touching it."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, symlinks=True)
    return copy


def _sweep_tables(workdir) -> dict[str, pd.DataFrame]:
    folder = workdir / "results" / "digits" / "resnet18" / "seed0" / "sweep"
    return {str(p.relative_to(folder)): pd.read_parquet(p) for p in sorted(folder.glob("epoch*/*.parquet"))}


def test_adding_a_layer_plans_its_sweeps_and_what_reads_them(tiny_run, tmp_path):
    extra = "sweep: {layers: {resnet18: [conv1, fc, __global__, layer1.0.conv1]}}\n"
    jobs = _plan_with(tiny_run, tmp_path, extra)
    assert _sweep_jobs(jobs) == 2  # one per checkpoint
    readers = {
        "collect_sweep",
        "scores",
        "retrain",
        "collect_retrain",
        "retrain_summary",
        "removable",
        "claims",
        "verdict",
        "default",
        "criticality_resnet18_part0",
        "collect_criticality",
        "agreement",
        "semirobust_scores",
    }  # criticality: a table per swept layer, in one job per checkpoint (the new layer's only is computed)
    assert set(jobs) - {"sweep_resnet18_part0"} <= readers | {r for r in jobs if r.startswith("figure_")}, jobs
    # the checkpoint's job sweeps the new layer only: the others are read back, bit for bit
    workdir = _copy_of(tiny_run, tmp_path)
    before = _sweep_tables(workdir)
    result = snakemake(
        workdir,
        "--cores",
        "2",
        "--configfile",
        str(workdir / "overrides.yaml"),
        str(tmp_path / "extra.yaml"),
        "--",
        "results/digits/resnet18/sweep.parquet",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    after = _sweep_tables(workdir)
    assert set(after) - set(before) == {"epoch001/layer1.0.conv1.parquet", "epoch002/layer1.0.conv1.parquet"}
    for name, table in before.items():
        pd.testing.assert_frame_equal(after[name], table, check_exact=True)
    log = (workdir / "results" / "logs" / "sweep" / "digits" / "resnet18" / "seed0" / "epoch002" / "part0.log").read_text()
    assert log.count("reused the tables of an earlier run") == 5 and log.count("layer layer1.0.conv1: ") >= 1


def test_a_damaged_table_is_remade_and_nothing_valid_is_lost(tiny_run, tmp_path):
    """A per-unit table and a collected table truncated after the run: a dry run names them,
    a run removes and remakes them (bit for bit) and reruns what reads them; the retraining
    table and the collected sweep come out as before, every table whole."""
    workdir = _copy_of(tiny_run, tmp_path)
    results = workdir / "results" / "digits" / "resnet18"
    damaged = [results / "seed0" / "sweep" / "epoch002" / "conv1.parquet", results / "kernels.parquet"]
    intact = {path: pd.read_parquet(path) for path in [*damaged, results / "sweep.parquet", results / "retrain.parquet"]}
    for path in damaged:
        with open(path, "r+b") as fh:
            fh.truncate(100)
    lines = [f"{path.relative_to(workdir)}: damaged (not a whole Parquet file)" for path in damaged]
    planned = snakemake(workdir, "-n")
    for line in lines:
        assert (planned.stdout + planned.stderr).count(line + "; a run removes and remakes it") == 1
    assert all(path.stat().st_size == 100 for path in damaged)
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(line + ": removed, to be remade" in result.stderr for line in lines)
    for path, table in intact.items():
        pd.testing.assert_frame_equal(pd.read_parquet(path), table, check_exact=True)
    assert all(parquet_intact(path) for path in (workdir / "results").rglob("*.parquet"))
    again = snakemake(workdir, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_deleted_checkpoint_is_remade_at_the_next_run(tiny_run, tmp_path):
    """Checkpoints and adversarial sets are targets of the default run: a deleted one is
    planned again at once (with what reads it), not left missing until a later change needs
    it and then reruns everything downstream."""
    workdir = _copy_of(tiny_run, tmp_path)
    checkpoints = workdir / "results" / "digits" / "resnet18" / "seed0" / "checkpoints"
    deleted = sorted(checkpoints.glob("epoch*.pt"))[-1]
    deleted.unlink()
    planned = snakemake(workdir, "-n")
    assert planned.returncode == 0, planned.stderr[-3000:]
    jobs = planned_jobs(planned)
    assert jobs.get("train") == 1 and any(rule.startswith("sweep") for rule in jobs), jobs
    assert f"Missing output files: results/digits/resnet18/seed0/checkpoints/{deleted.name}" in planned.stdout


def test_single_layer_jobs_write_the_tables_of_grouped_jobs_for_one_checkpoint(tiny_run, tmp_path):
    """The cheap form of the next test: epoch 1's conv1 and fc (clean, adversarial and white-box
    readings) swept again by two single-unit jobs (sweep.layers_per_job 1) equal, bit for bit,
    what the tiny run's grouped job wrote."""
    workdir = _copy_of(tiny_run, tmp_path)
    folder = workdir / "results" / "digits" / "resnet18" / "seed0" / "sweep" / "epoch001"
    targets = [folder / "conv1.parquet", folder / "fc.parquet"]
    grouped = {path.name: pd.read_parquet(path) for path in targets}
    for path in targets:
        path.unlink()
    (tmp_path / "single.yaml").write_text("sweep: {layers_per_job: 1}\n")
    configs = ["--configfile", str(workdir / "overrides.yaml"), str(tmp_path / "single.yaml")]
    result = snakemake(workdir, "--cores", "2", *configs, "--", *(str(p.relative_to(workdir)) for p in targets))
    assert result.returncode == 0, result.stderr[-3000:]
    logs = workdir / "results" / "logs" / "sweep" / "digits" / "resnet18" / "seed0" / "epoch001"
    assert (logs / "conv1.log").is_file() and (logs / "fc.log").is_file()  # the single-unit rule's logs: one job each
    assert "2 of 2 steps (100%) done" in result.stderr
    for name, table in grouped.items():
        pd.testing.assert_frame_equal(pd.read_parquet(folder / name), table, check_exact=True)


@pytest.mark.slow
def test_single_layer_jobs_write_the_tables_of_grouped_jobs(tiny_run, tmp_path):
    """sweep.layers_per_job 1 (the SLURM profile's) against auto (the tiny run's): bit-identical."""
    workdir = _copy_of(tiny_run, tmp_path)
    grouped = _sweep_tables(workdir)
    for name in grouped:
        (workdir / "results" / "digits" / "resnet18" / "seed0" / "sweep" / name).unlink()
    (tmp_path / "single.yaml").write_text("sweep: {layers_per_job: 1}\n")
    command = ["--configfile", str(workdir / "overrides.yaml"), str(tmp_path / "single.yaml")]
    assert _sweep_jobs(planned_jobs(snakemake(workdir, "-n", *command, "--", "results/digits/resnet18/sweep.parquet"))) == 10
    result = snakemake(workdir, "--cores", "2", *command, "--", "results/digits/resnet18/sweep.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    single = _sweep_tables(workdir)
    assert single.keys() == grouped.keys()
    for name, table in grouped.items():
        pd.testing.assert_frame_equal(single[name], table, check_exact=True)


@pytest.mark.parametrize(
    "extra",
    [
        "sweep: {cache_budget_mb: 64, method: exact, margin_guard: 0.01}\n",
        "batch_size: 32\ndevice: cpu\n",
        "sweep: {layers: {default: all, resnet18: [fc, __global__, conv1]}}\n",
    ],
)
def test_execution_settings_and_layer_order_plan_nothing(tiny_run, tmp_path, extra):
    (tmp_path / "extra.yaml").write_text(extra)
    result = snakemake(tiny_run, "-n", "--configfile", str(tiny_run / "overrides.yaml"), str(tmp_path / "extra.yaml"))
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr, result.stdout[-2000:]


@pytest.mark.slow
def test_per_checkpoint_epsilon_and_pgd_end_to_end(tmp_path):
    """One tiny run for two settings no other run exercises: ε per checkpoint, and PGD."""
    workdir = scratch_workdir(tmp_path)
    (workdir / "scope.yaml").write_text(
        "epsilon: {scope: per_checkpoint}\nattack: {method: pgd, pgd: {steps: 3}}\nsweep: {layers: {resnet18: [fc]}}\n"
    )
    result = snakemake(
        workdir,
        "--cores",
        "2",
        "--configfile",
        str(workdir / "overrides.yaml"),
        str(workdir / "scope.yaml"),
        "--",
        TINY_SCORES,
        "results/digits/resnet18/retrain_summary.parquet",
        "results/digits/resnet18/epsilon.parquet",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = workdir / "results" / "digits" / "resnet18"
    epsilon = pd.read_parquet(results / "epsilon.parquet").set_index("epoch")
    assert sorted(epsilon.index) == [1, 2] and (epsilon["scope"] == "per_checkpoint").all()
    for epoch in (1, 2):
        adversarial = AdversarialSet.load(results / "seed0" / "adversarial" / f"epoch{epoch:03d}.pt")
        assert adversarial.epsilon == epsilon.loc[epoch, "epsilon"]
        assert adversarial.attack == "pgd-3"
    retrain = pd.read_parquet(results / "retrain.parquet").set_index("epoch")
    assert (retrain.loc[1, "epsilon"] == epsilon.loc[1, "epsilon"]).all() and (
        retrain.loc[2, "epsilon"] == epsilon.loc[2, "epsilon"]
    ).all()
    for table in (epsilon, retrain, pd.read_parquet(results / "scores.parquet"), pd.read_parquet(results / "sweep.parquet")):
        assert (table["attack"] == "pgd-3").all()


def test_report_shows_every_figure(tiny_run):
    report = tiny_run / "report.html"
    result = snakemake(tiny_run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-2000:]
    html = report.read_text(errors="replace")
    for name in FIGURES + ["compare_models"]:
        assert f"{name}.png" in html
    caption = REGISTERED_FIGURES["local_scores"].caption.format(dataset="digits", model="resnet18")
    assert caption.split(":")[0] in html  # captions come from the registry, wildcards filled in
    assert "claims.html" in html


@pytest.mark.slow
def test_an_untrained_network_is_flagged_and_required_trust_stops_the_run(tmp_path):
    """Learning rate 1e-9: the network guesses. trust.require: the run stops after the trust
    check with one line naming each checkpoint, before any stress job, writing no table;
    without it every checkpoint is analysed, flagged, labelled undetermined and counted out."""
    workdir = scratch_workdir(tmp_path)
    (workdir / "untrained.yaml").write_text(
        "train: {lr: 1.0e-9}\nsweep: {steps: 2, layers: {resnet18: [fc]}}\nblocks: {resnet18: none}\nscores: {bootstrap: 0}\n"
    )
    configs = ["--configfile", str(workdir / "overrides.yaml"), str(workdir / "untrained.yaml")]
    stopped = snakemake(workdir, "--cores", "2", *configs, "--config", "trust={require: true}")
    assert stopped.returncode != 0
    results = workdir / "results" / "digits" / "resnet18"
    lines = (workdir / "results" / "logs" / "trust" / "digits" / "resnet18.log").read_text().splitlines()
    error = [line for line in lines if line.startswith("Error: ")]
    assert len(error) == 1 and error[0].startswith(
        "Error: trust.require: 2 checkpoint(s) not usable: digits/resnet18 seed 0 epoch 1: "
    )
    assert "is not above chance 0.100" in error[0]
    assert not (results / "trust.parquet").exists() and not (results / "seed0" / "sweep").exists()
    analysed = snakemake(workdir, "--cores", "2", *configs, "--", "results/reproduction/claims.parquet")
    assert analysed.returncode == 0, analysed.stderr[-3000:]
    trust = pd.read_parquet(results / "trust.parquet")
    assert not trust["usable"].any() and trust["why"].str.contains("not above chance").all()
    scores = pd.read_parquet(results / "scores.parquet")
    assert (scores["label_clean"] == "undetermined").all() and scores["score_clean"].notna().all()
    claims = pd.read_parquet(workdir / "results" / "reproduction" / "claims.parquet")
    first = claims.set_index("claim").loc["first_conv_fragile"]
    assert first["n"] == 0 and first["detail"] == "no usable checkpoint; 2 unusable (seed, checkpoint) left out (trust.parquet)"
    log = (workdir / "results" / "logs" / "sweep" / "digits" / "resnet18" / "seed0" / "epoch001" / "fc.log").read_text()
    assert "checkpoint digits/resnet18 seed 0 epoch 1 is not usable: clean accuracy" in log
    assert (workdir / "results" / "reproduction" / "claims.md").read_text().startswith("> **Warning: 2 of 2 checkpoints")


@pytest.mark.slow
def test_default_config_runs_end_to_end(tmp_path):
    """The README's default job (a few minutes on 2 cores): `make test-all` runs it."""
    workdir = scratch_workdir(tmp_path, "config.yaml")
    result = snakemake(workdir, "--cores", "2", timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = pd.read_parquet(workdir / "results" / "digits" / "resnet18" / "scores.parquet")
    assert set(scores["seed"]) == {0, 1} and set(scores["epoch"]) == {4} and scores["layer"].nunique() == 21 + 1 + 8


def test_table_and_figure_jobs_import_no_torch():
    """Collect, score and figure jobs start without importing torch (seconds per job); the
    claims and summary jobs read the stress tests' registry, and with it torch."""
    code = (
        "import sys; import fragility.plots, fragility.figures, fragility.scoring.stats, fragility.scoring.agreement, fragility.scoring.claims, fragility.scoring.tables, fragility.io; "
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
