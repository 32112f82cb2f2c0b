"""The import paths users' notebooks rely on keep working after the package's layout changed."""

import importlib

import pytest

PUBLIC = {
    "fragility.sweep": ["sweep", "SweepOptions", "predict_variants", "predict_removals", "SWEEP_COLUMNS"],
    "fragility.scores": ["score_table", "baseline", "scaled_performance", "clean_score", "label", "SCORE_COLUMNS"],
    "fragility.nodes": ["kernel_dropout", "targeting", "analyse_kernels", "KERNEL_COLUMNS"],
    "fragility.attack": ["pgd", "fgsm", "search_epsilon", "Attack", "ATTACKS"],
    "fragility.train": ["load_checkpoint"],
    "fragility.models": ["list_layers"],
}
HOMES = {
    ("fragility.sweep", "sweep"): "fragility.stress.synaptic",
    ("fragility.sweep", "SweepOptions"): "fragility.engine.sweep",
    ("fragility.scores", "score_table"): "fragility.scoring.tables",
    ("fragility.nodes", "kernel_dropout"): "fragility.stress.kernels",
}


@pytest.mark.parametrize("module", list(PUBLIC))
def test_public_names_import_from_their_first_paths(module):
    imported = importlib.import_module(module)
    missing = [name for name in PUBLIC[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lost {missing}"


@pytest.mark.parametrize(("path", "home"), list(HOMES.items()))
def test_old_paths_are_the_new_objects_not_copies(path, home):
    module, name = path
    assert getattr(importlib.import_module(module), name) is getattr(importlib.import_module(home), name)
