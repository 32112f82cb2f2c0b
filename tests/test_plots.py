"""Every figure of fragility.plots read back from what it draws: panels and titles, tick
labels, plotted values, marks and annotations, on hand-made tables whose answers are known;
and every registered figure read as a person reads it (tests/readability.py), on a real tiny
run's tables with two checkpoints, with one, and grown to a ResNet-18's units."""

import functools
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import readability  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from fragility import plots  # noqa: E402
from fragility.figures import FIGURES  # noqa: E402
from fragility.scoring.bootstrap import INTERVAL_COLUMNS  # noqa: E402
from fragility.scoring.scores import SCORE_COLUMNS  # noqa: E402
from fragility.stress import validate  # noqa: E402
from fragility.stress.kernels import KERNEL_COLUMNS, TARGETING_COLUMNS  # noqa: E402
from fragility.stress.synaptic import SWEEP_COLUMNS  # noqa: E402

GLOBAL = "__global__"
RUN = ["dataset", "model", "seed", "epoch"]
RUN_VALUES = {"dataset": "mnist", "model": "lenet", "attack": "fgsm"}
TITLE = "mnist / lenet / attack fgsm"
KINDS = ("clean", "adv", "diff")
SCORE_TITLES = ["clean r_x", "adversarial r_xε", "difference r_ε"]
FILTER_TITLES = ["h1 high-pass", "h2 low-pass", "h3 pulse wave", "combined"]
# the tables that are not imported (their modules are being moved): columns as the real ones
RETRAIN_COLUMNS = ["branch", "epoch", "retrain_epochs", "n_frozen", "frozen_layers", "acc_clean", "acc_adv", "epsilon", "attack"]
SUMMARY_COLUMNS = ["dataset", "model", "scope", "epoch", "accuracy", "n_pairs", "mean_diff", "std_diff", "wilcoxon_p"]
AGREEMENT_COLUMNS = ["dataset", "model", "epoch", "measure_a", "measure_b", "kendall_tau", "spread", "n_layers"]
REMOVABLE_COLUMNS = ["dataset", "model", "seed", "epoch", "layer", "filter", "removable_clean", "removable_adv", "removable"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- reading figures back


def texts(labels) -> list[str]:
    return [t.get_text() for t in labels]


def heatmap_grid(ax) -> np.ndarray:
    """The colour values of a seaborn heatmap as rows (top to bottom) x columns, NaN where masked."""
    values = np.ma.filled(np.ma.asarray(ax.collections[0].get_array(), dtype=float), np.nan)
    return values.reshape(len(ax.get_yticklabels()), len(ax.get_xticklabels()))


def cell_texts(ax) -> dict[tuple[int, int], str]:
    """(row, column) -> annotation text of a seaborn heatmap (cells at x + 0.5, y + 0.5)."""
    return {(int(t.get_position()[1]), int(t.get_position()[0])): t.get_text() for t in ax.texts}


def data_lines(ax) -> list:
    """The plotted curves of an axes: lines with data, not axhlines (axes-coordinate x) or legend proxies."""
    return [line for line in ax.get_lines() if len(line.get_xdata()) and line.get_transform() is ax.transData]


def floats(values) -> np.ndarray:
    return np.asarray(values, dtype=float)


def same_colour(a, b) -> bool:
    return np.allclose(to_rgba(a), to_rgba(b))


def hlines(ax) -> list[float]:
    """The y of every axhline of an axes."""
    return [float(line.get_ydata()[0]) for line in ax.get_lines() if line.get_transform() is not ax.transData]


# ---------------------------------------------------------------- score tables


# seed offsets: mean 0.03, median 0.01, first seed 0.0 -- only the mean over seeds matches
SEED_OFFSETS = (0.0, 0.01, 0.08)
CONFIDENCE = {"clean": (0.90, 0.92, 0.97), "adv": (1.0, 1.0, 1.0), "diff": (0.5, 0.6, 0.7)}  # means .93, 1.00, .60


def label_of(score: float) -> str:
    return "fragile" if score < -0.02 else "antifragile" if score > 0.02 else "robust"


def score_row(layer, filter_name, epoch, seed, values, confidence=None, lo=None, hi=None, labels=None) -> dict:
    row = {**RUN_VALUES, "seed": seed, "epoch": epoch, "layer": layer, "filter": filter_name}
    for i, kind in enumerate(KINDS):
        row[f"score_{kind}"] = values[i]
        row[f"norm_{kind}"] = values[i] / 2
        row[f"label_{kind}"] = labels[i] if labels else label_of(values[i])
        row[f"score_{kind}_lo"] = values[i] - 0.1 if lo is None else lo[i]
        row[f"score_{kind}_hi"] = values[i] + 0.1 if hi is None else hi[i]
        row[f"label_{kind}_conf"] = 0.9 if confidence is None else confidence[i]
    return row


def score_table(bases: dict, intervals: bool = True) -> pd.DataFrame:
    """bases: (layer, filter, epoch) -> (clean, adv, diff) base scores; three seeds each, score
    base + SEED_OFFSETS[seed]; the label of the base for seeds 1 and 2, another one for seed 0
    (so the majority, not the first seed, is the mark); confidences CONFIDENCE."""
    rows = []
    for (layer, filter_name, epoch), base in bases.items():
        for seed, offset in enumerate(SEED_OFFSETS):
            majority = [label_of(b) for b in base]
            labels = [("fragile" if m != "fragile" else "robust") if seed == 0 else m for m in majority]
            values = [b + offset for b in base]
            confidence = [CONFIDENCE[kind][seed] for kind in KINDS]
            rows.append(score_row(layer, filter_name, epoch, seed, values, confidence, labels=labels))
    table = pd.DataFrame(rows, columns=SCORE_COLUMNS + INTERVAL_COLUMNS)
    return table if intervals else table[SCORE_COLUMNS]


LAYERS = ["conv1", "fc2", "conv3"]  # network order, not alphabetical
LOCAL = {  # (layer, epoch) -> base (clean, adv, diff)
    ("conv1", 2): (-0.30, -0.50, -0.20),
    ("conv1", 4): (-0.10, -0.20, -0.10),
    ("fc2", 2): (0.05, 0.10, 0.05),
    ("fc2", 4): (0.20, 0.30, 0.10),
    ("conv3", 2): (0.00, -0.05, -0.05),
    ("conv3", 4): (-0.40, -0.60, -0.20),
}


def heatmap_scores(intervals: bool = True) -> pd.DataFrame:
    bases = {}
    for (layer, epoch), base in LOCAL.items():
        bases[(layer, "combined", epoch)] = base
        bases[(layer, "h1", epoch)] = tuple(2 * b for b in base)  # another filter: twice the scores
    bases[(GLOBAL, "combined", 2)] = bases[(GLOBAL, "combined", 4)] = (5.0, 5.0, 5.0)  # would dominate the colours
    return score_table(bases, intervals)


def expected_grid(kind: int, scale: float = 1.0) -> np.ndarray:
    """Mean over seeds, layers x epochs: base + mean(SEED_OFFSETS) = base + 0.03."""
    return np.array([[scale * LOCAL[(layer, epoch)][kind] + 0.03 for epoch in (2, 4)] for layer in LAYERS])


# ---------------------------------------------------------------- local_score_heatmaps


def test_local_score_heatmaps_show_mean_scores_per_layer_and_epoch_with_marks_and_confidence():
    fig = plots.local_score_heatmaps(heatmap_scores())
    assert len(fig.axes) == 6  # three heatmaps, three colour bars
    panels = fig.axes[:3]
    assert [ax.get_title() for ax in panels] == SCORE_TITLES
    assert [ax.get_ylabel() for ax in panels] == ["layer", "", ""]
    for kind, ax in enumerate(panels):
        assert texts(ax.get_yticklabels()) == LAYERS  # order of the table, __global__ left out
        assert texts(ax.get_xticklabels()) == ["2", "4"]
        grid = expected_grid(kind)
        np.testing.assert_allclose(heatmap_grid(ax), grid)
        limit = np.abs(grid).max()  # symmetric colour scale over this panel's local scores only
        np.testing.assert_allclose(ax.collections[0].get_clim(), (-limit, limit))
    # clean: conv1 (-0.3, -0.1), fc2 (0.05, 0.2), conv3 (0.0, -0.4); confidences mean .93
    assert cell_texts(panels[0]) == {
        (0, 0): "Fr .93",
        (0, 1): "Fr .93",
        (1, 0): "Af .93",
        (1, 1): "Af .93",
        (2, 0): "Ro .93",
        (2, 1): "Fr .93",
    }
    # adversarial: confidences 1.0 each; conv3 at epoch 2 (-0.05) is fragile
    assert cell_texts(panels[1]) == {
        (0, 0): "Fr 1.00",
        (0, 1): "Fr 1.00",
        (1, 0): "Af 1.00",
        (1, 1): "Af 1.00",
        (2, 0): "Fr 1.00",
        (2, 1): "Fr 1.00",
    }
    # difference: confidences (.5, .6, .7), mean .60
    assert cell_texts(panels[2]) == {
        (0, 0): "Fr .60",
        (0, 1): "Fr .60",
        (1, 0): "Af .60",
        (1, 1): "Af .60",
        (2, 0): "Fr .60",
        (2, 1): "Fr .60",
    }
    title = fig._suptitle.get_text()
    assert f"Local scores (combined), {TITLE}: negative = fragile" in title
    assert "bootstrap confidence" in title


def test_local_score_heatmaps_of_another_filter():
    fig = plots.local_score_heatmaps(heatmap_scores(), filter_name="h1")
    for kind, ax in enumerate(fig.axes[:3]):
        np.testing.assert_allclose(heatmap_grid(ax), expected_grid(kind, scale=2.0))
    assert fig._suptitle.get_text().startswith(f"Local scores (h1), {TITLE}")


@pytest.mark.parametrize("missing", ["columns", "values"])
def test_local_score_heatmaps_without_bootstrap_marks_carry_no_confidence(missing):
    scores = heatmap_scores(intervals=missing == "values")
    if missing == "values":
        scores[INTERVAL_COLUMNS] = np.nan
    fig = plots.local_score_heatmaps(scores)
    clean, adv, _ = fig.axes[:3]
    assert cell_texts(clean) == {(0, 0): "Fr", (0, 1): "Fr", (1, 0): "Af", (1, 1): "Af", (2, 0): "Ro", (2, 1): "Fr"}
    assert set(cell_texts(adv).values()) == {"Fr", "Af"}
    np.testing.assert_allclose(heatmap_grid(clean), expected_grid(0))
    assert "bootstrap" not in fig._suptitle.get_text()


# ---------------------------------------------------------------- global_scores


GLOBAL_CLEAN = {  # (filter, epoch) -> clean score per seed; adv = 2 * clean - 0.1, diff = adv - clean
    ("combined", 2): [0.10, 0.20, 0.60],
    ("combined", 4): [-0.10, 0.00, 0.40],
    ("h1", 2): [0.30, 0.30, 0.30],
    ("h1", 4): [-0.50, -0.20, -0.20],
}


def global_table(intervals: bool = True) -> pd.DataFrame:
    rows = []
    for (filter_name, epoch), per_seed in GLOBAL_CLEAN.items():
        for seed, clean in enumerate(per_seed):
            values = (clean, 2 * clean - 0.1, clean - 0.1)
            lo = [v - 0.05 * (seed + 1) for v in values]  # mean over seeds: mean - 0.1
            hi = [v + 0.2 for v in values]
            rows.append(score_row(GLOBAL, filter_name, epoch, seed, values, lo=lo, hi=hi))
            rows.append(score_row("conv1", filter_name, epoch, seed, (9.0, 9.0, 9.0)))  # local: not shown
    table = pd.DataFrame(rows, columns=SCORE_COLUMNS + INTERVAL_COLUMNS)
    return table if intervals else table[SCORE_COLUMNS]


def test_global_scores_show_mean_and_std_over_seeds_per_filter_and_the_bootstrap_band():
    fig = plots.global_scores(global_table())
    panels = fig.axes
    assert len(panels) == 3
    assert [ax.get_title() for ax in panels] == SCORE_TITLES
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() == "score" for ax in panels)
    assert all(texts(ax.get_xticklabels()) == ["2", "4"] for ax in panels)  # ticks at the checkpoints
    assert texts(panels[-1].get_legend().get_texts()) == ["combined", "h1"]  # right of the last panel
    assert panels[0].get_legend() is None
    for kind, ax in enumerate(panels):
        assert 0.0 in hlines(ax)
        containers = ax.containers
        assert [c.get_label() for c in containers] == ["combined", "h1"]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2
        for colour, (container, band, name) in enumerate(zip(containers, bands, ["combined", "h1"])):
            per_seed = {e: np.array(GLOBAL_CLEAN[(name, e)]) for e in (2, 4)}
            per_seed = {e: [v, 2 * v - 0.1, v - 0.1][kind] for e, v in per_seed.items()}
            mean = np.array([per_seed[e].mean() for e in (2, 4)])
            std = np.array([per_seed[e].std(ddof=1) for e in (2, 4)])
            line, _, (bars,) = container.lines
            np.testing.assert_allclose(floats(line.get_xdata()), [2, 4])
            np.testing.assert_allclose(floats(line.get_ydata()), mean, atol=1e-12)
            assert same_colour(line.get_color(), f"C{colour}")
            extents = np.array([[seg[:, 1].min(), seg[:, 1].max()] for seg in bars.get_segments()])
            np.testing.assert_allclose(extents, np.column_stack([mean - std, mean + std]), atol=1e-12)
            # shaded: mean of the lower bounds (mean - 0.1) to mean of the upper ones (mean + 0.2)
            vertices = band.get_paths()[0].vertices
            for x, m in zip((2, 4), mean):
                ys = vertices[np.isclose(vertices[:, 0], x), 1]
                np.testing.assert_allclose([ys.min(), ys.max()], [m - 0.1, m + 0.2], atol=1e-12)
            assert same_colour(band.get_facecolor()[0][:3], f"C{colour}")
    title = fig._suptitle.get_text()
    assert title == f"Global scores, {TITLE}: mean ± std over seeds, shaded: bootstrap 95 %"


def test_global_scores_without_intervals_have_no_band():
    fig = plots.global_scores(global_table(intervals=False))
    for ax in fig.axes:
        assert len(ax.containers) == 2
        assert not [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_global_scores_without_a_global_layer_say_so():
    local = global_table()
    local = local[local["layer"] != GLOBAL]
    fig = plots.global_scores(local)
    assert fig._suptitle.get_text() == f"Global scores, {TITLE} (no __global__ layer swept)"
    for ax in fig.axes:
        assert not ax.containers and ax.get_legend() is None
        assert hlines(ax) == [0.0]


# ---------------------------------------------------------------- sweep tables

# scaled accuracy acc / acc_unfiltered per filter and seed over steps 0, 1, 2 (alpha_norm 0, .5, 1)
CLEAN_RATIO = {
    "h1": ([1.0, 0.9, 0.5], [1.0, 0.7, 0.3]),  # mean [1, .8, .4]
    "h2": ([1.0, 1.0, 0.8], [1.0, 0.8, 0.6]),  # mean [1, .9, .7]
    "h3": ([1.0, 0.6, 0.2], [1.0, 0.4, 0.0]),  # mean [1, .5, .1]
}
ADV_RATIO = {
    "h1": ([1.0, 1.1, 0.6], [1.0, 0.9, 0.4]),  # mean [1, 1, .5]
    "h2": ([1.0, 0.9, 0.7], [1.0, 0.7, 0.5]),  # mean [1, .8, .6]
    "h3": ([1.0, 0.8, 0.3], [1.0, 0.6, 0.1]),  # mean [1, .7, .2]
}
MEAN_CLEAN = {"h1": [1.0, 0.8, 0.4], "h2": [1.0, 0.9, 0.7], "h3": [1.0, 0.5, 0.1], "combined": [1.0, 2.2 / 3, 0.4]}
MEAN_ADV = {"h1": [1.0, 1.0, 0.5], "h2": [1.0, 0.8, 0.6], "h3": [1.0, 0.7, 0.2], "combined": [1.0, 2.5 / 3, 1.3 / 3]}
N_REMOVED = {"h1": ([0, 50, 150], [0, 70, 150]), "h2": ([0, 100, 180], [0, 100, 180]), "h3": ([0, 20, 200], [0, 20, 200])}
# baseline 1 - n_removed / 200, mean over seeds
MEAN_BASELINE = {"h1": [1.0, 0.7, 0.25], "h2": [1.0, 0.5, 0.1], "h3": [1.0, 0.9, 0.0], "combined": [1.0, 2.1 / 3, 0.35 / 3]}
UNFILTERED = {0: (0.8, 0.4), 1: (0.5, 0.25)}  # (clean, adv) per seed: the mean of ratios differs from the ratio of means
# each (layer, epoch) scales the losses 1 - ratio, so a wrong layer or epoch shows other values
SCALE = {("conv1", 2): 0.25, ("conv1", 4): 0.5, ("fc2", 2): 1.0, ("fc2", 4): 0.75}


def sweep_row(layer, filter_name, step, n_removed, n_total, acc_clean, acc_adv, unfiltered, seed, epoch, steps=2) -> dict:
    return {
        **RUN_VALUES,
        "seed": seed,
        "epoch": epoch,
        "layer": layer,
        "filter": filter_name,
        "step": step,
        "alpha": 0.01 * step,
        "alpha_norm": step / steps,
        "n_removed": n_removed,
        "n_total": n_total,
        "acc_clean": acc_clean,
        "acc_adv": acc_adv,
        "acc_clean_unfiltered": unfiltered[0],
        "acc_adv_unfiltered": unfiltered[1],
        "n_images": 0,
        "correct_clean": b"",
        "correct_adv": b"",
        "correct_clean_unfiltered": b"",
        "correct_adv_unfiltered": b"",
    }


def sweep_table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=RUN + SWEEP_COLUMNS + ["attack"])


def response_sweep() -> pd.DataFrame:
    rows = []
    for (layer, epoch), scale in SCALE.items():
        for seed in (0, 1):
            for name in ("h1", "h2", "h3"):
                for step in range(3):
                    clean = 1 - (1 - CLEAN_RATIO[name][seed][step]) * scale
                    adv = 1 - (1 - ADV_RATIO[name][seed][step]) * scale
                    unfiltered = UNFILTERED[seed]
                    row = sweep_row(
                        layer,
                        name,
                        step,
                        N_REMOVED[name][seed][step],
                        200,
                        clean * unfiltered[0],
                        adv * unfiltered[1],
                        unfiltered,
                        seed,
                        epoch,
                    )
                    rows.append(row)
    return sweep_table(rows)


def scaled(means, scale) -> np.ndarray:
    return 1 - (1 - np.asarray(means)) * scale


# ---------------------------------------------------------------- learning_landscape


def test_learning_landscape_shows_combined_scaled_accuracy_per_layer_epoch_and_threshold():
    fig = plots.learning_landscape(response_sweep())
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6  # 2 layers x (clean, adversarial, difference), and two colour bars
    assert sorted(ax.get_xlabel() for ax in fig.axes if not ax.images) == ["clean β̄, adversarial β̄ε", "difference β̄ε − β̄"]
    names = ["clean β̄", "adversarial β̄ε", "difference β̄ε − β̄"]
    assert [ax.get_title() for ax in panels] == [f"{layer}: {name}" for layer in ("conv1", "fc2") for name in names]
    for row, layer in enumerate(("conv1", "fc2")):
        clean_ax, adv_ax, diff_ax = panels[3 * row : 3 * row + 3]
        clean = np.array([scaled(MEAN_CLEAN["combined"], SCALE[(layer, e)]) for e in (2, 4)])  # epochs x thresholds
        adv = np.array([scaled(MEAN_ADV["combined"], SCALE[(layer, e)]) for e in (2, 4)])
        for ax, expected in ((clean_ax, clean), (adv_ax, adv), (diff_ax, adv - clean)):
            np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), expected, atol=1e-12)
            assert texts(ax.get_yticklabels()) == ["2", "4"]
            assert ax.get_ylabel() == "epoch"
            assert ax.images[0].origin == "lower"  # first epoch at the bottom, where its tick is
        assert diff_ax.images[0].get_clim() == (-1, 1)
        assert clean_ax.images[0].get_clim() == (0, 1.0)
    # fc2 at epoch 2, literally: (1, .8, .4), (1, .9, .7), (1, .5, .1) -> combined (1, .733, .4)
    np.testing.assert_allclose(np.asarray(panels[3].images[0].get_array())[0], [1.0, 0.7333333, 0.4], atol=1e-6)
    assert [ax.get_xlabel() for ax in panels[3:]] == ["normalised threshold α̂"] * 3
    assert fig._suptitle.get_text() == f"Learning landscape, {TITLE}"


# ---------------------------------------------------------------- filter_response


@pytest.mark.parametrize("chosen", [("fc2", 2), (None, None)])
def test_filter_response_shows_each_filter_against_the_baseline(chosen):
    layer, epoch = chosen
    fig = plots.filter_response(response_sweep(), layer, epoch)
    layer, epoch = chosen if layer else ("conv1", 4)  # defaults: the first layer, the last checkpoint
    scale = SCALE[(layer, epoch)]
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == FILTER_TITLES
    assert fig.axes[0].get_ylabel() == "scaled accuracy"
    assert texts(fig.axes[-1].get_legend().get_texts()) == ["baseline φ̄", "clean β̄", "adversarial β̄ε"]
    for ax, name in zip(fig.axes, ["h1", "h2", "h3", "combined"]):
        assert ax.get_xlabel() == "normalised threshold α̂"
        base, clean, adv = data_lines(ax)
        for line in (base, clean, adv):
            np.testing.assert_allclose(line.get_xdata(), [0.0, 0.5, 1.0])
        np.testing.assert_allclose(base.get_ydata(), MEAN_BASELINE[name], atol=1e-12)
        np.testing.assert_allclose(clean.get_ydata(), scaled(MEAN_CLEAN[name], scale), atol=1e-12)
        np.testing.assert_allclose(adv.get_ydata(), scaled(MEAN_ADV[name], scale), atol=1e-12)
        assert base.get_linestyle() == "--" and same_colour(base.get_color(), "k")
        assert same_colour(clean.get_color(), "C0") and same_colour(adv.get_color(), "C3")
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2  # the two score areas
    assert fig._suptitle.get_text() == f"Filter response of {layer} at epoch {epoch}, {TITLE}"


# ---------------------------------------------------------------- compression_curve

# __global__ sweep: n_removed of 1000 per step (fractions not increasing with the step)
COMPRESSION_REMOVED = {"h1": [0, 500, 250], "h2": [0, 100, 900], "h3": [0, 300, 600]}
COMPRESSION_CLEAN = {"h1": [0.9, 0.4, 0.7], "h2": [0.9, 0.8, 0.2], "h3": [0.9, 0.6, 0.5]}  # mean over seeds, epoch 2
COMPRESSION_ADV = {"h1": [0.3, 0.1, 0.2], "h2": [0.3, 0.25, 0.05], "h3": [0.3, 0.2, 0.15]}


def compression_sweep() -> pd.DataFrame:
    rows = []
    for epoch, shift in ((2, 0.0), (4, 0.05)):
        for seed, offset in ((0, 0.04), (1, -0.04)):
            for name in ("h1", "h2", "h3"):
                for step in range(3):
                    clean = COMPRESSION_CLEAN[name][step] + shift + offset
                    adv = COMPRESSION_ADV[name][step] + shift - offset
                    rows.append(
                        sweep_row(GLOBAL, name, step, COMPRESSION_REMOVED[name][step], 1000, clean, adv, (0.9, 0.3), seed, epoch)
                    )
                    rows.append(sweep_row("conv1", name, step, 10 * step, 40, 0.0, 0.0, (0.9, 0.3), seed, epoch))  # not shown
    return sweep_table(rows)


def test_compression_curve_shows_global_accuracy_against_the_fraction_removed():
    fig = plots.compression_curve(compression_sweep())
    assert [ax.get_title() for ax in fig.axes] == FILTER_TITLES[:3]
    assert fig.axes[0].get_ylabel() == "accuracy"
    for ax, name in zip(fig.axes, ("h1", "h2", "h3")):
        assert ax.get_xlabel() == "fraction of weights removed"
        order = np.argsort(COMPRESSION_REMOVED[name])
        fractions = np.array(COMPRESSION_REMOVED[name])[order] / 1000
        lines = data_lines(ax)
        assert [line.get_label() for line in lines] == [
            "clean, epoch 2",
            "adversarial, epoch 2",
            "clean, epoch 4",
            "adversarial, epoch 4",
        ]
        for line, (values, shift, colour, style) in zip(
            lines,
            [
                (COMPRESSION_CLEAN, 0.0, "C0", "-"),
                (COMPRESSION_ADV, 0.0, "C0", "--"),
                (COMPRESSION_CLEAN, 0.05, "C1", "-"),
                (COMPRESSION_ADV, 0.05, "C1", "--"),
            ],
        ):
            np.testing.assert_allclose(line.get_xdata(), fractions)
            np.testing.assert_allclose(line.get_ydata(), np.array(values[name])[order] + shift, atol=1e-12)
            assert same_colour(line.get_color(), colour) and line.get_linestyle() == style
    # h1 literally: removed 0, .25, .5 -> clean .9, .7, .4
    np.testing.assert_allclose(data_lines(fig.axes[0])[0].get_ydata(), [0.9, 0.7, 0.4], atol=1e-12)
    assert fig._suptitle.get_text() == f"Compression (global analysis), {TITLE}"


def test_compression_curve_without_global_layer_pools_the_local_sweeps():
    rows = []
    for layer, n_total, accuracies in (("conv1", 100, [0.9, 0.6]), ("fc2", 200, [0.7, 0.5])):
        for name in ("h1", "h3"):  # no h2 swept: no h2 panel
            for step in range(2):
                rows.append(
                    sweep_row(
                        layer, name, step, 50 * step, n_total, accuracies[step], accuracies[step] / 2, (0.9, 0.45), 0, 2, steps=1
                    )
                )
    fig = plots.compression_curve(sweep_table(rows))
    assert [ax.get_title() for ax in fig.axes] == ["h1 high-pass", "h3 pulse wave"]
    for ax in fig.axes:
        clean, adv = data_lines(ax)
        # removed 0 (both layers), .25 (fc2: 50 of 200), .5 (conv1: 50 of 100)
        np.testing.assert_allclose(clean.get_xdata(), [0.0, 0.25, 0.5])
        np.testing.assert_allclose(clean.get_ydata(), [0.8, 0.5, 0.6], atol=1e-12)
        np.testing.assert_allclose(adv.get_ydata(), [0.4, 0.25, 0.3], atol=1e-12)
    assert fig._suptitle.get_text() == f"Compression (all local sweeps), {TITLE}"


# ---------------------------------------------------------------- retrain_comparison

# accuracy per (branch, epoch) over seeds 0, 1, 2
RETRAIN = {
    ("regular", 2): ([0.80, 0.82, 0.84], [0.30, 0.20, 0.40]),
    ("selective", 2): ([0.90, 0.85, 0.95], [0.35, 0.35, 0.50]),
    ("regular", 4): ([0.70, 0.75, 0.65], [0.10, 0.15, 0.20]),
    ("selective", 4): ([0.60, 0.61, 0.62], [0.40, 0.45, 0.35]),
}


def retrain_table() -> pd.DataFrame:
    rows = []
    for (branch, epoch), (clean, adv) in RETRAIN.items():
        for seed in range(3):
            rows.append(
                {
                    **RUN_VALUES,
                    "seed": seed,
                    "branch": branch,
                    "epoch": epoch,
                    "retrain_epochs": 2,
                    "n_frozen": 1 if branch == "selective" else 0,
                    "frozen_layers": "conv1" if branch == "selective" else "",
                    "acc_clean": clean[seed],
                    "acc_adv": adv[seed],
                    "epsilon": 0.1,
                }
            )
    return pd.DataFrame(rows, columns=["dataset", "model", "seed"] + RETRAIN_COLUMNS)


def summary_table() -> pd.DataFrame:
    rows = [
        ("epoch", 2, "clean", 3, 0.08, 0.02, 0.25),
        ("epoch", 2, "adv", 3, 0.1, 0.05, 0.25),
        ("epoch", 4, "clean", 3, -0.09, np.nan, np.nan),
        ("epoch", 4, "adv", 3, 0.25, 0.1, 0.5),
        ("all", np.nan, "clean", 6, -0.005, 0.0123, 0.03125),
        ("all", np.nan, "adv", 6, 0.175, 0.1, 0.0625),
    ]
    return pd.DataFrame([("mnist", "lenet", *row) for row in rows], columns=SUMMARY_COLUMNS)


def bars_by_branch(ax) -> dict[str, tuple[list[float], list[float]]]:
    """branch -> (bar centres, bar heights) from the bar containers, in hue order (the
    figure's one legend, right of its last panel)."""
    legend = texts(ax.figure.axes[-1].get_legend().get_texts())
    return {
        name: ([p.get_x() + p.get_width() / 2 for p in c.patches], [p.get_height() for p in c.patches])
        for name, c in zip(legend, ax.containers)
    }


def test_retrain_comparison_shows_mean_and_std_per_branch_with_the_summary():
    fig = plots.retrain_comparison(retrain_table(), summary_table())
    assert len(fig.axes) == 2
    clean_ax, adv_ax = fig.axes
    assert clean_ax.get_title() == (
        "clean test accuracy after retraining\nsel − reg -0.005 ± 0.012 (n 6, all checkpoints, p 0.031)"
    )
    assert adv_ax.get_title() == (
        "adversarial test accuracy after retraining\nsel − reg +0.175 ± 0.100 (n 6, all checkpoints, p 0.062)"
    )
    assert clean_ax.get_legend() is None and texts(adv_ax.get_legend().get_texts()) == ["regular", "selective"]
    for kind, ax in enumerate((clean_ax, adv_ax)):
        assert ax.get_xlabel() == "checkpoint epoch"
        assert texts(ax.get_xticklabels()) == ["2", "4"]
        bars = bars_by_branch(ax)
        errors = {round(float(line.get_xdata()[0]), 6): sorted(line.get_ydata()) for line in ax.get_lines()}
        for branch, (centres, heights) in bars.items():
            assert [round(c) for c in centres] == [0, 1]  # epoch 2 at tick 0, epoch 4 at tick 1
            values = [np.array(RETRAIN[(branch, epoch)][kind]) for epoch in (2, 4)]
            np.testing.assert_allclose(heights, [v.mean() for v in values])
            for centre, v in zip(centres, values):
                np.testing.assert_allclose(errors[round(centre, 6)], [v.mean() - v.std(ddof=1), v.mean() + v.std(ddof=1)])
    annotations = {ax: sorted((a.xy[0], a.get_text()) for a in ax.texts if isinstance(a, Annotation)) for ax in fig.axes}
    assert annotations[clean_ax] == [(0, "sel − reg +0.080 ± 0.020 (n 3, p 0.25)"), (1, "sel − reg -0.090 (n 3, p n/a)")]
    assert annotations[adv_ax] == [(0, "sel − reg +0.100 ± 0.050 (n 3, p 0.25)"), (1, "sel − reg +0.250 ± 0.100 (n 3, p 0.5)")]
    assert fig._suptitle.get_text() == f"Selective vs regular retraining, {TITLE}"


def test_retrain_comparison_without_summary_has_no_statistics():
    fig = plots.retrain_comparison(retrain_table())
    assert [ax.get_title() for ax in fig.axes] == [
        "clean test accuracy after retraining",
        "adversarial test accuracy after retraining",
    ]
    assert all(not ax.texts for ax in fig.axes)
    np.testing.assert_allclose(bars_by_branch(fig.axes[1])["selective"][1], [np.mean([0.35, 0.35, 0.50]), 0.40])


# ---------------------------------------------------------------- removable

REMOVABLE = {  # (layer, filter) -> removable per seed at the last checkpoint (epoch 4)
    ("conv2", "h1"): (0.5, 0.7),
    ("conv2", "h2"): (0.2, 0.2),
    ("conv2", "h3"): (0.0, 0.1),
    ("conv1", "h1"): (0.9, 1.0),
    ("conv1", "h2"): (0.3, 0.4),
    ("conv1", "h3"): (0.25, 0.25),
    (GLOBAL, "h1"): (0.1, 0.3),
    (GLOBAL, "h2"): (0.0, 0.0),
    (GLOBAL, "h3"): (0.4, 0.6),
}


def test_removable_shows_the_mean_fraction_at_the_last_checkpoint():
    rows = []
    for (layer, name), per_seed in REMOVABLE.items():
        for seed, value in enumerate(per_seed):
            rows.append(("mnist", "lenet", seed, 4, layer, name, 1.0, 1.0, value))
            rows.append(("mnist", "lenet", seed, 2, layer, name, 0.99, 0.99, 0.99))  # an earlier checkpoint: not shown
    fig = plots.removable(pd.DataFrame(rows, columns=REMOVABLE_COLUMNS))
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    assert fig.axes[1].get_ylabel() == "fraction removable"
    assert texts(ax.get_yticklabels()) == ["conv2", "conv1", GLOBAL]
    assert texts(ax.get_xticklabels()) == ["h1", "h2", "h3"]
    expected = np.array([[0.6, 0.2, 0.05], [0.95, 0.35, 0.25], [0.2, 0.0, 0.5]])
    np.testing.assert_allclose(heatmap_grid(ax), expected, atol=1e-12)
    assert ax.collections[0].get_clim() == (0, 1)
    assert cell_texts(ax) == {
        (0, 0): "0.60",
        (0, 1): "0.20",
        (0, 2): "0.05",
        (1, 0): "0.95",
        (1, 1): "0.35",
        (1, 2): "0.25",
        (2, 0): "0.20",
        (2, 1): "0.00",
        (2, 2): "0.50",
    }
    assert ax.get_title() == "Removable weights, epoch 4, mnist / lenet"


# ---------------------------------------------------------------- mean ± std, bars and lines


def test_lines_show_each_groups_mean_with_a_band_of_one_standard_deviation():
    table = pd.DataFrame({"x": [1, 1, 2, 2, 3], "y": [0.2, 0.4, 0.5, 0.9, 0.7], "h": "a"})
    fig, ax = plots._subplots(figsize=(4, 3))
    plots._lines(ax, table, "x", "y", "h")
    (line,) = ax.get_lines()
    assert line.get_label() == "a" and list(line.get_ydata()) == pytest.approx([0.3, 0.7, 0.7])
    sd = [np.std([0.2, 0.4], ddof=1), np.std([0.5, 0.9], ddof=1)]  # x = 3 has one value: no band
    (band,) = ax.collections
    corners = {(round(x, 9), round(y, 9)) for x, y in band.get_paths()[0].vertices}
    for x, mean, s in ((1, 0.3, sd[0]), (2, 0.7, sd[1])):
        assert {(x, round(mean - s, 9)), (x, round(mean + s, 9))} <= corners
    assert not any(x == 3 for x, _ in corners)


def test_bars_dodge_each_hue_level_and_leave_a_missing_group_out():
    table = pd.DataFrame({"x": ["p", "p", "q", "p"], "y": [1.0, 3.0, 5.0, 4.0], "h": ["a", "a", "a", "b"]})
    fig, ax = plots._subplots(figsize=(4, 3))
    plots._bars(ax, table, "x", "y", "h")
    a, b = ax.containers
    assert [p.get_x() + p.get_width() / 2 for p in a] == pytest.approx([-0.2, 0.8])  # p, q; 0.4 wide each
    assert [p.get_height() for p in a] == pytest.approx([2.0, 5.0])
    assert [p.get_x() + p.get_width() / 2 for p in b] == pytest.approx([0.2]) and b[0].get_height() == 4.0  # no b at q
    (error,) = ax.get_lines()  # only a at p has two values
    assert list(error.get_xdata()) == pytest.approx([-0.2, -0.2])
    assert list(error.get_ydata()) == pytest.approx([2.0 - np.sqrt(2), 2.0 + np.sqrt(2)])
    assert texts(ax.get_xticklabels()) == ["p", "q"] and ax.get_legend_handles_labels()[1] == ["a", "b"]


# ---------------------------------------------------------------- compare_global


@pytest.mark.parametrize("hue", ["model", "dataset"])
def test_compare_global_draws_one_mean_line_per_hue_value(hue):
    groups = {"model": ["lenet", "resnet"], "dataset": ["mnist", "cifar10"]}[hue]
    clean = {  # hue value -> epoch -> clean score per seed; adv = clean - 0.2, diff = -0.2
        groups[0]: {2: [0.1, 0.3], 4: [0.2, 0.6]},
        groups[1]: {2: [-0.4, -0.2], 4: [-0.1, -0.1]},
    }
    rows = []
    for value, by_epoch in clean.items():
        for epoch, per_seed in by_epoch.items():
            for seed, score in enumerate(per_seed):
                fixed = {"dataset": "mnist", "model": "lenet", hue: value}
                for layer, name, scores in (
                    (GLOBAL, "combined", (score, score - 0.2, -0.2)),
                    (GLOBAL, "h1", (7.0, 7.0, 7.0)),  # another filter: not shown
                    ("conv1", "combined", (8.0, 8.0, 8.0)),  # a local layer: not shown
                ):
                    rows.append({**score_row(layer, name, epoch, seed, scores), **fixed})
    fig = plots.compare_global(pd.DataFrame(rows, columns=SCORE_COLUMNS + INTERVAL_COLUMNS), hue=hue)
    assert [ax.get_title() for ax in fig.axes] == SCORE_TITLES
    legend = fig.axes[-1].get_legend()  # one legend, right of the last panel
    assert texts(legend.get_texts()) == groups
    assert fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is None
    for kind, ax in enumerate(fig.axes):
        assert 0.0 in hlines(ax)
        assert texts(ax.get_xticklabels()) == ["2", "4"]
        for value, handle in zip(groups, legend.legend_handles):
            (line,) = [line for line in data_lines(ax) if same_colour(line.get_color(), handle.get_color())]
            np.testing.assert_allclose(floats(line.get_xdata()), [2, 4])
            means = np.array([np.mean(clean[value][e]) for e in (2, 4)])
            expected = [means, means - 0.2, [-0.2, -0.2]][kind]
            np.testing.assert_allclose(line.get_ydata(), expected, atol=1e-12)
    fixed = "dataset mnist" if hue == "model" else "model lenet"
    assert fig._suptitle.get_text() == f"Global scores (combined) across {hue}s, {fixed}"


# ---------------------------------------------------------------- kernel_dropout


def kernel_row(seed, epoch, layer, kernel, clean, adv, unfiltered, fragile) -> dict:
    return {
        **RUN_VALUES,
        "seed": seed,
        "epoch": epoch,
        "layer": layer,
        "kernel": kernel,
        "acc_clean": clean,
        "acc_adv": adv,
        "acc_clean_unfiltered": unfiltered[0],
        "acc_adv_unfiltered": unfiltered[1],
        "fragile_clean": fragile[0],
        "fragile_adv": fragile[1],
        "distance": 0.1 * kernel,
    }


def kernel_table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=RUN + ["attack"] + KERNEL_COLUMNS)


def targeting_row(seed, epoch, layer, kind, d_fragile, d_nonfragile, targets) -> dict:
    return {
        **RUN_VALUES,
        "seed": seed,
        "epoch": epoch,
        "layer": layer,
        "fragility": kind,
        "n_kernels": 4,
        "n_fragile": 2,
        "d_fragile": d_fragile,
        "d_nonfragile": d_nonfragile,
        "targets_fragile": targets,
    }


# seed 0, epoch 4: kernel -> (clean, adv, fragile clean, fragile adv), listed out of kernel order
DROPOUT = {
    "conv1": (
        {2: (0.50, 0.25, True, True), 0: (0.60, 0.30, True, False), 3: (0.80, 0.35, False, False), 1: (0.70, 0.20, False, True)},
        (0.85, 0.32),
    ),
    "conv2": ({1: (0.40, 0.15, True, False), 0: (0.90, 0.10, False, False), 2: (0.70, 0.05, False, True)}, (0.88, 0.12)),
}


def dropout_tables():
    rows = []
    for layer, (kernels, unfiltered) in DROPOUT.items():
        for kernel, (clean, adv, fragile_clean, fragile_adv) in kernels.items():
            rows.append(kernel_row(0, 4, layer, kernel, clean, adv, unfiltered, (fragile_clean, fragile_adv)))
            rows.append(kernel_row(1, 4, layer, kernel, 0.01, 0.01, (0.5, 0.5), (False, False)))  # another seed
            rows.append(kernel_row(0, 2, layer, kernel, 0.02, 0.02, (0.5, 0.5), (False, False)))  # an earlier checkpoint
    targets = [
        targeting_row(0, 4, "conv1", "clean", 0.1234, 0.0456, True),
        targeting_row(0, 4, "conv1", "adv", 0.02, 0.05, False),
        targeting_row(1, 4, "conv2", "clean", 0.9, 0.1, True),  # another seed
        targeting_row(0, 2, "conv2", "adv", 0.9, 0.1, True),  # an earlier checkpoint
    ]
    return kernel_table(rows), pd.DataFrame(targets, columns=RUN + ["attack"] + TARGETING_COLUMNS)


def test_kernel_dropout_shows_each_kernels_accuracy_fragile_ones_in_red():
    kernels, targeting = dropout_tables()
    fig = plots.kernel_dropout(kernels, targeting)
    assert len(fig.axes) == 4  # 2 layers x (clean, adversarial)
    assert [ax.get_title() for ax in fig.axes] == [
        "conv1: clean, 2/4 fragile\nd_fragile 0.123 vs d_nonfragile 0.0456: targets fragile kernels",
        "conv1: adversarial, 2/4 fragile\nd_fragile 0.02 vs d_nonfragile 0.05: does not target fragile kernels",
        "conv2: clean, 1/3 fragile",
        "conv2: adversarial, 1/3 fragile",
    ]
    for row, (by_kernel, unfiltered) in enumerate(DROPOUT.values()):
        for kind, ax in enumerate(fig.axes[2 * row : 2 * row + 2]):
            assert ax.get_xlabel() == "kernel removed" and ax.get_ylabel() == "accuracy"
            ordered = sorted(by_kernel)
            accuracy = [by_kernel[k][kind] for k in ordered]
            fragile = [by_kernel[k][2 + kind] for k in ordered]
            assert [p.get_x() + p.get_width() / 2 for p in ax.patches] == pytest.approx(ordered)
            assert [p.get_height() for p in ax.patches] == pytest.approx(accuracy)
            assert [same_colour(p.get_facecolor(), "C3") for p in ax.patches] == fragile
            assert [same_colour(p.get_facecolor(), "C0") for p in ax.patches] == [not f for f in fragile]
            assert hlines(ax) == pytest.approx([np.mean(accuracy), unfiltered[kind]])  # mean over kernels, unfiltered
            low, high = ax.get_ylim()
            assert low == pytest.approx(max(0.0, min(accuracy) - 0.05))
            assert high == pytest.approx(min(1.0, max(*accuracy, unfiltered[kind]) + 0.02))
    assert texts(fig.axes[1].get_legend().get_texts()) == ["mean over kernels", "unfiltered"]  # right of the first row
    assert fig._suptitle.get_text() == f"Kernel dropout, seed 0, epoch 4, {TITLE}"


def test_kernel_dropout_keeps_the_unfiltered_line_in_view():
    rows = [kernel_row(0, 2, "conv1", k, 0.8, adv, (0.85, 0.02), (False, False)) for k, adv in enumerate([0.20, 0.30, 0.25])]
    fig = plots.kernel_dropout(kernel_table(rows), pd.DataFrame(columns=RUN + ["attack"] + TARGETING_COLUMNS))
    adv_ax = fig.axes[1]
    low, high = adv_ax.get_ylim()
    assert low <= 0.02 <= high


# ---------------------------------------------------------------- kernel_consistency


def test_kernel_consistency_marks_kernels_fragile_at_every_checkpoint():
    fragile = {  # (layer, seed) -> epoch -> clean fragility per kernel; epochs listed out of order
        ("conv1", 0): {4: [1, 0, 0], 2: [1, 1, 0], 6: [1, 1, 1]},
        ("conv2", 0): {2: [1, 1, 0, 1], 4: [1, 1, 1, 0], 6: [1, 1, 0, 0]},
        ("conv1", 1): {2: [0, 0, 0], 4: [1, 0, 1], 6: [0, 1, 1]},
    }
    rows = [
        kernel_row(seed, epoch, layer, kernel, 0.5, 0.2, (0.9, 0.3), (bool(flag), False))
        for (layer, seed), by_epoch in fragile.items()
        for epoch, flags in by_epoch.items()
        for kernel, flag in enumerate(flags)
    ]
    fig = plots.kernel_consistency(kernel_table(rows))
    assert [ax.get_title() for ax in fig.axes] == [
        "conv1, seed 0: 1 of 3 kernels consistently fragile",
        "conv2, seed 0: 2 of 4 kernels consistently fragile",
        "conv1, seed 1: 0 of 3 kernels consistently fragile",
    ]
    for ax, by_epoch in zip(fig.axes, fragile.values()):
        grid = np.array([by_epoch[e] for e in (2, 4, 6)], dtype=float)
        expected = np.vstack([grid, grid.min(axis=0)])
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), expected)
        assert texts(ax.get_yticklabels()) == ["epoch 2", "epoch 4", "epoch 6", "every checkpoint"]
        assert ax.get_xlabel() == "kernel"
        assert hlines(ax) == [2.5]  # the rule above the "every checkpoint" row
    assert fig._suptitle.get_text() == f"Fragile kernels (clean) over checkpoints, {TITLE}"


# ---------------------------------------------------------------- rank_agreement


def test_rank_agreement_shows_symmetric_tau_grids_per_checkpoint():
    rows = [  # epoch 4 first: panels are sorted by epoch
        (4, "h1_clean", "h1_adv", 0.8, 0.1, 6),
        (4, "h1_clean", "reinit_clean", 0.0, 0.2, 6),
        (4, "h1_adv", "reinit_clean", np.nan, np.nan, 6),
        (2, "h1_clean", "h1_adv", 0.6, 0.1, 5),
        (2, "h1_clean", "reinit_clean", -0.2, 0.3, 5),
        (2, "h1_adv", "reinit_clean", 0.4, 0.1, 4),
    ]
    agreement = pd.DataFrame([("mnist", "lenet", *row) for row in rows], columns=AGREEMENT_COLUMNS)
    fig = plots.rank_agreement(agreement)
    assert len(fig.axes) == 3  # two heatmaps and one colour bar, by the last
    first, second = fig.axes[:2]
    assert [first.get_title(), second.get_title()] == ["epoch 2 (5 layers)", "epoch 4 (6 layers)"]
    names = ["h1_clean", "h1_adv", "reinit_clean"]
    for ax in (first, second):
        assert texts(ax.get_xticklabels()) == names and texts(ax.get_yticklabels()) == names
        assert ax.collections[0].get_clim() == (-1, 1)
    np.testing.assert_allclose(heatmap_grid(first), [[1.0, 0.6, -0.2], [0.6, 1.0, 0.4], [-0.2, 0.4, 1.0]])
    np.testing.assert_allclose(heatmap_grid(second), [[1.0, 0.8, 0.0], [0.8, 1.0, np.nan], [0.0, np.nan, 1.0]])
    assert cell_texts(first) == {
        (0, 0): "1.0",
        (0, 1): "0.6",
        (0, 2): "-0.2",
        (1, 0): "0.6",
        (1, 1): "1.0",
        (1, 2): "0.4",
        (2, 0): "-0.2",
        (2, 1): "0.4",
        (2, 2): "1.0",
    }
    assert set(cell_texts(second)) == {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 2)}  # no τ: blank
    assert fig._suptitle.get_text() == "Rank agreement of unit measures (Kendall's τ_b, mean over seeds), mnist / lenet"


def test_local_score_heatmaps_without_local_layers_say_so():
    scores = pd.DataFrame(
        [
            {
                "dataset": "d",
                "model": "m",
                "seed": 0,
                "epoch": 1,
                "attack": "fgsm",
                "layer": "__global__",
                "filter": "combined",
                "score_clean": 0.1,
                "score_adv": 0.1,
                "score_diff": 0.0,
                "label_clean": "antifragile",
                "label_adv": "antifragile",
                "label_diff": "robust",
            }
        ]
    )
    fig = plots.local_score_heatmaps(scores)
    assert "no local layer swept" in fig._suptitle.get_text() and not any(ax.collections for ax in fig.axes)


def test_rank_agreement_without_local_layers_says_so():
    fig = plots.rank_agreement(
        pd.DataFrame(columns=["dataset", "model", "epoch", "measure_a", "measure_b", "kendall_tau", "spread", "n_layers"])
    )
    assert "no local layers to rank" in fig._suptitle.get_text() and not any(ax.collections for ax in fig.axes)


# ---------------------------------------------------------------- the white-box reading


def whitebox_scores() -> pd.DataFrame:
    """heatmap_scores with the white-box twins: r_xε and r_ε lowered by 0.25 (conv1, conv3) and
    missing for fc2 (no white-box reading there)."""
    table = heatmap_scores()
    for kind in ("adv", "diff"):
        twin = f"score_{kind}_whitebox"
        table[twin] = table[f"score_{kind}"] - 0.25
        table[f"{twin}_lo"], table[f"{twin}_hi"] = table[twin] - 0.1, table[twin] + 0.1
        table[f"label_{kind}_whitebox"] = [label_of(v) for v in table[twin]]
        table[f"label_{kind}_whitebox_conf"] = 0.8
        unread = table["layer"] == "fc2"
        table.loc[unread, [c for c in table if c.startswith(f"score_{kind}_whitebox")]] = np.nan
        table.loc[unread, [f"label_{kind}_whitebox", f"label_{kind}_whitebox_conf"]] = None
    return table


def test_the_local_heatmap_gains_the_whitebox_row_on_its_twins_colour_scale():
    scores = whitebox_scores()
    fig = plots.local_score_heatmaps(scores)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == SCORE_TITLES + ["adversarial r_xε, white-box", "difference r_ε, white-box"]
    read = [LAYERS.index("conv1"), LAYERS.index("conv3")]  # fc2 has no white-box reading: no row for it
    for kind, ax in zip((1, 2), titled[3:]):
        assert texts(ax.get_yticklabels()) == ["conv1", "conv3"] and ax.get_ylabel() == ("layer" if kind == 1 else "")
        grid = (expected_grid(kind) - 0.25)[read]
        np.testing.assert_allclose(heatmap_grid(ax), grid)
        shared = np.nanmax(np.abs(np.concatenate([expected_grid(kind).ravel(), grid.ravel()])))
        np.testing.assert_allclose(ax.collections[0].get_clim(), (-shared, shared))
        np.testing.assert_allclose(titled[kind].collections[0].get_clim(), (-shared, shared))
    assert cell_texts(titled[3])[(0, 0)] == "Fr .80"  # conv1 at epoch 2: −0.5 − 0.25 + mean offset


def test_transfer_vs_whitebox_puts_each_unit_at_its_two_scores_beside_the_diagonal():
    fig = plots.transfer_vs_whitebox(whitebox_scores())
    adv, diff = fig.axes
    assert adv.get_title() == "adversarial r_xε" and diff.get_title() == "difference r_ε"
    offset = np.mean(SEED_OFFSETS)
    for ax, kind in ((adv, 1), (diff, 2)):
        expected = {(layer, round(b[kind] + offset, 9)) for (layer, _), b in LOCAL.items() if layer != "fc2"}
        expected |= {(GLOBAL, round(5.0 + offset, 9))}
        found = {(t.get_text(), round(float(t.xy[0]), 9)) for t in ax.texts}
        assert found == expected  # one point per (unit, epoch) with the reading; fc2 has none
        assert all(np.isclose(t.xy[1], t.xy[0] - 0.25) for t in ax.texts)
        diagonal = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(diagonal) == 1 and np.allclose(diagonal[0].get_xdata(), diagonal[0].get_ydata())
    assert "no unit has the white-box reading" in plots.transfer_vs_whitebox(heatmap_scores())._suptitle.get_text()


# ---------------------------------------------------------------- checkpoints not usable (trust)


def test_unusable_checkpoints_are_hatched_crossed_and_named():
    """Seed 0 at epoch 4 is flagged (trust.parquet): its heatmap cells are hatched, its global
    scores crossed in grey, and every figure's title names it."""
    scores = heatmap_scores()
    scores["usable"] = ~((scores["seed"] == 0) & (scores["epoch"] == 4))
    scores.loc[~scores["usable"], [f"label_{kind}" for kind in KINDS]] = "undetermined"
    fig = plots.local_score_heatmaps(scores)
    clean = fig.axes[0]
    hatched = sorted((p.get_x(), p.get_y()) for p in clean.patches if p.get_hatch() == "///")
    assert hatched == [(1, 0), (1, 1), (1, 2)]  # the epoch-4 column of every layer
    np.testing.assert_allclose(heatmap_grid(clean), expected_grid(0))  # the numbers are kept
    title = fig._suptitle.get_text()
    assert "[NOT USABLE: seed 0 epoch 4]" in title and "hatched: a checkpoint not usable" in title
    table = global_table()
    table["usable"] = table["epoch"] != table["epoch"].min()
    first = int(table["epoch"].min())
    global_fig = plots.global_scores(table)
    crosses = [c for c in global_fig.axes[0].collections if c.get_label() == "not usable"]
    assert len(crosses) == 1 and set(crosses[0].get_offsets()[:, 0]) == {first}
    assert f"[NOT USABLE: seed 0 epoch {first}, seed 1 epoch {first}, seed 2 epoch {first}]" in global_fig._suptitle.get_text()


def test_blocks_get_their_own_heatmap_and_agreement_row():
    """Blocks are not layers: the local heatmap leaves them out, block_scores draws only them,
    and the agreement figure ranks them in a row of their own."""
    scores = heatmap_scores()
    scores["unit_kind"] = np.where(scores["layer"] == GLOBAL, "global", np.where(scores["layer"] == "fc2", "block", "layer"))
    local = plots.local_score_heatmaps(scores)
    assert texts(local.axes[0].get_yticklabels()) == ["conv1", "conv3"]
    blocks = plots.local_score_heatmaps(scores, unit_kind="block")
    assert texts(blocks.axes[0].get_yticklabels()) == ["fc2"] and blocks.axes[0].get_ylabel() == "block"
    np.testing.assert_allclose(heatmap_grid(blocks.axes[0]), [expected_grid(0)[1]])
    assert blocks._suptitle.get_text().startswith("Block scores (combined)")
    none = plots.local_score_heatmaps(scores[scores["unit_kind"] != "block"], unit_kind="block")
    assert none._suptitle.get_text().endswith("no block swept")
    rows = [(kind, 2, "h1_clean", "reinit_clean", tau, 0.1, n) for kind, tau, n in (("layer", 0.5, 6), ("block", -0.5, 3))]
    columns = ["dataset", "model", "unit_kind", "epoch", "measure_a", "measure_b", "kendall_tau", "spread", "n_layers"]
    agreement = pd.DataFrame([("mnist", "lenet", *row) for row in rows], columns=columns)
    fig = plots.rank_agreement(agreement)
    layer_panel, block_panel = [ax for ax in fig.axes if ax.get_title()]
    assert (layer_panel.get_title(), block_panel.get_title()) == ("epoch 2 (6 layers)", "epoch 2 (3 blocks)")
    np.testing.assert_allclose(heatmap_grid(block_panel), [[1.0, -0.5], [-0.5, 1.0]])


# ---------------------------------------------------------------- triage


def triage_table(inits=("fit",)):
    """Two blocks, two schemes, seeds 0 and 1, triage epochs 0 and 1, per initialisation in
    ``inits`` (``random`` 0.2 lower after training); accuracies and CKA known."""
    rows = []
    for init in inits:
        for seed in (0, 1):
            for block, final in (("layer1.0", 0.6), ("layer4.1", 0.8)):
                for scheme, bonus in (("local", 0.0), ("global", 0.1)):
                    for epoch, acc in ((0, 0.1), (1, final + bonus + 0.02 * seed - 0.2 * (init == "random"))):
                        rows.append(
                            {
                                "dataset": "digits",
                                "model": "resnet18",
                                "seed": seed,
                                "epoch": 4,
                                "attack": "fgsm",
                                "block": block,
                                "init": init,
                                "scheme": scheme,
                                "triage_epoch": epoch,
                                "acc_clean": acc,
                                "acc_adv": acc / 2,
                                "cka": acc,
                                "base_acc_clean": 0.9,
                                "base_acc_adv": 0.45,
                            }
                        )
    return pd.DataFrame(rows)


def test_triage_convergence_draws_each_scheme_per_block_with_the_base_dashed_and_the_cka():
    fig = plots.triage_convergence(triage_table())
    assert [ax.get_title() for ax in fig.axes] == [
        "layer1.0, clean",
        "layer4.1, clean",
        "layer1.0, adversarial",
        "layer4.1, adversarial",
        "layer1.0, CKA with the block",
        "layer4.1, CKA with the block",
    ]
    clean = fig.axes[1]  # layer4.1, clean: local 0.8 + 0.01 (mean over seeds) at epoch 1
    lines = [line for line in clean.get_lines() if len(line.get_xdata()) == 2]
    assert [list(line.get_ydata()) for line in lines[:2]] == [pytest.approx([0.1, 0.81]), pytest.approx([0.1, 0.91])]
    base = [line for line in clean.get_lines() if line.get_color() == "k"]
    assert len(base) == 1 and list(base[0].get_ydata()) == [0.9, 0.9] and base[0].get_linestyle() == "--"
    cka = fig.axes[5]
    assert [list(line.get_ydata()) for line in cka.get_lines() if len(line.get_xdata()) == 2][:1] == [pytest.approx([0.1, 0.81])]
    assert not [line for line in cka.get_lines() if line.get_color() == "k"]  # no base line for CKA
    assert fig.axes[1].get_legend() is not None  # right of the first row, off the curves
    assert fig.axes[0].get_legend() is None and fig.axes[2].get_legend() is None


def test_triage_convergence_tells_the_initialisations_apart():
    fig = plots.triage_convergence(triage_table(("random", "fit")))
    clean = fig.axes[1]
    lines = {round(line.get_ydata()[1], 6): line for line in clean.get_lines() if len(line.get_xdata()) == 2}
    fit, random = lines[0.81], lines[0.61]  # layer4.1, local, epoch 1: mean over seeds
    assert fit.get_linestyle() == "-" and random.get_linestyle() == "--"  # random dashed
    assert fit.get_color() == random.get_color()  # one colour per scheme
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert {"local", "global", "fit", "random", "base network"} <= set(labels)


def test_triage_criticality_shows_the_local_drop_per_block_per_initialisation():
    from fragility.stress.triage import drops

    table = triage_table(("random", "fit"))
    found = pd.concat([drops(part).assign(seed=seed, epoch=4) for seed, part in table.groupby("seed")])
    fig = plots.triage_criticality(found.assign(dataset="digits", model="resnet18", attack="fgsm"))
    assert [ax.get_title() for ax in fig.axes] == ["fit initialisation", "random initialisation"]
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches if p.get_height() != 0)
    # fit, clean: 0.9 − 0.61 = 0.29 (layer1.0), 0.9 − 0.81 = 0.09; adversarial: half of each
    assert heights == pytest.approx(sorted([0.29, 0.09, 0.145, 0.045]))
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[1].patches if p.get_height() != 0)
    assert heights == pytest.approx(sorted([0.49, 0.29, 0.245, 0.145]))  # random: 0.2 more lost
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["layer1.0", "layer4.1"]


def test_triage_figures_read_tables_from_before_the_initialisations():
    old = triage_table(("random",)).drop(columns=["init", "cka"])
    fig = plots.triage_convergence(old)
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "layer1.0, clean"  # no CKA row
    from fragility.stress.triage import drops

    found = drops(old).drop(columns="init").assign(seed=0, epoch=4)
    assert [ax.get_title() for ax in plots.triage_criticality(found).axes] == ["random initialisation"]


def test_triage_figures_without_triage_say_so():
    empty = triage_table().iloc[0:0]
    assert "No block was triaged" in plots.triage_convergence(empty)._suptitle.get_text()
    assert "No local triage scheme" in plots.triage_criticality(empty.assign(compression=[]))._suptitle.get_text()


def test_semirobust_accuracy_shows_the_four_networks_per_split_and_the_target():
    rows = []
    for seed in (0, 1):
        run = {"dataset": "digits", "model": "resnet18", "seed": seed, "epoch": 4, "attack": "pgd-10", "split_k": 4}
        run |= {"first_fb_layer": "layer4.0.downsample.0", "target_acc_adv": 0.45}
        for network, epoch, acc in (("normal", 0, 0.2), ("robust", 0, 0.5), ("semirobust", 0, 0.3), ("finetuned", 1, 0.4)):
            rows.append({**run, "network": network, "finetune_epoch": epoch, "acc_clean": 0.9, "acc_adv": acc + 0.02 * seed})
    fig = plots.semirobust_accuracy(pd.DataFrame(rows))
    bars, curve = fig.axes[0], fig.axes[1]
    assert [round(p.get_height(), 6) for p in bars.patches] == pytest.approx([0.21, 0.51, 0.31, 0.41])
    assert bars.get_title() == "k = 4: f_b from layer4.0.downsample.0 on\nreached Acc* − δ: 0 of 2 trials"
    assert [list(line.get_ydata()) for line in curve.get_lines() if line.get_linestyle() == "--"] == [[0.45, 0.45]]


def test_semirobust_accuracy_shows_the_best_epoch_of_each_trial_the_protocol_and_an_f_star_not_robust():
    run = {"dataset": "digits", "model": "resnet18", "epoch": 4, "attack": "pgd-10", "split_k": 4, "protocol": "budget"}
    run |= {"first_fb_layer": "fc", "target_acc_adv": 0.45, "acc_clean": 0.9}
    rows = []
    for seed, trial, curve in ((0, 0, [0.5, 0.4]), (0, 1, [0.3, 0.44]), (1, 0, [0.46])):
        why = "" if seed == 0 else "F* not robust: McNemar p = 0.4 ≥ α = 0.01"
        common = {**run, "seed": seed, "trial": trial, "usable": seed == 0, "why": why}
        rows += [
            {**common, "network": n, "finetune_epoch": 0, "acc_adv": a}
            for n, a in (("normal", 0.2), ("robust", 0.5), ("semirobust", 0.3))
        ]
        rows += [{**common, "network": "finetuned", "finetune_epoch": e, "acc_adv": a} for e, a in enumerate(curve, 1)]
    fig = plots.semirobust_accuracy(pd.DataFrame(rows))
    bars = fig.axes[0]
    # Acc, Acc*, Acc_sr once per checkpoint; the best epoch of each of the three trials: 0.5, 0.44, 0.46
    assert [round(p.get_height(), 6) for p in bars.patches] == pytest.approx([0.2, 0.5, 0.3, (0.5 + 0.44 + 0.46) / 3])
    assert bars.get_title().endswith("reached Acc* − δ: 2 of 3 trials, mean 1.0 epochs")
    title = fig._suptitle.get_text()
    assert title.startswith("Subnetwork robustness, protocol budget") and "NOT USABLE: seed 1 epoch 4" in title
    assert "seed 1 epoch 4: F* not robust: McNemar p = 0.4" in title


def test_layer_dependency_draws_cka_along_the_network_per_network():
    rows = [
        {"dataset": "d", "model": "m", "seed": 0, "epoch": 4, "split_k": 4, "network": net, "position": p}
        | {"layer_a": f"l{p}", "layer_b": f"l{p + 1}", "cka": 0.1 * p + shift}
        for net, shift in (("robust", 0.0), ("semirobust", 0.5))
        for p in range(3)
    ]
    ax = plots.layer_dependency(pd.DataFrame(rows)).axes[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 3]
    assert [list(line.get_ydata()) for line in lines[:2]] == [pytest.approx([0.0, 0.1, 0.2]), pytest.approx([0.5, 0.6, 0.7])]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["l0\n→ l1", "l1\n→ l2", "l2\n→ l3"]


def test_layer_dependency_draws_rho_above_cka():
    rows = [
        {"dataset": "d", "model": "m", "seed": 0, "epoch": 4, "split_k": k, "network": "robust", "position": p}
        | {"layer_a": f"l{p}", "layer_b": f"l{p + 1}", "mi": 3.0 - p, "cka": 0.1 * p, "protocol": "paper"}
        for k in (4, 12)
        for p in range(3)
    ]
    fig = plots.layer_dependency(pd.DataFrame(rows))
    assert len(fig.axes) == 4 and fig.axes[0].get_ylabel().startswith("ρ: mutual information, bits")
    assert fig.axes[2].get_ylabel().startswith("linear CKA")  # second row, first split
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 3]
    assert list(lines[0].get_ydata()) == pytest.approx([3.0, 2.0, 1.0])
    assert fig._suptitle.get_text().startswith("Dependency between consecutive layers, protocol paper")


# ---------------------------------------------------------------- readability of every registered figure

REFERENCE = Path(__file__).parent / "data" / "tiny_reference"
OPTIONS = validate({})["figures"]  # the schema's defaults: dpi 120, the response layer and epoch unset
RESNET18_LAYERS = [
    "conv1",
    *(f"layer{stage}.{block}.conv{conv}" for stage in range(1, 5) for block in (0, 1) for conv in (1, 2)),
    *(f"layer{stage}.0.downsample.0" for stage in (2, 3, 4)),
    "fc",
]


@functools.cache
def reference_tables() -> dict[str, pd.DataFrame]:
    """Every table of the tiny run kept in tests/data/tiny_reference (two checkpoints)."""
    return {path.stem: pd.read_parquet(path) for path in sorted(REFERENCE.glob("*.parquet"))}


@functools.cache
def one_checkpoint_tables() -> dict[str, pd.DataFrame]:
    """The reference tables at their last checkpoint only, as a run with one checkpoint per
    seed has them (rows with no epoch, such as the retrain summary over all checkpoints, kept)."""
    return {
        name: table[table["epoch"].isna() | (table["epoch"] == table["epoch"].max())].reset_index(drop=True)
        if "epoch" in table
        else table
        for name, table in reference_tables().items()
    }


@functools.cache
def resnet18_sized_tables(checkpoints: int = 6) -> dict[str, pd.DataFrame]:
    """The reference tables grown to a ResNet-18's units — 21 layers (the tiny run's two
    layers copied under the other names), 8 blocks — and ``checkpoints`` checkpoints; the
    white-box reading stays on the two layers that had it."""
    tables = reference_tables()
    kinds = dict(zip(tables["scores"]["layer"], tables["scores"]["unit_kind"]))
    layers = [unit for unit, kind in kinds.items() if kind == "layer"]
    blocks = [unit for unit, kind in kinds.items() if kind == "block"]
    names = {layers[0]: [n for n in RESNET18_LAYERS if n != layers[-1]], layers[-1]: [layers[-1]]}
    names |= {block: [f"layer{stage}.{index}" for stage in range(1, 5)] for index, block in enumerate(blocks)}
    grown = {}
    for name, table in tables.items():
        for column in ("layer", "block"):
            if column in table:
                table = table.assign(**{column: table[column].map(lambda unit: names.get(unit, [unit]))}).explode(column)
        if "layer" in table and "score_adv_whitebox" in table:
            copies = ~table["layer"].isin([*names, GLOBAL])
            table.loc[copies, [c for c in table if "whitebox" in c]] = np.nan
        if "epoch" in table and table["epoch"].notna().any():
            step = int(table["epoch"].max())
            table = pd.concat([table.assign(epoch=table["epoch"] + step * k) for k in range(checkpoints // 2)])
        grown[name] = table.reset_index(drop=True)
    return grown


SCORE_VALUES = ["score_clean", "score_adv", "score_diff"]
TABLE_SETS = {
    "multi-checkpoint": reference_tables,
    "one-checkpoint": one_checkpoint_tables,
    "resnet18-sized": resnet18_sized_tables,
}


def figure_tables(spec, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables ``spec`` reads; a figure across models (datasets) gets a second one, a copy
    of the run's scores 0.1 lower."""
    missing = [name for name in spec.tables if name not in tables]
    assert not missing, f"figure {spec.name}: no {missing} in {REFERENCE} to draw it from"
    chosen = {name: tables[name] for name in spec.tables}
    if spec.scope != "model":
        hue = "model" if spec.scope == "dataset" else "dataset"
        other = chosen["scores"].assign(**{hue: f"other {hue}"})
        other[SCORE_VALUES] = other[SCORE_VALUES] - 0.1
        chosen["scores"] = pd.concat([chosen["scores"], other], ignore_index=True)
    return chosen


@pytest.mark.parametrize("table_set", list(TABLE_SETS))
@pytest.mark.parametrize("name", list(FIGURES))
def test_every_registered_figure_is_readable_as_drawn(name, table_set):
    """Each figure of the registry, drawn as the workflow draws it (its options from the
    schema's defaults) from a real tiny run's tables — two checkpoints, one, and grown to a
    ResNet-18's units —, passes every readability check at the default dpi."""
    spec = FIGURES[name]
    options = {key: OPTIONS[key] for key in ("dpi", *spec.options)}
    fig = spec.draw(figure_tables(spec, TABLE_SETS[table_set]()), options)
    readability.assert_readable(fig, OPTIONS["dpi"], spec.caption)


def test_the_readability_checks_find_each_problem():
    """Each check fails the figure it is for: a title cut off at both edges, two labels on one
    another, a legend over the data, a side above 3,000 px, fractional epochs, a blank cell
    nobody calls n/a and a missing cell annotated as a number."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([3.8, 4.2], [0, 1], label="a line")  # through the centre, where the legend is
    ax.legend(loc="center")
    fig.suptitle("a title far too long for a figure four inches wide, cut off at both of its edges")
    ax.set_xlabel("epoch")
    ax.set_xlim(3.8, 4.2)
    ax.set_ylabel("a label")
    fig.text(0.0, 0.5, "over the label", rotation=90)
    found = readability.problems(fig, 120)
    assert [p for p in found if p.startswith("suptitle:")]
    assert [p for p in found if "over the label" in p and " over " in p]
    assert [p for p in found if p.startswith("legend of axes 0 over Line2D")]
    assert [p for p in found if "'epoch' ticks" in p]
    assert readability.oversized(plt.figure(figsize=(26, 4)), 120) == ["width 3120 px > 3000"]
    fig, ax = plt.subplots()
    mesh = ax.pcolormesh(np.ma.masked_invalid([[1.0, np.nan]]))
    ax.text(1.5, 0.5, "0.0")
    assert len(readability.missing_unmarked(fig)) == 2  # no n/a said, a number on the missing cell
    assert mesh and readability.missing_unmarked(fig, caption="hatched: n/a") == ["axes 0: missing cell (0, 1) annotated '0.0'"]


def test_landscape_of_one_checkpoint_is_the_response_of_every_unit():
    """A landscape needs checkpoints: with one, the figure draws each unit's combined response
    at that checkpoint (mean over seeds) instead, and says why."""
    sweep = response_sweep()
    fig = plots.learning_landscape(sweep[sweep["epoch"] == 4])
    panels = [ax for ax in fig.axes if data_lines(ax)]
    assert [ax.get_title() for ax in panels] == ["conv1", "fc2"]
    for ax, layer in zip(panels, ("conv1", "fc2")):
        base, clean, adv = data_lines(ax)
        np.testing.assert_allclose(clean.get_xdata(), [0.0, 0.5, 1.0])
        np.testing.assert_allclose(base.get_ydata(), MEAN_BASELINE["combined"], atol=1e-12)
        np.testing.assert_allclose(clean.get_ydata(), scaled(MEAN_CLEAN["combined"], SCALE[(layer, 4)]), atol=1e-12)
        np.testing.assert_allclose(adv.get_ydata(), scaled(MEAN_ADV["combined"], SCALE[(layer, 4)]), atol=1e-12)
        assert not ax.images
    assert texts(panels[-1].get_legend().get_texts()) == ["baseline φ̄", "clean β̄", "adversarial β̄ε"]
    title = fig._suptitle.get_text().replace("\n", " ")
    assert title.startswith("Combined filter response per unit at epoch 4") and "one checkpoint" in title


def test_landscape_of_many_units_stays_inside_the_size_limit():
    """30 units over several checkpoints: rows of three panels in more columns, not 30 rows."""
    sweep = resnet18_sized_tables()["sweep"]
    units = sweep["layer"].nunique()
    fig = plots.learning_landscape(sweep)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3 * units and units >= 30
    assert max(fig.get_size_inches() * OPTIONS["dpi"]) <= readability.MAX_PIXELS


def test_one_checkpoint_puts_its_epoch_on_the_axis_not_a_range_around_it():
    table = global_table()
    table = table[table["epoch"] == 4]
    for fig in (plots.global_scores(table), plots.compare_global(table.assign(model="lenet"), hue="model")):
        for ax in fig.axes:
            assert texts(ax.get_xticklabels()) == ["4"] and ax.get_xlabel() == "epoch (one checkpoint)"


def test_rank_agreement_draws_an_undefined_tau_as_missing_not_zero():
    """Triage ranks blocks only: in the layer panel its rows and columns have no τ (NaN,
    hatched, n/a in the legend), not 0; a pair without τ is missing too."""
    rows = [
        ("layer", "h1_clean", "reinit_clean", 0.5),
        ("layer", "h1_clean", "h1_adv", np.nan),  # no τ (no spread)
        ("layer", "h1_adv", "reinit_clean", 0.25),
        ("block", "h1_clean", "triage_local_clean", -0.5),
    ]
    columns = ["dataset", "model", "unit_kind", "epoch", "measure_a", "measure_b", "kendall_tau", "spread", "n_layers"]
    agreement = pd.DataFrame([("mnist", "lenet", kind, 2, a, b, tau, 0.1, 4) for kind, a, b, tau in rows], columns=columns)
    fig = plots.rank_agreement(agreement)
    layer_panel, block_panel = [ax for ax in fig.axes if ax.get_title()]
    names = ["h1_clean", "h1_adv", "reinit_clean", "triage_local_clean"]
    assert texts(layer_panel.get_yticklabels()) == names and texts(block_panel.get_xticklabels()) == names
    nan = np.nan
    np.testing.assert_allclose(
        heatmap_grid(layer_panel),
        [[1.0, nan, 0.5, nan], [nan, 1.0, 0.25, nan], [0.5, 0.25, 1.0, nan], [nan, nan, nan, nan]],
    )
    assert "0.0" not in cell_texts(layer_panel).values() and len(cell_texts(layer_panel)) == 7
    np.testing.assert_allclose(heatmap_grid(block_panel)[0], [1.0, nan, nan, -0.5])
    assert layer_panel.patch.get_hatch() == plots.MISSING_HATCH  # the blank cells show the hatched background
    (legend,) = fig.legends
    assert texts(legend.get_texts())[0].startswith("n/a: no τ")
    readability.assert_readable(fig, OPTIONS["dpi"])


def test_a_missing_local_score_is_hatched_and_called_n_a():
    scores = heatmap_scores()
    scores = scores[~((scores["layer"] == "fc2") & (scores["epoch"] == 4))]
    fig = plots.local_score_heatmaps(scores)
    clean = fig.axes[0]
    grid = expected_grid(0)
    grid[1, 1] = np.nan
    np.testing.assert_allclose(heatmap_grid(clean), grid)
    assert (1, 1) not in cell_texts(clean) and clean.patch.get_hatch() == plots.MISSING_HATCH
    assert texts(fig.legends[0].get_texts()) == ["n/a: no score for this layer and checkpoint"]
    readability.assert_readable(fig, OPTIONS["dpi"])


def test_a_figure_job_imports_neither_torch_nor_the_stress_tests(tmp_path):
    """A figure job (workflow/scripts/figure.py) costs what drawing costs: its imports and the
    drawing of every registered figure leave torch, the stress tests, scipy, seaborn and
    pyplot unloaded."""
    script = f"""
import sys
import pandas as pd
from fragility.figures import FIGURES, draw_figure
from fragility.io import save_figure
for name, spec in FIGURES.items():  # a comparison figure: the run's one model (dataset)
    tables = {{table: pd.read_parquet(f"{REFERENCE}/{{table}}.parquet") for table in spec.tables}}
    options = {{key: {OPTIONS!r}[key] for key in ("dpi", *spec.options)}}
    save_figure(draw_figure(name, tables, options), f"{tmp_path}/{{name}}.png", dpi=120)
heavy = ("torch", "fragility.stress", "fragility.engine", "scipy", "seaborn", "matplotlib.pyplot")
print(sorted(name for name in sys.modules if name.split(".")[0] in heavy or name.startswith(heavy)))
"""
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    assert all((tmp_path / f"{name}.png").stat().st_size > 10_000 for name in FIGURES)
