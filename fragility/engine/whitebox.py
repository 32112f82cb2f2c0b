"""The white-box reading of a sweep: every variant attacked afresh and classified.

The transferred reading (the paper's) classifies one adversarial set, made once on the
unfiltered network, under every variant; removing weights moves the network away from the
one the attack was made on, so that reading also measures how well the attack transfers.
Here each variant is attacked itself (the configured attack at the run's ε) and its own
adversarial images are classified: the variant's robustness alone.

Two paths give identical adversarial images and accuracies:

- ``naive`` runs the attack on the whole masked network per variant;
- ``cached`` (the default for one-step attacks, FGSM) keeps the graph of the test images'
  forward pass up to the filtered layer — the same for every variant — and per variant runs
  only the suffix forward, then backpropagates through suffix and kept prefix graph to the
  images. Multi-step attacks (PGD) move the images every step, so they run ``naive``;
- ``batched`` (``SweepOptions.variant_batch`` > 1, the default on a GPU) is ``cached`` with
  several variants per call: their masked weights stacked and the suffix mapped over them
  (``torch.func.vmap`` of ``functional_call``), each variant's gradient then taken back
  through the one kept prefix graph in a single batched backward. Float sums run in
  another order, so a gradient component within rounding of 0 may change sign: the images
  agree to float rounding. A suffix that cannot be mapped over variants (an in-place
  operation on an activation shared by all of them) runs ``cached``, and the log says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..attack import ATTACKS, Attack, perturb
from ..evaluation import predict
from ..models import filtered_layers, list_layers
from .sweep import (
    CHECK_IMAGES,
    UNFILTERED,
    GraphChoice,
    MaskedLayer,
    SweepOptions,
    _guarded_classes,
    _per_image,
    _to_device,
    check_options,
    checked_fused,
)
from .upstream import split_at

log = logging.getLogger(__name__)


def attack_removals(
    model: nn.Module,
    layer: str,
    x: torch.Tensor,
    y: torch.Tensor,
    removals: dict,
    epsilon: float,
    attack: Attack,
    options: SweepOptions | None = None,
    masked: MaskedLayer | None = None,
    stats: dict | None = None,
) -> dict[str, np.ndarray]:
    """Per removal (``key -> object with a mask(layer) method``, plus ``UNFILTERED``), which
    images of ``x`` the variant still classifies as ``y`` under ``attack`` made against that
    variant at ``epsilon``. The model is left exactly as it was. ``options.method == "naive"``
    forces the naive path; ``stats`` is filled with the path taken and the seconds spent."""
    options = options or SweepOptions()
    masked = masked or MaskedLayer(model, layer, options.steps)
    removals = {UNFILTERED: None, **dict(removals)}
    correct = {key: np.empty(len(x), dtype=bool) for key in removals}
    stats = {} if stats is None else stats
    started = time.perf_counter()
    classify = _classifier(model, layer, masked, x, options, stats)
    for key, start, x_adv in adversarial_images(model, layer, x, y, removals, epsilon, attack, options, masked, stats):
        # the generator leaves the variant's weights in place while its images are classified
        correct[key][start : start + len(x_adv)] = (classify(x_adv) == y[start : start + len(x_adv)]).numpy()
    stats["whitebox_seconds"] = time.perf_counter() - started
    log.info(
        "layer %s: %d variants attacked white-box (%s path, classified on the %s network) in %.1f s",
        layer,
        len(removals),
        stats["whitebox_path"],
        stats["classify_engine"],
        stats["whitebox_seconds"],
    )
    return correct


def _classifier(model: nn.Module, layer: str, masked: MaskedLayer, x: torch.Tensor, options: SweepOptions, stats: dict):
    """``classify(images)``: the classes the network with the variant's weights in place
    gives. ``fast`` classifies on the fused whole network (BatchNorm folded, 1×1 maps
    reduced, :mod:`fragility.engine.fusion`) where it is faster on the first variants
    (:class:`~fragility.engine.sweep.GraphChoice`), near ties (``margin_guard``) on the exact
    network: the same classes as ``predict``."""
    plain = lambda images: predict(model, images, options.batch_size)  # noqa: E731
    stats.update(classify_engine="whole", guard_reruns=0, evaluations=0)
    if options.method != "fast":
        return plain
    device = masked.weights[0].device
    example = _to_device(x[:CHECK_IMAGES], device)
    whole = split_at(model, list_layers(model), example)  # cut before the first layer: no prefix to reuse
    fused = None
    with torch.inference_mode():
        first = whole.prefix(example)
        if whole.upstream and _per_image(first, len(example)):
            fused = checked_fused(whole, filtered_layers(model, layer), first, masked)
    if fused is None:
        return plain
    choice = GraphChoice(fused, options.probe, {})

    def classify(images: torch.Tensor) -> torch.Tensor:
        graph = choice.graph
        with torch.inference_mode():  # the fused graph was built in inference mode: refresh it there too
            if graph == "fused":
                fused.refresh()
            batches = [
                whole.prefix(_to_device(images[start : start + options.batch_size], device))
                for start in range(0, len(images), options.batch_size)
            ]
            if graph == "exact":
                classes = choice.run(graph, lambda: [whole.suffix(*batch).argmax(1).cpu() for batch in batches])
            else:
                classes = choice.run(
                    graph,
                    lambda: [
                        _guarded_classes(fused, whole.suffix, fused.layout(batch), options.margin_guard, stats).cpu()
                        for batch in batches
                    ],
                )
        stats["classify_engine"] = choice.choice or "trial"
        return torch.cat(classes)

    return classify


def adversarial_images(
    model: nn.Module,
    layer: str,
    x: torch.Tensor,
    y: torch.Tensor,
    removals: dict,
    epsilon: float,
    attack: Attack,
    options: SweepOptions | None = None,
    masked: MaskedLayer | None = None,
    stats: dict | None = None,
) -> Iterator[tuple[str, int, torch.Tensor]]:
    """``(key, start, x_adv)``: the adversarial images of ``x[start:start + len(x_adv)]``
    made against each removal's variant, whose weights are in place while the caller holds
    them; the original weights are restored at the end."""
    options = options or SweepOptions()
    check_options(model, options)
    masked = masked or MaskedLayer(model, layer, options.steps)
    path = "cached" if options.method != "naive" and ATTACKS[attack.method].gradient_step else "naive"
    network = None
    if path == "cached":
        example = _to_device(x[:CHECK_IMAGES], masked.weights[0].device)
        network = split_at(model, filtered_layers(model, layer), example)
        path = "cached" if network.upstream else "naive"
    if path == "cached" and options.variant_batch > 1:
        names = [f"{name}.weight" for name in filtered_layers(model, layer)]
        path = "batched" if _maps_over_variants(network, masked, names, x[:2], y[:2]) else "cached"
    if stats is not None:
        stats["whitebox_path"] = path
    try:
        if path == "batched":
            yield from _batched(network, masked, names, removals, x, y, epsilon, attack, options)
        elif path == "cached":
            yield from _cached(network, masked, removals, x, y, epsilon, attack, options.batch_size)
        else:
            yield from _naive(model, masked, removals, x, y, epsilon, attack, options.batch_size)
    finally:
        masked.restore()


def _naive(model, masked, removals, x, y, epsilon, attack, batch_size):
    """The reference: the whole attack on the whole masked network per variant."""
    for done, (key, variant) in enumerate(removals.items(), 1):
        masked.apply(variant)
        yield key, 0, attack(model, x, y, epsilon, batch_size)
        _progress(done, len(removals))


def _cached(network, masked, removals, x, y, epsilon, attack, batch_size):
    """One-step attacks on the kept prefix graph of each batch: the same batches, the same
    gradient and the same perturbation as :func:`fragility.attack.fgsm` on each variant."""
    device = masked.weights[0].device
    for start in range(0, len(x), batch_size):
        xb = _to_device(x[start : start + batch_size], device).requires_grad_(True)
        yb = y[start : start + batch_size].to(device)
        with torch.enable_grad():
            cached = network.prefix(xb)  # its graph is kept and shared by every variant's backward
        for done, (key, variant) in enumerate(removals.items(), 1):
            masked.apply(variant)
            with torch.enable_grad():
                loss = F.cross_entropy(network.suffix(*cached), yb, reduction="sum")
                (grad,) = torch.autograd.grad(loss, xb, retain_graph=True)
            yield key, start, perturb(xb.detach().cpu(), grad.sign().cpu(), epsilon, attack.clamp)
            if start == 0:
                _progress(done, len(removals))
        del cached


def _batched(network, masked, names, removals, x, y, epsilon, attack, options):
    """:func:`_cached` with ``options.variant_batch`` variants per suffix call and one
    batched backward through the kept prefix graph for all of them."""
    device = masked.weights[0].device
    items = list(removals.items())
    groups = [items[i : i + options.variant_batch] for i in range(0, len(items), options.variant_batch)]
    for start in range(0, len(x), options.batch_size):
        xb = _to_device(x[start : start + options.batch_size], device).requires_grad_(True)
        yb = y[start : start + options.batch_size].to(device)
        with torch.enable_grad():
            cached = network.prefix(xb)
        done = 0
        for group in groups:
            signs = _batched_gradient_signs(network, masked, names, [variant for _, variant in group], xb, yb, cached)
            for (key, variant), sign in zip(group, signs):
                masked.apply(variant)
                yield key, start, perturb(xb.detach().cpu(), sign.cpu(), epsilon, attack.clamp)
                done += 1
                if start == 0:
                    _progress(done, len(items))
        del cached


def _batched_gradient_signs(network, masked, names, variants, xb, yb, cached) -> torch.Tensor:
    """sign(∇x CE) of the batch ``xb`` under each of ``variants``: (variants, *xb.shape)."""
    from torch.func import functional_call, grad, vmap

    stacked = [torch.stack(weights) for weights in zip(*(masked.masked_copies(v) for v in variants))]
    inputs = [t for t in cached if isinstance(t, torch.Tensor) and t.requires_grad]
    positions = [i for i, t in enumerate(cached) if isinstance(t, torch.Tensor) and t.requires_grad]

    def loss(weights, *differentiable):
        values = list(cached)
        for position, value in zip(positions, differentiable):
            values[position] = value
        logits = functional_call(network.suffix, dict(zip(names, weights)), tuple(values))
        return F.cross_entropy(logits, yb, reduction="sum")

    with torch.enable_grad():
        outer = vmap(grad(loss, argnums=tuple(range(1, len(inputs) + 1))), in_dims=(0, *[None] * len(inputs)))
        upstream = outer(stacked, *[t.detach() for t in inputs])
        (gradients,) = torch.autograd.grad(inputs, xb, grad_outputs=upstream, retain_graph=True, is_grads_batched=True)
    return gradients.sign()


def _maps_over_variants(network, masked, names, x, y) -> bool:
    """Whether the suffix runs mapped over stacked weights (an in-place operation between a
    variant's activation and one shared by all variants cannot)."""
    device = masked.weights[0].device
    xb = _to_device(x, device).requires_grad_(True)
    with torch.enable_grad():
        cached = network.prefix(xb)
    try:
        _batched_gradient_signs(network, masked, names, [None, None], xb, y.to(device), cached)
    except RuntimeError as exc:
        log.info("white-box: variants are attacked one at a time here (%s)", str(exc).splitlines()[0][:160])
        return False
    return True


def _progress(done: int, total: int) -> None:
    if done % max(1, total // 4) == 0:
        log.info("white-box: %d/%d variants", done, total)
