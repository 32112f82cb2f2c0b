"""The fast sweep (upstream caching + deduplication) gives the naive sweep's accuracies on
every filterable layer of the paper's architectures."""

import pytest
import torch

from fragility.models import build_model, list_layers


@pytest.mark.parametrize("name, stem", [("resnet18", "plain"), ("squeezenet1_1", "cifar"), ("shufflenet_v2_x1_0", "plain")])
def test_fast_sweep_equals_naive_on_every_layer(name, stem):
    from fragility.sweep import sweep

    torch.manual_seed(0)
    model = build_model(name, 10, 3, None, [0.5] * 3, [0.25] * 3, stem=stem).eval()
    x = torch.rand(16, 3, 16, 16)
    with torch.inference_mode():
        y = model(x).argmax(1)
    x_adv = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    differing = []
    for layer in list_layers(model) + ["__global__"]:
        naive = sweep(model, layer, x, y, x_adv, steps=3, batch_size=8, method="naive")
        fast = sweep(model, layer, x, y, x_adv, steps=3, batch_size=8, method="fast", cache_budget_mb=0.05)
        if not naive.equals(fast):
            differing.append(layer)
    assert differing == [], f"{len(differing)} layers differ: {differing}"
