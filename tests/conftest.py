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
