"""Structural compression (deep net triage, Nowak & Corso 2018; METHOD §13): how much does
the network suffer when one block is replaced by a single layer, and how fast does it recover?

Block B, mapping (C_in, H, W) to (C_out, H', W'), becomes S = Conv2d(C_in, C_out, 3, stride
H/H', padding 1, no bias) → BatchNorm2d(C_out) → ReLU, its convolution drawn from the run's
initialiser seeded by (seed, block); everything else is the checkpoint's network. Each
scheme of :data:`SCHEMES` trains the compressed network from there with Adam (``train.lr``,
``train.batch_size``, data order seeded by the run's seed):

- ``local``: only S trains; every other parameter is frozen and every other BatchNorm stays
  in eval mode, so no running statistic outside S moves;
- ``global``: every parameter trains;
- ``distil``: every parameter trains on α·T²·KL(p_T(teacher) ‖ p_T(student)) + (1 − α)·CE,
  the teacher being the unmodified checkpoint network in eval mode (Hinton et al. 2015).

Right after compression (triage epoch 0) and after every triage epoch the compressed network
is measured on the clean test set and under the configured attack **regenerated against
it** at the run's ε (a set made on the base network would flatter any change), beside the
base network's accuracies on the same test images under its own attack (the checkpoint's
adversarial set).
"""

from __future__ import annotations

import copy
import dataclasses
import logging

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..attack import Attack
from ..data import Dataset, training_subset
from ..evaluation import accuracy, whitebox_accuracies
from ..models import _recorder, backbone
from ..train import cross_entropy, train_one_epoch
from .base import RUN_COLUMNS, Context, RankMeasures, StressTest
from .reinit import _fresh_draw

log = logging.getLogger(__name__)

SCHEMES = ("local", "global", "distil")
STRIDE_RULES = ("exact", "ceil")
TRIAGE_COLUMNS = [
    "block",
    "scheme",
    "triage_epoch",
    "acc_clean",
    "acc_adv",
    "base_acc_clean",
    "base_acc_adv",
    "params_block",
    "params_compressed",
    "epsilon",
    "train_size",
]
DROP_COLUMNS = ["layer", "unit_kind", "compression", "acc_clean", "acc_adv", "drop_clean", "drop_adv"]


class TriageError(ValueError):
    """A block that cannot be replaced by one 3×3 convolution; the message names it."""


@dataclasses.dataclass(frozen=True)
class TriageSettings:
    """What a triage job trains: ``schemes`` for ``epochs`` each on ``max_train`` training
    images (None: all), ``distil`` with ``temperature`` and ``alpha``; S's stride by
    ``stride`` (:func:`compression_stride`'s rule)."""

    schemes: tuple[str, ...] = SCHEMES
    epochs: int = 1
    temperature: float = 4.0
    alpha: float = 0.9
    max_train: int | None = None
    stride: str = "exact"


def block_shapes(model: nn.Module, block: str, x: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (C, H, W) that ``block`` receives and returns when ``model`` classifies ``x``."""
    seen: dict[str, tuple] = {}
    hook = backbone(model).get_submodule(block).register_forward_hook(_recorder(seen, block))
    try:
        with torch.no_grad():
            model(x.to(next(model.parameters()).device))
    finally:
        hook.remove()
    args, out = seen[block]
    return tuple(args[0].shape[1:]), tuple(out.shape[1:])


def compression_stride(block: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...], rule: str = "exact") -> int:
    """The stride of the 3×3 convolution (padding 1) replacing ``block``. ``exact`` (METHOD
    §13): s = H/H' = W/W', an integer; ``ceil``: the smallest s whose convolution maps H to
    H' and W to W' (7 → 4 at s = 2, as the block's own strided convolution rounds up). A
    :class:`TriageError` when the rule finds none."""
    if rule not in STRIDE_RULES:
        raise ValueError(f"unknown stride rule {rule!r}; choose from {STRIDE_RULES}")
    (_, height, width), (_, out_height, out_width) = in_shape, out_shape
    if rule == "exact":
        stride = height // out_height
        found = height % out_height == 0 and width % out_width == 0 and width // out_width == stride
    else:
        stride = -(-height // out_height)
        found = all((size - 1) // stride + 1 == out for size, out in ((height, out_height), (width, out_width)))
    if not found:
        hint = "; triage.stride: ceil accepts sizes a strided convolution rounds up" if rule == "exact" else ""
        raise TriageError(
            f"block {block!r} maps {height}×{width} to {out_height}×{out_width}: no integer stride ({rule} rule), "
            f"so it cannot be replaced by one 3×3 convolution (METHOD §13){hint}"
        )
    return stride


def compressed_layer(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """S: Conv2d(3×3, ``stride``, padding 1, no bias) → BatchNorm2d → ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())


def compress(model: nn.Module, block: str, x: torch.Tensor, init: str, seed: int, stride_rule: str = "exact") -> nn.Module:
    """A copy of ``model`` (in eval mode) with ``block`` replaced by S, shaped from a forward
    pass on ``x`` (:func:`compression_stride`'s ``stride_rule``) and drawn from ``init``
    seeded by (``seed``, block)."""
    in_shape, out_shape = block_shapes(model, block, x)
    layer = compressed_layer(in_shape[0], out_shape[0], compression_stride(block, in_shape, out_shape, stride_rule))
    compressed = copy.deepcopy(model)
    parent, _, child = block.rpartition(".")
    setattr(backbone(compressed).get_submodule(parent), child, layer.to(next(model.parameters()).device))
    with torch.no_grad():
        conv = layer[0].weight
        conv.copy_(_fresh_draw(compressed, f"{block}.0", init, seed)[f"{block}.0.weight"])
    return compressed.eval()


def trainable_parameters(model: nn.Module, block: str, scheme: str) -> list[nn.Parameter]:
    """The parameters ``scheme`` trains (``local``: S's; otherwise all), the rest frozen."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown triage scheme {scheme!r}; choose from {SCHEMES}")
    inside = {id(p) for p in backbone(model).get_submodule(block).parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(scheme != "local" or id(parameter) in inside)
    return [p for p in model.parameters() if p.requires_grad]


def scheme_train_mode(block: str, scheme: str):
    """``train_mode`` for :func:`fragility.train.train_one_epoch`: ``local`` trains S alone
    (every other BatchNorm in eval mode), the other schemes the whole network."""

    def train_mode(model: nn.Module) -> None:
        if scheme == "local":
            model.eval()
            backbone(model).get_submodule(block).train()
        else:
            model.train()

    return train_mode


def distillation_loss(teacher: nn.Module, temperature: float, alpha: float):
    """``loss(logits, x, y)`` = α·T²·KL(p_T(teacher(x)) ‖ p_T(logits)) + (1 − α)·CE(logits, y)."""

    def loss(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = F.log_softmax(teacher(x) / temperature, dim=1)
        student = F.log_softmax(logits / temperature, dim=1)
        kl = F.kl_div(student, target, reduction="batchmean", log_target=True)
        return alpha * temperature**2 * kl + (1 - alpha) * F.cross_entropy(logits, y)

    return loss


def scheme_epochs(
    compressed: nn.Module,
    block: str,
    scheme: str,
    data: Dataset,
    settings: TriageSettings,
    optimizer,
    teacher: nn.Module,
    seed: int,
    batch_size: int,
):
    """Train a copy of ``compressed`` by ``scheme`` (``teacher``: the base network, for
    ``distil``); yields (epoch, mean loss, the network) after each of ``settings.epochs``.
    Every scheme starts from the same global RNG and data order, seeded by ``seed``."""
    network = copy.deepcopy(compressed)
    adam = optimizer(trainable_parameters(network, block, scheme))
    loss = distillation_loss(teacher, settings.temperature, settings.alpha) if scheme == "distil" else cross_entropy
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    for epoch in range(1, settings.epochs + 1):
        yield epoch, train_one_epoch(network, adam, data, batch_size, order, loss, scheme_train_mode(block, scheme)), network


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def triage_block(
    model: nn.Module,
    block: str,
    training: Dataset,
    x: torch.Tensor,
    y: torch.Tensor,
    base: tuple[float, float],
    attack: Attack,
    epsilon: float,
    settings: TriageSettings,
    optimizer,
    init: str,
    seed: int,
    batch_size: int = 256,
    train_batch_size: int = 128,
) -> pd.DataFrame:
    """Every scheme's accuracies (clean, and under ``attack`` made against the compressed
    network at ``epsilon``) at triage epoch 0 and after each epoch, with the ``base``
    (clean, adversarial) accuracies of ``model``. ``optimizer(parameters)`` makes each
    scheme's fresh Adam. ``model`` is left as it was."""
    compressed = compress(model, block, x[:batch_size], init, seed, settings.stride)
    data = training_subset(training, settings.max_train, seed)
    fixed = {
        "block": block,
        "base_acc_clean": base[0],
        "base_acc_adv": base[1],
        "params_block": parameter_count(backbone(model).get_submodule(block)),
        "params_compressed": parameter_count(backbone(compressed).get_submodule(block)),
        "epsilon": epsilon,
        "train_size": len(data.y_train),
    }

    def measure(network: nn.Module) -> dict:
        return whitebox_accuracies(network, x, y, attack, epsilon, batch_size)

    start = measure(compressed)
    rows = []
    for scheme in settings.schemes:
        rows.append({**fixed, "scheme": scheme, "triage_epoch": 0, **start})
        trained = scheme_epochs(compressed, block, scheme, data, settings, optimizer, model, seed, train_batch_size)
        for epoch, mean_loss, network in trained:
            rows.append({**fixed, "scheme": scheme, "triage_epoch": epoch, **measure(network)})
            log.info("%s, %s, epoch %d/%d: loss %.4f, %s", block, scheme, epoch, settings.epochs, mean_loss, rows[-1])
    return pd.DataFrame(rows, columns=TRIAGE_COLUMNS)


def drops(table: pd.DataFrame) -> pd.DataFrame:
    """Per scheme, the accuracies after its last triage epoch and the drops from the base
    network's (criticality: ``triage_local``'s drops, METHOD §13), as rank measures."""
    last = table[table["triage_epoch"] == table.groupby("scheme")["triage_epoch"].transform("max")]
    return pd.DataFrame(
        {
            "layer": last["block"],
            "unit_kind": "block",
            "compression": "triage_" + last["scheme"],
            "acc_clean": last["acc_clean"],
            "acc_adv": last["acc_adv"],
            "drop_clean": last["base_acc_clean"] - last["acc_clean"],
            "drop_adv": last["base_acc_adv"] - last["acc_adv"],
        },
        columns=DROP_COLUMNS,
    ).reset_index(drop=True)


def _units(config: dict, model: str) -> list[str]:
    from ..config import triage_units

    return triage_units(config, model)


def _epochs(config: dict, model: str) -> list[int]:
    from ..config import triage_epochs

    return triage_epochs(config, model)


def _params(config: dict, model: str, units: list[str]) -> dict:
    from ..config import attack_settings, triage_settings

    return {"triage": triage_settings(config, model), "attack": attack_settings(config)}


def _run(context: Context, unit: str, params: dict) -> dict[str, pd.DataFrame]:
    model, tests, adversarial, batch_size = context.model, context.tests, context.adversarial, context.options.batch_size
    checkpoint = context.checkpoint
    base = context.shared(
        "unperturbed_accuracy",
        lambda: (accuracy(model, tests.x, tests.y, batch_size), accuracy(model, adversarial.x_adv, tests.y, batch_size)),
    )
    settings = params["triage"]
    table = triage_block(
        model,
        unit,
        context.training,
        tests.x,
        tests.y,
        base,
        Attack(**params["attack"]),
        adversarial.epsilon,
        TriageSettings(
            tuple(settings["schemes"]),
            settings["epochs"],
            settings["temperature"],
            settings["alpha"],
            settings["max_train"],
            settings["stride"],
        ),
        checkpoint.train_config.optimizer,
        settings["init"],
        checkpoint.seed,
        batch_size,
        checkpoint.train_config.batch_size,
    )
    return {"triage": table, "triage_drops": drops(table)}


TEST = StressTest(
    name="triage",
    description="One block replaced by a single 3×3 convolution and retrained by three schemes (Nowak & Corso 2018).",
    tables={"triage": RUN_COLUMNS + ["attack"] + TRIAGE_COLUMNS, "triage_drops": RUN_COLUMNS + ["attack"] + DROP_COLUMNS},
    units=_units,
    params=_params,
    run=_run,
    ranks=RankMeasures("triage_drops", "compression", ("triage_local",), ("drop_clean", "drop_adv"), sign=-1),
    epochs=_epochs,
    trains=True,
)
