"""Structural compression (deep net triage, Nowak & Corso 2018; METHOD §13): how much does
the network suffer when one block is replaced by a single layer, and how fast does it recover?

Block B, mapping (C_in, H, W) to (C_out, H', W'), becomes S = Conv2d(C_in, C_out, 3, stride
s = ⌈H/H'⌉, padding 1, no bias) → BatchNorm2d(C_out) → ReLU; everything else is the
checkpoint's network. S starts from each initialisation of :data:`INITS`:

- ``random``: its convolution drawn from the run's initialiser seeded by (seed, block), its
  BatchNorm at its defaults;
- ``fit``: its convolution the least-squares fit of B's output from B's input on training
  images (:func:`fitted_weight`), its BatchNorm the identity: the best single linear layer
  for the block before any training.

From each, each scheme of :data:`SCHEMES` trains the compressed network with Adam
(``train.lr``, ``train.batch_size``, data order seeded by the run's seed):

- ``local``: only S trains; every other parameter is frozen and every other BatchNorm stays
  in eval mode, so no running statistic outside S moves;
- ``global``: every parameter trains;
- ``local_global``: ``local`` for the first ⌈E/2⌉ of the E epochs, then ``global`` with a
  fresh Adam (the paper's first version);
- ``distil``: every parameter trains on α·T²·KL(p_T(teacher) ‖ p_T(student)) + (1 − α)·CE,
  the teacher being the unmodified checkpoint network in eval mode (Hinton et al. 2015).

Right after compression (triage epoch 0) and after every triage epoch the compressed network
is measured on the clean test set and under the configured attack **regenerated against
it** at the run's ε (a set made on the base network would flatter any change), beside the
base network's accuracies on the same test images under its own attack (the checkpoint's
adversarial set), and by the linear CKA between S's output and B's output in the base
network on the test images (:func:`fragility.scoring.similarity.linear_cka`): how much of the
block's representation the single layer holds.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..artifacts import TrainConfig
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
from ..progress import progress as bar
from ..scoring.claims import ClaimSpec, Finding, fraction_finding, per_seed_mean, per_seed_std, undetermined
from ..scoring.similarity import linear_cka
from ..structure import torch_installed
from .base import RUN_COLUMNS, Context, RankMeasures, Settings, StressTest
from .reinit import _fresh_draw

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    import torch
    from torch import nn


log = logging.getLogger(__name__)

SCHEMES = ("local", "global", "local_global", "distil")
INITS = ("random", "fit")
RIDGE = 1e-4  # the fit's ridge, times the mean patch energy trace(XᵀX)/d, where least squares is ill-posed
TRIAGE_COLUMNS = [
    "block",
    "init",
    "scheme",
    "triage_epoch",
    "acc_clean",
    "acc_adv",
    "cka",
    "base_acc_clean",
    "base_acc_adv",
    "params_block",
    "params_compressed",
    "epsilon",
    "train_size",
]
DROP_COLUMNS = ["layer", "unit_kind", "init", "compression", "acc_clean", "acc_adv", "drop_clean", "drop_adv"]


class TriageError(ValueError):
    """A block that cannot be replaced by one 3×3 convolution; the message names it."""


@dataclasses.dataclass(frozen=True)
class TriageSettings(Settings):
    """What a triage job trains: from each of ``inits`` (``fit`` on ``fit_images`` training
    images), ``schemes`` for ``epochs`` each on ``max_train`` training images (None: all),
    ``distil`` with ``temperature`` and ``alpha``; the ``random`` init draws S's convolution
    from ``init``; every network measured under ``attack`` (:class:`fragility.attack.Attack`'s
    keyword arguments)."""

    schemes: tuple[str, ...] = SCHEMES
    inits: tuple[str, ...] = INITS
    epochs: int = 1
    fit_images: int = 512
    temperature: float = 4.0
    alpha: float = 0.9
    max_train: int | None = None
    init: str = "kaiming_uniform"
    attack: dict = dataclasses.field(default_factory=lambda: {"method": "fgsm", "clamp": True, "options": {}})

    @classmethod
    def from_config(cls, config: dict, model: str) -> TriageSettings:
        """``triage.*`` (``triage.epochs`` null: ``train.checkpoint_every``), the run's
        initialiser and attack."""
        triage = config["triage"]
        return cls(
            schemes=tuple(s for s in SCHEMES if s in triage["schemes"]),
            inits=tuple(i for i in INITS if i in triage["inits"]),
            epochs=_epochs(config),
            fit_images=triage["fit_images"],
            temperature=triage["temperature"],
            alpha=triage["alpha"],
            max_train=triage["max_train"],
            init=config["init"],
            attack=attack_settings(config),
        )


def _epochs(config: dict) -> int:
    epochs = config["triage"]["epochs"]
    return epochs if epochs is not None else config["train"]["checkpoint_every"]


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
    """``local_global`` given at least two triage epochs (with one it is ``local``), and every
    triaged block of ``model`` replaceable by one 3×3 convolution (:func:`compression_stride`)
    on the images of each dataset it runs on (where torch is installed: the shapes need a
    forward pass; elsewhere the triage job checks its block before it compresses it:
    :func:`block_shapes`, :func:`compression_stride`)."""
    blocks = triage_units(config, model)
    if not blocks:
        return
    if "local_global" in config["triage"]["schemes"] and _epochs(config) < 2:
        raise ConfigError(
            f"config key 'triage.schemes': local_global trains local for the first half of the triage epochs (rounded "
            f"up), then global: with {_epochs(config)} epoch it is local; give triage.epochs ≥ 2 or drop local_global"
        )
    if not torch_installed():
        return
    from ..models import block_io_shapes

    key = "blocks." + (model if model in config["blocks"] else "default")
    architecture, stem, _, _ = built_as(config, model)
    side = None if is_given(config, model) else config["image_size"]  # the network sees images resized to it
    for dataset in model_datasets(config, model):
        info = dataset_info(config, dataset)
        shape = (info.image_shape[0], side, side) if side else info.image_shape
        for block, (shape_in, shape_out) in block_io_shapes(architecture, blocks, stem, info.num_classes, shape).items():
            try:
                compression_stride(block, shape_in, shape_out)
            except TriageError as exc:
                raise ConfigError(f"config key '{key}': {model} on {dataset}: {exc}") from exc


def block_shapes(model: nn.Module, block: str, x: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (C, H, W) that ``block`` receives and returns when ``model`` classifies ``x`` (one
    line if it does not map one 4-D tensor to one: checked here too, as planning without torch
    cannot)."""
    from ..models import block_io

    return block_io(block, "this network", *_block_io(model, block, x[:1]))


def _block_io(model: nn.Module, block: str, x: torch.Tensor) -> tuple[tuple, torch.Tensor]:
    """What ``block`` of ``model`` receives (its positional arguments) and returns on ``x``."""
    import torch

    from ..models import _recorder, backbone

    seen: dict[str, tuple] = {}
    hook = backbone(model).get_submodule(block).register_forward_hook(_recorder(seen, block))
    try:
        with torch.no_grad():
            model(x.to(next(model.parameters()).device))
    finally:
        hook.remove()
    return seen[block]


def block_outputs(model: nn.Module, block: str, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """The output of module ``block`` of ``model`` on each image of ``x``, flattened per image
    (n × C·H·W, float32): what :func:`fragility.scoring.similarity.linear_cka` compares."""
    return np.concatenate(
        [_block_io(model, block, x[i : i + batch_size])[1].flatten(1).float().cpu().numpy() for i in range(0, len(x), batch_size)]
    )


def compression_stride(block: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """The stride of the 3×3 convolution (padding 1) replacing ``block`` (METHOD §13): s =
    ⌈H/H'⌉, as a network's own strided convolutions round up (7 → 4 at s = 2), provided it
    maps H to H' and W to W'; a :class:`TriageError` when it does not."""
    (_, height, width), (_, out_height, out_width) = in_shape, out_shape
    stride = -(-height // out_height)
    gives = tuple((size - 1) // stride + 1 for size in (height, width))
    if gives != (out_height, out_width):
        raise TriageError(
            f"block {block!r} maps {height}×{width} to {out_height}×{out_width}: no stride gives that size "
            f"(s = ⌈H/H'⌉ = {stride} gives {gives[0]}×{gives[1]}), so it cannot be replaced by one 3×3 convolution "
            "(METHOD §13)"
        )
    return stride


def compressed_layer(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """S: Conv2d(3×3, ``stride``, padding 1, no bias) → BatchNorm2d → ReLU."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())


def least_squares(gram: torch.Tensor, moment: torch.Tensor, rows: int) -> torch.Tensor:
    """W minimising ‖X W − Y‖² from G = XᵀX (d × d), XᵀY and the number of ``rows`` of X,
    in float64. Coordinates of X that are zero on every row (a padding-only tap, a channel
    dead on every image) get weight 0; on the d others the plain least-squares solution where
    it is well posed — at least d rows and every eigenvalue of G above λ = 1e-4 · trace(G)/d —,
    else the ridge solution (G + λI)⁻¹XᵀY."""
    import torch

    gram, moment = gram.double(), moment.double()
    weight = torch.zeros_like(moment)
    signal = gram.diagonal() > 0
    d = int(signal.sum())
    if d == 0:
        return weight
    gram, moment = gram[signal][:, signal], moment[signal]
    eye = torch.eye(d, dtype=gram.dtype, device=gram.device)
    ridge = RIDGE * float(gram.trace()) / d
    well_posed = rows >= d and int(torch.linalg.cholesky_ex(gram - ridge * eye).info) == 0
    factor, _ = torch.linalg.cholesky_ex(gram if well_posed else gram + ridge * eye)
    weight[signal] = torch.cholesky_solve(moment, factor)
    return weight


def fitted_weight(model: nn.Module, block: str, x: torch.Tensor, stride: int, batch_size: int = 256) -> torch.Tensor:
    """The weight (C_out, C_in, 3, 3, float64) of the convolution (``stride``, padding 1, no bias) whose
    output best reproduces ``block``'s output from its input, in ``model`` classifying the
    images ``x``: the im2col patches of the block's input (every output position of every
    image a row) against the block's output, solved by :func:`least_squares` in float64."""
    import torch.nn.functional as F

    gram = moment = None
    rows = 0
    for i in range(0, len(x), batch_size):
        (inputs,), output = _block_io(model, block, x[i : i + batch_size])
        patches = F.unfold(inputs.double(), 3, padding=1, stride=stride).transpose(1, 2)  # (n, H'W', C_in·9)
        patches = patches.reshape(-1, patches.shape[-1])
        target = output.double().flatten(2).transpose(1, 2).reshape(len(patches), -1)  # (n·H'W', C_out)
        gram = patches.T @ patches if gram is None else gram + patches.T @ patches
        moment = patches.T @ target if moment is None else moment + patches.T @ target
        rows += len(patches)
    out_channels, in_channels = moment.shape[1], inputs.shape[1]
    return least_squares(gram, moment, rows).T.reshape(out_channels, in_channels, 3, 3)


def identity_batchnorm(bn: nn.BatchNorm2d) -> None:
    """``bn`` set to the identity in eval mode: weight 1, bias 0, running mean 0, running
    variance 1 − eps (so that √(var + eps) = 1)."""
    import torch

    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


def compress(
    model: nn.Module,
    block: str,
    x: torch.Tensor,
    init: str,
    seed: int,
    fit: torch.Tensor | None = None,
    batch_size: int = 256,
) -> nn.Module:
    """A copy of ``model`` (in eval mode) with ``block`` replaced by S, shaped from a forward
    pass on ``x`` (:func:`compression_stride`). S's convolution is drawn from ``init`` seeded
    by (``seed``, block) — the ``random`` initialisation —, or, given training images ``fit``,
    fitted to the block's output on them with S's BatchNorm the identity — the ``fit``
    initialisation (:func:`fitted_weight`, :func:`identity_batchnorm`)."""
    import torch

    from ..models import backbone

    in_shape, out_shape = block_shapes(model, block, x)
    stride = compression_stride(block, in_shape, out_shape)
    layer = compressed_layer(in_shape[0], out_shape[0], stride).to(next(model.parameters()).device)
    weight = None if fit is None else fitted_weight(model, block, fit, stride, batch_size)
    compressed = copy.deepcopy(model)
    parent, _, child = block.rpartition(".")
    setattr(backbone(compressed).get_submodule(parent), child, layer)
    with torch.no_grad():
        if weight is None:
            layer[0].weight.copy_(_fresh_draw(compressed, f"{block}.0", init, seed)[f"{block}.0.weight"])
        else:
            layer[0].weight.copy_(weight)
            identity_batchnorm(layer[1])
    return compressed.eval()


def trainable_parameters(model: nn.Module, block: str, scheme: str) -> list[nn.Parameter]:
    """The parameters ``scheme`` trains (``local``: S's; ``global``, ``distil``: all), the
    rest frozen; ``local_global`` trains by :func:`scheme_phase`."""
    from ..models import backbone

    if scheme not in SCHEMES or scheme == "local_global":
        raise ValueError(f"unknown triage phase {scheme!r}; choose from {tuple(s for s in SCHEMES if s != 'local_global')}")
    inside = {id(p) for p in backbone(model).get_submodule(block).parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(scheme != "local" or id(parameter) in inside)
    return [p for p in model.parameters() if p.requires_grad]


def scheme_phase(scheme: str, epoch: int, epochs: int) -> str:
    """How ``scheme`` trains in triage epoch ``epoch`` of ``epochs``: ``local_global`` is
    ``local`` for the first ⌈epochs/2⌉, then ``global``; every other scheme is itself."""
    if scheme == "local_global":
        return "local" if epoch <= math.ceil(epochs / 2) else "global"
    return scheme


def scheme_train_mode(block: str, scheme: str):
    """``train_mode`` for :func:`fragility.train.train_one_epoch`: ``local`` trains S alone
    (every other BatchNorm in eval mode), the other schemes the whole network."""
    from ..models import backbone

    def train_mode(model: nn.Module) -> None:
        if scheme == "local":
            model.eval()
            backbone(model).get_submodule(block).train()
        else:
            model.train()

    return train_mode


def distillation_loss(teacher: nn.Module, temperature: float, alpha: float):
    """``loss(logits, x, y)`` = α·T²·KL(p_T(teacher(x)) ‖ p_T(logits)) + (1 − α)·CE(logits, y)."""
    import torch
    import torch.nn.functional as F

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
    order, seeded by ``seed``; each phase (:func:`scheme_phase`) with a fresh Adam."""
    import torch

    from ..train import cross_entropy, train_one_epoch

    network = copy.deepcopy(compressed)
    loss = distillation_loss(teacher, settings.temperature, settings.alpha) if scheme == "distil" else cross_entropy
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    trains = None
    for epoch in range(1, settings.epochs + 1):
        phase = scheme_phase(scheme, epoch, settings.epochs)
        if phase != trains:
            adam, trains = train.optimizer(trainable_parameters(network, block, phase)), phase
        mean_loss = train_one_epoch(network, adam, data, train.batch_size, order, loss, scheme_train_mode(block, phase))
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
    progress: bool | None = None,
) -> pd.DataFrame:
    """From each initialisation, every scheme's accuracies (clean, and under
    ``settings.attack`` made against the compressed network at ``epsilon``) and the linear
    CKA of S's output with the block's (in ``model``, on ``x``) at triage epoch 0 and after
    each epoch, with the ``base`` (clean, adversarial) accuracies of ``model``; each scheme
    trains with ``train``'s optimizer and batch size from the same state. ``model`` is left
    as it was. ``progress``: bars over the inits and schemes (None: where a person watches)."""
    from ..attack import Attack
    from ..evaluation import whitebox_accuracies
    from ..models import backbone

    data = training_subset(training, settings.max_train, seed)
    attack = Attack(**settings.attack)
    reference = block_outputs(model, block, x, batch_size)

    def measure(network: nn.Module) -> dict:
        cka = linear_cka(block_outputs(network, block, x, batch_size), reference)
        return {**whitebox_accuracies(network, x, y, attack, epsilon, batch_size), "cka": cka}

    rows = []
    for init in bar(settings.inits, f"triage {block}: inits", enabled=progress):
        fit = training_subset(training, settings.fit_images, seed).x_train if init == "fit" else None
        compressed = compress(model, block, x[:batch_size], settings.init, seed, fit, batch_size)
        fixed = {
            "block": block,
            "init": init,
            "base_acc_clean": base[0],
            "base_acc_adv": base[1],
            "params_block": parameter_count(backbone(model).get_submodule(block)),
            "params_compressed": parameter_count(backbone(compressed).get_submodule(block)),
            "epsilon": epsilon,
            "train_size": len(data.y_train),
        }
        start = measure(compressed)
        for scheme in bar(settings.schemes, f"{init} init: schemes", enabled=progress, leave=False):
            rows.append({**fixed, "scheme": scheme, "triage_epoch": 0, **start})
            for epoch, mean_loss, network in scheme_epochs(compressed, block, scheme, data, settings, train, model, seed):
                rows.append({**fixed, "scheme": scheme, "triage_epoch": epoch, **measure(network)})
                log.info(
                    "%s, %s init, %s, epoch %d/%d: loss %.4f, %s",
                    block,
                    init,
                    scheme,
                    epoch,
                    settings.epochs,
                    mean_loss,
                    rows[-1],
                )
    return pd.DataFrame(rows, columns=TRIAGE_COLUMNS)


def drops(table: pd.DataFrame) -> pd.DataFrame:
    """Per initialisation and scheme, the accuracies after the scheme's last triage epoch and
    the drops from the base network's (criticality: ``triage_local``'s drops, per
    initialisation, METHOD §13), as rank measures."""
    table = _with_init(table)
    last = table[table["triage_epoch"] == table.groupby(["init", "scheme"])["triage_epoch"].transform("max")]
    return pd.DataFrame(
        {
            "layer": last["block"],
            "unit_kind": "block",
            "init": last["init"],
            "compression": "triage_" + last["scheme"],
            "acc_clean": last["acc_clean"],
            "acc_adv": last["acc_adv"],
            "drop_clean": last["base_acc_clean"] - last["acc_clean"],
            "drop_adv": last["base_acc_adv"] - last["acc_adv"],
        },
        columns=DROP_COLUMNS,
    ).reset_index(drop=True)


def _with_init(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its ``init`` column; a table written before the column existed had only
    the ``random`` initialisation."""
    return table if "init" in table else table.assign(init="random")


def _run(context: Context, unit: str, settings: TriageSettings) -> dict[str, pd.DataFrame]:
    from ..evaluation import accuracy

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
    """Per (dataset, model, seed, epoch, block, init, scheme) (METHOD §13): the scheme's
    ``last_epoch``; ``epochs_to_recover``, the first triage epoch **≥ 1** whose clean accuracy
    is at least base − ``tolerance`` (NaN: never; epoch 0, the compressed network before any
    training, never counts); ``exceeded``, whether its best clean accuracy after training
    (epochs ≥ 1) is above base + ``tolerance``."""
    triage = _with_init(triage)
    keys = TRIAGE_RUN + ["init", "scheme"]
    trained = triage[triage["triage_epoch"] >= 1]
    recovered = trained[trained["acc_clean"] >= trained["base_acc_clean"] - tolerance]
    first = recovered.groupby(keys)["triage_epoch"].min().rename("epochs_to_recover")
    last = triage.groupby(keys)["triage_epoch"].max().rename("last_epoch")
    above = (trained["acc_clean"] - trained["base_acc_clean"] > tolerance).groupby([trained[k] for k in keys]).any()
    found = pd.concat([last, first, above.rename("exceeded")], axis=1).reset_index()
    found["exceeded"] = found["exceeded"].astype("boolean").fillna(False).astype(bool)
    return found


def _final(triage: pd.DataFrame, scheme: str) -> pd.DataFrame:
    rows = triage[triage["scheme"] == scheme]
    return rows[rows["triage_epoch"] == rows.groupby(TRIAGE_RUN + ["init"])["triage_epoch"].transform("max")]


def block_independent(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """On the ``fit`` initialisation: the range over blocks of the final ``local`` clean
    accuracy (mean over seeds and checkpoints); spread = std over seeds of each seed's range;
    holds when ≤ ``triage.block_range``."""
    block_range = options["triage"]["block_range"]
    triage = _with_init(tables["triage"])
    fitted = triage[triage["init"] == "fit"]
    if fitted.empty:
        return undetermined("the fit initialisation was not run (triage.inits)")
    final = _final(fitted, "local")
    if final.empty:
        return undetermined("the local scheme was not run (triage.schemes)")
    means = final.groupby("block")["acc_clean"].mean()
    per_seed = final.groupby(["seed", "block"])["acc_clean"].mean().groupby("seed").agg(lambda a: a.max() - a.min())
    value = float(means.max() - means.min())
    detail = (
        f"final local clean accuracy (fit initialisation) from {means.min():.3f} ({means.idxmin()}) to "
        f"{means.max():.3f} ({means.idxmax()}) over {len(means)} blocks; holds at a range of at most {block_range}"
    )
    spread = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan")
    return Finding(value, len(means), value <= block_range, detail, spread)


def finetune_recovers(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """The fraction of (checkpoint, block, init) whose ``global`` scheme recovers the base
    clean accuracy within ``triage.tolerance`` at a triage epoch ≥ 1, per seed (the value;
    holds when above 0.5), and apart the fraction whose ``global`` scheme exceeded the base
    (the detail)."""
    tolerance = options["triage"]["tolerance"]
    triage = tables["triage"]
    found = recovery_epochs(triage[triage["scheme"] == "global"], tolerance)
    if found.empty:
        return undetermined("the global scheme was not run (triage.schemes)")
    recovered = found["epochs_to_recover"].notna()
    exceeded = per_seed_mean(found["exceeded"].astype(float), found["seed"])
    detail = (
        f"global fine-tuning reached base − {tolerance} clean accuracy for {int(recovered.sum())} of {len(found)} "
        f"(seed, checkpoint, block, init) within {int(found['last_epoch'].max())} triage epochs"
    )
    note = (
        f"; exceeded base + {tolerance} for {int(found['exceeded'].sum())} of {len(found)} "
        f"(fraction {exceeded.mean():.3f}, mean over seeds)"
    )
    return fraction_finding(recovered, found["seed"], 0.5, detail, strict=True, note=note)


def distillation_faster_capped(tables: dict[str, pd.DataFrame], options: dict) -> Finding:
    """Faster: the mean over seeds of each seed's mean over its (checkpoint, block, init) where
    **both** ``global`` and ``distil`` recover of epochs_to_recover(global) −
    epochs_to_recover(distil); > 0 holds. Capped: no ``distil`` clean accuracy after training
    above base + ``triage.tolerance``, judged only where ``global`` exceeds base + tolerance
    somewhere (else nothing is capped). Holds when both hold, fails when either fails, else
    undetermined."""
    tolerance = options["triage"]["tolerance"]
    triage = tables["triage"]
    found = recovery_epochs(triage[triage["scheme"].isin(["global", "distil"])], tolerance)
    if set(found["scheme"]) != {"global", "distil"}:
        return undetermined("needs the global and distil schemes (triage.schemes)")
    trained = triage[(triage["scheme"] == "distil") & (triage["triage_epoch"] >= 1)]
    excess = float((trained["acc_clean"] - trained["base_acc_clean"]).max())
    uncapped = bool(found.loc[found["scheme"] == "global", "exceeded"].any())
    capped = excess <= tolerance if uncapped else None
    cap = f"distil at most {excess:+.3f} above the base clean accuracy (cap: +{tolerance})"
    cap += "" if uncapped else f"; global never exceeded base + {tolerance}: nothing to cap"
    wide = found.pivot_table(index=TRIAGE_RUN + ["init"], columns="scheme", values="epochs_to_recover", aggfunc="first")
    both = wide.reindex(columns=["global", "distil"]).dropna()
    if both.empty:
        return undetermined(f"no (seed, checkpoint, block, init) where both global and distil recovered; {cap}")
    faster = both["global"] - both["distil"]
    seeds = faster.index.get_level_values("seed")
    per_seed = per_seed_mean(faster, seeds)
    value = float(per_seed.mean())
    holds = False if value <= 0 or capped is False else (True if capped else None)
    detail = f"epochs to recover, global − distil, over {len(faster)} (seed, checkpoint, block, init) where both recovered; {cap}"
    return Finding(value, len(per_seed), holds, detail, per_seed_std(faster, seeds))


def claim_options(config: dict) -> dict:
    """The config keys the triage claims read."""
    return {"tolerance": config["triage"]["tolerance"], "block_range": config["triage"]["block_range"]}


CLAIMS = (
    ClaimSpec(
        "triage_block_independent",
        "Accuracy after compression does not depend on which block was compressed (Nowak & Corso 2018).",
        "range over blocks of the final local clean accuracy from the fit initialisation ≤ triage.block_range",
        2,
        "blocks (each the mean over seeds and checkpoints)",
        ("triage",),
        block_independent,
    ),
    ClaimSpec(
        "triage_finetune_recovers",
        "Fine-tuning the whole compressed network recovers or exceeds the base accuracy (Nowak & Corso 2018).",
        "fraction of (checkpoint, block, init) whose global scheme reaches base − triage.tolerance at an epoch ≥ 1 "
        "> 0.5 (the fraction above base + triage.tolerance in the detail)",
        1,
        "seeds (each the fraction over its checkpoints, blocks and initialisations)",
        ("triage",),
        finetune_recovers,
    ),
    ClaimSpec(
        "triage_distillation_faster_capped",
        "Distillation recovers faster than global fine-tuning and caps accuracy at the base (Nowak & Corso 2018).",
        "mean epochs to recover, global − distil, where both recover, > 0, and no distil accuracy above base + "
        "triage.tolerance (judged where global exceeds it)",
        1,
        "seeds (each the mean over its checkpoints, blocks and initialisations where both schemes recover)",
        ("triage",),
        distillation_faster_capped,
    ),
)


TEST = StressTest(
    name="triage",
    description="One block replaced by a single 3×3 convolution, from a random draw and from a least-squares fit, "
    "and retrained by four schemes (Nowak & Corso 2018).",
    tables={"triage": RUN_COLUMNS + ["attack"] + TRIAGE_COLUMNS, "triage_drops": RUN_COLUMNS + ["attack"] + DROP_COLUMNS},
    units=triage_units,
    settings=TriageSettings,
    run=_run,
    check=check,
    claims=CLAIMS,
    claim_options=claim_options,
    ranks=RankMeasures(
        "triage_drops", "compression", ("triage_local",), ("drop_clean", "drop_adv"), sign=-1, where={"init": "fit"}
    ),
    epochs=triage_epochs,
    trains=True,
)
