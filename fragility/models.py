"""Classifiers wrapped so that attacks and filters see pixel space.

:class:`Classifier` holds the input normalisation (and an optional resize) in front of
an unmodified network ``net``. Layer names are qualified names inside ``net``
(``layer3.0.conv2``, ``blocks.0.attn.qkv``), exactly as its code spells them.

An architecture is named three ways (:func:`build_network`): a torchvision classification
model (``resnet18``), any timm model (``timm/vit_tiny_patch16_224``), or a factory in the
user's own code (``package.module:factory``, called with ``num_classes=K``).
"""

from __future__ import annotations

import functools
import importlib

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from . import GLOBAL_LAYER
from .structure import TIMM_PREFIX, ArchitectureError, Structure, architecture_kind, model_slug, unbuildable, unknown_model  # noqa: F401  (public here too)

FILTERABLE = (nn.Conv2d, nn.Linear)
STEMS = ("plain", "cifar")
INITS = ("kaiming_uniform", "torchvision")


class Classifier(nn.Module):
    """The network the tool analyses: pixels in [0, 1] are resized (bilinear) to
    ``image_size`` × ``image_size`` whenever their width differs from it, normalised by
    ``mean``/``std``, then classified by ``net``; so attacks work in pixel space."""

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


def check_architecture(architecture: str) -> None:
    """:class:`ArchitectureError` unless ``architecture`` names a model that can be built."""
    kind = architecture_kind(architecture)
    if kind == "torchvision" and architecture not in available_models():
        raise unknown_model(architecture)
    if kind == "timm":
        timm = _timm()
        if not timm.is_model(architecture.removeprefix(TIMM_PREFIX)):
            raise ArchitectureError(
                f"unknown timm model {architecture.removeprefix(TIMM_PREFIX)!r} (timm.list_models() lists them)"
            )
    if kind == "factory":
        _factory(architecture)


def _timm():
    """The timm package, or an :class:`ArchitectureError` saying how to install it (an extra)."""
    try:
        import timm
    except ImportError as exc:
        raise ArchitectureError("timm models need the timm package: pip install 'fragility[timm]' (or pip install timm)") from exc
    return timm


def _factory(architecture: str):
    module_name, _, attribute = architecture.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ArchitectureError(
            f"model factory {architecture!r} does not import ({type(exc).__name__}: {exc}); is its package on PYTHONPATH?"
        ) from exc
    if not callable(factory):
        raise ArchitectureError(f"model factory {architecture!r} is not callable")
    return factory


def build_network(architecture: str, num_classes: int, in_channels: int, stem: str = "plain") -> nn.Module:
    """The bare network ``architecture`` with ``num_classes`` outputs, untrained: a torchvision
    model (first conv adapted to ``in_channels``), a timm model (``in_chans``), or the user's
    factory called with ``num_classes`` (its network is never changed: channels and stem are
    its own business). ``stem="cifar"`` keeps small inputs large (3x3 stride-1 first conv,
    first max-pool removed)."""
    check_architecture(architecture)
    kind = architecture_kind(architecture)
    if kind == "factory":
        net = _factory(architecture)(num_classes=num_classes)
        if not isinstance(net, nn.Module):
            raise ArchitectureError(f"model factory {architecture!r} returned {type(net).__name__}, not a torch.nn.Module")
        return net
    if kind == "timm":
        net = _timm().create_model(
            architecture.removeprefix(TIMM_PREFIX), pretrained=False, num_classes=num_classes, in_chans=in_channels
        )
    else:
        net = torchvision.models.get_model(architecture, weights=None, num_classes=num_classes)
    _adapt_first_conv(net, in_channels, small_stem=stem == "cifar")
    if stem == "cifar":
        _remove_first_maxpool(net)
    return net


def check_outputs(architecture: str, num_classes: int, input_shape: tuple[int, int, int], stem: str = "plain") -> None:
    """:class:`ArchitectureError` unless the network takes images of ``input_shape`` (C, H, W)
    and gives ``num_classes`` logits; a forward pass on the meta device, so it costs nothing."""
    net = backbone(meta_model(architecture, stem, num_classes, input_shape[0]))
    try:
        with torch.no_grad():
            out = net(torch.empty(2, *input_shape, device="meta"))
    except Exception as exc:
        raise ArchitectureError(
            f"model {architecture!r} does not take the dataset's images of shape {tuple(input_shape)} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ArchitectureError(
            f"model {architecture!r} gives outputs of shape {shape} for a batch of 2; "
            f"the dataset has {num_classes} classes (a factory must honour num_classes)"
        )


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
    """Architecture ``name`` (:func:`build_network`) with K outputs taking ``in_channels``.

    ``stem="cifar"`` suits small inputs for ResNets, SqueezeNet and ShuffleNet; ``"plain"``
    is the architecture's own stem. ``image_size`` (or None) is the side inputs are resized
    to when they differ. ``init="given"`` keeps the architecture's own initialisation, for
    weights that will be loaded over it.
    """
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {STEMS}")
    if init not in INITS + ("given",):
        raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
    net = build_network(name, num_classes, in_channels, stem)
    if init == "kaiming_uniform":
        for module in net.modules():
            if isinstance(module, FILTERABLE):
                nn.init.kaiming_uniform_(module.weight)
    one_pixel_convolutions_as_products(net)
    return Classifier(net, mean, std, image_size)


def one_pixel_convolutions_as_products(net: nn.Module) -> list[str]:
    """Make every plain zero-padded ``nn.Conv2d`` compute a 1×1 input map that yields a 1×1
    output map as the matrix product it is (its one live tap, the others see padding); returns
    the names of the convolutions that can. Small inputs shrink to 1×1 maps deep in a network
    (ResNet-18's plain stem on 8×8 digits from ``layer2`` on, on 32×32 in ``layer4``), and
    oneDNN's convolution kernels run those shapes 5–60× slower than the product, backward
    worst (a 512-channel 3×3 convolution's training step: 0.44 s against under 1 ms). The
    result is the convolution's, summed in another order; modules, parameters and state dicts
    are unchanged, and every other input runs the convolution itself."""
    reduced = []
    for name, conv in net.named_modules():
        if type(conv) is not nn.Conv2d or conv.groups != 1 or conv.padding_mode != "zeros":
            continue
        if isinstance(conv.padding, str) or conv.dilation != (1, 1):
            continue
        sizes = zip(conv.padding, conv.kernel_size, conv.stride)
        if all(pad < kernel and 0 <= 1 + 2 * pad - kernel < stride for pad, kernel, stride in sizes):
            conv._conv_forward = functools.partial(_one_pixel_conv_forward, conv)
            reduced.append(name)
    return reduced


def _one_pixel_conv_forward(conv: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """``nn.Conv2d._conv_forward`` with a 1×1 input map as the product with the live tap."""
    if x.dim() == 4 and x.shape[-1] == 1 and x.shape[-2] == 1:
        row, column = conv.padding
        return F.linear(x.reshape(x.shape[0], -1), weight[:, :, row, column], bias).view(x.shape[0], -1, 1, 1)
    return nn.Conv2d._conv_forward(conv, x, weight, bias)


def _first(net: nn.Module, kind) -> tuple[nn.Module, str, nn.Module] | None:
    """(parent, attribute, module) of the first module of type ``kind`` in module order."""
    for parent in net.modules():
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
        in_channels,
        conv.out_channels,
        kernel,
        stride=stride,
        padding=padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
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


def layer_names(name: str, stem: str = "plain", num_classes: int = 10, in_channels: int = 3) -> list[str]:
    """The filterable layers of architecture ``name`` without allocating its weights."""
    return list(describe(name, stem, num_classes, in_channels).layers)


@functools.lru_cache(maxsize=64)
def meta_model(name: str, stem: str = "plain", num_classes: int = 10, in_channels: int = 3) -> Classifier:
    """Architecture ``name`` on the meta device: its structure without its weights (cached:
    the workflow asks for the layers of each model many times while it plans)."""
    try:
        with torch.device("meta"):
            return build_model(
                name, num_classes, in_channels, None, [0.5] * in_channels, [0.25] * in_channels, stem=stem, init="given"
            )
    except ArchitectureError:
        raise
    except Exception as exc:  # a user's factory that cannot be called this way
        raise unbuildable(name, num_classes, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc


# Blocks (METHOD §12): module classes, by the module that defines them, found by `blocks: auto`
BLOCK_TYPES = {
    "torchvision.models.resnet": ("BasicBlock", "Bottleneck"),
    "torchvision.models.shufflenetv2": ("InvertedResidual",),
    "torchvision.models.mobilenetv2": ("InvertedResidual",),
    "torchvision.models.mobilenetv3": ("InvertedResidual",),
    "torchvision.models.efficientnet": ("MBConv", "FusedMBConv"),
    "torchvision.models.squeezenet": ("Fire",),
    "timm.models.resnet": ("BasicBlock", "Bottleneck"),
    "timm.models._efficientnet_blocks": ("InvertedResidual", "DepthwiseSeparableConv", "EdgeResidual"),
    "timm.models.byobnet": ("BasicBlock", "BottleneckBlock", "DarkBlock", "EdgeBlock", "RepVggBlock"),
    "timm.models.convnext": ("ConvNeXtBlock",),
}
UNIT_KINDS = ("layer", "block", "global")


def is_block(module: nn.Module) -> bool:
    """Whether ``module`` is of a block class :data:`BLOCK_TYPES` names."""
    return type(module).__name__ in BLOCK_TYPES.get(type(module).__module__, ())


def list_blocks(model: nn.Module) -> list[str]:
    """Qualified names of the outermost blocks (:func:`is_block`), in module order."""
    found: list[str] = []
    for name, module in backbone(model).named_modules():
        if is_block(module) and not any(name.startswith(outer + ".") for outer in found):
            found.append(name)
    return found


def block_names(name: str, stem: str = "plain", num_classes: int = 10, in_channels: int = 3) -> list[str]:
    """The blocks of architecture ``name`` (``blocks: auto``) without allocating its weights."""
    return list(describe(name, stem, num_classes, in_channels).blocks)


def check_blocks(architecture: str, blocks: list[str], stem: str, num_classes: int, input_shape: tuple[int, int, int]) -> None:
    """:class:`ArchitectureError` (one line) for the first of ``blocks`` that is not a module of
    ``architecture``, is a layer itself, holds no Conv2d/Linear, or does not map one 4-D tensor
    to one 4-D tensor on images of ``input_shape`` (a forward pass on the meta device)."""
    block_io_shapes(architecture, blocks, stem, num_classes, input_shape)


def block_io_shapes(
    architecture: str, blocks: list[str], stem: str, num_classes: int, input_shape: tuple[int, int, int]
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each block's (C, H, W) in and out on images of ``input_shape`` (a forward pass on the
    meta device), checked as :func:`check_blocks` says."""
    describe(architecture, stem, num_classes, input_shape[0]).check_blocks(blocks, architecture)
    net = backbone(meta_model(architecture, stem, num_classes, input_shape[0]))
    seen: dict[str, tuple] = {}
    hooks = [net.get_submodule(block).register_forward_hook(_recorder(seen, block)) for block in blocks]
    try:
        with torch.no_grad():
            net(torch.empty(2, *input_shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return {block: block_io(block, architecture, *seen.get(block, ((), None))) for block in blocks}


def block_io(block: str, architecture: str, args: tuple, out) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (C, H, W) in and out of ``block`` from what a forward hook saw it receive (``args``)
    and return; an :class:`ArchitectureError` unless it maps one 4-D tensor to one (METHOD §12)."""
    if not (len(args) == 1 and _is_4d(args[0]) and _is_4d(out)):
        raise ArchitectureError(
            f"block {block!r} of {architecture} does not map one 4-D tensor to one 4-D tensor "
            f"(inputs {_shapes(args)}, output {_shapes(out)}); a block must (METHOD §12)"
        )
    return tuple(args[0].shape[1:]), tuple(out.shape[1:])


def _recorder(seen: dict, block: str):
    """A forward hook keeping the first inputs and output of ``block`` (and changing nothing)."""

    def hook(_module, args, out):
        seen.setdefault(block, (args, out))

    return hook


def _is_4d(value) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 4


def _shapes(value) -> str:
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shapes(v) for v in value) + ")"
    return type(value).__name__


def filtered_layers(model: nn.Module, unit: str) -> list[str]:
    """The layers a filter acts on: ``unit`` itself (a layer), every layer inside it (a
    block), or every one (``__global__``)."""
    known = list_layers(model)
    if unit == GLOBAL_LAYER or unit in known:
        return known if unit == GLOBAL_LAYER else [unit]
    inside = [layer for layer in known if layer.startswith(unit + ".")]
    if not inside:
        raise KeyError(f"unit {unit!r} is not a Conv2d/Linear layer or a block of this model; layers: {', '.join(sorted(known))}")
    return inside


def unit_kind(model: nn.Module, unit: str) -> str:
    """``global``, ``layer`` or ``block`` (:data:`UNIT_KINDS`)."""
    if unit == GLOBAL_LAYER:
        return "global"
    return "layer" if unit in list_layers(model) else "block"


def layer_weights(model: nn.Module, layer: str) -> list[nn.Parameter]:
    """The weight tensors a filter acts on: one layer's, a block's, or all of them for ``__global__``."""
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


def layer_roles(name: str, stem: str = "plain", num_classes: int = 10, in_channels: int = 3) -> dict:
    """What the paper's claims single out in architecture ``name`` (:meth:`Structure.roles`)."""
    return describe(name, stem, num_classes, in_channels).roles()


@functools.lru_cache(maxsize=64)
def describe(name: str, stem: str = "plain", num_classes: int = 10, in_channels: int = 3) -> Structure:
    """The :class:`~fragility.structure.Structure` of architecture ``name``, read off the network
    on the meta device (cached: the workflow asks for it many times while it plans)."""
    net = backbone(meta_model(name, stem, num_classes, in_channels))
    try:
        nodes = list(trace(net).graph.nodes)
    except Exception:  # untraceable user code: no BatchNorm pairs can be read off
        nodes = []
    bn_convs = []
    for node in nodes:
        if node.op != "call_module" or not isinstance(net.get_submodule(node.target), nn.Conv2d):
            continue
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_module" and isinstance(net.get_submodule(users[0].target), nn.BatchNorm2d):
            bn_convs.append(node.target)
    modules = [module_name for module_name, _ in net.named_modules() if module_name]
    convs = [(n, max(m.stride), max(m.kernel_size)) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    return Structure(tuple(modules), tuple(list_layers(net)), tuple(convs), tuple(list_blocks(net)), tuple(bn_convs))


def structure_code_digest() -> str:
    """A digest of the code a :class:`Structure` is read with (the catalogue holds the digest it
    was written with: a change here means writing it again)."""
    import hashlib
    import inspect

    parts = [inspect.getsource(f) for f in (describe, list_layers, list_blocks, is_block, build_network, _adapt_first_conv)]
    parts += [inspect.getsource(f) for f in (_remove_first_maxpool, meta_model, build_model, trace)]
    parts += [repr(sorted(BLOCK_TYPES.items())), repr([kind.__name__ for kind in FILTERABLE]), repr(STEMS)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def write_catalogue(path=None) -> None:
    """Write :data:`fragility.structure.CATALOGUE_PATH`: the structure of every torchvision
    classification architecture (or why it cannot be built), for planning where torch is not
    installed."""
    import gzip
    import json

    from .structure import CATALOGUE_PATH

    stems, errors = {stem: {} for stem in STEMS}, {}
    for name in available_models():
        try:
            for stem in STEMS:
                stems[stem][name] = describe(name, stem).as_json()
        except ArchitectureError as exc:  # what planning it with torch would say, said without torch too
            errors[name] = str(exc).split(" (", 1)[1].removesuffix(")")
    version = torchvision.__version__.split("+")[0]
    document = {"torchvision": version, "code": structure_code_digest(), "stems": stems, "errors": errors}
    text = json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n"
    (path or CATALOGUE_PATH).write_bytes(gzip.compress(text.encode(), mtime=0))  # mtime 0: the same bytes each time


def trace(net: nn.Module):
    """``net`` as a torch.fx GraphModule in which every Conv2d and Linear, also subclasses a
    library defines (timm's ``Linear``), is one ``call_module`` node the graph can be cut before."""
    import torch.fx as fx

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
            return isinstance(module, FILTERABLE) or super().is_leaf_module(module, qualified_name)

    tracer = _Tracer()
    graph = tracer.trace(net)
    return fx.GraphModule(tracer.root, graph, type(net).__name__)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fragility.models", description=write_catalogue.__doc__)
    parser.add_argument("--catalogue", action="store_true", required=True, help="write fragility/architectures.json.gz")
    parser.parse_args()
    write_catalogue()
