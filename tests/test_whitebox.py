"""The white-box reading (fragility.engine.whitebox): every variant attacked itself; the
cached-prefix path gives the naive path's adversarial images and accuracies exactly."""

import pytest
import torch

from fragility import GLOBAL_LAYER
from fragility.attack import Attack, fgsm
from fragility.config import sweep_units
from fragility.engine.sweep import UNFILTERED, MaskedLayer, SweepOptions, check_options, variant_batch_for
from fragility.engine.whitebox import adversarial_images, attack_removals
from fragility.evaluation import predict
from fragility.models import build_model
from fragility.stress import validate as validate_config
from fragility.stress.synaptic import plan_variants, whitebox_epochs, whitebox_layers

STEPS, EPSILON = 3, 0.1


@pytest.fixture(scope="module")
def resnet():
    """ResNet-18 (BatchNorm, residual branches) with random weights on 1×8×8 images, labels
    it gets right so that the attack has something to flip."""
    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval()
    x = torch.rand(24, 1, 8, 8)
    return model, x, predict(model, x).clone()


def _images(model, layer, x, y, method, attack=None, variant_batch=1):
    masked = MaskedLayer(model, layer, STEPS)
    _, removals = plan_variants(masked.values, STEPS)
    stats, images = {}, {}
    options = SweepOptions(steps=STEPS, batch_size=10, method=method, variant_batch=variant_batch)
    for key, start, x_adv in adversarial_images(
        model, layer, x, y, removals, EPSILON, attack or Attack("fgsm"), options, masked, stats
    ):
        images.setdefault(key, torch.empty_like(x))[start : start + len(x_adv)] = x_adv
    return images, stats["whitebox_path"]


@pytest.mark.parametrize("layer", ["conv1", "layer2.0.conv1", "layer3.1.conv2", "fc", GLOBAL_LAYER])
def test_the_cached_path_makes_the_naive_paths_images(resnet, layer):
    model, x, y = resnet
    before = {k: v.clone() for k, v in model.state_dict().items()}
    naive, naive_path = _images(model, layer, x, y, "naive")
    cached, cached_path = _images(model, layer, x, y, "exact")
    assert (naive_path, cached_path) == ("naive", "cached")
    assert naive.keys() == cached.keys() and len(naive) > 2
    for key in naive:
        assert torch.equal(naive[key], cached[key]), key
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("layer", ["conv1", "layer2.0.downsample.0", "fc", GLOBAL_LAYER])
def test_variants_batched_in_one_call_make_the_same_images(resnet, layer):
    """Stacked weights mapped over (torch.func) and one batched backward through the kept
    prefix graph: the images of attacking each variant alone (this net has no gradient
    component close enough to 0 for the other summation order to flip its sign)."""
    model, x, y = resnet
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one, _ = _images(model, layer, x, y, "exact")
    batched, path = _images(model, layer, x, y, "exact", variant_batch=3)  # 3 does not divide the variants: a short group
    assert path == "batched"
    assert one.keys() == batched.keys()
    for key in one:
        assert torch.equal(one[key], batched[key]), key
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_variant_batch_auto_batches_on_a_gpu_only():
    assert variant_batch_for("auto", torch.device("cpu")) == 1
    assert variant_batch_for("auto", torch.device("cuda")) > 1
    assert variant_batch_for(4, torch.device("cpu")) == 4
    with pytest.raises(ValueError, match="variant_batch"):
        check_options(build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval(), SweepOptions(variant_batch=0))


def test_a_variant_row_is_the_attack_on_that_variant_counted_by_hand(resnet):
    model, x, y = resnet
    masked = MaskedLayer(model, "layer2.0.conv1", STEPS)
    _, removals = plan_variants(masked.values, STEPS)
    correct = attack_removals(model, "layer2.0.conv1", x, y, removals, EPSILON, Attack("fgsm"), SweepOptions(steps=STEPS))
    for key in (UNFILTERED, list(removals)[1]):
        masked.apply(removals.get(key))
        by_hand = predict(model, fgsm(model, x, y, EPSILON)) == y
        masked.restore()
        assert (correct[key] == by_hand.numpy()).all()
    assert not all((correct[k] == correct[UNFILTERED]).all() for k in correct)  # the variants do differ


def test_a_multi_step_attack_runs_naive(resnet):
    model, x, y = resnet
    attack = Attack("pgd", options={"steps": 2, "random_start": False})
    _, path = _images(model, "fc", x[:6], y[:6], "exact", attack)
    assert path == "naive"


def test_the_whitebox_reading_defaults_to_the_two_ends_at_each_runs_last_checkpoint():
    config = validate_config({})
    assert whitebox_layers(config, "resnet18") == ["conv1", "fc"] and whitebox_epochs(config, "resnet18") == [4]
    stages = validate_config({"whitebox": {"layers": {"default": "stages"}, "checkpoints": "all"}})
    assert whitebox_layers(stages, "resnet18") == [
        "conv1",
        "layer2.0.conv1",
        "layer3.0.conv1",
        "layer4.0.conv1",
        "fc",
        "__global__",
    ] and whitebox_epochs(stages, "resnet18") == [2, 4]
    regenerate = validate_config({"attack": {"regenerate": True}})
    assert whitebox_layers(regenerate, "resnet18") == sweep_units(regenerate, "resnet18") and whitebox_epochs(
        regenerate, "resnet18"
    ) == [2, 4]
