"""Training with Adam (paper §4.3), saving checkpoints that can be resumed exactly
(:class:`fragility.artifacts.Checkpoint` owns their format)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .artifacts import Checkpoint, CheckpointError, ModelSpec, TrainConfig, checkpoint_schedule, load_checkpoint
from .data import Dataset
from .evaluation import accuracy
from .models import resolve_device
from .progress import progress as bar

# ModelSpec, TrainConfig, CheckpointError and load_checkpoint live in fragility.artifacts; they
# are importable from here as before.
__all__ = [
    "CheckpointError",
    "ModelSpec",
    "TrainConfig",
    "checkpoint_schedule",
    "load_checkpoint",
    "cross_entropy",
    "train",
    "train_one_epoch",
]

log = logging.getLogger(__name__)


def cross_entropy(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss of the paper's runs (``x`` unused; a distillation loss needs it)."""
    return F.cross_entropy(logits, y)


def train_one_epoch(
    model: nn.Module,
    optimizer,
    data: Dataset,
    batch_size: int,
    order: torch.Generator,
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = cross_entropy,
    train_mode: Callable[[nn.Module], object] = nn.Module.train,
    inputs: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    progress: bool | None = False,
) -> float:
    """One pass over the shuffled training set; returns the mean loss. ``loss(logits, x, y)``
    and ``train_mode(model)`` (which modules train: BatchNorm statistics move only there)
    default to cross-entropy and the whole network; ``inputs(model, x, y)``, when given,
    replaces each batch's images before the forward pass (adversarial training).
    ``progress``: a bar over the batches (None: where a person watches)."""
    train_mode(model)
    device = next(model.parameters()).device
    permutation = torch.randperm(len(data.y_train), generator=order)
    total = 0.0
    for i in bar(range(0, len(permutation), batch_size), "batches", enabled=progress, leave=False):
        index = permutation[i : i + batch_size]
        x, y = data.x_train[index].to(device), data.y_train[index].to(device)
        if inputs is not None:
            x = inputs(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        batch_loss = loss(model(x), x, y)
        batch_loss.backward()
        optimizer.step()
        total += batch_loss.item() * len(index)
    model.eval()
    return total / len(permutation)


def train(
    spec: ModelSpec,
    data: Dataset,
    seed: int,
    config: TrainConfig,
    checkpoint_path: Callable[[int], str | Path],
    device: str = "auto",
    progress: bool | None = None,
) -> pd.DataFrame:
    """Train from scratch, save a checkpoint every ``checkpoint_every`` epochs; return the log.
    ``progress``: bars over the epochs and batches (None: where a person watches)."""
    torch.manual_seed(seed)
    model = spec.build().to(resolve_device(device))
    optimizer = config.optimizer(model.parameters())
    order = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in bar(range(1, config.epochs + 1), "epochs", enabled=progress):
        started = time.perf_counter()
        loss = train_one_epoch(model, optimizer, data, config.batch_size, order, progress=progress)
        row = {
            "epoch": epoch,
            "loss": loss,
            "train_accuracy": accuracy(model, data.x_train, data.y_train, config.batch_size * 2),
            "test_accuracy": accuracy(model, data.x_test, data.y_test, config.batch_size * 2),
            "seconds": time.perf_counter() - started,
        }
        rows.append(row)
        log.info(
            "epoch %d/%d: loss %.4f, train %.4f, test %.4f (%.1f s)",
            epoch,
            config.epochs,
            loss,
            row["train_accuracy"],
            row["test_accuracy"],
            row["seconds"],
        )
        if epoch in config.checkpoint_epochs():
            Checkpoint.capture(model, optimizer, epoch, seed, order, spec, config).save(checkpoint_path(epoch))
    return pd.DataFrame(rows)
