"""Blocks as units (METHOD §12): found by type, checked in one line, swept and re-initialised
like a layer over all of their Conv2d/Linear weights at once."""

import pandas as pd
import pytest
import torch
from torch import nn

from fragility import GLOBAL_LAYER
from fragility.models import (
    ArchitectureError,
    Classifier,
    block_names,
    build_model,
    check_blocks,
    filtered_layers,
    unit_kind,
)
from fragility.stress.reinit import criticality_table, reinit, rerandomise
from fragility.stress.synaptic import sweep


def test_auto_finds_the_blocks_of_each_family_by_type():
    assert block_names("resnet18") == [f"layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)]
    assert len(block_names("resnet50")) == 3 + 4 + 6 + 3
    assert block_names("squeezenet1_1") == ["features.3", "features.4", "features.6", "features.7"] + [
        f"features.{i}" for i in (9, 10, 11, 12)
    ]
    assert block_names("shufflenet_v2_x1_0")[:2] == ["stage2.0", "stage2.1"] and len(block_names("shufflenet_v2_x1_0")) == 16
    assert block_names("timm/resnet10t") == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]


def test_a_block_is_every_layer_inside_it():
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25])
    assert filtered_layers(model, "layer2.0") == ["layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0"]
    assert [unit_kind(model, u) for u in ("layer2.0", "layer2.0.conv1", GLOBAL_LAYER)] == ["block", "layer", "global"]
    with pytest.raises(KeyError, match="not a Conv2d/Linear layer or a block"):
        filtered_layers(model, "layer2.0.bn1")


@pytest.mark.parametrize(
    "architecture, block, message",
    [
        ("resnet18", "layer9.0", "block 'layer9.0' is not a module of resnet18; e.g. layer1.0, layer1.1, layer2.0"),
        ("resnet18", "layer1.0.conv1", "is a layer, not a block"),
        ("resnet18", "layer1.0.bn1", "block 'layer1.0.bn1' of resnet18 holds no Conv2d/Linear layer"),
        (
            "timm/vit_tiny_patch16_224",
            "patch_embed",
            "does not map one 4-D tensor to one 4-D tensor (inputs ((2, 3, 224, 224)), output (2, 196, 192))",
        ),
    ],
)
def test_a_block_that_is_not_one_fails_in_one_line(architecture, block, message):
    with pytest.raises(ArchitectureError) as caught:
        check_blocks(architecture, [block], "plain", 10, (3, 224, 224) if "vit" in architecture else (1, 8, 8))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    check_blocks("resnet18", ["layer1.0", "layer4.1"], "plain", 10, (1, 8, 8))


class OneLayerBlock(nn.Module):
    """A stem, a block holding one convolution, a head: the block's sweep is the layer's."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 10))

    def forward(self, x):
        return self.head(self.block(torch.relu(self.stem(x))))


def test_block_filtering_of_a_one_layer_block_equals_that_layers_sweep():
    torch.manual_seed(0)
    model = Classifier(OneLayerBlock(), [0.5], [0.25], None).eval()
    x = torch.rand(40, 1, 8, 8)
    y = model(x).argmax(1)
    x_adv = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    block = sweep(model, "block", x, y, x_adv, steps=5)
    layer = sweep(model, "block.0", x, y, x_adv, steps=5)
    assert (block["unit_kind"] == "block").all() and (layer["unit_kind"] == "layer").all()
    same = [c for c in block.columns if c not in ("layer", "unit_kind")]
    pd.testing.assert_frame_equal(block[same], layer[same])
    assert block["acc_clean"].nunique() > 1  # the filters do move accuracy


def test_a_blocks_reinit_and_rerandomisation_set_every_layer_inside_it_at_once():
    torch.manual_seed(1)
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    initial = build_model("resnet18", 10, 1, None, [0.5], [0.25]).state_dict()
    net = model.net
    with reinit(model, "layer1.0", initial):
        for layer in ("layer1.0.conv1", "layer1.0.conv2"):
            assert torch.equal(net.get_submodule(layer).weight, initial[f"net.{layer}.weight"])
        assert torch.equal(net.layer1[1].conv1.weight, before["net.layer1.1.conv1.weight"])  # the next block untouched
    with rerandomise(model, "layer1.0", "kaiming_uniform", 0):
        block_draw = net.layer1[0].conv2.weight.clone()
    with rerandomise(model, "layer1.0.conv2", "kaiming_uniform", 0):
        assert torch.equal(net.layer1[0].conv2.weight, block_draw)  # a block's layers get the draws they get alone
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.rand(16, 1, 8, 8)
    table = criticality_table(model, ["layer1.0", "fc"], x, model(x).argmax(1), x, initial, "kaiming_uniform", 0)
    assert table["unit_kind"].tolist() == ["block", "block", "layer", "layer"]
