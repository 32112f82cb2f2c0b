import pytest
import torch
from torch import nn

from fragility.engine.sweep import SweepOptions
from fragility.stress.synaptic import SWEEP_COLUMNS, plan_variants, predict_variants, sweep


def hand_model():
    """logits = W x with W = [[3, 0], [0, 1]]: m = 0, M = 3, A = 3 puts thresholds on 0, 1, 2, 3."""
    model = nn.Sequential(nn.Linear(2, 2, bias=False))
    model[0].weight.data = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    return model.eval()


X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
Y = torch.tensor([0, 1, 0])
X_ADV = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])

# (filter, step): (n_removed, acc_clean, acc_adv), worked out by hand (argmax ties pick class 0)
EXPECTED = {
    ("h1", 0): (2, 1, 1 / 3),
    ("h1", 1): (3, 2 / 3, 2 / 3),
    ("h1", 2): (3, 2 / 3, 2 / 3),
    ("h1", 3): (4, 2 / 3, 2 / 3),
    ("h2", 0): (1, 2 / 3, 0),
    ("h2", 1): (1, 2 / 3, 0),
    ("h2", 2): (2, 2 / 3, 2 / 3),
    ("h2", 3): (4, 2 / 3, 2 / 3),
    ("h3", 0): (2, 1, 1 / 3),
    ("h3", 1): (1, 2 / 3, 2 / 3),
    ("h3", 2): (0, 1, 1 / 3),
    ("h3", 3): (1, 2 / 3, 0),
}


@pytest.mark.parametrize("method", ["naive", "exact", "fast"])
def test_sweep_by_hand(method):
    model = hand_model()
    before = model[0].weight.detach().clone()
    table = sweep(model, "0", X, Y, X_ADV, steps=3, method=method)
    assert list(table.columns) == SWEEP_COLUMNS
    for row in table.itertuples():
        n, clean, adv = EXPECTED[(row.filter, row.step)]
        assert (row.n_removed, row.n_total) == (n, 4)
        assert row.acc_clean == pytest.approx(clean) and row.acc_adv == pytest.approx(adv)
    assert (table["acc_clean_unfiltered"] == 1).all() and table["acc_adv_unfiltered"].eq(1 / 3).all()
    assert table.loc[table["filter"] == "h2", "alpha"].tolist() == [3.0, 2.0, 1.0, 0.0]
    assert table["alpha_norm"].tolist()[:4] == [0, 1 / 3, 2 / 3, 1]
    assert torch.equal(model[0].weight, before)  # restored exactly


def test_identical_masks_are_planned_once():
    variants, representatives = plan_variants(torch.tensor([3.0, 0.0, 0.0, 1.0]), 3)
    # distinct removals: {0, 0} (h1₀ = h3₀), {0, 0, 1} (h1₁ = h1₂), all (h1₃ = h2₃),
    # {3} (h2₀ = h2₁ = h3₃), {3, 1} (h2₂), {1} (h3₁), none (h3₂)
    assert len(variants) == 12 and len(representatives) == 7


def test_sweep_restores_model_after_error():
    model = hand_model()
    before = model[0].weight.detach().clone()
    with pytest.raises(RuntimeError):
        sweep(model, "0", X, Y, torch.zeros(3, 5), steps=3)
    assert torch.equal(model[0].weight, before)


def test_sweep_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown filter"):
        sweep(hand_model(), "0", X, Y, X_ADV, filters=("h9",))
    with pytest.raises(ValueError, match="unknown sweep method 'quick'"):
        sweep(hand_model(), "0", X, Y, X_ADV, method="quick")
    with pytest.raises(ValueError, match="margin_guard must be >= 0, got -1"):
        sweep(hand_model(), "0", X, Y, X_ADV, margin_guard=-1)
    with pytest.raises(KeyError, match="not a Conv2d/Linear"):
        sweep(hand_model(), "nope", X, Y, X_ADV)
    with pytest.raises(RuntimeError, match="eval mode"):
        sweep(hand_model().train(), "0", X, Y, X_ADV)


def test_layer_of_one_weight():
    one = nn.Sequential(nn.Flatten(), nn.Linear(1, 1, bias=False)).eval()
    one[1].weight.data = torch.tensor([[2.0]])
    x, y = torch.tensor([[1.0], [-1.0]]), torch.tensor([0, 0])
    table = sweep(one, "1", x, y, x, steps=2)
    # one weight: m = M, Δ = 0 -> h1/h2 remove it at every step, h3 never does
    assert table.groupby("filter")["n_removed"].apply(list).to_dict() == {"h1": [1, 1, 1], "h2": [1, 1, 1], "h3": [0, 0, 0]}
    assert (table["n_total"] == 1).all() and (table["acc_clean"] == 1).all()


def test_nan_weights_give_a_clear_error():
    model = hand_model()
    model[0].weight.data[0, 0] = float("nan")
    with pytest.raises(ValueError, match="layer 0: weights contain NaN or inf"):
        sweep(model, "0", X, Y, X_ADV, steps=3)


def test_zero_adversarial_accuracy_gives_nan_scores_with_a_warning():
    from fragility.scoring.tables import score_table

    table = sweep(hand_model(), "0", X, Y, X_ADV, steps=3)
    table[["acc_adv", "acc_adv_unfiltered"]] = 0.0
    with pytest.warns(RuntimeWarning, match="undefined"):
        scores = score_table(table)
    assert scores["score_adv"].isna().all() and scores["label_adv"].isna().all() and scores["score_clean"].notna().all()


def test_the_whitebox_reading_attacks_each_filtered_network_and_keeps_the_transferred_one():
    from fragility.attack import fgsm
    from fragility.evaluation import accuracy

    model = hand_model()
    transferred = sweep(model, "0", X, Y, X_ADV, steps=3)
    table = sweep(model, "0", X, Y, X_ADV, steps=3, whitebox_epsilon=0.5)
    assert transferred["acc_adv_whitebox"].isna().all() and transferred["correct_adv_whitebox"].isna().all()
    columns = [c for c in SWEEP_COLUMNS if "whitebox" not in c]
    assert table[columns].equals(transferred[columns])
    unfiltered = accuracy(model, fgsm(model, X, Y, 0.5), Y)
    assert table["acc_adv_whitebox_unfiltered"].eq(unfiltered).all()
    model[0].weight.data = torch.tensor([[3.0, 0.0], [0.0, 0.0]])  # h1 step 1 removes 0, 0 and 1
    row = table[(table["filter"] == "h1") & (table["step"] == 1)].iloc[0]
    assert row["acc_adv_whitebox"] == accuracy(model, fgsm(model, X, Y, 0.5), Y)
    assert row["acc_clean"] == pytest.approx(2 / 3)


def test_the_whitebox_attack_can_be_pgd():
    from fragility.attack import Attack
    from fragility.evaluation import accuracy

    model = hand_model()
    attack = Attack("pgd", options={"steps": 3, "random_start": False})
    table = sweep(model, "0", X, Y, X_ADV, steps=3, whitebox_epsilon=0.5, attack=attack)
    assert table["acc_adv_whitebox_unfiltered"].eq(accuracy(model, attack(model, X, Y, 0.5), Y)).all()
    model[0].weight.data = torch.tensor([[3.0, 0.0], [0.0, 0.0]])  # h1 step 1
    row = table[(table["filter"] == "h1") & (table["step"] == 1)].iloc[0]
    assert row["acc_adv_whitebox"] == accuracy(model, attack(model, X, Y, 0.5), Y)


def test_a_fused_graph_that_disagrees_with_the_exact_one_is_not_used(monkeypatch, caplog):
    """A library layer the fusion would get wrong must cost speed, never a number: the fused
    graph's logits are compared with the exact graph's on the first batch before use."""
    import logging

    from fragility.engine.fusion import FusedSuffix
    from fragility.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval()
    x = torch.rand(6, 1, 16, 16)
    call = FusedSuffix.__call__
    monkeypatch.setattr(FusedSuffix, "__call__", lambda self, *cached: call(self, *cached) + torch.arange(10.0))
    stats = {}
    with caplog.at_level(logging.WARNING):
        _, fast = predict_variants(model, "layer1.0.conv1", x, SweepOptions(steps=3, method="fast", probe=False), stats)
    _, exact = predict_variants(model, "layer1.0.conv1", x, SweepOptions(steps=3, method="exact"))
    assert stats["engine"] == "exact" and "using the exact graph" in caplog.text
    assert all(torch.equal(fast[k], exact[k]) for k in exact)


def test_the_graph_choice_keeps_every_trial_prediction_and_runs_no_extra_pass(monkeypatch):
    """fast decides between the fused and the exact graph on the first real variants: every
    suffix call belongs to a variant (plus the fused graph's one check against the exact one on
    the first batch), and the predictions are the exact graph's."""
    from fragility.engine import sweep as engine
    from fragility.engine.fusion import FusedSuffix
    from fragility.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval()
    x = torch.rand(12, 1, 16, 16)
    calls = {"exact": 0, "fused": 0}
    fused_call, split_at = FusedSuffix.__call__, engine.split_at

    def counted_fused(self, *cached):
        calls["fused"] += 1
        return fused_call(self, *cached)

    def counted_split(*args, **kwargs):
        network = split_at(*args, **kwargs)

        def count(module, _inputs):
            calls["exact"] += module is network.suffix  # the fused copy carries this hook too

        network.suffix.register_forward_pre_hook(count)
        return network

    monkeypatch.setattr(FusedSuffix, "__call__", counted_fused)
    monkeypatch.setattr(engine, "split_at", counted_split)
    stats = {}
    options = SweepOptions(steps=4, method="fast", batch_size=4, margin_guard=0.0, min_fused_evaluations=0)
    keys, fast = predict_variants(model, "layer2.0.conv1", x, options, stats)
    distinct = len(fast)
    assert stats["guard_reruns"] == 0
    assert calls["exact"] + calls["fused"] == distinct * 3 + 2
    assert stats["engine"] in ("exact", "fused") and {"trial_fused_ms", "trial_exact_ms"} <= set(stats)
    _, exact = predict_variants(model, "layer2.0.conv1", x, SweepOptions(steps=4, method="exact", batch_size=4))
    assert all(torch.equal(fast[k], exact[k]) for k in exact)


@pytest.mark.parametrize(("minimum", "built"), [(10_000, 0), (0, 1)])
def test_a_layer_too_small_to_win_back_the_fused_graph_runs_exact_without_building_it(monkeypatch, minimum, built):
    """Building the fused graph costs about 0.1 s of Python; a layer with fewer image
    evaluations (images × distinct variants) than ``min_fused_evaluations`` runs the exact
    graph at once, so that ``fast`` costs what ``exact`` does there."""
    from fragility.engine import sweep as engine
    from fragility.engine.fusion import FusedSuffix
    from fragility.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval()
    x = torch.rand(12, 1, 8, 8)
    builds = []
    monkeypatch.setattr(engine, "FusedSuffix", lambda *args, **kwargs: builds.append(1) or FusedSuffix(*args, **kwargs))
    stats = {}
    options = SweepOptions(steps=4, method="fast", batch_size=4, min_fused_evaluations=minimum)
    _, fast = predict_variants(model, "layer2.0.conv1", x, options, stats)
    _, exact = predict_variants(model, "layer2.0.conv1", x, SweepOptions(steps=4, method="exact", batch_size=4))
    assert len(x) * len(fast) < 10_000 and len(builds) == built
    assert stats["engine"] == "exact" if not built else "trial_fused_ms" in stats
    assert all(torch.equal(fast[k], exact[k]) for k in exact)


@pytest.mark.parametrize(
    ("fused_ms", "exact_ms", "chosen"),
    [
        ([1.0, 1.0, 1.0], [3.0, 3.0, 3.0], "fused"),  # clearly faster
        ([3.0, 3.0, 3.0], [1.0, 1.0, 1.0], "exact"),
        ([2.0, 0.97, 0.97], [2.0, 1.0, 1.0], "exact"),  # 3 % faster: within a quiet machine's noise (5 %)
        ([2.0, 0.9, 0.9], [2.0, 1.0, 1.0], "fused"),  # 10 % faster on a quiet machine (the warm-up call left out)
        ([0.5, 1.0, 1.0], [1.0, 0.7, 1.0], "exact"),  # one lucky fused call under load: 43 % noise, 29 % gain
        ([0.5, 0.6, 0.6], [1.0, 0.7, 0.75], "fused"),  # 20 % noise, 29 % gain
    ],
)
def test_the_graph_choice_takes_the_fused_graph_only_beyond_the_timing_noise(monkeypatch, fused_ms, exact_ms, chosen):
    """Alternating fused, exact three times each (both graphs warmed up by the check), then
    the fused graph runs every later call only where its fastest call beats the exact graph's
    by more than the timings' noise (the second-fastest call's distance to the fastest, at
    least 5 %); else the exact graph does."""
    from fragility.engine import sweep as engine

    clock = [0.0]
    monkeypatch.setattr(engine.time, "perf_counter", lambda: clock[0])
    costs = {"exact": iter(exact_ms), "fused": iter(fused_ms)}

    def call(graph):
        def run():
            clock[0] += next(costs[graph], 1.0) / 1e3
            return graph

        return run

    stats = {}
    choice = engine.GraphChoice(type("Fused", (), {"reduced": 3})(), True, stats)
    ran = []
    for _ in range(9):
        graph = choice.graph
        ran.append(choice.run(graph, call(graph)))
    assert ran[:6] == ["fused", "exact"] * 3
    assert ran[6:] == [chosen] * 3
    assert stats["engine"] == chosen and stats["trial_exact_ms"] == pytest.approx(min(exact_ms))
    assert stats["reduced_convs"] == (3 if chosen == "fused" else 0)


@pytest.mark.parametrize("layer", ["conv1", "layer3.1.conv2", "fc"])
def test_mapped_variants_give_the_unbatched_predictions(layer):
    """variant_batch > 1 (a GPU's default) stacks several variants' weights in one mapped
    suffix call; near ties go to the exact graph, so every image's class is the exact path's."""
    from fragility.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1, None, [0.5], [0.25]).eval()
    x = torch.rand(10, 1, 16, 16)
    stats = {}
    _, mapped = predict_variants(model, layer, x, SweepOptions(steps=4, method="fast", batch_size=4, variant_batch=3), stats)
    _, exact = predict_variants(model, layer, x, SweepOptions(steps=4, method="exact", batch_size=4))
    assert stats["engine"] == "mapped" and stats["evaluations"] == len(exact) * len(x)
    assert mapped.keys() == exact.keys() and all(torch.equal(mapped[k], exact[k]) for k in exact)
