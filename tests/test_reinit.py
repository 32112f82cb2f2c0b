import pytest
import torch

from fragility.artifacts import Checkpoint
from fragility.evaluation import accuracy
from fragility.models import list_layers
from fragility.stress.reinit import CRITICALITY_COLUMNS, criticality_table, initial_state, reinit, rerandomise
from fragility.train import ModelSpec, TrainConfig, train


@pytest.fixture(scope="module")
def spec(small_digits):
    return ModelSpec.for_dataset("resnet18", small_digits)


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _identical(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_initial_state_is_what_training_starts_from(spec, small_digits, tmp_path):
    # with a learning rate of 0, Adam leaves every weight where training initialised it
    train(spec, small_digits, 3, TrainConfig(epochs=1, checkpoint_every=1, lr=0.0), lambda e: tmp_path / "ck.pt", device="cpu")
    trained = Checkpoint.read(tmp_path / "ck.pt").model_state
    initial = initial_state(spec, 3)
    weights = [k for k in initial if k.endswith("weight") and "bn" not in k and "downsample.1" not in k]
    assert weights and all(torch.equal(trained[k], initial[k]) for k in weights)
    assert _identical(initial, initial_state(spec, 3)) and not torch.equal(
        initial["net.conv1.weight"], initial_state(spec, 4)["net.conv1.weight"]
    )


def test_reinit_of_the_initial_model_changes_nothing(spec, small_digits):
    initial = initial_state(spec, 0)
    model = spec.build()
    model.load_state_dict(initial)
    model.eval()
    before = accuracy(model, small_digits.x_test, small_digits.y_test)
    for layer in ("conv1", "layer2.0.conv1", "fc"):
        with reinit(model, layer, initial):
            assert accuracy(model, small_digits.x_test, small_digits.y_test) == before


def test_context_managers_restore_every_parameter_and_buffer_and_rerandomise_is_seeded(spec):
    model = spec.build().eval()
    initial = initial_state(spec, 0)
    before = _snapshot(model)
    with reinit(model, "layer1.0.conv1", initial):
        reinitialised = model.net.layer1[0].conv1.weight.clone()
        assert torch.equal(reinitialised, initial["net.layer1.0.conv1.weight"])
    assert _identical(before, _snapshot(model))
    with rerandomise(model, "fc", "kaiming_uniform", seed=1):
        first = (model.net.fc.weight.clone(), model.net.fc.bias.clone())
    assert _identical(before, _snapshot(model))
    with rerandomise(model, "fc", "kaiming_uniform", seed=1):
        assert torch.equal(model.net.fc.weight, first[0]) and torch.equal(model.net.fc.bias, first[1])
    with rerandomise(model, "fc", "kaiming_uniform", seed=2):
        assert not torch.equal(model.net.fc.weight, first[0])
    with reinit(model, "fc", initial):
        assert not torch.equal(model.net.fc.weight, first[0])
    with pytest.raises(RuntimeError), rerandomise(model, "conv1", "torchvision", seed=0):
        raise RuntimeError("an error inside the block")
    assert _identical(before, _snapshot(model))


def test_criticality_table_drops_are_unperturbed_minus_perturbed(spec, small_digits):
    model = spec.build().eval()
    x, y = small_digits.x_test, small_digits.y_test
    x_adv = (x + 0.1).clamp(0, 1)
    layers = list_layers(model)[:3] + ["__global__"]
    table = criticality_table(model, layers, x, y, x_adv, initial_state(spec, 0), "kaiming_uniform", 0)
    assert list(table.columns) == CRITICALITY_COLUMNS and len(table) == 3 * 2
    clean, adversarial = accuracy(model, x, y), accuracy(model, x_adv, y)
    assert (table["drop_clean"] == clean - table["acc_clean"]).all() and (
        table["drop_adv"] == adversarial - table["acc_adv"]
    ).all()
    with rerandomise(model, layers[1], "kaiming_uniform", 0):
        expected = accuracy(model, x, y)
    assert table[(table["layer"] == layers[1]) & (table["perturbation"] == "rerandom")]["acc_clean"].item() == expected
