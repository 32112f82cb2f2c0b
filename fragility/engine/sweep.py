"""The sweep engine: the predictions of many variants of one layer (or ``__global__``).

A variant is any set of the layer's weights to remove (an object with a ``mask(layer)``
method): a synaptic filter's step, one kernel, a block's filter step. For each variant the
weights are masked in place, the images classified, and the weights restored bit for bit.
Three methods give the same predictions:

- ``naive`` masks and runs the whole network for every variant: the reference the others
  are tested and benchmarked against;
- ``exact`` caches the activations before the filtered layer once per chunk of images
  (chunks sized to ``cache_budget_mb``) and runs only the downstream graph per variant
  (:mod:`fragility.engine.upstream`), leaving every float operation as it was;
- ``fast`` (the default) runs the downstream graph with BatchNorm folded into the
  convolutions, convolutions on 1×1 maps reduced to their live tap, and channels_last
  (:mod:`fragility.engine.fusion`), when a short probe on the first batch finds that faster
  than the exact graph (else it runs as ``exact``); that reorders float operations, so
  images whose top-2 logits lie within ``margin_guard`` are classified by the exact graph.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields

import torch
from torch import nn

from ..filters import FILTERS, ThresholdRange
from ..models import filtered_layers, layer_weights
from .fusion import FusedSuffix, to_channels_last
from .upstream import SplitNetwork, split_at, whole_network

log = logging.getLogger(__name__)

METHODS = ("fast", "exact", "naive")
UNFILTERED = "unfiltered"


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
    variant_batch: int = 1  # variants per call where the engine batches them (the white-box reading)

    @classmethod
    def of(cls, options: SweepOptions | None = None, **settings) -> SweepOptions:
        """``options``, or the options that ``settings`` (field names) describe; both at once
        is an error, so that no setting is silently ignored."""
        unknown = sorted(set(settings) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown sweep setting {unknown[0]!r}; SweepOptions has {[f.name for f in fields(cls)]}")
        if options is not None and settings:
            raise TypeError(
                f"give the sweep settings either as options=SweepOptions(...) or as keywords, not both: {sorted(settings)}"
            )
        if "filters" in settings:
            settings["filters"] = tuple(settings["filters"])
        return options if options is not None else cls(**settings)


GPU_VARIANT_BATCH = 16  # sweep.variant_batch: auto on a GPU


def variant_batch_for(setting: int | str, device: torch.device) -> int:
    """``sweep.variant_batch`` on ``device``: ``auto`` batches variants on a GPU only."""
    if setting != "auto":
        return int(setting)
    return GPU_VARIANT_BATCH if device.type == "cuda" else 1


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


def predict_removals(
    model: nn.Module,
    layer: str,
    x: torch.Tensor,
    removals: dict,
    options: SweepOptions | None = None,
    masked: MaskedLayer | None = None,
    stats: dict | None = None,
) -> dict[str, torch.Tensor]:
    """The predicted class of each image of ``x`` under each removal (``key -> object with a
    mask(layer) method``) of ``layer``'s weights, plus ``UNFILTERED``, on the engine that
    ``options.method`` picks. The model is left exactly as it was. ``stats``, when given, is
    filled with how the sweep ran (engine, margin-guard re-runs, reduced convolutions)."""
    options = options or SweepOptions()
    check_options(model, options)
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


def check_options(model: nn.Module, options: SweepOptions) -> None:
    """One-line errors for settings the engine cannot run with, before any work."""
    if options.method not in METHODS:
        raise ValueError(f"unknown sweep method {options.method!r}; choose from {METHODS}")
    unknown = [f for f in options.filters if f not in FILTERS]
    if unknown:
        raise ValueError(f"unknown filter {unknown[0]!r}; choose from {FILTERS}")
    if options.variant_batch < 1:
        raise ValueError(f"variant_batch must be >= 1, got {options.variant_batch}")
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


def _per_image(cached_batch: tuple, batch_len: int) -> bool:
    """Whether every cached value is a tensor with one row per image: only then can the margin
    guard re-run a subset of the batch (a ViT's prefix also hands on shapes and None)."""
    return all(isinstance(t, torch.Tensor) and t.dim() > 0 and len(t) == batch_len for t in cached_batch)


def _chunk_size(cached_batch: tuple, batch_len: int, batch_size: int, budget_mb: float) -> int:
    """Images per chunk so that the cached upstream tensors fit the memory budget."""
    per_image = sum(t.numel() * t.element_size() for t in cached_batch if isinstance(t, torch.Tensor)) / max(batch_len, 1)
    fitting = int(budget_mb * 2**20 // max(per_image, 1))
    return max(batch_size, fitting // batch_size * batch_size)
