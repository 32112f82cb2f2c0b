"""Structural compression (fragility.stress.triage, METHOD §13) on a two-block toy network
whose compressed network can be written out by hand."""

import math

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
    scheme_epochs,
    triage_block,
    triage_epochs,
    triage_units,
)

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


def test_compression_stride_is_the_ratio_of_the_shapes_and_refuses_a_fraction():
    assert compression_stride("b", (3, 8, 8), (16, 4, 4)) == 2
    assert compression_stride("b", (16, 4, 4), (16, 4, 4)) == 1
    with pytest.raises(TriageError, match=r"block 'layer2.0' maps 7×7 to 4×4: no integer stride"):
        compression_stride("layer2.0", (64, 7, 7), (128, 4, 4))
    with pytest.raises(TriageError, match="no integer stride"):
        compression_stride("b", (3, 8, 4), (3, 4, 4))  # 2 down, 1 across
    # ceil: the stride whose 3×3 convolution (padding 1) gives the block's size, as a strided block rounds up
    assert compression_stride("layer2.0", (64, 7, 7), (128, 4, 4), "ceil") == 2
    assert compression_stride("b", (3, 8, 8), (16, 4, 4), "ceil") == 2
    assert compression_stride("b", (3, 8, 8), (3, 3, 3), "ceil") == 3  # (8 − 1) // 3 + 1 = 3
    with pytest.raises(TriageError, match=r"maps 8×8 to 5×5: no integer stride \(ceil rule\)"):
        compression_stride("b", (3, 8, 8), (3, 5, 5), "ceil")  # s = 2 gives (8 − 1) // 2 + 1 = 4, s = 1 gives 8


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


def run(net, data, schemes, epochs=2, alpha=0.9):
    settings = TriageSettings(
        schemes=tuple(schemes), epochs=epochs, alpha=alpha, attack={"method": "fgsm", "clamp": True, "options": {}}
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
    )


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
    assert (table["train_size"] == 40).all()


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


def test_drops_take_each_schemes_last_epoch():
    table = pd.DataFrame(
        {
            "block": "b",
            "scheme": ["local", "local", "global", "global"],
            "triage_epoch": [0, 1, 0, 1],
            "acc_clean": [0.2, 0.6, 0.2, 0.9],
            "acc_adv": [0.1, 0.3, 0.1, 0.5],
            "base_acc_clean": 0.95,
            "base_acc_adv": 0.45,
        }
    )
    found = drops(table)
    assert found["compression"].tolist() == ["triage_local", "triage_global"]
    assert found["drop_clean"].tolist() == pytest.approx([0.35, 0.05])
    assert found["drop_adv"].tolist() == pytest.approx([0.15, -0.05])
    assert (found["unit_kind"] == "block").all() and (found["layer"] == "b").all()


def test_a_triage_job_trains_on_the_runs_training_split_and_writes_both_tables(stage_files, tmp_path):
    from fragility.engine.sweep import SweepOptions
    from fragility.stress import RUN_COLUMNS, STRESS_TESTS, Context
    from fragility.stress.job import run_stress_job

    paths = [stage_files / name for name in ("checkpoint.pt", "testset.pt", "adversarial.pt")]
    context = Context(*paths, "cpu", SweepOptions(batch_size=16), data={"name": "digits", "max_train": 50})
    y = context.testset.y
    test = STRESS_TESTS["triage"]
    params = {"schemes": ["local", "distil"], "epochs": 1, "temperature": 4.0, "alpha": 0.9, "max_train": 30}
    params |= {"stride": "exact", "init": "kaiming_uniform", "attack": {"method": "fgsm", "clamp": True, "options": {}}}
    outputs = {"layer4.1": {table: tmp_path / table / "layer4.1.parquet" for table in test.tables}}
    run_stress_job(test, context, outputs, params, {"dataset": "digits", "model": "resnet18", "seed": 0, "epoch": 1})
    table = pd.read_parquet(outputs["layer4.1"]["triage"])
    assert list(table.columns) == test.tables["triage"] and list(table.columns[:4]) == RUN_COLUMNS
    assert table[["scheme", "triage_epoch"]].values.tolist() == [["local", 0], ["local", 1], ["distil", 0], ["distil", 1]]
    assert (table["train_size"] == 30).all() and (table["epsilon"] == 0.1).all() and (table["block"] == "layer4.1").all()
    from fragility.evaluation import accuracy

    assert table["base_acc_adv"].iloc[0] == accuracy(context.model, context.adversarial.x_adv, y)  # the checkpoint's own set
    found = pd.read_parquet(outputs["layer4.1"]["triage_drops"])
    assert found["compression"].tolist() == ["triage_local", "triage_distil"]
    assert found["drop_clean"].tolist() == pytest.approx((table["base_acc_clean"] - table["acc_clean"])[1::2].tolist())


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
    assert TriageSettings.from_config(config, "resnet18").epochs == 2  # triage.epochs null: train.checkpoint_every
    assert triage_units(validate_config({"triage": {"schemes": []}}), "resnet18") == []
    assert triage_units(validate_config({"blocks": {"default": "none"}}), "resnet18") == []
    assert triage_epochs(validate_config({"triage": {"checkpoints": "all"}}), "resnet18") == [2, 4]
    assert triage_units(validate_config({"image_size": 28, "triage": {"stride": "ceil"}}), "resnet18") == blocks
    assert triage_units(validate_config({"image_size": 28, "triage": {"schemes": []}}), "resnet18") == []  # no check
