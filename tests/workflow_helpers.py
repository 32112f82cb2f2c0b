"""Running the real workflow in a scratch folder, and checking what it wrote."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The tiny run up to its score table: retraining and figures add nothing to the tests that target it.
TINY_SCORES = "results/digits/resnet18/scores.parquet"


def scratch_workdir(tmp_path: Path, config: str = "config/tiny.yaml") -> Path:
    """A working directory holding the default config (where the Snakefile's ``configfile``
    looks: ``config/config.yaml``) and ``config`` as overrides."""
    (tmp_path / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    shutil.copy(ROOT / config, tmp_path / "overrides.yaml")
    return tmp_path


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The workflow, run in ``workdir`` with its overrides on top of the default config."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "overrides.yaml"),
        *args,
    ]


def snakemake(workdir: Path, *args: str, timeout: int = 1200, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(workdir, *args), capture_output=True, text=True, timeout=timeout, env=env)


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The job-count table a dry run prints, as {rule: count}."""
    counts, table = {}, False
    for line in result.stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            table = True
        elif table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts
