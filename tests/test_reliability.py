"""Fault injection: a killed run loses nothing and resumes to the same tables; memory bounds."""

import base64
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
from workflow_helpers import ROOT, TINY_SCORES, planned_jobs, scratch_workdir, snakemake, snakemake_command

TABLES = ["sweep.parquet", "scores.parquet"]


def start_snakemake(workdir, *args):
    return subprocess.Popen(
        snakemake_command(workdir, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def recorded_complete(workdir, path) -> bool:
    """Snakemake writes an output's metadata record only once its job has finished; a file
    renamed into place by a job killed before that is rerun, and rightly so."""
    record = base64.urlsafe_b64encode(str(path.relative_to(workdir)).encode()).decode()
    return (workdir / ".snakemake" / "metadata" / record).exists()


def wait_for(condition, timeout=600, poll=0.2):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the workflow did not reach the expected state")
        time.sleep(poll)


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """Kill the whole tiny run with SIGKILL while a sweep job (one per checkpoint: it sweeps
    every layer) has written some of its tables but not all, then resume it."""
    workdir = scratch_workdir(tmp_path_factory.mktemp("killed"))
    sweeps = workdir / "results" / "digits" / "resnet18" / "seed0" / "sweep"
    process = start_snakemake(
        workdir, "--cores", "2", TINY_SCORES
    )  # the same threads as the clean run below: CPU results depend on them
    # a layer table renamed into place by a job Snakemake has not recorded complete: the job is mid-way
    wait_for(lambda: any(not recorded_complete(workdir, p) for p in sweeps.glob("*/*.parquet")), poll=0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    interrupted = sorted({p.parent.name for p in sweeps.glob("*/*.parquet") if not recorded_complete(workdir, p)})
    finished = sorted({p.parent.name for p in sweeps.glob("*/*.parquet")} - set(interrupted))
    assert snakemake(workdir, "--unlock").returncode == 0  # the lock a killed Snakemake leaves behind
    plan = planned_jobs(snakemake(workdir, "-n", "--rerun-incomplete", TINY_SCORES))
    resumed = snakemake(workdir, "--cores", "2", "--rerun-incomplete", TINY_SCORES)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return workdir, interrupted, finished, plan


@pytest.mark.slow
def test_no_partial_table_survives_a_kill(killed_and_resumed):
    workdir, interrupted, _, _ = killed_and_resumed
    assert interrupted, "the kill came before any sweep table was written"
    assert not list((workdir / "results").rglob(".*.tmp"))  # leftovers of the killed writes are cleared on rewrite
    for path in (workdir / "results").rglob("*.parquet"):
        pq.read_metadata(path)  # every Parquet file is whole


@pytest.mark.slow
def test_resume_redoes_no_completed_work(killed_and_resumed):
    workdir, interrupted, finished, plan = killed_and_resumed
    assert plan["sweep_resnet18_part0"] == 2 - len(finished)  # the checkpoints' jobs not recorded complete
    assert "train" not in plan
    logs = workdir / "results" / "logs" / "sweep" / "digits" / "resnet18" / "seed0"
    for epoch in interrupted:  # the layers an interrupted job had finished are read back, not swept again
        assert "reused the tables of an earlier run" in (logs / epoch / "part0.log").read_text()


@pytest.mark.slow
def test_resumed_run_equals_an_uninterrupted_one(killed_and_resumed, tiny_run):
    """Determinism on CPU: same seeds (and threads), bit-identical sweep and score tables."""
    workdir = killed_and_resumed[0]
    clean = tiny_run
    for table in TABLES:
        a = pd.read_parquet(workdir / "results" / "digits" / "resnet18" / table)
        b = pd.read_parquet(clean / "results" / "digits" / "resnet18" / table)
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_resnet50_layer_sweep_stays_under_4_gib(tmp_path):
    """One ResNet-50 layer, 1,000 images 3x32x32 (clean + adversarial), measured in a fresh process."""
    script = """
import resource, torch
from fragility.models import build_model
from fragility.stress.synaptic import sweep
torch.manual_seed(0)
model = build_model("resnet50", 10, 3, None, [0.5] * 3, [0.25] * 3).eval()
x = torch.rand(1000, 3, 32, 32); y = torch.randint(0, 10, (1000,))
sweep(model, "layer1.0.conv2", x, y, x.flip(0), steps=1, batch_size=250)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    peak_gib = int(result.stdout.split()[-1]) / 2**20
    assert peak_gib < 4, f"peak resident memory {peak_gib:.2f} GiB"
