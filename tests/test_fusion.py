import torch
import torch.fx as fx
from torch import nn

from fragility.engine.fusion import FusedSuffix, to_channels_last


def conv_bn() -> nn.Sequential:
    """A 1×1 conv of weight 2 (no bias) and a BatchNorm with mean 1, var 4 − eps, γ 3, β 0.5:
    folded, weight 2·3/2 = 3 and bias (0 − 1)·3/2 + 0.5 = −1."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(1, 2))
    model[0].weight.data.fill_(2.0)
    model[1].running_mean.fill_(1.0)
    model[1].running_var.fill_(4.0 - model[1].eps)
    model[1].weight.data.fill_(3.0)
    model[1].bias.data.fill_(0.5)
    model[3].weight.data = torch.tensor([[1.0], [-1.0]])
    model[3].bias.data.zero_()
    return model.eval()


def test_batchnorm_is_folded_by_hand():
    model = conv_bn()
    fused = FusedSuffix(fx.symbolic_trace(model), ["0", "3"])
    folded = fused.module.get_submodule("0")
    assert folded.weight.item() == 3.0 and folded.bias.item() == -1.0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.module.modules())
    x = torch.tensor([2.0, -1.0]).view(2, 1, 1, 1)  # 3·2 − 1 = 5, 3·(−1) − 1 = −4
    assert torch.equal(fused(*to_channels_last((x,))), torch.tensor([[5.0, -5.0], [-4.0, 4.0]]))
    assert torch.equal(fused(x), model(x))


def test_refresh_reads_masked_weights_of_the_original():
    model = conv_bn()
    fused = FusedSuffix(fx.symbolic_trace(model), ["0", "3"])
    model[0].weight.data.zero_()
    model[3].weight.data[0] = 7.0
    fused.refresh()
    assert fused.module.get_submodule("0").weight.item() == 0.0
    assert fused.module.get_submodule("0").bias.item() == -1.0
    assert fused.module.get_submodule("3").weight[0].item() == 7.0
    x = torch.ones(1, 1, 1, 1)
    assert torch.equal(fused(x), model(x))


def test_the_original_is_left_untouched_and_shared_modules_are_not_folded():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)

        def forward(self, x):
            return self.bn(self.conv(x)) + self.conv(x)

    model = Twice().eval()
    traced = fx.symbolic_trace(model)
    fused = FusedSuffix(traced, ["conv"])
    assert any(isinstance(m, nn.BatchNorm2d) for m in fused.module.modules())
    assert fused.module.get_submodule("conv") is not model.conv  # a copy: masks reach it by refresh only
    x = torch.rand(3, 2, 4, 4)
    torch.testing.assert_close(fused(*to_channels_last((x,))), model(x))
