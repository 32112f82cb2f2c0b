"""The filter sweep: accuracy of every filtered variant of one layer (or ``__global__``).

For each filter h and step i the layer's weights are masked in place, the clean and the
adversarial test sets are classified, and the weights are restored bit for bit. Three
methods give the same accuracies:

- ``naive`` masks and runs the whole network for every variant, duplicates included: the
  reference the others are tested and benchmarked against;
- ``exact`` adds two shortcuts that leave every float operation as it was: upstream
  caching (the activations before the filtered layer are computed once per chunk of the
  test set, chunks sized to ``cache_budget_mb``, and only the downstream graph runs per
  variant, :mod:`fragility.upstream`) and deduplication (variants that remove exactly
  the same weights, e.g. empty bins, empty pulse windows, full removal by h1 and h2, are
  evaluated once);
- ``fast`` (the default) runs the downstream graph with BatchNorm folded into the
  convolutions, convolutions on 1×1 maps reduced to their live tap, and channels_last
  (:mod:`fragility.fusion`), when a short probe on the first batch finds that faster than
  the exact graph (else it runs as ``exact``); that reorders float operations, so images
  whose top-2 logits lie within ``margin_guard`` are classified by the exact graph.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from .attack import Attack
from .bootstrap import pack_correct
from .evaluation import predict
from .filters import FILTERS, ThresholdRange, removal_mask, threshold
from .fusion import FusedSuffix, to_channels_last
from .models import filtered_layers, layer_weights
from .upstream import SplitNetwork, split_at, whole_network

log = logging.getLogger(__name__)

SWEEP_COLUMNS = [
    "layer",
    "filter",
    "step",
    "alpha",
    "alpha_norm",
    "n_removed",
    "n_total",
    "acc_clean",
    "acc_adv",
    "acc_clean_unfiltered",
    "acc_adv_unfiltered",
    # which test images each variant classifies correctly, packed bits (fragility.bootstrap)
    "n_images",
    "correct_clean",
    "correct_adv",
    "correct_clean_unfiltered",
    "correct_adv_unfiltered",
]
METHODS = ("fast", "exact", "naive")
UNFILTERED = "unfiltered"


@dataclass(frozen=True)
class Variant:
    """One (filter, step) of a sweep."""

    filter: str
    step: int
    alpha: float
    n_removed: int
    key: str  # variants with the same key remove the same weights

    def mask(self, layer: MaskedLayer) -> torch.Tensor:
        """The flat boolean mask of the weights this variant removes."""
        return removal_mask(self.filter, layer.values, self.step, layer.range)


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs: the arguments of :func:`sweep` that :func:`predict_variants` shares."""

    steps: int = 25
    filters: tuple[str, ...] = FILTERS
    batch_size: int = 256
    method: str = "fast"
    cache_budget_mb: float = 1024.0
    margin_guard: float = 1e-3
    probe: bool = True  # fast: keep the fused graph only where a probe finds it faster (False: always)


class MaskedLayer:
    """The weights one sweep filters, with their original values kept for restoring."""

    def __init__(self, model: nn.Module, layer: str, steps: int):
        self.weights = layer_weights(model, layer)
        self.originals = [w.detach().clone() for w in self.weights]
        self.values = torch.cat([o.flatten().cpu() for o in self.originals]).double()  # masks compare in float64
        if not torch.isfinite(self.values).all():
            raise ValueError(f"layer {layer}: weights contain NaN or inf; the checkpoint is broken (retrain or pick another)")
        self.bounds = torch.tensor([0] + [o.numel() for o in self.originals]).cumsum(0).tolist()
        self.range = ThresholdRange.of(self.values, steps)

    def apply(self, variant) -> None:
        """Restore the original weights, then zero those ``variant`` removes (none for ``None``);
        a variant is anything with a ``mask(layer)`` method (:class:`Variant`, a kernel removal)."""
        mask = None if variant is None else variant.mask(self)
        for weight, original, start, stop in zip(self.weights, self.originals, self.bounds, self.bounds[1:]):
            weight.data.copy_(original)
            if mask is not None:
                weight.data.masked_fill_(mask[start:stop].view(weight.shape).to(weight.device), 0)

    def restore(self) -> None:
        self.apply(None)


def plan_variants(
    values: torch.Tensor, steps: int, filters=FILTERS, dedup: bool = True
) -> tuple[list[Variant], dict[str, Variant]]:
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
    margin_guard: float = 1e-3,
    options: SweepOptions | None = None,
    attack: Attack | None = None,
    stats: dict | None = None,
) -> pd.DataFrame:
    """One row per (filter, step): thresholds, counts and clean/adversarial accuracies.

    ``model`` must be in eval mode; it is left exactly as it was found. With
    ``regenerate_epsilon`` every filtered network is attacked afresh (``attack``, default
    FGSM with ``clamp``, at that ε, white-box) instead of being scored on the given
    ``x_adv``. ``options``, when given, replaces the keyword arguments it holds; ``stats``,
    when given, is filled with how the sweep ran (:func:`predict_removals`).
    """
    options = options or SweepOptions(steps, tuple(filters), batch_size, method, cache_budget_mb, margin_guard)
    n = len(y)
    if regenerate_epsilon is None:
        # one pass over clean and adversarial images: each mask is applied once
        variants, predicted = predict_variants(model, layer, torch.cat([x, x_adv]), options, stats)
        correct_clean = {k: (p[:n] == y).numpy() for k, p in predicted.items()}
        correct_adv = {k: (p[n:] == y).numpy() for k, p in predicted.items()}
    else:
        variants, predicted = predict_variants(model, layer, x, options, stats)
        correct_clean = {k: (p == y).numpy() for k, p in predicted.items()}
        attack = attack or Attack("fgsm", clamp)
        correct_adv = _correct_reattacked(
            model, layer, variants, x, y, regenerate_epsilon, attack, options.steps, options.batch_size
        )
    n_total = sum(w.numel() for w in layer_weights(model, layer))
    bits = {k: (pack_correct(correct_clean[k]), pack_correct(correct_adv[k])) for k in correct_clean}
    rows = [
        {
            "layer": layer,
            "filter": v.filter,
            "step": v.step,
            "alpha": v.alpha,
            "alpha_norm": v.step / options.steps,
            "n_removed": v.n_removed,
            "n_total": n_total,
            "acc_clean": correct_clean[v.key].sum() / n,
            "acc_adv": correct_adv[v.key].sum() / n,
            "acc_clean_unfiltered": correct_clean[UNFILTERED].sum() / n,
            "acc_adv_unfiltered": correct_adv[UNFILTERED].sum() / n,
            "n_images": n,
            "correct_clean": bits[v.key][0],
            "correct_adv": bits[v.key][1],
            "correct_clean_unfiltered": bits[UNFILTERED][0],
            "correct_adv_unfiltered": bits[UNFILTERED][1],
        }
        for v in variants
    ]
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def predict_variants(
    model: nn.Module, layer: str, x: torch.Tensor, options: SweepOptions = SweepOptions(), stats: dict | None = None
) -> tuple[list[Variant], dict[str, torch.Tensor]]:
    """Every (filter, step) variant of ``layer`` and the predicted class of each image of
    ``x`` under each distinct one (keyed by ``Variant.key``; ``UNFILTERED`` included)."""
    _check_arguments(model, options)
    masked = MaskedLayer(model, layer, options.steps)
    variants, representatives = plan_variants(masked.values, options.steps, options.filters, dedup=options.method != "naive")
    log.info(
        "layer %s: %d weights, %d variants, %d distinct",
        layer,
        masked.values.numel(),
        len(variants),
        len(representatives | {UNFILTERED: None}),
    )
    return variants, predict_removals(model, layer, x, representatives, options, masked, stats)


def predict_removals(
    model: nn.Module,
    layer: str,
    x: torch.Tensor,
    removals: dict,
    options: SweepOptions = SweepOptions(),
    masked: MaskedLayer | None = None,
    stats: dict | None = None,
) -> dict[str, torch.Tensor]:
    """The predicted class of each image of ``x`` under each removal (``key -> object with a
    mask(layer) method``) of ``layer``'s weights, plus ``UNFILTERED``, on the engine that
    ``options.method`` picks. The model is left exactly as it was. ``stats``, when given, is
    filled with how the sweep ran (engine, margin-guard re-runs, reduced convolutions)."""
    _check_arguments(model, options)
    masked = masked or MaskedLayer(model, layer, options.steps)
    removals = dict(removals)
    removals.setdefault(UNFILTERED, None)
    targets = filtered_layers(model, layer)
    example = _to_device(x[: options.batch_size], masked.weights[0].device)
    network = whole_network(model) if options.method == "naive" else split_at(model, targets, example)
    stats = {} if stats is None else stats
    started = time.perf_counter()
    try:
        predicted = _predict(network, targets, masked, removals, x, options, stats)
    finally:
        masked.restore()
    stats["seconds"] = time.perf_counter() - started
    log.info(
        "layer %s: %d removals evaluated in %.1f s on the %s graph%s",
        layer,
        len(removals),
        stats["seconds"],
        stats["engine"],
        _guard_note(stats),
    )
    return predicted


def _guard_note(stats: dict) -> str:
    if stats["engine"] != "fused":
        return ""
    share = stats["guard_reruns"] / max(stats["evaluations"], 1)
    return (
        f" ({stats['reduced_convs']} convolutions reduced to their live tap; margin guard re-ran "
        f"{stats['guard_reruns']} of {stats['evaluations']} image evaluations, {100 * share:.2f} %)"
    )


def _check_arguments(model: nn.Module, options: SweepOptions) -> None:
    if options.method not in METHODS:
        raise ValueError(f"unknown sweep method {options.method!r}; choose from {METHODS}")
    unknown = [f for f in options.filters if f not in FILTERS]
    if unknown:
        raise ValueError(f"unknown filter {unknown[0]!r}; choose from {FILTERS}")
    if not options.margin_guard >= 0:
        raise ValueError(f"margin_guard must be >= 0, got {options.margin_guard}")
    if model.training:
        raise RuntimeError("sweep needs the model in eval mode (BatchNorm running statistics)")


def _predict(
    network: SplitNetwork,
    targets: list[str],
    masked: MaskedLayer,
    representatives: dict,
    x: torch.Tensor,
    options: SweepOptions,
    stats: dict,
) -> dict[str, torch.Tensor]:
    """Per distinct variant, the predicted class of every image. The upstream cache is
    built once per chunk of images and shared by all variants."""
    device, batch_size = masked.weights[0].device, options.batch_size
    predicted = {key: torch.empty(len(x), dtype=torch.long) for key in representatives}
    stats.update(engine="whole" if not network.upstream else "exact", guard_reruns=0, evaluations=0, reduced_convs=0)
    fused, layout, chunk, start = None, tuple, None, 0
    while start < len(x):
        with torch.inference_mode():  # the prefix holds no filtered layer: masks cannot reach it
            first = network.prefix(_to_device(x[start : start + batch_size], device))
            if chunk is None:
                chunk = _chunk_size(first, min(batch_size, len(x)), batch_size, options.cache_budget_mb)
                if options.method == "fast" and network.upstream and _per_image(first, min(batch_size, len(x))):
                    fused = _fused_if_faster(network, targets, first, masked, stats, options.probe)
                    layout = to_channels_last if fused is not None else tuple
            cached = [layout(first)] + [
                layout(network.prefix(_to_device(x[i : i + batch_size], device)))
                for i in range(start + batch_size, min(start + chunk, len(x)), batch_size)
            ]
        for done, (key, variant) in enumerate(representatives.items(), 1):
            if done % max(1, len(representatives) // 4) == 0:
                log.info("images %d-%d: %d/%d variants", start, min(start + chunk, len(x)), done, len(representatives))
            masked.apply(variant)
            with torch.inference_mode():
                if fused is None:
                    classes = [network.suffix(*batch).argmax(1) for batch in cached]
                else:
                    fused.refresh()
                    classes = [_guarded_classes(fused, network.suffix, batch, options.margin_guard, stats) for batch in cached]
            predicted[key][start : start + chunk] = torch.cat(classes).cpu()
        start += chunk
    return predicted


def _to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``batch`` on ``device``; to CUDA through pinned host memory, without blocking."""
    if device.type != "cuda":
        return batch.to(device)
    return batch.pin_memory().to(device, non_blocking=True)


def _fused_if_faster(
    network: SplitNetwork,
    targets: list[str],
    example: tuple[torch.Tensor, ...],
    masked: MaskedLayer,
    stats: dict,
    probe: bool = True,
    repeats: int = 3,
) -> FusedSuffix | None:
    """The fused suffix when a short probe on one batch finds it faster than the exact
    graph, else None: on small feature maps folding and channels_last may not pay."""
    fused = FusedSuffix(network.suffix, targets, example)
    masked.restore()
    fused_example = to_channels_last(example)

    def fused_call():
        fused.refresh()
        return fused(*fused_example)

    exact_logits, fused_logits = network.suffix(*example), fused_call()
    scale = exact_logits.abs().max().clamp(min=1)
    if not torch.allclose(fused_logits, exact_logits, rtol=1e-3, atol=1e-3 * float(scale)):
        log.warning(
            "the fused graph's logits differ from the exact graph's by %.3g on the first batch: using the exact graph",
            float((fused_logits - exact_logits).abs().max()),
        )
        stats.update(engine="exact")
        return None
    if not probe:
        stats.update(engine="fused", reduced_convs=fused.reduced)
        return fused

    timings = {}
    for name, call in (("exact", lambda: network.suffix(*example)), ("fused", fused_call)):
        call()  # warm-up: first calls pick kernels
        timings[name] = min(_seconds(call) for _ in range(repeats))
    faster = timings["fused"] < timings["exact"]
    log.info(
        "probe: fused graph %.2f ms, exact graph %.2f ms per batch of %d: using the %s graph",
        1e3 * timings["fused"],
        1e3 * timings["exact"],
        len(example[0]),
        "fused" if faster else "exact",
    )
    stats.update(
        engine="fused" if faster else "exact",
        reduced_convs=fused.reduced if faster else 0,
        probe_fused_ms=1e3 * timings["fused"],
        probe_exact_ms=1e3 * timings["exact"],
    )
    return fused if faster else None


def _seconds(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _guarded_classes(
    fused: FusedSuffix, exact, batch: tuple[torch.Tensor, ...], margin_guard: float, stats: dict
) -> torch.Tensor:
    """Classes from the fused graph, except where its top-2 logits lie within
    ``margin_guard`` (relative to the top logit, at least 1): there the float order of the
    exact graph decides, as in the naive path."""
    logits = fused(*batch)
    top = logits.topk(2, dim=1).values if logits.shape[1] > 1 else logits.repeat(1, 2)
    close = (top[:, 0] - top[:, 1]) <= margin_guard * top[:, 0].abs().clamp(min=1)
    classes = logits.argmax(1)
    stats["evaluations"] += len(classes)
    if close.any():
        stats["guard_reruns"] += int(close.sum())
        classes[close] = exact(*(t[close].contiguous() for t in batch)).argmax(1)
    return classes


def _correct_reattacked(model, layer, variants, x, y, epsilon, attack: Attack, steps, batch_size) -> dict:
    """Per distinct variant, which images stay correct under ``attack`` made against that variant."""
    masked = MaskedLayer(model, layer, steps)
    correct = {}
    try:
        for variant in [None] + variants:
            key = UNFILTERED if variant is None else variant.key
            if key not in correct:
                masked.apply(variant)
                x_adv = attack(model, x, y, epsilon, batch_size)
                correct[key] = (predict(model, x_adv, batch_size) == y).numpy()
    finally:
        masked.restore()
    return correct


def _per_image(cached_batch: tuple, batch_len: int) -> bool:
    """Whether every cached value is a tensor with one row per image: only then can the margin
    guard re-run a subset of the batch (a ViT's prefix also hands on shapes and None)."""
    return all(isinstance(t, torch.Tensor) and t.dim() > 0 and len(t) == batch_len for t in cached_batch)


def _chunk_size(cached_batch: tuple, batch_len: int, batch_size: int, budget_mb: float) -> int:
    """Images per chunk so that the cached upstream tensors fit the memory budget."""
    per_image = sum(t.numel() * t.element_size() for t in cached_batch if isinstance(t, torch.Tensor)) / max(batch_len, 1)
    fitting = int(budget_mb * 2**20 // max(per_image, 1))
    return max(batch_size, fitting // batch_size * batch_size)
