"""The upstream split is used only where it can be trusted; elsewhere the layer falls back to
the whole network, logging why, and the sweep's numbers stay those of the naive path."""

import logging

import torch
from factories import DataDependent, TiedEncoder, small_cnn

from fragility.engine.sweep import SweepOptions
from fragility.engine.upstream import split_at
from fragility.stress.synaptic import sweep


def test_split_gives_the_models_logits_bit_for_bit():
    torch.manual_seed(0)
    net = small_cnn(3).eval()
    x = torch.rand(5, 1, 6, 6)
    network = split_at(net, ["3"], example=x)
    assert network.upstream
    with torch.inference_mode():
        assert torch.equal(network.suffix(*network.prefix(x)), net(x))


def test_untraceable_model_falls_back_and_says_why(caplog):
    net = DataDependent().eval()
    with caplog.at_level(logging.WARNING):
        assert not split_at(net, ["fc"]).upstream
    assert "layer fc: no upstream cache" in caplog.text and "torch.fx cannot trace DataDependent" in caplog.text


def test_weights_read_before_the_cut_fall_back(caplog):
    net = TiedEncoder().eval()
    with caplog.at_level(logging.WARNING):
        assert not split_at(net, ["head"]).upstream
    assert "reads its weights (shared or tied parameters)" in caplog.text


def test_sweeps_through_fallbacks_equal_the_naive_sweep():
    torch.manual_seed(0)
    for net, x in ((DataDependent().eval(), torch.randn(12, 1, 5, 5)), (TiedEncoder().eval(), torch.randn(12, 3))):
        y = torch.arange(12) % 3
        for layer in ("fc", "conv") if isinstance(net, DataDependent) else ("embed", "head"):
            tables = [
                sweep(net, layer, x, y, x + 0.1, options=SweepOptions(steps=4, method=m, batch_size=5)) for m in ("naive", "fast")
            ]
            assert tables[0][["acc_clean", "acc_adv", "correct_clean"]].equals(
                tables[1][["acc_clean", "acc_adv", "correct_clean"]]
            )
