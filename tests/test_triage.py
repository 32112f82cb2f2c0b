"""Structural compression (fragility.stress.triage, METHOD §13) on a two-block toy network
whose compressed network can be written out by hand."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fragility.artifacts import TrainConfig
from fragility.attack import Attack
from fragility.data import Dataset
from fragility.stress import validate as validate_config
from fragility.stress.triage import (
    TriageError,
    TriageSettings,
    block_shapes,
    compress,
    compression_stride,
    distillation_loss,
    drops,
    identity_batchnorm,
    least_squares,
    scheme_epochs,
    scheme_phase,
    triage_block,
    triage_epochs,
    triage_units,
)
from fragility.structure import ArchitectureError

ROOT = Path(__file__).resolve().parents[1]
TRAIN = TrainConfig(epochs=1, checkpoint_every=1, batch_size=8, lr=1e-2)  # each scheme's Adam and batch size


def two_block_net() -> nn.Sequential:
    """Block ``0`` (conv–BN–ReLU, 1→4 channels, stride 2) and block ``1`` (conv–BN–ReLU,
    4→4), then pooling and a linear head."""
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    with torch.no_grad():  # BatchNorm statistics a training run would have left
        for bn in (net[0][1], net[1][1]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture
def toy():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 8, 8, generator=generator)
    y = torch.randint(0, 3, (60,), generator=generator)
    data = Dataset("toy", x[:40], y[:40], x[40:], y[40:], 3)
    return two_block_net(), data


def test_compression_stride_rounds_up_as_a_strided_convolution_does_and_refuses_a_size_no_stride_gives():
    assert compression_stride("b", (3, 8, 8), (16, 4, 4)) == 2
    assert compression_stride("b", (16, 4, 4), (16, 4, 4)) == 1
    assert compression_stride("layer2.0", (64, 7, 7), (128, 4, 4)) == 2  # 28×28 MNIST: ResNet-18's layer2.0
    assert compression_stride("b", (3, 8, 8), (3, 3, 3)) == 3  # (8 − 1) // 3 + 1 = 3
    with pytest.raises(TriageError, match=r"block 'b' maps 8×8 to 5×5: no stride gives that size \(s = ⌈H/H'⌉ = 2 gives 4×4\)"):
        compression_stride("b", (3, 8, 8), (3, 5, 5))  # s = 2 gives 4, s = 1 gives 8
    with pytest.raises(TriageError, match="no stride gives that size"):
        compression_stride("b", (3, 8, 4), (3, 4, 4))  # 2 down, 1 across
    with pytest.raises(TriageError, match=r"maps 4×4 to 8×8"):
        compression_stride("b", (3, 4, 4), (3, 8, 8))  # a block that enlarges


def test_compressed_network_is_the_hand_written_one(toy):
    net, data = toy
    assert block_shapes(net, "1", data.x_test) == ((4, 4, 4), (4, 4, 4))
    compressed = compress(net, "1", data.x_test, "kaiming_uniform", seed=5)
    weight = compressed[1][0].weight.detach()
    assert weight.shape == (4, 4, 3, 3) and compressed[1][0].bias is None and compressed[1][0].stride == (1, 1)
    # S by hand: 3×3 convolution, BatchNorm fresh (mean 0, variance 1) in eval mode, ReLU
    hidden = net[0](data.x_test)
    s_out = F.relu(F.conv2d(hidden, weight, padding=1) / math.sqrt(1 + 1e-5))
    logits = net[4](s_out.mean(dim=(2, 3)))
    with torch.no_grad():
        assert torch.allclose(compressed(data.x_test), logits, atol=1e-6)
    # the base network is untouched, and the draw is seeded by (seed, block)
    assert isinstance(net[1][0], nn.Conv2d) and net[1][0].weight.shape == (4, 4, 3, 3) and net[1][0].bias is not None
    assert torch.equal(compress(net, "1", data.x_test, "kaiming_uniform", seed=5)[1][0].weight, weight)
    assert not torch.equal(compress(net, "1", data.x_test, "kaiming_uniform", seed=6)[1][0].weight, weight)


def test_a_downsampling_block_is_replaced_by_a_strided_convolution(toy):
    net, data = toy
    compressed = compress(net, "0", data.x_test, "kaiming_uniform", seed=0)
    assert compressed[0][0].stride == (2, 2) and compressed[0][0].weight.shape == (4, 1, 3, 3)
    assert compressed(data.x_test).shape == (20, 3)


def linear_block_net(stride: int = 1) -> nn.Sequential:
    """Block ``1`` is one 3×3 convolution (no bias, ``stride``) → BatchNorm set to the identity
    → ReLU on a signal the ReLU never clips: positive weights on the non-negative, nowhere
    dead output of block ``0``."""
    torch.manual_seed(4)
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 4, 3, stride, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    with torch.no_grad():
        net[0][0].bias.fill_(1.0)  # block 0's output is positive nearly everywhere
        net[1][0].weight.uniform_(0.05, 0.3)
        identity_batchnorm(net[1][1])
    return net.eval()


@pytest.mark.parametrize("stride", [1, 2])
def test_fit_recovers_a_block_that_is_one_convolution(toy, stride):
    _, data = toy
    net = linear_block_net(stride)
    fit = torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # float32 outputs: 1e-6 needs many rows
    compressed = compress(net, "1", data.x_test, "kaiming_uniform", seed=0, fit=fit)
    conv, bn = compressed[1][0], compressed[1][1]
    assert conv.stride == (stride, stride)
    torch.testing.assert_close(conv.weight, net[1][0].weight, atol=1e-6, rtol=0)
    assert (bn.weight == 1).all() and (bn.bias == 0).all() and (bn.running_mean == 0).all()
    assert torch.allclose(bn.running_var + bn.eps, torch.ones(4))  # √(var + eps) = 1: the identity
    with torch.no_grad():
        torch.testing.assert_close(compressed(data.x_test), net(data.x_test), atol=1e-5, rtol=0)
    # so the table's epoch 0 is the base network: its accuracy, and CKA 1 with the block's output
    table = run(net, data, ["local"], epochs=1, inits=("random", "fit"))
    fit = table[(table["init"] == "fit") & (table["triage_epoch"] == 0)].iloc[0]
    from fragility.evaluation import accuracy

    assert fit["acc_clean"] == accuracy(net, data.x_test, data.y_test) and fit["cka"] == pytest.approx(1, abs=1e-9)
    random = table[(table["init"] == "random") & (table["triage_epoch"] == 0)].iloc[0]
    assert random["cka"] < 0.99 and table["init"].tolist() == ["random", "random", "fit", "fit"]


def test_least_squares_is_exact_where_well_posed_and_ridged_where_not():
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 1.0], [3.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([[2.0], [5.0], [-1.0]], dtype=torch.float64)
    found = least_squares(x.T @ x, x.T @ (x @ w), len(x))
    # the middle coordinate is zero on every row: weight 0 there, the plain solution elsewhere
    torch.testing.assert_close(found, torch.tensor([[2.0], [0.0], [-1.0]], dtype=torch.float64), atol=1e-12, rtol=0)
    # one row, two unknowns: the ridge solution (G + λI)⁻¹Xᵀy, λ = 1e-4 · trace(G)/d = 1e-4
    one = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    found = least_squares(one.T @ one, one.T @ torch.tensor([[2.0]], dtype=torch.float64), 1)
    torch.testing.assert_close(found, torch.full((2, 1), 2 / (2 + 1e-4), dtype=torch.float64), atol=1e-10, rtol=0)


@pytest.fixture(scope="module")
def trained_resnet(digits):
    """ResNet-18 (torchvision's plain stem) trained three epochs on the 8×8 digits."""
    from fragility.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25], "plain")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(0)
    from fragility.train import train_one_epoch

    for _ in range(3):
        train_one_epoch(model, optimizer, digits, 128, order)
    return model.eval()


@pytest.mark.parametrize("block", ["layer1.0", "layer2.0", "layer3.1"])
def test_fit_starts_a_real_residual_block_at_least_as_well_as_a_random_draw(trained_resnet, digits, block):
    from fragility.evaluation import accuracy

    x, y = digits.x_test, digits.y_test
    base = accuracy(trained_resnet, x, y)
    fitted = compress(trained_resnet, block, x, "kaiming_uniform", seed=0, fit=digits.x_train[:512])
    drawn = compress(trained_resnet, block, x, "kaiming_uniform", seed=0)
    assert base > 0.5 and accuracy(fitted, x, y) >= accuracy(drawn, x, y)


def test_local_global_is_local_for_the_first_half_of_the_epochs_then_global(toy):
    assert [scheme_phase("local_global", e, 3) for e in (1, 2, 3)] == ["local", "local", "global"]
    assert [scheme_phase("local_global", e, 2) for e in (1, 2)] == ["local", "global"]
    assert scheme_phase("distil", 1, 2) == "distil"
    net, data = toy
    start = compress(net, "1", data.x_test, "kaiming_uniform", seed=0)
    settings = TriageSettings(schemes=("local", "local_global"), epochs=2)
    local, both = (list(scheme_epochs(start, "1", s, data, settings, TRAIN, net, 0)) for s in settings.schemes)
    assert local[0][1] == both[0][1]  # epoch 1: the same loss (the same training, bit for bit) ...
    after = both[-1][2].state_dict()
    assert torch.equal(after["1.0.weight"], local[-1][2].state_dict()["1.0.weight"]) is False
    assert not torch.equal(after["0.0.weight"], start.state_dict()["0.0.weight"])  # ... epoch 2 trains the rest too
    assert torch.equal(local[-1][2].state_dict()["0.0.weight"], start.state_dict()["0.0.weight"])


def test_distillation_loss_by_hand():
    logits, teacher_logits = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    teacher = nn.Identity()
    # T = 2: p_T(teacher) = softmax([0, 1]), p_T(student) = softmax([1, 0])
    p = torch.tensor([1.0, math.e]) / (1 + math.e)
    q = torch.tensor([math.e, 1.0]) / (1 + math.e)
    kl = float((p * (p / q).log()).sum())
    ce = -math.log(math.e**2 / (math.e**2 + 1))  # label 0
    loss = distillation_loss(teacher, 2.0, 0.9)(logits, teacher_logits, torch.tensor([0]))
    assert loss.item() == pytest.approx(0.9 * 4 * kl + 0.1 * ce, rel=1e-6)


def run(net, data, schemes, epochs=2, alpha=0.9, inits=("random",), progress=None):
    settings = TriageSettings(
        schemes=tuple(schemes),
        inits=inits,
        epochs=epochs,
        alpha=alpha,
        attack={"method": "fgsm", "clamp": True, "options": {}},
    )
    return triage_block(
        net,
        "1",
        data,
        data.x_test,
        data.y_test,
        base=(0.5, 0.25),
        epsilon=0.1,
        settings=settings,
        train=TRAIN,
        seed=0,
        batch_size=64,
        progress=progress,
    )


def test_triage_shows_bars_over_its_inits_and_schemes_when_asked(toy, capsys):
    net, data = toy
    run(net, data, ["local"], epochs=1, progress=True)
    drawn = capsys.readouterr().err
    assert "triage 1: inits" in drawn and "random init: schemes" in drawn


def test_local_moves_only_the_new_layer_and_no_other_batchnorm_statistic(toy):
    net, data = toy
    before = {k: v.clone() for k, v in net.state_dict().items()}
    start = compress(net, "1", data.x_test, "kaiming_uniform", seed=0)
    settings = TriageSettings(schemes=("local",), epochs=2)
    *_, (epoch, _, network) = scheme_epochs(start, "1", "local", data, settings, TRAIN, net, 0)
    assert epoch == 2
    after, initial = network.state_dict(), start.state_dict()
    for name, value in after.items():
        if name.startswith("1."):  # S: its convolution and its BatchNorm train
            continue
        assert torch.equal(value, initial[name]), name
        assert torch.equal(value, before[name]), name
    assert not torch.equal(after["1.0.weight"], initial["1.0.weight"])
    assert not torch.equal(after["1.1.running_mean"], initial["1.1.running_mean"])
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # the base network too


def test_the_table_has_epoch_zero_then_every_epoch_and_counts_parameters(toy):
    net, data = toy
    table = run(net, data, ["local"])
    assert list(table["triage_epoch"]) == [0, 1, 2]
    assert (table[["base_acc_clean", "base_acc_adv"]] == [0.5, 0.25]).all().all()
    assert table["params_block"].iloc[0] == 4 * 4 * 9 + 4 + 2 * 4
    assert table["params_compressed"].iloc[0] == 4 * 4 * 9 + 2 * 4
    assert (table["train_size"] == 40).all() and (table["init"] == "random").all() and table["cka"].between(0, 1).all()


def test_distil_with_alpha_zero_is_global(toy):
    net, data = toy
    table = run(net, data, ["global", "distil"], alpha=0.0)
    columns = ["triage_epoch", "acc_clean", "acc_adv"]
    global_rows = table[table["scheme"] == "global"][columns].reset_index(drop=True)
    distil_rows = table[table["scheme"] == "distil"][columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(global_rows, distil_rows)
    assert (table[table["triage_epoch"] == 0][["acc_clean", "acc_adv"]].nunique() == 1).all()
    start = compress(net, "1", data.x_test, "kaiming_uniform", seed=0)
    settings = TriageSettings(schemes=("global", "distil"), epochs=2, alpha=0.0)
    trained = {s: list(scheme_epochs(start, "1", s, data, settings, TRAIN, net, 0))[-1][2] for s in settings.schemes}
    weights = {s: network.state_dict() for s, network in trained.items()}
    assert all(torch.equal(weights["global"][k], weights["distil"][k]) for k in weights["global"])  # bit for bit
    assert not torch.equal(weights["global"]["0.0.weight"], net.state_dict()["0.0.weight"])  # global moved the rest


def test_epoch_zero_is_measured_once_for_every_scheme_and_the_attack_is_made_against_the_compressed_network(toy):
    net, data = toy
    table = run(net, data, ["local", "global"], epochs=1)
    start = table[table["triage_epoch"] == 0]
    compressed = compress(net, "1", data.x_test, "kaiming_uniform", seed=0)
    from fragility.evaluation import accuracy

    x_adv = Attack("fgsm")(compressed, data.x_test, data.y_test, 0.1, 64)
    assert start["acc_clean"].tolist() == [accuracy(compressed, data.x_test, data.y_test)] * 2
    assert start["acc_adv"].tolist() == [accuracy(compressed, x_adv, data.y_test)] * 2


def test_drops_take_each_schemes_last_epoch_per_initialisation():
    table = pd.DataFrame(
        {
            "block": "b",
            "init": ["random"] * 4 + ["fit"] * 4,
            "scheme": ["local", "local", "global", "global"] * 2,
            "triage_epoch": [0, 1, 0, 1] * 2,
            "acc_clean": [0.2, 0.6, 0.2, 0.9, 0.8, 0.85, 0.8, 0.96],
            "acc_adv": [0.1, 0.3, 0.1, 0.5, 0.4, 0.4, 0.4, 0.5],
            "base_acc_clean": 0.95,
            "base_acc_adv": 0.45,
        }
    )
    found = drops(table)
    assert found["compression"].tolist() == ["triage_local", "triage_global"] * 2
    assert found["init"].tolist() == ["random", "random", "fit", "fit"]
    assert found["drop_clean"].tolist() == pytest.approx([0.35, 0.05, 0.1, -0.01])
    assert found["drop_adv"].tolist() == pytest.approx([0.15, -0.05, 0.05, -0.05])
    assert (found["unit_kind"] == "block").all() and (found["layer"] == "b").all()
    older = drops(table[table["init"] == "random"].drop(columns="init"))  # a table written before `init`
    assert older["init"].tolist() == ["random", "random"]


def test_a_triage_job_trains_on_the_runs_training_split_and_writes_both_tables(stage_files, tmp_path):
    from fragility.engine.sweep import SweepOptions
    from fragility.stress import RUN_COLUMNS, STRESS_TESTS, Context
    from fragility.stress.job import run_stress_job

    paths = [stage_files / name for name in ("checkpoint.pt", "testset.pt", "adversarial.pt")]
    context = Context(*paths, "cpu", SweepOptions(batch_size=16), data={"name": "digits", "max_train": 50})
    y = context.testset.y
    test = STRESS_TESTS["triage"]
    params = {"schemes": ["local", "distil"], "inits": ["random", "fit"], "epochs": 1, "fit_images": 40, "max_train": 30}
    params |= {
        "temperature": 4.0,
        "alpha": 0.9,
        "init": "kaiming_uniform",
        "attack": {"method": "fgsm", "clamp": True, "options": {}},
    }
    outputs = {"layer4.1": {table: tmp_path / table / "layer4.1.parquet" for table in test.tables}}
    run_stress_job(test, context, outputs, params, {"dataset": "digits", "model": "resnet18", "seed": 0, "epoch": 1})
    table = pd.read_parquet(outputs["layer4.1"]["triage"])
    assert list(table.columns) == test.tables["triage"] and list(table.columns[:4]) == RUN_COLUMNS
    steps = [["local", 0], ["local", 1], ["distil", 0], ["distil", 1]]
    assert table[["init", "scheme", "triage_epoch"]].values.tolist() == [["random", *s] for s in steps] + [
        ["fit", *s] for s in steps
    ]
    assert (table["train_size"] == 30).all() and (table["epsilon"] == 0.1).all() and (table["block"] == "layer4.1").all()
    assert table["cka"].between(0, 1).all()
    from fragility.evaluation import accuracy

    assert table["base_acc_adv"].iloc[0] == accuracy(context.model, context.adversarial.x_adv, y)  # the checkpoint's own set
    found = pd.read_parquet(outputs["layer4.1"]["triage_drops"])
    assert found["compression"].tolist() == ["triage_local", "triage_distil"] * 2
    assert found["init"].tolist() == ["random", "random", "fit", "fit"]
    assert found["drop_clean"].tolist() == pytest.approx((table["base_acc_clean"] - table["acc_clean"])[1::2].tolist())


def mnist_files(data_dir):
    """Small real-format MNIST IDX files (28×28) under ``data_dir``, as the loader reads them."""
    from formats import write_mnist

    write_mnist(data_dir / "MNIST" / "raw", n_train=40, n_test=10)
    return data_dir


def test_a_triage_job_runs_on_28x28_digits_where_a_block_rounds_its_size_up(tmp_path):
    """ResNet-18 on MNIST's 28×28: layer2.0 maps 7×7 to 4×4 and is replaced by a stride-2 convolution."""
    from fragility.artifacts import AdversarialSet, Checkpoint, ModelSpec, TestSet
    from fragility.data import load_dataset
    from fragility.engine.sweep import SweepOptions
    from fragility.stress import STRESS_TESTS, Context
    from fragility.stress.job import run_stress_job

    data_dir = mnist_files(tmp_path / "data")
    mnist = load_dataset("mnist", data_dir)
    torch.manual_seed(0)
    spec = ModelSpec("resnet18", 10, 1, None, [0.5], [0.25], "plain", "kaiming_uniform")
    model = spec.build().eval()
    config = TrainConfig(epochs=1, checkpoint_every=1, batch_size=16)
    Checkpoint.capture(model, config.optimizer(model.parameters()), 1, 0, torch.Generator(), spec, config).save(tmp_path / "c.pt")
    TestSet(mnist.x_test, mnist.y_test, 10).save(tmp_path / "t.pt")
    AdversarialSet((mnist.x_test + 0.1).clamp(0, 1), mnist.y_test, 0.1).save(tmp_path / "a.pt")
    data = {"name": "mnist", "data_dir": str(data_dir)}
    context = Context(tmp_path / "c.pt", tmp_path / "t.pt", tmp_path / "a.pt", "cpu", SweepOptions(batch_size=64), data=data)
    assert block_shapes(context.model, "layer2.0", mnist.x_test) == ((64, 7, 7), (128, 4, 4))
    test = STRESS_TESTS["triage"]
    params = TriageSettings(schemes=("local",), epochs=1, max_train=20).as_params()
    outputs = {"layer2.0": {table: tmp_path / table / "layer2.0.parquet" for table in test.tables}}
    run_stress_job(test, context, outputs, params, {"dataset": "mnist", "model": "resnet18", "seed": 0, "epoch": 1})
    table = pd.read_parquet(outputs["layer2.0"]["triage"])
    assert table[["init", "triage_epoch"]].values.tolist() == [["random", 0], ["random", 1], ["fit", 0], ["fit", 1]]
    assert table[["acc_clean", "acc_adv", "cka"]].notna().all().all() and (table["train_size"] == 20).all()
    assert (table["params_compressed"] == 64 * 128 * 9 + 2 * 128).all()


@pytest.mark.parametrize(
    "architecture, stem, block, stride",
    [("timm/resnet10t", "plain", "layer2.0", 2), ("squeezenet1_1", "cifar", "features.4", 1)],
)
def test_timm_blocks_and_fire_modules_are_triaged(architecture, stem, block, stride):
    from fragility.models import backbone, build_model

    torch.manual_seed(0)
    model = build_model(architecture, 10, 1, None, [0.5], [0.25], stem).eval()
    generator = torch.Generator().manual_seed(1)
    x, y = torch.rand(48, 1, 16, 16, generator=generator), torch.randint(0, 10, (48,), generator=generator)
    data = Dataset("toy", x[:32], y[:32], x[32:], y[32:], 10)
    compressed = compress(model, block, data.x_test, "kaiming_uniform", seed=0)
    replaced = backbone(compressed).get_submodule(block)
    assert isinstance(replaced[0], nn.Conv2d) and replaced[0].stride == (stride, stride)
    settings = TriageSettings(schemes=("local",), epochs=1)
    train = TrainConfig(epochs=1, checkpoint_every=1, batch_size=16, lr=1e-3)
    *_, (_, loss, network) = scheme_epochs(compressed, block, "local", data, settings, train, model, 0)
    assert math.isfinite(loss) and network(data.x_test).shape == (16, 10)


def test_triage_runs_on_the_configured_blocks_at_each_runs_last_checkpoint():
    config = validate_config({})
    blocks = [f"layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)]
    assert triage_units(config, "resnet18") == blocks and triage_epochs(config, "resnet18") == [4]
    settings = TriageSettings.from_config(config, "resnet18")
    assert settings.epochs == 2  # triage.epochs null: train.checkpoint_every
    assert settings.inits == ("random", "fit") and settings.fit_images == 512
    assert settings.schemes == ("local", "global", "local_global", "distil")
    assert triage_units(validate_config({"triage": {"schemes": []}}), "resnet18") == []
    assert triage_units(validate_config({"blocks": {"default": "none"}}), "resnet18") == []
    assert triage_epochs(validate_config({"triage": {"checkpoints": "all"}}), "resnet18") == [2, 4]
    assert triage_units(validate_config({"image_size": 28}), "resnet18") == blocks  # layer2.0: 7×7 → 4×4 at s = 2


def test_triage_config_errors_are_one_line_naming_the_key():
    from fragility.config import ConfigError

    with pytest.raises(ConfigError, match=r"^config key 'triage.schemes': local_global trains local .* with 1 epoch it is local"):
        validate_config({"triage": {"epochs": 1}})  # the default schemes hold local_global
    validate_config({"triage": {"epochs": 1, "schemes": ["local", "global", "distil"]}})
    with pytest.raises(ConfigError, match=r"^config key 'triage.stride': unknown key"):
        validate_config({"triage": {"stride": "ceil"}})  # gone: s = ⌈H/H'⌉ is the only rule
    with pytest.raises(ConfigError, match=r"^config key 'triage.inits.0': 'pretrained' is not one of"):
        validate_config({"triage": {"inits": ["pretrained"]}})


def test_the_default_config_on_mnist_validates_and_plans_its_whole_dag(tmp_path):
    import yaml
    from workflow_helpers import planned_jobs, scratch_workdir, snakemake

    data_dir = mnist_files(tmp_path / "data")
    default = yaml.safe_load((ROOT / "config.yaml").read_text())
    config = validate_config({**default, "datasets": ["mnist"], "data_dir": str(data_dir)})
    assert triage_units(config, "resnet18")[2] == "layer2.0"  # 7×7 → 4×4 on 28×28: s = 2, no error
    (tmp_path / "run").mkdir()
    workdir = scratch_workdir(tmp_path / "run", "config.yaml")
    result = snakemake(workdir, "-n", "--config", "datasets=[mnist]", f"data_dir={data_dir}")
    jobs = planned_jobs(result)
    assert result.returncode == 0, result.stderr[-2000:]
    assert jobs["triage_resnet18_part0"] == 2 and jobs["figure_triage"] == 1 and jobs["train"] == 2, jobs


def test_a_block_that_does_not_map_4d_to_4d_is_one_line_in_the_job():
    """What planning checks where torch is installed, the job checks too (planning without
    torch cannot): a block whose output is flat is refused before it is compressed."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 10)))
    assert block_shapes(net, "0", torch.zeros(2, 1, 8, 8)) == ((1, 8, 8), (4, 6, 6))
    with pytest.raises(ArchitectureError, match=r"^block '1' of this network does not map one 4-D tensor to one 4-D tensor"):
        block_shapes(net, "1", torch.zeros(2, 1, 8, 8))
