"""The trust record (fragility.trust): chance level by hand, each condition and its words, the
flags passed on, and a network left at its initialisation flagged."""

import math

import pandas as pd
import pytest

from fragility.artifacts import ModelSpec, TrainConfig, load_checkpoint
from fragility.attack import fgsm
from fragility.evaluation import predict
from fragility.train import train
from fragility.trust import (
    RECORD_COLUMNS,
    TRUST_COLUMNS,
    UNDETERMINED,
    UntrustedError,
    attack_record,
    chance_p_value,
    check_required,
    min_correct,
    trust_table,
    undetermine_labels,
    usable_rows,
    with_usable,
)

RUN = {"dataset": "d", "model": "m", "seed": 0}


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Bin(n, p), summed term by term."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def test_chance_threshold_by_hand_for_two_test_set_sizes():
    # 10 images, 2 classes: P(X >= 9) = 11/1024 = 0.0107 <= 0.05 < P(X >= 8) = 56/1024 = 0.0547
    assert chance_p_value(9, 10, 2) == pytest.approx(11 / 1024) and chance_p_value(8, 10, 2) == pytest.approx(56 / 1024)
    assert min_correct(10, 2, 0.05) == 9
    # 100 images, 10 classes, alpha 0.01: the first count whose tail falls to 0.01
    tails = {k: binomial_tail(k, 100, 0.1) for k in range(101)}
    expected = min(k for k, tail in tails.items() if tail <= 0.01)
    assert expected == 19 and tails[18] > 0.01  # 15 correct (the 0.15 of an undertrained net) is not enough
    assert min_correct(100, 10, 0.01) == expected
    assert chance_p_value(15, 100, 10) == pytest.approx(tails[15]) and tails[15] > 0.01
    assert min_correct(3, 10, 1e-6) == 4  # no count of 3 images can be that unlikely by chance


def record(epoch, correct_clean, correct_adv, num_classes=10):
    return attack_record({**RUN, "epoch": epoch}, "fgsm", 0.1, correct_clean, correct_adv, num_classes)


def searches(reached=True):
    return pd.DataFrame([{**RUN, "epoch": 2, "scope": "run", "epsilon": 0.1, "reached": reached}])


def test_each_failed_condition_is_named():
    n = 100
    good = record(1, [True] * 90 + [False] * 10, [True] * 45 + [False] * 55)
    chance = record(2, [True] * 11 + [False] * 89, [True] * 11 + [False] * 89)  # the attack moves nothing
    crushed = record(3, [True] * 90 + [False] * 10, [True] * 5 + [False] * 95)
    assert list(pd.DataFrame([good]).columns) == RECORD_COLUMNS and good["acc_adv"] == 0.45 and good["def7_holds"]
    table = trust_table(pd.DataFrame([good, chance, crushed]), searches(reached=False), 0.01, 0.25, 0.5)
    assert list(table.columns) == TRUST_COLUMNS
    trust = table.set_index("epoch")
    assert trust["usable"].tolist() == [True, False, False]
    assert trust.loc[1, "why"] == "" and trust.loc[1, "ratio"] == pytest.approx(0.5) and trust.loc[1, "min_correct"] == 19
    assert not trust.loc[1, "epsilon_reached"]  # reported, not a condition
    why = trust.loc[2, "why"]
    assert "clean accuracy 0.110 is not above chance 0.100" in why and f"on {n} images; needs 19 correct" in why
    assert "misclassifies no correctly classified image (Def. 7)" in why
    assert "adversarial accuracy ratio 1.000 lies outside epsilon.target 0.5 ± trust.ratio_tol 0.25" in why
    assert not trust.loc[2, "def7_holds"] and trust.loc[2, "def8_holds"]  # 0.11 > 1/10
    assert trust.loc[3, "why"].startswith("adversarial accuracy ratio 0.056") and not trust.loc[3, "def8_holds"]
    loose = trust_table(pd.DataFrame([crushed]), searches(), 0.01, 1.0, 0.5)  # ratio_tol 1: the ratio is ignored
    assert loose["usable"].all()


def test_require_names_every_unusable_checkpoint_in_one_line():
    trust = trust_table(
        pd.DataFrame([record(1, [True] * 90 + [False] * 10, [True] * 45 + [False] * 55), record(2, [True] * 10, [True] * 10)]),
        searches(),
        0.01,
        0.25,
        0.5,
    )
    with pytest.raises(UntrustedError) as caught:
        check_required(trust)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("trust.require: 1 checkpoint(s) not usable: d/m seed 0 epoch 2: ")
    check_required(trust[trust["usable"]])


def test_flags_join_and_labels_of_unusable_rows_are_undetermined():
    trust = pd.DataFrame([{**RUN, "epoch": 1, "usable": True}, {**RUN, "epoch": 2, "usable": False}])
    scores = pd.DataFrame(
        {**RUN, "epoch": [1, 2, 2], "layer": ["a", "a", "b"], "score_clean": [-0.1, -0.2, 0.3], "label_clean": ["fragile"] * 3}
    )
    scores["label_clean_conf"] = 0.9
    flagged = undetermine_labels(with_usable(scores, trust))
    assert flagged["usable"].tolist() == [True, False, False]
    assert flagged["label_clean"].tolist() == ["fragile", UNDETERMINED, UNDETERMINED]
    assert flagged["score_clean"].tolist() == [-0.1, -0.2, 0.3] and (flagged["label_clean_conf"] == 0.9).all()  # numbers kept
    kept, left_out = usable_rows(flagged)
    assert kept["epoch"].tolist() == [1] and left_out == 1
    with pytest.raises(ValueError, match="no trust record for d/m seed 0 epoch 3"):
        with_usable(scores.assign(epoch=3), trust)


def test_a_network_left_at_its_initialisation_is_flagged(small_digits, tmp_path):
    """Learning rate 1e-9: one epoch moves nothing; the network guesses."""
    spec = ModelSpec.for_dataset("resnet18", small_digits)
    train(spec, small_digits, 0, TrainConfig(epochs=1, checkpoint_every=1, lr=1e-9), lambda e: tmp_path / f"epoch{e:03d}.pt")
    model = load_checkpoint(tmp_path / "epoch001.pt")
    x, y = small_digits.x_test, small_digits.y_test
    correct_clean = (predict(model, x) == y).numpy()
    correct_adv = (predict(model, fgsm(model, x, y, 0.05)) == y).numpy()
    row = attack_record({**RUN, "epoch": 1}, "fgsm", 0.05, correct_clean, correct_adv, 10)
    trust = trust_table(pd.DataFrame([row]), searches().assign(epoch=1), 0.01, 0.25, 0.5)
    assert not trust["usable"].iloc[0] and not trust["above_chance"].iloc[0]
    assert trust["why"].iloc[0].startswith(f"clean accuracy {row['acc_clean']:.3f} is not above chance 0.100")
