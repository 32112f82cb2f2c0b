from pathlib import Path

import pytest
import yaml

from fragility.attack import Attack
from fragility.config import (
    ConfigError,
    attack_settings,
    block_units,
    perturbed_layers,
    sweep_layers,
    sweep_units,
)
from fragility.stress import validate as validate_config  # the schema, the generic checks and every stress test's own


def test_defaults_fill_every_key():
    config = validate_config({})
    assert (
        config["sweep"]["steps"] == 25 and config["epsilon"]["scope"] == "run" and config["sweep"]["layers"] == {"default": "all"}
    )
    assert sweep_layers(config, "resnet18")[0] == "conv1" and sweep_layers(config, "resnet18")[-1] == "__global__"


def test_an_overlay_validates_on_its_own():
    """config/tiny.yaml alone (what `--configfile` gives a folder with no config/config.yaml):
    its per-model maps leave out `default`, which the schema fills in."""
    overlay = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "tiny.yaml").read_text())
    config = validate_config(overlay)
    assert config["blocks"] == {"default": "auto", **overlay["blocks"]}
    assert validate_config({"stem": {"squeezenet1_1": "cifar"}})["stem"] == {"default": "plain", "squeezenet1_1": "cifar"}
    assert validate_config({"stem": {"default": "cifar"}})["stem"] == {"default": "cifar"}


@pytest.mark.parametrize(
    "override, message",
    [
        ({"datasets": ["svhn"]}, "config key 'datasets.0': 'svhn' is invalid; allowed: a built-in dataset (digits,"),
        (
            {"datasets": [{"name": "mine", "folder": "x"}]},
            "config key 'datasets.0': {'name': 'mine', 'folder': 'x'} is invalid; allowed: a built-in",
        ),
        (
            {"datasets": [{"name": "my-set", "npz": "x.npz"}]},
            "config key 'datasets.0': {'name': 'my-set', 'npz': 'x.npz'} is invalid",
        ),
        ({"datasets": [{"name": "mine", "npz": "/no/such.npz"}]}, "config key 'datasets.0': /no/such.npz: npz file not found"),
        ({"datasets": [{"name": "mine", "imagefolder": "/no/such"}]}, "config key 'datasets.0': /no/such: ImageFolder not found"),
        (
            {"datasets": [{"name": "mnist", "npz": "x.npz"}]},
            "config key 'datasets.0.name': 'mnist' is invalid; is a built-in dataset's name",
        ),
        ({"models": ["resnet19"]}, "config key 'models.0': unknown model 'resnet19': not a torchvision classification model"),
        ({"models": ["timm/resnet19"]}, "config key 'models.0': unknown timm model 'resnet19'"),
        ({"models": ["nowhere:net"]}, "config key 'models.0': model factory 'nowhere:net' does not import (ModuleNotFoundError"),
        (
            {"models": [{"name": "mine", "architecture": "resnet18", "weights": "w.pt"}]},
            "config key 'models.0': 'dataset' is a required property",
        ),
        (
            {"models": [{"name": "mine", "architecture": "resnet18", "weights": "/no/w.pt", "dataset": "cifar"}]},
            "config key 'models.0.dataset': 'cifar' is invalid; must be one of the config's datasets: digits",
        ),
        (
            {"models": [{"name": "mine", "architecture": "resnet18", "weights": "/no/w.pt", "dataset": "digits"}]},
            "config key 'models.0': /no/w.pt: weights file not found",
        ),
        ({"models": []}, "config key 'models': [] should be non-empty"),
        ({"seeds": []}, "config key 'seeds': [] should be non-empty"),
        ({"seeds": "0"}, "config key 'seeds': 0 is not of type 'array'"),
        (
            {"sweep": {"steps": "0"}},
            "config key 'sweep.steps': 0 is less than the minimum of 1",
        ),  # --config passes nested values as strings
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
        (
            {"train": {"epochs": 2, "checkpoint_every": 3}},
            "config key 'train.checkpoint_every': 3 is invalid; must be <= train.epochs (2)",
        ),
        ({"train": {"epoch": 3}}, "config key 'train.epoch': unknown key; allowed keys here: epochs"),
        ({"colour": "red"}, "config key 'colour': unknown key"),
        ({"datasets": ["cifar10"]}, "config key 'data_dir': None is invalid; datasets ['cifar10'] need a data_dir"),
        (
            {"datasets": ["mnist"], "data_dir": "/no/such/folder"},
            "config key 'data_dir': '/no/such/folder' is invalid; the folder does not exist",
        ),
        (
            {"sweep": {"layers": {"default": ["conv9"]}}},
            "config key 'sweep.layers.default': 'conv9' is invalid; not a Conv2d/Linear layer of resnet18",
        ),
        (
            {"sweep": {"layers": {"default": "some"}}},
            "config key 'sweep.layers.default': 'some' is invalid; allowed: `all`, or a list",
        ),
        ({"stem": {"default": "tiny"}}, "config key 'stem.default': 'tiny' is not one of ['plain', 'cifar']"),
        (
            {"stem": {"default": "plain", "resnet99": "cifar"}},
            "config key 'stem.resnet99': 'resnet99' is invalid; per-model keys",
        ),
        ({"device": "tpu"}, "config key 'device': 'tpu' is not one of ['auto', 'cpu', 'cuda']"),
        ({"attack": {"method": "cw"}}, "config key 'attack.method': 'cw' is not one of ['fgsm', 'pgd']"),
        ({"attack": {"pgd": {"steps": 0}}}, "config key 'attack.pgd.steps': 0 is less than the minimum of 1"),
        ({"attack": {"pgd": {"step_size": 0}}}, "config key 'attack.pgd.step_size': 0 is less than or equal to the minimum of 0"),
        ({"blocks": {"default": ["layer9.0"]}}, "config key 'blocks.default': block 'layer9.0' is not a module of resnet18"),
        ({"blocks": {"default": ["layer1.0.bn1"]}}, "config key 'blocks.default': block 'layer1.0.bn1' of resnet18 holds no"),
        ({"blocks": {"default": "some"}}, "config key 'blocks.default': 'some' is invalid; allowed: `auto`, `none`, or a list"),
        ({"whitebox": {"checkpoints": "first"}}, "config key 'whitebox.checkpoints': 'first' is not one of ['last', 'all']"),
        (
            {"triage": {"schemes": ["prune"]}},
            "config key 'triage.schemes.0': 'prune' is not one of ['local', 'global', 'local_global', 'distil']",
        ),
        ({"triage": {"alpha": 1.5}}, "config key 'triage.alpha': 1.5 is greater than the maximum of 1"),
        (  # removed: the replacing convolution's stride is always ⌈H/H'⌉ (28×28: layer2.0 maps 7×7 to 4×4 at s = 2)
            {"triage": {"stride": "ceil"}},
            "config key 'triage.stride': unknown key",
        ),
        (
            {"whitebox": {"layers": {"default": ["layer9"]}}},
            "config key 'whitebox.layers.default': 'layer9' is invalid; not a swept unit of resnet18",
        ),
        (
            {"figures": {"response_epoch": 3}},
            "config key 'figures.response_epoch': 3 is invalid; must be a checkpoint epoch: [2, 4]",
        ),
    ],
)
def test_invalid_config_is_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError) as caught:
        validate_config({"models": ["resnet18"], **override})
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text


def test_attack_settings_build_the_configured_attack():
    assert Attack(**attack_settings(validate_config({}))) == Attack("fgsm", True, {})
    pgd = Attack(**attack_settings(validate_config({"attack": {"method": "pgd", "clamp": False, "pgd": {"steps": 4}}})))
    assert (
        pgd.method == "pgd" and not pgd.clamp and pgd.options == {"steps": 4, "step_size": None, "random_start": True, "seed": 0}
    )


def given_config(tmp_path, weights=None, **model):
    """A config with the tiny ImageFolder ``mine`` (train and test) and one given small CNN."""
    import torch
    from factories import small_cnn
    from formats import write_imagefolder

    write_imagefolder(tmp_path / "images", classes=("a", "b", "c"), per_class=(2, 2, 2), size=(6, 6), mode="L")
    torch.save(weights if weights is not None else small_cnn(3).state_dict(), tmp_path / "w.pt")
    entry = {"name": "cnn", "architecture": "factories:small_cnn", "weights": str(tmp_path / "w.pt"), "dataset": "mine", **model}
    return {
        "datasets": ["digits", {"name": "mine", "imagefolder": str(tmp_path / "images"), "channels": 1}],
        "models": ["resnet18", "timm/resnet10t", entry],
        "sweep": {"layers": {"default": "all", "timm/resnet10t": ["fc"]}},
    }


def test_given_and_timm_models_pair_with_their_datasets(tmp_path):
    from fragility.config import (
        dataset_info,
        dataset_source,
        given_model_spec,
        model_datasets,
        model_epochs,
        model_names,
        model_seeds,
        sweep_layers,
    )

    config = validate_config(given_config(tmp_path, mean=[0.5], std=[0.25]))
    assert model_names(config) == ["resnet18", "timm_resnet10t", "cnn"]
    assert config["sweep"]["layers"]["timm_resnet10t"] == ["fc"]  # per-model keys as written are renamed
    assert model_datasets(config, "cnn") == ["mine"] and model_datasets(config, "resnet18") == ["digits", "mine"]
    assert model_seeds(config, "cnn") == [0] and model_epochs(config, "cnn") == [0] and model_epochs(config, "resnet18") == [2, 4]
    assert dataset_info(config, "mine").num_classes == 3 and dataset_source(config, "mine")["channels"] == 1
    assert sweep_layers(config, "cnn") == ["0", "3", "8", "__global__"]
    assert given_model_spec(config, "cnn")["mean"] == [0.5] and given_model_spec(config, "cnn")["init"] == "given"


def test_given_weights_that_do_not_fit_fail_before_any_job(tmp_path):
    import torch
    from factories import small_cnn

    with pytest.raises(
        ConfigError, match="config key 'models.2': .*w.pt: the weights' classifier 8.weight has 5 outputs, but the dataset has 3"
    ):
        validate_config(given_config(tmp_path, weights=small_cnn(5).state_dict()))
    with pytest.raises(
        ConfigError, match="config key 'models.2.mean': \\[0.5, 0.5, 0.5\\] is invalid; needs one value per channel"
    ):
        validate_config(given_config(tmp_path, mean=[0.5] * 3))
    weights = small_cnn(3).state_dict()
    weights["extra"] = torch.zeros(1)
    with pytest.raises(ConfigError, match="unexpected key 'extra'"):
        validate_config(given_config(tmp_path, weights=weights))


def test_blocks_are_units_after_the_layers_in_module_order():
    config = validate_config({})
    blocks = [f"layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)]
    assert block_units(config, "resnet18") == blocks  # blocks: auto
    assert sweep_units(config, "resnet18") == sweep_layers(config, "resnet18") + blocks
    assert perturbed_layers(config, "resnet18")[-9:] == ["fc"] + blocks
    listed = validate_config({"blocks": {"default": "none", "resnet18": ["layer4.1", "layer1.0"]}})
    assert block_units(listed, "resnet18") == ["layer1.0", "layer4.1"]  # reordering the list changes nothing
    assert block_units(validate_config({"blocks": {"default": "none"}}), "resnet18") == []
