"""Fault injection: a killed run loses nothing and resumes to the same tables; memory bounds;
bad input (data, names, weights, filtered lists) is one line before any job."""

import base64
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from factories import small_cnn
from formats import write_imagefolder, write_mnist
from workflow_helpers import ROOT, TINY_SCORES, planned_jobs, scratch_workdir, snakemake, snakemake_command

from fragility.artifacts import CHECKPOINT_FORMAT, Checkpoint, ModelSpec, TrainConfig, WeightsError, read_weights
from fragility.config import ConfigError, ConfigWarning, given_model_spec
from fragility.stress import validate
from fragility.stress.semirobust import semirobust_units

TABLES = ["sweep.parquet", "scores.parquet"]


def start_snakemake(workdir, *args):
    return subprocess.Popen(
        snakemake_command(workdir, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def record(workdir, path):
    """Where Snakemake keeps the metadata record of output ``path``."""
    return workdir / ".snakemake" / "metadata" / base64.urlsafe_b64encode(str(path.relative_to(workdir)).encode()).decode()


def recorded_complete(workdir, path) -> bool:
    """Snakemake writes an output's metadata record only once its job has finished; a file
    renamed into place by a job killed before that is rerun, and rightly so."""
    return record(workdir, path).exists()


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


def test_a_sweep_job_killed_midway_resumes_to_the_same_tables(tiny_run, tmp_path):
    """The cheap form of the tests above, on a copy of the tiny run: epoch 2's sweep job (its
    five unit tables, memo and records removed) is killed with SIGKILL once it has renamed two
    units' tables into place and before it has finished; resumed with --rerun-incomplete, it
    reads the finished units back and writes every unit table bit for bit as the uninterrupted
    run did, every Parquet file whole and no temporary file left."""
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    sweeps = workdir / "results" / "digits" / "resnet18" / "seed0" / "sweep" / "epoch002"
    units = sorted(path.name for path in sweeps.glob("*.parquet"))
    for name in units:
        (sweeps / name).unlink()
        record(workdir, sweeps / name).unlink()
    shutil.rmtree(sweeps / ".memo")
    targets = [str((sweeps / name).relative_to(workdir)) for name in units]
    process = start_snakemake(workdir, "--cores", "2", *targets)
    try:
        wait_for(lambda: len(list(sweeps.glob("*.parquet"))) >= 2, timeout=300, poll=0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    interrupted = sorted(path.name for path in sweeps.glob("*.parquet"))
    assert 2 <= len(interrupted) < len(units), interrupted  # killed mid-way
    assert not any(recorded_complete(workdir, sweeps / name) for name in interrupted)
    shutil.rmtree(workdir / ".snakemake" / "locks")  # what --unlock removes (killed_and_resumed runs it): one start-up fewer
    resumed = snakemake(workdir, "--cores", "2", "--rerun-incomplete", *targets)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not list((workdir / "results").rglob("*.tmp"))  # leftovers of the killed writes (memo's included) are cleared
    for path in (workdir / "results").rglob("*.parquet"):
        pq.read_metadata(path)  # every Parquet file is whole
    log = (workdir / "results" / "logs" / "sweep" / "digits" / "resnet18" / "seed0" / "epoch002" / "part0.log").read_text()
    assert log.count("reused the tables of an earlier run") >= len(interrupted)  # not swept again
    assert sorted(path.name for path in sweeps.glob("*.parquet")) == units
    uninterrupted = tiny_run / sweeps.relative_to(workdir)
    for name in units:
        pd.testing.assert_frame_equal(pd.read_parquet(sweeps / name), pd.read_parquet(uninterrupted / name), check_exact=True)


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


# --- bad input: one line before any job ------------------------------------------------------


@pytest.fixture(autouse=True)
def private_check_cache(tmp_path, monkeypatch):
    """The remembered dataset checks of each test in its own folder."""
    monkeypatch.setenv("FRAGILITY_CACHE_DIR", str(tmp_path / "cache"))


def config_error(config: dict) -> str:
    """The one line :func:`fragility.stress.validate` (what the Snakefile runs when it is read) refuses ``config`` with."""
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert "\n" not in str(error.value)
    return str(error.value)


def npz_dataset(path, x_test=None, y_test=None, **arrays) -> dict:
    """An npz dataset entry: 8 training and 4 test images of 2 classes unless given otherwise."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((8, 1, 6, 6), dtype=np.float32),
        "y_train": np.arange(8) % 2,
        "x_test": rng.random((4, 1, 6, 6), dtype=np.float32) if x_test is None else x_test,
        "y_test": np.arange(4) % 2 if y_test is None else y_test,
        **arrays,
    }
    np.savez(path, **arrays)
    return {"name": "mine", "npz": str(path)}


def test_nan_pixels_are_refused_before_any_job(tmp_path):
    entry = npz_dataset(tmp_path / "d.npz", x_test=np.full((4, 1, 6, 6), np.nan, np.float32))
    assert config_error({"datasets": [entry]}) == (
        f"config key 'datasets.0': {tmp_path / 'd.npz'}: x_test holds 144 NaN or infinite pixel values (the first in "
        "image 0); replace them or drop those images"
    )


def test_pixels_out_of_range_are_refused_before_any_job(tmp_path):
    x = np.random.default_rng(0).integers(0, 763, (4, 1, 6, 6))
    x[0, 0, 0, :2] = [0, 762]
    entry = npz_dataset(tmp_path / "d.npz", x_test=x)
    assert config_error({"datasets": [entry]}) == (
        f"config key 'datasets.0': {tmp_path / 'd.npz'}: x_test must be uint8 or float in [0, 1], found int64 in [0, 762]; "
        "store 0..255 values as uint8, or divide by the largest possible value and store float32"
    )


def test_labels_that_are_not_0_to_k_minus_1_are_refused(tmp_path):
    entry = npz_dataset(tmp_path / "d.npz", y_train=np.array([0, 1, 2, 99] * 2), y_test=np.array([0, 1, 2, 99]))
    assert config_error({"datasets": [entry]}) == (
        f"config key 'datasets.0': {tmp_path / 'd.npz'}: y_train and y_test: the labels (0, 1, 2, 99) would make 100 "
        "classes, 96 of them without any image (3, 4, 5, 6, 7, 8, … (96 in all)); number the classes 0..3 "
        "(np.unique(y, return_inverse=True))"
    )


def test_npz_lengths_that_differ_are_refused_from_the_headers(tmp_path):
    entry = npz_dataset(tmp_path / "d.npz", y_test=np.array([0, 1, 0]))
    assert config_error({"datasets": [entry]}) == (
        f"config key 'datasets.0': {tmp_path / 'd.npz'}: x_test holds 4 images but y_test 3 labels; give one label per image"
    )


def test_an_imagefolder_of_one_class_is_refused(tmp_path):
    write_imagefolder(tmp_path / "images", classes=("cat",), per_class=(3,))
    assert config_error({"datasets": [{"name": "mine", "imagefolder": str(tmp_path / "images")}]}) == (
        f"config key 'datasets.0': {tmp_path / 'images' / 'train'}: one class folder ('cat'); a classifier needs at least "
        "2 classes, one folder of images each"
    )


def test_imagefolder_images_of_mixed_sizes_are_refused(tmp_path):
    from PIL import Image

    write_imagefolder(tmp_path / "images")
    Image.new("RGB", (5, 5)).save(tmp_path / "images" / "train" / "dog" / "000.png")
    assert config_error({"datasets": [{"name": "mine", "imagefolder": str(tmp_path / "images")}]}) == (
        f"config key 'datasets.0': {tmp_path / 'images' / 'train' / 'dog' / '000.png'}: image of size (5, 5), expected "
        f"(10, 12) like {tmp_path / 'images' / 'test' / 'cat' / '000.png'} (every image must be of one size, or set "
        "image_size to resize them)"
    )


def test_a_class_the_test_split_lacks_is_one_warning(tmp_path):
    entry = npz_dataset(tmp_path / "d.npz", y_train=np.arange(8) % 3, y_test=np.array([0, 1, 0, 1]))
    with pytest.warns(ConfigWarning) as warned:
        validate({"datasets": [entry], "semirobust": {"splits": []}})
    assert [str(w.message) for w in warned] == [
        f"config key 'datasets.0': {tmp_path / 'd.npz'}: y_test: no test image of class 2 (1 of 3 classes); "
        "the analysis measures the others only"
    ]


def test_an_empty_cifar10_data_dir_is_refused(tmp_path):
    assert config_error({"datasets": ["cifar10"], "data_dir": str(tmp_path)}) == (
        f"config key 'data_dir': cifar10: {tmp_path / 'cifar-10-batches-py' / 'batches.meta'}: missing; extract "
        f"cifar-10-python.tar.gz into {tmp_path}"
    )


def test_a_truncated_idx_file_is_refused(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    path = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    assert config_error({"datasets": ["mnist"], "data_dir": str(tmp_path)}) == (
        f"config key 'data_dir': mnist: {path}: truncated IDX file, header declares shape (20,) (20 bytes) but 17 bytes "
        "follow; download it again"
    )


@pytest.mark.parametrize("name", ["tests/factories:small_cnn", "factories:small cnn", "factories:small_cnn\x1b"])
def test_a_factory_name_that_is_no_python_name_is_refused(name):
    assert config_error({"models": [name]}) == (
        f"config key 'models.0': {name!r} is invalid; a model factory is package.module:callable, Python names joined by "
        "dots (e.g. mynets.cnn:small_cnn), no path: put the module's folder on PYTHONPATH and name the module"
    )


def test_semirobust_splits_say_what_they_drop(tmp_path):
    with pytest.warns(ConfigWarning) as warned:
        config = validate({"semirobust": {"splits": [4, 999]}})
    assert [str(w.message) for w in warned] == [
        "config key 'semirobust.splits': [999] dropped for resnet18, which has 21 Conv2d/Linear layers"
    ]
    assert semirobust_units(config, "resnet18") == ["k4"]  # the split that fits still runs
    assert config_error({"semirobust": {"splits": [999]}}) == (
        "config key 'semirobust.splits': [999] leaves no split: resnet18 has 21 Conv2d/Linear layers; give splits below "
        "21, or [] for no semirobust analysis"
    )
    torch.save(small_cnn(3).state_dict(), tmp_path / "w.pt")
    small = given_model(tmp_path, tmp_path / "w.pt")
    del small["semirobust"]  # the default splits, 4 and 12, on a network of 3 layers: said, not refused
    with pytest.warns(ConfigWarning) as warned:
        validate(small)
    assert [str(w.message) for w in warned] == [
        "config key 'semirobust.splits': [4, 12] (the default) all dropped for cnn, which has 3 Conv2d/Linear layers: "
        "it gets no semirobust analysis (give splits below 3, or [] for none)"
    ]


def given_model(tmp_path, weights_path) -> dict:
    """A config analysing a small CNN given as ``weights_path`` on a 3-class grayscale npz."""
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x_train=rng.integers(0, 256, (6, 1, 6, 6), dtype=np.uint8),
        y_train=np.arange(6) % 3,
        x_test=rng.integers(0, 256, (3, 1, 6, 6), dtype=np.uint8),
        y_test=np.arange(3),
    )
    model = {"name": "cnn", "architecture": "factories:small_cnn", "weights": str(weights_path), "dataset": "mine"}
    return {"datasets": [{"name": "mine", "npz": str(tmp_path / "d.npz")}], "models": [model], "semirobust": {"splits": []}}


def test_a_pickled_model_is_refused_with_the_safe_way_to_save_it(tmp_path):
    torch.save(small_cnn(3), tmp_path / "w.pt")  # the whole module pickled, not its state_dict
    message = config_error(given_model(tmp_path, tmp_path / "w.pt"))
    assert message == (
        f"config key 'models.0': {tmp_path / 'w.pt'}: not a loadable state_dict: it holds the Python object "
        "torch.nn.modules.container.Sequential, and loading that could run code from the file; re-save the weights "
        "alone with torch.save(model.state_dict(), path), or as .safetensors."
    )
    assert "weights_only=False" not in message


def test_a_checkpoint_of_this_tool_is_accepted_as_weights(tmp_path):
    torch.manual_seed(0)
    spec = ModelSpec("cnn", 3, 1, None, [0.3], [0.2], "plain", "kaiming_uniform", "factories:small_cnn")
    model, train = spec.build(), TrainConfig(epochs=1, checkpoint_every=1)
    Checkpoint.capture(model, train.optimizer(model.parameters()), 1, 0, torch.Generator(), spec, train).save(tmp_path / "c.pt")
    config = validate(given_model(tmp_path, tmp_path / "c.pt"))
    given = given_model_spec(config, "cnn")
    assert given["mean"] == [0.3] and given["std"] == [0.2]  # its normalisation comes with it
    made = Checkpoint.given(ModelSpec(**given), tmp_path / "c.pt", train).model()
    x = torch.rand(2, 1, 6, 6)
    with torch.inference_mode():
        assert torch.equal(made(x), model.eval()(x))


def test_a_checkpoint_whose_network_a_given_model_cannot_rebuild_is_named(tmp_path):
    state = {"format": CHECKPOINT_FORMAT, "model_spec": {"stem": "cifar", "image_size": 32}, "model_state": {}}
    torch.save(state, tmp_path / "c.pt")
    with pytest.raises(WeightsError) as error:
        read_weights(tmp_path / "c.pt")
    assert str(error.value) == (
        f"{tmp_path / 'c.pt'}: a checkpoint of this tool whose network has stem 'cifar' and image_size 32; a given model "
        "is built with stem plain at its images' own size, so analyse this one in the run that trained it"
    )


@pytest.mark.slow
def test_a_warning_is_one_console_line_at_planning(tmp_path):
    """The real Snakefile: a dropped split is one line on the console, once, and the splits that
    fit are still planned."""
    workdir = scratch_workdir(tmp_path)
    overrides = yaml.safe_load((workdir / "overrides.yaml").read_text())
    overrides["semirobust"]["splits"] = [4, 999]
    (workdir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    result = snakemake(workdir, "-n", TINY_SCORES.replace("scores", "semirobust"))
    assert result.returncode == 0, result.stderr[-2000:]
    line = "Warning: config key 'semirobust.splits': [999] dropped for resnet18, which has 21 Conv2d/Linear layers"
    assert (result.stdout + result.stderr).splitlines().count(line) == 1
    assert planned_jobs(result)["semirobust"] == 1  # k4, from the last checkpoint
