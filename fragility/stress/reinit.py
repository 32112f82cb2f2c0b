"""Re-initialisation and re-randomisation: stress one layer (or block) by resetting it (Zhang, Bengio & Singer
2019, "Are all layers created equal?"), every other parameter and all BatchNorm statistics
as in the checkpoint.

- :func:`reinit` sets the layer's weight and bias back to the run's initial state (epoch 0),
  which :func:`initial_state` re-creates bit-identically from the run's seed;
- :func:`rerandomise` draws them afresh from the configured initialiser, seeded by
  (seed, layer).

Both are context managers that leave the model bit-identical afterwards.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from .. import GLOBAL_LAYER
from ..artifacts import ModelSpec
from ..config import is_given, perturbed_layers
from .base import RUN_COLUMNS, Context, RankMeasures, Settings, StressTest

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    import torch
    from torch import nn


PERTURBATIONS = ("reinit", "rerandom")
CRITICALITY_COLUMNS = ["layer", "unit_kind", "perturbation", "acc_clean", "acc_adv", "drop_clean", "drop_adv"]


def initial_state(spec: ModelSpec, seed: int) -> dict[str, torch.Tensor]:
    """The state a run with ``seed`` starts training from: :func:`fragility.train.train` seeds
    the global RNG with it and builds the model, and so does this."""
    import torch

    torch.manual_seed(seed)
    return spec.build().state_dict()


def _parameters(model: nn.Module, unit: str) -> dict[str, nn.Parameter]:
    """``{layer}.weight`` and ``{layer}.bias`` of the unit's layers (one layer's, or every
    layer's of a block), by qualified name."""
    from ..models import backbone, filtered_layers

    if unit == GLOBAL_LAYER:
        raise ValueError("re-initialisation perturbs one layer or block, not __global__")
    net = backbone(model)
    found = {}
    for layer in filtered_layers(model, unit):
        module = net.get_submodule(layer)
        found.update({f"{layer}.{name}": p for name, p in (("weight", module.weight), ("bias", module.bias)) if p is not None})
    return found


@contextlib.contextmanager
def _perturbed(model: nn.Module, unit: str, values: dict[str, torch.Tensor]):
    import torch

    parameters = _parameters(model, unit)
    originals = {name: p.detach().clone() for name, p in parameters.items()}
    try:
        with torch.no_grad():
            for name, p in parameters.items():
                p.copy_(values[name])
        yield model
    finally:
        with torch.no_grad():
            for name, p in parameters.items():
                p.copy_(originals[name])


def reinit(model: nn.Module, unit: str, initial: dict[str, torch.Tensor]):
    """Within the block, the weights and biases of ``unit`` (a layer, or every layer of a
    block) are those of ``initial`` (a state dict of the same architecture, e.g.
    :func:`initial_state`)."""
    prefix = "net." if any(k.startswith("net.") for k in initial) else ""
    return _perturbed(model, unit, {name: initial[prefix + name] for name in _parameters(model, unit)})


def rerandomise(model: nn.Module, unit: str, init: str, seed: int):
    """Within the block, the weights and biases of ``unit`` (a layer, or every layer of a
    block) are a fresh draw from ``init`` (``kaiming_uniform``, the paper's, or
    ``torchvision``: Kaiming-normal fan-out for convolutions, PyTorch's default for Linear),
    biases from PyTorch's default U(±1/√fan_in); each layer's draw seeded by (seed, layer),
    so a block's layers get the draws they get alone."""
    from ..models import filtered_layers

    values = {}
    for layer in filtered_layers(model, unit):
        values.update(_fresh_draw(model, layer, init, seed))
    return _perturbed(model, unit, values)


def _fresh_draw(model: nn.Module, layer: str, init: str, seed: int) -> dict[str, torch.Tensor]:
    import torch
    from torch import nn

    parameters = _parameters(model, layer)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(layer.encode()))
    weight = torch.empty(parameters[f"{layer}.weight"].shape)
    if init == "kaiming_uniform":
        nn.init.kaiming_uniform_(weight, generator=generator)
    elif init == "torchvision" and weight.dim() == 4:
        nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu", generator=generator)
    elif init == "torchvision":
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    else:
        raise ValueError(f"unknown init {init!r}; choose kaiming_uniform or torchvision")
    values = {f"{layer}.weight": weight}
    if f"{layer}.bias" in parameters:
        bound = 1 / math.sqrt(weight[0].numel())
        values[f"{layer}.bias"] = torch.empty(parameters[f"{layer}.bias"].shape).uniform_(-bound, bound, generator=generator)
    return values


def criticality_table(
    model: nn.Module,
    layers: list[str],
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    initial: dict[str, torch.Tensor] | None,
    init: str,
    seed: int,
    batch_size: int = 256,
    unperturbed: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """One row per layer (``__global__`` skipped) and perturbation: accuracies on the test and
    adversarial sets, and their drops from the unperturbed model's on the same images
    (``unperturbed``: those two accuracies, when already known). Without an ``initial``
    state (a model analysed as given) only re-randomisation runs."""
    from ..evaluation import accuracy
    from ..models import unit_kind

    clean, adversarial = unperturbed or (accuracy(model, x, y, batch_size), accuracy(model, x_adv, y, batch_size))
    rows = []
    for layer in [name for name in layers if name != GLOBAL_LAYER]:
        for perturbation in PERTURBATIONS if initial is not None else ("rerandom",):
            context = reinit(model, layer, initial) if perturbation == "reinit" else rerandomise(model, layer, init, seed)
            with context:
                acc_clean, acc_adv = accuracy(model, x, y, batch_size), accuracy(model, x_adv, y, batch_size)
            rows.append(
                {
                    "layer": layer,
                    "unit_kind": unit_kind(model, layer),
                    "perturbation": perturbation,
                    "acc_clean": acc_clean,
                    "acc_adv": acc_adv,
                    "drop_clean": clean - acc_clean,
                    "drop_adv": adversarial - acc_adv,
                }
            )
    return pd.DataFrame(rows, columns=CRITICALITY_COLUMNS)


@dataclass(frozen=True)
class ReinitSettings(Settings):
    """``init``: the initialiser re-randomisation draws from where the run has none of its own
    (a model analysed as given); None: the checkpoint's."""

    init: str | None = None

    @classmethod
    def from_config(cls, config: dict, model: str) -> ReinitSettings:
        return cls(init=config["init"] if is_given(config, model) else None)


def _run(context: Context, unit: str, settings: ReinitSettings) -> dict[str, pd.DataFrame]:
    from ..evaluation import accuracy

    model, testset, x_adv, batch_size = context.model, context.testset, context.adversarial.x_adv, context.options.batch_size
    checkpoint = context.checkpoint
    given = checkpoint.model_spec.init == "given"  # no initial state to re-initialise to: re-randomisation only
    initial = None if given else context.shared("initial_state", lambda: initial_state(checkpoint.model_spec, checkpoint.seed))
    unperturbed = context.shared(
        "unperturbed_accuracy",
        lambda: (accuracy(model, testset.x, testset.y, batch_size), accuracy(model, x_adv, testset.y, batch_size)),
    )
    init = settings.init or checkpoint.model_spec.init
    table = criticality_table(model, [unit], testset.x, testset.y, x_adv, initial, init, checkpoint.seed, batch_size, unperturbed)
    return {"criticality": table}


TEST = StressTest(
    name="criticality",
    description="One layer set back to its initial values, or redrawn from the initialiser (Zhang, Bengio & Singer 2019).",
    tables={"criticality": RUN_COLUMNS + ["attack"] + CRITICALITY_COLUMNS},
    units=perturbed_layers,
    settings=ReinitSettings,
    run=_run,
    ranks=RankMeasures("criticality", "perturbation", PERTURBATIONS, ("drop_clean", "drop_adv"), sign=-1),
)
