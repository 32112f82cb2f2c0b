import pandas as pd
import torch

from fragility.models import backbone
from fragility.retrain import layers_to_freeze, retrain
from fragility.train import ModelSpec, TrainConfig, load_checkpoint, train


def test_layers_to_freeze_uses_combined_difference_labels():
    scores = pd.DataFrame({
        "layer": ["conv1", "conv1", "fc", "__global__", "layer1.0.conv1"],
        "filter": ["combined", "h1", "combined", "combined", "combined"],
        "label_diff": ["fragile", "robust", "fragile", "fragile", "antifragile"],
    })
    assert layers_to_freeze(scores) == ["conv1", "fc"]


def test_frozen_layers_stay_bit_identical(small_digits, tmp_path):
    spec = ModelSpec.for_dataset("resnet18", small_digits)
    train(spec, small_digits, 0, TrainConfig(epochs=1, checkpoint_every=1), lambda e: tmp_path / "ck.pt", device="cpu")
    frozen = ["conv1", "layer2.0.conv1", "fc"]
    table, models = retrain(tmp_path / "ck.pt", small_digits, frozen, epochs=1, epsilon=0.05, device="cpu")
    start = backbone(load_checkpoint(tmp_path / "ck.pt"))
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
