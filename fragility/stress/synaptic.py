"""Synaptic filtering (paper §2–4): the accuracy of every filtered variant of one unit.

For each filter h ∈ {h1, h2, h3} and step i the unit's weights that the filter removes are
set to 0 and the clean and adversarial test sets classified, on the sweep engine
(:mod:`fragility.engine.sweep`). Variants that remove exactly the same weights (empty bins,
empty pulse windows, full removal by h1 and h2) are evaluated once, except by ``naive``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import GLOBAL_LAYER
from ..config import attack_settings, fail, model_epochs, model_structure, sweep_units
from ..filters import FILTERS, ThresholdRange, removal_mask, threshold
from ..scoring.bootstrap import pack_correct
from ..scoring.claims import (
    ALPHA,
    ClaimSpec,
    Finding,
    confidence_note,
    fraction_finding,
    per_seed_mean,
    per_seed_std,
    undetermined,
    wilcoxon_min_n,
)
from ..scoring.stats import paired_differences, summarise_differences
from .base import RUN_COLUMNS, Context, RankMeasures, Settings, StressTest, Summary

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..attack import Attack
    from ..engine.sweep import MaskedLayer, SweepOptions

log = logging.getLogger(__name__)

# what each variant is classified on: the clean test set, the transferred adversarial set
# (made once on the unfiltered network, the paper's) and, for the white-box units, the
# variant's own adversarial images
READINGS = ("clean", "adv", "adv_whitebox")
SWEEP_COLUMNS = [
    "layer",
    "unit_kind",  # layer, block or global (fragility.models.unit_kind)
    "filter",
    "step",
    "alpha",
    "alpha_norm",
    "n_removed",
    "n_total",
    "acc_clean",
    "acc_adv",
    "acc_clean_unfiltered",
    "acc_adv_unfiltered",
    # which test images each variant classifies correctly, packed bits (fragility.scoring.bootstrap)
    "n_images",
    "correct_clean",
    "correct_adv",
    "correct_clean_unfiltered",
    "correct_adv_unfiltered",
    # the white-box reading (NaN and null for units without it: whitebox.layers)
    "acc_adv_whitebox",
    "acc_adv_whitebox_unfiltered",
    "correct_adv_whitebox",
    "correct_adv_whitebox_unfiltered",
]


@dataclass(frozen=True)
class Variant:
    """One (filter, step) of a sweep."""

    filter: str
    step: int
    alpha: float
    n_removed: int
    key: str  # variants with the same key remove the same weights

    def mask(self, layer: MaskedLayer) -> torch.Tensor:
        """The flat boolean mask of the weights this variant removes."""
        return removal_mask(self.filter, layer.values, self.step, layer.range)


def plan_variants(
    values: torch.Tensor, steps: int, filters=FILTERS, dedup: bool = True
) -> tuple[list[Variant], dict[str, Variant]]:
    """Every (filter, step) with its threshold and count, and the variants to evaluate:
    one per distinct mask, or (``dedup=False``) every one of them."""
    from ..engine.sweep import UNFILTERED

    rng = ThresholdRange.of(values, steps)
    variants, representatives = [], {}
    for name in filters:
        for step in range(steps + 1):
            mask = removal_mask(name, values, step, rng)
            n_removed = int(mask.sum())
            if not dedup:
                key = f"{name}:{step}"
            else:
                key = UNFILTERED if n_removed == 0 else _mask_key(mask)
            variant = Variant(name, step, threshold(name, step, rng), n_removed, key)
            variants.append(variant)
            representatives.setdefault(key, variant)
    return variants, representatives


def _mask_key(mask: torch.Tensor) -> str:
    return hashlib.blake2b(mask.numpy().tobytes(), digest_size=16).hexdigest()


def sweep(
    model: nn.Module,
    layer: str,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    options: SweepOptions | None = None,
    *,
    whitebox_epsilon: float | None = None,
    attack: Attack | None = None,
    stats: dict | None = None,
    **settings,
) -> pd.DataFrame:
    """One row per (filter, step): thresholds, counts and clean/adversarial accuracies.

    The sweep's settings come either as ``options`` or as :class:`SweepOptions` keywords
    (``steps=10, method="exact"``), never both. ``model`` must be in eval mode; it is left
    exactly as it was found. ``acc_adv`` is the transferred reading: every variant classifies
    the given ``x_adv``. With ``whitebox_epsilon`` every variant is also attacked itself
    (``attack``, default FGSM, at that ε) and ``acc_adv_whitebox`` holds its accuracy on its
    own adversarial images (:mod:`fragility.engine.whitebox`); else those columns are NaN.
    ``stats``, when given, is filled with how the sweep ran.
    """
    import torch

    from ..attack import Attack
    from ..engine.sweep import UNFILTERED, SweepOptions
    from ..engine.whitebox import attack_removals
    from ..models import layer_weights, unit_kind

    options = SweepOptions.of(options, **settings)
    n = len(y)
    stats = {} if stats is None else stats
    # one pass over clean and adversarial images: each mask is applied once
    variants, predicted = predict_variants(model, layer, torch.cat([x, x_adv]), options, stats)
    correct = {
        "clean": {k: (p[:n] == y).numpy() for k, p in predicted.items()},
        "adv": {k: (p[n:] == y).numpy() for k, p in predicted.items()},
    }
    if whitebox_epsilon is not None:
        removals: dict[str, Variant] = {}
        for v in variants:
            removals.setdefault(v.key, v)
        correct["adv_whitebox"] = attack_removals(
            model, layer, x, y, removals, whitebox_epsilon, attack or Attack("fgsm"), options, stats=stats
        )
    n_total = sum(w.numel() for w in layer_weights(model, layer))
    kind = unit_kind(model, layer)
    rows = []
    for v in variants:
        row = {
            "layer": layer,
            "unit_kind": kind,
            "filter": v.filter,
            "step": v.step,
            "alpha": v.alpha,
            "alpha_norm": v.step / options.steps,
            "n_removed": v.n_removed,
            "n_total": n_total,
            "n_images": n,
        }
        for reading in READINGS:
            found = correct.get(reading)
            row[f"acc_{reading}"] = np.nan if found is None else found[v.key].sum() / n
            row[f"acc_{reading}_unfiltered"] = np.nan if found is None else found[UNFILTERED].sum() / n
            row[f"correct_{reading}"] = None if found is None else pack_correct(found[v.key])
            row[f"correct_{reading}_unfiltered"] = None if found is None else pack_correct(found[UNFILTERED])
        rows.append(row)
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def predict_variants(
    model: nn.Module, layer: str, x: torch.Tensor, options: SweepOptions | None = None, stats: dict | None = None
) -> tuple[list[Variant], dict[str, torch.Tensor]]:
    """Every (filter, step) variant of ``layer`` and the predicted class of each image of
    ``x`` under each distinct one (keyed by ``Variant.key``; ``UNFILTERED`` included)."""
    from ..engine.sweep import UNFILTERED, MaskedLayer, SweepOptions, check_options, predict_removals

    options = options or SweepOptions()
    check_options(model, options)
    masked = MaskedLayer(model, layer, options.steps)
    variants, representatives = plan_variants(masked.values, options.steps, options.filters, dedup=options.method != "naive")
    log.info(
        "layer %s: %d weights, %d variants, %d distinct",
        layer,
        masked.values.numel(),
        len(variants),
        len(representatives | {UNFILTERED: None}),
    )
    return variants, predict_removals(model, layer, x, representatives, options, masked, stats)


# ------------------------------------------------------------ settings and config checks


def whitebox_layers(config: dict, model: str) -> list[str]:
    """The swept units of ``model`` that also get the white-box reading (``whitebox.layers``;
    ``attack.regenerate: true`` asks for every swept unit), in sweep order."""
    mapping = config["whitebox"]["layers"]
    choice = "all" if config["attack"]["regenerate"] else mapping.get(model, mapping["default"])
    swept = sweep_units(config, model)
    if choice == "none":
        return []
    if choice == "all":
        return swept
    structure = model_structure(config, model)
    if choice == "stages":
        chosen = set(structure.stage_layers()) | {GLOBAL_LAYER}
    elif choice == "ends":  # no Conv2d (an MLP factory): the last layer only
        chosen = {structure.first_conv, structure.layers[-1]} - {None}
    else:
        chosen = set(choice)
    return [unit for unit in swept if unit in chosen]


def whitebox_epochs(config: dict, model: str) -> list[int]:
    """The checkpoint epochs of ``model`` whose sweeps get the white-box reading
    (``whitebox.checkpoints``; ``attack.regenerate: true`` asks for all)."""
    epochs = model_epochs(config, model)
    return epochs if config["attack"]["regenerate"] or config["whitebox"]["checkpoints"] == "all" else epochs[-1:]


@dataclass(frozen=True)
class SweepSettings(Settings):
    """What changes a unit's sweep: ``steps`` (A) and ``filters``; for the units with the
    white-box reading (``whitebox_units``, at ``whitebox_epochs``) the ``whitebox`` attack
    (:class:`fragility.attack.Attack`'s keyword arguments)."""

    steps: int = 25
    filters: tuple[str, ...] = tuple(FILTERS)
    whitebox_units: tuple[str, ...] = ()
    whitebox_epochs: tuple[int, ...] = ()
    whitebox: dict | None = None

    @classmethod
    def from_config(cls, config: dict, model: str) -> SweepSettings:
        units = tuple(sorted(whitebox_layers(config, model)))  # sorted: reordering sweep.layers reruns nothing
        return cls(
            steps=config["sweep"]["steps"],
            filters=tuple(config["sweep"]["filters"]),
            whitebox_units=units,
            whitebox_epochs=tuple(whitebox_epochs(config, model)) if units else (),
            whitebox=attack_settings(config) if units else None,
        )

    def for_units(self, units: list[str]) -> SweepSettings:
        chosen = tuple(sorted(set(self.whitebox_units) & set(units)))
        if not chosen:
            return replace(self, whitebox_units=(), whitebox_epochs=(), whitebox=None)
        return replace(self, whitebox_units=chosen)


def check(config: dict, model: str) -> None:
    """``whitebox.layers`` names swept units; white-box labels for retraining have a layer to read."""
    mapping = config["whitebox"]["layers"]
    choice = mapping.get(model, mapping["default"])
    key = "whitebox.layers." + (model if model in mapping else "default")
    swept = set(sweep_units(config, model))
    for layer in choice if isinstance(choice, list) else []:
        if layer not in swept:
            fail(key, layer, f"not a swept unit of {model} (the white-box reading is part of the sweep; see sweep.layers)")
    retrain = config["retrain"]
    if retrain["label_attack"] == "whitebox" and retrain["label_score"] != "clean":
        if not [unit for unit in whitebox_layers(config, model) if unit != GLOBAL_LAYER]:
            fail(
                "retrain.label_attack",
                "whitebox",
                f"{model} has no layer with the white-box reading (whitebox.layers); its labels could freeze nothing",
            )


def _run(context: Context, unit: str, settings: SweepSettings) -> dict[str, pd.DataFrame]:
    from ..attack import Attack

    testset, adversarial = context.testset, context.adversarial
    options = replace(context.options, steps=settings.steps, filters=tuple(settings.filters))
    whitebox = unit in settings.whitebox_units and context.checkpoint.epoch in settings.whitebox_epochs
    table = sweep(
        context.model,
        unit,
        testset.x,
        testset.y,
        adversarial.x_adv,
        options,
        whitebox_epsilon=adversarial.epsilon if whitebox else None,
        attack=Attack(**settings.whitebox) if whitebox else None,
    )
    return {"sweep": table}


# ------------------------------------------------------------ pruning sensitivity

REMOVABLE_COLUMNS = ["dataset", "model", "seed", "epoch", "layer", "filter", "removable_clean", "removable_adv", "removable"]


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


# ------------------------------------------------------------ the paper's claims (METHOD §7, §15)

SEEDS = "seeds (each the mean over its checkpoints)"


def layer_fragile(layer_of: str):
    """The claim that the layer ``roles[layer_of]`` is fragile: the fraction of (seed,
    checkpoint) whose combined-response labels are fragile on both the clean and the
    adversarial score, per seed; holds when it is 1 at every seed."""

    def compute(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
        scores, layer = tables["scores"], options["roles"][options["model"]][layer_of]
        rows = scores[(scores["layer"] == layer) & (scores["filter"] == "combined")]
        if rows.empty:
            return undetermined(f"layer {layer} was not swept")
        fragile = (rows["label_clean"] == "fragile") & (rows["label_adv"] == "fragile")
        detail = f"layer {layer}; fragile (r_x and r_xε) at {int(fragile.sum())} of {len(rows)} (seed, checkpoint)"
        return fraction_finding(fragile, rows["seed"], 1.0, detail, note=confidence_note(rows))

    return compute


def batchnorm_rescue(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Over the middle conv layers followed by BatchNorm: the fraction of (layer, checkpoint)
    whose clean accuracy with every weight removed (h1 at step A) stays above 2× chance, per
    seed; holds when it is at least 0.5."""
    sweep, layers = tables["sweep"], options["roles"][options["model"]]["bn_convs"]
    chance = options["chance"][options["dataset"]]
    if not layers:
        return undetermined("no middle conv layer followed by BatchNorm")
    rows = sweep[(sweep["filter"] == "h1") & sweep["layer"].isin(layers)]
    rows = rows[rows["step"] == rows["step"].max()]
    if rows.empty:
        return undetermined("none of those layers was swept")
    detail = (
        f"{rows['layer'].nunique()} layers; accuracy with every weight removed: median {rows['acc_clean'].median():.3f}, "
        f"2× chance = {2 * chance:.3f}"
    )
    return fraction_finding(rows["acc_clean"] > 2 * chance, rows["seed"], 0.5, detail)


def selective_beats_regular(retrain: pd.DataFrame, accuracy: str, branch: str = "selective", claim: str | None = None) -> Finding:
    """``branch`` − regular accuracy, averaged over each seed's checkpoints (METHOD §15: one
    value per seed), over the seeds where the branch compares: holds when the mean is > 0 and
    the exact two-sided Wilcoxon signed-rank p < α. A (seed, checkpoint) whose branch froze
    nothing (regular by construction) or every labelled layer but at most one is not a
    comparison: it is counted out and said so."""
    rows = retrain[retrain["branch"] == branch]
    if rows.empty:
        return undetermined(f"no {branch} branch was retrained", claim=claim)
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
            f"; counted out: {int(nothing.sum())} (seed, checkpoint) froze no layer (identical to regular by construction), "
            f"{int(nearly_all.sum())} froze every labelled layer but at most one"
        )
    keep = rows.loc[~(nothing | nearly_all), ["seed", "epoch"]]
    frozen = f"froze {rows['n_frozen'].mean():.1f} layers on average; " if "n_frozen" in rows else ""
    if keep.empty:
        return undetermined(f"{reading}{frozen}no (seed, checkpoint) compares{counted_out}", claim=claim)
    differences = paired_differences(retrain.merge(keep, on=["seed", "epoch"]), branch)
    per_seed = per_seed_mean(differences[f"diff_{accuracy}"], differences["seed"])
    summary = summarise_differences(per_seed)
    holds = summary["mean_diff"] > 0 and summary["wilcoxon_p"] < ALPHA
    detail = f"{reading}{frozen}{accuracy} accuracy, {branch} − regular; Wilcoxon p = {summary['wilcoxon_p']:.3g}{counted_out}"
    return Finding(summary["mean_diff"], summary["n_pairs"], bool(holds), detail, summary["std_diff"], claim)


def selective_beats_regular_on(accuracy: str):
    """The claim on ``accuracy`` (clean, adv); on adversarial accuracy also one variant per
    adversarial reading whose labels chose a retrained branch (``retrain.label_attack`` and the
    other, where the sweep has it)."""

    def compute(tables: dict[str, pd.DataFrame], options: dict) -> list[Finding]:
        retrain = tables["retrain"]
        found = [selective_beats_regular(retrain, accuracy)]
        if accuracy == "adv" and "label_attack" in retrain:
            readings = retrain.dropna(subset=["label_attack"]).drop_duplicates("label_attack")
            found += [
                selective_beats_regular(retrain, "adv", row.branch, f"selective_beats_regular_adv_{row.label_attack}")
                for row in readings.itertuples()
            ]
        return found

    return compute


def global_scores_converge(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """The std over seeds of the global combined scores (r_x, r_xε, r_ε, averaged) at the last
    checkpoint against the first: value = their ratio; holds when it shrinks (< 1)."""
    scores = tables["scores"]
    rows = scores[(scores["layer"] == GLOBAL_LAYER) & (scores["filter"] == "combined")]
    epochs, seeds = sorted(rows["epoch"].unique()), rows["seed"].nunique()
    if seeds < 2 or len(epochs) < 2:
        return undetermined(f"needs 2 seeds and 2 checkpoints (has {seeds} and {len(epochs)})", seeds)
    spread = {
        e: rows[rows["epoch"] == e][["score_clean", "score_adv", "score_diff"]].std(ddof=1).mean()
        for e in (epochs[0], epochs[-1])
    }
    if not spread[epochs[0]] > 0:
        return undetermined(f"the global scores do not vary over seeds at epoch {epochs[0]}: nothing to shrink", seeds)
    ratio = spread[epochs[-1]] / spread[epochs[0]]
    detail = (
        f"std over seeds of the global combined scores: epoch {epochs[0]} {spread[epochs[0]]:.4f} -> "
        f"epoch {epochs[-1]} {spread[epochs[-1]]:.4f}"
    )
    return Finding(float(ratio), seeds, bool(ratio < 1), detail)


def transfer_inflates_adversarial_score(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Over the (seed, unit) with both readings (combined response, mean over checkpoints):
    the transferred r_xε minus the white-box r_xε, with a 95 % bootstrap interval of its mean
    (2,000 resamples); holds when the interval lies above 0: reusing the unfiltered network's
    attack makes units look more robust than they are."""
    scores = tables["scores"]
    rows = scores[scores["filter"] == "combined"]
    rows = rows.dropna(subset=["score_adv", "score_adv_whitebox"]) if "score_adv_whitebox" in rows else rows.iloc[:0]
    if rows.empty:
        return undetermined("no unit has the white-box reading (whitebox.layers)")
    rows = rows.assign(difference=rows["score_adv"] - rows["score_adv_whitebox"])
    per_unit = rows.groupby(["seed", "layer"])["difference"].mean()
    difference = per_unit.to_numpy()
    resampled = np.random.default_rng(0).choice(difference, size=(2000, len(difference))).mean(axis=1)
    low, high = np.quantile(resampled, [0.025, 0.975])
    labels = (
        f"; r_ε labels differ at {int((rows['label_diff'] != rows['label_diff_whitebox']).sum())} of {len(rows)}"
        if "label_diff_whitebox" in rows
        else ""
    )
    detail = (
        f"transferred r_xε − white-box r_xε: mean {difference.mean():+.3f} [95 % {low:+.3f}, {high:+.3f}] over "
        f"{len(difference)} (seed, unit) of {rows['layer'].nunique()} units{labels}"
    )
    spread = per_seed_std(per_unit.to_numpy(), per_unit.index.get_level_values("seed"))
    return Finding(float(difference.mean()), len(difference), bool(low > 0), detail, spread)


def global_scores_similar_across_datasets(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """The largest difference between datasets of a model's mean global combined scores (r_x,
    r_xε, r_ε; mean over seeds and checkpoints); holds when below ``scores.tau``."""
    scores = tables["scores"]
    rows = scores[(scores["layer"] == GLOBAL_LAYER) & (scores["filter"] == "combined")]
    means = rows.groupby("dataset")[["score_clean", "score_adv", "score_diff"]].mean()
    largest = float((means.max() - means.min()).max())
    detail = "; ".join(
        f"{d}: r_x {m.score_clean:.3f}, r_xε {m.score_adv:.3f}, r_ε {m.score_diff:.3f}" for d, m in means.iterrows()
    )
    return Finding(largest, len(means), largest < options["sweep"]["tau"], detail)


def scores_invariant_across_architectures(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """For one dataset and every pair of its models: the largest difference of their global
    combined scores (r_x, r_xε, r_ε; mean over seeds at each model's last checkpoint), and
    whether the first conv's and the last layer's labels (r_x, r_xε, r_ε; the most common over
    seeds at the last checkpoint) agree across the models; holds when the difference is
    below ``scores.tau`` and every label agrees (paper abstract: the scores identify the
    parameters invariant in characteristics across architectures)."""
    scores = tables["scores"][tables["scores"]["filter"] == "combined"]
    scores = scores[scores["epoch"] == scores.groupby("model")["epoch"].transform("max")]  # each model's last checkpoint
    columns = ["score_clean", "score_adv", "score_diff"]
    means = scores[scores["layer"] == GLOBAL_LAYER].groupby("model")[columns].mean()
    if len(means) < 2:
        return undetermined("needs the global scores of 2 models", len(means))
    largest = float((means.max() - means.min()).max())
    differing = []
    for role in ("first_conv", "last_layer"):
        for label in ("label_clean", "label_adv", "label_diff"):
            found = {
                model: rows[rows["layer"] == options["roles"][model][role]][label].mode()
                for model, rows in scores.groupby("model")
            }
            named = {model: modes.iloc[0] if len(modes) else None for model, modes in found.items()}
            if len(set(named.values())) > 1:
                differing.append(f"{role} {label.removeprefix('label_')}: " + ", ".join(f"{m} {v}" for m, v in named.items()))
    symbols = {"score_clean": "r_x", "score_adv": "r_xε", "score_diff": "r_ε"}
    detail = "; ".join(f"{m}: " + ", ".join(f"{symbols[c]} {row[c]:.3f}" for c in columns) for m, row in means.iterrows())
    detail += "; labels of the first conv and last layer " + ("agree" if not differing else "differ: " + "; ".join(differing))
    return Finding(largest, len(means), bool(largest < options["sweep"]["tau"] and not differing), detail)


def claim_options(config: dict) -> dict:
    """The config keys the synaptic claims read."""
    return {"tau": config["scores"]["tau"]}


WILCOXON = f"exact two-sided Wilcoxon signed-rank test on the per-seed means, p < {ALPHA}, and mean > 0"
CLAIMS = (
    ClaimSpec(
        "first_conv_fragile",
        "The first convolution is fragile, clean and adversarial, at every checkpoint (paper §5).",
        "fraction of (seed, checkpoint) labelled fragile on r_x and r_xε = 1",
        1,
        SEEDS,
        ("scores",),
        layer_fragile("first_conv"),
    ),
    ClaimSpec(
        "last_linear_fragile",
        "The last layer is fragile, clean and adversarial, at every checkpoint (paper §5).",
        "fraction of (seed, checkpoint) labelled fragile on r_x and r_xε = 1",
        1,
        SEEDS,
        ("scores",),
        layer_fragile("last_layer"),
    ),
    ClaimSpec(
        "batchnorm_rescue",
        "BatchNorm after a fully removed middle conv keeps the network far above chance (paper Fig. 11).",
        "fraction of (layer, checkpoint) above 2× chance with every weight removed ≥ 0.5",
        1,
        SEEDS,
        ("sweep",),
        batchnorm_rescue,
    ),
    ClaimSpec(
        "selective_beats_regular_adv",
        "Retraining with the fragile layers frozen beats regular retraining on adversarial accuracy (paper §5, Fig. 12).",
        WILCOXON,
        wilcoxon_min_n(),
        SEEDS,
        ("retrain",),
        selective_beats_regular_on("adv"),
    ),
    ClaimSpec(
        "selective_beats_regular_clean",
        "Retraining with the fragile layers frozen beats regular retraining on clean accuracy (paper §5).",
        WILCOXON,
        wilcoxon_min_n(),
        SEEDS,
        ("retrain",),
        selective_beats_regular_on("clean"),
    ),
    ClaimSpec(
        "global_scores_converge",
        "The global scores converge over training: their spread over seeds shrinks (paper Fig. 9).",
        "std over seeds of the global scores at the last checkpoint / at the first < 1",
        2,
        "seeds",
        ("scores",),
        global_scores_converge,
    ),
    ClaimSpec(
        "transfer_inflates_adversarial_score",
        "Reusing the unfiltered network's adversarial set makes units look more robust than attacking each variant (ours).",
        "95 % bootstrap interval of the mean transferred − white-box r_xε above 0",
        2,
        "(seed, unit) with both readings, each the mean over its checkpoints",
        ("scores",),
        transfer_inflates_adversarial_score,
    ),
    ClaimSpec(
        "global_scores_similar_across_datasets",
        "One architecture's global scores are similar on every dataset (paper abstract, Fig. 9).",
        "largest difference between datasets of the mean global r_x, r_xε, r_ε < scores.tau",
        2,
        "datasets",
        ("scores",),
        global_scores_similar_across_datasets,
        scope="across_datasets",
    ),
    ClaimSpec(
        "scores_invariant_across_architectures",
        "For a given dataset, the scores are invariant across architectures (paper abstract, Fig. 9–10).",
        "largest difference between models of the global r_x, r_xε, r_ε < scores.tau, and equal first-conv and last-layer labels",
        2,
        "models",
        ("scores",),
        scores_invariant_across_architectures,
        scope="across_models",
    ),
)

TEST = StressTest(
    name="sweep",
    description="Synaptic filters h1, h2, h3 at every step on one unit: clean, transferred adversarial (paper §2–4) and white-box.",
    tables={"sweep": RUN_COLUMNS + SWEEP_COLUMNS + ["attack"]},
    units=sweep_units,
    settings=SweepSettings,
    run=_run,
    check=check,
    claims=CLAIMS,
    claim_options=claim_options,
    summaries=(
        Summary(
            "removable",
            "Pruning sensitivity: per layer and filter, the largest fraction of weights removable within removable.max_loss.",
            ("sweep",),
            lambda tables, params: removable(tables["sweep"], params["max_loss"]),
            lambda config, model: {"max_loss": config["removable"]["max_loss"]},
        ),
    ),
    ranks=RankMeasures("scores", "filter", ("h1", "h2", "h3", "combined"), ("score_clean", "score_adv")),
    priority=5,
)
