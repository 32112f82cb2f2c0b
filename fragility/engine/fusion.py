"""A faster copy of the downstream graph: BatchNorm folded into convolutions, convolutions
on 1×1 feature maps reduced to their one live tap, channels_last on a GPU.

Folding a Conv→BatchNorm pair into one convolution (weights scaled per output channel,
bias shifted) saves a pass over every feature map. On a GPU the channels_last layout lets
cuDNN pick its tensor-core kernels; on a CPU the graph keeps the cached tensors' layout: there
oneDNN's channels_last kernels were slower than the plain ones on most of ResNet-18's layers
(docs/engine.md), and keeping the layout spares a copy of every cached tensor. Small inputs
shrink to 1×1 maps deep in a network (ResNet-18's plain stem on 8×8 digits: from layer2 on); a k×k convolution with zero
padding p then only ever multiplies its input by the tap (p, p) — the others see padding —
so it is replaced by a 1×1 convolution with that tap, which does 1/k² of the work.
All of this changes the order of floating-point operations, so logits move by a few ulps:
:func:`fragility.stress.synaptic.sweep` re-evaluates every image whose top-2 margin is within
``margin_guard`` on the exact graph, which keeps its predictions those of the naive path.

Masks commute with folding (a zeroed weight times the BatchNorm scale is zero), so a
variant is evaluated by masking the original layer in place and calling :meth:`refresh`.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.utils.fusion import fuse_conv_bn_weights


class FusedSuffix:
    """``FusedSuffix(suffix, layers, example)(*cached)`` ≈ ``suffix(*cached)``, faster; the
    weights of ``layers`` are re-read from ``suffix``'s own modules on :meth:`refresh`.
    ``example`` (cached tensors of one batch) gives the feature-map sizes; without it no
    convolution is reduced. ``channels_last`` (None: where ``example`` lies on a GPU) sets
    the layout the graph runs in; :meth:`layout` puts cached tensors in it."""

    def __init__(
        self,
        suffix: fx.GraphModule,
        layers: list[str],
        example: tuple[torch.Tensor, ...] | None = None,
        channels_last: bool | None = None,
    ):
        if channels_last is None:
            channels_last = example is not None and any(t.is_cuda for t in example if isinstance(t, torch.Tensor))
        self.channels_last = channels_last
        self.module = _copy_sharing_tensors(suffix)
        folded = _fold_batchnorm(self.module)
        taps = _reduce_one_by_one_convs(self.module, example) if example is not None else {}
        self.sources = [  # (module in the fused copy, original layer, its BatchNorm if folded, live tap if reduced)
            (
                self.module.get_submodule(name),
                suffix.get_submodule(name),
                suffix.get_submodule(folded[name]) if name in folded else None,
                taps.get(name),
            )
            for name in layers
        ]
        self.reduced = len(taps)
        if channels_last:
            self.module.to(memory_format=torch.channels_last)

    def layout(self, cached: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """``cached`` in the layout the graph runs in (the same tensors where that is theirs)."""
        return to_channels_last(cached) if self.channels_last else cached

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the (masked) weights of the filtered layers into the fused graph."""
        for fused, original, bn, tap in self.sources:
            weight, bias = original.weight, original.bias
            if bn is not None:
                weight, bias = fuse_conv_bn_weights(weight, bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
            if tap is not None:
                weight = weight[:, :, tap[0] : tap[0] + 1, tap[1] : tap[1] + 1].reshape(fused.weight.shape)
            fused.weight.copy_(weight)
            if bn is not None:
                fused.bias.copy_(bias)

    def __call__(self, *cached: torch.Tensor) -> torch.Tensor:
        return self.module(*cached)


def to_channels_last(tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The cached upstream tensors in the fused graph's layout (feature maps only)."""
    return tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in tensors)


def _copy_sharing_tensors(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (its graph and submodules) whose parameters and buffers are the
    original's tensors: the folded and reduced layers get tensors of their own, the others are
    only read, and copying every weight would cost more than a small sweep saves."""
    shared = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return copy.deepcopy(module, memo=shared)


def _folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``conv`` with ``bn`` folded in: a copy holding the folded weight and bias (computed once,
    not copied first as ``torch.nn.utils.fusion.fuse_conv_bn_eval`` does)."""
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    fused = _copy_sharing_tensors(conv)
    fused.weight, fused.bias = weight, bias
    return fused


def _fold_batchnorm(module: fx.GraphModule) -> dict[str, str]:
    """Fold in place every Conv2d whose only user is a BatchNorm2d; returns conv → bn names."""
    folded = {}
    calls = Counter(n.target for n in module.graph.nodes if n.op == "call_module")
    for node in list(module.graph.nodes):
        if node.op != "call_module" or type(module.get_submodule(node.target)) is not nn.Conv2d:
            continue  # exact types: a library's subclass may compute more (timm's Conv2dSame pads, BatchNormAct2d activates)
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_module" or calls[node.target] > 1:
            continue
        bn_node = users[0]
        bn = module.get_submodule(bn_node.target)
        if type(bn) is not nn.BatchNorm2d or not bn.track_running_stats or calls[bn_node.target] > 1:
            continue
        fused = _folded_conv(module.get_submodule(node.target), bn)
        parent, _, leaf = node.target.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, leaf, fused)
        bn_node.replace_all_uses_with(node)
        module.graph.erase_node(bn_node)
        folded[node.target] = bn_node.target
    module.graph.lint()
    module.delete_all_unused_submodules()
    module.recompile()
    return folded


class OnePixelConv(nn.Module):
    """A convolution whose input and output maps are 1×1, computed as the matrix product it
    is (``weight``: out × in channels): oneDNN's convolution kernels run such shapes several
    times slower than a GEMM."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight = nn.Parameter(weight.reshape(weight.shape[0], -1).clone(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.reshape(x.shape[0], -1), self.weight, self.bias).view(x.shape[0], -1, 1, 1)


def _reduce_one_by_one_convs(module: fx.GraphModule, example: tuple[torch.Tensor, ...]) -> dict[str, tuple[int, int]]:
    """Replace in place every zero-padded Conv2d whose input and output maps are 1×1 by its one
    live tap: a :class:`OnePixelConv` (a 1×1 grouped convolution where ``groups`` > 1); returns
    conv name → tap (row, column)."""
    with torch.inference_mode():
        ShapeProp(module).propagate(*example)
    taps = {}
    calls = Counter(n.target for n in module.graph.nodes if n.op == "call_module")
    for node in module.graph.nodes:
        if node.op != "call_module" or calls[node.target] > 1:
            continue
        conv = module.get_submodule(node.target)
        if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or conv.dilation != (1, 1):
            continue
        source = node.args[0].meta.get("tensor_meta") if isinstance(node.args[0], fx.Node) else None
        output = node.meta.get("tensor_meta")
        if source is None or output is None or tuple(source.shape[-2:]) != (1, 1) or tuple(output.shape[-2:]) != (1, 1):
            continue
        if isinstance(conv.padding, str) or any(p >= k for p, k in zip(conv.padding, conv.kernel_size)):
            continue  # the input pixel would sit in the padding: no live tap
        tap = tuple(conv.padding)
        weight = conv.weight.detach()[:, :, tap[0] : tap[0] + 1, tap[1] : tap[1] + 1]
        bias = None if conv.bias is None else conv.bias.detach()
        if conv.groups == 1:
            reduced = OnePixelConv(weight, bias)
        else:
            reduced = nn.Conv2d(conv.in_channels, conv.out_channels, 1, groups=conv.groups, bias=bias is not None).to(
                weight.device
            )
            with torch.no_grad():
                reduced.weight.copy_(weight)
                if bias is not None:
                    reduced.bias.copy_(bias)
        parent, _, leaf = node.target.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, leaf, reduced)
        taps[node.target] = tap
    module.recompile()
    return taps
