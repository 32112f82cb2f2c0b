"""Selective backpropagation (paper §5): retrain only the layers that can take it.

From one checkpoint two continuations start with the same weights, optimizer state,
RNG and data order: ``regular`` trains every parameter, ``selective`` freezes the
layers labelled fragile (no gradient, not in the optimizer, so Adam's moments cannot
move them; their BatchNorm layers keep training).
"""

from __future__ import annotations

import logging

import pandas as pd
import torch
from torch import nn

from .attack import fgsm
from .data import Dataset
from .evaluation import accuracy
from .models import GLOBAL_LAYER, backbone, resolve_device
from .train import TrainConfig, make_optimizer, model_from_checkpoint, read_checkpoint, train_one_epoch

log = logging.getLogger(__name__)

BRANCHES = ("regular", "selective")
RETRAIN_COLUMNS = ["branch", "epoch", "retrain_epochs", "n_frozen", "frozen_layers", "acc_clean", "acc_adv", "epsilon"]


def layers_to_freeze(scores: pd.DataFrame, label_column: str = "label_diff", filter_name: str = "combined") -> list[str]:
    """Layers (not ``__global__``) whose ``label_column`` is fragile for ``filter_name``."""
    rows = scores[(scores["filter"] == filter_name) & (scores["layer"] != GLOBAL_LAYER)]
    return sorted(rows.loc[rows[label_column] == "fragile", "layer"].unique().tolist())


def freeze_layers(model: nn.Module, layers: list[str]) -> list[nn.Parameter]:
    """Stop gradients to every parameter of ``layers``; returns the frozen parameters."""
    net = backbone(model)
    frozen = [p for name in layers for p in net.get_submodule(name).parameters(recurse=False)]
    for parameter in frozen:
        parameter.requires_grad_(False)
    return frozen


def branch_from_checkpoint(state: dict, path, frozen_layers: list[str], device: torch.device):
    """Model, optimizer and data-order generator restored from ``state``, ``frozen_layers`` frozen."""
    model = model_from_checkpoint(state, path, device)
    config = TrainConfig(**state["train_config"])
    full = make_optimizer(model.parameters(), config)
    full.load_state_dict(state["optimizer_state"])
    freeze_layers(model, frozen_layers)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, config)
    for parameter in trainable:
        if parameter in full.state:
            optimizer.state[parameter] = full.state[parameter]
    torch.set_rng_state(state["rng_state"]["torch"].cpu())
    order = torch.Generator()
    order.set_state(state["rng_state"]["data_order"].cpu())
    return model, optimizer, order, config


def retrain(
    checkpoint_path,
    data: Dataset,
    frozen_layers: list[str],
    epochs: int,
    epsilon: float,
    clamp: bool = True,
    device: str = "auto",
    batch_size: int = 256,
) -> tuple[pd.DataFrame, dict[str, nn.Module]]:
    """Train both branches for ``epochs`` and evaluate them clean and under a fresh FGSM."""
    device = resolve_device(device)
    state = read_checkpoint(checkpoint_path, device)
    rows, models = [], {}
    for branch in BRANCHES:
        frozen = frozen_layers if branch == "selective" else []
        model, optimizer, order, config = branch_from_checkpoint(state, checkpoint_path, frozen, device)
        for epoch in range(1, epochs + 1):
            loss = train_one_epoch(model, optimizer, data, config.batch_size, order)
            log.info("%s branch, epoch %d/%d: loss %.4f", branch, epoch, epochs, loss)
        x_adv = fgsm(model, data.x_test, data.y_test, epsilon, clamp, batch_size)
        rows.append({
            "branch": branch, "epoch": state["epoch"], "retrain_epochs": epochs, "n_frozen": len(frozen),
            "frozen_layers": ",".join(frozen),
            "acc_clean": accuracy(model, data.x_test, data.y_test, batch_size),
            "acc_adv": accuracy(model, x_adv, data.y_test, batch_size),
            "epsilon": epsilon,
        })
        models[branch] = model
    return pd.DataFrame(rows, columns=RETRAIN_COLUMNS), models
