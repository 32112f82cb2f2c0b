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

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attack import Attack
from ..engine.sweep import UNFILTERED, MaskedLayer, SweepOptions, check_options, predict_removals
from ..engine.whitebox import attack_removals
from ..filters import FILTERS, ThresholdRange, removal_mask, threshold
from ..models import layer_weights, unit_kind
from ..scoring.bootstrap import pack_correct
from .base import RUN_COLUMNS, Context, RankMeasures, StressTest

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


def _sweep_params(config: dict, model: str, units: list[str]) -> dict:
    from ..config import attack_settings, whitebox_epochs, whitebox_layers

    whitebox = sorted(set(whitebox_layers(config, model)) & set(units))  # sorted: reordering sweep.layers reruns nothing
    return {
        "steps": config["sweep"]["steps"],
        "filters": config["sweep"]["filters"],
        "whitebox_units": whitebox,
        "whitebox_epochs": whitebox_epochs(config, model) if whitebox else [],
        "whitebox": attack_settings(config) if whitebox else None,
    }


def _sweep_units(config: dict, model: str) -> list[str]:
    from ..config import sweep_units

    return sweep_units(config, model)


def _run(context: Context, unit: str, params: dict) -> dict[str, pd.DataFrame]:
    tests, adversarial = context.tests, context.adversarial
    options = replace(context.options, steps=params["steps"], filters=tuple(params["filters"]))
    whitebox = unit in params["whitebox_units"] and context.checkpoint.epoch in params["whitebox_epochs"]
    table = sweep(
        context.model,
        unit,
        tests.x,
        tests.y,
        adversarial.x_adv,
        options,
        whitebox_epsilon=adversarial.epsilon if whitebox else None,
        attack=Attack(**params["whitebox"]) if whitebox else None,
    )
    return {"sweep": table}


TEST = StressTest(
    name="sweep",
    description="Synaptic filters h1, h2, h3 at every step on one unit: clean, transferred adversarial (paper §2–4) and white-box.",
    tables={"sweep": RUN_COLUMNS + SWEEP_COLUMNS + ["attack"]},
    units=_sweep_units,
    params=_sweep_params,
    run=_run,
    ranks=RankMeasures("scores", "filter", ("h1", "h2", "h3", "combined"), ("score_clean", "score_adv")),
    priority=5,
)
