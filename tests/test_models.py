import pytest
import torch
from torch import nn

from fragility.models import Classifier, build_model, layer_weights, list_layers

LAYER_COUNTS = {"resnet18": 21, "resnet50": 54, "squeezenet1_1": 26, "shufflenet_v2_x1_0": 57}


@pytest.mark.parametrize("name", sorted(LAYER_COUNTS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_architectures_run_on_small_inputs(name, shape):
    channels, side, _ = shape
    # SqueezeNet's plain stem collapses inputs below ~20 px; it takes them resized or with the cifar stem.
    image_size = 32 if name == "squeezenet1_1" and side < 20 else None
    model = build_model(name, 10, channels, image_size, [0.5] * channels, [0.25] * channels).eval()
    with torch.inference_mode():
        assert model(torch.rand(2, *shape)).shape == (2, 10)
    assert len(list_layers(model)) == LAYER_COUNTS[name]


def test_layer_names_are_torchvision_names():
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25])
    layers = list_layers(model)
    assert layers[0] == "conv1" and layers[-1] == "fc" and "layer3.0.downsample.0" in layers
    assert model.net.conv1.in_channels == 1
    assert len(layer_weights(model, "__global__")) == 21


def test_cifar_stem_keeps_small_inputs_large():
    model = build_model("resnet18", 10, 3, None, [0.5] * 3, [0.25] * 3, stem="cifar")
    assert model.net.conv1.stride == (1, 1) and isinstance(model.net.maxpool, nn.Identity)


def test_normalisation_lives_inside_the_model():
    model = build_model("resnet18", 10, 1, 16, [0.5], [0.25]).eval()
    x = torch.rand(1, 1, 8, 8)
    expected = nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.equal(model.preprocess(x), (expected - 0.5) / 0.25)
    assert isinstance(model, Classifier)


def test_kaiming_uniform_init_differs_from_torchvision_default():
    torch.manual_seed(0)
    a = build_model("resnet18", 10, 1, None, [0.5], [0.25], init="kaiming_uniform")
    torch.manual_seed(0)
    b = build_model("resnet18", 10, 1, None, [0.5], [0.25], init="torchvision")
    bound = (6 / a.net.layer1[0].conv1.weight[0].numel()) ** 0.5  # gain √2 · √(3 / fan_in)
    assert a.net.layer1[0].conv1.weight.abs().max() <= bound
    assert not torch.equal(a.net.layer1[0].conv1.weight, b.net.layer1[0].conv1.weight)


def test_unknown_model_and_layer():
    with pytest.raises(ValueError, match="unknown model 'resnet19'"):
        build_model("resnet19", 10, 1, None, [0.5], [0.25])
    with pytest.raises(KeyError, match="'layer9' is not a Conv2d/Linear"):
        layer_weights(build_model("resnet18", 10, 1, None, [0.5], [0.25]), "layer9")
