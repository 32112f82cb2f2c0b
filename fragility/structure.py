"""What the workflow plans from a network's structure, without torch: its filterable layers,
convolutions, blocks and roles as plain names (:class:`Structure`).

Snakemake plans a run — which units each stress job gets — before any rule's environment
exists, so planning must not need torch. Where torch is installed the structure is read off
the network itself (:func:`fragility.models.describe`); where it is not, the torchvision
architectures come from :data:`CATALOGUE_PATH`, written by
``python -m fragility.models --catalogue`` and checked against torchvision by the tests.
timm models and a user's factories need torch while the run is planned.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

TIMM_PREFIX = "timm/"
CATALOGUE_PATH = Path(__file__).with_name("architectures.json.gz")


class ArchitectureError(ValueError):
    """An architecture name that names no model, or a factory that does not import."""


def architecture_kind(architecture: str) -> str:
    """``torchvision``, ``timm`` or ``factory`` (``package.module:callable``)."""
    if architecture.startswith(TIMM_PREFIX):
        return "timm"
    return "factory" if ":" in architecture else "torchvision"


def unbuildable(architecture: str, num_classes: int, why: str) -> ArchitectureError:
    return ArchitectureError(f"model {architecture!r} cannot be built with num_classes={num_classes} ({why})")


def unknown_model(architecture: str) -> ArchitectureError:
    return ArchitectureError(
        f"unknown model {architecture!r}: not a torchvision classification model (e.g. resnet18, "
        "squeezenet1_1), not 'timm/<name>' and not 'package.module:factory'"
    )


def model_slug(architecture: str) -> str:
    """The name a model string has in paths, rule names and tables: ``timm/resnet10t`` ->
    ``timm_resnet10t`` (torchvision names are unchanged)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", architecture)


@functools.cache
def torch_installed() -> bool:
    """Whether torch and torchvision can be imported here (without importing them). Asked once:
    planning asks it for every model at every input function, and each look is ~0.2 ms."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "torchvision"))


@dataclass(frozen=True)
class Structure:
    """A network's structure as names, in module order: every module, the filterable layers
    (Conv2d and Linear), the convolutions with their largest stride and kernel side, the
    outermost blocks (``blocks: auto``) and the convolutions whose output goes straight into
    a BatchNorm (none when the network does not trace)."""

    modules: tuple[str, ...]
    layers: tuple[str, ...]
    convs: tuple[tuple[str, int, int], ...]
    blocks: tuple[str, ...]
    bn_convs: tuple[str, ...]

    @classmethod
    def from_json(cls, entry: dict) -> Structure:
        return cls(
            tuple(entry["modules"]),
            tuple(entry["layers"]),
            tuple((name, stride, kernel) for name, stride, kernel in entry["convs"]),
            tuple(entry["blocks"]),
            tuple(entry["bn_convs"]),
        )

    def as_json(self) -> dict:
        return {
            "modules": list(self.modules),
            "layers": list(self.layers),
            "convs": [list(conv) for conv in self.convs],
            "blocks": list(self.blocks),
            "bn_convs": list(self.bn_convs),
        }

    @property
    def first_conv(self) -> str | None:
        return self.convs[0][0] if self.convs else None

    def stage_layers(self) -> list[str]:
        """One layer per resolution stage and the classifier: the first Conv2d, every Conv2d
        that downsamples (stride > 1) with a kernel larger than 1×1 (not the 1×1 shortcuts),
        and the last filterable layer, in module order."""
        chosen = {name for name, stride, kernel in self.convs[1:] if stride > 1 and kernel > 1}
        chosen |= {self.first_conv} if self.convs else set()
        return [layer for layer in self.layers if layer in chosen or layer == self.layers[-1]]

    def check_blocks(self, blocks: list[str], architecture: str) -> None:
        """:class:`ArchitectureError` (one line) for the first of ``blocks`` that is not a module,
        is a layer itself, or holds no Conv2d/Linear (the shapes need a forward pass:
        :func:`fragility.models.check_blocks`)."""
        modules = set(self.modules)
        for block in blocks:
            if block not in modules:
                hint = ", ".join(self.blocks[:3]) or "no block found by type"
                raise ArchitectureError(f"block {block!r} is not a module of {architecture}; e.g. {hint}")
            if block in self.layers:
                raise ArchitectureError(f"block {block!r} of {architecture} is a layer, not a block (sweep.layers lists layers)")
            if not any(layer.startswith(block + ".") for layer in self.layers):
                raise ArchitectureError(f"block {block!r} of {architecture} holds no Conv2d/Linear layer")

    def roles(self) -> dict:
        """What the paper's claims single out: the first convolution, the last filterable layer
        (the classifier: ``fc``, ``classifier.1``, ``head``…), the middle convolutions followed
        by a BatchNorm, and every filterable layer in registration order (``layers``: how
        semirobustness splits)."""
        first = self.first_conv
        return {
            "first_conv": first,
            "last_layer": self.layers[-1],
            "bn_convs": [conv for conv in self.bn_convs if conv != first],
            "layers": list(self.layers),
        }


@functools.cache
def catalogue() -> dict:
    """The catalogue file: ``{"torchvision": version, "code": digest of the code that reads a
    structure off a network, "stems": {stem: {name: structure}}, "errors": {name: why it
    cannot be built}}``."""
    return json.loads(gzip.decompress(CATALOGUE_PATH.read_bytes()))


def check_catalogued(architecture: str) -> None:
    """:class:`ArchitectureError` unless ``architecture`` is a torchvision classifier of the
    catalogue (also one that cannot be built: that is said when it is planned)."""
    if architecture in catalogued_architectures():
        return
    if architecture_kind(architecture) == "torchvision":
        raise unknown_model(architecture)
    raise ArchitectureError(
        f"model {architecture!r}: planning a {architecture_kind(architecture)} model reads its layers off the "
        "network, which needs torch where Snakemake runs (pip install torch, or run from the project's .venv)"
    )


@functools.cache
def catalogued(architecture: str, stem: str = "plain", num_classes: int = 10) -> Structure:
    """The catalogued structure of torchvision architecture ``architecture`` with ``stem`` (its
    names do not depend on the classes or the input channels); an :class:`ArchitectureError`
    saying what planning it needs otherwise."""
    check_catalogued(architecture)
    if architecture in catalogue()["errors"]:
        raise unbuildable(architecture, num_classes, catalogue()["errors"][architecture])
    return Structure.from_json(catalogue()["stems"][stem][architecture])


def catalogued_architectures() -> list[str]:
    """Every torchvision classification architecture of the catalogue, also those that cannot be built."""
    return sorted({*catalogue()["stems"]["plain"], *catalogue()["errors"]})
