# Config validation and the helpers that turn the config into target lists.
import os
import re
import sys
import warnings
from pathlib import Path

from snakemake.logging import logger
from snakemake.sourcecache import LocalSourceFile

# Run from a checkout, the fragility package beside workflow/ plans it (whichever Snakefile,
# top-level or workflow/, runs); deployed from a git repository, the installed one does.
if isinstance(workflow.current_basedir, LocalSourceFile):
    sys.path.insert(0, str(Path(workflow.current_basedir).parents[1]))

from fragility.artifacts import epsilon_search_epochs
from fragility.figures import FIGURES, figure_names, report_category
from fragility.io import parquet_intact
from fragility.scoring.claims import claim_tables
from fragility.stress import STRESS_TESTS, claim_options, rank_families, validate
from fragility.config import (
    ConfigError,
    ConfigWarning,
    attack_settings,
    checkpoint_epochs,
    dataset_info,
    dataset_names,
    dataset_source,
    given_model_spec,
    is_given,
    model_datasets,
    model_entries,
    model_epochs,
    model_names,
    model_layers,
    model_roles,
    model_seeds,
    model_spec_options,
    retrain_epochs,
    retrains,
    unit_groups,
)

try:
    with warnings.catch_warnings(record=True) as _warned:
        warnings.simplefilter("always", ConfigWarning)
        _validated = validate(config)
except ConfigError as exc:
    sys.exit(f"Error: {exc}")
for _warning in _warned:  # each ConfigWarning once, when Snakemake plans (not again in every job)
    if not issubclass(_warning.category, ConfigWarning):
        warnings.showwarning(_warning.message, _warning.category, _warning.filename, _warning.lineno)
    elif workflow.is_main_process:
        print(f"Warning: {_warning.message}", file=sys.stderr)
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


# Params hold exactly what changes a rule's output (docs/configuration.md: "What reruns what").
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


TRUST = f"{MODEL_DIR}/trust.parquet"
STRESS_INPUTS = {
    "checkpoint": CHECKPOINT,
    "testset": f"{RESULTS}/{{dataset}}/testset.pt",
    "adversarial": f"{RUN_DIR}/adversarial/epoch{{epoch}}.pt",
    # no stress job starts before the trust check (which fails with trust.require and an unusable
    # checkpoint); ancient: re-judging trust (trust.alpha) changes flags downstream, not a stress table
    "trust": ancient(TRUST),
}


def prerequisite_paths(test):
    """File name → path of every file the prerequisites of ``test`` make (StressTest.inputs)."""
    return {name: f"{RUN_DIR}/{path}" for name, path in test.inputs.items()}


def unit_table(table):
    """The path of one unit's ``table`` of one checkpoint (a stress test's output)."""
    return f"{RUN_DIR}/{table}/epoch{{epoch}}/{{layer}}.parquet"


def units_of(test, model):
    """The units stress test ``test`` (a name in STRESS_TESTS) runs on for ``model``."""
    return STRESS_TESTS[test].units(config, model)


def single_unit_models(test):
    """A regex of the models whose ``test`` jobs run one unit each (``sweep.layers_per_job`` 1,
    the SLURM profile's choice: the analysis fans out over a cluster); "(?!)" matches nothing."""
    return (
        "|".join(re.escape(m) for m in MODELS if all(len(group) == 1 for group in unit_groups(config, units_of(test, m))))
        or "(?!)"
    )


def grouped_jobs(test):
    """(model, part, units) of every multi-unit job of ``test`` (``sweep.layers_per_job``)."""
    for model in MODELS:
        groups = unit_groups(config, units_of(test, model))
        if any(len(group) > 1 for group in groups):
            for part, units in enumerate(groups):
                yield model, part, units


def test_epochs(test, model):
    """The checkpoint epochs (as in paths) stress test ``test`` runs on for ``model``."""
    chosen = STRESS_TESTS[test].epochs
    return epochs_of(model) if chosen is None else [f"{e:03d}" for e in chosen(config, model)]


def test_data(test):
    """Params function: the dataset keys a training stress test loads its training split with."""
    return data_params("train") if STRESS_TESTS[test].trains else lambda wildcards: None


def remade_if_damaged(paths):
    """``paths``, each existing one checked to be a whole Parquet file: a damaged one (truncated,
    overwritten) is removed with one line saying so, so that Snakemake remakes it like a missing
    one and reruns what reads it — never a reading job failing on it and taking its valid output
    with it. A dry run only says what a run would remove. Each file is checked once while a run
    is planned, however many input functions list it."""
    for path in paths:
        if path in CHECKED_TABLES:
            continue
        CHECKED_TABLES.add(path)
        if os.path.exists(path) and not parquet_intact(path):
            if workflow.dryrun:
                logger.warning(f"{path}: damaged (not a whole Parquet file); a run removes and remakes it")
            else:
                os.remove(path)
                logger.warning(f"{path}: damaged (not a whole Parquet file): removed, to be remade")
    return paths


CHECKED_TABLES = set()  # the tables remade_if_damaged has checked while this run is planned


def unit_paths(test, table, dataset, model, seed, epoch):
    """Every unit's ``table`` of one checkpoint."""
    return expand(unit_table(table), dataset=dataset, model=model, seed=seed, epoch=epoch, layer=units_of(test, model))


def table_owner(table):
    """The stress test that writes per-unit ``table``."""
    return next(test for test in STRESS_TESTS.values() if table in test.tables)


def model_unit_paths(table, dataset, model):
    """Every unit's ``table`` of one (dataset, model), all seeds and checkpoints."""
    test = table_owner(table).name
    return [
        path
        for seed in model_seeds(config, model)
        for epoch in test_epochs(test, model)
        for path in unit_paths(test, table, dataset, model, seed, epoch)
    ]


def collected_units(table):
    """Input function: :func:`model_unit_paths`, damaged ones removed (:func:`remade_if_damaged`)."""
    return lambda wildcards: remade_if_damaged(model_unit_paths(table, wildcards.dataset, wildcards.model))


def ranked_tables(wildcards):
    """The collected table of every rank family the workflow makes for this (dataset, model)."""
    planned = planned_tables(wildcards.dataset, wildcards.model)
    return {
        family["table"]: f"{RESULTS}/{wildcards.dataset}/{wildcards.model}/{family['table']}.parquet"
        for family in rank_families()
        if family["table"] in planned
    }


def epsilon_epochs(wildcards):
    """The epochs whose checkpoints the ε search runs on (``epsilon.scope``)."""
    return epsilon_search_epochs(config["epsilon"]["scope"], model_epochs(config, wildcards.model))


def epsilon_checkpoints(wildcards):
    return expand(CHECKPOINT, epoch=[f"{e:03d}" for e in epsilon_epochs(wildcards)], **wildcards)


def checkpoint_sweeps(wildcards):
    """Every unit's sweep table of one checkpoint (what retraining labels layers from), damaged
    ones removed (:func:`remade_if_damaged`)."""
    return remade_if_damaged(unit_paths("sweep", "sweep", wildcards.dataset, wildcards.model, wildcards.seed, wildcards.epoch))


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
    return {key: config["figures"][key] for key in ("dpi", *FIGURES[figure].options)}


def pairs():
    """Every (dataset, model) the workflow analyses: trained models on every dataset with a
    training split, a given model on its own dataset."""
    return [(dataset, model) for dataset in DATASETS for model in MODELS if dataset in model_datasets(config, model)]


def dataset_models(dataset):
    return [m for d, m in pairs() if d == dataset]


def model_dataset_list(model):
    return [d for d, m in pairs() if m == model]


def stress_tables(model):
    """The collected tables and summaries of every stress test that runs on some unit of ``model``."""
    return [
        table
        for test in STRESS_TESTS.values()
        if test.units(config, model)
        for table in [*test.tables, *(summary.name for summary in test.summaries)]
    ]


def planned_tables(dataset, model):
    """Every collected table the workflow makes for one (dataset, model)."""
    tables = ["epsilon", "trust", "scores", "agreement", "verdict"] + stress_tables(model)
    tables += ["retrain", "retrain_summary"] if retrains(config, dataset, model) else []
    return tables


def model_tables(dataset, model, table):
    """``table`` of one (dataset, model) where it exists (retraining needs a training split)."""
    return [f"{RESULTS}/{dataset}/{model}/{table}.parquet"] if table in planned_tables(dataset, model) else []


def model_figures(dataset, model):
    """Every model figure whose tables the workflow makes for one (dataset, model)."""
    made = set(planned_tables(dataset, model))
    figures = [name for name in figure_names("model") if set(FIGURES[name].tables) <= made]
    return expand(f"{FIGURE_DIR}/{{figure}}.png", dataset=dataset, model=model, figure=figures)


def unit_tables(dataset, model):
    """Every per-unit table of one (dataset, model): every stress test's tables, all seeds and
    checkpoints. Targets of the default run, so that a damaged one removed while planning
    (:func:`remade_if_damaged`) is remade like any missing result, not left missing because
    what reads it looks up to date."""
    return [
        path
        for test in STRESS_TESTS.values()
        if units_of(test.name, model)
        for table in test.tables
        for path in model_unit_paths(table, dataset, model)
    ]


def run_files(dataset, model):
    """Every seed's checkpoints and adversarial sets of one (dataset, model): targets of the
    default run, so that a deleted one is remade at the next run (with what reads it) instead
    of when some later change needs it and then reruns everything downstream."""
    runs = {"dataset": dataset, "model": model, "seed": model_seeds(config, model), "epoch": epochs_of(model)}
    return expand(CHECKPOINT, **runs) + expand(STRESS_INPUTS["adversarial"], **runs)


def checked_targets(wildcards):
    """Input function of the default target: :func:`all_targets`, every collected and per-unit
    table among them checked (:func:`remade_if_damaged`) while the run is planned."""
    targets = all_targets()
    remade_if_damaged([path for path in targets if path.endswith(".parquet")])
    return targets


def all_targets():
    targets = []
    for dataset, model in pairs():
        targets += [f"{RESULTS}/{dataset}/{model}/{table}.parquet" for table in planned_tables(dataset, model)]
        targets += unit_tables(dataset, model) + run_files(dataset, model)
        targets += model_figures(dataset, model)
    targets += expand(f"{RESULTS}/figures/{{dataset}}/compare_models.png", dataset=DATASETS)
    targets += expand(f"{RESULTS}/figures/compare_datasets/{{model}}.png", model=MODELS)
    targets += [f"{RESULTS}/reproduction/claims.parquet", f"{RESULTS}/reproduction/claims.html"]
    return targets


VERDICT_TABLES = ("scores", "criticality", "triage_drops", "targeting", "semirobust_scores")


def verdict_inputs(wildcards):
    """The collected tables the verdict reads that this (dataset, model) has."""
    planned = planned_tables(wildcards.dataset, wildcards.model)
    return {
        table: f"{RESULTS}/{wildcards.dataset}/{wildcards.model}/{table}.parquet" for table in VERDICT_TABLES if table in planned
    }
