"""A faster copy of the downstream graph: BatchNorm folded into convolutions, channels_last.

Folding a Conv→BatchNorm pair into one convolution (weights scaled per output channel,
bias shifted) saves a pass over every feature map, and the channels_last layout lets
oneDNN/cuDNN pick faster kernels. Both change the order of floating-point operations, so
logits move by a few ulps: :func:`fragility.sweep.sweep` re-evaluates every image whose
top-2 margin is within ``margin_guard`` on the exact graph, which keeps its predictions
those of the naive path.

Masks commute with folding (a zeroed weight times the BatchNorm scale is zero), so a
variant is evaluated by masking the original layer in place and calling :meth:`refresh`.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
import torch.fx as fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights


class FusedSuffix:
    """``FusedSuffix(suffix, layers)(*cached)`` ≈ ``suffix(*cached)``, faster; the weights of
    ``layers`` are re-read from ``suffix``'s own modules on :meth:`refresh`."""

    def __init__(self, suffix: fx.GraphModule, layers: list[str]):
        self.module = copy.deepcopy(suffix)
        folded = _fold_batchnorm(self.module)
        self.sources = [  # (module in the fused copy, original layer, its BatchNorm if folded)
            (self.module.get_submodule(name), suffix.get_submodule(name), suffix.get_submodule(folded[name]) if name in folded else None)
            for name in layers
        ]
        self.module.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the (masked) weights of the filtered layers into the fused graph."""
        for fused, original, bn in self.sources:
            if bn is None:
                fused.weight.copy_(original.weight)
                continue
            weight, bias = fuse_conv_bn_weights(
                original.weight, original.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            fused.weight.copy_(weight)
            fused.bias.copy_(bias)

    def __call__(self, *cached: torch.Tensor) -> torch.Tensor:
        return self.module(*cached)


def to_channels_last(tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The cached upstream tensors in the fused graph's layout (feature maps only)."""
    return tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in tensors)


def _fold_batchnorm(module: fx.GraphModule) -> dict[str, str]:
    """Fold in place every Conv2d whose only user is a BatchNorm2d; returns conv → bn names."""
    folded = {}
    calls = Counter(n.target for n in module.graph.nodes if n.op == "call_module")
    for node in list(module.graph.nodes):
        if node.op != "call_module" or not isinstance(module.get_submodule(node.target), nn.Conv2d):
            continue
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_module" or calls[node.target] > 1:
            continue
        bn_node = users[0]
        bn = module.get_submodule(bn_node.target)
        if not isinstance(bn, nn.BatchNorm2d) or not bn.track_running_stats or calls[bn_node.target] > 1:
            continue
        fused = fuse_conv_bn_eval(module.get_submodule(node.target), bn)
        parent, _, leaf = node.target.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, leaf, fused)
        bn_node.replace_all_uses_with(node)
        module.graph.erase_node(bn_node)
        folded[node.target] = bn_node.target
    module.graph.lint()
    module.delete_all_unused_submodules()
    module.recompile()
    return folded
