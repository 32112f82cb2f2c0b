"""Selective backpropagation (paper §5): retrain only the layers that can take it.

From one checkpoint the continuations start from their own copies of the same weights,
optimizer state, RNG and data order (:meth:`fragility.artifacts.Checkpoint.resume`):
``regular`` trains every parameter, ``selective`` freezes the layers labelled fragile (no
gradient, not in the optimizer, so Adam's moments cannot move them; their BatchNorm layers
keep training). With nothing frozen both branches are bit-identical, whichever runs first;
so a branch that freezes what an earlier one froze is not trained again but reported with
that branch's accuracies (``same_as``). The labels come from either adversarial reading of
the sweep (``retrain.label_attack``); ``selective_<reading>`` branches show the other one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
LABEL_ATTACKS = ("transfer", "whitebox")  # the sweep's adversarial readings (fragility.scoring.scores)
RETRAIN_COLUMNS = [
    "branch",
    "epoch",
    "retrain_epochs",
    "n_frozen",
    "frozen_layers",
    "acc_clean",
    "acc_adv",
    "epsilon",
    "attack",
    "label_attack",  # the reading whose labels chose the frozen layers (null for regular)
    "n_layers",  # the layers those labels covered: n_frozen of n_layers were frozen
    "same_as",  # the branch whose training this one repeats exactly (same frozen layers), else null
]


def label_column(score: str, label_attack: str = "transfer") -> str:
    """The score table's label column for ``score`` (clean, adv, diff) read from ``label_attack``."""
    if label_attack not in LABEL_ATTACKS:
        raise ValueError(f"unknown label_attack {label_attack!r}; choose from {LABEL_ATTACKS}")
    return f"label_{score}" + ("_whitebox" if label_attack == "whitebox" and score != "clean" else "")


def _layer_rows(scores: pd.DataFrame, filter_name: str) -> pd.DataFrame:
    """The rows of ``filter_name`` for layers: not ``__global__``, not blocks (a block's
    layers are frozen through their own labels)."""
    rows = scores[(scores["filter"] == filter_name) & (scores["layer"] != GLOBAL_LAYER)]
    return rows[rows["unit_kind"] == "layer"] if "unit_kind" in rows else rows


def layers_to_freeze(scores: pd.DataFrame, label_column: str = "label_diff", filter_name: str = "combined") -> list[str]:
    """Layers (not ``__global__`` or blocks) whose ``label_column`` is fragile for ``filter_name``."""
    rows = _layer_rows(scores, filter_name)
    return sorted(rows.loc[rows[label_column] == "fragile", "layer"].unique().tolist())


def labelled_layers(scores: pd.DataFrame, label_column: str, filter_name: str = "combined") -> list[str]:
    """Layers (not ``__global__`` or blocks) that have a ``label_column`` label: the ones it can freeze."""
    rows = _layer_rows(scores, filter_name)
    return sorted(rows.loc[rows[label_column].notna(), "layer"].unique().tolist())


@dataclass(frozen=True)
class SelectiveBranch:
    """One selective branch: the layers it freezes, the reading whose labels chose them and
    how many layers those labels covered."""

    frozen: list[str]
    label_attack: str
    n_layers: int


def selective_branches(
    scores: pd.DataFrame, label_score: str = "diff", label_filter: str = "combined", label_attack: str = "transfer"
) -> dict[str, SelectiveBranch]:
    """``selective`` from ``label_attack``'s labels, and ``selective_<other reading>`` where
    the other reading has labels of its own for some layer (clean labels are both readings')."""
    branches = {}
    for reading in (label_attack, *[r for r in LABEL_ATTACKS if r != label_attack]):
        column = label_column(label_score, reading)
        covered = labelled_layers(scores, column, label_filter) if column in scores else []
        if reading != label_attack and (not covered or column == label_column(label_score, label_attack)):
            continue
        name = "selective" if reading == label_attack else f"selective_{reading}"
        branches[name] = SelectiveBranch(layers_to_freeze(scores, column, label_filter), reading, len(covered))
    return branches


def retrain(
    checkpoint_path,
    data: Dataset,
    frozen_layers: list[str] | dict[str, list[str]],
    epochs: int,
    epsilon: float,
    clamp: bool = True,
    device: str = "auto",
    batch_size: int = 256,
    branches=BRANCHES,
    attack: Attack | None = None,
    reuse: bool = True,
) -> tuple[pd.DataFrame, dict[str, nn.Module]]:
    """Train each branch for ``epochs`` from the checkpoint and evaluate it clean and under a
    fresh ``attack`` (default FGSM with ``clamp``) made against that branch at ``epsilon``.

    ``frozen_layers`` is the selective branch's list, or ``branch -> list`` for any branches
    (``regular`` freezes nothing); ``branches`` sets the order (it changes nothing). A branch
    freezing what an earlier one froze repeats it exactly: its row is that branch's, with
    ``same_as`` naming it, and it is not trained again (``reuse=False`` trains it anyway:
    the tests check that the two are bit-identical)."""
    attack = attack or Attack("fgsm", clamp)
    plan = {"regular": [], "selective": frozen_layers} if isinstance(frozen_layers, list) else {"regular": [], **frozen_layers}
    order = [b for b in branches if b in plan] + [b for b in plan if b not in branches]
    device = resolve_device(device)
    checkpoint = Checkpoint.read(checkpoint_path, device)
    rows, models, trained = [], {}, {}
    for branch in order:
        frozen = sorted(plan[branch])
        same_as = trained.get(tuple(frozen)) if reuse else None
        if same_as is not None:
            log.info("%s branch freezes what %s froze: the same training, not repeated", branch, same_as)
            rows.append({**next(r for r in rows if r["branch"] == same_as), "branch": branch, "same_as": same_as})
            models[branch] = models[same_as]
            continue
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
                "same_as": None,
            }
        )
        models[branch], trained[tuple(frozen)] = state.model, branch
    return pd.DataFrame(rows).reindex(columns=RETRAIN_COLUMNS), models
