"""The import paths users' notebooks rely on keep working after the package's layout changed;
the deprecated ones (``fragility.sweep``, ``.nodes``, ``.scores``) warn, naming the new paths,
and nothing of the project's own imports through them."""

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Deprecated shim -> the modules that define what it re-exports.
SHIMS = {
    "fragility.sweep": ["fragility.engine.sweep", "fragility.stress.synaptic"],
    "fragility.nodes": ["fragility.stress.kernels"],
    "fragility.scores": ["fragility.scoring.scores", "fragility.scoring.tables", "fragility.scoring.bootstrap"],
}
# The shims' own deprecation warnings, whichever test imports them first.
pytestmark = pytest.mark.filterwarnings(r"ignore:fragility\.(sweep|nodes|scores) is deprecated:DeprecationWarning")

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


def import_afresh(shim):
    """Run the shim's module code again (its warning fires once per import), as a plain
    ``import`` statement from this file would."""
    sys.modules.pop(shim, None)
    __import__(shim)
    return sys.modules[shim]


@pytest.mark.parametrize(("shim", "home"), [(shim, home) for shim, homes in SHIMS.items() for home in homes])
def test_importing_a_shim_warns_naming_the_new_path(shim, home):
    with pytest.warns(DeprecationWarning, match=re.escape(home)) as caught:
        import_afresh(shim)
    ours = [w for w in caught if issubclass(w.category, DeprecationWarning) and str(w.message).startswith(shim)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    message = str(ours[0].message)
    assert message.startswith(f"{shim} is deprecated") and "removed in the next release" in message
    assert ours[0].filename == __file__, "stacklevel=2 points at the importing line, not at the shim"


@pytest.mark.parametrize("shim", list(SHIMS))
def test_a_shim_re_exports_the_defining_modules_objects(shim):
    with pytest.warns(DeprecationWarning, match=re.escape(shim)):
        module = import_afresh(shim)
    homes = [importlib.import_module(home) for home in SHIMS[shim]]
    assert module.__all__
    for name in module.__all__:
        obj = getattr(module, name)
        found = [home.__name__ for home in homes if getattr(home, name, None) is obj]
        assert found, f"{shim}.{name} is none of {SHIMS[shim]}'s objects"
        if hasattr(obj, "__module__") and callable(obj):
            assert obj.__module__ in SHIMS[shim], f"{name} is defined in {obj.__module__}, not in {SHIMS[shim]}"


SHIM_PATH = re.compile(r"\bfragility\.(sweep|nodes|scores)\b")
SHIM_FILES = {ROOT / "fragility" / f"{name}.py" for name in ("sweep", "nodes", "scores")}


def package_of(path):
    """The package a file of fragility/ belongs to (for its relative imports); None elsewhere."""
    parts = path.relative_to(ROOT).parts
    return ".".join(parts[:-1]) if parts[0] == "fragility" else None


def shim_imports(path):
    """Every place a file reaches a shim: its dotted path in the source text (imports, qualified
    uses, strings run in subprocesses, docstrings) and imports the text cannot show as such
    (``from fragility import sweep``, relative imports inside the package)."""
    text = path.read_text(encoding="utf-8")
    found = [f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group()}" for m in SHIM_PATH.finditer(text)]
    if path.suffix != ".py":
        return found
    package = package_of(path)
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            if package is None:
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        found += [f"line {node.lineno}: imports {target}" for target in targets if target in SHIMS]
    return found


def test_the_projects_own_code_and_tests_never_import_through_the_shims():
    files = [
        *(ROOT / "fragility").rglob("*.py"),
        *(ROOT / "workflow" / "scripts").glob("*.py"),
        *(ROOT / "workflow").rglob("*.smk"),
        ROOT / "Snakefile",
        *(ROOT / "tests").rglob("*.py"),
    ]
    files = [f for f in files if f.is_file() and f not in SHIM_FILES and f != Path(__file__).resolve()]
    assert len(files) > 30
    offenders = {str(f.relative_to(ROOT)): hits for f in sorted(files) if (hits := shim_imports(f))}
    assert not offenders, f"import these names from their defining modules instead: {offenders}"
