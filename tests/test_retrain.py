import hashlib

import pandas as pd
import pytest
import torch

from fragility.artifacts import Checkpoint, load_checkpoint
from fragility.models import backbone
from fragility.retrain import layers_to_freeze, retrain
from fragility.train import ModelSpec, TrainConfig, train, train_one_epoch


@pytest.fixture(scope="module")
def checkpoint_path(small_digits, tmp_path_factory):
    """A ResNet-18 checkpoint after one epoch on the digits subset (Adam moments populated)."""
    path = tmp_path_factory.mktemp("retrain") / "ck.pt"
    train(
        ModelSpec.for_dataset("resnet18", small_digits),
        small_digits,
        0,
        TrainConfig(epochs=1, checkpoint_every=1),
        lambda e: path,
        device="cpu",
    )
    return path


def test_layers_to_freeze_uses_combined_difference_labels():
    scores = pd.DataFrame(
        {
            "layer": ["conv1", "conv1", "fc", "__global__", "layer1.0.conv1"],
            "filter": ["combined", "h1", "combined", "combined", "combined"],
            "label_diff": ["fragile", "robust", "fragile", "fragile", "antifragile"],
        }
    )
    assert layers_to_freeze(scores) == ["conv1", "fc"]


def test_frozen_layers_stay_bit_identical(small_digits, checkpoint_path):
    frozen = ["conv1", "layer2.0.conv1", "fc"]
    table, models = retrain(checkpoint_path, small_digits, frozen, epochs=1, epsilon=0.05, device="cpu")
    start = backbone(load_checkpoint(checkpoint_path))
    selective, regular = backbone(models["selective"]), backbone(models["regular"])
    for name in frozen:
        for param in ("weight", "bias"):
            original = getattr(start.get_submodule(name), param, None)
            if original is not None:
                assert torch.equal(getattr(selective.get_submodule(name), param), original)
                assert not torch.equal(getattr(regular.get_submodule(name), param), original)
    # trained layers (and the BatchNorm after a frozen conv) moved
    assert not torch.equal(selective.layer1[0].conv1.weight, start.layer1[0].conv1.weight)
    assert not torch.equal(selective.bn1.weight, start.bn1.weight)
    assert table["branch"].tolist() == ["regular", "selective"] and table["n_frozen"].tolist() == [0, 3]
    assert table[["acc_clean", "acc_adv"]].apply(lambda c: c.between(0, 1)).all().all()


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("branches", [("regular", "selective"), ("selective", "regular")])
def test_with_nothing_frozen_both_branches_are_bit_identical_in_any_order(small_digits, checkpoint_path, branches):
    before = hashlib.sha256(checkpoint_path.read_bytes()).hexdigest()
    table, models = retrain(
        checkpoint_path, small_digits, [], epochs=1, epsilon=0.05, device="cpu", branches=branches, reuse=False
    )
    regular, selective = _state(models["regular"]), _state(models["selective"])
    assert regular.keys() == selective.keys()
    assert all(torch.equal(regular[k], selective[k]) for k in regular)
    rows = table.set_index("branch")[["acc_clean", "acc_adv"]]
    assert rows.loc["regular"].tolist() == rows.loc["selective"].tolist()
    assert hashlib.sha256(checkpoint_path.read_bytes()).hexdigest() == before
    assert table["same_as"].isna().all()


def test_a_branch_freezing_what_another_froze_is_reported_not_retrained(small_digits, checkpoint_path):
    frozen = {"selective": [], "selective_whitebox": ["fc"], "other": ["fc"]}
    table, models = retrain(checkpoint_path, small_digits, frozen, epochs=1, epsilon=0.05, device="cpu")
    rows = table.set_index("branch")
    assert list(rows.index) == ["regular", "selective", "selective_whitebox", "other"]
    assert rows["same_as"].fillna("-").tolist() == ["-", "regular", "-", "selective_whitebox"]
    assert models["selective"] is models["regular"] and models["other"] is models["selective_whitebox"]
    columns = ["acc_clean", "acc_adv", "n_frozen"]
    assert rows.loc["other", columns].tolist() == rows.loc["selective_whitebox", columns].tolist()


def test_resume_works_on_its_own_copy_of_the_checkpoint_state(small_digits, checkpoint_path):
    checkpoint = Checkpoint.read(checkpoint_path)
    moments = {k: {n: t.clone() for n, t in v.items()} for k, v in checkpoint.optimizer_state["state"].items()}
    weights = {k: v.clone() for k, v in checkpoint.model_state.items()}
    first = checkpoint.resume([], "cpu")
    train_one_epoch(first.model, first.optimizer, small_digits, first.config.batch_size, first.order)
    for key, state in checkpoint.optimizer_state["state"].items():
        assert all(torch.equal(state[n], moments[key][n]) for n in state), f"Adam state of parameter {key} moved"
    assert all(torch.equal(checkpoint.model_state[k], weights[k]) for k in weights)
    second = checkpoint.resume([], "cpu")
    assert all(torch.equal(a, b) for a, b in zip(second.model.state_dict().values(), weights.values()))


def test_label_attack_picks_the_frozen_layers_from_its_reading():
    from fragility.retrain import selective_branches

    scores = pd.DataFrame(
        {
            "layer": ["conv1", "layer1.0.conv1", "fc", "__global__"],
            "filter": ["combined"] * 4,
            "label_clean": ["fragile", "robust", "robust", "fragile"],
            "label_diff": ["antifragile", "fragile", "robust", "fragile"],
            "label_diff_whitebox": ["fragile", None, "fragile", "fragile"],  # layer1.0.conv1 not read white-box
        }
    )
    transfer = selective_branches(scores, "diff", "combined", "transfer")
    assert list(transfer) == ["selective", "selective_whitebox"]
    assert (transfer["selective"].frozen, transfer["selective"].label_attack, transfer["selective"].n_layers) == (
        ["layer1.0.conv1"],
        "transfer",
        3,
    )
    assert (transfer["selective_whitebox"].frozen, transfer["selective_whitebox"].n_layers) == (["conv1", "fc"], 2)
    whitebox = selective_branches(scores, "diff", "combined", "whitebox")
    assert list(whitebox) == ["selective", "selective_transfer"] and whitebox["selective"].frozen == ["conv1", "fc"]
    assert list(selective_branches(scores, "clean", "combined", "whitebox")) == ["selective"]  # one clean label
    assert list(selective_branches(scores.drop(columns="label_diff_whitebox"), "diff")) == ["selective"]
