"""The structure planning reads (fragility.structure): the catalogue equals what torchvision
builds, the derived names match hand-worked cases, and a plan made without torch is the plan
made with it."""

import pytest
import torchvision

import fragility.config
import fragility.stress.triage
from fragility.config import ConfigError, model_roles, sweep_units
from fragility.models import available_models, describe, structure_code_digest
from fragility.stress import validate
from fragility.stress.kernels import kernel_layers
from fragility.stress.synaptic import whitebox_layers
from fragility.structure import ArchitectureError, Structure, catalogue, catalogued, catalogued_architectures, unbuildable

SAMPLE = ["resnet18", "resnet50", "squeezenet1_1", "vgg16", "mobilenet_v3_small", "efficientnet_b0", "vit_b_16"]


@pytest.mark.parametrize("stem", ["plain", "cifar"])
@pytest.mark.parametrize("architecture", SAMPLE)
def test_the_catalogue_holds_what_torchvision_builds(architecture, stem):
    assert catalogued(architecture, stem) == describe(architecture, stem)
    assert catalogued(architecture, stem) == describe(architecture, stem, 200, 1)  # names do not depend on classes or channels


def test_the_catalogue_lists_every_torchvision_classifier_at_the_installed_version_and_code():
    """Written by the code that reads structures now (a change to it, to the block types or the
    stems means `python -m fragility.models --catalogue`), at the installed torchvision."""
    assert catalogue()["code"] == structure_code_digest()
    assert catalogue()["torchvision"] == torchvision.__version__.split("+")[0]
    assert catalogued_architectures() == available_models()


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["plain", "cifar"])
def test_the_catalogue_holds_every_architecture_as_torchvision_builds_it(stem):
    for architecture in catalogued_architectures():
        try:
            built = describe(architecture, stem)
        except ArchitectureError as exc:
            with pytest.raises(ArchitectureError, match="cannot be built"):
                catalogued(architecture, stem)
            assert str(exc) == str(unbuildable(architecture, 10, catalogue()["errors"][architecture]))
            continue
        assert catalogued(architecture, stem) == built, architecture


# A hand-made network: stem conv (stride 2), a block of two convs (the second strided, 3×3)
# with a 1×1 strided shortcut, a classifier.
HAND = Structure(
    modules=("conv1", "bn1", "block", "block.conv_a", "block.conv_b", "block.short", "pool", "fc"),
    layers=("conv1", "block.conv_a", "block.conv_b", "block.short", "fc"),
    convs=(("conv1", 2, 7), ("block.conv_a", 1, 3), ("block.conv_b", 2, 3), ("block.short", 2, 1)),
    blocks=("block",),
    bn_convs=("conv1", "block.conv_a"),
)


def test_stages_roles_and_first_conv_by_hand():
    assert HAND.first_conv == "conv1"
    assert HAND.stage_layers() == ["conv1", "block.conv_b", "fc"]  # the 1×1 shortcut is no stage
    assert HAND.roles() == {
        "first_conv": "conv1",
        "last_layer": "fc",
        "bn_convs": ["block.conv_a"],  # the first conv has a role of its own
        "layers": list(HAND.layers),
    }
    assert Structure.from_json(HAND.as_json()) == HAND


@pytest.mark.parametrize(
    "blocks, message",
    [
        (["block", "head"], "block 'head' is not a module of hand; e.g. block"),
        (["block.conv_a"], "block 'block.conv_a' of hand is a layer, not a block"),
        (["pool"], "block 'pool' of hand holds no Conv2d/Linear layer"),
    ],
)
def test_a_block_that_cannot_be_one_is_named(blocks, message):
    HAND.check_blocks(["block"], "hand")
    with pytest.raises(ArchitectureError, match=message):
        HAND.check_blocks(blocks, "hand")


@pytest.fixture
def without_torch(monkeypatch):
    """Planning as where torch is not installed: the catalogue instead of the network."""
    for module in (fragility.config, fragility.stress.triage):
        monkeypatch.setattr(module, "torch_installed", lambda: False)


def plan(config):
    return {
        model: (
            sweep_units(config, model),
            whitebox_layers(config, model),
            kernel_layers(config, model),
            model_roles(config, model),
        )
        for model in config["models"]
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "models": ["resnet18", "squeezenet1_1", "resnet34"],
            "stem": {"default": "plain", "squeezenet1_1": "cifar"},
            "whitebox": {"layers": {"default": "stages", "resnet34": "ends"}},
            "blocks": {"default": "auto", "resnet34": ["layer2.0", "layer1.1"]},  # planned in module order
        },
    ],
)
def test_a_plan_made_without_torch_is_the_plan_made_with_it(overrides, monkeypatch):
    with_torch = validate(overrides)
    expected = plan(with_torch)
    for module in (fragility.config, fragility.stress.triage):
        monkeypatch.setattr(module, "torch_installed", lambda: False)
    without = validate(overrides)
    assert without == with_torch and plan(without) == expected
    if "resnet34" in expected:
        assert expected["resnet34"][0][-2:] == ["layer1.1", "layer2.0"]


@pytest.mark.parametrize(
    "models, message",
    [
        (["resnet9"], "config key 'models.0': unknown model 'resnet9': not a torchvision classification model"),
        (["timm/resnet10t"], "planning a timm model reads its layers off the network, which needs torch where Snakemake runs"),
        (["regnet_x_400mf"], "model 'regnet_x_400mf' cannot be built with num_classes=10"),
    ],
)
def test_without_torch_a_model_the_catalogue_cannot_plan_is_one_line(models, message, without_torch):
    with pytest.raises(ConfigError, match=message) as raised:
        validate({"models": models})
    assert "\n" not in str(raised.value)


def test_without_torch_a_listed_block_is_checked_by_name(without_torch):
    with pytest.raises(ConfigError, match=r"config key 'blocks.default': block 'layer9' is not a module of resnet18"):
        validate({"blocks": {"default": ["layer1.0", "layer9"]}})
