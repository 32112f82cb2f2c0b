"""Shared fixtures: the embedded digits data and a quickly trained linear classifier."""

import pytest
import torch
from torch import nn

from fragility.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def small_digits():
    return load_dataset("digits", max_train=300, max_test=120, seed=0)


@pytest.fixture(scope="session")
def linear_digits_model(digits):
    """Softmax regression on 8x8 digits: trained in a second, about 95% test accuracy."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(digits.x_train), digits.y_train).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One complete run of the workflow on config/tiny.yaml, shared by the workflow tests."""
    from workflow_helpers import scratch_workdir, snakemake

    workdir = scratch_workdir(tmp_path_factory.mktemp("tiny"))
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def stage_files(tmp_path_factory):
    """A checkpoint, test set and adversarial set on disk, as the workflow's stress jobs get them."""
    from fragility.artifacts import AdversarialSet, Checkpoint, ModelSpec, TestSet, TrainConfig

    folder = tmp_path_factory.mktemp("stage")
    torch.manual_seed(0)
    spec = ModelSpec("resnet18", 10, 1, None, [0.5], [0.25], "plain", "kaiming_uniform")
    model = spec.build().eval()
    config = TrainConfig(epochs=1, checkpoint_every=1)
    Checkpoint.capture(model, config.optimizer(model.parameters()), 1, 0, torch.Generator(), spec, config).save(
        folder / "checkpoint.pt"
    )
    x = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(24) % 10
    TestSet(x, y, 10).save(folder / "testset.pt")
    AdversarialSet((x + 0.1).clamp(0, 1), y, 0.1).save(folder / "adversarial.pt")
    return folder
