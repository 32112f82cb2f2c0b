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

from ..artifacts import TrainConfig
from ..attack import Attack
from ..config import (
    ConfigError,
    attack_settings,
    block_units,
    built_as,
    dataset_info,
    is_given,
    model_datasets,
    model_epochs,
)
from ..data import Dataset, training_subset
from ..evaluation import accuracy, whitebox_accuracies
from ..models import _recorder, backbone, block_io_shapes
from ..scoring.claims import ClaimSpec, Finding, fraction_finding, per_seed_mean, per_seed_std, undetermined
from ..train import cross_entropy, train_one_epoch
from .base import RUN_COLUMNS, Context, RankMeasures, Settings, StressTest
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
class TriageSettings(Settings):
    """What a triage job trains: ``schemes`` for ``epochs`` each on ``max_train`` training
    images (None: all), ``distil`` with ``temperature`` and ``alpha``; S's stride by
    ``stride`` (:func:`compression_stride`'s rule), its convolution drawn from ``init``; every
    network measured under ``attack`` (:class:`fragility.attack.Attack`'s keyword arguments)."""

    schemes: tuple[str, ...] = SCHEMES
    epochs: int = 1
    temperature: float = 4.0
    alpha: float = 0.9
    max_train: int | None = None
    stride: str = "exact"
    init: str = "kaiming_uniform"
    attack: dict = dataclasses.field(default_factory=lambda: {"method": "fgsm", "clamp": True, "options": {}})

    @classmethod
    def from_config(cls, config: dict, model: str) -> TriageSettings:
        """``triage.*`` (``triage.epochs`` null: ``train.checkpoint_every``), the run's
        initialiser and attack."""
        triage = config["triage"]
        return cls(
            schemes=tuple(s for s in SCHEMES if s in triage["schemes"]),
            epochs=triage["epochs"] if triage["epochs"] is not None else config["train"]["checkpoint_every"],
            temperature=triage["temperature"],
            alpha=triage["alpha"],
            max_train=triage["max_train"],
            stride=triage["stride"],
            init=config["init"],
            attack=attack_settings(config),
        )


def triage_units(config: dict, model: str) -> list[str]:
    """The blocks of ``model`` that triage compresses (the configured blocks; none without
    ``triage.schemes`` or a training split)."""
    if not config["triage"]["schemes"]:
        return []
    if not any(dataset_info(config, d).has_train for d in model_datasets(config, model)):
        return []
    return block_units(config, model)


def triage_epochs(config: dict, model: str) -> list[int]:
    """The checkpoint epochs of ``model`` that triage runs from (``triage.checkpoints``)."""
    epochs = model_epochs(config, model)
    return epochs if config["triage"]["checkpoints"] == "all" else epochs[-1:]


def check(config: dict, model: str) -> None:
    """Every triaged block of ``model`` replaceable by one 3×3 convolution (an integer stride
    by ``triage.stride``'s rule) on the images of each dataset it runs on."""
    blocks = triage_units(config, model)
    if not blocks:
        return
    key = "blocks." + (model if model in config["blocks"] else "default")
    architecture, stem, _, _ = built_as(config, model)
    side = None if is_given(config, model) else config["image_size"]  # the network sees images resized to it
    for dataset in model_datasets(config, model):
        info = dataset_info(config, dataset)
        shape = (info.image_shape[0], side, side) if side else info.image_shape
        for block, (shape_in, shape_out) in block_io_shapes(architecture, blocks, stem, info.num_classes, shape).items():
            try:
                compression_stride(block, shape_in, shape_out, config["triage"]["stride"])
            except TriageError as exc:
                raise ConfigError(f"config key '{key}': {model} on {dataset}: {exc}") from exc


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
    train: TrainConfig,
    teacher: nn.Module,
    seed: int,
):
    """Train a copy of ``compressed`` by ``scheme`` with ``train``'s optimizer and batch size
    (``teacher``: the base network, for ``distil``); yields (epoch, mean loss, the network)
    after each of ``settings.epochs``. Every scheme starts from the same global RNG and data
    order, seeded by ``seed``."""
    network = copy.deepcopy(compressed)
    adam = train.optimizer(trainable_parameters(network, block, scheme))
    loss = distillation_loss(teacher, settings.temperature, settings.alpha) if scheme == "distil" else cross_entropy
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    for epoch in range(1, settings.epochs + 1):
        mean_loss = train_one_epoch(network, adam, data, train.batch_size, order, loss, scheme_train_mode(block, scheme))
        yield epoch, mean_loss, network


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def triage_block(
    model: nn.Module,
    block: str,
    training: Dataset,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    base: tuple[float, float],
    epsilon: float,
    settings: TriageSettings,
    train: TrainConfig,
    seed: int,
    batch_size: int = 256,
) -> pd.DataFrame:
    """Every scheme's accuracies (clean, and under ``settings.attack`` made against the
    compressed network at ``epsilon``) at triage epoch 0 and after each epoch, with the
    ``base`` (clean, adversarial) accuracies of ``model``; each scheme trains with ``train``'s
    optimizer and batch size from the same state. ``model`` is left as it was."""
    compressed = compress(model, block, x[:batch_size], settings.init, seed, settings.stride)
    data = training_subset(training, settings.max_train, seed)
    attack = Attack(**settings.attack)
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
        for epoch, mean_loss, network in scheme_epochs(compressed, block, scheme, data, settings, train, model, seed):
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


def _run(context: Context, unit: str, settings: TriageSettings) -> dict[str, pd.DataFrame]:
    model, testset, adversarial, batch_size = context.model, context.testset, context.adversarial, context.options.batch_size
    base = context.shared(
        "unperturbed_accuracy",
        lambda: (accuracy(model, testset.x, testset.y, batch_size), accuracy(model, adversarial.x_adv, testset.y, batch_size)),
    )
    checkpoint = context.checkpoint
    table = triage_block(
        model,
        unit,
        context.training,
        testset.x,
        testset.y,
        base=base,
        epsilon=adversarial.epsilon,
        settings=settings,
        train=checkpoint.train_config,
        seed=checkpoint.seed,
        batch_size=batch_size,
    )
    return {"triage": table, "triage_drops": drops(table)}


# ------------------------------------------------------------ the triage paper's claims (METHOD §13, §15)

TRIAGE_RUN = ["dataset", "model", "seed", "epoch", "block"]


def recovery_epochs(triage: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per (dataset, model, seed, epoch, block, scheme): ``epochs_to_recover``, the first
    triage epoch whose clean accuracy is at least base − ``tolerance`` (NaN: never), and the
    scheme's ``last_epoch`` (METHOD §13)."""
    keys = TRIAGE_RUN + ["scheme"]
    recovered = triage[triage["acc_clean"] >= triage["base_acc_clean"] - tolerance]
    first = recovered.groupby(keys)["triage_epoch"].min().rename("epochs_to_recover")
    last = triage.groupby(keys)["triage_epoch"].max().rename("last_epoch")
    return pd.concat([last, first], axis=1).reset_index()


def _final(triage: pd.DataFrame, scheme: str) -> pd.DataFrame:
    rows = triage[triage["scheme"] == scheme]
    return rows[rows["triage_epoch"] == rows.groupby(TRIAGE_RUN)["triage_epoch"].transform("max")]


def block_independent(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """The range over blocks of the final ``local`` clean accuracy (mean over seeds and
    checkpoints); spread = std over seeds of each seed's range; holds when ≤ ``triage.block_range``."""
    block_range = options["triage"]["block_range"]
    final = _final(tables["triage"], "local")
    if final.empty:
        return undetermined("the local scheme was not run (triage.schemes)")
    means = final.groupby("block")["acc_clean"].mean()
    per_seed = final.groupby(["seed", "block"])["acc_clean"].mean().groupby("seed").agg(lambda a: a.max() - a.min())
    value = float(means.max() - means.min())
    detail = (
        f"final local clean accuracy from {means.min():.3f} ({means.idxmin()}) to {means.max():.3f} ({means.idxmax()}) "
        f"over {len(means)} blocks; holds at a range of at most {block_range}"
    )
    spread = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan")
    return Finding(value, len(means), value <= block_range, detail, spread)


def finetune_recovers(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """The fraction of (checkpoint, block) whose ``global`` scheme recovers the base clean
    accuracy within ``triage.tolerance``, per seed; holds when above 0.5."""
    tolerance = options["triage"]["tolerance"]
    triage = tables["triage"]
    found = recovery_epochs(triage[triage["scheme"] == "global"], tolerance)
    if found.empty:
        return undetermined("the global scheme was not run (triage.schemes)")
    recovered = found["epochs_to_recover"].notna()
    detail = (
        f"global fine-tuning reached base − {tolerance} clean accuracy for {int(recovered.sum())} of {len(found)} "
        f"(seed, checkpoint, block) within {int(found['last_epoch'].max())} triage epochs"
    )
    return fraction_finding(recovered, found["seed"], 0.5, detail, strict=True)


def distillation_faster_capped(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Mean over (seed, checkpoint, block) of epochs_to_recover(global) − epochs_to_recover(distil),
    a scheme that never recovers counted as recovering one epoch after its last (pairs where
    neither recovers say nothing and are left out); holds when the mean is > 0 and no
    ``distil`` clean accuracy exceeds base + ``triage.tolerance``."""
    tolerance = options["triage"]["tolerance"]
    triage = tables["triage"]
    found = recovery_epochs(triage[triage["scheme"].isin(["global", "distil"])], tolerance)
    if set(found["scheme"]) != {"global", "distil"}:
        return undetermined("needs the global and distil schemes (triage.schemes)")
    found["epochs"] = found["epochs_to_recover"].fillna(found["last_epoch"] + 1)
    found["recovered"] = found["epochs_to_recover"].notna()
    wide = found.pivot_table(index=TRIAGE_RUN, columns="scheme", values=["epochs", "recovered"], aggfunc="first")
    wide = wide.dropna(subset=[("recovered", "global"), ("recovered", "distil")])  # a block run under both schemes
    compared = wide[wide["recovered"]["global"].astype(bool) | wide["recovered"]["distil"].astype(bool)]
    distil = triage[triage["scheme"] == "distil"]
    excess = float((distil["acc_clean"] - distil["base_acc_clean"]).max())
    capped = excess <= tolerance
    cap = f"distil at most {excess:+.3f} above the base clean accuracy (cap: +{tolerance})"
    if compared.empty:
        return undetermined(f"neither scheme recovered anywhere; {cap}")
    faster = compared["epochs"]["global"] - compared["epochs"]["distil"]
    seeds = faster.index.get_level_values("seed")
    per_seed = per_seed_mean(faster, seeds)
    detail = f"epochs to recover, global − distil, over {len(faster)} (seed, checkpoint, block) where one recovered; {cap}"
    value = float(per_seed.mean())
    return Finding(value, len(per_seed), bool(value > 0 and capped), detail, per_seed_std(faster, seeds))


def claim_options(config: dict) -> dict:
    """The config keys the triage claims read."""
    return {"tolerance": config["triage"]["tolerance"], "block_range": config["triage"]["block_range"]}


CLAIMS = (
    ClaimSpec(
        "triage_block_independent",
        "Accuracy after compression does not depend on which block was compressed (Nowak & Corso 2018).",
        "range over blocks of the final local clean accuracy ≤ triage.block_range",
        2,
        "blocks (each the mean over seeds and checkpoints)",
        ("triage",),
        block_independent,
    ),
    ClaimSpec(
        "triage_finetune_recovers",
        "Fine-tuning the whole compressed network recovers the base accuracy (Nowak & Corso 2018).",
        "fraction of (checkpoint, block) whose global scheme reaches base − triage.tolerance > 0.5",
        1,
        "seeds (each the fraction over its checkpoints and blocks)",
        ("triage",),
        finetune_recovers,
    ),
    ClaimSpec(
        "triage_distillation_faster_capped",
        "Distillation recovers faster than global fine-tuning and caps accuracy at the base (Nowak & Corso 2018).",
        "mean epochs to recover, global − distil, > 0 and no distil accuracy above base + triage.tolerance",
        1,
        "seeds (each the mean over its checkpoints and blocks)",
        ("triage",),
        distillation_faster_capped,
    ),
)


TEST = StressTest(
    name="triage",
    description="One block replaced by a single 3×3 convolution and retrained by three schemes (Nowak & Corso 2018).",
    tables={"triage": RUN_COLUMNS + ["attack"] + TRIAGE_COLUMNS, "triage_drops": RUN_COLUMNS + ["attack"] + DROP_COLUMNS},
    units=triage_units,
    settings=TriageSettings,
    run=_run,
    check=check,
    claims=CLAIMS,
    claim_options=claim_options,
    ranks=RankMeasures("triage_drops", "compression", ("triage_local",), ("drop_clean", "drop_adv"), sign=-1),
    epochs=triage_epochs,
    trains=True,
)
