"""The filter sweep: accuracy of every filtered variant of one layer (or ``__global__``).

For each filter h and step i the layer's weights are masked in place, the clean and the
adversarial test sets are classified, and the weights are restored bit for bit. Two
exact shortcuts keep this cheap (``method="fast"``, the default):

- upstream caching: the activations before the filtered layer are computed once per
  chunk of the test set and only the downstream graph runs per variant
  (:mod:`fragility.upstream`); chunks are sized to ``cache_budget_mb``;
- deduplication: variants that remove exactly the same weights (empty bins, empty pulse
  windows, full removal by h1 and h2) are evaluated once.

``method="naive"`` masks and runs the whole network for every variant, duplicates
included: the reference the fast path is tested and benchmarked against.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from .attack import fgsm
from .evaluation import predict
from .filters import FILTERS, ThresholdRange, removal_mask, threshold
from .models import GLOBAL_LAYER, layer_weights, list_layers
from .upstream import SplitNetwork, split_at, whole_network

log = logging.getLogger(__name__)

SWEEP_COLUMNS = [
    "layer", "filter", "step", "alpha", "alpha_norm", "n_removed", "n_total",
    "acc_clean", "acc_adv", "acc_clean_unfiltered", "acc_adv_unfiltered",
]
METHODS = ("fast", "naive")
UNFILTERED = "unfiltered"


@dataclass(frozen=True)
class Variant:
    filter: str
    step: int
    alpha: float
    n_removed: int
    key: str  # variants with the same key remove the same weights


class MaskedLayer:
    """The weights one sweep filters, with their original values kept for restoring."""

    def __init__(self, model: nn.Module, layer: str):
        self.weights = layer_weights(model, layer)
        self.originals = [w.detach().clone() for w in self.weights]
        self.values = torch.cat([o.flatten().cpu() for o in self.originals]).double()  # masks compare in float64
        self.bounds = torch.tensor([0] + [o.numel() for o in self.originals]).cumsum(0).tolist()

    def apply(self, mask: torch.Tensor | None) -> None:
        """Restore the original weights, then zero the entries of ``mask`` (flat, over all weights)."""
        for weight, original, start, stop in zip(self.weights, self.originals, self.bounds, self.bounds[1:]):
            weight.data.copy_(original)
            if mask is not None:
                weight.data.masked_fill_(mask[start:stop].view(weight.shape).to(weight.device), 0)

    def restore(self) -> None:
        self.apply(None)


def plan_variants(values: torch.Tensor, steps: int, filters=FILTERS, dedup: bool = True) -> tuple[list[Variant], dict[str, Variant]]:
    """Every (filter, step) with its threshold and count, and the variants to evaluate:
    one per distinct mask, or (``dedup=False``) every one of them."""
    rng = ThresholdRange.of(values, steps)
    variants, representatives = [], {}
    for name in filters:
        for step in range(steps + 1):
            mask = removal_mask(name, values, step, rng)
            n_removed = int(mask.sum())
            if not dedup:
                key = f"{name}:{step}"
            else:
                key = UNFILTERED if n_removed == 0 else _mask_key(mask)
            variant = Variant(name, step, threshold(name, step, rng), n_removed, key)
            variants.append(variant)
            representatives.setdefault(key, variant)
    return variants, representatives


def _mask_key(mask: torch.Tensor) -> str:
    return hashlib.blake2b(mask.numpy().tobytes(), digest_size=16).hexdigest()


def sweep(
    model: nn.Module,
    layer: str,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    steps: int = 25,
    filters=FILTERS,
    batch_size: int = 256,
    method: str = "fast",
    cache_budget_mb: float = 1024.0,
    regenerate_epsilon: float | None = None,
    clamp: bool = True,
) -> pd.DataFrame:
    """One row per (filter, step): thresholds, counts and clean/adversarial accuracies.

    ``model`` must be in eval mode; it is left exactly as it was found. With
    ``regenerate_epsilon`` every filtered network is attacked afresh (FGSM of that ε,
    white-box) instead of being scored on the given ``x_adv``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown sweep method {method!r}; choose from {METHODS}")
    unknown = [f for f in filters if f not in FILTERS]
    if unknown:
        raise ValueError(f"unknown filter {unknown[0]!r}; choose from {FILTERS}")
    if model.training:
        raise RuntimeError("sweep needs the model in eval mode (BatchNorm running statistics)")
    masked = MaskedLayer(model, layer)
    if not torch.isfinite(masked.values).all():
        raise ValueError(f"layer {layer}: weights contain NaN or inf; the checkpoint is broken (retrain or pick another)")
    variants, representatives = plan_variants(masked.values, steps, filters, dedup=method == "fast")
    representatives.setdefault(UNFILTERED, None)
    log.info("layer %s: %d weights, %d variants, %d distinct", layer, masked.values.numel(), len(variants), len(representatives))
    targets = list_layers(model) if layer == GLOBAL_LAYER else [layer]
    network = split_at(model, targets) if method == "fast" else whole_network(model)
    rng = ThresholdRange.of(masked.values, steps)
    started = time.perf_counter()
    try:
        if regenerate_epsilon is None:
            # one pass over clean and adversarial images: each mask is applied once
            correct = _count_correct(network, masked, representatives, torch.cat([x, x_adv]), torch.cat([y, y]), batch_size, cache_budget_mb, rng)
            correct_clean = {k: int(c[: len(y)].sum()) for k, c in correct.items()}
            correct_adv = {k: int(c[len(y):].sum()) for k, c in correct.items()}
        else:
            correct = _count_correct(network, masked, representatives, x, y, batch_size, cache_budget_mb, rng)
            correct_clean = {k: int(c.sum()) for k, c in correct.items()}
            correct_adv = _count_correct_reattacked(model, masked, representatives, x, y, regenerate_epsilon, clamp, batch_size, rng)
    finally:
        masked.restore()
    log.info("layer %s swept in %.1f s", layer, time.perf_counter() - started)
    n, n_total = len(y), masked.values.numel()
    rows = [
        {
            "layer": layer, "filter": v.filter, "step": v.step, "alpha": v.alpha, "alpha_norm": v.step / steps,
            "n_removed": v.n_removed, "n_total": n_total,
            "acc_clean": correct_clean[v.key] / n, "acc_adv": correct_adv[v.key] / n,
            "acc_clean_unfiltered": correct_clean[UNFILTERED] / n, "acc_adv_unfiltered": correct_adv[UNFILTERED] / n,
        }
        for v in variants
    ]
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def _count_correct(
    network: SplitNetwork,
    masked: MaskedLayer,
    representatives: dict[str, Variant | None],
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    cache_budget_mb: float,
    rng: ThresholdRange,
) -> dict[str, torch.Tensor]:
    """Per distinct variant, a boolean per image: classified correctly. The upstream
    cache is built once per chunk of images and shared by all variants."""
    device = masked.weights[0].device
    correct = {key: torch.zeros(len(y), dtype=torch.bool) for key in representatives}
    chunk = None
    start = 0
    while start < len(y):
        with torch.inference_mode():
            masked.restore()
            first = network.prefix(x[start : start + batch_size].to(device))
            if chunk is None:
                chunk = _chunk_size(first, len(first[0]), batch_size, cache_budget_mb)
            cached = [first] + [
                network.prefix(x[i : i + batch_size].to(device))
                for i in range(start + batch_size, min(start + chunk, len(y)), batch_size)
            ]
        labels = y[start : start + chunk].to(device)
        for done, (key, variant) in enumerate(representatives.items(), 1):
            if done % max(1, len(representatives) // 4) == 0:
                log.info("images %d-%d: %d/%d variants", start, min(start + chunk, len(y)), done, len(representatives))
            mask = None if variant is None else removal_mask(variant.filter, masked.values, variant.step, rng)
            masked.apply(mask)
            with torch.inference_mode():
                predictions = torch.cat([network.suffix(*batch).argmax(1) for batch in cached])
            correct[key][start : start + chunk] = (predictions == labels).cpu()
        start += chunk
    return correct


def _count_correct_reattacked(model, masked, representatives, x, y, epsilon, clamp, batch_size, rng) -> dict[str, int]:
    """Correct predictions per distinct variant under an FGSM made against that variant."""
    correct = {}
    for key, variant in representatives.items():
        masked.apply(None if variant is None else removal_mask(variant.filter, masked.values, variant.step, rng))
        x_adv = fgsm(model, x, y, epsilon, clamp, batch_size)
        correct[key] = int((predict(model, x_adv, batch_size) == y).sum())
    return correct


def _chunk_size(cached_batch: tuple[torch.Tensor, ...], batch_len: int, batch_size: int, budget_mb: float) -> int:
    """Images per chunk so that the cached upstream tensors fit the memory budget."""
    per_image = sum(t.numel() * t.element_size() for t in cached_batch) / max(batch_len, 1)
    fitting = int(budget_mb * 2**20 // max(per_image, 1))
    return max(batch_size, fitting // batch_size * batch_size)
