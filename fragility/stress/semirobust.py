"""Subnetwork robustness (semirobustness; Craig, Andle, Nowak & Yasaei Sekeh 2023; METHOD §14):
does a robust first part f_a make the whole network robust?

A split k cuts the network at its k-th filterable layer from the end: f_b holds every module
registered at or after that layer (the last k Conv2d/Linear layers and what follows them), f_a
the rest. F* is the checkpoint network adversarially trained as a whole (Madry et al.: the
loss on adversarial examples only); it must be robust — right under attack on more test
images than the normal network, by an exact one-sided McNemar test — or every row of the
analysis is flagged not usable. The semirobust network F_sr takes f_a from F* and f_b from the
checkpoint; fine-tuning then trains f_b adversarially, in several trials with different data
orders, as the authors did: f_a out of the optimizer and written back after every step, its
BatchNorm in train mode (``fa_batchnorm``), until the adversarial accuracy reaches Acc* − δ.
Every evaluation is white-box: PGD (or AutoAttack) made against the network under test. How
strongly consecutive layers depend on each other, ρ, is the mutual information of their
outputs for the adversarial test images by the EDGE estimator, per class, weighted by class
frequency (:mod:`fragility.scoring.dependency`); linear CKA beside it.

Two protocols (:data:`PROTOCOLS`): ``paper``, the values of the authors' code, and ``budget``,
a smaller one that still makes F* robust on the default run; each value can be set on its own.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..artifacts import Checkpoint
from ..config import ConfigError, dataset_info, model_datasets, model_epochs, model_layers, model_names, model_roles, warn
from ..data import Dataset, training_subset
from ..io import write_parquet
from ..progress import progress as bar
from ..schema import load_schema
from ..scoring.agreement import kendall_tau_b
from ..scoring.claims import (
    ALPHA,
    ClaimSpec,
    Finding,
    per_seed_mean,
    per_seed_std,
    undetermined,
    wilcoxon_min_n,
)
from ..scoring.dependency import class_weighted_cka, class_weighted_mi, shuffled_within_class
from ..scoring.propagation import PART_MEANS, gain_agreement, split_scores
from ..scoring.stats import summarise_differences
from ..structure import torch_installed
from .base import RUN_COLUMNS, Context, Prerequisite, Settings, StressTest, Summary

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    import torch
    from torch import nn


log = logging.getLogger(__name__)


def split_layers(model: nn.Module, k: int) -> tuple[list[str], list[str]]:
    """The filterable layers of f_a and of f_b for split ``k`` (f_b: the last ``k``)."""
    from ..models import list_layers

    layers = list_layers(model)
    if not 1 <= k < len(layers):
        raise ValueError(f"split k = {k} needs 1 <= k < {len(layers)} (the network's Conv2d/Linear layers)")
    return layers[: len(layers) - k], layers[len(layers) - k :]


def split_modules(model: nn.Module, k: int) -> tuple[list[str], list[str]]:
    """The modules (qualified names, containers included) of f_a and of f_b: f_b is every
    module registered at or after the first layer of f_b (:func:`split_layers`), so the
    BatchNorm that follows a layer goes with it and L_{n−k}'s own BatchNorm stays in f_a."""
    from ..models import backbone

    first = split_layers(model, k)[1][0]
    names = [name for name, _ in backbone(model).named_modules() if name]
    cut = names.index(first)
    return names[:cut], names[cut:]


def split_state(model: nn.Module, k: int) -> tuple[list[str], list[str]]:
    """The state-dict keys (of :func:`fragility.models.backbone`) f_a and f_b own: each
    parameter and buffer goes with the module that registers it."""
    from ..models import backbone

    f_a, f_b = split_modules(model, k)
    owner = {}
    for name in f_a + f_b:
        module = backbone(model).get_submodule(name)
        for key in [*module._parameters, *module._buffers]:
            if getattr(module, key) is not None:
                owner[f"{name}.{key}"] = name
    in_b = set(f_b)
    keys = list(backbone(model).state_dict())
    return [key for key in keys if owner[key] not in in_b], [key for key in keys if owner[key] in in_b]


def semirobust_network(robust: nn.Module, normal: nn.Module, k: int) -> nn.Module:
    """F_sr: a copy of ``normal`` whose f_a parameters and buffers are ``robust``'s."""
    from ..models import backbone

    combined = copy.deepcopy(normal)
    f_a, _ = split_state(normal, k)
    robust_state = backbone(robust).state_dict()
    backbone(combined).load_state_dict({**backbone(combined).state_dict(), **{key: robust_state[key] for key in f_a}})
    return combined.eval()


def freeze_first_part(model: nn.Module, k: int) -> list[nn.Parameter]:
    """Freeze f_a (no gradient); returns f_b's parameters, what the optimizer may move."""
    from ..models import backbone

    f_a, _ = split_modules(model, k)
    frozen = {id(p) for name in f_a for p in backbone(model).get_submodule(name).parameters(recurse=False)}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) not in frozen)
    return [p for p in model.parameters() if p.requires_grad]


def second_part_train_mode(k: int) -> Callable[[nn.Module], None]:
    """``train_mode`` for :func:`fragility.train.train_one_epoch`: f_b trains, f_a (its
    BatchNorm statistics included) stays in eval mode."""
    from ..models import backbone

    def train_mode(model: nn.Module) -> None:
        model.train()
        for name in split_modules(model, k)[0]:  # each module alone: a container of f_a (layer4) holds f_b modules too
            backbone(model).get_submodule(name).training = False

    return train_mode


class RestoringOptimizer:
    """``optimizer`` whose every step is followed by writing f_a's parameters and buffers
    (``keys`` of :func:`split_state`) back as they were: the authors' reset of the frozen part,
    which also undoes what BatchNorm in train mode did to f_a's running statistics."""

    def __init__(self, optimizer, model: nn.Module, keys: list[str]):
        from ..models import backbone

        self.optimizer = optimizer
        state = backbone(model).state_dict()  # detached tensors sharing the model's storage
        self._targets = [state[key] for key in keys]
        self._saved = [state[key].detach().clone() for key in keys]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        import torch

        self.optimizer.step()
        with torch.no_grad():
            for target, saved in zip(self._targets, self._saved):
                target.copy_(saved)


if TYPE_CHECKING:
    Examples = Callable[[nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor]  # (model, x, y, seed) -> x_adv


def adversarial_inputs(
    examples: Examples, noise: torch.Generator
) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``inputs(model, x, y)`` for :func:`fragility.train.train_one_epoch`: ``examples`` of the
    batch, with a fresh seed per batch from ``noise`` (a new random start each batch, as
    torchattacks' PGD in the authors' code), made with the network in eval mode (BatchNorm
    statistics do not move while attacking) and then returned to its training modes."""
    import torch

    def inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        modes = {module: module.training for module in model.modules()}
        model.eval()
        x_adv = examples(model, x, y, int(torch.randint(2**31 - 1, (1,), generator=noise))).to(x.device)
        for module, mode in modes.items():
            module.train(mode)
        return x_adv

    return inputs


def trial_seed(seed: int, trial: int) -> int:
    """The seed of fine-tuning trial ``trial`` of the run seeded ``seed``: its data order and
    attack noise (each trial a different order, as the authors' trials)."""
    return int(np.random.SeedSequence([seed, trial]).generate_state(1)[0])


def robust_network(
    model: nn.Module,
    data: Dataset,
    optimizer,
    examples: Examples,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: bool | None = None,
) -> nn.Module:
    """F*: a copy of ``model`` adversarially trained as a whole for ``epochs`` on ``examples``
    (fresh ``optimizer(parameters)``; data order and attack noise seeded by ``seed``);
    ``progress``: a bar over the epochs (None: where a person watches)."""
    import torch
    from torch import nn

    from ..train import cross_entropy, train_one_epoch

    robust = copy.deepcopy(model)
    for parameter in robust.parameters():
        parameter.requires_grad_(True)
    chosen = optimizer(list(robust.parameters()))
    torch.manual_seed(seed)
    order, noise = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    for _ in bar(range(epochs), "F*: adversarial training epochs", enabled=progress):
        train_one_epoch(
            robust, chosen, data, batch_size, order, cross_entropy, nn.Module.train, adversarial_inputs(examples, noise)
        )
    return robust.eval()


def finetune_second_part(
    semirobust: nn.Module,
    k: int,
    data: Dataset,
    optimizer,
    examples: Examples,
    max_epochs: int,
    target: float,
    evaluate_epoch: Callable[[nn.Module], dict],
    batch_size: int,
    seed: int,
    fa_batchnorm: str = "train",
):
    """Fine-tune a copy of F_sr's f_b adversarially on ``examples``: f_a out of the optimizer
    (no gradient) and written back after every step (:class:`RestoringOptimizer`), its
    BatchNorm in train mode (``fa_batchnorm="train"``, the authors': batch statistics while
    training) or eval mode; yields (epoch, the network, ``evaluate_epoch(network)``) after
    each epoch and stops once the evaluation's ``acc_adv`` reaches ``target`` (Acc* − δ)."""
    import torch
    from torch import nn

    from ..train import cross_entropy, train_one_epoch

    if fa_batchnorm not in ("train", "eval"):
        raise ValueError(f"fa_batchnorm must be train or eval, got {fa_batchnorm!r}")
    network = copy.deepcopy(semirobust)
    chosen = RestoringOptimizer(optimizer(freeze_first_part(network, k)), network, split_state(network, k)[0])
    train_mode = nn.Module.train if fa_batchnorm == "train" else second_part_train_mode(k)
    torch.manual_seed(seed)
    order, noise = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    for epoch in range(1, max_epochs + 1):
        train_one_epoch(network, chosen, data, batch_size, order, cross_entropy, train_mode, adversarial_inputs(examples, noise))
        measured = evaluate_epoch(network)
        yield epoch, network, measured
        if measured["acc_adv"] >= target:
            return


def epochs_to_converge(adversarial_accuracies: list[float], target: float) -> float:
    """The first fine-tuning epoch (1-based) whose adversarial accuracy is at least ``target``;
    NaN if none (the table's missing value)."""
    return float(next((epoch for epoch, acc in enumerate(adversarial_accuracies, 1) if acc >= target), math.nan))


def layer_outputs(model: nn.Module, layers: list[str], x: torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Each of ``layers``' outputs for ``x``, flattened per image."""
    import torch

    from ..models import backbone

    found: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    net, device = backbone(model), next(model.parameters()).device
    hooks = [
        net.get_submodule(layer).register_forward_hook(lambda _m, _i, out, layer=layer: found[layer].append(out.flatten(1).cpu()))
        for layer in layers
    ]
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i : i + batch_size].to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return {layer: torch.cat(parts).double().numpy() for layer, parts in found.items()}


def dependency(
    model: nn.Module, k: int, x_adv: torch.Tensor, y: torch.Tensor, batch_size: int = 256, seed: int = 0
) -> list[dict]:
    """For every pair of consecutive filterable layers from L_{n−k} to L_n, on ``x_adv``
    (METHOD §14): ``mi``, ρ = Σ_c p(c) · EDGE(out_j | c, out_{j+1} | c) in bits (EDGE seeded by
    ``seed``); ``mi_null``, the same with out_{j+1}'s rows shuffled within each class (what
    EDGE reads for independent outputs: its bias here); and ``cka``, class-weighted linear
    CKA; ``position`` 0 is (L_{n−k}, L_{n−k+1})."""
    f_a, f_b = split_layers(model, k)
    chain = [f_a[-1], *f_b]
    outputs = layer_outputs(model, chain, x_adv, batch_size)
    labels = y.cpu().numpy()
    return [
        {
            "layer_a": a,
            "layer_b": b,
            "position": position,
            "mi": class_weighted_mi(outputs[a], outputs[b], labels, seed),
            "mi_null": class_weighted_mi(outputs[a], shuffled_within_class(outputs[b], labels, seed), labels, seed),
            "cka": class_weighted_cka(outputs[a], outputs[b], labels),
        }
        for position, (a, b) in enumerate(zip(chain, chain[1:]))
    ]


def mcnemar(robust_correct: np.ndarray, normal_correct: np.ndarray) -> dict:
    """The exact one-sided McNemar test that F* is right under attack on more of the same test
    images than the normal network: ``mcnemar_b`` images F* gets right and the normal network
    wrong, ``mcnemar_c`` the reverse, ``mcnemar_p`` = P(Bin(b + c, ½) ≥ b) (1 when b + c = 0)."""
    from scipy.stats import binomtest

    robust_correct, normal_correct = np.asarray(robust_correct, bool), np.asarray(normal_correct, bool)
    b, c = int((robust_correct & ~normal_correct).sum()), int((~robust_correct & normal_correct).sum())
    p = binomtest(b, b + c, 0.5, alternative="greater").pvalue if b + c else 1.0
    return {"mcnemar_b": b, "mcnemar_c": c, "mcnemar_p": float(p)}


def robust_precondition(row, alpha: float) -> tuple[bool, str]:
    """(usable, why) of a checkpoint's semirobust rows from its F*'s McNemar test (``row``:
    ``mcnemar_p``, ``mcnemar_b``, ``mcnemar_c``) at level ``alpha`` (METHOD §14, §15)."""
    if row["mcnemar_p"] < alpha:
        return True, ""
    return False, (
        f"F* not robust: McNemar p = {row['mcnemar_p']:.3g} ≥ α = {alpha} (under attack F* right and the normal network "
        f"wrong on {int(row['mcnemar_b'])} test images, the reverse on {int(row['mcnemar_c'])})"
    )


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, batch_size: int = 256, seed: int = 0):
    """AutoAttack (Croce & Hein 2020, the standard L∞ version: APGD-CE, APGD-T, FAB-T, Square)
    at ``epsilon`` through torchattacks (``torchattacks.AutoAttack``), imported here: it is an
    optional dependency (``pip install --no-deps torchattacks==3.5.1``). Model in eval mode."""
    import torch

    from ..evaluation import model_device

    try:
        import torchattacks
    except ImportError as exc:  # pragma: no cover - the check of the config says so before any job
        raise ImportError(AUTOATTACK_NEEDS) from exc
    if model.training:
        raise RuntimeError("attack the model in eval mode")
    device = model_device(model)
    with torch.no_grad():
        classes = int(model(x[:1].to(device)).shape[1])
    attack = torchattacks.AutoAttack(model, norm="Linf", eps=epsilon, version="standard", n_classes=classes, seed=seed)
    return torch.cat(
        [
            attack(x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)).detach().cpu()
            for i in range(0, len(x), batch_size)
        ]
    )


AUTOATTACK_NEEDS = "semirobust.eval_attack: autoattack needs torchattacks (pip install --no-deps torchattacks==3.5.1)"


# --- the stress test: the robust network per checkpoint, then one job per split ------------------

PAPER_EPSILON = 8 / 255  # the authors' 0.031
# The values each protocol gives the keys left null. paper: the authors' code; budget: what the
# default run affords and still makes F* robust (FGSM with a random start, Wong et al. 2020).
PROTOCOLS = {
    "paper": {
        "epochs": 120,
        "finetune_epochs": 10,
        "trials": 10,
        "delta": 1e-16,
        "epsilon": "8/255",
        "optimizer": "sgd",
        "lr": 0.01,
        "train_attack": "pgd",
        "train_steps": 10,
        "step_ratio": 1 / 8,  # their step 1/255 at ε = 8/255
    },
    "budget": {
        "epochs": 3,
        "finetune_epochs": 2,
        "trials": 3,
        "delta": 0.05,
        "epsilon": "run",
        "optimizer": "checkpoint",
        "lr": None,  # the checkpoint's train.lr
        "train_attack": "fgsm_rs",
        "train_steps": None,  # attack.pgd.steps (train_attack pgd only)
        "step_ratio": None,  # attack.pgd.step_size (PGD only; FGSM-RS steps 1.25 ε)
    },
}
FGSM_RS_STEP = 1.25  # α / ε of FGSM with a random start (Wong, Rice & Kolter 2020)

SEMIROBUST_COLUMNS = [
    "protocol",
    "split_k",
    "first_fb_layer",
    "trial",
    "network",
    "finetune_epoch",
    "acc_clean",
    "acc_adv",
    "epsilon",
    "target_acc_adv",  # Acc* − δ: what fine-tuning stops at
    "best_acc_adv",  # the trial's best fine-tuned adversarial accuracy
    "epochs_to_converge",  # the trial's first epoch at Acc* − δ (missing: never)
    "mcnemar_p",  # F* robust? (the precondition)
    "why",
    "usable",
]
DEPENDENCY_COLUMNS = ["protocol", "split_k", "network", "layer_a", "layer_b", "position", "mi", "mi_null", "cka", "why", "usable"]
ROBUST_COLUMNS = ["network", "acc_clean", "acc_adv", "epsilon", "mcnemar_b", "mcnemar_c", "mcnemar_p"]
NETWORKS = ("normal", "robust", "semirobust", "finetuned")


@dataclasses.dataclass(frozen=True)
class SemirobustSettings(Settings):
    """What the semirobust analysis trains and measures, the protocol's values filled in
    (:data:`PROTOCOLS`): F* for ``epochs`` on ``train_attack`` examples (``pgd`` with
    ``train_steps`` steps, or ``fgsm_rs``) with ``optimizer`` (``sgd``: ``lr``, ``momentum``,
    ``weight_decay``; ``checkpoint``: the checkpoint's Adam, at ``lr`` if given); f_b for up
    to ``finetune_epochs`` in each of ``trials`` (early stop at Acc* − ``delta``), f_a's
    BatchNorm in ``fa_batchnorm`` mode; on ``max_train`` training images (None: all), at ε
    ``epsilon`` (``8/255`` or the ``run``'s), evaluated by ``eval_attack`` (``pgd``:
    ``attack.pgd`` options ``pgd``, step ``step_ratio`` · ε where given); F* robust at
    ``alpha`` (``trust.alpha``)."""

    protocol: str = "budget"
    epochs: int = 3
    finetune_epochs: int = 2
    trials: int = 2
    delta: float = 0.05
    epsilon: str = "run"
    optimizer: str = "checkpoint"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    train_attack: str = "fgsm_rs"
    train_steps: int = 10
    step_ratio: float | None = None
    eval_attack: str = "pgd"
    fa_batchnorm: str = "train"
    max_train: int | None = None
    alpha: float = 0.01
    clamp: bool = True
    pgd: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict, model: str) -> SemirobustSettings:
        """``semirobust.*``, each null key the protocol's value (:data:`PROTOCOLS`;
        ``train_steps`` null there: ``attack.pgd.steps``), ``trust.alpha`` and the run's PGD options."""
        chosen, pgd_options = config["semirobust"], dict(config["attack"]["pgd"])
        preset = PROTOCOLS[chosen["protocol"]]
        value = {key: chosen[key] if chosen.get(key) is not None else default for key, default in preset.items()}
        return cls(
            protocol=chosen["protocol"],
            epochs=value["epochs"],
            finetune_epochs=value["finetune_epochs"],
            trials=value["trials"],
            delta=value["delta"],
            epsilon=value["epsilon"],
            optimizer=value["optimizer"],
            lr=value["lr"],
            momentum=chosen["momentum"],
            weight_decay=chosen["weight_decay"],
            train_attack=value["train_attack"],
            train_steps=value["train_steps"] if value["train_steps"] is not None else pgd_options["steps"],
            step_ratio=value["step_ratio"],
            eval_attack=chosen["eval_attack"],
            fa_batchnorm=chosen["fa_batchnorm"],
            max_train=chosen["max_train"],
            alpha=config["trust"]["alpha"],
            clamp=config["attack"]["clamp"],
            pgd=pgd_options,
        )

    def epsilon_of(self, run_epsilon: float) -> float:
        """The ε every attack of the analysis uses: 8/255, or the run's searched ε."""
        return PAPER_EPSILON if self.epsilon == "8/255" else float(run_epsilon)

    def pgd_step(self, epsilon: float) -> float | None:
        """PGD's step: ``step_ratio`` · ε, else ``attack.pgd.step_size`` (None: 2.5 ε / steps)."""
        return self.step_ratio * epsilon if self.step_ratio is not None else self.pgd.get("step_size")

    @property
    def attack_name(self) -> str:
        """How the tables name the evaluation attack: ``pgd-<steps>`` or ``autoattack``."""
        from ..attack import Attack

        return "autoattack" if self.eval_attack == "autoattack" else Attack("pgd", self.clamp, dict(self.pgd)).name

    def evaluation(self, epsilon: float) -> Callable[[nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor]:
        """``attack(model, x, y, batch_size)``: the evaluation attack's examples against ``model``."""
        from ..attack import Attack

        if self.eval_attack == "autoattack":
            return lambda model, x, y, batch_size: autoattack(model, x, y, epsilon, batch_size, self.pgd.get("seed", 0))
        chosen = Attack("pgd", self.clamp, {**self.pgd, "step_size": self.pgd_step(epsilon)})
        return lambda model, x, y, batch_size: chosen(model, x, y, epsilon, batch_size)

    def training_examples(self, epsilon: float) -> Examples:
        """``examples(model, x, y, seed)``: what adversarial training learns from — PGD
        (``train_steps``) or FGSM from a random start in the ε-ball with step 1.25 ε."""
        from ..attack import pgd

        if self.train_attack == "fgsm_rs":
            return lambda model, x, y, seed: pgd(
                model, x, y, epsilon, 1, FGSM_RS_STEP * epsilon, True, self.clamp, seed, batch_size=len(x)
            )
        steps, step, start = self.train_steps, self.pgd_step(epsilon), self.pgd.get("random_start", True)
        return lambda model, x, y, seed: pgd(model, x, y, epsilon, steps, step, start, self.clamp, seed, batch_size=len(x))

    def optimizer_for(self, train_config) -> Callable:
        """``optimizer(parameters)`` of adversarial training and fine-tuning."""
        import torch

        if self.optimizer == "sgd":
            lr = self.lr if self.lr is not None else PROTOCOLS["paper"]["lr"]
            return lambda params: torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return (train_config if self.lr is None else dataclasses.replace(train_config, lr=self.lr)).optimizer

    def describe(self) -> str:
        """One line naming the protocol and its values (logs, figure titles)."""
        trained = "FGSM-RS" if self.train_attack == "fgsm_rs" else f"PGD-{self.train_steps}"
        optimizer = f"SGD lr {self.lr if self.lr is not None else 0.01}" if self.optimizer == "sgd" else "Adam (checkpoint's)"
        return (
            f"protocol {self.protocol}: F* {self.epochs} epochs of {trained}, {optimizer}; fine-tuning ≤ {self.finetune_epochs} "
            f"epochs × {self.trials} trials, δ {self.delta:g}; ε {self.epsilon}; {self.attack_name}"
        )


def split_units(splits: list[int], n_layers: int) -> list[str]:
    """The units of the semirobust test: ``k4``, ``k12`` … for the splits below ``n_layers``."""
    return [f"k{k}" for k in splits if k < n_layers]


def semirobust_units(config: dict, model: str) -> list[str]:
    """The splits of ``model`` the semirobust analysis runs (``k4``, ``k12``: ``semirobust.splits``
    below its number of layers; none without a training split)."""
    if not any(dataset_info(config, d).has_train for d in model_datasets(config, model)):
        return []
    return split_units(config["semirobust"]["splits"], len(model_layers(config, model)))


def semirobust_epochs(config: dict, model: str) -> list[int]:
    """The checkpoint epochs of ``model`` the semirobust analysis starts from."""
    epochs = model_epochs(config, model)
    return epochs if config["semirobust"]["checkpoints"] == "all" else epochs[-1:]


def check(config: dict, model: str) -> None:
    """Said before any job: the splits dropped for ``model`` (a warning; an error when no model
    keeps one of splits the config chose), ``train_steps`` given where training takes one FGSM step (it would do nothing),
    and AutoAttack without torchattacks, an optional dependency."""
    chosen = config["semirobust"]
    _check_splits(config, model)
    if not semirobust_units(config, model):
        return
    train_attack = chosen["train_attack"] or PROTOCOLS[chosen["protocol"]]["train_attack"]
    if chosen["train_steps"] is not None and train_attack == "fgsm_rs":
        raise ConfigError(
            "config key 'semirobust.train_steps': training with fgsm_rs takes one step; "
            "drop train_steps or set semirobust.train_attack: pgd"
        )
    # where torch is not installed, the rules' environment is not this one: the job says it
    if chosen["eval_attack"] == "autoattack" and torch_installed() and importlib.util.find_spec("torchattacks") is None:
        raise ConfigError(f"config key 'semirobust.eval_attack': {AUTOATTACK_NEEDS.split(': ', 1)[1]}")


def _check_splits(config: dict, model: str) -> None:
    """One line for the values of ``semirobust.splits`` at or above ``model``'s number of layers."""
    splits = config["semirobust"]["splits"]
    if not splits or not any(dataset_info(config, d).has_train for d in model_datasets(config, model)):
        return
    n_layers = len(model_layers(config, model))
    dropped = [k for k in splits if k >= n_layers]
    if not dropped:
        return
    if len(dropped) < len(splits):
        warn(f"config key 'semirobust.splits': {dropped} dropped for {model}, which has {n_layers} Conv2d/Linear layers")
        return
    default = splits == load_schema()["properties"]["semirobust"]["properties"]["splits"]["default"]
    if not default and not any(semirobust_units(config, other) for other in model_names(config)):
        raise ConfigError(
            f"config key 'semirobust.splits': {splits} leaves no split: {model} has {n_layers} Conv2d/Linear layers; "
            f"give splits below {n_layers}, or [] for no semirobust analysis"
        )
    warn(
        f"config key 'semirobust.splits': {splits}{' (the default)' if default else ''} all dropped for {model}, which "
        f"has {n_layers} Conv2d/Linear layers: it gets no semirobust analysis (give splits below {n_layers}, or [] for none)"
    )


def measure(network: nn.Module, x: torch.Tensor, y: torch.Tensor, attack, batch_size: int) -> tuple[dict, np.ndarray]:
    """``acc_clean`` and ``acc_adv`` of ``network`` under ``attack(network, x, y, batch_size)``
    made against itself, and which test images it gets right under attack."""
    from ..evaluation import predict

    x_adv = attack(network, x, y, batch_size)
    right = (predict(network, x_adv, batch_size) == y.cpu()).numpy()
    clean = (predict(network, x, batch_size) == y.cpu()).double().mean().item()
    return {"acc_clean": clean, "acc_adv": float(right.mean())}, right


def make_robust(
    checkpoint, model: nn.Module, training: Dataset, x: torch.Tensor, y: torch.Tensor, run_epsilon: float, settings, batch_size
) -> tuple[nn.Module, pd.DataFrame]:
    """F* from the checkpoint's network ``model``, and the normal and robust networks'
    accuracies (clean, and under the evaluation attack made against each) with the McNemar
    test of F*'s robustness (:func:`mcnemar`) on every row."""
    epsilon = settings.epsilon_of(run_epsilon)
    data = training_subset(training, settings.max_train, checkpoint.seed)
    robust = robust_network(
        model,
        data,
        settings.optimizer_for(checkpoint.train_config),
        settings.training_examples(epsilon),
        settings.epochs,
        checkpoint.train_config.batch_size,
        checkpoint.seed,
    )
    attack = settings.evaluation(epsilon)
    (normal_acc, normal_right), (robust_acc, robust_right) = (measure(net, x, y, attack, batch_size) for net in (model, robust))
    test = mcnemar(robust_right, normal_right)
    rows = [{"network": "normal", **normal_acc}, {"network": "robust", **robust_acc}]
    table = pd.DataFrame([{**row, "epsilon": epsilon, **test} for row in rows], columns=ROBUST_COLUMNS)
    log.info("%s; normal and robust networks:\n%s", settings.describe(), table.to_string(index=False))
    return robust, table


def finetune_trials(
    semirobust: nn.Module,
    k: int,
    training: Dataset,
    settings: SemirobustSettings,
    epsilon: float,
    target: float,
    measured: Callable[[nn.Module], dict],
    checkpoint,
    progress: bool | None = None,
) -> tuple[list[tuple[dict, list[dict]]], nn.Module]:
    """f_b of F_sr fine-tuned in each of ``settings.trials`` trials (:func:`finetune_second_part`,
    each seeded by :func:`trial_seed`): per trial its summary (``trial``, ``best_acc_adv``,
    ``epochs_to_converge`` at ``target``) and its rows per epoch; and the first trial's network
    at its best epoch (the authors kept the best checkpoint). ``progress``: a bar over the
    trials (None: where a person watches)."""
    data = training_subset(training, settings.max_train, checkpoint.seed)
    trials, best_network = [], None
    for trial in bar(range(settings.trials), f"k = {k}: fine-tuning trials", enabled=progress):
        runs, best = [], -1.0
        for epoch, network, found in finetune_second_part(
            semirobust,
            k,
            data,
            settings.optimizer_for(checkpoint.train_config),
            settings.training_examples(epsilon),
            settings.finetune_epochs,
            target,
            measured,
            checkpoint.train_config.batch_size,
            trial_seed(checkpoint.seed, trial),
            settings.fa_batchnorm,
        ):
            runs.append({"network": "finetuned", "finetune_epoch": epoch, **found})
            if trial == 0 and found["acc_adv"] >= best:
                best, best_network = found["acc_adv"], copy.deepcopy(network).eval()
            log.info("k = %d, trial %d, fine-tuning epoch %d: %s (target %.4f)", k, trial, epoch, found, target)
        accuracies = [run["acc_adv"] for run in runs]
        summary = {"trial": trial, "best_acc_adv": max(accuracies), "epochs_to_converge": epochs_to_converge(accuracies, target)}
        trials.append((summary, runs))
    return trials, best_network


def split_tables(
    model: nn.Module,
    robust: nn.Module,
    base: pd.DataFrame,
    k: int,
    *,
    training: Dataset,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: SemirobustSettings,
    checkpoint,
    batch_size: int = 256,
) -> dict[str, pd.DataFrame]:
    """For split ``k``: F_sr measured, then f_b fine-tuned in each of ``settings.trials``
    trials (rows per epoch, stopping at Acc* − δ), each trial's rows beside ``base`` (the
    normal and robust rows of :func:`make_robust`) and F_sr's; and the dependency (ρ by EDGE,
    CKA) of consecutive layers for F*, F_sr and the first trial's best fine-tuned network,
    each on adversarial images made against itself. Every row is ``usable`` only where F* is
    robust (:func:`robust_precondition`)."""
    epsilon = float(base["epsilon"].iloc[0])
    attack = settings.evaluation(epsilon)
    rows_of = base.set_index("network")
    target = float(rows_of.loc["robust", "acc_adv"]) - settings.delta
    usable, why = robust_precondition(rows_of.loc["robust"], settings.alpha)
    semirobust = semirobust_network(robust, model, k)
    first = split_layers(model, k)[1][0]
    start = [
        {"network": net, "finetune_epoch": 0, "acc_clean": rows_of.loc[net, "acc_clean"], "acc_adv": rows_of.loc[net, "acc_adv"]}
        for net in ("normal", "robust")
    ]

    def measured(network: nn.Module) -> dict:
        return measure(network, x, y, attack, batch_size)[0]

    start.append({"network": "semirobust", "finetune_epoch": 0, **measured(semirobust)})
    trials, best_network = finetune_trials(semirobust, k, training, settings, epsilon, target, measured, checkpoint)
    rows = [{**row, **summary} for summary, runs in trials for row in start + runs]
    identity = {"protocol": settings.protocol, "split_k": k}
    flags = {"mcnemar_p": float(rows_of.loc["robust", "mcnemar_p"]), "why": why, "usable": usable}
    table = pd.DataFrame(rows).assign(**identity, first_fb_layer=first, epsilon=epsilon, target_acc_adv=target, **flags)
    networks = [("robust", robust), ("semirobust", semirobust)] + (
        [("finetuned", best_network)] if best_network is not None else []
    )
    dependencies = [
        {**identity, "network": name, **row, "why": why, "usable": usable}
        for name, network in networks
        for row in dependency(network, k, attack(network, x, y, batch_size), y, batch_size, checkpoint.seed)
    ]
    return {
        "semirobust": table.reindex(columns=SEMIROBUST_COLUMNS),
        "dependency": pd.DataFrame(dependencies, columns=DEPENDENCY_COLUMNS),
    }


def save_robust(checkpoint, robust: nn.Module, path) -> None:
    """F* as a checkpoint of the run's format (its spec, training settings, epoch and seed;
    no optimizer state); :func:`load_robust` reads it."""
    Checkpoint(
        checkpoint.model_spec,
        checkpoint.train_config,
        copy.deepcopy(robust.state_dict()),
        {},
        checkpoint.epoch,
        checkpoint.seed,
        checkpoint.rng_state,
    ).save(path)


def load_robust(path, device) -> nn.Module:
    """F* as :func:`save_robust` wrote it, in eval mode on ``device``."""
    return Checkpoint.read(path, device).model(device)


def _make_robust(context: Context, settings: SemirobustSettings, paths: dict) -> None:
    """The prerequisite ``robust``: F* and its table (:func:`make_robust`) of one checkpoint."""
    checkpoint, testset = context.checkpoint, context.testset
    robust, table = make_robust(
        checkpoint,
        context.model,
        context.training,
        testset.x,
        testset.y,
        context.adversarial.epsilon,
        settings,
        context.options.batch_size,
    )
    save_robust(checkpoint, robust, paths["robust"])
    write_parquet(table, paths["robust_table"])


def _run(context: Context, unit: str, settings: SemirobustSettings) -> dict[str, pd.DataFrame]:
    robust = load_robust(context.paths["robust"], next(context.model.parameters()).device)
    testset = context.testset
    return split_tables(
        context.model,
        robust,
        pd.read_parquet(context.paths["robust_table"]),
        int(unit.removeprefix("k")),
        training=context.training,
        x=testset.x,
        y=testset.y,
        settings=settings,
        checkpoint=context.checkpoint,
        batch_size=context.options.batch_size,
    )


# ------------------------------------------------------------ the semirobustness paper's claims (METHOD §14, §15)

SPLIT_RUN = ["dataset", "model", "seed", "epoch", "split_k"]


def _start_accuracy(semirobust: pd.DataFrame, network: str) -> pd.Series:
    """Per (dataset, model, seed, epoch, split_k): the adversarial accuracy of ``network``
    (normal, robust or semirobust: measured once, repeated in every trial's rows)."""
    rows = semirobust[(semirobust["network"] == network) & (semirobust["finetune_epoch"] == 0)]
    return rows.groupby(SPLIT_RUN)["acc_adv"].mean()


def promotes_robustness(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Acc_sr − Acc (adversarial accuracy of the semirobust network minus the normal one's),
    one value per (seed, checkpoint) — the splits of one checkpoint share F* and Acc, so they
    are averaged —: holds when the mean is > 0 and the exact two-sided Wilcoxon p < α."""
    semirobust = tables["semirobust"]
    differences = (_start_accuracy(semirobust, "semirobust") - _start_accuracy(semirobust, "normal")).dropna()
    if differences.empty:
        return undetermined("no semirobust network was measured")
    per_checkpoint = differences.groupby(level=["seed", "epoch"]).mean()
    summary = summarise_differences(per_checkpoint)
    holds = summary["mean_diff"] > 0 and summary["wilcoxon_p"] < ALPHA
    splits = ", ".join(str(k) for k in sorted(differences.index.get_level_values("split_k").unique()))
    detail = f"adversarial accuracy, semirobust − normal, mean over splits k = {splits}; Wilcoxon p = {summary['wilcoxon_p']:.3g}"
    seeds = per_checkpoint.index.get_level_values("seed")
    return Finding(summary["mean_diff"], summary["n_pairs"], bool(holds), detail, per_seed_std(per_checkpoint, seeds))


def finetune_recovers(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Over the (seed, checkpoint, split) whose F_sr started below Acc* − δ: per split the
    fraction of its trials whose best fine-tuned adversarial accuracy reached Acc* − δ, per
    seed their mean; holds when the mean over seeds is above 0.5. A split already there before
    fine-tuning is counted out: it shows nothing about fine-tuning."""
    delta, semirobust = options["semirobust"]["delta"], tables["semirobust"]
    tuned = semirobust[semirobust["network"] == "finetuned"]
    if tuned.empty:
        return undetermined("no fine-tuning was run")
    trials = tuned.groupby(SPLIT_RUN + ["trial"])[["best_acc_adv", "target_acc_adv", "epochs_to_converge"]].first()
    started = _start_accuracy(semirobust, "semirobust")
    target = trials["target_acc_adv"].groupby(level=SPLIT_RUN).first()
    below = (started.reindex(target.index) < target).fillna(False)
    already = int((~below).sum())
    counted_out = (
        f"; counted out: {already} (seed, checkpoint, split) already at Acc* − {delta:g} before fine-tuning" if already else ""
    )
    kept = trials[below.reindex(trials.index.droplevel("trial")).to_numpy()]
    if kept.empty:
        return undetermined(f"no split started below Acc* − {delta:g}{counted_out}")
    reached = kept["best_acc_adv"] >= kept["target_acc_adv"]
    per_split = reached.groupby(level=SPLIT_RUN).mean()
    seeds = per_split.index.get_level_values("seed")
    per_seed = per_seed_mean(per_split, seeds)
    value = float(per_seed.mean())
    converged = kept.loc[reached.to_numpy(), "epochs_to_converge"]
    epochs = f"; mean epochs to converge {converged.mean():.2f} over the {len(converged)} that did" if len(converged) else ""
    detail = (
        f"best fine-tuned f_b reached Acc* − {delta:g} adversarial accuracy in {int(reached.sum())} of {len(reached)} trials "
        f"over {len(per_split)} (seed, checkpoint, split) within {int(tuned['finetune_epoch'].max())} epochs{epochs}{counted_out}"
    )
    return Finding(value, len(per_seed), value > 0.5, detail, per_seed_std(per_split, seeds))


def dependency_falls_toward_output(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Kendall's τ between a consecutive pair's position and its ρ (``mi``), per (seed,
    checkpoint, split, network), averaged per seed; holds when the mean is < 0 (the paper's
    supplement: ρ falls toward the output)."""
    taus = []
    for (seed, *_), rows in tables["dependency"].groupby(["seed", "epoch", "split_k", "network"]):
        rows = rows.dropna(subset=["mi"])
        if rows["position"].nunique() >= 2 and rows["mi"].nunique() >= 2:
            taus.append((seed, kendall_tau_b(rows["position"], rows["mi"])))
    if not taus:
        return undetermined("no split has two layer pairs with a mutual information")
    found = pd.DataFrame(taus, columns=["seed", "tau"])
    per_seed = per_seed_mean(found["tau"], found["seed"])
    detail = f"Kendall τ between position and ρ (EDGE mutual information) of consecutive layers, over {len(found)} (seed, checkpoint, split, network)"
    if "mi_null" in tables["dependency"]:  # how much of ρ is more than EDGE reads for independent outputs
        excess = (tables["dependency"]["mi"] - tables["dependency"]["mi_null"]).mean()
        detail += f"; ρ exceeds its value with images shuffled within class by {excess:.2f} bits on average"
    value = float(per_seed.mean())
    return Finding(value, len(per_seed), value < 0, detail, per_seed_std(found["tau"], found["seed"]))


def follows_scores(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Kendall's τ_b, over (seed, checkpoint, split), between Acc_sr − Acc and the mean
    adversarial score r_xε of f_b's layers (:func:`fragility.scoring.propagation.split_scores`):
    holds when > 0, i.e. robustness propagates more where the filters call f_b robust. The
    detail gives τ for r_xε and r_ε of f_a and of f_b."""
    usable = tables["semirobust_scores"].dropna(subset=["acc_sr_gain", "score_adv_fb"])
    taus = gain_agreement(usable)
    detail = "Kendall τ_b of Acc_sr − Acc with the mean " + ", ".join(
        f"{'r_xε' if 'adv' in mean else 'r_ε'} of {'f_b' if mean.endswith('fb') else 'f_a'} {taus[mean]:.2f}"
        for mean in PART_MEANS
    )
    value = taus["score_adv_fb"]
    return Finding(
        value, len(usable), bool(np.isfinite(value) and value > 0), detail + f" over {len(usable)} (seed, checkpoint, split)"
    )


def claim_options(config: dict) -> dict:
    """The config keys the semirobust claims read (δ: the protocol's where null)."""
    chosen = config["semirobust"]
    delta = chosen["delta"] if chosen.get("delta") is not None else PROTOCOLS[chosen["protocol"]]["delta"]
    return {"delta": delta}


CLAIMS = (
    ClaimSpec(
        "semirobust_promotes_robustness",
        "A robust first part f_a makes the network more robust: Acc_sr > Acc (Craig et al. 2023).",
        f"exact two-sided Wilcoxon signed-rank test, p < {ALPHA}, and mean Acc_sr − Acc > 0",
        wilcoxon_min_n(),
        "(seed, checkpoint) pairs, each the mean over its splits",
        ("semirobust",),
        promotes_robustness,
    ),
    ClaimSpec(
        "semirobust_finetune_recovers",
        "Fine-tuning f_b with f_a frozen recovers the robust network's accuracy Acc* (Craig et al. 2023).",
        "mean over seeds of the fraction of trials whose best fine-tuned accuracy reached Acc* − δ, over the splits "
        "that started below it, > 0.5",
        1,
        "seeds (each the mean over its checkpoints and splits of the fraction of trials)",
        ("semirobust",),
        finetune_recovers,
    ),
    ClaimSpec(
        "dependency_falls_toward_output",
        "Consecutive layers depend less on each other toward the output: ρ (EDGE mutual information) falls "
        "(Craig et al. 2023, supplement).",
        "mean Kendall τ between a pair's position and its ρ < 0",
        1,
        "seeds (each the mean over its checkpoints, splits and networks)",
        ("dependency",),
        dependency_falls_toward_output,
    ),
    ClaimSpec(
        "semirobust_follows_scores",
        "Robustness propagates more where the synaptic filters call f_b robust (ours).",
        "Kendall τ_b of Acc_sr − Acc with the mean r_xε of f_b's layers > 0",
        3,
        "(seed, checkpoint, split)",
        ("semirobust_scores",),
        follows_scores,
    ),
)


TEST = StressTest(
    name="semirobust",
    description="A robust first part f_a (from adversarial training) with the checkpoint's f_b, then f_b fine-tuned (Craig et al. 2023).",
    tables={
        "semirobust": RUN_COLUMNS + ["attack"] + SEMIROBUST_COLUMNS,
        "dependency": RUN_COLUMNS + ["attack"] + DEPENDENCY_COLUMNS,
    },
    units=semirobust_units,
    settings=SemirobustSettings,
    run=_run,
    check=check,
    claims=CLAIMS,
    claim_options=claim_options,
    prerequisites=(
        Prerequisite(
            "robust",
            "F*: the checkpoint's network adversarially trained as a whole, the accuracies of the normal and the "
            "robust network under the evaluation attack made against each, and the McNemar test that F* is robust.",
            {"robust": "robust/epoch{epoch}.pt", "robust_table": "robust/epoch{epoch}.parquet"},
            _make_robust,
        ),
    ),
    summaries=(
        Summary(
            "semirobust_scores",
            "Per split: Acc, Acc*, Acc_sr, the best fine-tuned accuracy (mean ± std over trials), the mean epochs to "
            "converge over converged trials, Acc_sr − Acc, and the mean r_xε and r_ε of f_a's and f_b's layers.",
            ("scores", "semirobust"),
            lambda tables, params: split_scores(tables["scores"], tables["semirobust"], {params["model"]: params["layers"]}),
            lambda config, model: {"model": model, "layers": model_roles(config, model)["layers"]},
        ),
    ),
    epochs=semirobust_epochs,
    trains=True,
    attack=lambda settings: settings.attack_name,
)
