# Config validation and the helpers that turn the config into target lists.
import re
import sys

sys.path.insert(0, workflow.basedir)  # the fragility package, also inside conda envs

from fragility.artifacts import epsilon_search_epochs
from fragility.config import (
    ConfigError,
    attack_settings,
    checkpoint_epochs,
    dataset_info,
    dataset_names,
    dataset_source,
    given_model_spec,
    is_given,
    kernel_layers,
    model_datasets,
    model_entries,
    model_epochs,
    model_names,
    model_roles,
    model_seeds,
    model_spec_options,
    perturbed_layers,
    retrain_epochs,
    retrains,
    sweep_layer_groups,
    sweep_layers,
    validate_config,
)

try:
    _validated = validate_config(config)
except ConfigError as exc:
    sys.exit(f"Error: {exc}")
config.clear()
config.update(_validated)

ENV = "../../envs/fragility.yaml"
RESULTS = "results"
MODEL_DIR = f"{RESULTS}/{{dataset}}/{{model}}"
RUN_DIR = f"{MODEL_DIR}/seed{{seed}}"
CHECKPOINT = f"{RUN_DIR}/checkpoints/epoch{{epoch}}.pt"
FIGURE_DIR = f"{RESULTS}/figures/{{dataset}}/{{model}}"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
ATTACK = attack_settings(config)
MODEL_FIGURES = ["local_scores", "global_scores", "landscape", "response", "retrain", "compression", "agreement", "removable"]
KERNEL_FIGURES = ["kernels", "kernels_consistency"]

MODELS = model_names(config)  # names in paths and tables: timm/<name> is timm_<name>
DATASETS = dataset_names(config)
# Regexes for the model wildcard of rules that apply to trained or to given models only ("(?!)" matches nothing).
TRAINED_MODELS = "|".join(re.escape(m) for m in MODELS if not is_given(config, m)) or "(?!)"
GIVEN_MODELS = "|".join(re.escape(m) for m in MODELS if is_given(config, m)) or "(?!)"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    epoch=r"\d{3}",
    layer=r"[A-Za-z0-9_.]+",


# Params hold exactly what changes a rule's output (README: "What reruns what").
def data_params(*splits):
    """Params function: the dataset keys that change what ``splits`` ("train", "test") hold."""

    def params(wildcards):
        chosen = dataset_source(config, wildcards.dataset)
        for split in splits:
            chosen[f"max_{split}"] = config[f"max_{split}"]
        return chosen

    return params


def model_params(wildcards):
    return model_spec_options(config, wildcards.model)


def epochs_of(model):
    """The checkpoint epochs of ``model`` as they appear in paths (a given model: 000 only)."""
    return [f"{e:03d}" for e in model_epochs(config, model)]


SWEEP_TABLE = f"{RUN_DIR}/sweep/epoch{{epoch}}/{{layer}}.parquet"
SWEEP_INPUTS = {
    "checkpoint": CHECKPOINT,
    "testset": f"{RESULTS}/{{dataset}}/testset.pt",
    "adversarial": f"{RUN_DIR}/adversarial/epoch{{epoch}}.pt",
}
# Params: exactly what changes a sweep table (the layers are in its path).
SWEEP_PARAMS = {
    "steps": config["sweep"]["steps"],
    "filters": config["sweep"]["filters"],
    "regenerate": ATTACK if config["attack"]["regenerate"] else None,
}
# Models swept one layer per job (a regex for the sweep rule's model wildcard; "(?!)" matches nothing).
SINGLE_LAYER_SWEEPS = (
    "|".join(re.escape(m) for m in MODELS if all(len(group) == 1 for group in sweep_layer_groups(config, m))) or "(?!)"
)


def grouped_sweeps():
    """(model, part, layers) of every multi-layer sweep job (``sweep.layers_per_job``)."""
    for model in MODELS:
        groups = sweep_layer_groups(config, model)
        if any(len(group) > 1 for group in groups):
            for part, layers in enumerate(groups):
                yield model, part, layers


def sweep_paths(dataset, model, seed, epoch):
    """Every layer's sweep table of one checkpoint."""
    layers = sweep_layers(config, model)
    return expand(
        f"{RUN_DIR}/sweep/epoch{{epoch}}/{{layer}}.parquet", dataset=dataset, model=model, seed=seed, epoch=epoch, layer=layers
    )


def epsilon_epochs(wildcards):
    """The epochs whose checkpoints the ε search runs on (``epsilon.scope``)."""
    return epsilon_search_epochs(config["epsilon"]["scope"], model_epochs(config, wildcards.model))


def epsilon_checkpoints(wildcards):
    return expand(CHECKPOINT, epoch=[f"{e:03d}" for e in epsilon_epochs(wildcards)], **wildcards)


def checkpoint_sweeps(wildcards):
    return sweep_paths(wildcards.dataset, wildcards.model, wildcards.seed, wildcards.epoch)


def model_sweeps(wildcards):
    """Every sweep table of one (dataset, model): all seeds, checkpoints and layers."""
    return [
        p
        for seed in model_seeds(config, wildcards.model)
        for epoch in epochs_of(wildcards.model)
        for p in sweep_paths(wildcards.dataset, wildcards.model, seed, epoch)
    ]


def model_runs(pattern):
    """Input function: ``pattern`` for every seed (and checkpoint) of one (dataset, model)."""
    return lambda wildcards: expand(
        pattern,
        dataset=wildcards.dataset,
        model=wildcards.model,
        seed=model_seeds(config, wildcards.model),
        epoch=epochs_of(wildcards.model),
    )


def figure_options(figure):
    """The `figures:` keys that change ``figure`` (a new dpi redraws all; a response option, one)."""
    keys = ["dpi"] + (["response_layer", "response_epoch"] if figure == "response" else [])
    return {key: config["figures"][key] for key in keys}


def kernel_paths(wildcards, table):
    """Every kernel (or targeting) table of one (dataset, model): seeds, checkpoints, ``kernels.layers``."""
    return expand(
        f"{RUN_DIR}/{table}/epoch{{epoch}}/{{layer}}.parquet",
        dataset=wildcards.dataset,
        model=wildcards.model,
        seed=model_seeds(config, wildcards.model),
        epoch=epochs_of(wildcards.model),
        layer=kernel_layers(config, wildcards.model),
    )


def pairs():
    """Every (dataset, model) the workflow analyses: trained models on every dataset with a
    training split, a given model on its own dataset."""
    return [(dataset, model) for dataset in DATASETS for model in MODELS if dataset in model_datasets(config, model)]


def dataset_models(dataset):
    return [m for d, m in pairs() if d == dataset]


def model_dataset_list(model):
    return [d for d, m in pairs() if m == model]


def model_tables(dataset, model, table):
    """``table`` of each (dataset, model) given, where it exists (retraining needs a training split)."""
    if table.startswith("retrain") and not retrains(config, dataset, model):
        return []
    return [f"{RESULTS}/{dataset}/{model}/{table}.parquet"]


def model_figures(dataset, model):
    figures = MODEL_FIGURES + (KERNEL_FIGURES if kernel_layers(config, model) else [])
    figures = [f for f in figures if f != "retrain" or retrains(config, dataset, model)]
    return expand(f"{FIGURE_DIR}/{{figure}}.png", dataset=dataset, model=model, figure=figures)


def all_targets():
    targets = []
    for dataset, model in pairs():
        tables = ["scores", "retrain", "retrain_summary", "epsilon", "criticality", "agreement", "removable"]
        tables += ["kernels", "targeting"] if kernel_layers(config, model) else []
        targets += [path for table in tables for path in model_tables(dataset, model, table)]
        targets += model_figures(dataset, model)
    targets += expand(f"{RESULTS}/figures/{{dataset}}/compare_models.png", dataset=DATASETS)
    targets += expand(f"{RESULTS}/figures/compare_datasets/{{model}}.png", model=MODELS)
    targets += [f"{RESULTS}/reproduction/claims.parquet", f"{RESULTS}/reproduction/claims.html"]
    return targets
