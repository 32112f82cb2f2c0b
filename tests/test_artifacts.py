"""Given weights: reading them (torch.save, nested, safetensors), checking them against the
architecture with errors naming the first bad key, and the epoch-0 checkpoint made from them."""

import pytest
import torch
from factories import small_cnn

from fragility.artifacts import Checkpoint, ModelSpec, TrainConfig, WeightsError, check_weights, read_weights

SPEC = ModelSpec("mine", 3, 1, None, [0.5], [0.25], "plain", "given", "factories:small_cnn")


@pytest.fixture
def weights():
    torch.manual_seed(1)
    return small_cnn(3).state_dict()


@pytest.mark.parametrize("form", ["plain", "nested", "safetensors"])
def test_weights_read_in_every_form_give_the_same_tensors(tmp_path, weights, form):
    if form == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in weights.items()}, path)
    else:
        path = tmp_path / "w.pt"
        torch.save({"state_dict": weights, "epoch": 3} if form == "nested" else weights, path)
    read = read_weights(path)
    assert read.keys() == weights.keys() and all(torch.equal(read[k], weights[k]) for k in weights)


def test_weights_never_unpickle_code(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"weights": torch.zeros(1), "hook": print}, path)
    with pytest.raises(WeightsError, match="w.pt: not a loadable state_dict"):
        read_weights(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w: w.pop("3.weight"), "missing key '3.weight' \\(1 missing, 0 unexpected"),
        (lambda w: w.update({"9.weight": torch.zeros(1)}), "unexpected key '9.weight'"),
        (
            lambda w: w.update({"0.weight": torch.zeros(8, 1, 5, 5)}),
            "0.weight has shape \\(8, 1, 5, 5\\) in the weights, factories:small_cnn expects \\(8, 1, 3, 3\\)",
        ),
        (
            lambda w: w.update({"8.weight": torch.zeros(10, 8), "8.bias": torch.zeros(10)}),
            "classifier 8.weight has 10 outputs, but the dataset has 3 classes",
        ),
    ],
)
def test_weights_that_do_not_fit_name_the_first_bad_key(weights, change, message):
    change(weights)
    with pytest.raises(WeightsError, match=f"w.pt: .*{message}"):
        check_weights(SPEC, weights, "w.pt")


def test_given_checkpoint_holds_the_weights_and_resumes_with_a_fresh_adam(tmp_path, weights):
    torch.save(weights, tmp_path / "w.pt")
    checkpoint = Checkpoint.given(SPEC, tmp_path / "w.pt", TrainConfig(epochs=0, checkpoint_every=1, lr=0.01))
    checkpoint.save(tmp_path / "epoch000.pt")
    read = Checkpoint.read(tmp_path / "epoch000.pt")
    model = read.model()
    assert read.epoch == 0 and read.optimizer_state == {} and read.model_spec == SPEC
    assert all(torch.equal(model.net.state_dict()[k], weights[k]) for k in weights)
    x = torch.rand(4, 1, 6, 6)
    with torch.inference_mode():
        expected = small_cnn(3).eval()
        expected.load_state_dict(weights)
        assert torch.equal(model(x), expected((x - 0.5) / 0.25))
    state = read.resume()
    assert state.optimizer.state == {} and state.optimizer.param_groups[0]["lr"] == 0.01
