"""Attacks in pixel space — FGSM (the paper's) and L∞ PGD — and the relative-attack ε
search (paper §4.3, Def. 7–9) for either.

FGSM's direction sign(∇x CE) does not depend on ε, so it is computed once per test set
(:func:`gradient_sign`) and every ε of an FGSM search costs one forward pass. PGD restarts
from x for every ε. :class:`Attack` is the one interface the adversarial stage, the sweep's
white-box reading and the retraining evaluation call; :data:`ATTACKS` registers each
method once (a new attack is one function, one entry and a schema block for its options
under ``attack.<name>``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .evaluation import model_device, predict

log = logging.getLogger(__name__)


def _batch_gradient_sign(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sign(∇x CE(f(x), y)) of one batch on the model's device (summed loss: no batch scaling)."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


def _check_eval(model: nn.Module) -> None:
    if model.training:
        raise RuntimeError("attack the model in eval mode")


def gradient_sign(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """sign(∇x CE(f(x), y)) per input, model in eval mode, true labels."""
    _check_eval(model)
    device = model_device(model)
    return torch.cat(
        [
            _batch_gradient_sign(model, x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)).cpu()
            for i in range(0, len(x), batch_size)
        ]
    )


def perturb(x: torch.Tensor, sign: torch.Tensor, epsilon: float, clamp: bool = True) -> torch.Tensor:
    """x + ε·sign, clamped to the pixel range [0, 1] unless ``clamp`` is False."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    x_adv = x + epsilon * sign
    return x_adv.clamp_(0.0, 1.0) if clamp else x_adv


def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, clamp: bool = True, batch_size: int = 256
) -> torch.Tensor:
    """Untargeted one-step FGSM adversarial examples of ``x`` against ``model``."""
    return perturb(x, gradient_sign(model, x, y, batch_size), epsilon, clamp)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    clamp: bool = True,
    seed: int = 0,
    batch_size: int = 256,
) -> torch.Tensor:
    """Untargeted L∞ PGD: x⁰ = x (+ U(−ε, ε) with ``random_start``, drawn from a generator
    seeded by ``seed``), x^{t+1} = Π(x^t + α·sign(∇x CE(f(x^t), y))) with Π the projection
    onto the ε-ball around x, then onto [0, 1] (unless ``clamp`` is False);
    α = ``step_size`` or 2.5·ε/steps. Model in eval mode, true labels."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    if steps < 1:
        raise ValueError(f"PGD needs steps >= 1, got {steps}")
    _check_eval(model)
    alpha = 2.5 * epsilon / steps if step_size is None else step_size
    device = model_device(model)
    start = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
        start = _project(x + (2 * noise - 1) * epsilon, x, epsilon, clamp)
    adversarial = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
        current = start[i : i + batch_size].to(device)
        for _ in range(steps):
            current = _project(current + alpha * _batch_gradient_sign(model, current, yb), xb, epsilon, clamp)
        adversarial.append(current.cpu())
    return torch.cat(adversarial)


def _project(candidate: torch.Tensor, x: torch.Tensor, epsilon: float, clamp: bool) -> torch.Tensor:
    """Onto the L∞ ball of radius ε around x, then onto the pixel range [0, 1]."""
    projected = x + (candidate - x).clamp(-epsilon, epsilon)
    return projected.clamp(0.0, 1.0) if clamp else projected


@dataclass(frozen=True)
class AttackMethod:
    """One attack as the tool knows it: ``make(model, x, y, epsilon, clamp, batch_size,
    **options)`` returns the adversarial examples; ``options`` are its settings (the config
    keys under ``attack.<name>``) with their defaults; ``label(options)`` is how tables and
    figures name it; ``direction``, when the attack's direction does not depend on ε
    (FGSM's sign of the gradient), lets the ε search compute it once per test set;
    ``gradient_step`` says the attack is one step x + ε·sign(∇x CE) from x, which the
    white-box sweep can take on a cached prefix graph (:mod:`fragility.engine.whitebox`)."""

    make: Callable[..., torch.Tensor]
    label: Callable[[dict], str]
    options: dict = field(default_factory=dict)
    direction: Callable[..., torch.Tensor] | None = None
    gradient_step: bool = False


def _fgsm(model, x, y, epsilon, clamp, batch_size):
    return fgsm(model, x, y, epsilon, clamp, batch_size)


def _pgd(model, x, y, epsilon, clamp, batch_size, **options):
    return pgd(model, x, y, epsilon, clamp=clamp, batch_size=batch_size, **options)


ATTACKS: dict[str, AttackMethod] = {
    "fgsm": AttackMethod(_fgsm, lambda options: "fgsm", direction=gradient_sign, gradient_step=True),
    "pgd": AttackMethod(
        _pgd,
        lambda options: f"pgd-{options.get('steps', 10)}",
        options={"steps": 10, "step_size": None, "random_start": True, "seed": 0},
    ),
}


@dataclass(frozen=True)
class Attack:
    """The attack every stage uses: ``Attack("fgsm")`` (the paper's) or ``Attack("pgd", ...)``.

    ``options`` are the method's settings (:data:`ATTACKS`; for PGD :func:`pgd`'s steps,
    step_size, random_start, seed).
    """

    method: str = "fgsm"
    clamp: bool = True
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in ATTACKS:
            raise ValueError(f"unknown attack {self.method!r}; choose from {tuple(ATTACKS)}")
        allowed = set(ATTACKS[self.method].options)
        unknown = sorted(set(self.options) - allowed)
        if unknown:
            raise ValueError(f"attack {self.method!r} takes no option {unknown[0]!r}; allowed: {sorted(allowed) or 'none'}")

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, batch_size: int = 256) -> torch.Tensor:
        """Adversarial examples of ``x`` against ``model`` at ``epsilon``."""
        return ATTACKS[self.method].make(model, x, y, epsilon, self.clamp, batch_size, **self.options)

    @property
    def name(self) -> str:
        """How tables and figures name the attack: ``fgsm``, ``pgd-<steps>``."""
        return ATTACKS[self.method].label(self.options)


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
    attack: str = "fgsm",
    attack_options: dict | None = None,
) -> EpsilonSearch:
    """Find ε with acc(X_ε) ≈ target·acc(X): a log grid brackets it, bisection refines.

    Accuracy is not monotone in ε for FGSM, so the grid is walked upwards and the first
    bracket is refined. When no ε in [eps_min, eps_max] brackets the target the closest ε
    tried is returned with ``reached=False``. ``attack`` names an entry of :data:`ATTACKS`
    (with ``attack_options`` as :class:`Attack` takes them).
    """
    chosen = Attack(attack, clamp, dict(attack_options or {}))
    if not 0 < target < 1:
        raise ValueError(f"target must lie in (0, 1), got {target}")
    if not 0 < eps_min < eps_max:
        raise ValueError(f"need 0 < eps_min < eps_max, got {eps_min}, {eps_max}")
    clean_pred = predict(model, x, batch_size)
    acc_clean = (clean_pred == y).double().mean().item()
    if acc_clean == 0:
        raise ValueError("the model classifies no test input correctly: a relative attack is undefined")
    direction = ATTACKS[chosen.method].direction
    sign = direction(model, x, y, batch_size) if direction is not None else None
    tried: dict[float, tuple[float, torch.Tensor]] = {}

    def ratio_at(eps: float) -> float:
        if eps not in tried:
            x_adv = perturb(x, sign, eps, clamp) if sign is not None else chosen(model, x, y, eps, batch_size)
            pred = predict(model, x_adv, batch_size)
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
        epsilon=best,
        acc_clean=acc_clean,
        acc_adv=acc_adv,
        ratio=acc_adv / acc_clean,
        target=target,
        reached=abs(acc_adv / acc_clean - target) <= tol,
        iterations=iterations,
        def7_holds=bool(((clean_pred == y) & (adv_pred != y)).any()),
        def8_holds=acc_adv > 1.0 / k,
    )
