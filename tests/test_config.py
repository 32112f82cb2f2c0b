import pytest

from fragility.attack import Attack
from fragility.config import ConfigError, attack_settings, sweep_layers, validate_config


def test_defaults_fill_every_key():
    config = validate_config({})
    assert config["sweep"]["steps"] == 25 and config["epsilon"]["scope"] == "run" and config["sweep"]["layers"] == {"default": "all"}
    assert sweep_layers(config, "resnet18")[0] == "conv1" and sweep_layers(config, "resnet18")[-1] == "__global__"


@pytest.mark.parametrize("override, message", [
    ({"datasets": ["svhn"]}, "config key 'datasets.0': 'svhn' is not one of"),
    ({"models": ["resnet19"]}, "config key 'models': 'resnet19' is invalid; allowed: torchvision"),
    ({"models": []}, "config key 'models': [] should be non-empty"),
    ({"seeds": []}, "config key 'seeds': [] should be non-empty"),
    ({"seeds": "0"}, "config key 'seeds': 0 is not of type 'array'"),
    ({"sweep": {"steps": "0"}}, "config key 'sweep.steps': 0 is less than the minimum of 1"),  # --config passes nested values as strings
    ({"sweep": {"layers_per_job": "some"}}, "config key 'sweep.layers_per_job': 'some' is invalid"),
    ({"sweep": {"filters": ["h4"]}}, "config key 'sweep.filters.0': 'h4' is not one of ['h1', 'h2', 'h3']"),
    ({"sweep": {"steps": 0}}, "config key 'sweep.steps': 0 is less than the minimum of 1"),
    ({"sweep": {"steps": 2.5}}, "config key 'sweep.steps': 2.5 is not of type 'integer'"),
    ({"sweep": {"method": "quick"}}, "config key 'sweep.method': 'quick' is not one of ['fast', 'exact', 'naive']"),
    ({"sweep": {"margin_guard": -1e-3}}, "config key 'sweep.margin_guard': -0.001 is less than the minimum of 0"),
    ({"scores": {"tau": -0.1}}, "config key 'scores.tau': -0.1 is less than the minimum of 0"),
    ({"epsilon": {"target": 1.0}}, "config key 'epsilon.target': 1.0 is greater than or equal to the maximum of 1"),
    ({"epsilon": {"target": 0}}, "config key 'epsilon.target': 0 is less than or equal to the minimum of 0"),
    ({"epsilon": {"min": -0.01}}, "config key 'epsilon.min': -0.01 is less than or equal to the minimum of 0"),
    ({"epsilon": {"min": 0.5, "max": 0.1}}, "config key 'epsilon.min': 0.5 is invalid; must be < epsilon.max (0.1)"),
    ({"train": {"epochs": 2, "checkpoint_every": 3}}, "config key 'train.checkpoint_every': 3 is invalid; must be <= train.epochs (2)"),
    ({"train": {"epoch": 3}}, "config key 'train.epoch': unknown key; allowed keys here: epochs"),
    ({"colour": "red"}, "config key 'colour': unknown key"),
    ({"datasets": ["cifar10"]}, "config key 'data_dir': None is invalid; datasets ['cifar10'] need a data_dir"),
    ({"datasets": ["mnist"], "data_dir": "/no/such/folder"}, "config key 'data_dir': '/no/such/folder' is invalid; the folder does not exist"),
    ({"sweep": {"layers": {"default": ["conv9"]}}}, "config key 'sweep.layers.default': 'conv9' is invalid; not a Conv2d/Linear layer of resnet18"),
    ({"sweep": {"layers": {"default": "some"}}}, "config key 'sweep.layers.default': 'some' is invalid; allowed: `all`, or a list"),
    ({"stem": {"default": "tiny"}}, "config key 'stem.default': 'tiny' is not one of ['plain', 'cifar']"),
    ({"stem": {"default": "plain", "resnet99": "cifar"}}, "config key 'stem.resnet99': 'resnet99' is invalid; per-model keys"),
    ({"device": "tpu"}, "config key 'device': 'tpu' is not one of ['auto', 'cpu', 'cuda']"),
    ({"attack": {"method": "cw"}}, "config key 'attack.method': 'cw' is not one of ['fgsm', 'pgd']"),
    ({"attack": {"pgd": {"steps": 0}}}, "config key 'attack.pgd.steps': 0 is less than the minimum of 1"),
    ({"attack": {"pgd": {"step_size": 0}}}, "config key 'attack.pgd.step_size': 0 is less than or equal to the minimum of 0"),
    ({"figures": {"response_epoch": 3}}, "config key 'figures.response_epoch': 3 is invalid; must be a checkpoint epoch: [2, 4]"),
])
def test_invalid_config_is_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError) as caught:
        validate_config({"models": ["resnet18"], **override})
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text


def test_attack_settings_build_the_configured_attack():
    assert Attack(**attack_settings(validate_config({}))) == Attack("fgsm", True, {})
    pgd = Attack(**attack_settings(validate_config({"attack": {"method": "pgd", "clamp": False, "pgd": {"steps": 4}}})))
    assert pgd.method == "pgd" and not pgd.clamp and pgd.options == {"steps": 4, "step_size": None, "random_start": True, "seed": 0}
