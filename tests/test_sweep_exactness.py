"""The fast and exact sweeps give the naive sweep's predictions, hence its accuracies, on
every filterable layer of the paper's architectures, a timm CNN and a small timm ViT.

The naive reference is computed here as the issue defines it: mask the weights, run the
whole network. ``exact`` must match it bit for bit. ``fast`` reorders float operations
(folded BatchNorm, channels_last); without its margin guard a prediction may differ only
where the naive top-2 logit margin is below 1e-5 (the test reports how many do), and
with the guard (the default) none may differ.
"""

import warnings

import pytest
import torch

from fragility.engine.sweep import UNFILTERED, MaskedLayer, SweepOptions
from fragility.models import Classifier, build_model, list_layers
from fragility.stress.synaptic import predict_variants

STEPS, BATCH = 3, 8
TIE_MARGIN = 1e-5


def naive_logits(model, layer, x, variant):
    masked = MaskedLayer(model, layer, STEPS)
    try:
        masked.apply(variant)
        with torch.inference_mode():
            return torch.cat([model(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])
    finally:
        masked.restore()


def small_vit():
    """The issue's small vision transformer: timm's ViT-Tiny on 32×32 inputs in 4×4 patches."""
    import timm

    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32, patch_size=4)
    return Classifier(net, [0.5] * 3, [0.25] * 3, None)


@pytest.mark.parametrize(
    "name, stem, side, shrinks_to_one_pixel",
    [
        ("resnet18", "plain", 16, True),
        ("squeezenet1_1", "cifar", 16, False),
        pytest.param("shufflenet_v2_x1_0", "plain", 16, True, marks=pytest.mark.slow),
        ("timm/resnet10t", "plain", 16, True),
        pytest.param("vit", None, 32, False, marks=pytest.mark.slow),
    ],
)
def test_fast_and_exact_sweeps_predict_as_naive_on_every_layer(name, stem, side, shrinks_to_one_pixel):
    torch.manual_seed(0)
    model = small_vit() if name == "vit" else build_model(name, 10, 3, None, [0.5] * 3, [0.25] * 3, stem=stem)
    model.eval()
    x = torch.rand(8 if name == "vit" else 16, 3, side, side)  # ViT-Tiny: 51 layers, each its own graph
    options = dict(steps=STEPS, batch_size=BATCH, cache_budget_mb=0.05)  # 0.05 MiB: the cache is chunked
    # probe=False: the fused graph on every layer, whether or not it is faster here
    exact_options, fast_options = SweepOptions(method="exact", **options), SweepOptions(method="fast", probe=False, **options)
    unguarded_options = SweepOptions(method="fast", margin_guard=0.0, probe=False, **options)
    differing, near_ties, unguarded_flips = [], 0, 0
    reduced = 0
    for layer in list_layers(model) + ["__global__"]:
        variants, exact = predict_variants(model, layer, x, exact_options)
        stats = {}
        _, fast = predict_variants(model, layer, x, fast_options, stats)
        reduced += stats["reduced_convs"]
        assert stats["engine"] != "whole", f"{layer}: the upstream split fell back to the whole network"
        _, unguarded = predict_variants(model, layer, x, unguarded_options)
        representatives = {v.key: v for v in reversed(variants)} | {UNFILTERED: None}
        for key, variant in representatives.items():
            logits = naive_logits(model, layer, x, variant)
            naive = logits.argmax(1)
            top2 = logits.topk(2, dim=1).values
            margin = top2[:, 0] - top2[:, 1]
            near_ties += int((margin < TIE_MARGIN).sum())
            flipped = unguarded[key] != naive
            unguarded_flips += int(flipped.sum())
            assert (margin[flipped] < TIE_MARGIN).all(), f"{layer} {variant}: a prediction flipped at margin >= {TIE_MARGIN}"
            if not (torch.equal(exact[key], naive) and torch.equal(fast[key], naive)):
                differing.append((layer, variant))
    warnings.warn(
        f"{name}: {unguarded_flips} predictions of the unguarded fused graph differ from naive "
        f"({near_ties} images at naive margin < {TIE_MARGIN}); 0 with the margin guard",
        stacklevel=2,
    )
    assert differing == [], f"{len(differing)} variants differ: {differing[:3]}"
    assert (reduced > 0) == shrinks_to_one_pixel  # where maps reach 1×1, the reduced convolutions are exercised
