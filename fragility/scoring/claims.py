"""Does the paper hold? Its findings as claims computed from the score, sweep and retrain
tables, one row per claim × dataset × model (docs/method.md defines each). No torch.

A claim that does not hold is a result, not a bug: the definitions never bend to make one hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import GLOBAL_LAYER
from ..trust import checkpoint_name, usable_rows
from .propagation import PART_MEANS, gain_agreement, split_scores
from .stats import paired_differences, summarise_differences

CLAIMS_COLUMNS = ["claim", "dataset", "model", "value", "spread", "n", "holds", "detail"]
REMOVABLE_COLUMNS = ["dataset", "model", "seed", "epoch", "layer", "filter", "removable_clean", "removable_adv", "removable"]


def _row(claim, dataset, model, value, spread, n, holds, detail) -> dict:
    return {
        "claim": claim,
        "dataset": dataset,
        "model": model,
        "value": value,
        "spread": spread,
        "n": int(n),
        "holds": bool(holds),
        "detail": detail,
    }


def _confidence(rows: pd.DataFrame) -> str:
    """'label confidence clean 0.98, adv 0.95' (bootstrap) or '' without intervals."""
    parts = [
        f"{kind} {rows[f'label_{kind}_conf'].mean():.2f}"
        for kind in ("clean", "adv")
        if f"label_{kind}_conf" in rows and rows[f"label_{kind}_conf"].notna().any()
    ]
    return f"; mean label confidence {', '.join(parts)}" if parts else ""


def layer_fragile(scores: pd.DataFrame, claim: str, layer: str, dataset: str, model: str) -> dict:
    """The fraction of (seed, checkpoint) where ``layer``'s combined-response label is fragile
    on both the clean and the adversarial score; spread = std over seeds of the per-seed
    fraction; holds when the fraction is 1."""
    rows = scores[(scores["layer"] == layer) & (scores["filter"] == "combined")]
    if rows.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, f"layer {layer} was not swept")
    fragile = (rows["label_clean"] == "fragile") & (rows["label_adv"] == "fragile")
    detail = f"layer {layer}; fragile (clean and adversarial) at {int(fragile.sum())} of {len(rows)} (seed, checkpoint)"
    return _fraction_row(claim, dataset, model, fragile, rows["seed"], 1.0, detail + _confidence(rows))


def _per_seed_std(values: pd.Series, seeds: pd.Series) -> float:
    per_seed = values.groupby(seeds).mean()
    return float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan


def _fraction_row(claim, dataset, model, flags: pd.Series, seeds: pd.Series, holds_at: float, detail: str) -> dict:
    """A claim whose value is the fraction of rows where ``flags`` holds, spread = std over
    seeds of the per-seed fraction, holding when the fraction is at least ``holds_at``."""
    value = float(flags.mean())
    return _row(claim, dataset, model, value, _per_seed_std(flags, seeds), len(flags), value >= holds_at, detail)


def batchnorm_rescue(sweep: pd.DataFrame, layers: list[str], chance: float, dataset: str, model: str) -> dict:
    """Over the middle conv layers followed by BatchNorm: the fraction of (layer, seed,
    checkpoint) whose clean accuracy with every weight removed (h1 at step A) stays above 2×
    chance; holds when ≥ 0.5."""
    claim = "batchnorm_rescue"
    if not layers:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "no middle conv layer followed by BatchNorm")
    rows = sweep[(sweep["filter"] == "h1") & sweep["layer"].isin(layers)]
    rows = rows[rows["step"] == rows["step"].max()]
    if rows.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "none of those layers was swept")
    rescued = rows["acc_clean"] > 2 * chance
    detail = (
        f"{rows['layer'].nunique()} layers; accuracy with every weight removed: median {rows['acc_clean'].median():.3f}, "
        f"2× chance = {2 * chance:.3f}"
    )
    return _fraction_row(claim, dataset, model, rescued, rows["seed"], 0.5, detail)


def selective_beats_regular(
    retrain: pd.DataFrame, accuracy: str, dataset: str, model: str, branch: str = "selective", claim: str | None = None
) -> dict:
    """Mean ``branch`` − regular over the (seed, checkpoint) pairs where the branch compares:
    holds when the mean is > 0 and the Wilcoxon signed-rank p < 0.05. A pair whose branch
    froze nothing (regular by construction) or every labelled layer but at most one is not a
    comparison: it is counted out and said so; with no pair left the value is NaN."""
    claim = claim or f"selective_beats_regular_{accuracy}"
    if retrain.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "not retrained (the dataset has no training split)")
    rows = retrain[retrain["branch"] == branch]
    if rows.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, f"no {branch} branch was retrained")
    nothing = rows["n_frozen"] == 0 if "n_frozen" in rows else pd.Series(False, index=rows.index)
    nearly_all = (
        (rows["n_layers"] > 1) & (rows["n_frozen"] >= rows["n_layers"] - 1)
        if "n_layers" in rows
        else pd.Series(False, index=rows.index)
    )
    reading = f"labels of the {rows['label_attack'].iloc[0]} reading; " if "label_attack" in rows else ""
    counted_out = ""
    if nothing.any() or nearly_all.any():
        counted_out = (
            f"; counted out: {int(nothing.sum())} pairs froze no layer (identical to regular by construction), "
            f"{int(nearly_all.sum())} froze every labelled layer but at most one"
        )
    keep = rows.loc[~(nothing | nearly_all), ["seed", "epoch"]]
    frozen = f"froze {rows['n_frozen'].mean():.1f} layers on average" if "n_frozen" in rows else ""
    if keep.empty:
        detail = f"{reading}{frozen}; no pair compares{counted_out}"
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, detail)
    pairs = retrain.merge(keep, on=["seed", "epoch"])
    summary = summarise_differences(paired_differences(pairs, branch)[f"diff_{accuracy}"])
    holds = summary["mean_diff"] > 0 and summary["wilcoxon_p"] < 0.05
    detail = f"{reading}{frozen + '; ' if frozen else ''}Wilcoxon p = {summary['wilcoxon_p']:.3g}{counted_out}"
    return _row(claim, dataset, model, summary["mean_diff"], summary["std_diff"], summary["n_pairs"], holds, detail)


def selective_by_reading(retrain: pd.DataFrame, dataset: str, model: str) -> list[dict]:
    """``selective_beats_regular_adv_<reading>`` for each adversarial reading whose labels
    chose a retrained branch (``retrain.label_attack`` and the other, where the sweep has it)."""
    if retrain.empty or "label_attack" not in retrain:
        return []
    readings = retrain.dropna(subset=["label_attack"]).drop_duplicates("label_attack")
    return [
        selective_beats_regular(retrain, "adv", dataset, model, row.branch, f"selective_beats_regular_adv_{row.label_attack}")
        for row in readings.itertuples()
    ]


def transfer_inflates_adversarial_score(scores: pd.DataFrame, dataset: str, model: str, seed: int = 0) -> dict:
    """Over the (seed, checkpoint, unit) with both readings (combined response): the fraction
    whose transferred r_ε lies above the white-box r_ε; ``detail`` gives the mean difference
    with a 95 % bootstrap interval over those units (2,000 resamples, ``seed``). Holds when the
    interval lies above 0: reusing the unfiltered network's attack makes layers look stronger."""
    claim = "transfer_inflates_adversarial_score"
    rows = scores[scores["filter"] == "combined"]
    rows = rows.dropna(subset=["score_adv", "score_adv_whitebox"]) if "score_adv_whitebox" in rows else rows.iloc[:0]
    if rows.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "no unit has the white-box reading (whitebox.layers)")
    difference = (rows["score_adv"] - rows["score_adv_whitebox"]).to_numpy()
    resampled = np.random.default_rng(seed).choice(difference, size=(2000, len(difference))).mean(axis=1)
    lo, hi = np.quantile(resampled, [0.025, 0.975])
    labels = (
        f"; Δr labels differ at {int((rows['label_diff'] != rows['label_diff_whitebox']).sum())} of {len(rows)}"
        if "label_diff_whitebox" in rows
        else ""
    )
    detail = (
        f"transferred r_ε − white-box r_ε: mean {difference.mean():+.3f} [95 % {lo:+.3f}, {hi:+.3f}] over "
        f"{len(rows)} (seed, checkpoint, unit) of {rows['layer'].nunique()} units{labels}"
    )
    row = _fraction_row(claim, dataset, model, rows["score_adv"] > rows["score_adv_whitebox"], rows["seed"], 0.0, detail)
    return {**row, "holds": bool(lo > 0)}


def global_scores_converge(scores: pd.DataFrame, dataset: str, model: str) -> dict:
    """The std over seeds of the global combined scores (r, r_ε, Δr, averaged) at the last
    checkpoint against the first: value = their ratio; holds when it shrinks (< 1)."""
    claim = "global_scores_converge"
    rows = scores[(scores["layer"] == GLOBAL_LAYER) & (scores["filter"] == "combined")]
    epochs = sorted(rows["epoch"].unique())
    if rows["seed"].nunique() < 2 or len(epochs) < 2:
        return _row(claim, dataset, model, np.nan, np.nan, rows["seed"].nunique(), False, "needs 2 seeds and 2 checkpoints")
    spread = {
        e: rows[rows["epoch"] == e][["score_clean", "score_adv", "score_diff"]].std(ddof=1).mean()
        for e in (epochs[0], epochs[-1])
    }
    ratio = spread[epochs[-1]] / spread[epochs[0]] if spread[epochs[0]] > 0 else np.nan
    detail = f"std over seeds of the global combined scores: epoch {epochs[0]} {spread[epochs[0]]:.4f} -> epoch {epochs[-1]} {spread[epochs[-1]]:.4f}"
    return _row(claim, dataset, model, ratio, np.nan, rows["seed"].nunique(), bool(ratio < 1), detail)


def global_scores_similar_across_datasets(scores: pd.DataFrame, model: str, tau: float) -> dict:
    """The largest difference between datasets of a model's mean global combined scores (r,
    r_ε, Δr; mean over seeds and checkpoints); holds when below τ."""
    rows = scores[(scores["model"] == model) & (scores["layer"] == GLOBAL_LAYER) & (scores["filter"] == "combined")]
    means = rows.groupby("dataset")[["score_clean", "score_adv", "score_diff"]].mean()
    largest = float((means.max() - means.min()).max())
    detail = "; ".join(f"{d}: r {m.score_clean:.3f}, r_ε {m.score_adv:.3f}, Δr {m.score_diff:.3f}" for d, m in means.iterrows())
    return _row(
        "global_scores_similar_across_datasets", ",".join(means.index), model, largest, np.nan, len(means), largest < tau, detail
    )


TRIAGE_RUN = ["dataset", "model", "seed", "epoch", "block"]


def recovery_epochs(triage: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per (dataset, model, seed, epoch, block, scheme): ``epochs_to_recover``, the first
    triage epoch whose clean accuracy is at least base − ``tolerance`` (NaN: never), and the
    scheme's ``last_epoch`` (METHOD §13)."""
    keys = TRIAGE_RUN + ["scheme"]
    recovered = triage[triage["acc_clean"] >= triage["base_acc_clean"] - tolerance]
    first = recovered.groupby(keys)["triage_epoch"].min().rename("epochs_to_recover")
    last = triage.groupby(keys)["triage_epoch"].max().rename("last_epoch")
    return pd.concat([last, first], axis=1).reset_index()


def _final(triage: pd.DataFrame, scheme: str) -> pd.DataFrame:
    rows = triage[triage["scheme"] == scheme]
    return rows[rows["triage_epoch"] == rows.groupby(TRIAGE_RUN)["triage_epoch"].transform("max")]


def triage_block_independent(triage: pd.DataFrame, block_range: float, dataset: str, model: str) -> dict:
    """The range over blocks of the final ``local`` clean accuracy (mean over seeds and
    checkpoints); spread = std over seeds of each seed's range; holds when ≤ ``block_range``."""
    claim = "triage_block_independent"
    final = _final(triage, "local")
    if final["block"].nunique() < 2:
        return _row(claim, dataset, model, np.nan, np.nan, final["block"].nunique(), False, "needs the local scheme on 2 blocks")
    means = final.groupby("block")["acc_clean"].mean()
    per_seed = final.groupby(["seed", "block"])["acc_clean"].mean().groupby("seed").agg(lambda a: a.max() - a.min())
    value = float(means.max() - means.min())
    detail = (
        f"final local clean accuracy from {means.min():.3f} ({means.idxmin()}) to {means.max():.3f} ({means.idxmax()}) "
        f"over {len(means)} blocks; holds at a range of at most {block_range}"
    )
    spread = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan
    return _row(claim, dataset, model, value, spread, len(means), value <= block_range, detail)


def triage_finetune_recovers(triage: pd.DataFrame, tolerance: float, dataset: str, model: str) -> dict:
    """The fraction of (seed, checkpoint, block) whose ``global`` scheme recovers the base
    clean accuracy within ``tolerance``; holds when > 0.5."""
    claim = "triage_finetune_recovers"
    found = recovery_epochs(triage[triage["scheme"] == "global"], tolerance)
    if found.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "the global scheme was not run (triage.schemes)")
    recovered = found["epochs_to_recover"].notna()
    value = float(recovered.mean())
    detail = (
        f"global fine-tuning reached base − {tolerance} clean accuracy for {int(recovered.sum())} of {len(found)} "
        f"(seed, checkpoint, block) within {int(found['last_epoch'].max())} triage epochs"
    )
    return _row(claim, dataset, model, value, _per_seed_std(recovered, found["seed"]), len(found), value > 0.5, detail)


def triage_distillation_faster_capped(triage: pd.DataFrame, tolerance: float, dataset: str, model: str) -> dict:
    """Mean over (seed, checkpoint, block) of epochs_to_recover(global) − epochs_to_recover(distil),
    a scheme that never recovers counted as recovering one epoch after its last (pairs where
    neither recovers say nothing and are left out); holds when the mean is > 0 and no
    ``distil`` clean accuracy exceeds base + ``tolerance``."""
    claim = "triage_distillation_faster_capped"
    found = recovery_epochs(triage[triage["scheme"].isin(["global", "distil"])], tolerance)
    if set(found["scheme"]) != {"global", "distil"}:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "needs the global and distil schemes (triage.schemes)")
    found["epochs"] = found["epochs_to_recover"].fillna(found["last_epoch"] + 1)
    found["recovered"] = found["epochs_to_recover"].notna()
    wide = found.pivot_table(index=TRIAGE_RUN, columns="scheme", values=["epochs", "recovered"], aggfunc="first")
    compared = wide[wide["recovered"]["global"].astype(bool) | wide["recovered"]["distil"].astype(bool)]
    distil = triage[triage["scheme"] == "distil"]
    excess = float((distil["acc_clean"] - distil["base_acc_clean"]).max())
    capped = excess <= tolerance
    cap = f"distil at most {excess:+.3f} above the base clean accuracy (cap: +{tolerance})"
    if compared.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, f"neither scheme recovered anywhere; {cap}")
    faster = compared["epochs"]["global"] - compared["epochs"]["distil"]
    seeds = faster.index.get_level_values("seed").to_series(index=faster.index)
    value = float(faster.mean())
    detail = f"epochs to recover, global − distil, over {len(faster)} (seed, checkpoint, block) where one recovered; {cap}"
    return _row(claim, dataset, model, value, _per_seed_std(faster, seeds), len(faster), value > 0 and capped, detail)


def triage_claims(triage: pd.DataFrame, tolerance: float, block_range: float, dataset: str, model: str) -> list[dict]:
    """The triage paper's three findings (METHOD §13) for one (dataset, model)."""
    return [
        triage_block_independent(triage, block_range, dataset, model),
        triage_finetune_recovers(triage, tolerance, dataset, model),
        triage_distillation_faster_capped(triage, tolerance, dataset, model),
    ]


SPLIT_RUN = ["dataset", "model", "seed", "epoch", "split_k"]


def _network_accuracy(semirobust: pd.DataFrame, network: str) -> pd.Series:
    """Per (dataset, model, seed, epoch, split_k): ``network``'s adversarial accuracy (the
    fine-tuned network's after its last epoch)."""
    rows = semirobust[semirobust["network"] == network]
    rows = rows[rows["finetune_epoch"] == rows.groupby(SPLIT_RUN)["finetune_epoch"].transform("max")]
    return rows.set_index(SPLIT_RUN)["acc_adv"]


def semirobust_promotes_robustness(semirobust: pd.DataFrame, dataset: str, model: str) -> dict:
    """Acc_sr − Acc (adversarial accuracy of the semirobust network minus the normal one's)
    paired over (seed, checkpoint, split): holds when the mean is > 0 and the Wilcoxon p < 0.05."""
    claim = "semirobust_promotes_robustness"
    differences = (_network_accuracy(semirobust, "semirobust") - _network_accuracy(semirobust, "normal")).dropna()
    if differences.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "no semirobust network was measured")
    summary = summarise_differences(differences)
    holds = summary["mean_diff"] > 0 and summary["wilcoxon_p"] < 0.05
    splits = ", ".join(str(k) for k in sorted(differences.index.get_level_values("split_k").unique()))
    detail = f"adversarial accuracy, semirobust − normal, splits k = {splits}; Wilcoxon p = {summary['wilcoxon_p']:.3g}"
    return _row(claim, dataset, model, summary["mean_diff"], summary["std_diff"], summary["n_pairs"], holds, detail)


def semirobust_finetune_recovers(semirobust: pd.DataFrame, delta: float, dataset: str, model: str) -> dict:
    """The fraction of (seed, checkpoint, split) whose fine-tuned f_b reaches Acc* − ``delta``
    (the robust network's adversarial accuracy); holds when > 0.5."""
    claim = "semirobust_finetune_recovers"
    robust = _network_accuracy(semirobust, "robust")
    tuned = semirobust[semirobust["network"] == "finetuned"].set_index(SPLIT_RUN)
    if tuned.empty:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "no fine-tuning was run")
    reached = (tuned["acc_adv"] >= robust.reindex(tuned.index) - delta).groupby(level=SPLIT_RUN).any()
    value = float(reached.mean())
    detail = (
        f"fine-tuned f_b reached Acc* − {delta} adversarial accuracy at {int(reached.sum())} of {len(reached)} "
        f"(seed, checkpoint, split) within {int(tuned['finetune_epoch'].max())} epochs"
    )
    seeds = reached.index.get_level_values("seed").to_series(index=reached.index)
    return _row(claim, dataset, model, value, _per_seed_std(reached, seeds), len(reached), value > 0.5, detail)


def dependency_rises_toward_output(dependency: pd.DataFrame, dataset: str, model: str) -> dict:
    """Kendall's τ between a consecutive pair's position and its CKA, per (seed, checkpoint,
    split, network), averaged; holds when the mean is > 0."""
    from scipy.stats import kendalltau

    claim = "dependency_rises_toward_output"
    taus = []
    for (seed, *_), rows in dependency.groupby(["seed", "epoch", "split_k", "network"]):
        rows = rows.dropna(subset=["cka"])
        if rows["position"].nunique() >= 2 and rows["cka"].nunique() >= 2:
            taus.append((seed, float(kendalltau(rows["position"], rows["cka"]).statistic)))
    if not taus:
        return _row(claim, dataset, model, np.nan, np.nan, 0, False, "no split has two layer pairs with CKA")
    found = pd.DataFrame(taus, columns=["seed", "tau"])
    value = float(found["tau"].mean())
    detail = f"Kendall τ between position and CKA of consecutive layers, over {len(found)} (seed, checkpoint, split, network)"
    return _row(claim, dataset, model, value, _per_seed_std(found["tau"], found["seed"]), len(found), value > 0, detail)


def semirobust_follows_scores(split_table: pd.DataFrame, dataset: str, model: str) -> dict:
    """Kendall's τ_b, over (seed, checkpoint, split), between Acc_sr − Acc and the mean
    adversarial score r_ε of f_b's layers (:func:`fragility.scoring.propagation.split_scores`):
    holds when > 0, i.e. robustness propagates more where the filters call f_b robust. The
    detail gives τ for r_ε and Δr of f_a and of f_b."""
    claim = "semirobust_follows_scores"
    usable = split_table.dropna(subset=["acc_sr_gain", "score_adv_fb"])
    taus = gain_agreement(usable)
    value = taus["score_adv_fb"]
    detail = "Kendall τ_b of Acc_sr − Acc with the mean " + ", ".join(
        f"{'r_ε' if 'adv' in mean else 'Δr'} of {'f_b' if mean.endswith('fb') else 'f_a'} {taus[mean]:.2f}" for mean in PART_MEANS
    )
    holds = bool(np.isfinite(value) and value > 0)
    return _row(
        claim, dataset, model, value, np.nan, len(usable), holds, detail + f" over {len(usable)} (seed, checkpoint, split)"
    )


def semirobust_claims(
    semirobust: pd.DataFrame, dependency: pd.DataFrame, delta: float, dataset: str, model: str, split_table: pd.DataFrame
) -> list[dict]:
    """The semirobustness paper's three findings (METHOD §14) for one (dataset, model), and
    their link to the synaptic filters' scores (``split_table``)."""
    return [
        semirobust_promotes_robustness(semirobust, dataset, model),
        semirobust_finetune_recovers(semirobust, delta, dataset, model),
        dependency_rises_toward_output(dependency, dataset, model),
        semirobust_follows_scores(split_table, dataset, model),
    ]


# the claims of every (dataset, model), in order; with no usable checkpoint each is n/a
PAIR_CLAIMS = (
    "first_conv_fragile",
    "last_linear_fragile",
    "batchnorm_rescue",
    "selective_beats_regular_adv",
    "selective_beats_regular_clean",
    "global_scores_converge",
    "transfer_inflates_adversarial_score",
)


def claims_table(
    scores: pd.DataFrame,
    sweep: pd.DataFrame,
    retrain: pd.DataFrame,
    roles: dict,
    chance: dict,
    tau: float,
    triage: pd.DataFrame | None = None,
    triage_options: dict | None = None,
    semirobust: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    semirobust_delta: float = 0.05,
) -> pd.DataFrame:
    """Every claim for every (dataset, model) of the tables. ``roles[model]`` names its
    ``first_conv``, ``last_layer`` and ``bn_convs`` (middle convs followed by BatchNorm);
    ``chance[dataset]`` is 1/K. With a ``triage`` table (and ``triage_options``: its
    ``tolerance`` and ``block_range``) the triage claims join every (dataset, model) it has,
    and with the ``semirobust`` and ``dependency`` tables (and ``semirobust_delta``) the
    semirobustness claims.
    Rows of checkpoints that are not usable (a ``usable`` column, :mod:`fragility.trust`)
    are left out, and each claim's ``detail`` says how many."""
    rows = []
    for (dataset, model), part in scores.groupby(["dataset", "model"], sort=False):
        part, left_out = usable_rows(part)
        note = f"; {left_out} unusable (seed, checkpoint) left out (trust.parquet)" if left_out else ""
        if part.empty:
            rows += [
                _row(claim, dataset, model, np.nan, np.nan, 0, False, f"no usable checkpoint{note}") for claim in PAIR_CLAIMS
            ]
            continue
        role = roles[model]
        own_sweep, _ = usable_rows(sweep[(sweep["dataset"] == dataset) & (sweep["model"] == model)])
        own_retrain, _ = usable_rows(retrain[(retrain["dataset"] == dataset) & (retrain["model"] == model)])
        found = [
            layer_fragile(part, "first_conv_fragile", role["first_conv"], dataset, model),
            layer_fragile(part, "last_linear_fragile", role["last_layer"], dataset, model),
            batchnorm_rescue(own_sweep, role["bn_convs"], chance[dataset], dataset, model),
            selective_beats_regular(own_retrain, "adv", dataset, model),
            selective_beats_regular(own_retrain, "clean", dataset, model),
            *selective_by_reading(own_retrain, dataset, model),
            global_scores_converge(part, dataset, model),
            transfer_inflates_adversarial_score(part, dataset, model),
        ]
        own_triage = triage[(triage["dataset"] == dataset) & (triage["model"] == model)] if triage is not None else None
        if own_triage is not None and not own_triage.empty:
            usable_triage, _ = usable_rows(own_triage)
            found += triage_claims(usable_triage, triage_options["tolerance"], triage_options["block_range"], dataset, model)
        if semirobust is not None:
            own = [usable_rows(t[(t["dataset"] == dataset) & (t["model"] == model)])[0] for t in semirobust]
            if not own[0].empty:
                split_table = split_scores(part, own[0], {model: role["layers"]})
                found += semirobust_claims(own[0], own[1], semirobust_delta, dataset, model, split_table)
        rows += [{**row, "detail": row["detail"] + note} for row in found]
    trusted, _ = usable_rows(scores)
    if trusted["dataset"].nunique() >= 2:
        rows += [global_scores_similar_across_datasets(trusted, model, tau) for model in trusted["model"].unique()]
    return pd.DataFrame(rows, columns=CLAIMS_COLUMNS)


def untrusted_warning(trust: pd.DataFrame) -> str:
    """One sentence naming every checkpoint that is not usable and why ('' when all are)."""
    bad = trust[~trust["usable"].astype(bool)]
    if bad.empty:
        return ""
    named = "; ".join(f"{checkpoint_name(row)}: {row['why']}" for _, row in bad.iterrows())
    return f"Warning: {len(bad)} of {len(trust)} checkpoints are not usable and are left out of the claims ({named})."


def claims_markdown(claims: pd.DataFrame, trust: pd.DataFrame | None = None) -> str:
    """The claims table as Markdown, one line per claim, after a warning naming the
    checkpoints that are not usable (``trust``), if any."""
    warning = untrusted_warning(trust) if trust is not None else ""
    lines = [f"> **{warning}**", ""] if warning else []
    lines += ["| claim | dataset | model | value | spread | n | holds | detail |", "|---|---|---|---|---|---|---|---|"]
    for row in claims.itertuples():
        spread = "" if pd.isna(row.spread) else f"{row.spread:.3f}"
        value = "n/a" if pd.isna(row.value) else f"{row.value:.3f}"
        lines.append(
            f"| {row.claim} | {row.dataset} | {row.model} | {value} | {spread} | {row.n} | "
            f"{'**yes**' if row.holds else 'no'} | {row.detail} |"
        )
    return "\n".join(lines) + "\n"


def claims_html(claims: pd.DataFrame, trust: pd.DataFrame | None = None) -> str:
    """The claims table as HTML, opening with a warning box naming the checkpoints that are
    not usable (``trust``), if any."""
    import html

    warning = untrusted_warning(trust) if trust is not None else ""
    box = (
        '<div style="border:2px solid #b00;background:#fee;padding:8px;margin-bottom:12px">'
        f"<strong>{html.escape(warning)}</strong></div>\n"
        if warning
        else ""
    )
    return box + claims.to_html(index=False, float_format="%.3f")


def removable(sweep: pd.DataFrame, max_loss: float = 0.01) -> pd.DataFrame:
    """Per layer and filter, the largest fraction of its weights a filter step removes while
    clean (``removable_clean``), adversarial (``removable_adv``) or both (``removable``)
    accuracy lose at most ``max_loss`` against the unfiltered network."""
    keys = [k for k in ("dataset", "model", "seed", "epoch") if k in sweep] + ["layer", "filter"]
    table = sweep.assign(
        fraction=sweep["n_removed"] / sweep["n_total"],
        ok_clean=sweep["acc_clean_unfiltered"] - sweep["acc_clean"] <= max_loss + 1e-12,
        ok_adv=sweep["acc_adv_unfiltered"] - sweep["acc_adv"] <= max_loss + 1e-12,
    )
    table["ok"] = table["ok_clean"] & table["ok_adv"]
    out = (
        table.groupby(keys, sort=False)
        .apply(
            lambda g: pd.Series(
                {
                    "removable_clean": g.loc[g["ok_clean"], "fraction"].max() if g["ok_clean"].any() else 0.0,
                    "removable_adv": g.loc[g["ok_adv"], "fraction"].max() if g["ok_adv"].any() else 0.0,
                    "removable": g.loc[g["ok"], "fraction"].max() if g["ok"].any() else 0.0,
                }
            ),
            include_groups=False,
        )
        .reset_index()
    )
    return out[[c for c in REMOVABLE_COLUMNS if c in out]]
