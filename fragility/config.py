"""Workflow configuration: schema defaults, validation and one-line errors.

Validation runs when Snakemake reads the Snakefile, before any job: every problem is
reported as one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .data import DEBIAN_FASHION_MNIST, NEEDS_DATA_DIR
from .models import GLOBAL_LAYER

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")  # package data: a plain install validates too


class ConfigError(ValueError):
    """An invalid configuration value; the message is one line naming the key."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


def with_defaults(config: dict, schema: dict) -> dict:
    """A copy of ``config`` with every missing key taken from the schema's defaults."""
    config = copy.deepcopy(config)
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict) and "properties" in sub:
            config[key] = with_defaults(config[key], sub)
    return config


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """The config with defaults filled in, or :class:`ConfigError` on the first problem."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    schema = schema or load_schema()
    config = with_defaults(_coerce_strings(config, schema, schema), schema)
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))
    _check_semantics(config)
    return config


def _coerce_strings(value, schema: dict, root: dict):
    """Numbers and booleans given as strings where the schema takes no such string (Snakemake's
    ``--config sweep={steps: 5}`` passes nested values as strings) become numbers/booleans."""
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {k: _coerce_strings(v, properties.get(k, extra if isinstance(extra, dict) else {}), root) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce_strings(v, schema.get("items", {}), root) for v in value]
    if isinstance(value, str) and schema and not _accepts_string(schema, value, root):
        parsed = yaml.safe_load(value)
        if isinstance(parsed, (bool, int, float)) or parsed is None:
            return parsed
    return value


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref", "")
    return root["definitions"][ref.rsplit("/", 1)[-1]] if ref.startswith("#/definitions/") else schema


def _accepts_string(schema: dict, value: str, root: dict) -> bool:
    schema = _resolve(schema, root)
    branches = schema.get("oneOf", []) + schema.get("anyOf", [])
    if branches:
        return any(_accepts_string(branch, value, root) for branch in branches)
    if "const" in schema:
        return schema["const"] == value
    if "enum" in schema:
        return value in schema["enum"]
    types = schema.get("type")
    return types is None or "string" in ([types] if isinstance(types, str) else types)


def _describe(error) -> str:
    """One line naming the key, the value and what is allowed."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        unexpected = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"config key '{'.'.join(path + unexpected[:1])}': unknown key; allowed keys here: {allowed}"
    message = error.message
    if error.validator in ("oneOf", "anyOf"):
        message = f"{error.instance!r} is invalid; allowed: {error.schema.get('description', 'see the schema')}"
    return f"config key '{'.'.join(path) or '(top level)'}': {message}"


def _fail(key: str, value, allowed: str):
    raise ConfigError(f"config key '{key}': {value!r} is invalid; {allowed}")


def _check_semantics(config: dict) -> None:
    from .models import available_models, layer_names

    known = available_models()
    for model in config["models"]:
        if model not in known:
            _fail("models", model, "allowed: torchvision classification models, e.g. resnet18, resnet50, squeezenet1_1, shufflenet_v2_x1_0")
    train = config["train"]
    if train["checkpoint_every"] > train["epochs"]:
        _fail("train.checkpoint_every", train["checkpoint_every"], f"must be <= train.epochs ({train['epochs']})")
    if config["epsilon"]["min"] >= config["epsilon"]["max"]:
        _fail("epsilon.min", config["epsilon"]["min"], f"must be < epsilon.max ({config['epsilon']['max']})")
    _check_data_dir(config)
    for key, mapping in (("stem", config["stem"]), ("sweep.layers", config["sweep"]["layers"]), ("kernels.layers", config["kernels"]["layers"])):
        for model in mapping:
            if model != "default" and model not in known:
                _fail(f"{key}.{model}", model, "per-model keys must be torchvision model names (or 'default')")
    for model in config["models"]:
        valid = set(layer_names(model, stem_for(config, model))) | {GLOBAL_LAYER}
        choice = layer_choice(config, model)
        key = "sweep.layers." + (model if model in config["sweep"]["layers"] else "default")
        for layer in [] if choice == "all" else choice:
            if layer not in valid:
                _fail(key, layer, f"not a Conv2d/Linear layer of {model}; e.g. {sorted(valid)[:4]}")
        kernel_choice = config["kernels"]["layers"].get(model, config["kernels"]["layers"]["default"])
        key = "kernels.layers." + (model if model in config["kernels"]["layers"] else "default")
        for layer in kernel_choice if isinstance(kernel_choice, list) else []:
            if layer not in valid - {GLOBAL_LAYER}:
                _fail(key, layer, f"not a Conv2d/Linear layer of {model}; e.g. {sorted(valid - {GLOBAL_LAYER})[:4]}")
        response = config["figures"]["response_layer"]
        if response is not None and response not in valid:
            _fail("figures.response_layer", response, f"must be a layer of every model ({model} has no such layer)")
    epoch = config["figures"]["response_epoch"]
    if epoch is not None and epoch not in checkpoint_epochs(config):
        _fail("figures.response_epoch", epoch, f"must be a checkpoint epoch: {checkpoint_epochs(config)}")


def _check_data_dir(config: dict) -> None:
    data_dir = config["data_dir"]
    needing = [d for d in config["datasets"] if d in NEEDS_DATA_DIR or (d == "fashion_mnist" and not DEBIAN_FASHION_MNIST.is_dir())]
    if needing and data_dir is None:
        _fail("data_dir", None, f"datasets {needing} need a data_dir holding their files")
    if needing and not Path(data_dir).is_dir():
        _fail("data_dir", data_dir, f"the folder does not exist (datasets {needing} need it)")


def attack_settings(config: dict) -> dict:
    """The keyword arguments of :class:`fragility.attack.Attack` the config asks for."""
    attack = config["attack"]
    options = dict(attack["pgd"]) if attack["method"] == "pgd" else {}
    return {"method": attack["method"], "clamp": attack["clamp"], "options": options}


def stem_for(config: dict, model: str) -> str:
    return config["stem"].get(model, config["stem"]["default"])


def layer_choice(config: dict, model: str):
    layers = config["sweep"]["layers"]
    return layers.get(model, layers["default"])


def perturbed_layers(config: dict, model: str) -> list[str]:
    """The swept layers re-initialised one at a time (not ``__global__``), in module order so
    that reordering ``sweep.layers`` changes nothing."""
    from .models import layer_names

    chosen = set(sweep_layers(config, model))
    return [layer for layer in layer_names(model, stem_for(config, model)) if layer in chosen]


def sweep_layer_groups(config: dict, model: str) -> list[list[str]]:
    """The layers of each sweep job of one checkpoint: ``sweep.layers_per_job`` consecutive
    layers (``auto``: all of them in one job)."""
    layers = sweep_layers(config, model)
    size = config["sweep"]["layers_per_job"]
    size = len(layers) if size == "auto" else size
    return [layers[i : i + size] for i in range(0, len(layers), size)]


def kernel_layers(config: dict, model: str) -> list[str]:
    """The layers whose kernels are removed one at a time for ``model`` (``kernels.layers``)."""
    from .models import first_conv_layer

    mapping = config["kernels"]["layers"]
    choice = mapping.get(model, mapping["default"])
    if choice == "none":
        return []
    return [first_conv_layer(model, stem_for(config, model))] if choice == "first_conv" else list(choice)


def checkpoint_epochs(config: dict) -> list[int]:
    from .artifacts import checkpoint_schedule

    return checkpoint_schedule(config["train"]["epochs"], config["train"]["checkpoint_every"])


def retrain_epochs(config: dict) -> int:
    return config["retrain"]["epochs"] or config["train"]["checkpoint_every"]


def sweep_layers(config: dict, model: str) -> list[str]:
    """The layers swept for ``model``: its filterable layers and ``__global__``, or the configured list."""
    from .models import layer_names

    choice = layer_choice(config, model)
    return layer_names(model, stem_for(config, model)) + [GLOBAL_LAYER] if choice == "all" else list(choice)
