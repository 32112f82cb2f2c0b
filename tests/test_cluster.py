"""The workflow under a real (local, single-node) SLURM through profiles/slurm.

CI starts SLURM with tests/cluster/start-slurm.sh when it runs as root (see the Makefile);
elsewhere these tests are skipped with the reason.
"""

import re
import shutil
import subprocess
import threading
import time

import pandas as pd
import pytest
from workflow_helpers import ROOT, TINY_SCORES, scratch_workdir, snakemake_command

# What a site changes for this cluster: no accounting (squeue for status), no account, one
# partition, no GPUs, a 2-core node, the train threads of the local run it is compared with.
CI_OVERRIDES = [
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "5",
    "--latency-wait",
    "5",
    "--seconds-between-status-checks",  # a test's jobs take seconds: poll often (a site's 10 s would double the run)
    "2",
    "--jobs",
    "4",
    "--cores",
    "2",
    "--default-resources",
    "slurm_partition=main",
    "runtime=30",
    "mem_mb=1000",
    "--set-resources",
    "train:gpu=0",
    "--set-threads",
    "train=1",
    "retrain=1",
]


def slurm_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return result.returncode == 0 and any(state in result.stdout for state in ("idle", "mixed", "allocated"))


pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not slurm_is_up(), reason="no local SLURM: as root, run tests/cluster/start-slurm.sh start (CI does)"),
]


def cancel_first_sweep_job(done: threading.Event, cancelled: list):
    """Fault injection: scancel the first running sweep job once; Snakemake must retry it."""
    while not done.is_set() and not cancelled:
        listing = subprocess.run(
            ["squeue", "-h", "-t", "running", "-O", "JobID,StdOut:200"], capture_output=True, text=True
        ).stdout
        for line in listing.splitlines():
            job, _, log = line.strip().partition(" ")
            if "sweep" in log:
                time.sleep(2)
                subprocess.run(["scancel", job], check=False)
                cancelled.append(job)
                return
        time.sleep(0.5)


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    workdir = scratch_workdir(tmp_path_factory.mktemp("slurm"))
    # the target after a one-value option: --configfile before it and the overrides' last option take several
    command = snakemake_command(workdir, "--profile", str(ROOT / "profiles" / "slurm"), TINY_SCORES, *CI_OVERRIDES)
    done, cancelled = threading.Event(), []
    saboteur = threading.Thread(target=cancel_first_sweep_job, args=(done, cancelled), daemon=True)
    saboteur.start()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    done.set()
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, result, cancelled


def test_slurm_ran_the_jobs(slurm_run):
    _, result, _ = slurm_run
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", result.stdout + result.stderr)
    # testset, train, epsilon, 2 adversarial, the sweep group and its retry; tables run locally
    assert len(submitted) >= 7
    # the profile's sweep.layers_per_job 1: one Snakemake job per (checkpoint, unit: 3 layers and 2 blocks), grouped by 8 into SLURM jobs
    assert re.search(r"^sweep\s+10$", result.stdout + result.stderr, re.M), "the sweeps did not fan out per unit"
    states = dict(
        line.split()
        for line in subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i %T"], capture_output=True, text=True
        ).stdout.splitlines()
    )
    assert states.get(submitted[-1]) == "COMPLETED"  # squeue keeps finished jobs for MinJobAge


def test_a_cancelled_job_is_retried_and_the_run_completes(slurm_run):
    workdir, result, cancelled = slurm_run
    assert cancelled, "no sweep job was seen running"
    assert "Trying to restart" in result.stdout + result.stderr


def test_cluster_tables_equal_the_local_run(slurm_run, tiny_run):
    workdir, _, _ = slurm_run
    for table in ("sweep.parquet", "scores.parquet"):
        cluster = pd.read_parquet(workdir / "results" / "digits" / "resnet18" / table)
        local = pd.read_parquet(tiny_run / "results" / "digits" / "resnet18" / table)
        pd.testing.assert_frame_equal(cluster, local, check_exact=True)
