"""Bars on the loops a user waits on in the Python API, off where nobody watches."""

from fragility.progress import progress, watched


def test_a_bar_is_drawn_when_asked_and_never_when_not(capsys):
    assert list(progress(range(3), "epochs", enabled=True)) == [0, 1, 2]
    drawn = capsys.readouterr().err
    assert "epochs" in drawn and "3/3" in drawn
    assert list(progress(range(3), "epochs", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_by_default_a_bar_follows_whether_a_person_watches(capsys):
    assert not watched()  # pytest captures stderr: no terminal, no notebook kernel
    list(progress(range(3), "variants"))
    assert capsys.readouterr().err == ""


def test_training_and_a_sweep_show_their_bars(capsys, small_digits, tmp_path):
    from fragility.engine.sweep import SweepOptions
    from fragility.stress.synaptic import sweep
    from fragility.train import ModelSpec, TrainConfig, train

    data = small_digits
    spec = ModelSpec.for_dataset("resnet18", data)
    train(spec, data, 0, TrainConfig(epochs=1, checkpoint_every=1), lambda e: tmp_path / "e.pt", device="cpu", progress=True)
    drawn = capsys.readouterr().err
    assert "epochs" in drawn and "batches" in drawn
    model = spec.build().eval()
    sweep(model, "fc", data.x_test[:16], data.y_test[:16], data.x_test[:16], SweepOptions(steps=2, progress=True))
    assert "variants" in capsys.readouterr().err
