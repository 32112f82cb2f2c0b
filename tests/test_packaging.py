"""The package as a library declares itself: version ranges (exact versions only in
constraints.txt), timm as an extra, and a plain `pip install .` that keeps the torch, numpy
and pandas a researcher's environment already holds; the workflow deploys from the catalog
and is planned where Snakemake runs without torch."""

import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def constraints() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    return {name.lower(): version for name, version in (pin.split("==") for pin in pins)}


def test_dependencies_are_ranges_that_admit_the_tested_versions():
    pinned = constraints()
    requirements = [Requirement(r) for r in PROJECT["dependencies"]] + [
        Requirement(r) for extra in PROJECT["optional-dependencies"].values() for r in extra
    ]
    for requirement in requirements:
        assert not any(spec.operator == "==" for spec in requirement.specifier), f"{requirement}: pin it in constraints.txt"
        name = requirement.name.lower()
        assert name in pinned, f"{name} has no tested version in constraints.txt"
        assert requirement.specifier.contains(pinned[name]), f"{requirement} excludes the tested {pinned[name]}"
    assert {"timm", "safetensors"} <= {Requirement(r).name for r in PROJECT["optional-dependencies"]["timm"]}
    assert not {"timm", "safetensors"} & {Requirement(r).name for r in PROJECT["dependencies"]}
    assert PROJECT["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")


def env_pip_requirements() -> list[str]:
    env = yaml.safe_load((ROOT / "envs" / "fragility.yaml").read_text())
    return next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))


def test_the_rules_conda_env_installs_the_tested_versions_and_this_release():
    pinned = constraints()
    requirements = [Requirement(line) for line in env_pip_requirements()]
    (package,) = [r for r in requirements if r.name == PROJECT["name"]]
    assert str(package.specifier) == f"=={PROJECT['version']}", "envs/fragility.yaml installs another fragility"
    for requirement in requirements:
        if requirement is not package:
            (version,) = [spec.version for spec in requirement.specifier]
            assert pinned[requirement.name.lower()] == version, (
                f"envs/fragility.yaml pins {requirement}, constraints.txt {pinned[requirement.name.lower()]}"
            )


def test_citation_cites_the_tool_and_the_three_papers():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    urls = {reference["url"].rsplit("/", 1)[-1] for reference in citation["references"]}
    assert urls == {"2312.09821", "1801.04651", "2307.03803"}


def source_copy(folder: Path) -> Path:
    """The repository's sources, without the venv, results and build outputs."""
    ignored = shutil.ignore_patterns(".venv", ".git", "results", ".snakemake", "build", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, folder, ignore=ignored, symlinks=True)
    return folder


def venv_linking(folder: Path, left_out) -> Path:
    """A venv whose site-packages links every package of this one but those whose name starts
    with one of ``left_out`` (linked, not copied: no download)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    (packages,) = folder.glob("lib/python*/site-packages")
    for source in Path(site.getsitepackages()[0]).iterdir():
        if not source.name.lower().startswith(left_out):
            (packages / source.name).symlink_to(source)
    return folder / "bin" / "python"


def seed_github_cache(cache_home: Path, source: Path, repository: str, tag: str) -> None:
    """Snakemake clones a `github(...)` module's repository into its source cache once and reads
    a tag from that clone: a bare clone of ``source`` placed there stands in for GitHub."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(source)], check=True)
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "release"], check=True)
    subprocess.run([*git, "tag", tag], check=True)
    clone = cache_home / "snakemake" / "snakemake" / "source-cache" / "snakemake-git-cache" / "github.com" / repository
    clone.parent.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(clone)], check=True)


def test_a_workflow_deployed_from_github_runs_in_the_rules_env(tmp_path):
    """`snakedeploy deploy-workflow` copies config/ and declares workflow/Snakefile as a module;
    declared as snakedeploy declares a GitHub source (`github(..., path="workflow/Snakefile",
    tag=...)`, the repository served from Snakemake's source cache), the workflow is planned
    and runs real jobs in an environment that holds fragility the way
    envs/fragility.yaml installs it: the release's wheel, from its pip list, with no checkout on
    the path (each stage script runs from a cached copy of that one file)."""
    source, deployed = source_copy(tmp_path / "fragility"), tmp_path / "analysis"
    deploy = [
        str(Path(sys.executable).with_name("snakedeploy")),
        "deploy-workflow",
        str(source),
        str(deployed),
        "--tag",
        "v0.2.0",
    ]
    subprocess.run(deploy, check=True, capture_output=True, timeout=300, cwd=tmp_path)
    assert (deployed / "config" / "config.yaml").read_text() == (ROOT / "config" / "config.yaml").read_text()
    snakefile = deployed / "workflow" / "Snakefile"
    declared = snakefile.read_text()
    module = declared[declared.index("snakefile:") :].split("\n")[1].strip()
    assert 'configfile: "config/config.yaml"' in declared and module == '"workflow/Snakefile"', declared
    snakefile.write_text(declared.replace(module, 'github("someone/fragility", path="workflow/Snakefile", tag="v0.2.0")'))
    seed_github_cache(tmp_path / "cache", source, "someone/fragility", "v0.2.0")

    python = venv_linking(tmp_path / "env", ("fragility", "__editable__"))
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)]
    subprocess.run(build, check=True, timeout=600, cwd=tmp_path)
    (tmp_path / "requirements.txt").write_text("\n".join(env_pip_requirements()))
    install = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        str(wheels),
        "-r",
        "requirements.txt",
    ]
    subprocess.run(install, check=True, timeout=600, cwd=tmp_path)
    where = subprocess.run(
        [str(python), "-c", "import fragility; print(fragility.__file__)"], capture_output=True, text=True, cwd=tmp_path
    )
    assert where.stdout.startswith(str(tmp_path / "env")), where.stdout + where.stderr

    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    snakemake = [str(python), "-m", "snakemake", "--cores", "1"]
    run = subprocess.run(
        [*snakemake, "--configfile", "config/tiny.yaml", "--until", "testset"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=deployed,
        env=environment,
    )
    assert run.returncode == 0, run.stderr[-3000:] + "".join(p.read_text() for p in deployed.glob("results/logs/**/*.log"))
    assert (deployed / "results" / "digits" / "testset.pt").is_file()


TORCH_DISTRIBUTIONS = ("torch", "functorch", "torchgen", "nvidia", "triton", "timm", "safetensors")


def test_the_dag_is_planned_in_a_venv_without_torch(tmp_path):
    """Parsing the workflow imports no torch: in a venv without it, `snakemake -n` plans the
    default run's DAG exactly as it does beside torch (the torchvision structures come from
    fragility/architectures.json.gz)."""
    python = venv_linking(tmp_path / "venv", TORCH_DISTRIBUTIONS)  # a bare Snakemake env with the planning dependencies
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0
    dag = [
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(ROOT / "config" / "config.yaml"),
        "-n",
        "--dag",
    ]
    without = subprocess.run([str(python), *dag], capture_output=True, text=True, timeout=300)
    assert without.returncode == 0, without.stderr[-3000:]
    beside = subprocess.run([sys.executable, *dag], capture_output=True, text=True, timeout=300)
    assert without.stdout == beside.stdout and "sweep" in without.stdout and "triage" in without.stdout


@pytest.mark.slow
def test_pip_install_keeps_the_torch_numpy_and_pandas_already_installed(tmp_path):
    """A fresh venv holding the local torch and older numpy and pandas that the ranges allow:
    `pip install .` replaces none of them, `import fragility` works without timm, and the
    `timm` extra adds it (several minutes: torch is copied into the venv)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    held = {"torch": "2.14.1", "numpy": "1.26.4", "pandas": "2.2.3"}
    subprocess.run([*pip, *(f"{name}=={version}" for name, version in held.items())], check=True, timeout=1800)

    def versions():
        code = "import importlib.metadata as m; print({n: m.version(n) for n in ('torch', 'numpy', 'pandas')})"
        return eval(subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True).stdout)

    assert versions() == held
    source = source_copy(tmp_path / "fragility")  # building leaves build/ and *.egg-info beside the sources
    subprocess.run([*pip, str(source)], check=True, timeout=1800)
    assert versions() == held
    check = "import fragility.stress, importlib.util; assert importlib.util.find_spec('timm') is None"
    result = subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    missing = "from fragility.models import build_network\ntry:\n    build_network('timm/resnet10t', 10, 3)\nexcept Exception as e:\n    print(e)"
    said = subprocess.run([str(venv / "bin" / "python"), "-c", missing], capture_output=True, text=True, cwd=tmp_path).stdout
    assert "pip install 'fragility[timm]'" in said
    subprocess.run([*pip, f"{source}[timm]"], check=True, timeout=1800)
    assert versions() == held
    has_timm = subprocess.run([str(venv / "bin" / "python"), "-c", "import timm"], cwd=tmp_path)
    assert has_timm.returncode == 0
