"""Kernel (node) dropout and adversarial targeting: which output kernels of a layer matter,
and does the attack aim at them (the authors' talk: "attacks on fragile neurons",
"adversarial targeting algorithm").

Removing kernel k of a layer zeroes ``weight[k]`` (its output channel; a Linear layer's
output unit) and nothing else — bias and BatchNorm untouched, as the synaptic filters do.
Each removal is one more variant of the layer for the sweep engine
(:func:`fragility.engine.sweep.predict_removals`), so upstream caching, the fused suffix and the
margin guard apply unchanged. A kernel is fragile when its removal leaves accuracy below
the mean over all single-kernel removals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import GLOBAL_LAYER
from ..config import fail, model_layers, model_structure
from .base import RUN_COLUMNS, Context, Settings, StressTest

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..engine.sweep import MaskedLayer, SweepOptions

KERNEL_COLUMNS = [
    "layer",
    "kernel",
    "acc_clean",
    "acc_adv",
    "acc_clean_unfiltered",
    "acc_adv_unfiltered",
    "fragile_clean",
    "fragile_adv",
    "distance",
]
TARGETING_COLUMNS = ["layer", "fragility", "n_kernels", "n_fragile", "d_fragile", "d_nonfragile", "targets_fragile"]


@dataclass(frozen=True)
class KernelRemoval:
    """Zero output kernel ``kernel`` of the layer (every weight that produces that channel)."""

    kernel: int

    def mask(self, layer: MaskedLayer) -> torch.Tensor:
        import torch

        (shape,) = [tuple(o.shape) for o in layer.originals]
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[self.kernel] = True
        return mask.flatten()


def _check_layer(model: nn.Module, layer: str) -> nn.Module:
    from torch import nn

    from ..models import backbone

    if layer == GLOBAL_LAYER:
        raise ValueError("kernel dropout acts on one layer, not on __global__")
    module = backbone(model).get_submodule(layer)
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        raise ValueError(f"layer {layer!r} is a {type(module).__name__}; kernel dropout needs a Conv2d or Linear")
    return module


def kernel_dropout(
    model: nn.Module,
    layer: str,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    options: SweepOptions | None = None,
) -> pd.DataFrame:
    """One row per kernel of ``layer``: clean and adversarial accuracy with that kernel removed,
    the unfiltered accuracies, and whether each lies below the mean over kernels (fragile)."""
    import torch

    from ..engine.sweep import UNFILTERED, SweepOptions, predict_removals

    module = _check_layer(model, layer)
    removals = {f"kernel:{k}": KernelRemoval(k) for k in range(module.weight.shape[0])}
    n = len(y)
    predicted = predict_removals(model, layer, torch.cat([x, x_adv]), removals, options or SweepOptions())
    correct = {key: ((p[:n] == y).double().mean().item(), (p[n:] == y).double().mean().item()) for key, p in predicted.items()}
    table = pd.DataFrame(
        {
            "layer": layer,
            "kernel": list(range(len(removals))),
            "acc_clean": [correct[key][0] for key in removals],
            "acc_adv": [correct[key][1] for key in removals],
            "acc_clean_unfiltered": correct[UNFILTERED][0],
            "acc_adv_unfiltered": correct[UNFILTERED][1],
        }
    )
    for kind in ("clean", "adv"):
        table[f"fragile_{kind}"] = table[f"acc_{kind}"] < table[f"acc_{kind}"].mean()
    return table


def kernel_distances(model: nn.Module, layer: str, x: torch.Tensor, x_adv: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """d_k: the mean over images and positions of |o_k(x_adv) − o_k(x)|, o_k the layer's
    (pre-activation) output of kernel k."""
    import torch

    from ..evaluation import model_device

    with torch.inference_mode():
        module = _check_layer(model, layer)
        outputs = []
        hook = module.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
        device = model_device(model)
        total, count = None, 0
        try:
            for i in range(0, len(x), batch_size):
                outputs.clear()
                model(x[i : i + batch_size].to(device))
                model(x_adv[i : i + batch_size].to(device))
                clean, adversarial = outputs
                difference = (adversarial - clean).abs().double()
                per_kernel = difference.transpose(0, 1).reshape(difference.shape[1], -1)  # kernel × (images · positions)
                total = per_kernel.sum(1) if total is None else total + per_kernel.sum(1)
                count += per_kernel.shape[1]
        finally:
            hook.remove()
        return (total / count).cpu().numpy()


def targeting(model: nn.Module, layer: str, x: torch.Tensor, x_adv: torch.Tensor, fragile, batch_size: int = 256) -> dict:
    """Does the attack target the fragile kernels? ``d_fragile`` and ``d_nonfragile`` are the
    mean kernel distances of each group (NaN for an empty group); ``targets_fragile`` is
    ``d_fragile > d_nonfragile``."""
    distances = kernel_distances(model, layer, x, x_adv, batch_size)
    return targeting_from_distances(distances, fragile)


def targeting_from_distances(distances, fragile) -> dict:
    """:func:`targeting` on kernel distances already computed."""
    distances, fragile = np.asarray(distances, dtype=float), np.asarray(fragile, dtype=bool)
    if distances.shape != fragile.shape:
        raise ValueError(f"{len(fragile)} fragility flags for {len(distances)} kernels")
    d_fragile = float(distances[fragile].mean()) if fragile.any() else float("nan")
    d_nonfragile = float(distances[~fragile].mean()) if (~fragile).any() else float("nan")
    return {
        "d_fragile": d_fragile,
        "d_nonfragile": d_nonfragile,
        "targets_fragile": bool(d_fragile > d_nonfragile),
        "n_kernels": len(fragile),
        "n_fragile": int(fragile.sum()),
    }


def analyse_kernels(model, layer, x, y, x_adv, options: SweepOptions | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The kernel table (with each kernel's distance) and the targeting rows, for fragility
    judged on clean and on adversarial accuracy."""
    from ..engine.sweep import SweepOptions

    options = options or SweepOptions()
    table = kernel_dropout(model, layer, x, y, x_adv, options)
    table["distance"] = kernel_distances(model, layer, x, x_adv, options.batch_size)
    rows = [
        {"layer": layer, "fragility": kind, **targeting_from_distances(table["distance"], table[f"fragile_{kind}"])}
        for kind in ("clean", "adv")
    ]
    return table[KERNEL_COLUMNS], pd.DataFrame(rows)[TARGETING_COLUMNS]


def kernel_layers(config: dict, model: str) -> list[str]:
    """The layers whose kernels are removed one at a time for ``model`` (``kernels.layers``)."""
    mapping = config["kernels"]["layers"]
    choice = mapping.get(model, mapping["default"])
    if choice == "none":
        return []
    if choice != "first_conv":
        return list(choice)
    first = model_structure(config, model).first_conv
    return [] if first is None else [first]  # a network without Conv2d (an MLP factory): no kernels to remove


def check(config: dict, model: str) -> None:
    """Every layer of ``kernels.layers`` a Conv2d/Linear layer of ``model``."""
    mapping = config["kernels"]["layers"]
    choice = mapping.get(model, mapping["default"])
    key = "kernels.layers." + (model if model in mapping else "default")
    valid = model_layers(config, model)
    for layer in choice if isinstance(choice, list) else []:
        if layer not in valid:
            fail(key, layer, f"not a Conv2d/Linear layer of {model}; e.g. {sorted(valid)[:4]}")


def _run(context: Context, unit: str, settings: Settings) -> dict[str, pd.DataFrame]:
    testset = context.testset
    kernels, targeting = analyse_kernels(context.model, unit, testset.x, testset.y, context.adversarial.x_adv, context.options)
    return {"kernels": kernels, "targeting": targeting}


TEST = StressTest(
    name="kernels",
    description="Every output kernel of one layer removed alone; does the attack move the fragile ones most (talk, slides 6–9).",
    tables={"kernels": RUN_COLUMNS + ["attack"] + KERNEL_COLUMNS, "targeting": RUN_COLUMNS + ["attack"] + TARGETING_COLUMNS},
    units=kernel_layers,
    run=_run,
    check=check,
)
