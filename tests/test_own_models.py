"""A researcher's own model and images, end to end: given weights of a factory-built CNN on a
tiny ImageFolder (with a train split: retrained) and on a test-only npz (not retrained), with
no training job anywhere."""

import os

import numpy as np
import pandas as pd
import pytest
import torch
from factories import small_cnn
from PIL import Image
from workflow_helpers import ROOT, planned_jobs, snakemake

from fragility.artifacts import Checkpoint

CLASSES = ("bars", "columns", "diagonal")


def pattern_images(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8×8 grayscale images whose class is where the bright pixels are, with noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(len(CLASSES)):
        for _ in range(n_per_class):
            image = rng.uniform(0, 0.4, (8, 8))
            if label == 0:
                image[rng.integers(0, 8)] += 0.6
            elif label == 1:
                image[:, rng.integers(0, 8)] += 0.6
            else:
                image[np.arange(8), (np.arange(8) + rng.integers(0, 8)) % 8] += 0.6
            images.append(np.rint(image.clip(0, 1) * 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels)


def trained_weights(x: np.ndarray, y: np.ndarray) -> dict:
    """A small CNN trained outside the workflow, as a user brings it."""
    torch.manual_seed(0)
    model = small_cnn(len(CLASSES))
    inputs = (torch.from_numpy(x).float().unsqueeze(1) / 255 - 0.5) / 0.25
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), torch.from_numpy(y)).backward()
        optimizer.step()
    return model.eval().state_dict()


def given_model_files(folder):
    """The trained CNN's weights (cnn.pt), held-out test images (held_out.npz) and the default
    config in ``folder``: (the weights, the held-out images and labels)."""
    x, y = pattern_images(12, 1)
    weights = trained_weights(x, y)
    torch.save(weights, folder / "cnn.pt")
    x, y = pattern_images(6, 3)
    np.savez(folder / "held_out.npz", x_test=x[..., None], y_test=y)  # N×H×W×C uint8
    (folder / "config").mkdir()
    (folder / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
    return weights, x, y


def test_a_given_model_on_test_only_images_is_scored_with_its_own_weights(tmp_path):
    """The cheap form of the run below: one given model on a test-only npz, up to its score
    table. No training job; the checkpoint holds the user's weights; the unfiltered accuracy is
    the user's network's, computed here by hand; every Conv2d/Linear layer and __global__ is
    scored for each filter."""
    weights, x, y = given_model_files(tmp_path)
    (tmp_path / "overrides.yaml").write_text("""
datasets:
  - {name: held_out, npz: held_out.npz}
models:
  - {name: cnn, architecture: "factories:small_cnn", weights: cnn.pt, dataset: held_out, mean: [0.5], std: [0.25]}
sweep: {steps: 4}
scores: {bootstrap: 20}
semirobust: {splits: []}
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}  # where the user's factory lives
    target = "results/held_out/cnn/scores.parquet"
    result = snakemake(tmp_path, "--cores", "2", target, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule given_model:" in result.stdout + result.stderr and not (tmp_path / "results" / "logs" / "train").exists()
    checkpoint = Checkpoint.read(tmp_path / "results/held_out/cnn/seed0/checkpoints/epoch000.pt")
    assert checkpoint.epoch == 0 and all(torch.equal(checkpoint.model_state[f"net.{k}"], v) for k, v in weights.items())
    model = small_cnn(len(CLASSES))
    model.load_state_dict(weights)
    with torch.no_grad():
        right = model.eval()((torch.from_numpy(x).float().unsqueeze(1) / 255 - 0.5) / 0.25).argmax(1) == torch.from_numpy(y)
    sweep = pd.read_parquet(tmp_path / "results/held_out/cnn/sweep.parquet")
    assert (sweep["acc_clean_unfiltered"] == right.double().mean().item()).all() and right.double().mean() > 0.5
    scores = pd.read_parquet(tmp_path / target)
    assert set(zip(scores["layer"], scores["filter"])) == {
        (layer, name) for layer in ("0", "3", "8", "__global__") for name in ("h1", "h2", "h3", "combined")
    }
    assert set(scores["epoch"]) == {0} and scores["score_clean"].notna().all()


@pytest.fixture(scope="module")
def own_model_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("own")
    for split, seed in (("train", 1), ("test", 2)):
        x, y = pattern_images(12 if split == "train" else 8, seed)
        for i, (image, label) in enumerate(zip(x, y)):
            folder = workdir / "images" / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, "L").save(folder / f"{i:03d}.png")
    given_model_files(workdir)
    (workdir / "overrides.yaml").write_text("""
datasets:
  - {name: patterns, imagefolder: images, channels: 1}
  - {name: held_out, npz: held_out.npz}
models:
  - {name: cnn, architecture: "factories:small_cnn", weights: cnn.pt, dataset: patterns, mean: [0.5], std: [0.25]}
  - {name: cnn_held_out, architecture: "factories:small_cnn", weights: cnn.pt, dataset: held_out, mean: [0.5], std: [0.25]}
sweep: {steps: 4}
scores: {bootstrap: 20}
retrain: {epochs: 1}
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}  # where the user's factory lives
    plan = snakemake(workdir, "-n", env=env)
    assert plan.returncode == 0, plan.stderr[-3000:]
    result = snakemake(workdir, "--cores", "2", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, planned_jobs(plan)


@pytest.mark.slow  # a whole workflow run on the user's own models and data
def test_given_models_are_never_trained(own_model_run):
    _, jobs = own_model_run
    assert "train" not in jobs and jobs["given_model"] == 2
    assert jobs["retrain"] == 1  # the ImageFolder has a train split; the npz does not


@pytest.mark.slow
def test_given_checkpoint_holds_the_users_weights(own_model_run):
    workdir, _ = own_model_run
    checkpoint = Checkpoint.read(workdir / "results/patterns/cnn/seed0/checkpoints/epoch000.pt")
    weights = torch.load(workdir / "cnn.pt", weights_only=True)
    assert checkpoint.epoch == 0 and checkpoint.model_spec.architecture == "factories:small_cnn"
    assert all(torch.equal(checkpoint.model_state[f"net.{k}"], v) for k, v in weights.items())


@pytest.mark.slow
def test_every_layer_of_the_given_model_is_scored(own_model_run):
    workdir, _ = own_model_run
    for dataset, model in (("patterns", "cnn"), ("held_out", "cnn_held_out")):
        scores = pd.read_parquet(workdir / f"results/{dataset}/{model}/scores.parquet")
        assert set(scores["layer"]) == {"0", "3", "8", "__global__"}
        assert set(scores["seed"]) == {0} and set(scores["epoch"]) == {0}
        sweep = pd.read_parquet(workdir / f"results/{dataset}/{model}/sweep.parquet")
        assert (sweep["acc_clean_unfiltered"] > 0.5).all()  # the given weights, not a fresh init
    criticality = pd.read_parquet(workdir / "results/patterns/cnn/criticality.parquet")
    assert set(criticality["perturbation"]) == {"rerandom"}  # a given model has no initial state to go back to


@pytest.mark.slow
def test_retraining_runs_only_where_there_is_a_train_split(own_model_run):
    workdir, _ = own_model_run
    retrain = pd.read_parquet(workdir / "results/patterns/cnn/retrain.parquet")
    assert set(retrain["branch"]) == {"regular", "selective", "selective_whitebox"} and set(retrain["epoch"]) == {0}
    assert not (workdir / "results/held_out/cnn_held_out/retrain.parquet").exists()
    claims = pd.read_parquet(workdir / "results/reproduction/claims.parquet")
    assert set(claims["model"]) == {"cnn", "cnn_held_out"}
    assert (workdir / "results/figures/patterns/cnn/local_scores.png").stat().st_size > 0
    assert not (workdir / "results/figures/held_out/cnn_held_out/retrain.png").exists()
