"""Upstream caching: split a network at the first filtered module.

Every filtered variant of a layer differs from the unfiltered network in that layer
only, so everything computed before it in the traced graph is the same for all
variants. :func:`split_at` cuts the torch.fx graph of the backbone there: ``prefix``
maps a batch to the tensors the rest of the graph needs (residual branches included),
``suffix`` maps those to logits. Both share the original modules, so weights masked in
place are seen by the suffix.

Where the cut cannot be trusted — the network does not trace, the layer is not a module
call of the graph, the prefix reads the layer's weights, or the split network's logits on
an example batch are not bit-identical to the model's — the layer runs on the whole
network instead, and the reason is logged: slower, never a wrong number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn

from ..models import Classifier, backbone, trace

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


def split_at(model: nn.Module, layers: list[str], example: torch.Tensor | None = None) -> SplitNetwork:
    """Split ``model`` before the first call of any module in ``layers``; with ``example``
    (a batch of pixel inputs) the split is checked to give the model's logits bit for bit.

    Falls back to :func:`whole_network`, logging why, wherever the split cannot be trusted.
    """
    net = backbone(model)
    try:
        traced = trace(net)
    except Exception as exc:  # user models with data-dependent control flow
        return _fallback(
            model, layers, f"torch.fx cannot trace {type(net).__name__} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
        )
    nodes = list(traced.graph.nodes)
    targets = set(layers)
    cut = next((i for i, n in enumerate(nodes) if n.op == "call_module" and n.target in targets), None)
    if cut is None:
        return _fallback(model, layers, "the layer is not a module call in the traced graph")
    upstream, downstream = nodes[:cut], nodes[cut:]
    if _reads_weights_of(traced, upstream, layers):
        return _fallback(model, layers, "the graph before the layer reads its weights (shared or tied parameters)")
    downstream_inputs = {a for n in downstream for a in n.all_input_nodes}
    frontier = [n for n in upstream if n in downstream_inputs]
    prefix_module = fx.GraphModule(traced, _subgraph(upstream, frontier, inputs=None))
    suffix_module = fx.GraphModule(traced, _subgraph(downstream, None, inputs=frontier))
    preprocess = model.preprocess if isinstance(model, Classifier) else (lambda x: x)

    def prefix(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = prefix_module(preprocess(x))
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    network = SplitNetwork(prefix, suffix_module, upstream=True)
    if example is not None:
        with torch.inference_mode():
            expected, split = model(example), network.suffix(*network.prefix(example))
        if not (isinstance(split, torch.Tensor) and split.shape == expected.shape and torch.equal(split, expected)):
            return _fallback(model, layers, "the split graph's logits differ from the model's on the first batch")
    return network


def _fallback(model: nn.Module, layers: list[str], reason: str) -> SplitNetwork:
    log.warning(
        "layer %s: no upstream cache, the whole network runs per variant: %s",
        ",".join(layers[:3]) + ("…" if len(layers) > 3 else ""),
        reason,
    )
    return whole_network(model)


def _reads_weights_of(traced: fx.GraphModule, upstream: list[fx.Node], layers: list[str]) -> bool:
    """Whether a node before the cut uses a parameter of ``layers`` (the cache would hold
    activations computed with unmasked weights)."""
    filtered = {id(p) for name in layers for p in traced.get_submodule(name).parameters()}
    for node in upstream:
        if node.op == "call_module":
            used = traced.get_submodule(node.target).parameters()
        elif node.op == "get_attr":
            used = [_attribute(traced, node.target)]
        else:
            continue
        if any(id(p) in filtered for p in used):
            return True
    return False


def _attribute(module: nn.Module, target: str):
    for part in target.split("."):
        module = getattr(module, part)
    return module


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
