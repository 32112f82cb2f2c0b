import math

import pytest
import torch
from torch import nn

from fragility.engine.sweep import SweepOptions
from fragility.evaluation import accuracy
from fragility.models import build_model
from fragility.stress.kernels import KERNEL_COLUMNS, TARGETING_COLUMNS, analyse_kernels, kernel_dropout, targeting


def tiny_conv_net():
    """h = a·x per kernel (a = [1, −1, 2], 1×1 conv on 1×1 images); logits = [h0 + h2, h1 + 0.5]."""
    model = nn.Sequential(nn.Conv2d(1, 3, 1, bias=False), nn.Flatten(), nn.Linear(3, 2))
    model[0].weight.data = torch.tensor([1.0, -1.0, 2.0]).view(3, 1, 1, 1)
    model[2].weight.data = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    model[2].bias.data = torch.tensor([0.0, 0.5])
    return model.eval()


def images(values):
    return torch.tensor(values).view(-1, 1, 1, 1)


X = images([1.0, -1.0, 0.1, 0.2, 0.15])
Y = torch.tensor([0, 1, 1, 0, 0])
X_ADV = images([0.12, -1.0, 0.3, 0.2, 0.15])


@pytest.mark.parametrize("method", ["naive", "exact", "fast"])
def test_kernel_accuracies_by_hand(method):
    model = tiny_conv_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    table = kernel_dropout(model, "0", X, Y, X_ADV, SweepOptions(method=method))
    # removing kernel 0: logits [2x, −x + .5]; kernel 1: [3x, .5]; kernel 2: [x, −x + .5]
    assert table["acc_clean"].tolist() == pytest.approx([0.8, 0.8, 0.6])
    assert table["acc_adv"].tolist() == pytest.approx([0.4, 0.4, 0.2])
    assert table["acc_clean_unfiltered"].eq(1.0).all() and table["acc_adv_unfiltered"].eq(0.6).all()
    # fragile = below the mean over kernels (clean 0.733, adversarial 0.333)
    assert table["fragile_clean"].tolist() == [False, False, True]
    assert table["fragile_adv"].tolist() == [False, False, True]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_targeting_distances_by_hand():
    model = tiny_conv_net()
    # d_k = |a_k| · mean|x_adv − x| = |a_k| · (0.88 + 0.2) / 5
    result = targeting(model, "0", X, X_ADV, [False, False, True])
    assert result["d_fragile"] == pytest.approx(2 * 0.216) and result["d_nonfragile"] == pytest.approx(0.216)
    assert result["targets_fragile"] is True
    assert not targeting(model, "0", X, X_ADV, [True, True, False])["targets_fragile"]
    empty = targeting(model, "0", X, X_ADV, [False, False, False])
    assert math.isnan(empty["d_fragile"]) and not empty["targets_fragile"]


def test_kernel_dropout_equals_masking_each_kernel_and_evaluating(small_digits):
    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval()
    x, y = small_digits.x_test[:60], small_digits.y_test[:60]
    x_adv = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    table, rows = analyse_kernels(model, "conv1", x, y, x_adv)
    assert list(table.columns) == KERNEL_COLUMNS and list(rows.columns) == TARGETING_COLUMNS and len(table) == 64
    weight = model.net.conv1.weight
    original = weight.detach().clone()
    for kernel in (0, 17, 63):
        weight.data[kernel] = 0
        assert table.loc[kernel, "acc_clean"] == accuracy(model, x, y) and table.loc[kernel, "acc_adv"] == accuracy(
            model, x_adv, y
        )
        weight.data.copy_(original)
    # the hook-based distance against a direct computation on one kernel
    direct = (model.net.conv1(model.preprocess(x_adv)) - model.net.conv1(model.preprocess(x))).abs()[:, 5].double().mean().item()
    assert table.loc[5, "distance"] == pytest.approx(direct, rel=1e-6)


def test_kernel_dropout_rejects_the_global_pseudo_layer_and_non_filterable_layers():
    with pytest.raises(ValueError, match="not on __global__"):
        kernel_dropout(tiny_conv_net(), "__global__", X, Y, X_ADV)
    with pytest.raises(ValueError, match="is a Flatten"):
        kernel_dropout(tiny_conv_net(), "1", X, Y, X_ADV)
