# Config validation and the helpers that turn the config into target lists.
import re
import sys

sys.path.insert(0, workflow.basedir)  # the fragility package, also inside conda envs

from fragility.artifacts import epsilon_search_epochs
from fragility.config import (
    ConfigError,
    attack_settings,
    checkpoint_epochs,
    kernel_layers,
    perturbed_layers,
    retrain_epochs,
    stem_for,
    sweep_layer_groups,
    sweep_layers,
    validate_config,
)
from fragility.data import NEEDS_FILES, NUM_CLASSES
from fragility.models import layer_roles

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
EPOCHS = [f"{e:03d}" for e in checkpoint_epochs(config)]
ATTACK = attack_settings(config)
MODEL_FIGURES = ["local_scores", "global_scores", "landscape", "response", "retrain", "compression", "agreement", "removable"]
KERNEL_FIGURES = ["kernels", "kernels_consistency"]

wildcard_constraints:
    dataset=r"[a-z_]+",
    model=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    epoch=r"\d{3}",
    layer=r"[A-Za-z0-9_.]+",


# Params hold exactly what changes a rule's output (README: "What reruns what").
def data_params(*splits):
    """Params function: the dataset keys that change what ``splits`` ("train", "test") hold."""

    def params(wildcards):
        chosen = {"name": wildcards.dataset}
        if wildcards.dataset in NEEDS_FILES:
            chosen["data_dir"] = config["data_dir"]
        for split in splits:
            chosen[f"max_{split}"] = config[f"max_{split}"]
        return chosen

    return params


def model_params(wildcards):
    return {"image_size": config["image_size"], "stem": stem_for(config, wildcards.model), "init": config["init"]}


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
SINGLE_LAYER_SWEEPS = "|".join(
    re.escape(m) for m in config["models"] if all(len(group) == 1 for group in sweep_layer_groups(config, m))
) or "(?!)"


def grouped_sweeps():
    """(model, part, layers) of every multi-layer sweep job (``sweep.layers_per_job``)."""
    for model in config["models"]:
        groups = sweep_layer_groups(config, model)
        if any(len(group) > 1 for group in groups):
            for part, layers in enumerate(groups):
                yield model, part, layers


def run_checkpoints(wildcards):
    return expand(CHECKPOINT, epoch=EPOCHS, **wildcards)


def sweep_paths(dataset, model, seed, epoch):
    """Every layer's sweep table of one checkpoint."""
    layers = sweep_layers(config, model)
    return expand(f"{RUN_DIR}/sweep/epoch{{epoch}}/{{layer}}.parquet", dataset=dataset, model=model, seed=seed, epoch=epoch, layer=layers)


EPSILON_EPOCHS = epsilon_search_epochs(config["epsilon"]["scope"], checkpoint_epochs(config))


def epsilon_checkpoints(wildcards):
    """The checkpoints the ε search runs on (``epsilon.scope``)."""
    return expand(CHECKPOINT, epoch=[f"{e:03d}" for e in EPSILON_EPOCHS], **wildcards)


def checkpoint_sweeps(wildcards):
    return sweep_paths(wildcards.dataset, wildcards.model, wildcards.seed, wildcards.epoch)


def model_sweeps(wildcards):
    """Every sweep table of one (dataset, model): all seeds, checkpoints and layers."""
    return [p for seed in config["seeds"] for epoch in EPOCHS for p in sweep_paths(wildcards.dataset, wildcards.model, seed, epoch)]


def model_runs(pattern):
    """Input function: ``pattern`` for every seed (and checkpoint) of one (dataset, model)."""
    return lambda wildcards: expand(pattern, dataset=wildcards.dataset, model=wildcards.model, seed=config["seeds"], epoch=EPOCHS)


def figure_options(figure):
    """The `figures:` keys that change ``figure`` (a new dpi redraws all; a response option, one)."""
    keys = ["dpi"] + (["response_layer", "response_epoch"] if figure == "response" else [])
    return {key: config["figures"][key] for key in keys}


def kernel_paths(wildcards, table):
    """Every kernel (or targeting) table of one (dataset, model): seeds, checkpoints, ``kernels.layers``."""
    return expand(f"{RUN_DIR}/{table}/epoch{{epoch}}/{{layer}}.parquet", dataset=wildcards.dataset, model=wildcards.model,
                  seed=config["seeds"], epoch=EPOCHS, layer=kernel_layers(config, wildcards.model))


def model_figures(dataset, model):
    figures = MODEL_FIGURES + (KERNEL_FIGURES if kernel_layers(config, model) else [])
    return expand(f"{FIGURE_DIR}/{{figure}}.png", dataset=dataset, model=model, figure=figures)


def all_targets():
    targets = []
    for dataset in config["datasets"]:
        for model in config["models"]:
            tables = ["scores", "retrain", "retrain_summary", "epsilon", "criticality", "agreement", "removable"]
            tables += ["kernels", "targeting"] if kernel_layers(config, model) else []
            targets += expand(f"{MODEL_DIR}/{{table}}.parquet", dataset=dataset, model=model, table=tables)
            targets += model_figures(dataset, model)
        targets.append(f"{RESULTS}/figures/{dataset}/compare_models.png")
    targets += expand(f"{RESULTS}/figures/compare_datasets/{{model}}.png", model=config["models"])
    targets += [f"{RESULTS}/reproduction/claims.parquet", f"{RESULTS}/reproduction/claims.html"]
    return targets
