"""Training with Adam (paper §4.3) and checkpoints that can be resumed exactly.

A checkpoint is a plain dict of tensors and numbers — model and optimizer state, epoch,
RNG states (global and data order) and the specs that made it — so it loads with
``torch.load(..., weights_only=True)`` and can never run code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset
from .evaluation import accuracy
from .io import save_torch
from .models import build_model, resolve_device

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, foreign or from another architecture."""


@dataclass
class ModelSpec:
    """Everything :func:`fragility.models.build_model` needs to rebuild a network."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int | None
    mean: list[float]
    std: list[float]
    stem: str = "plain"
    init: str = "kaiming_uniform"

    @classmethod
    def for_dataset(cls, name: str, data: Dataset, image_size=None, stem="plain", init="kaiming_uniform") -> "ModelSpec":
        return cls(name, data.num_classes, data.in_channels, image_size, data.mean, data.std, stem, init)

    def build(self) -> nn.Module:
        return build_model(self.name, self.num_classes, self.in_channels, self.image_size, self.mean, self.std, self.stem, self.init)


@dataclass
class TrainConfig:
    epochs: int
    checkpoint_every: int
    batch_size: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    extra: dict = field(default_factory=dict)  # the run's identity and config, stored as given

    def checkpoint_epochs(self) -> list[int]:
        return checkpoint_schedule(self.epochs, self.checkpoint_every)


def checkpoint_schedule(epochs: int, every: int) -> list[int]:
    """The epochs after which a checkpoint is saved."""
    return list(range(every, epochs + 1, every))


def make_optimizer(params, config: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


def train_one_epoch(model: nn.Module, optimizer, data: Dataset, batch_size: int, order: torch.Generator) -> float:
    """One pass over the shuffled training set; returns the mean loss."""
    model.train()
    device = next(model.parameters()).device
    permutation = torch.randperm(len(data.y_train), generator=order)
    total = 0.0
    for i in range(0, len(permutation), batch_size):
        index = permutation[i : i + batch_size]
        x, y = data.x_train[index].to(device), data.y_train[index].to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(index)
    model.eval()
    return total / len(permutation)


def train(
    spec: ModelSpec,
    data: Dataset,
    seed: int,
    config: TrainConfig,
    checkpoint_path: Callable[[int], str | Path],
    device: str = "auto",
) -> pd.DataFrame:
    """Train from scratch, save a checkpoint every ``checkpoint_every`` epochs; return the log."""
    torch.manual_seed(seed)
    model = spec.build().to(resolve_device(device))
    optimizer = make_optimizer(model.parameters(), config)
    order = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        loss = train_one_epoch(model, optimizer, data, config.batch_size, order)
        row = {
            "epoch": epoch, "loss": loss,
            "train_accuracy": accuracy(model, data.x_train, data.y_train, config.batch_size * 2),
            "test_accuracy": accuracy(model, data.x_test, data.y_test, config.batch_size * 2),
            "seconds": time.perf_counter() - started,
        }
        rows.append(row)
        log.info("epoch %d/%d: loss %.4f, train %.4f, test %.4f (%.1f s)", epoch, config.epochs, loss, row["train_accuracy"], row["test_accuracy"], row["seconds"])
        if epoch in config.checkpoint_epochs():
            save_checkpoint(checkpoint_path(epoch), model, optimizer, epoch, seed, order, spec, config)
    return pd.DataFrame(rows)


def save_checkpoint(path, model, optimizer, epoch, seed, order, spec: ModelSpec, config: TrainConfig) -> None:
    state = {
        "format": "fragility-checkpoint-1",
        "model_spec": asdict(spec),
        "train_config": asdict(config),
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "epoch": epoch,
        "seed": seed,
        "rng_state": {"torch": torch.get_rng_state(), "data_order": order.get_state()},
    }
    save_torch(state, path)


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The checkpoint dict, loaded without ever unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a loadable fragility checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    if not isinstance(state, dict) or state.get("format") != "fragility-checkpoint-1":
        raise CheckpointError(f"{path}: not a fragility checkpoint (no 'format: fragility-checkpoint-1' entry)")
    return state


def model_from_checkpoint(state: dict, path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    spec = ModelSpec(**state["model_spec"])
    model = spec.build().to(device)
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: weights do not fit architecture {spec.name} ({detail})") from exc
    return model.eval()


def load_checkpoint(path: str | Path, device: str = "cpu") -> nn.Module:
    """The checkpoint's network in eval mode, normalisation inside, on ``device``."""
    device = resolve_device(device)
    return model_from_checkpoint(read_checkpoint(path, device), path, device)
