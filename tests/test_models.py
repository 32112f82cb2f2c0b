import pytest
import torch
from torch import nn

from fragility.models import (
    ArchitectureError,
    Classifier,
    build_model,
    build_network,
    check_architecture,
    check_outputs,
    layer_names,
    layer_roles,
    layer_weights,
    list_layers,
    model_slug,
    trace,
)

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


# --- timm models and the user's own factories ---------------------------------------------


def test_timm_cnn_builds_with_classes_and_channels_and_lists_its_layers():
    model = build_model("timm/resnet10t", 5, 1, None, [0.5], [0.25]).eval()
    with torch.inference_mode():
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 5)
    layers = list_layers(model)
    assert layers[:3] == ["conv1.0", "conv1.3", "conv1.6"] and layers[-1] == "fc" and len(layers) == 15
    assert layer_names("timm/resnet10t") == layers
    assert model_slug("timm/resnet10t") == "timm_resnet10t" and model_slug("resnet18") == "resnet18"


def test_vision_transformer_layers_are_its_linear_projections():
    import timm

    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32, patch_size=4)
    model = Classifier(net, [0.5] * 3, [0.25] * 3, None).eval()
    with torch.inference_mode():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    layers = list_layers(model)
    assert layers[0] == "patch_embed.proj" and layers[-1] == "head" and len(layers) == 2 + 12 * 4
    assert {"blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2"} <= set(layers)


def test_trace_keeps_library_linear_subclasses_as_one_call():
    """timm's classifier is a subclass of nn.Linear defined outside torch.nn: the default
    tracer would trace into it, leaving no node to cut the graph before."""
    net = build_network("timm/mobilenetv3_small_050", 10, 3)
    called = {n.target for n in trace(net).graph.nodes if n.op == "call_module"}
    assert type(net.classifier) is not nn.Linear and "classifier" in called


def test_factory_models_are_built_as_the_user_wrote_them():
    net = build_network("factories:small_cnn", 4, 3)  # channels are the factory's business
    assert net[0].in_channels == 1 and net[-1].out_features == 4
    assert layer_roles("factories:small_cnn") == {
        "first_conv": "0",
        "last_layer": "8",
        "bn_convs": ["3"],
        "layers": ["0", "3", "8"],
    }


@pytest.mark.parametrize(
    "architecture, message",
    [
        ("nowhere.models:net", "model factory 'nowhere.models:net' does not import \\(ModuleNotFoundError"),
        ("factories:missing", "model factory 'factories:missing' does not import \\(AttributeError"),
        ("timm/no_such_net", "unknown timm model 'no_such_net'"),
        ("resnet19", "unknown model 'resnet19'"),
    ],
)
def test_architecture_errors_are_one_line(architecture, message):
    with pytest.raises(ArchitectureError, match=message):
        check_architecture(architecture)


def test_output_check_catches_wrong_class_counts_and_image_sizes():
    check_outputs("factories:small_cnn", 3, (1, 8, 8))
    with pytest.raises(ArchitectureError, match="gives outputs of shape \\(2, 7\\).*3 classes"):
        check_outputs("factories:fixed_outputs", 3, (1, 8, 8))
    with pytest.raises(ArchitectureError, match="does not take the dataset's images of shape \\(3, 28, 28\\)"):
        check_outputs("factories:small_cnn", 3, (3, 28, 28))
