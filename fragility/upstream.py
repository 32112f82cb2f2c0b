"""Upstream caching: split a network at the first filtered module.

Every filtered variant of a layer differs from the unfiltered network in that layer
only, so everything computed before it in the traced graph is the same for all
variants. :func:`split_at` cuts the torch.fx graph of the backbone there: ``prefix``
maps a batch to the tensors the rest of the graph needs (residual branches included),
``suffix`` maps those to logits. Both share the original modules, so weights masked in
place are seen by the suffix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.fx as fx
from torch import nn

from .models import Classifier, backbone

log = logging.getLogger(__name__)


@dataclass
class SplitNetwork:
    """``suffix(*prefix(x)) == model(x)`` for pixel inputs ``x``."""

    prefix: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    suffix: Callable[..., torch.Tensor]
    upstream: bool  # False when the network could not be traced and runs whole


def whole_network(model: nn.Module) -> SplitNetwork:
    """The naive split: no cache, the full network for every variant."""
    return SplitNetwork(lambda x: (x,), model, upstream=False)


def split_at(model: nn.Module, layers: list[str]) -> SplitNetwork:
    """Split ``model`` before the first call of any module in ``layers``.

    Falls back to :func:`whole_network` when the backbone cannot be traced by torch.fx.
    """
    net = backbone(model)
    try:
        traced = fx.symbolic_trace(net)
    except Exception as exc:  # user models with data-dependent control flow
        log.warning("torch.fx cannot trace %s (%s); running the whole network per variant", type(net).__name__, exc)
        return whole_network(model)
    nodes = list(traced.graph.nodes)
    targets = set(layers)
    cut = next(i for i, n in enumerate(nodes) if n.op == "call_module" and n.target in targets)
    upstream, downstream = nodes[:cut], nodes[cut:]
    downstream_inputs = {a for n in downstream for a in n.all_input_nodes}
    frontier = [n for n in upstream if n in downstream_inputs]
    prefix_module = fx.GraphModule(traced, _subgraph(upstream, frontier, inputs=None))
    suffix_module = fx.GraphModule(traced, _subgraph(downstream, None, inputs=frontier))
    preprocess = model.preprocess if isinstance(model, Classifier) else (lambda x: x)

    def prefix(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = prefix_module(preprocess(x))
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    return SplitNetwork(prefix, suffix_module, upstream=True)


def _subgraph(nodes: list[fx.Node], outputs: list[fx.Node] | None, inputs: list[fx.Node] | None) -> fx.Graph:
    """Copy ``nodes`` into a new graph; ``inputs`` become placeholders, ``outputs`` the result."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for i, node in enumerate(inputs or []):
        env[node] = graph.placeholder(f"cached_{i}")
    for node in nodes:
        env[node] = graph.node_copy(node, lambda n: env[n])
    if outputs is not None:
        graph.output(tuple(env[n] for n in outputs))
    graph.lint()
    return graph
