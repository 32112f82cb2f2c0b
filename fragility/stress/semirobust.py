"""Subnetwork robustness (semirobustness; Craig, Andle, Nowak & Yasaei Sekeh 2023; METHOD §14):
does a robust first part f_a make the whole network robust?

A split k cuts the network at its k-th filterable layer from the end: f_b holds every module
registered at or after that layer (the last k Conv2d/Linear layers and what follows them), f_a
the rest. F* is the checkpoint network adversarially trained as a whole (Madry et al.: the
loss on PGD examples only); the semirobust network F_sr takes f_a from F* and f_b from the
checkpoint; fine-tuning then trains f_b adversarially with f_a frozen — no gradient, out of
the optimizer, its BatchNorm in eval mode — until its adversarial accuracy reaches
Acc* − δ. Every evaluation is white-box: PGD made against the network under test. How
strongly consecutive layers depend on each other is read by linear CKA (Kornblith et al.
2019) on their outputs for the adversarial test images, per class, weighted by class size.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..artifacts import Checkpoint
from ..attack import Attack
from ..config import dataset_info, model_datasets, model_epochs, model_layers, model_roles
from ..data import Dataset, training_subset
from ..evaluation import whitebox_accuracies as evaluate
from ..io import write_parquet
from ..models import backbone, list_layers
from ..scoring.agreement import kendall_tau_b
from ..scoring.claims import (
    ALPHA,
    ClaimSpec,
    Finding,
    fraction_finding,
    per_seed_mean,
    per_seed_std,
    undetermined,
    wilcoxon_min_n,
)
from ..scoring.propagation import PART_MEANS, gain_agreement, split_scores
from ..scoring.stats import summarise_differences
from ..train import cross_entropy, train_one_epoch
from .base import RUN_COLUMNS, Context, Prerequisite, Settings, StressTest, Summary

log = logging.getLogger(__name__)


def split_layers(model: nn.Module, k: int) -> tuple[list[str], list[str]]:
    """The filterable layers of f_a and of f_b for split ``k`` (f_b: the last ``k``)."""
    layers = list_layers(model)
    if not 1 <= k < len(layers):
        raise ValueError(f"split k = {k} needs 1 <= k < {len(layers)} (the network's Conv2d/Linear layers)")
    return layers[: len(layers) - k], layers[len(layers) - k :]


def split_modules(model: nn.Module, k: int) -> tuple[list[str], list[str]]:
    """The modules (qualified names, containers included) of f_a and of f_b: f_b is every
    module registered at or after the first layer of f_b (:func:`split_layers`), so the
    BatchNorm that follows a layer goes with it and L_{n−k}'s own BatchNorm stays in f_a."""
    first = split_layers(model, k)[1][0]
    names = [name for name, _ in backbone(model).named_modules() if name]
    cut = names.index(first)
    return names[:cut], names[cut:]


def split_state(model: nn.Module, k: int) -> tuple[list[str], list[str]]:
    """The state-dict keys (of :func:`fragility.models.backbone`) f_a and f_b own: each
    parameter and buffer goes with the module that registers it."""
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
    combined = copy.deepcopy(normal)
    f_a, _ = split_state(normal, k)
    robust_state = backbone(robust).state_dict()
    backbone(combined).load_state_dict({**backbone(combined).state_dict(), **{key: robust_state[key] for key in f_a}})
    return combined.eval()


def freeze_first_part(model: nn.Module, k: int) -> list[nn.Parameter]:
    """Freeze f_a (no gradient); returns f_b's parameters, what the optimizer may move."""
    f_a, _ = split_modules(model, k)
    frozen = {id(p) for name in f_a for p in backbone(model).get_submodule(name).parameters(recurse=False)}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) not in frozen)
    return [p for p in model.parameters() if p.requires_grad]


def second_part_train_mode(k: int) -> Callable[[nn.Module], None]:
    """``train_mode`` for :func:`fragility.train.train_one_epoch`: f_b trains, f_a (its
    BatchNorm statistics included) stays in eval mode."""

    def train_mode(model: nn.Module) -> None:
        model.train()
        for name in split_modules(model, k)[0]:  # each module alone: a container of f_a (layer4) holds f_b modules too
            backbone(model).get_submodule(name).training = False

    return train_mode


def adversarial_inputs(attack: Attack, epsilon: float) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``inputs(model, x, y)`` for :func:`fragility.train.train_one_epoch`: ``attack``'s
    examples of the batch at ``epsilon``, made with the network in eval mode (BatchNorm
    statistics do not move while attacking) and then returned to the training mode."""

    def inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        modes = {module: module.training for module in model.modules()}
        model.eval()
        x_adv = attack(model, x, y, epsilon, len(x)).to(x.device)
        for module, mode in modes.items():
            module.train(mode)
        return x_adv

    return inputs


def adversarial_epoch(
    model: nn.Module,
    optimizer,
    data: Dataset,
    batch_size: int,
    order: torch.Generator,
    attack: Attack,
    epsilon: float,
    train_mode: Callable[[nn.Module], object] = nn.Module.train,
) -> float:
    """One epoch of adversarial training (the loss on ``attack``'s examples only)."""
    return train_one_epoch(
        model, optimizer, data, batch_size, order, cross_entropy, train_mode, adversarial_inputs(attack, epsilon)
    )


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear CKA between two representations of the same n examples (rows): with columns
    centred, ‖BᵀA‖²_F / (‖AᵀA‖_F ‖BᵀB‖_F); NaN when either is constant."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    denominator = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(np.linalg.norm(b.T @ a) ** 2 / denominator) if denominator > 0 else float("nan")


def class_weighted_cka(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> float:
    """Linear CKA within each class (of at least 2 examples), averaged weighted by class size."""
    labels = np.asarray(labels)
    values, weights = [], []
    for label in np.unique(labels):
        chosen = labels == label
        if chosen.sum() >= 2:
            value = linear_cka(a[chosen], b[chosen])
            if np.isfinite(value):
                values.append(value)
                weights.append(chosen.sum())
    return float(np.average(values, weights=weights)) if values else float("nan")


def layer_outputs(model: nn.Module, layers: list[str], x: torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Each of ``layers``' outputs for ``x``, flattened per image."""
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


def dependency(model: nn.Module, k: int, x_adv: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> list[dict]:
    """Class-weighted linear CKA between every pair of consecutive filterable layers from
    L_{n−k} to L_n on ``x_adv`` (METHOD §14); ``position`` 0 is the pair (L_{n−k}, L_{n−k+1})."""
    f_a, f_b = split_layers(model, k)
    chain = [f_a[-1], *f_b]
    outputs = layer_outputs(model, chain, x_adv, batch_size)
    labels = y.cpu().numpy()
    return [
        {"layer_a": a, "layer_b": b, "position": position, "cka": class_weighted_cka(outputs[a], outputs[b], labels)}
        for position, (a, b) in enumerate(zip(chain, chain[1:]))
    ]


def epochs_to_reach(adversarial_accuracies: list[float], target: float) -> int | None:
    """The first fine-tuning epoch (1-based) whose adversarial accuracy is at least ``target``."""
    return next((epoch for epoch, acc in enumerate(adversarial_accuracies, 1) if acc >= target), None)


def robust_network(
    model: nn.Module,
    data: Dataset,
    optimizer,
    attack: Attack,
    epsilon: float,
    epochs: int,
    batch_size: int,
    seed: int,
) -> nn.Module:
    """F*: a copy of ``model`` adversarially trained as a whole for ``epochs`` (fresh
    ``optimizer(parameters)``, data order and global RNG seeded by ``seed``)."""
    robust = copy.deepcopy(model)
    for parameter in robust.parameters():
        parameter.requires_grad_(True)
    adam = optimizer(list(robust.parameters()))
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        adversarial_epoch(robust, adam, data, batch_size, order, attack, epsilon)
    return robust.eval()


def finetune_second_part(
    semirobust: nn.Module,
    k: int,
    data: Dataset,
    optimizer,
    attack: Attack,
    epsilon: float,
    max_epochs: int,
    target: float,
    evaluate_epoch: Callable[[nn.Module], dict],
    batch_size: int,
    seed: int,
):
    """Fine-tune a copy of F_sr's f_b adversarially with f_a frozen (its BatchNorm in eval
    mode); yields (epoch, the network, ``evaluate_epoch(network)``) after each epoch and
    stops early once the evaluation's ``acc_adv`` reaches ``target`` (Acc* − δ)."""
    network = copy.deepcopy(semirobust)
    adam = optimizer(freeze_first_part(network, k))
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    for epoch in range(1, max_epochs + 1):
        adversarial_epoch(network, adam, data, batch_size, order, attack, epsilon, second_part_train_mode(k))
        measured = evaluate_epoch(network)
        yield epoch, network, measured
        if measured["acc_adv"] >= target:
            return


# --- the stress test: the robust network per checkpoint, then one job per split ------------------

SEMIROBUST_COLUMNS = [
    "split_k",
    "first_fb_layer",
    "network",
    "finetune_epoch",
    "acc_clean",
    "acc_adv",
    "epsilon",
    "target_acc_adv",  # Acc* − δ: what fine-tuning stops at
]
DEPENDENCY_COLUMNS = ["split_k", "network", "layer_a", "layer_b", "position", "cka"]
NETWORKS = ("normal", "robust", "semirobust", "finetuned")


@dataclasses.dataclass(frozen=True)
class SemirobustSettings(Settings):
    """What the semirobust analysis trains: F* for ``epochs``, f_b for up to
    ``finetune_epochs`` (early stop at Acc* − ``delta``), on ``max_train`` training images
    (None: all), with PGD of ``pgd`` options (``train_steps`` steps while training)."""

    epochs: int = 1
    finetune_epochs: int = 1
    delta: float = 0.05
    max_train: int | None = None
    train_steps: int = 10
    clamp: bool = True
    pgd: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict, model: str) -> SemirobustSettings:
        """``semirobust.*`` (``epochs`` null: ``train.checkpoint_every``; ``train_steps`` null:
        ``attack.pgd.steps``) and the run's PGD options."""
        chosen, pgd = config["semirobust"], dict(config["attack"]["pgd"])
        return cls(
            epochs=chosen["epochs"] if chosen["epochs"] is not None else config["train"]["checkpoint_every"],
            finetune_epochs=chosen["finetune_epochs"],
            delta=chosen["delta"],
            max_train=chosen["max_train"],
            train_steps=chosen["train_steps"] if chosen["train_steps"] is not None else pgd["steps"],
            clamp=config["attack"]["clamp"],
            pgd=pgd,
        )

    @property
    def attack(self) -> Attack:
        """The evaluation attack: ``attack.pgd`` as configured."""
        return Attack("pgd", self.clamp, dict(self.pgd))

    @property
    def train_attack(self) -> Attack:
        """The attack adversarial training generates its examples with."""
        return Attack("pgd", self.clamp, {**self.pgd, "steps": self.train_steps})


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


def make_robust(
    checkpoint, model: nn.Module, training: Dataset, x: torch.Tensor, y: torch.Tensor, epsilon: float, settings, batch_size
) -> tuple[nn.Module, pd.DataFrame]:
    """F* from the checkpoint's network ``model``, and the normal and robust networks'
    accuracies (clean, and under PGD made against each at ``epsilon``)."""
    data = training_subset(training, settings.max_train, checkpoint.seed)
    robust = robust_network(
        model,
        data,
        checkpoint.train_config.optimizer,
        settings.train_attack,
        epsilon,
        settings.epochs,
        checkpoint.train_config.batch_size,
        checkpoint.seed,
    )
    rows = [
        {"network": name, "finetune_epoch": 0, **evaluate(net, x, y, settings.attack, epsilon, batch_size), "epsilon": epsilon}
        for name, net in (("normal", model), ("robust", robust))
    ]
    log.info("normal and robust networks: %s", rows)
    return robust, pd.DataFrame(rows, columns=["network", "finetune_epoch", "acc_clean", "acc_adv", "epsilon"])


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
    """For split ``k``: F_sr measured, f_b fine-tuned (rows per epoch, stopping at Acc* −
    δ), beside ``base`` (the normal and robust rows of :func:`make_robust`); and the
    dependency (CKA) of consecutive layers for F*, F_sr and the fine-tuned network, each on
    adversarial images made against itself."""
    attack, epsilon = settings.attack, float(base["epsilon"].iloc[0])
    target = float(base.loc[base["network"] == "robust", "acc_adv"].iloc[0]) - settings.delta
    semirobust = semirobust_network(robust, model, k)
    first = split_layers(model, k)[1][0]

    def measured(network: nn.Module) -> dict:
        return evaluate(network, x, y, attack, epsilon, batch_size)

    rows = [{**row, "split_k": k, "first_fb_layer": first} for row in base.to_dict("records")]
    rows.append({"split_k": k, "first_fb_layer": first, "network": "semirobust", "finetune_epoch": 0, **measured(semirobust)})
    data = training_subset(training, settings.max_train, checkpoint.seed)
    runs = list(
        finetune_second_part(
            semirobust,
            k,
            data,
            checkpoint.train_config.optimizer,
            settings.train_attack,
            epsilon,
            settings.finetune_epochs,
            target,
            measured,
            checkpoint.train_config.batch_size,
            checkpoint.seed,
        )
    )
    for epoch, _, found in runs:
        rows.append({"split_k": k, "first_fb_layer": first, "network": "finetuned", "finetune_epoch": epoch, **found})
        log.info("k = %d, fine-tuning epoch %d: %s (target %.4f)", k, epoch, found, target)
    finetuned = runs[-1][1]  # the one network, trained in place epoch after epoch
    dependencies = [
        {"split_k": k, "network": name, **row}
        for name, network in (("robust", robust), ("semirobust", semirobust), ("finetuned", finetuned))
        for row in dependency(network, k, attack(network, x, y, epsilon, batch_size), y, batch_size)
    ]
    table = pd.DataFrame(rows).assign(epsilon=epsilon, target_acc_adv=target)
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


def _network_accuracy(semirobust: pd.DataFrame, network: str) -> pd.Series:
    """Per (dataset, model, seed, epoch, split_k): ``network``'s adversarial accuracy (the
    fine-tuned network's after its last epoch)."""
    rows = semirobust[semirobust["network"] == network]
    rows = rows[rows["finetune_epoch"] == rows.groupby(SPLIT_RUN)["finetune_epoch"].transform("max")]
    return rows.set_index(SPLIT_RUN)["acc_adv"]


def promotes_robustness(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Acc_sr − Acc (adversarial accuracy of the semirobust network minus the normal one's),
    one value per (seed, checkpoint) — the splits of one checkpoint share F* and Acc, so they
    are averaged —: holds when the mean is > 0 and the exact two-sided Wilcoxon p < α."""
    semirobust = tables["semirobust"]
    differences = (_network_accuracy(semirobust, "semirobust") - _network_accuracy(semirobust, "normal")).dropna()
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
    """Over the (seed, checkpoint, split) whose F_sr started below Acc* − δ: the fraction whose
    fine-tuned f_b reaches it, per seed; holds when above 0.5. A split already there before
    fine-tuning is counted out: it shows nothing about fine-tuning."""
    delta, semirobust = options["semirobust"]["delta"], tables["semirobust"]
    target = _network_accuracy(semirobust, "robust") - delta
    tuned = semirobust[semirobust["network"] == "finetuned"].set_index(SPLIT_RUN)
    if tuned.empty:
        return undetermined("no fine-tuning was run")
    started = _network_accuracy(semirobust, "semirobust").reindex(target.index).dropna()  # splits F_sr was measured on
    below = started < target.reindex(started.index)
    already = int((~below).sum())
    counted_out = (
        f"; counted out: {already} (seed, checkpoint, split) already at Acc* − {delta} before fine-tuning" if already else ""
    )
    keep = below[below].index
    if keep.empty:
        return undetermined(f"no split started below Acc* − {delta}{counted_out}")
    reached = (tuned["acc_adv"] >= target.reindex(tuned.index)).groupby(level=SPLIT_RUN).any().reindex(keep, fill_value=False)
    detail = (
        f"fine-tuned f_b reached Acc* − {delta} adversarial accuracy at {int(reached.sum())} of {len(reached)} "
        f"(seed, checkpoint, split) within {int(tuned['finetune_epoch'].max())} epochs"
    )
    return fraction_finding(reached, reached.index.get_level_values("seed"), 0.5, detail, strict=True, note=counted_out)


def dependency_rises_toward_output(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Kendall's τ between a consecutive pair's position and its CKA, per (seed, checkpoint,
    split, network), averaged per seed; holds when the mean is > 0."""
    taus = []
    for (seed, *_), rows in tables["dependency"].groupby(["seed", "epoch", "split_k", "network"]):
        rows = rows.dropna(subset=["cka"])
        if rows["position"].nunique() >= 2 and rows["cka"].nunique() >= 2:
            taus.append((seed, kendall_tau_b(rows["position"], rows["cka"])))
    if not taus:
        return undetermined("no split has two layer pairs with CKA")
    found = pd.DataFrame(taus, columns=["seed", "tau"])
    per_seed = per_seed_mean(found["tau"], found["seed"])
    detail = f"Kendall τ between position and CKA of consecutive layers, over {len(found)} (seed, checkpoint, split, network)"
    value = float(per_seed.mean())
    return Finding(value, len(per_seed), value > 0, detail, per_seed_std(found["tau"], found["seed"]))


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
    """The config keys the semirobust claims read."""
    return {"delta": config["semirobust"]["delta"]}


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
        "fraction of splits that started below Acc* − δ and reached it > 0.5",
        1,
        "seeds (each the fraction over its checkpoints and splits)",
        ("semirobust",),
        finetune_recovers,
    ),
    ClaimSpec(
        "dependency_rises_toward_output",
        "Consecutive layers depend more on each other toward the output (linear CKA; ours).",
        "mean Kendall τ between a pair's position and its CKA > 0",
        1,
        "seeds (each the mean over its checkpoints, splits and networks)",
        ("dependency",),
        dependency_rises_toward_output,
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
    claims=CLAIMS,
    claim_options=claim_options,
    prerequisites=(
        Prerequisite(
            "robust",
            "F*: the checkpoint's network adversarially trained as a whole, and the accuracies of the normal and the "
            "robust network under PGD made against each.",
            {"robust": "robust/epoch{epoch}.pt", "robust_table": "robust/epoch{epoch}.parquet"},
            _make_robust,
        ),
    ),
    summaries=(
        Summary(
            "semirobust_scores",
            "Beside each split, Acc_sr − Acc and the mean r_xε and r_ε of f_a's and f_b's layers.",
            ("scores", "semirobust"),
            lambda tables, params: split_scores(tables["scores"], tables["semirobust"], {params["model"]: params["layers"]}),
            lambda config, model: {"model": model, "layers": model_roles(config, model)["layers"]},
        ),
    ),
    epochs=semirobust_epochs,
    trains=True,
    attack=lambda settings: settings.attack.name,
)
