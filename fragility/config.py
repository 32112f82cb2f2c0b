"""Workflow configuration: schema defaults, validation and one-line errors.

Validation runs when Snakemake reads the Snakefile, before any job: every problem is
reported as one line naming the key, the value and what is allowed. What the workflow
accepts but changes (a dropped value, a class a test split lacks) is one
:class:`ConfigWarning` line, which the Snakefile prints once, when it plans.
"""

from __future__ import annotations

import copy
import functools
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

from . import GLOBAL_LAYER
from .data import DATASETS, DEBIAN_FASHION_MNIST, NEEDS_DATA_DIR, NEEDS_FILES, DatasetError, check_dataset, describe_dataset
from .schema import SCHEMA_PATH, load_schema, resolve  # noqa: F401  (SCHEMA_PATH, load_schema: public here too)
from .structure import (
    ArchitectureError,
    Structure,
    architecture_kind,
    catalogued,
    catalogued_architectures,
    check_catalogued,
    model_slug,
    torch_installed,
)


class ConfigError(ValueError):
    """An invalid configuration value; the message is one line naming the key."""


class ConfigWarning(UserWarning):
    """A value the workflow accepts but does not use as given; the message is one line naming the key."""


def warn(message: str) -> None:
    """Issue the one-line :class:`ConfigWarning` ``message`` (``config key '…': …``)."""
    warnings.warn(message, ConfigWarning, stacklevel=2)


# package.module:callable, each part a Python name: what importlib imports and a path can hold
FACTORY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


ModelCheck = Callable[[dict, str], None]  # a check of one model's settings, raising ConfigError


def with_defaults(config: dict, schema: dict) -> dict:
    """A copy of ``config`` with every missing key taken from the schema's defaults, so an
    overlay (``config/tiny.yaml``) validates on its own. A per-model map (``stem``,
    ``blocks``, ``sweep.layers``) that leaves out ``default`` keeps the schema's."""
    config = copy.deepcopy(config)
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        value = config.get(key)
        if isinstance(value, dict) and "properties" in sub:
            config[key] = with_defaults(value, sub)
        elif isinstance(value, dict) and isinstance(sub.get("default"), dict):
            config[key] = copy.deepcopy(sub["default"]) | value
    return config


def validate_config(config: dict, schema: dict | None = None, checks: Iterable[ModelCheck] = ()) -> dict:
    """The config with defaults filled in, or :class:`ConfigError` on the first problem.
    ``checks``: further ``check(config, model)`` run on every model after the generic ones
    (each stress test's own: :func:`fragility.stress.validate`)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    schema = schema or load_schema()
    config = with_defaults(_coerce_strings(config, schema, schema), schema)
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))
    _check_semantics(config)
    for model in model_names(config):
        for check in checks:
            check(config, model)
    return config


def _coerce_strings(value, schema: dict, root: dict):
    """Numbers and booleans given as strings where the schema takes no such string (Snakemake's
    ``--config sweep={steps: 5}`` passes nested values as strings) become numbers/booleans."""
    schema = resolve(schema, root)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            k: _coerce_strings(v, properties.get(k, extra if isinstance(extra, dict) else {}), root) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_coerce_strings(v, schema.get("items", {}), root) for v in value]
    if isinstance(value, str) and schema and not _accepts_string(schema, value, root):
        parsed = yaml.safe_load(value)
        if isinstance(parsed, (bool, int, float)) or parsed is None:
            return parsed
    return value


def _accepts_string(schema: dict, value: str, root: dict) -> bool:
    schema = resolve(schema, root)
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


def fail(key: str, value, allowed: str):
    """Raise the one-line :class:`ConfigError` naming ``key``, ``value`` and what is allowed."""
    raise ConfigError(f"config key '{key}': {value!r} is invalid; {allowed}")


def _check_semantics(config: dict) -> None:

    datasets = _check_datasets(config)
    models = _check_models(config, datasets)
    _normalise_model_keys(config, models)
    train = config["train"]
    if train["checkpoint_every"] > train["epochs"]:
        fail("train.checkpoint_every", train["checkpoint_every"], f"must be <= train.epochs ({train['epochs']})")
    if config["epsilon"]["min"] >= config["epsilon"]["max"]:
        fail("epsilon.min", config["epsilon"]["min"], f"must be < epsilon.max ({config['epsilon']['max']})")
    _check_data_dir(config)
    known = set(models) | set(_torchvision_names())  # a torchvision name may be kept for runs that add it
    for key, mapping in (
        ("stem", config["stem"]),
        ("sweep.layers", config["sweep"]["layers"]),
        ("kernels.layers", config["kernels"]["layers"]),
        ("whitebox.layers", config["whitebox"]["layers"]),
        ("blocks", config["blocks"]),
    ):
        for model in mapping:
            if model != "default" and model not in known:
                fail(
                    f"{key}.{model}",
                    model,
                    f"per-model keys must be torchvision names or models of this config ({', '.join(models)}), or 'default'",
                )
    for model in models:
        try:
            valid = set(model_layers(config, model)) | {GLOBAL_LAYER}
        except (ArchitectureError, DatasetError) as exc:
            raise ConfigError(f"config key 'models': {exc}") from exc
        choice = layer_choice(config, model)
        key = "sweep.layers." + (model if model in config["sweep"]["layers"] else "default")
        for layer in [] if choice == "all" else choice:
            if layer not in valid:
                fail(key, layer, f"not a Conv2d/Linear layer of {model}; e.g. {sorted(valid)[:4]}")
        _check_blocks(config, model)
        response = config["figures"]["response_layer"]
        if response is not None and response not in valid:
            fail("figures.response_layer", response, f"must be a layer of every model ({model} has no such layer)")
    epoch = config["figures"]["response_epoch"]
    if epoch is not None and epoch not in checkpoint_epochs(config):
        fail("figures.response_epoch", epoch, f"must be a checkpoint epoch: {checkpoint_epochs(config)}")


def _check_blocks(config: dict, model: str) -> None:
    """Every listed block of ``model`` a module that holds a layer and (where torch is
    installed: it takes a forward pass) maps one 4-D tensor to one 4-D tensor on the images of
    each dataset it runs on; without torch the triage job checks that before it compresses a
    block (a sweep or a re-initialisation needs no shapes)."""

    choice = config["blocks"].get(model, config["blocks"]["default"])
    if not isinstance(choice, list):
        return
    key = "blocks." + (model if model in config["blocks"] else "default")
    architecture, stem, _, _ = built_as(config, model)
    try:
        if not torch_installed():
            model_structure(config, model).check_blocks(choice, architecture)
            return
        from .models import check_blocks

        for dataset in model_datasets(config, model):
            info = dataset_info(config, dataset)
            check_blocks(architecture, choice, stem, info.num_classes, info.image_shape)
    except ArchitectureError as exc:
        raise ConfigError(f"config key '{key}': {exc}") from exc


def _check_datasets(config: dict) -> dict[str, dict]:
    """Every dataset entry readable (folders, npz headers) and named once."""

    entries = {}
    for i, item in enumerate(config["datasets"]):
        entry = _dataset_entry(item)
        name = entry["name"]
        if name in entries:
            fail(f"datasets.{i}.name", name, "dataset names must be unique")
        if not isinstance(item, str) and name in DATASETS:
            fail(f"datasets.{i}.name", name, f"is a built-in dataset's name; choose another ({', '.join(DATASETS)} are taken)")
        if not isinstance(item, str):
            try:
                for message in check_dataset(**entry):
                    warn(f"config key 'datasets.{i}': {message}")
                dataset_info(config, name, entry)
            except DatasetError as exc:
                raise ConfigError(f"config key 'datasets.{i}': {exc}") from exc
        entries[name] = entry
    return entries


def _check_models(config: dict, datasets: dict) -> dict[str, dict]:
    """Every model buildable, named once, paired with datasets it can run on; a given model's
    weights fit its architecture and its dataset's classes and image shape."""

    entries = {}
    for i, item in enumerate(config["models"]):
        entry = _model_entry(item)
        key = f"models.{i}"
        if entry["name"] in entries:
            fail(
                f"{key}.name" if isinstance(item, dict) else key,
                entry["name"],
                "model names must be unique (timm/<name> is named timm_<name>)",
            )
        where = f"{key}{'.architecture' if isinstance(item, dict) else ''}"
        architecture = entry["architecture"]
        if architecture_kind(architecture) == "factory" and not FACTORY_NAME.fullmatch(architecture):
            fail(
                where,
                architecture,
                "a model factory is package.module:callable, Python names joined by dots (e.g. mynets.cnn:small_cnn), "
                "no path: put the module's folder on PYTHONPATH and name the module",
            )
        try:
            _check_architecture(architecture)
        except ArchitectureError as exc:
            raise ConfigError(f"config key '{where}': {exc}") from exc
        entries[entry["name"]] = entry
        if entry["weights"] is None:
            continue
        if entry["dataset"] not in datasets:
            fail(f"{key}.dataset", entry["dataset"], f"must be one of the config's datasets: {', '.join(datasets)}")
        info = dataset_info(config, entry["dataset"])
        for stat in ("mean", "std"):
            if entry[stat] is not None and len(entry[stat]) != info.image_shape[0]:
                fail(
                    f"{key}.{stat}",
                    entry[stat],
                    f"needs one value per channel ({info.image_shape[0]} for dataset {entry['dataset']})",
                )
        if not torch_installed():
            fail(key, entry["name"], "a given model's weights are read while the run is planned, which needs torch here")
        from .artifacts import ModelSpec, WeightsError, check_weights, read_weights
        from .models import check_outputs

        spec = ModelSpec(
            entry["name"], info.num_classes, info.image_shape[0], None, [0.0], [1.0], "plain", "given", entry["architecture"]
        )
        try:
            check_weights(spec, read_weights(entry["weights"]), entry["weights"])
            check_outputs(entry["architecture"], info.num_classes, info.image_shape)
        except (WeightsError, ArchitectureError) as exc:
            raise ConfigError(f"config key '{key}': {exc}") from exc
    trainable = [d for d in datasets if dataset_info(config, d).has_train]
    trained = [m for m, e in entries.items() if e["weights"] is None]
    if trained and not trainable:
        fail("models", trained[0], "a model the workflow trains needs a dataset with a training split")
    for name in datasets:
        if not dataset_info(config, name).has_train and not any(e["dataset"] == name for e in entries.values()):
            fail("datasets", name, "has no training split (train/ or x_train) and no given model uses it")
    return entries


def _torchvision_names() -> list[str]:
    """Every torchvision classifier: the installed torchvision's, else the catalogue's."""
    if torch_installed():
        from .models import available_models

        return available_models()
    return catalogued_architectures()


def _check_architecture(architecture: str) -> None:
    """:class:`ArchitectureError` unless ``architecture`` names a model that can be built
    (without torch: a torchvision architecture of the catalogue)."""
    if torch_installed():
        from .models import check_architecture

        check_architecture(architecture)
    else:
        check_catalogued(architecture)


def _dataset_entry(item) -> dict:
    """A dataset item as ``{name, imagefolder | npz, channels, image_size}`` (defaults filled in)."""
    if isinstance(item, str):
        return {"name": item}
    if "imagefolder" in item:
        return {
            "name": item["name"],
            "imagefolder": item["imagefolder"],
            "channels": item.get("channels", 3),
            "image_size": item.get("image_size"),
        }
    return {"name": item["name"], "npz": item["npz"]}


def _model_entry(item) -> dict:
    """A model item as ``{name, architecture, weights, dataset, mean, std}``: a string is a
    trained model named by its slug (``timm/resnet10t`` -> ``timm_resnet10t``)."""

    if isinstance(item, str):
        return {"name": model_slug(item), "architecture": item, "weights": None, "dataset": None, "mean": None, "std": None}
    return {"mean": None, "std": None, **item}


def _normalise_model_keys(config: dict, models: dict) -> None:
    """Per-model keys may name a model as written (``timm/resnet10t``); use its name."""
    written = {e["architecture"]: name for name, e in models.items() if e["weights"] is None}
    for mapping in (
        config["stem"],
        config["sweep"]["layers"],
        config["kernels"]["layers"],
        config["whitebox"]["layers"],
        config["blocks"],
    ):
        for key in [k for k in mapping if k in written and written[k] != k]:
            mapping[written[key]] = mapping.pop(key)


def dataset_entries(config: dict) -> dict[str, dict]:
    """Dataset name -> its entry (:func:`_dataset_entry`), in config order."""
    return {entry["name"]: entry for entry in map(_dataset_entry, config["datasets"])}


def model_entries(config: dict) -> dict[str, dict]:
    """Model name -> its entry (:func:`_model_entry`), in config order."""
    return {entry["name"]: entry for entry in map(_model_entry, config["models"])}


def dataset_names(config: dict) -> list[str]:
    return list(dataset_entries(config))


def model_names(config: dict) -> list[str]:
    return list(model_entries(config))


def is_given(config: dict, model: str) -> bool:
    """Whether ``model`` is analysed as given (weights from the user, never trained here)."""
    return model_entries(config)[model]["weights"] is not None


def dataset_source(config: dict, dataset: str) -> dict:
    """The keyword arguments of :func:`fragility.data.load_dataset` that say where ``dataset`` is."""

    entry = dict(dataset_entries(config)[dataset])
    if dataset in NEEDS_FILES and len(entry) == 1:
        entry["data_dir"] = config["data_dir"]
    return entry


def dataset_info(config: dict, dataset: str, entry: dict | None = None):
    """Classes, image shape and train split of ``dataset`` (:func:`fragility.data.describe_dataset`)."""
    entry = entry or dataset_entries(config)[dataset]
    return _cached_info(tuple(sorted((k, v) for k, v in entry.items())))


@functools.cache
def _cached_info(entry: tuple):

    return describe_dataset(**dict(entry))


def model_datasets(config: dict, model: str) -> list[str]:
    """The datasets ``model`` runs on: a given model's own; a trained one, every dataset with a training split."""
    entry = model_entries(config)[model]
    if entry["weights"] is not None:
        return [entry["dataset"]]
    return [d for d in dataset_names(config) if dataset_info(config, d).has_train]


def model_seeds(config: dict, model: str) -> list[int]:
    """Training seeds; a given model has one run, seed 0."""
    return [0] if is_given(config, model) else list(config["seeds"])


def model_epochs(config: dict, model: str) -> list[int]:
    """Checkpoint epochs; a given model has one checkpoint, epoch 0."""
    return [0] if is_given(config, model) else checkpoint_epochs(config)


def retrains(config: dict, dataset: str, model: str) -> bool:
    """Selective retraining runs where there is a training split."""
    return dataset_info(config, dataset).has_train


def model_spec_options(config: dict, model: str) -> dict:
    """The :class:`fragility.artifacts.ModelSpec` fields the config sets for a trained ``model``
    (``architecture`` only where it is not the name, so torchvision runs keep their params)."""
    options = {"image_size": config["image_size"], "stem": stem_for(config, model), "init": config["init"]}
    architecture = model_entries(config)[model]["architecture"]
    return options | ({"architecture": architecture} if architecture != model else {})


def given_model_spec(config: dict, model: str) -> dict:
    """The :class:`fragility.artifacts.ModelSpec` fields of a given ``model``: mean and std the
    config's, else those of a checkpoint of this tool given as its weights, else 0 and 1."""
    entry = model_entries(config)[model]
    info = dataset_info(config, entry["dataset"])
    channels = info.image_shape[0]
    saved = _saved_normalisation(entry["weights"]) or (None, None)  # a checkpoint of this tool given as weights
    return {
        "name": model,
        "num_classes": info.num_classes,
        "in_channels": channels,
        "image_size": None,
        "mean": list(entry["mean"] or saved[0] or [0.0] * channels),
        "std": list(entry["std"] or saved[1] or [1.0] * channels),
        "stem": "plain",
        "init": "given",
        "architecture": entry["architecture"],
    }


@functools.cache
def _saved_normalisation(weights: str):
    from .artifacts import checkpoint_normalisation

    return checkpoint_normalisation(weights)


def built_as(config: dict, model: str) -> tuple:
    """(architecture, stem, num_classes, in_channels) ``model`` is built with, for the
    structure-only helpers of :mod:`fragility.models` (a trained model's names do not
    depend on classes or channels; a given model's are read at its dataset's)."""
    entry = model_entries(config)[model]
    if entry["weights"] is None:
        return entry["architecture"], stem_for(config, model), 10, 3
    spec = given_model_spec(config, model)
    return entry["architecture"], "plain", spec["num_classes"], spec["in_channels"]


def model_structure(config: dict, model: str) -> Structure:
    """The :class:`~fragility.structure.Structure` of ``model`` as the workflow builds it: read off
    the network where torch is installed, else from the catalogue of torchvision architectures."""
    architecture, stem, num_classes, in_channels = built_as(config, model)
    if torch_installed():
        from .models import describe

        return describe(architecture, stem, num_classes, in_channels)
    return catalogued(architecture, stem, num_classes)


def model_layers(config: dict, model: str) -> list[str]:
    """The filterable layers of ``model`` as the workflow builds it."""

    return list(model_structure(config, model).layers)


def model_roles(config: dict, model: str) -> dict:
    """First conv, last layer and BatchNorm-followed convs of ``model`` (:meth:`fragility.structure.Structure.roles`)."""

    return model_structure(config, model).roles()


def auto_blocks(config: dict, model: str) -> list[str]:
    """The outermost blocks of ``model`` found by type (``blocks: auto``), in module order."""
    return list(model_structure(config, model).blocks)


def _check_data_dir(config: dict) -> None:
    data_dir = config["data_dir"]
    builtin = [d for d in config["datasets"] if isinstance(d, str)]
    needing = [d for d in builtin if d in NEEDS_DATA_DIR or (d == "fashion_mnist" and not DEBIAN_FASHION_MNIST.is_dir())]
    if needing and data_dir is None:
        fail("data_dir", None, f"datasets {needing} need a data_dir holding their files")
    if needing and not Path(data_dir).is_dir():
        fail("data_dir", data_dir, f"the folder does not exist (datasets {needing} need it)")
    for i, name in enumerate(config["datasets"]):
        if isinstance(name, str) and name in NEEDS_FILES:
            try:
                for message in check_dataset(name, data_dir):
                    warn(f"config key 'datasets.{i}': {name}: {message}")
            except DatasetError as exc:
                raise ConfigError(f"config key 'data_dir': {name}: {exc}") from exc


def attack_settings(config: dict) -> dict:
    """The keyword arguments of :class:`fragility.attack.Attack` the config asks for: the
    method's options are the keys under ``attack.<method>``."""
    attack = config["attack"]
    return {"method": attack["method"], "clamp": attack["clamp"], "options": dict(attack.get(attack["method"], {}))}


def stem_for(config: dict, model: str) -> str:
    return config["stem"].get(model, config["stem"]["default"])


def layer_choice(config: dict, model: str):
    layers = config["sweep"]["layers"]
    return layers.get(model, layers["default"])


def perturbed_layers(config: dict, model: str) -> list[str]:
    """The swept layers, then the blocks, re-initialised one at a time (not ``__global__``),
    in module order so that reordering ``sweep.layers`` changes nothing."""
    chosen = set(sweep_layers(config, model))
    return [layer for layer in model_layers(config, model) if layer in chosen] + block_units(config, model)


def block_units(config: dict, model: str) -> list[str]:
    """The blocks of ``model`` swept and re-initialised as units (``blocks``), in module order."""
    choice = config["blocks"].get(model, config["blocks"]["default"])
    if choice == "none":
        return []
    if choice != "auto":
        return _block_order(config, model, choice)

    return auto_blocks(config, model)


def _block_order(config: dict, model: str, chosen: list[str]) -> list[str]:
    """``chosen`` in module order (reordering the list changes nothing)."""

    order = {name: i for i, name in enumerate(model_structure(config, model).modules)}
    return sorted(chosen, key=lambda name: order.get(name, len(order)))


def sweep_units(config: dict, model: str) -> list[str]:
    """Every unit the synaptic filters sweep for ``model``: the layers (and ``__global__``) of
    ``sweep.layers``, then the blocks of ``blocks``."""
    return sweep_layers(config, model) + block_units(config, model)


def unit_groups(config: dict, units: list[str]) -> list[list[str]]:
    """The units of each stress job of one checkpoint: ``sweep.layers_per_job`` consecutive
    units (``auto``: all of them in one job)."""
    size = config["sweep"]["layers_per_job"]
    size = len(units) if size == "auto" else size
    return [units[i : i + size] for i in range(0, len(units), size)] if units else []


def checkpoint_epochs(config: dict) -> list[int]:
    from .artifacts import checkpoint_schedule

    return checkpoint_schedule(config["train"]["epochs"], config["train"]["checkpoint_every"])


def retrain_epochs(config: dict) -> int:
    return config["retrain"]["epochs"] or config["train"]["checkpoint_every"]


def sweep_layers(config: dict, model: str) -> list[str]:
    """The layers swept for ``model``: its filterable layers and ``__global__``, or the configured list."""
    choice = layer_choice(config, model)
    return model_layers(config, model) + [GLOBAL_LAYER] if choice == "all" else list(choice)
