"""Subnetwork robustness (fragility.stress.semirobust, METHOD §14): the split, the semirobust
network, fine-tuning with f_a frozen, linear CKA and the early stop, checked by hand."""

import numpy as np
import pytest
import torch

from fragility.attack import Attack
from fragility.data import Dataset
from fragility.models import backbone, build_model
from fragility.stress import validate as validate_config
from fragility.stress.semirobust import (
    SemirobustSettings,
    class_weighted_cka,
    dependency,
    epochs_to_reach,
    evaluate,
    finetune_second_part,
    linear_cka,
    robust_network,
    semirobust_epochs,
    semirobust_network,
    semirobust_units,
    split_layers,
    split_modules,
    split_state,
)

PGD = Attack("pgd", options={"steps": 2})


def resnet(seed):
    torch.manual_seed(seed)
    return build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval()


@pytest.fixture(scope="module")
def data():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(56, 1, 8, 8, generator=generator), torch.arange(56) % 10
    return Dataset("toy", x[:32], y[:32], x[32:], y[32:], 10)


def test_the_split_assigns_the_modules_method_section_14_names():
    model = resnet(0)
    assert split_layers(model, 4)[1] == ["layer4.0.downsample.0", "layer4.1.conv1", "layer4.1.conv2", "fc"]
    f_a, f_b = split_modules(model, 4)
    assert f_b[:3] == ["layer4.0.downsample.0", "layer4.0.downsample.1", "layer4.1"] and f_b[-2:] == ["avgpool", "fc"]
    assert {"layer4.0.conv2", "layer4.0.bn2", "layer4.0.downsample"} <= set(f_a)  # registered before the cut
    f_a, f_b = split_modules(model, 12)
    assert split_layers(model, 12)[1][0] == "layer2.1.conv2" and f_b[:2] == ["layer2.1.conv2", "layer2.1.bn2"]
    assert f_a[-3:] == ["layer2.1.conv1", "layer2.1.bn1", "layer2.1.relu"]  # L_{n−k}'s own BatchNorm stays in f_a
    keys_a, keys_b = split_state(model, 12)
    assert "layer2.1.bn1.running_mean" in keys_a and "layer2.1.bn2.num_batches_tracked" in keys_b and "fc.bias" in keys_b
    assert sorted(keys_a + keys_b) == sorted(backbone(model).state_dict())
    with pytest.raises(ValueError, match="split k = 21 needs 1 <= k < 21"):
        split_layers(model, 21)


def test_the_semirobust_network_takes_f_a_from_the_robust_one_and_f_b_from_the_checkpoint():
    robust, normal = resnet(1), resnet(2)
    with torch.no_grad():
        backbone(robust).layer2[1].bn1.running_mean.fill_(0.3)  # a buffer of f_a for k = 12
    combined = semirobust_network(robust, normal, 12)
    keys_a, keys_b = split_state(normal, 12)
    state, robust_state, normal_state = (backbone(m).state_dict() for m in (combined, robust, normal))
    assert all(torch.equal(state[key], robust_state[key]) for key in keys_a)
    assert all(torch.equal(state[key], normal_state[key]) for key in keys_b)
    assert not torch.equal(robust_state["fc.weight"], normal_state["fc.weight"])  # the two do differ


def test_finetuning_leaves_f_a_bit_for_bit_and_moves_f_b(data):
    robust, normal = resnet(1), resnet(2)
    start = semirobust_network(robust, normal, 4)
    before = {k: v.clone() for k, v in backbone(start).state_dict().items()}
    adam = lambda params: torch.optim.Adam(params, lr=1e-2)  # noqa: E731
    runs = list(finetune_second_part(start, 4, data, adam, PGD, 0.1, 2, 2.0, lambda net: {"acc_adv": 0.0}, 8, 0))
    assert [epoch for epoch, _, _ in runs] == [1, 2]  # a target above 1 is never reached: every epoch runs
    after = backbone(runs[-1][1]).state_dict()
    keys_a, keys_b = split_state(start, 4)
    assert all(torch.equal(after[key], before[key]) for key in keys_a)  # weights, running stats, num_batches_tracked
    assert "layer4.0.bn2.num_batches_tracked" in keys_a and "layer1.0.bn1.running_var" in keys_a
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert not torch.equal(after["layer4.1.bn1.running_mean"], before["layer4.1.bn1.running_mean"])  # f_b's BN trains
    assert all(torch.equal(v, before[k]) for k, v in backbone(start).state_dict().items())  # F_sr itself untouched


def test_finetuning_stops_once_the_target_is_reached(data):
    start = semirobust_network(resnet(1), resnet(2), 4)
    adam = lambda params: torch.optim.Adam(params, lr=1e-3)  # noqa: E731
    scores = iter([0.2, 0.5, 0.9])
    runs = list(finetune_second_part(start, 4, data, adam, PGD, 0.1, 5, 0.45, lambda net: {"acc_adv": next(scores)}, 16, 0))
    assert [(epoch, measured["acc_adv"]) for epoch, _, measured in runs] == [(1, 0.2), (2, 0.5)]
    assert epochs_to_reach([0.2, 0.5, 0.9], 0.45) == 2 and epochs_to_reach([0.2, 0.3], 0.45) is None


def test_the_robust_network_is_adversarially_trained_from_the_checkpoint(data):
    model = resnet(0)
    adam = lambda params: torch.optim.Adam(params, lr=1e-3)  # noqa: E731
    robust = robust_network(model, data, adam, PGD, 0.1, 1, 16, 0)
    again = robust_network(model, data, adam, PGD, 0.1, 1, 16, 0)
    assert all(torch.equal(a, b) for a, b in zip(robust.state_dict().values(), again.state_dict().values()))  # seeded
    assert not torch.equal(robust.state_dict()["net.fc.weight"], model.state_dict()["net.fc.weight"])
    measured = evaluate(robust, data.x_test, data.y_test, PGD, 0.1, 16)
    assert set(measured) == {"acc_clean", "acc_adv"} and 0 <= measured["acc_adv"] <= 1


def test_linear_cka_equals_the_kernel_form_and_is_invariant_as_cka_must_be():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 5)), rng.normal(size=(12, 7))
    centre = np.eye(12) - np.ones((12, 12)) / 12  # the HSIC form: tr(K H L H) / sqrt(tr(K H K H) tr(L H L H))
    gram_a, gram_b = a @ a.T, b @ b.T
    hsic = lambda x, y: np.trace(x @ centre @ y @ centre)  # noqa: E731
    assert linear_cka(a, b) == pytest.approx(
        hsic(gram_a, gram_b) / np.sqrt(hsic(gram_a, gram_a) * hsic(gram_b, gram_b)), rel=1e-12
    )
    assert linear_cka(a, a) == pytest.approx(1.0)
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert linear_cka(a @ rotation * 3.7, b) == pytest.approx(linear_cka(a, b), rel=1e-12)
    assert np.isnan(linear_cka(np.ones((4, 3)), b[:4]))


def test_class_weighted_cka_averages_per_class_by_size():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    expected = (6 * linear_cka(a[:6], b[:6]) + 3 * linear_cka(a[6:], b[6:])) / 9
    assert class_weighted_cka(a, b, labels) == pytest.approx(expected, rel=1e-12)


def test_dependency_pairs_the_consecutive_layers_from_the_cut_to_the_output(data):
    found = dependency(resnet(0), 4, data.x_test, data.y_test, 8)
    pairs = [(row["layer_a"], row["layer_b"], row["position"]) for row in found]
    assert pairs == [
        ("layer4.0.conv2", "layer4.0.downsample.0", 0),
        ("layer4.0.downsample.0", "layer4.1.conv1", 1),
        ("layer4.1.conv1", "layer4.1.conv2", 2),
        ("layer4.1.conv2", "fc", 3),
    ]
    assert all(0 <= row["cka"] <= 1 + 1e-9 for row in found)


def test_semirobust_splits_below_the_number_of_layers_at_each_runs_last_checkpoint():
    config = validate_config({})
    assert semirobust_units(config, "resnet18") == ["k4", "k12"] and semirobust_epochs(config, "resnet18") == [4]
    assert semirobust_units(validate_config({"semirobust": {"splits": [4, 21, 30]}}), "resnet18") == ["k4"]  # 21 layers
    assert semirobust_units(validate_config({"semirobust": {"splits": []}}), "resnet18") == []
    chosen = validate_config({"attack": {"pgd": {"steps": 7}}, "semirobust": {"epochs": 3}})
    settings = SemirobustSettings.from_config(chosen, "resnet18")
    assert settings.epochs == 3 and settings.train_steps == 7 and settings.pgd["steps"] == 7  # null: attack.pgd's
    assert SemirobustSettings.from_config(config, "resnet18").epochs == 2  # null: train.checkpoint_every
