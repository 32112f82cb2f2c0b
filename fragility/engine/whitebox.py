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
  images. Multi-step attacks (PGD) move the images every step, so they run ``naive``.
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
from ..models import filtered_layers
from .sweep import UNFILTERED, MaskedLayer, SweepOptions, _to_device, check_options
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
    for key, start, x_adv in adversarial_images(model, layer, x, y, removals, epsilon, attack, options, masked, stats):
        # the generator leaves the variant's weights in place while its images are classified
        correct[key][start : start + len(x_adv)] = (
            predict(model, x_adv, options.batch_size) == y[start : start + len(x_adv)]
        ).numpy()
    stats["whitebox_seconds"] = time.perf_counter() - started
    log.info(
        "layer %s: %d variants attacked white-box (%s path) in %.1f s",
        layer,
        len(removals),
        stats["whitebox_path"],
        stats["whitebox_seconds"],
    )
    return correct


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
        example = _to_device(x[: options.batch_size], masked.weights[0].device)
        network = split_at(model, filtered_layers(model, layer), example)
        path = "cached" if network.upstream else "naive"
    if stats is not None:
        stats["whitebox_path"] = path
    try:
        if path == "cached":
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


def _progress(done: int, total: int) -> None:
    if done % max(1, total // 4) == 0:
        log.info("white-box: %d/%d variants", done, total)
