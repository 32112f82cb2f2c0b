import numpy as np
import pandas as pd
import pytest

from fragility.scoring.bootstrap import (
    INTERVAL_COLUMNS,
    intervals,
    pack_correct,
    replicate_counts,
    run_generator,
    unpack_correct,
)
from fragility.scoring.scores import SCORE_COLUMNS
from fragility.scoring.tables import score_table

STEPS = 4


def sweep_rows(patterns: dict, unfiltered_clean, unfiltered_adv, n_total=8) -> pd.DataFrame:
    """patterns: (filter, step) -> (n_removed, clean correctness, adversarial correctness) per image."""
    rows = []
    for (name, step), (removed, clean, adv) in patterns.items():
        clean, adv = np.asarray(clean, bool), np.asarray(adv, bool)
        rows.append(
            dict(
                dataset="d",
                model="m",
                seed=0,
                epoch=1,
                attack="fgsm",
                layer="fc",
                filter=name,
                step=step,
                alpha=float(step),
                alpha_norm=step / STEPS,
                n_removed=removed,
                n_total=n_total,
                acc_clean=clean.mean(),
                acc_adv=adv.mean(),
                acc_clean_unfiltered=np.mean(unfiltered_clean),
                acc_adv_unfiltered=np.mean(unfiltered_adv),
                n_images=len(clean),
                correct_clean=pack_correct(clean),
                correct_adv=pack_correct(adv),
                correct_clean_unfiltered=pack_correct(unfiltered_clean),
                correct_adv_unfiltered=pack_correct(unfiltered_adv),
            )
        )
    return pd.DataFrame(rows)


def random_sweep(n: int, seed: int = 0, tile: int = 1) -> pd.DataFrame:
    """A layer whose variants lose accuracy with the step; ``tile`` repeats the same images."""
    rng = np.random.default_rng(seed)
    unfiltered_clean = np.tile(rng.random(n) < 0.9, tile)
    unfiltered_adv = np.tile(rng.random(n) < 0.5, tile)
    patterns = {}
    for name in ("h1", "h2", "h3"):
        for step in range(STEPS + 1):
            keep = 1 - step / (STEPS + 1)
            patterns[(name, step)] = (
                2 * step,
                np.tile(rng.random(n) < 0.9 * keep, tile),
                np.tile(rng.random(n) < 0.5 * keep, tile),
            )
    return sweep_rows(patterns, unfiltered_clean, unfiltered_adv)


def test_bits_round_trip():
    correct = np.array([True, False, True, True, False, False, True, False, True, True])
    assert unpack_correct(pack_correct(correct), len(correct)).tolist() == correct.tolist()
    counts = replicate_counts(7, 5, np.random.default_rng(0))
    assert counts.shape == (5, 7) and (counts.sum(axis=1) == 7).all()


def test_identical_images_give_zero_width_intervals_and_full_confidence():
    n = 40
    same = lambda ok: np.full(n, ok)  # noqa: E731  every image behaves alike
    patterns = {(f, s): (2 * s, same(s < 2), same(s < 1)) for f in ("h1", "h2", "h3") for s in range(STEPS + 1)}
    table = score_table(sweep_rows(patterns, same(True), same(True)), bootstrap=100)
    for kind in ("clean", "adv", "diff"):
        assert (table[f"score_{kind}_lo"] == table[f"score_{kind}"]).all()
        assert (table[f"score_{kind}_hi"] == table[f"score_{kind}"]).all()
        assert (table[f"label_{kind}_conf"] == 1.0).all()


def test_interval_width_shrinks_as_one_over_root_n():
    small = score_table(random_sweep(100), bootstrap=800, bootstrap_seed=1).set_index("filter")
    large = score_table(random_sweep(100, tile=4), bootstrap=800, bootstrap_seed=1).set_index("filter")
    pd.testing.assert_series_equal(small["score_clean"], large["score_clean"])  # the same point estimate
    for kind in ("clean", "adv", "diff"):
        width = {name: t[f"score_{kind}_hi"] - t[f"score_{kind}_lo"] for name, t in (("small", small), ("large", large))}
        ratio = (width["large"] / width["small"]).loc[["h1", "h2", "h3", "combined"]]
        assert ratio.between(0.4, 0.6).all(), (kind, ratio.tolist())  # 1/sqrt(4) = 0.5


def test_same_seed_same_intervals_and_bootstrap_zero_leaves_point_scores():
    sweep = random_sweep(60)
    a, b = score_table(sweep, bootstrap=50, bootstrap_seed=3), score_table(sweep, bootstrap=50, bootstrap_seed=3)
    pd.testing.assert_frame_equal(a, b)
    other = score_table(sweep, bootstrap=50, bootstrap_seed=4)
    assert not other["score_clean_lo"].equals(a["score_clean_lo"])
    off = score_table(sweep, bootstrap=0)
    assert off[INTERVAL_COLUMNS].isna().all().all()
    pd.testing.assert_frame_equal(off[SCORE_COLUMNS], a[SCORE_COLUMNS])
    assert (a["score_clean_lo"] <= a["score_clean"]).all() and (a["score_clean"] <= a["score_clean_hi"]).all()
    assert a[["label_clean_conf", "label_adv_conf", "label_diff_conf"]].stack().between(0, 1).all()


def test_confidence_is_the_share_of_replicates_with_the_point_label():
    """Two images, both right unfiltered. Image 1 stays right clean at every step; image 0 is
    wrong in every variant, clean and adversarial, and adversarially image 1 is lost at step A.
    With φ̄_i = 1 − i/4 (Σ φ̄ = 2.5) a replicate holding image 0 k times (k = 0, 1, 2; P = ¼, ½, ¼)
    and image 1 2 − k times scores, by Eq. 14–16 with Δα̂ = ¼:
      r_x  = (5·(2 − k)/2 − 2.5)/4 = +0.625, 0, −0.625 → antifragile, robust, fragile
      r_xε = (4·(2 − k)/2 − 2.5)/4 = +0.375, −0.125, −0.625 → antifragile, fragile, fragile
      r_ε  = −((2 − k)/2)/4       = −0.25, −0.125, 0 → fragile, fragile, robust
    The point estimate is the k = 1 column (robust, fragile, fragile), so the confidences are
    exactly P(k = 1) = ½, P(k ≥ 1) = ¾ and P(k ≤ 1) = ¾ — and, for the replicates drawn, the
    share of them with that k."""
    patterns = {(f, s): (2 * s, [False, True], [False, s < STEPS]) for f in ("h1", "h2", "h3") for s in range(STEPS + 1)}
    sweep = sweep_rows(patterns, [True, True], [True, True])
    replicates = 2000
    table = score_table(sweep, bootstrap=replicates, bootstrap_seed=0).set_index("filter")
    assert table["score_clean"].tolist() == [0.0] * 4 and table["score_adv"].tolist() == [-0.125] * 4
    assert table["score_diff"].tolist() == [-0.125] * 4
    assert table[["label_clean", "label_adv", "label_diff"]].drop_duplicates().values.tolist() == [
        ["robust", "fragile", "fragile"]
    ]
    # the replicates this table drew: the unit's own generator (scores.bootstrap_seed and the run's keys)
    k = replicate_counts(2, replicates, run_generator(0, ("d", "m", 0, 1, "fgsm", "fc")))[:, 0]
    drawn = {"clean": np.mean(k == 1), "adv": np.mean(k >= 1), "diff": np.mean(k <= 1)}
    exact = {"clean": 0.5, "adv": 0.75, "diff": 0.75}
    for kind in ("clean", "adv", "diff"):
        assert (table[f"label_{kind}_conf"] == drawn[kind]).all(), kind
        sigma = np.sqrt(exact[kind] * (1 - exact[kind]) / replicates)  # binomial: ≤ 0.0112
        assert abs(drawn[kind] - exact[kind]) < 4 * sigma, (kind, drawn[kind])
    with pytest.raises(ValueError, match="bootstrap must be >= 0"):
        score_table(sweep, bootstrap=-1)


def test_whitebox_intervals_come_from_the_same_draws_and_are_nan_without_the_reading():
    df = random_sweep(60)
    without = score_table(df, bootstrap=50)
    whitebox_columns = [c for c in without if "whitebox" in c]
    assert without[whitebox_columns].isna().all().all() and without.drop(columns=whitebox_columns).notna().all().all()
    twin = df.assign(
        acc_adv_whitebox=df["acc_adv"],
        acc_adv_whitebox_unfiltered=df["acc_adv_unfiltered"],
        correct_adv_whitebox=df["correct_adv"],
        correct_adv_whitebox_unfiltered=df["correct_adv_unfiltered"],
    )
    both = score_table(twin, bootstrap=50)
    for kind in ("adv", "diff"):
        for suffix in ("_lo", "_hi"):
            assert both[f"score_{kind}_whitebox{suffix}"].equals(both[f"score_{kind}{suffix}"])
        assert both[f"label_{kind}_whitebox_conf"].equals(both[f"label_{kind}_conf"])
    pd.testing.assert_frame_equal(both.drop(columns=whitebox_columns), without.drop(columns=whitebox_columns))


def test_the_bootstrap_shows_a_bar_over_the_units_when_asked(capsys):
    sweep = random_sweep(40)
    points = score_table(sweep, bootstrap=0).drop(columns=INTERVAL_COLUMNS)
    shown = intervals(points, sweep, "rectangle", 0.02, 20, 0, progress=True)
    assert "bootstrap (20 replicates): units" in capsys.readouterr().err
    quiet = intervals(points, sweep, "rectangle", 0.02, 20, 0, progress=False)
    assert capsys.readouterr().err == "" and shown.equals(quiet)
