"""Subnetwork robustness (fragility.stress.semirobust, METHOD §14): the split, the semirobust
network, fine-tuning with f_a restored after every step, the early stop and the trials, the
robustness precondition (McNemar), the protocols and the dependency pairs, checked by hand."""

import importlib.util
import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fragility.attack import Attack
from fragility.data import Dataset
from fragility.models import backbone, build_model
from fragility.stress import validate as validate_config
from fragility.stress.semirobust import (
    PAPER_EPSILON,
    PROTOCOLS,
    SEMIROBUST_COLUMNS,
    SemirobustSettings,
    autoattack,
    dependency,
    epochs_to_converge,
    finetune_second_part,
    make_robust,
    mcnemar,
    robust_network,
    robust_precondition,
    semirobust_epochs,
    semirobust_network,
    semirobust_units,
    split_layers,
    split_modules,
    split_state,
    split_tables,
    trial_seed,
)

PGD = Attack("pgd", options={"steps": 2})


def pgd_examples(model, x, y, seed):
    """Two-step PGD at ε = 0.1 as training examples (seed: the random start)."""
    return Attack("pgd", options={"steps": 2, "seed": seed})(model, x, y, 0.1, len(x))


def adam(lr):
    return lambda params: torch.optim.Adam(params, lr=lr)


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


@pytest.mark.parametrize("fa_batchnorm", ["train", "eval"])
def test_finetuning_restores_f_a_after_every_step_and_moves_f_b(data, fa_batchnorm):
    robust, normal = resnet(1), resnet(2)
    start = semirobust_network(robust, normal, 4)
    before = {k: v.clone() for k, v in backbone(start).state_dict().items()}
    seen = []  # the training mode f_a's last BatchNorm (layer4.0.bn2) ran in, batch by batch
    runs = []
    for epoch, network, _ in finetune_second_part(
        start, 4, data, adam(1e-2), pgd_examples, 2, 2.0, lambda net: {"acc_adv": 0.0}, 8, 0, fa_batchnorm
    ):
        if epoch == 1:
            backbone(network).layer4[0].bn2.register_forward_pre_hook(lambda module, _: seen.append(module.training))
        runs.append((epoch, network))
    assert [epoch for epoch, _ in runs] == [1, 2]  # a target above 1 is never reached: every epoch runs
    after = backbone(runs[-1][1]).state_dict()
    keys_a, keys_b = split_state(start, 4)
    assert all(torch.equal(after[key], before[key]) for key in keys_a)  # weights, running stats, num_batches_tracked
    assert "layer4.0.bn2.num_batches_tracked" in keys_a and "layer1.0.bn1.running_var" in keys_a
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert not torch.equal(after["layer4.1.bn1.running_mean"], before["layer4.1.bn1.running_mean"])  # f_b's BN trains
    assert all(torch.equal(v, before[k]) for k, v in backbone(start).state_dict().items())  # F_sr itself untouched
    # the authors': batch statistics in f_a while training (attacks and evaluations in eval mode)
    assert (True in seen) == (fa_batchnorm == "train") and False in seen


def test_finetuning_stops_once_the_target_is_reached(data):
    start = semirobust_network(resnet(1), resnet(2), 4)
    scores = iter([0.2, 0.5, 0.9])
    runs = list(
        finetune_second_part(start, 4, data, adam(1e-3), pgd_examples, 5, 0.45, lambda net: {"acc_adv": next(scores)}, 16, 0)
    )
    assert [(epoch, measured["acc_adv"]) for epoch, _, measured in runs] == [(1, 0.2), (2, 0.5)]
    assert epochs_to_converge([0.2, 0.5, 0.9], 0.45) == 2 and np.isnan(epochs_to_converge([0.2, 0.3], 0.45))


def test_the_robust_network_is_adversarially_trained_from_the_checkpoint(data):
    model = resnet(0)
    robust = robust_network(model, data, adam(1e-3), pgd_examples, 1, 16, 0)
    again = robust_network(model, data, adam(1e-3), pgd_examples, 1, 16, 0)
    assert all(torch.equal(a, b) for a, b in zip(robust.state_dict().values(), again.state_dict().values()))  # seeded
    assert not torch.equal(robust.state_dict()["net.fc.weight"], model.state_dict()["net.fc.weight"])
    assert not robust.training


def clean_images(model, x, y, seed):
    """The training examples of the same training without the attack."""
    return x


def digits_accuracies(model, digits):
    """Clean accuracy and accuracy under a 5-step PGD at ε = 0.1 on the digits test set."""
    x_adv = Attack("pgd", options={"steps": 5, "seed": 0})(model, digits.x_test, digits.y_test, 0.1, len(digits.x_test))
    with torch.no_grad():
        return [(model(x).argmax(1) == digits.y_test).double().mean().item() for x in (digits.x_test, x_adv)]


def assert_adversarial_rises_more(before, trained):
    """The adversarial accuracy rises by more than 0.1 over what the same budget on clean
    images gives it, and the clean accuracy stays above 0.9 either way."""
    rise = {name: adv - before for name, (_, adv) in trained.items()}
    assert rise["adversarial"] > rise["clean"] + 0.1 and rise["adversarial"] > 0.1, (before, trained)
    assert min(clean for clean, _ in trained.values()) > 0.9, (before, trained)


def test_adversarial_training_raises_adversarial_accuracy_more_than_clean_training(digits, linear_digits_model):
    """F*'s training is adversarial, not merely more training: from one trained classifier, the
    same budget (2 epochs, batch 32, Adam 1e-2, seed 0) on PGD examples (ε = 0.1) raises the
    accuracy under a 5-step PGD at that ε well above what the same budget on clean images gives
    (0.35 before; about 0.49 after adversarial, 0.32 after clean training)."""
    _, before = digits_accuracies(linear_digits_model, digits)
    trained = {
        name: digits_accuracies(robust_network(linear_digits_model, digits, adam(1e-2), examples, 2, 32, 0), digits)
        for name, examples in (("adversarial", pgd_examples), ("clean", clean_images))
    }
    assert_adversarial_rises_more(before, trained)


def test_adversarial_finetuning_of_f_b_raises_adversarial_accuracy_more_than_clean_finetuning(digits):
    """The same for the fine-tuning of f_b (here the last layer of a trained two-layer network,
    split k = 1): 2 epochs on PGD examples against 2 on clean images (about 0.28 before, 0.43
    after adversarial, 0.28 after clean fine-tuning)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(digits.x_train), digits.y_train).backward()
        optimizer.step()
    model.eval()
    _, before = digits_accuracies(model, digits)
    never = lambda net: {"acc_adv": 0.0}  # noqa: E731  a target never reached: both budgets run in full
    trained = {}
    for name, examples in (("adversarial", pgd_examples), ("clean", clean_images)):
        *_, (epoch, network, _) = finetune_second_part(model, 1, digits, adam(1e-2), examples, 2, 1.0, never, 32, 0)
        assert epoch == 2 and torch.equal(network[1].weight, model[1].weight)  # f_a as it was
        trained[name] = digits_accuracies(network, digits)
    assert_adversarial_rises_more(before, trained)


def test_adversarial_training_shows_a_bar_over_its_epochs_when_asked(data, capsys):
    robust_network(resnet(0), data, adam(1e-3), pgd_examples, 1, 16, 0, progress=True)
    assert "F*: adversarial training epochs" in capsys.readouterr().err


def test_fgsm_with_a_random_start_steps_1_25_epsilon_from_a_fresh_start_per_seed(data):
    settings = SemirobustSettings(train_attack="fgsm_rs")
    model, x, y = resnet(0), data.x_test, data.y_test
    examples = settings.training_examples(0.1)
    first, second = examples(model, x, y, 1), examples(model, x, y, 2)
    assert (first - x).abs().max() <= 0.1 + 1e-6 and first.min() >= 0 and first.max() <= 1
    assert not torch.equal(first, second)  # another seed, another random start
    assert torch.equal(first, examples(model, x, y, 1))
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    start = (x + (2 * noise - 1) * 0.1).clamp(0, 1)
    step = Attack("pgd", options={"steps": 1, "step_size": 0.125, "random_start": False})(model, start, y, 1.0, len(x))
    assert torch.allclose(first, torch.minimum(torch.maximum(step, x - 0.1), x + 0.1).clamp(0, 1))  # one step of 1.25 ε


def test_mcnemar_is_exact_and_one_sided():
    robust = np.array([1, 1, 1, 1, 1, 0, 1, 0], bool)
    normal = np.array([0, 0, 0, 0, 0, 0, 1, 0], bool)
    assert mcnemar(robust, normal) == {"mcnemar_b": 5, "mcnemar_c": 0, "mcnemar_p": pytest.approx(1 / 32)}
    assert mcnemar(normal, robust)["mcnemar_p"] == 1.0  # the other side: never evidence that F* is robust
    assert mcnemar(robust, robust) == {"mcnemar_b": 0, "mcnemar_c": 0, "mcnemar_p": 1.0}
    # b = 6, c = 1: P(Bin(7, ½) ≥ 6) = 8 / 128
    assert mcnemar(np.r_[np.ones(6), 0], np.r_[np.zeros(6), 1])["mcnemar_p"] == pytest.approx(8 / 128)
    assert robust_precondition({"mcnemar_p": 0.001, "mcnemar_b": 9, "mcnemar_c": 0}, 0.01) == (True, "")
    usable, why = robust_precondition({"mcnemar_p": 0.6, "mcnemar_b": 3, "mcnemar_c": 4}, 0.01)
    assert not usable and why.startswith("F* not robust: McNemar p = 0.6 ≥ α = 0.01") and "on 3 test images" in why


def test_dependency_pairs_the_consecutive_layers_from_the_cut_to_the_output(data):
    found = dependency(resnet(0), 4, data.x_test, data.y_test, 8, seed=1)
    pairs = [(row["layer_a"], row["layer_b"], row["position"]) for row in found]
    assert pairs == [
        ("layer4.0.conv2", "layer4.0.downsample.0", 0),
        ("layer4.0.downsample.0", "layer4.1.conv1", 1),
        ("layer4.1.conv1", "layer4.1.conv2", 2),
        ("layer4.1.conv2", "fc", 3),
    ]
    assert all(0 <= row["cka"] <= 1 + 1e-9 and 0.001 <= min(row["mi"], row["mi_null"]) <= 10 for row in found)  # bits
    assert [row["mi"] for row in dependency(resnet(0), 4, data.x_test, data.y_test, 8, seed=1)] == [row["mi"] for row in found]


def test_the_protocols_fill_every_key_left_null_and_each_key_can_be_set_alone():
    config = validate_config({})
    budget = SemirobustSettings.from_config(config, "resnet18")
    assert (budget.protocol, budget.epochs, budget.finetune_epochs, budget.trials, budget.delta) == ("budget", 3, 2, 3, 0.05)
    assert (budget.train_attack, budget.epsilon, budget.optimizer, budget.fa_batchnorm) == (
        "fgsm_rs",
        "run",
        "checkpoint",
        "train",
    )
    assert budget.epsilon_of(0.07) == 0.07 and budget.pgd_step(0.07) is None and budget.attack_name == "pgd-10"
    assert budget.alpha == config["trust"]["alpha"] and budget.train_steps == 10  # null: attack.pgd.steps
    paper = SemirobustSettings.from_config(validate_config({"semirobust": {"protocol": "paper"}}), "resnet18")
    assert {key: getattr(paper, key) for key in PROTOCOLS["paper"]} == PROTOCOLS["paper"]
    assert paper.epsilon_of(0.07) == PAPER_EPSILON == 8 / 255 and paper.pgd_step(PAPER_EPSILON) == pytest.approx(1 / 255)
    sgd = paper.optimizer_for(None)([nn.Parameter(torch.zeros(1))])
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults | {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4} == sgd.defaults
    one = SemirobustSettings.from_config(
        validate_config({"semirobust": {"protocol": "paper", "trials": 3, "epsilon": "run"}}), "m"
    )
    assert (one.trials, one.epsilon, one.epochs, one.train_attack) == (3, "run", 120, "pgd")  # the rest stays the paper's
    assert "protocol paper" in paper.describe() and "10 trials" in paper.describe()


def test_semirobust_splits_below_the_number_of_layers_at_each_runs_last_checkpoint():
    config = validate_config({})
    assert semirobust_units(config, "resnet18") == ["k4", "k12"] and semirobust_epochs(config, "resnet18") == [4]
    assert semirobust_units(validate_config({"semirobust": {"splits": [4, 21, 30]}}), "resnet18") == ["k4"]  # 21 layers
    assert semirobust_units(validate_config({"semirobust": {"splits": []}}), "resnet18") == []


def checkpoint():
    from fragility.artifacts import TrainConfig

    return types.SimpleNamespace(seed=0, train_config=TrainConfig(epochs=1, checkpoint_every=1, batch_size=16))


def test_each_trial_gives_its_rows_its_best_accuracy_and_its_epochs_to_converge(data):
    settings = SemirobustSettings(epochs=1, finetune_epochs=2, trials=2, delta=0.5, pgd={"steps": 2}, alpha=0.01)
    model = resnet(0)
    robust, base = make_robust(checkpoint(), model, data, data.x_test, data.y_test, 0.1, settings, 8)
    assert list(base["network"]) == ["normal", "robust"] and base["mcnemar_p"].nunique() == 1
    tables = split_tables(
        model,
        robust,
        base,
        4,
        training=data,
        x=data.x_test,
        y=data.y_test,
        settings=settings,
        checkpoint=checkpoint(),
        batch_size=8,
    )
    table = tables["semirobust"]
    assert list(table.columns) == SEMIROBUST_COLUMNS and set(table["trial"]) == {0, 1} and (table["protocol"] == "budget").all()
    for _, rows in table.groupby("trial"):
        assert list(rows["network"])[:3] == ["normal", "robust", "semirobust"]  # Acc, Acc*, Acc_sr in every trial
        tuned = rows[rows["network"] == "finetuned"]
        assert rows["best_acc_adv"].nunique() == 1 and rows["best_acc_adv"].iloc[0] == tuned["acc_adv"].max()
        target = rows["target_acc_adv"].iloc[0]
        assert target == pytest.approx(base.set_index("network").loc["robust", "acc_adv"] - 0.5)
        assert rows["epochs_to_converge"].iloc[0] == epochs_to_converge(list(tuned["acc_adv"]), target)
    # F* of one epoch on 32 random images is not robust: every row says so
    p = base["mcnemar_p"].iloc[0]
    assert (table["usable"] == (p < 0.01)).all() and (tables["dependency"]["usable"] == (p < 0.01)).all()
    if p >= 0.01:
        assert table["why"].str.startswith("F* not robust").all()
    assert set(tables["dependency"]["network"]) == {"robust", "semirobust", "finetuned"}
    assert trial_seed(0, 0) != trial_seed(0, 1) != trial_seed(1, 0)


def test_autoattack_goes_through_torchattacks(monkeypatch, data):
    made = {}

    class AutoAttack:  # torchattacks' interface: (model, norm, eps, version, n_classes, seed), then (x, y)
        def __init__(self, model, **options):
            made.update(options)

        def __call__(self, x, y):
            return (x + 0.01).clamp(0, 1)

    monkeypatch.setitem(sys.modules, "torchattacks", types.SimpleNamespace(AutoAttack=AutoAttack))
    x_adv = autoattack(resnet(0), data.x_test, data.y_test, 8 / 255, batch_size=10, seed=3)
    assert made == {"norm": "Linf", "eps": 8 / 255, "version": "standard", "n_classes": 10, "seed": 3}
    assert x_adv.shape == data.x_test.shape
    settings = SemirobustSettings(eval_attack="autoattack")
    assert settings.attack_name == "autoattack"
    assert torch.equal(settings.evaluation(8 / 255)(resnet(0), data.x_test, data.y_test, 10), x_adv)


def test_the_config_says_what_cannot_work_before_any_job(monkeypatch):
    from fragility.config import ConfigError

    with pytest.raises(ConfigError, match="^config key 'semirobust.train_steps'"):
        validate_config({"semirobust": {"train_steps": 5}})  # budget trains with fgsm_rs: one step
    validate_config({"semirobust": {"train_steps": 5, "train_attack": "pgd"}})
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        "importlib.util.find_spec", lambda name, *args: None if name == "torchattacks" else find_spec(name, *args)
    )
    with pytest.raises(ConfigError, match="^config key 'semirobust.eval_attack': autoattack needs torchattacks"):
        validate_config({"semirobust": {"eval_attack": "autoattack"}})


def test_the_collection_keeps_a_row_usable_only_where_trust_and_f_star_both_allow():
    from fragility.trust import with_usable

    run = {"dataset": "d", "model": "m", "epoch": 4}
    table = pd.DataFrame(
        [
            {**run, "seed": 0, "acc_adv": 0.5, "why": "", "usable": True},
            {**run, "seed": 1, "acc_adv": 0.5, "why": "F* not robust: McNemar p = 0.4", "usable": False},
            {**run, "seed": 2, "acc_adv": 0.5, "why": "", "usable": True},
        ]
    )
    trust = pd.DataFrame(
        [{**run, "seed": s, "usable": s != 2, "why": "" if s != 2 else "not stressed by the attack"} for s in range(3)]
    )
    joined = with_usable(table, trust)
    assert joined["usable"].tolist() == [True, False, False] and list(joined.columns)[-1] == "usable"
    assert joined["why"].tolist() == ["", "F* not robust: McNemar p = 0.4", "not stressed by the attack"]
    assert with_usable(table.drop(columns=["usable", "why"]), trust)["usable"].tolist() == [True, True, False]
