import pytest
import torch

from fragility.artifacts import Checkpoint, CheckpointError, load_checkpoint
from fragility.evaluation import accuracy
from fragility.train import ModelSpec, TrainConfig, train


@pytest.fixture(scope="module")
def trained_run(small_digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    spec = ModelSpec.for_dataset("resnet18", small_digits)
    log = train(
        spec, small_digits, 0, TrainConfig(epochs=2, checkpoint_every=1), lambda e: folder / f"epoch{e:03d}.pt", device="cpu"
    )
    return folder, log


def test_training_log_and_checkpoints(trained_run):
    folder, log = trained_run
    assert log["epoch"].tolist() == [1, 2] and (log["loss"] > 0).all()
    assert sorted(p.name for p in folder.iterdir()) == ["epoch001.pt", "epoch002.pt"]


def test_checkpoint_round_trip(trained_run, small_digits):
    folder, log = trained_run
    model = load_checkpoint(folder / "epoch002.pt")
    assert not model.training
    assert accuracy(model, small_digits.x_test, small_digits.y_test) == pytest.approx(log["test_accuracy"].iloc[-1])
    checkpoint = Checkpoint.read(folder / "epoch002.pt")
    assert checkpoint.epoch == 2 and checkpoint.seed == 0 and checkpoint.optimizer_state["state"]
    assert set(checkpoint.rng_state) == {"torch", "data_order"}


def test_seeds_really_differ(small_digits, tmp_path):
    config = TrainConfig(epochs=1, checkpoint_every=1)
    spec = ModelSpec.for_dataset("squeezenet1_1", small_digits, stem="cifar")
    for seed in (1, 2):
        train(spec, small_digits, seed, config, lambda e, seed=seed: tmp_path / f"seed{seed}.pt", device="cpu")
    a, b = (Checkpoint.read(tmp_path / f"seed{s}.pt").model_state for s in (1, 2))
    assert not torch.equal(a["net.features.0.weight"], b["net.features.0.weight"])


class Exploit:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('ran')",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "fragility-checkpoint-1", "payload": Exploit()}, path)
    with pytest.raises(CheckpointError, match="evil.pt: not a loadable fragility checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_truncated_foreign_and_mismatched_checkpoints(trained_run, tmp_path):
    folder, _ = trained_run
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((folder / "epoch001.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated.pt: not a loadable"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not a fragility checkpoint"):
        load_checkpoint(foreign)
    checkpoint = Checkpoint.read(folder / "epoch001.pt")
    checkpoint.model_spec.name = "resnet34"
    other = tmp_path / "other.pt"
    checkpoint.save(other)
    with pytest.raises(CheckpointError, match="other.pt: weights do not fit architecture resnet34"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
