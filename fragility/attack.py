"""FGSM in pixel space and the relative-attack ε search (paper §4.3, Def. 7–9).

FGSM's direction sign(∇x CE) does not depend on ε, so it is computed once per test set
(:func:`gradient_sign`) and every ε of the search costs one forward pass.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .evaluation import model_device, predict

log = logging.getLogger(__name__)


def gradient_sign(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """sign(∇x CE(f(x), y)) per input, model in eval mode, true labels."""
    if model.training:
        raise RuntimeError("attack the model in eval mode")
    device = model_device(model)
    signs = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device).requires_grad_(True)
        loss = F.cross_entropy(model(xb), y[i : i + batch_size].to(device), reduction="sum")
        (grad,) = torch.autograd.grad(loss, xb)
        signs.append(grad.sign().cpu())
    return torch.cat(signs)


def perturb(x: torch.Tensor, sign: torch.Tensor, epsilon: float, clamp: bool = True) -> torch.Tensor:
    """x + ε·sign, clamped to the pixel range [0, 1] unless ``clamp`` is False."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    x_adv = x + epsilon * sign
    return x_adv.clamp_(0.0, 1.0) if clamp else x_adv


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, clamp: bool = True, batch_size: int = 256) -> torch.Tensor:
    """Untargeted one-step FGSM adversarial examples of ``x`` against ``model``."""
    return perturb(x, gradient_sign(model, x, y, batch_size), epsilon, clamp)


@dataclass
class EpsilonSearch:
    """What the ε search reached, with the paper's Def. 7 and Def. 8 checks."""

    epsilon: float
    acc_clean: float
    acc_adv: float
    ratio: float
    target: float
    reached: bool
    iterations: int
    def7_holds: bool  # ε > 0 misclassifies some correctly classified input
    def8_holds: bool  # accuracy at the ε used stays above chance 1/K

    def as_row(self) -> dict:
        return asdict(self)


def search_epsilon(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: float = 0.5,
    tol: float = 0.02,
    eps_min: float = 1e-3,
    eps_max: float = 1.0,
    grid_points: int = 12,
    max_iter: int = 20,
    clamp: bool = True,
    num_classes: int | None = None,
    batch_size: int = 256,
) -> EpsilonSearch:
    """Find ε with acc(X_ε) ≈ target·acc(X): a log grid brackets it, bisection refines.

    Accuracy is not monotone in ε for FGSM, so the grid is walked upwards and the first
    bracket is refined. When no ε in [eps_min, eps_max] brackets the target the closest ε
    tried is returned with ``reached=False``.
    """
    if not 0 < target < 1:
        raise ValueError(f"target must lie in (0, 1), got {target}")
    if not 0 < eps_min < eps_max:
        raise ValueError(f"need 0 < eps_min < eps_max, got {eps_min}, {eps_max}")
    clean_pred = predict(model, x, batch_size)
    acc_clean = (clean_pred == y).double().mean().item()
    if acc_clean == 0:
        raise ValueError("the model classifies no test input correctly: a relative attack is undefined")
    sign = gradient_sign(model, x, y, batch_size)
    tried: dict[float, tuple[float, torch.Tensor]] = {}

    def ratio_at(eps: float) -> float:
        if eps not in tried:
            pred = predict(model, perturb(x, sign, eps, clamp), batch_size)
            tried[eps] = ((pred == y).double().mean().item(), pred)
            log.info("epsilon %.6g: adversarial accuracy %.4f (ratio %.4f)", eps, tried[eps][0], tried[eps][0] / acc_clean)
        return tried[eps][0] / acc_clean

    grid = np.geomspace(eps_min, eps_max, grid_points).tolist()
    bracket = None
    for lo, hi in zip([None] + grid, grid):
        if ratio_at(hi) <= target:
            bracket = (0.0 if lo is None else lo, hi)  # ε = 0 keeps ratio 1 > target
            break
    best = min(sorted(tried, reverse=True), key=lambda e: abs(ratio_at(e) - target))  # ties: the strongest
    iterations = 0
    if bracket and abs(ratio_at(best) - target) > tol:
        lo, hi = bracket
        while iterations < max_iter:
            iterations += 1
            mid = 0.5 * (lo + hi)
            r = ratio_at(mid)
            if abs(r - target) < abs(ratio_at(best) - target):
                best = mid
            if abs(r - target) <= tol:
                break
            lo, hi = (mid, hi) if r > target else (lo, mid)
    acc_adv, adv_pred = tried[best]
    k = num_classes or int(y.max()) + 1
    return EpsilonSearch(
        epsilon=best, acc_clean=acc_clean, acc_adv=acc_adv, ratio=acc_adv / acc_clean, target=target,
        reached=abs(acc_adv / acc_clean - target) <= tol, iterations=iterations,
        def7_holds=bool(((clean_pred == y) & (adv_pred != y)).any()),
        def8_holds=acc_adv > 1.0 / k,
    )
