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
  convolutions, convolutions on 1×1 maps reduced to their live tap, and channels_last on a
  GPU (:mod:`fragility.engine.fusion`) where that is faster than the exact graph on the layer's
  first variants (:class:`GraphChoice`), or, with ``variant_batch`` > 1, several variants
  per call mapped over their stacked weights; both reorder float operations, so images
  whose top-2 logits lie within ``margin_guard`` are classified by the exact graph.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields

import torch
from torch import nn

from ..filters import FILTERS, ThresholdRange
from ..models import filtered_layers, layer_weights
from ..progress import progress
from .fusion import FusedSuffix
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
    probe: bool = True  # fast: keep the fused graph only where it is faster on the first variants (False: always)
    min_fused_evaluations: int = 10_000  # fast: image evaluations a layer needs before the fused graph is tried
    variant_batch: int = 1  # variants per call where the engine batches them (the white-box reading)
    progress: bool | None = None  # a bar over the variants (None: where a person watches, fragility.progress)

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
CHECK_IMAGES = 16  # images the engine's checks of a split or a fused graph run on: work no variant reuses


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

    def masked_copies(self, variant) -> list[torch.Tensor]:
        """The filtered tensors with ``variant``'s weights zeroed, the model's untouched (to
        stack several variants' weights for one mapped call)."""
        mask = None if variant is None else variant.mask(self)
        return [
            original if mask is None else original.masked_fill(mask[start:stop].view(original.shape).to(original.device), 0)
            for original, start, stop in zip(self.originals, self.bounds, self.bounds[1:])
        ]


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
    example = _to_device(x[:CHECK_IMAGES], masked.weights[0].device)
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
    choice, mapped, chunk, start = None, None, None, 0
    while start < len(x):
        with torch.inference_mode():  # the prefix holds no filtered layer: masks cannot reach it
            first = network.prefix(_to_device(x[start : start + batch_size], device))
            if chunk is None:
                chunk = _chunk_size(first, min(batch_size, len(x)), batch_size, options.cache_budget_mb)
                if options.method == "fast" and network.upstream and _per_image(first, min(batch_size, len(x))):
                    mapped = _mapped_if_possible(network, targets, masked, first, options.variant_batch)
                    worth = not options.probe or len(x) * len(representatives) >= options.min_fused_evaluations
                    fused = checked_fused(network, targets, first, masked) if mapped is None and worth else None
                    choice = GraphChoice(fused, options.probe, stats) if fused is not None else None
            layouts = {
                "exact": [first]
                + [
                    network.prefix(_to_device(x[i : i + batch_size], device))
                    for i in range(start + batch_size, min(start + chunk, len(x)), batch_size)
                ]
            }
        if mapped is not None:
            _predict_mapped(network, mapped, masked, representatives, layouts["exact"], options, stats, predicted, start)
            start += chunk
            continue
        variants = progress(representatives.items(), "variants", len(representatives), options.progress, leave=False)
        for done, (key, variant) in enumerate(variants, 1):
            if done % max(1, len(representatives) // 4) == 0:
                log.info("images %d-%d: %d/%d variants", start, min(start + chunk, len(x)), done, len(representatives))
            masked.apply(variant)
            with torch.inference_mode():
                if choice is None:
                    classes = [network.suffix(*batch).argmax(1) for batch in layouts["exact"]]
                else:
                    classes = _chosen_graph_classes(choice, network, layouts, options.margin_guard, stats)
            predicted[key][start : start + chunk] = torch.cat(classes).cpu()
        if choice is not None:
            choice.finish()
        start += chunk
    return predicted


def _mapped_if_possible(network: SplitNetwork, targets: list[str], masked: MaskedLayer, batch: tuple, variant_batch: int):
    """The mapped suffix (:func:`mapped_suffix`) where ``variant_batch`` > 1 and the suffix
    runs mapped over stacked weights (an in-place operation on an activation every variant
    shares cannot); else None."""
    if variant_batch < 2:
        return None
    call = mapped_suffix(network, [f"{name}.weight" for name in targets])
    try:
        call([torch.stack([w, w]) for w in masked.masked_copies(None)], tuple(t[:CHECK_IMAGES] for t in batch))
    except RuntimeError as exc:
        log.info("variants run one at a time here (%s)", str(exc).splitlines()[0][:160])
        return None
    return call


def _predict_mapped(
    network, call, masked, representatives: dict, cached: list, options, stats: dict, predicted: dict, start: int
):
    """Fill ``predicted`` for one chunk, ``options.variant_batch`` variants per mapped call;
    the classes stay on the device until a whole group is done."""
    stats.update(engine="mapped", variant_batch=options.variant_batch)
    items = list(representatives.items())
    for first in range(0, len(items), options.variant_batch):
        group = items[first : first + options.variant_batch]
        variants = [variant for _, variant in group]
        with torch.inference_mode():
            classes = torch.cat(
                [_batched_classes(network, call, masked, variants, batch, options.margin_guard, stats) for batch in cached], dim=1
            ).cpu()
        for (key, _), row in zip(group, classes):
            predicted[key][start : start + classes.shape[1]] = row
        log.info("images %d-%d: %d/%d variants", start, start + classes.shape[1], first + len(group), len(items))


def _chosen_graph_classes(choice: GraphChoice, network: SplitNetwork, layouts: dict, margin_guard: float, stats: dict):
    """One variant's classes of a chunk on the graph ``choice`` picks; the cached tensors
    are put in the fused graph's layout once, when it first runs (channels_last on a GPU: a
    copy; on a CPU the same tensors), and the layout the chosen graph does not read is
    dropped."""
    graph = choice.graph
    if graph == "fused" and "fused" not in layouts:
        layouts["fused"] = [choice.fused.layout(batch) for batch in layouts["exact"]]
    if graph == "exact":
        classes = choice.run(graph, lambda: [network.suffix(*batch).argmax(1) for batch in layouts["exact"]])
    else:
        choice.fused.refresh()
        classes = choice.run(
            graph,
            lambda: [_guarded_classes(choice.fused, network.suffix, batch, margin_guard, stats) for batch in layouts["fused"]],
        )
    if choice.choice is not None:
        for unused in set(layouts) - {choice.choice}:
            del layouts[unused]  # the guard re-runs near ties from the fused layout
    return classes


def _to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``batch`` on ``device``; to CUDA through pinned host memory, without blocking."""
    if device.type != "cuda":
        return batch.to(device)
    return batch.pin_memory().to(device, non_blocking=True)


def checked_fused(
    network: SplitNetwork, targets: list[str], example: tuple[torch.Tensor, ...], masked: MaskedLayer
) -> FusedSuffix | None:
    """The fused suffix, or None where its logits on the first ``CHECK_IMAGES`` images of
    ``example`` (the original weights) do not agree with the exact graph's; that fused call
    also warms it up. The feature-map sizes come from one image."""
    sample = tuple(t[:CHECK_IMAGES] for t in example)
    fused = FusedSuffix(network.suffix, targets, tuple(t[:1] for t in example))
    masked.restore()
    fused.refresh()
    exact_logits, fused_logits = network.suffix(*sample), fused(*fused.layout(sample))
    scale = exact_logits.abs().max().clamp(min=1)
    if torch.allclose(fused_logits, exact_logits, rtol=1e-3, atol=1e-3 * float(scale)):
        return fused
    log.warning(
        "the fused graph's logits differ from the exact graph's by %.3g on the first batch: using the exact graph",
        float((fused_logits - exact_logits).abs().max()),
    )
    return None


class GraphChoice:
    """Which downstream graph evaluates a layer's variants, decided on the variants
    themselves: the first ones alternate between the fused and the exact graph, each call
    timed and its predictions kept, and once each graph has ``TRIALS`` timings (both were
    warmed up by :func:`checked_fused`'s comparison on the first batch) the fused graph runs
    the rest only where its fastest call beats the exact graph's by more than the timings'
    own noise (:meth:`noise`, at least ``MIN_GAIN``); within noise the exact graph runs them,
    so that other work on the machine cannot make ``fast`` slower than ``exact``. No pass
    runs only to be timed, so on layers where the fused graph does not pay (``fc``,
    small maps) ``fast`` costs at most ``TRIALS`` variants on the slower graph.
    ``trial=False`` runs the fused graph on every variant."""

    TRIALS = 3
    MIN_GAIN = 0.05  # the fused graph must be at least this much faster: a quiet machine's timing noise

    def __init__(self, fused: FusedSuffix | None, trial: bool, stats: dict):
        self.fused, self.stats, self.calls = fused, stats, 0
        self.timings = {"exact": [], "fused": []}
        self.choice = None
        if fused is None or not trial:
            self._choose("exact" if fused is None else "fused")

    @property
    def graph(self) -> str:
        """The graph the next call runs on."""
        return self.choice or ("fused" if self.calls % 2 == 0 else "exact")

    def run(self, graph: str, call):
        """``call()``, timed while the choice is open."""
        if self.choice is not None:
            return call()
        started = time.perf_counter()
        result = call()
        self.timings[graph].append(time.perf_counter() - started)
        self.calls += 1
        if all(len(seconds) >= self.TRIALS for seconds in self.timings.values()):
            self.finish()
        return result

    def noise(self) -> float:
        """The timings' relative spread: per graph, how far its second-fastest call lies
        above its fastest (a first call's warm-up is the slowest and left out), the larger."""
        spreads = [(sorted(t)[1] - min(t)) / min(t) for t in self.timings.values() if len(t) >= 2 and min(t) > 0]
        return max(spreads, default=0.0)

    def finish(self) -> None:
        """Decide on the timings so far (a layer with fewer variants than the trial needs)."""
        if self.choice is not None:
            return
        best = {graph: min(seconds, default=float("inf")) for graph, seconds in self.timings.items()}
        noise = self.noise()
        self._choose("fused" if best["fused"] < (1 - max(self.MIN_GAIN, noise)) * best["exact"] else "exact")
        log.info(
            "graph chosen on the first variants: fused %.2f ms, exact %.2f ms per call (noise %.0f %%): using the %s graph",
            1e3 * best["fused"],
            1e3 * best["exact"],
            100 * noise,
            self.choice,
        )
        self.stats.update(trial_fused_ms=1e3 * best["fused"], trial_exact_ms=1e3 * best["exact"], trial_noise=noise)

    def _choose(self, graph: str) -> None:
        self.choice = graph
        self.stats.update(engine=graph, reduced_convs=self.fused.reduced if graph == "fused" else 0)


def _guarded_classes(
    fused: FusedSuffix, exact, batch: tuple[torch.Tensor, ...], margin_guard: float, stats: dict
) -> torch.Tensor:
    """Classes from the fused graph, except where its top-2 logits lie within
    ``margin_guard`` (relative to the top logit, at least 1): there the float order of the
    exact graph decides, as in the naive path."""
    logits = fused(*batch)
    close = _near_ties(logits, margin_guard)
    classes = logits.argmax(1)
    stats["evaluations"] += len(classes)
    if close.any():
        stats["guard_reruns"] += int(close.sum())
        classes[close] = exact(*(t[close].contiguous() for t in batch)).argmax(1)
    return classes


def _near_ties(logits: torch.Tensor, margin_guard: float) -> torch.Tensor:
    """Whether each row's top-2 logits (last dimension) lie within ``margin_guard`` × max(1, |top|)."""
    top = logits.topk(2, dim=-1).values if logits.shape[-1] > 1 else logits.repeat_interleave(2, dim=-1)
    return (top[..., 0] - top[..., 1]) <= margin_guard * top[..., 0].abs().clamp(min=1)


def mapped_suffix(network: SplitNetwork, names: list[str]):
    """``call(stacked, batch)``: the suffix's logits of ``batch`` under each set of stacked
    weights (tensors named ``names``, variants along the first dimension) in one mapped call."""
    from torch.func import functional_call, vmap

    def logits(weights, batch):
        return functional_call(network.suffix, dict(zip(names, weights)), tuple(batch))

    return vmap(logits, in_dims=(0, None))


def _batched_classes(
    network: SplitNetwork, call, masked: MaskedLayer, variants: list, batch: tuple, margin_guard: float, stats: dict
):
    """Classes of ``batch`` under each of ``variants`` (variants × images) from one mapped
    suffix call; rows within ``margin_guard`` of a tie are classified by the exact graph with
    that variant's weights in place, as the naive path would."""
    stacked = [torch.stack(weights) for weights in zip(*(masked.masked_copies(v) for v in variants))]
    logits = call(stacked, batch)
    close = _near_ties(logits, margin_guard)
    classes = logits.argmax(-1)
    stats["evaluations"] += classes.numel()
    if close.any():  # one device sync per group of variants
        for index in close.any(dim=1).nonzero().flatten().tolist():
            rows = close[index]
            stats["guard_reruns"] += int(rows.sum())
            masked.apply(variants[index])
            classes[index, rows] = network.suffix(*(t[rows] for t in batch)).argmax(1)
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
