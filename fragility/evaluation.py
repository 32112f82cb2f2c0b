"""Top-1 accuracy on a whole test set, model in eval mode, batched on the model's device."""

from __future__ import annotations

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted labels (on CPU) for every row of ``x``."""
    if model.training:
        raise RuntimeError("evaluate in eval mode: BatchNorm in train mode overwrites its running statistics")
    device = model_device(model)
    return torch.cat([model(x[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Fraction of ``x`` classified as ``y``."""
    if len(y) == 0:
        raise ValueError("accuracy of an empty test set is undefined")
    return (predict(model, x, batch_size) == y.cpu()).double().mean().item()


def whitebox_accuracies(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack, epsilon: float, batch_size: int) -> dict:
    """``acc_clean``, and ``acc_adv`` under ``attack`` (a :class:`fragility.attack.Attack`)
    made against ``model`` itself at ``epsilon``: how a changed network is measured."""
    x_adv = attack(model, x, y, epsilon, batch_size)
    return {"acc_clean": accuracy(model, x, y, batch_size), "acc_adv": accuracy(model, x_adv, y, batch_size)}
