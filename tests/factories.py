"""Model factories as a user's own code provides them (``factories:small_cnn`` in a config)."""

import torch
from torch import nn


def small_cnn(num_classes: int, in_channels: int = 1) -> nn.Module:
    """Two conv–BatchNorm–ReLU blocks and a linear classifier: the smallest CNN with the parts the method looks at."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def fixed_outputs(num_classes: int) -> nn.Module:
    """A factory that ignores ``num_classes`` (always 7 logits): the workflow must refuse it."""
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(7))


class DataDependent(nn.Module):
    """A network torch.fx cannot trace: its control flow depends on the input's values."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if x.mean() > 0:  # data-dependent: no symbolic trace
            x = x.relu()
        return self.fc(x.mean(dim=(2, 3)))


class TiedEncoder(nn.Module):
    """A network whose first layer's weight is also read later, by ``F.linear`` on a tied
    tensor: a cache before the later use would hold activations of unmasked weights."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.embed = nn.Linear(num_classes, num_classes, bias=False)
        self.head = nn.Linear(num_classes, num_classes, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x.flatten(1)[:, : self.embed.in_features]).relu())
