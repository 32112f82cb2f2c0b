"""Selective backpropagation (paper §5): retrain only the layers that can take it.

From one checkpoint two continuations start from their own copies of the same weights,
optimizer state, RNG and data order (:meth:`fragility.artifacts.Checkpoint.resume`):
``regular`` trains every parameter, ``selective`` freezes the layers labelled fragile (no
gradient, not in the optimizer, so Adam's moments cannot move them; their BatchNorm layers
keep training). With nothing frozen both branches are bit-identical, whichever runs first.
"""

from __future__ import annotations

import logging

import pandas as pd
from torch import nn

from .artifacts import Checkpoint
from .attack import Attack
from .data import Dataset
from .evaluation import accuracy
from .models import GLOBAL_LAYER, freeze_layers, resolve_device  # noqa: F401  (freeze_layers: public API)
from .train import train_one_epoch

log = logging.getLogger(__name__)

BRANCHES = ("regular", "selective")
RETRAIN_COLUMNS = ["branch", "epoch", "retrain_epochs", "n_frozen", "frozen_layers", "acc_clean", "acc_adv", "epsilon", "attack"]


def layers_to_freeze(scores: pd.DataFrame, label_column: str = "label_diff", filter_name: str = "combined") -> list[str]:
    """Layers (not ``__global__``) whose ``label_column`` is fragile for ``filter_name``."""
    rows = scores[(scores["filter"] == filter_name) & (scores["layer"] != GLOBAL_LAYER)]
    return sorted(rows.loc[rows[label_column] == "fragile", "layer"].unique().tolist())


def retrain(
    checkpoint_path,
    data: Dataset,
    frozen_layers: list[str],
    epochs: int,
    epsilon: float,
    clamp: bool = True,
    device: str = "auto",
    batch_size: int = 256,
    branches=BRANCHES,
    attack: Attack | None = None,
) -> tuple[pd.DataFrame, dict[str, nn.Module]]:
    """Train each branch for ``epochs`` from the checkpoint and evaluate it clean and under a
    fresh ``attack`` (default FGSM with ``clamp``) made against that branch at ``epsilon``.
    ``branches`` sets the order (it changes nothing)."""
    attack = attack or Attack("fgsm", clamp)
    device = resolve_device(device)
    checkpoint = Checkpoint.read(checkpoint_path, device)
    rows, models = [], {}
    for branch in branches:
        frozen = frozen_layers if branch == "selective" else []
        state = checkpoint.resume(frozen, device)
        for epoch in range(1, epochs + 1):
            loss = train_one_epoch(state.model, state.optimizer, data, state.config.batch_size, state.order)
            log.info("%s branch, epoch %d/%d: loss %.4f", branch, epoch, epochs, loss)
        x_adv = attack(state.model, data.x_test, data.y_test, epsilon, batch_size)
        rows.append(
            {
                "branch": branch,
                "epoch": checkpoint.epoch,
                "retrain_epochs": epochs,
                "n_frozen": len(frozen),
                "frozen_layers": ",".join(frozen),
                "acc_clean": accuracy(state.model, data.x_test, data.y_test, batch_size),
                "acc_adv": accuracy(state.model, x_adv, data.y_test, batch_size),
                "epsilon": epsilon,
                "attack": attack.name,
            }
        )
        models[branch] = state.model
    return pd.DataFrame(rows, columns=RETRAIN_COLUMNS), models
