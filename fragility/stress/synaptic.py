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

import pandas as pd
import torch
from torch import nn

from ..attack import Attack
from ..engine.sweep import UNFILTERED, MaskedLayer, SweepOptions, check_options, predict_removals
from ..evaluation import predict
from ..filters import FILTERS, ThresholdRange, removal_mask, threshold
from ..models import layer_weights
from ..scoring.bootstrap import pack_correct
from .base import RUN_COLUMNS, Context, RankMeasures, StressTest

log = logging.getLogger(__name__)

SWEEP_COLUMNS = [
    "layer",
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
    regenerate_epsilon: float | None = None,
    attack: Attack | None = None,
    clamp: bool = True,
    stats: dict | None = None,
    **settings,
) -> pd.DataFrame:
    """One row per (filter, step): thresholds, counts and clean/adversarial accuracies.

    The sweep's settings come either as ``options`` or as :class:`SweepOptions` keywords
    (``steps=10, method="exact"``), never both. ``model`` must be in eval mode; it is left
    exactly as it was found. With ``regenerate_epsilon`` every filtered network is attacked
    afresh (``attack``, default FGSM with ``clamp``, at that ε, white-box) instead of being
    scored on the given ``x_adv``. ``stats``, when given, is filled with how the sweep ran
    (:func:`fragility.engine.sweep.predict_removals`).
    """
    options = SweepOptions.of(options, **settings)
    n = len(y)
    if regenerate_epsilon is None:
        # one pass over clean and adversarial images: each mask is applied once
        variants, predicted = predict_variants(model, layer, torch.cat([x, x_adv]), options, stats)
        correct_clean = {k: (p[:n] == y).numpy() for k, p in predicted.items()}
        correct_adv = {k: (p[n:] == y).numpy() for k, p in predicted.items()}
    else:
        variants, predicted = predict_variants(model, layer, x, options, stats)
        correct_clean = {k: (p == y).numpy() for k, p in predicted.items()}
        attack = attack or Attack("fgsm", clamp)
        correct_adv = _correct_reattacked(
            model, layer, variants, x, y, regenerate_epsilon, attack, options.steps, options.batch_size
        )
    n_total = sum(w.numel() for w in layer_weights(model, layer))
    bits = {k: (pack_correct(correct_clean[k]), pack_correct(correct_adv[k])) for k in correct_clean}
    rows = [
        {
            "layer": layer,
            "filter": v.filter,
            "step": v.step,
            "alpha": v.alpha,
            "alpha_norm": v.step / options.steps,
            "n_removed": v.n_removed,
            "n_total": n_total,
            "acc_clean": correct_clean[v.key].sum() / n,
            "acc_adv": correct_adv[v.key].sum() / n,
            "acc_clean_unfiltered": correct_clean[UNFILTERED].sum() / n,
            "acc_adv_unfiltered": correct_adv[UNFILTERED].sum() / n,
            "n_images": n,
            "correct_clean": bits[v.key][0],
            "correct_adv": bits[v.key][1],
            "correct_clean_unfiltered": bits[UNFILTERED][0],
            "correct_adv_unfiltered": bits[UNFILTERED][1],
        }
        for v in variants
    ]
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def predict_variants(
    model: nn.Module, layer: str, x: torch.Tensor, options: SweepOptions | None = None, stats: dict | None = None
) -> tuple[list[Variant], dict[str, torch.Tensor]]:
    """Every (filter, step) variant of ``layer`` and the predicted class of each image of
    ``x`` under each distinct one (keyed by ``Variant.key``; ``UNFILTERED`` included)."""
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


def _correct_reattacked(model, layer, variants, x, y, epsilon, attack: Attack, steps, batch_size) -> dict:
    """Per distinct variant, which images stay correct under ``attack`` made against that variant."""
    masked = MaskedLayer(model, layer, steps)
    correct = {}
    try:
        for variant in [None] + variants:
            key = UNFILTERED if variant is None else variant.key
            if key not in correct:
                masked.apply(variant)
                x_adv = attack(model, x, y, epsilon, batch_size)
                correct[key] = (predict(model, x_adv, batch_size) == y).numpy()
    finally:
        masked.restore()
    return correct


def _sweep_params(config: dict, model: str) -> dict:
    from ..config import attack_settings

    return {
        "steps": config["sweep"]["steps"],
        "filters": config["sweep"]["filters"],
        "regenerate": attack_settings(config) if config["attack"]["regenerate"] else None,
    }


def _sweep_units(config: dict, model: str) -> list[str]:
    from ..config import sweep_layers

    return sweep_layers(config, model)


def _run(context: Context, unit: str, params: dict) -> dict[str, pd.DataFrame]:
    regenerate, tests, adversarial = params["regenerate"], context.tests, context.adversarial
    options = replace(context.options, steps=params["steps"], filters=tuple(params["filters"]))
    table = sweep(
        context.model,
        unit,
        tests.x,
        tests.y,
        adversarial.x_adv,
        options,
        regenerate_epsilon=adversarial.epsilon if regenerate else None,
        attack=Attack(**regenerate) if regenerate else None,
    )
    return {"sweep": table}


TEST = StressTest(
    name="sweep",
    description="Synaptic filters h1, h2, h3 at every step on one unit, clean and adversarial (paper §2–4).",
    tables={"sweep": RUN_COLUMNS + SWEEP_COLUMNS + ["attack"]},
    units=_sweep_units,
    params=_sweep_params,
    run=_run,
    ranks=RankMeasures("scores", "filter", ("h1", "h2", "h3", "combined"), ("score_clean", "score_adv")),
    priority=5,
)
