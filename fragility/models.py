"""torchvision classifiers wrapped so that attacks and filters see pixel space.

:class:`Classifier` holds the input normalisation (and an optional resize) in front of
an unmodified torchvision network ``net``. Layer names are qualified names inside
``net`` (``layer3.0.conv2``), exactly as torchvision spells them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from . import GLOBAL_LAYER

FILTERABLE = (nn.Conv2d, nn.Linear)
STEMS = ("plain", "cifar")
INITS = ("kaiming_uniform", "torchvision")


class Classifier(nn.Module):
    """Normalise pixels in [0, 1], resize when smaller than ``image_size``, classify."""

    def __init__(self, net: nn.Module, mean, std, image_size: int | None):
        super().__init__()
        self.net = net
        self.image_size = image_size
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] -> the normalised, resized input of ``net``."""
        if self.image_size and x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(x))


def available_models() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def build_model(
    name: str,
    num_classes: int,
    in_channels: int,
    image_size: int | None,
    mean,
    std,
    stem: str = "plain",
    init: str = "kaiming_uniform",
) -> Classifier:
    """A torchvision classifier with K outputs, first conv taking ``in_channels``.

    ``stem="cifar"`` keeps small inputs large (3x3 stride-1 first conv, first max-pool
    removed) for ResNets, SqueezeNet and ShuffleNet; ``"plain"`` is torchvision's stem.
    ``image_size`` (or None) is the side inputs are resized to when they differ.
    """
    if name not in available_models():
        raise ValueError(f"unknown model {name!r}; torchvision classification models are: {', '.join(available_models())}")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {STEMS}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
    net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    _adapt_first_conv(net, in_channels, small_stem=stem == "cifar")
    if stem == "cifar":
        _remove_first_maxpool(net)
    if init == "kaiming_uniform":
        for module in net.modules():
            if isinstance(module, FILTERABLE):
                nn.init.kaiming_uniform_(module.weight)
    return Classifier(net, mean, std, image_size)


def _first(net: nn.Module, kind) -> tuple[nn.Module, str, nn.Module] | None:
    """(parent, attribute, module) of the first module of type ``kind`` in module order."""
    for parent_name, parent in net.named_modules():
        for attr, child in parent.named_children():
            if isinstance(child, kind):
                return parent, attr, child
    return None


def _adapt_first_conv(net: nn.Module, in_channels: int, small_stem: bool) -> None:
    parent, attr, conv = _first(net, nn.Conv2d)
    kernel, stride, padding = conv.kernel_size, conv.stride, conv.padding
    if small_stem:
        kernel, stride, padding = (3, 3), (1, 1), (1, 1)
    if in_channels == conv.in_channels and (kernel, stride, padding) == (conv.kernel_size, conv.stride, conv.padding):
        return
    replacement = nn.Conv2d(
        in_channels, conv.out_channels, kernel, stride=stride, padding=padding,
        dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
    )
    setattr(parent, attr, replacement)


def _remove_first_maxpool(net: nn.Module) -> None:
    found = _first(net, nn.MaxPool2d)
    if found:
        parent, attr, _ = found
        setattr(parent, attr, nn.Identity())


def backbone(model: nn.Module) -> nn.Module:
    """The network whose qualified names are the layer names."""
    return model.net if isinstance(model, Classifier) else model


def list_layers(model: nn.Module) -> list[str]:
    """Qualified names of every Conv2d and Linear (the filterable layers), in module order."""
    return [name for name, m in backbone(model).named_modules() if isinstance(m, FILTERABLE)]


def layer_names(name: str, stem: str = "plain") -> list[str]:
    """The filterable layers of architecture ``name`` without allocating its weights."""
    return list_layers(_meta_model(name, stem))


def first_conv_layer(name: str, stem: str = "plain") -> str:
    """The first Conv2d of architecture ``name`` in module order."""
    return next(n for n, m in backbone(_meta_model(name, stem)).named_modules() if isinstance(m, nn.Conv2d))


def _meta_model(name: str, stem: str) -> Classifier:
    """Architecture ``name`` on the meta device: its structure without its weights."""
    with torch.device("meta"):
        return build_model(name, 10, 3, None, [0.5] * 3, [0.25] * 3, stem=stem, init="torchvision")


def filtered_layers(model: nn.Module, layer: str) -> list[str]:
    """The layers a filter acts on: ``layer`` itself, or every one for ``__global__``."""
    known = list_layers(model)
    if layer == GLOBAL_LAYER:
        return known
    if layer not in known:
        raise KeyError(f"layer {layer!r} is not a Conv2d/Linear of this model; layers: {', '.join(sorted(known))}")
    return [layer]


def layer_weights(model: nn.Module, layer: str) -> list[nn.Parameter]:
    """The weight tensors a filter acts on: one layer's, or all of them for ``__global__``."""
    net = backbone(model)
    return [net.get_submodule(n).weight for n in filtered_layers(model, layer)]


def freeze_layers(model: nn.Module, layers: list[str]) -> list[nn.Parameter]:
    """Stop gradients to every parameter of ``layers`` (their own, not their BatchNorm's)."""
    net = backbone(model)
    frozen = [p for name in layers for p in net.get_submodule(name).parameters(recurse=False)]
    for parameter in frozen:
        parameter.requires_grad_(False)
    return frozen


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for but torch sees no CUDA device")
    return torch.device(device)


def layer_roles(name: str, stem: str = "plain") -> dict:
    """What the paper's claims single out in architecture ``name``: its first convolution, its
    last filterable layer (the classifier: ``fc``, ``classifier.1``…) and the middle
    convolutions whose output goes straight into a BatchNorm."""
    import torch.fx as fx

    net = backbone(_meta_model(name, stem))
    layers = list_layers(net)
    graph = fx.symbolic_trace(net).graph
    bn_convs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(net.get_submodule(node.target), nn.Conv2d):
            continue
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_module" and isinstance(net.get_submodule(users[0].target), nn.BatchNorm2d):
            bn_convs.append(node.target)
    first = first_conv_layer(name, stem)
    return {"first_conv": first, "last_layer": layers[-1], "bn_convs": [c for c in bn_convs if c != first]}
