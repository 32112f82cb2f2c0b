"""Figures of the paper, drawn from the sweep, score and retrain tables (no torch needed).

Every function takes DataFrames with the documented schemas and returns a matplotlib
Figure; seeds are averaged and their spread shown.
"""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import GLOBAL_LAYER  # noqa: E402
from .scoring.scores import responses  # noqa: E402

SCORES = {"score_clean": "clean r_x", "score_adv": "adversarial r_xε", "score_diff": "difference r_ε"}
WHITEBOX_SCORES = {"score_adv_whitebox": "adversarial r_xε, white-box", "score_diff_whitebox": "difference r_ε, white-box"}
MARKS = {"fragile": "Fr", "robust": "Ro", "antifragile": "Af", "undetermined": "?"}
FILTER_NAMES = {"h1": "h1 high-pass", "h2": "h2 low-pass", "h3": "h3 pulse wave", "combined": "combined"}


def _title(df: pd.DataFrame) -> str:
    """'dataset / model / attack fgsm' for what the table holds one of, and the checkpoints
    it flags as not usable (:mod:`fragility.trust`)."""
    parts = [str(df[c].iloc[0]) for c in ("dataset", "model") if c in df and df[c].nunique() == 1]
    if "attack" in df and df["attack"].nunique() == 1:
        parts.append(f"attack {df['attack'].iloc[0]}")
    flagged = _unusable(df)
    note = f" [NOT USABLE: {', '.join(flagged)}]" if flagged else ""
    return " / ".join(parts) + note


def _unusable(df: pd.DataFrame) -> list[str]:
    """'seed 0 epoch 2' for every checkpoint the table flags as not usable ('epoch 2' in a
    table over seeds, such as the agreement's)."""
    if "usable" not in df:
        return []
    keys = [k for k in ("seed", "epoch") if k in df]
    rows = df.loc[~df["usable"].astype(bool), keys].drop_duplicates().sort_values(keys)
    return [" ".join(f"{k} {int(v)}" for k, v in zip(keys, row)) for row in rows.itertuples(index=False)]


def _majority(labels: pd.Series) -> str:
    labels = labels.dropna()
    return MARKS[labels.mode().iloc[0]] if len(labels) else ""


def local_score_heatmaps(scores: pd.DataFrame, filter_name: str = "combined", unit_kind: str = "layer") -> plt.Figure:
    """Layer x epoch heatmaps of r_x, r_xε, r_ε with Fr/Ro/Af marks (paper Fig. 10), and below
    them r_xε and r_ε of the white-box reading where the sweep has it (blank cells: layers
    without it); with bootstrap columns each mark carries its label confidence (mean over
    seeds). Each score and its white-box twin share one colour scale. ``unit_kind="block"``
    draws the blocks instead (blocks are not layers: they get their own figure)."""
    local = scores[(scores["filter"] == filter_name) & (scores["layer"] != GLOBAL_LAYER)]
    local = local[_unit_kinds(local) == unit_kind]
    what = "Local scores" if unit_kind == "layer" else "Block scores"
    if local.empty:
        missing = "local layer" if unit_kind == "layer" else unit_kind
        return _empty_figure(f"{what} ({filter_name}), {_title(scores)}: no {missing} swept")
    order = list(dict.fromkeys(local["layer"]))
    whitebox = [c for c in WHITEBOX_SCORES if c in local and local[c].notna().any()]
    rows = 2 if whitebox else 1
    fig, axes = plt.subplots(
        rows, 3, figsize=(4 + 1.5 * local["epoch"].nunique() * 3, rows * (1.5 + 0.32 * len(order))), squeeze=False
    )
    panels = [(axes[0][i], column, name) for i, (column, name) in enumerate(SCORES.items())]
    panels += [(axes[1][1 + i], column, WHITEBOX_SCORES[column]) for i, column in enumerate(whitebox)]
    if whitebox:
        axes[1][0].axis("off")
        axes[1][0].text(0.5, 0.5, "white-box reading:\nevery filtered variant\nattacked itself", ha="center", va="center")
    for ax, column, name in panels:
        values = local.pivot_table(index="layer", columns="epoch", values=column, aggfunc="mean", dropna=False).reindex(order)
        marks = _marks(local, column.replace("score", "label")).reindex(index=order, columns=values.columns)
        twin = column.removesuffix("_whitebox") if column.endswith("_whitebox") else f"{column}_whitebox"
        shared = [c for c in (column, twin) if c in local]
        means = local.groupby(["layer", "epoch"])[shared].mean().to_numpy(dtype=float)
        limit = max(float(np.nanmax(np.abs(means))), 1e-9)
        sns.heatmap(
            values,
            ax=ax,
            cmap="RdBu",
            vmin=-limit,
            vmax=limit,
            annot=marks.fillna(""),
            fmt="",
            cbar_kws={"shrink": 0.6},
            annot_kws={"fontsize": 6},
        )
        _hatch_unusable(ax, local, order, list(values.columns))
        ax.set_title(name)
        ax.set_ylabel(unit_kind if ax is axes[0][0] or (whitebox and ax is axes[1][1]) else "")
    confidence = " (mark: majority label and its bootstrap confidence)" if _has_intervals(local) else ""
    confidence += "; hatched: a checkpoint not usable, ? undetermined" if _unusable(local) else ""
    fig.suptitle(f"{what} ({filter_name}), {_title(scores)}: negative = fragile{confidence}")
    fig.tight_layout()
    return fig


def _unit_kinds(rows: pd.DataFrame) -> pd.Series:
    """Each row's ``unit_kind``; rows of tables written before blocks are layers."""
    return rows["unit_kind"].astype(object).fillna("layer") if "unit_kind" in rows else pd.Series("layer", index=rows.index)


def _hatch_unusable(ax, local: pd.DataFrame, layers: list[str], epochs: list) -> None:
    """Hatch the heatmap cells (layer, epoch) that hold a checkpoint not usable."""
    from matplotlib.patches import Rectangle

    if "usable" not in local:
        return
    flagged = local.loc[~local["usable"].astype(bool), ["layer", "epoch"]].drop_duplicates()
    for layer, epoch in flagged.itertuples(index=False):
        if layer in layers and epoch in epochs:
            cell = (epochs.index(epoch), layers.index(layer))
            ax.add_patch(Rectangle(cell, 1, 1, fill=False, hatch="///", edgecolor="grey", lw=0, label="_unusable"))


def transfer_vs_whitebox(scores: pd.DataFrame, filter_name: str = "combined") -> plt.Figure:
    """Per unit and checkpoint (mean over seeds): the transferred score against the white-box
    one, r_xε and r_ε, with the mean bootstrap 95 % intervals as error bars and the diagonal.
    Points below the diagonal are units the transferred attack makes look stronger."""
    rows = scores[scores["filter"] == filter_name]
    if "score_adv_whitebox" not in rows or rows["score_adv_whitebox"].isna().all():
        return _empty_figure(f"Transferred vs white-box scores, {_title(scores)}: no unit has the white-box reading")
    rows = rows.dropna(subset=["score_adv_whitebox"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), squeeze=False)
    epochs = sorted(rows["epoch"].unique())
    for ax, kind, name in zip(axes[0], ("adv", "diff"), ("adversarial r_xε", "difference r_ε")):
        columns = [f"score_{kind}{suffix}" for suffix in ("", "_whitebox")]
        bounds = [f"{c}_{q}" for c in columns for q in ("lo", "hi") if f"{c}_{q}" in rows]
        means = rows.groupby(["layer", "epoch"], sort=False)[columns + bounds].mean().reset_index()
        for colour, epoch in enumerate(epochs):
            part = means[means["epoch"] == epoch]
            x, y = part[columns[0]], part[columns[1]]
            errors = {}
            if len(bounds) == 4 and part[bounds].notna().all().all():
                errors = {
                    "xerr": [x - part[f"{columns[0]}_lo"], part[f"{columns[0]}_hi"] - x],
                    "yerr": [y - part[f"{columns[1]}_lo"], part[f"{columns[1]}_hi"] - y],
                }
            ax.errorbar(x, y, fmt="o", ms=4, capsize=2, lw=0.8, color=f"C{colour}", label=f"epoch {epoch}", **errors)
            for _, point in part.iterrows():
                ax.annotate(
                    point["layer"], (point[columns[0]], point[columns[1]]), fontsize=6, xytext=(3, 3), textcoords="offset points"
                )
        extent = means[columns + bounds].to_numpy(dtype=float)
        low, high = float(np.nanmin(extent)), float(np.nanmax(extent))
        ax.plot([low, high], [low, high], color="grey", lw=0.8, ls="--", label="transferred = white-box")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel(f"{name}, transferred (one adversarial set for every variant)")
        ax.set_ylabel(f"{name}, white-box (every variant attacked itself)")
        ax.set_title(name)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Transferred vs white-box scores ({filter_name}), {_title(scores)}: mean over seeds, bootstrap 95 %")
    fig.tight_layout()
    return fig


def _empty_figure(title: str) -> plt.Figure:
    """A figure that says why there is nothing to draw (a run that swept no local layer)."""
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    fig.suptitle(title)
    return fig


def _has_intervals(scores: pd.DataFrame) -> bool:
    return "label_clean_conf" in scores and scores["label_clean_conf"].notna().any()


def _marks(local: pd.DataFrame, label_column: str) -> pd.DataFrame:
    """'Fr' (or 'Fr .93' with the mean bootstrap confidence) per layer and epoch."""
    confidence = label_column + "_conf"

    def mark(rows: pd.DataFrame) -> str:
        text = _majority(rows[label_column])
        if confidence in rows and rows[confidence].notna().any():
            text += f" {rows[confidence].mean():.2f}".replace("0.", ".")
        return text

    marks = {key: mark(rows) for key, rows in local.groupby(["layer", "epoch"], sort=False)}
    return pd.Series(marks).unstack()


def global_scores(scores: pd.DataFrame) -> plt.Figure:
    """Global scores per filter over epochs (paper Fig. 9): mean over seeds with error bars of
    their std, and the mean bootstrap 95 % interval shaded."""
    table = scores[scores["layer"] == GLOBAL_LAYER]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True, squeeze=False)
    for ax, (column, name) in zip(axes[0], SCORES.items()):
        for colour, (filter_name, part) in enumerate(table.groupby("filter", sort=False)):
            by_epoch = part.groupby("epoch")
            mean, spread = by_epoch[column].mean(), by_epoch[column].std()
            ax.errorbar(
                mean.index, mean, yerr=spread.fillna(0), marker="o", ms=4, capsize=3, color=f"C{colour}", label=filter_name
            )
            if _has_intervals(part):
                ax.fill_between(
                    mean.index, by_epoch[f"{column}_lo"].mean(), by_epoch[f"{column}_hi"].mean(), color=f"C{colour}", alpha=0.12
                )
        flagged = table[~table["usable"].astype(bool)] if "usable" in table else table.iloc[:0]
        if len(flagged):
            ax.scatter(flagged["epoch"], flagged[column], marker="x", color="grey", s=40, zorder=3, label="not usable")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("score")
    if not table.empty:
        axes[0][0].legend(fontsize=7)
    note = " (no __global__ layer swept)" if table.empty else ": mean ± std over seeds, shaded: bootstrap 95 %"
    fig.suptitle(f"Global scores, {_title(scores)}{note}")
    fig.tight_layout()
    return fig


def learning_landscape(sweep: pd.DataFrame) -> plt.Figure:
    """Per layer: combined scaled accuracy over threshold x epoch, clean / adversarial / difference (Fig. 5, 7)."""
    combined = responses(sweep)
    combined = combined[combined["filter"] == "combined"].assign(scaled_diff=lambda d: d["scaled_adv"] - d["scaled_clean"])
    layers = list(dict.fromkeys(combined["layer"]))
    columns = {"scaled_clean": "clean β̄", "scaled_adv": "adversarial β̄ε", "scaled_diff": "difference β̄ε − β̄"}
    fig, axes = plt.subplots(len(layers), 3, figsize=(12, 1.3 + 1.5 * len(layers)), squeeze=False, sharex=True)
    for row, layer in zip(axes, layers):
        part = combined[combined["layer"] == layer]
        for ax, (column, name) in zip(row, columns.items()):
            grid = part.pivot_table(index="epoch", columns="alpha_norm", values=column, aggfunc="mean")
            cmap, vmin, vmax = ("RdBu", -1, 1) if column == "scaled_diff" else ("viridis", 0, max(1.0, float(grid.max().max())))
            ax.imshow(
                grid.to_numpy(),
                aspect="auto",
                origin="lower",
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                extent=(0, 1, -0.5, len(grid) - 0.5),
            )
            ax.set_yticks(range(len(grid)), grid.index)
            ax.set_title(f"{layer}: {name}", fontsize=8)
            ax.set_ylabel("epoch", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("normalised threshold α̂")
    fig.suptitle(f"Learning landscape, {_title(sweep)}")
    fig.tight_layout()
    return fig


def filter_response(sweep: pd.DataFrame, layer: str | None = None, epoch: int | None = None) -> plt.Figure:
    """Scaled accuracy per filter against α̂ with the baseline and the shaded score areas (Fig. 4, 8)."""
    layer = layer or sweep["layer"].iloc[0]
    epoch = epoch or int(sweep["epoch"].max())
    curves = responses(sweep[(sweep["layer"] == layer) & (sweep["epoch"] == epoch)])
    mean = (
        curves.groupby(["filter", "step"], sort=False)[["alpha_norm", "baseline", "scaled_clean", "scaled_adv"]]
        .mean()
        .reset_index()
    )
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], FILTER_NAMES):
        part = mean[mean["filter"] == name]
        x = part["alpha_norm"]
        ax.plot(x, part["baseline"], "k--", label="baseline φ̄")
        ax.plot(x, part["scaled_clean"], "C0-o", ms=3, label="clean β̄")
        ax.plot(x, part["scaled_adv"], "C3-o", ms=3, label="adversarial β̄ε")
        ax.fill_between(x, part["baseline"], part["scaled_clean"], color="C0", alpha=0.2)
        ax.fill_between(x, part["baseline"], part["scaled_adv"], color="C3", alpha=0.15)
        ax.set_title(FILTER_NAMES[name])
        ax.set_xlabel("normalised threshold α̂")
    return _finish_panels(fig, axes, "scaled accuracy", f"Filter response of {layer} at epoch {epoch}, {_title(sweep)}")


def _finish_panels(fig: plt.Figure, axes, ylabel: str, title: str) -> plt.Figure:
    """A row of panels sharing a y axis: label and legend on the first, title, layout."""
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def retrain_comparison(retrain: pd.DataFrame, summary: pd.DataFrame | None = None) -> plt.Figure:
    """Selective vs regular retraining, clean and adversarial, mean ± std over seeds (Fig. 12);
    with ``summary`` (:func:`fragility.scoring.stats.retrain_summary`) each panel's title gives the
    pairs, mean ± std of selective − regular and the Wilcoxon p over all checkpoints, and
    each checkpoint's bars the same per epoch."""
    long = retrain.melt(
        id_vars=["seed", "epoch", "branch"], value_vars=["acc_clean", "acc_adv"], var_name="test set", value_name="accuracy"
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9), squeeze=False)
    for ax, (column, name) in zip(axes[0], {"acc_clean": "clean", "acc_adv": "adversarial"}.items()):
        sns.barplot(
            long[long["test set"] == column],
            x="epoch",
            y="accuracy",
            hue="branch",
            ax=ax,
            errorbar="sd",
            hue_order=list(dict.fromkeys(["regular", "selective", *retrain["branch"]])),
        )
        title = f"{name} test accuracy after retraining"
        if summary is not None:
            rows = summary[summary["accuracy"] == column.removeprefix("acc_")]
            overall = rows[rows["scope"] == "all"]
            if len(overall):
                title += "\n" + _difference_text(overall.iloc[0], "all checkpoints")
            for tick, epoch in enumerate(sorted(retrain["epoch"].unique())):
                per_epoch = rows[(rows["scope"] == "epoch") & (rows["epoch"] == epoch)]
                if len(per_epoch):
                    ax.annotate(
                        _difference_text(per_epoch.iloc[0]),
                        (tick, 0.02),
                        xycoords=("data", "axes fraction"),
                        ha="center",
                        fontsize=6,
                    )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("checkpoint epoch")
    fig.suptitle(f"Selective vs regular retraining, {_title(retrain)}{_frozen_text(retrain)}")
    fig.tight_layout()
    return fig


def _frozen_text(retrain: pd.DataFrame) -> str:
    """'\nselective (transfer labels): froze 0.0 of 5 layers on average; ...' where the table says."""
    if "label_attack" not in retrain or "n_layers" not in retrain:
        return ""
    parts = [
        f"{branch} ({rows['label_attack'].iloc[0]} labels): froze {rows['n_frozen'].mean():.1f} of "
        f"{rows['n_layers'].mean():.0f} layers on average"
        + (", identical to regular (froze nothing)" if (rows["n_frozen"] == 0).all() else "")
        for branch, rows in retrain.dropna(subset=["label_attack"]).groupby("branch", sort=False)
    ]
    return "\n" + "; ".join(parts) if parts else ""


def _difference_text(row, scope: str = "") -> str:
    """'sel − reg +0.012 ± 0.020 (n 6, p 0.31)' for one summary row."""
    p = "n/a" if pd.isna(row["wilcoxon_p"]) else f"{row['wilcoxon_p']:.2g}"
    std = "" if pd.isna(row["std_diff"]) else f" ± {row['std_diff']:.3f}"
    where = f", {scope}" if scope else ""
    return f"sel − reg {row['mean_diff']:+.3f}{std} (n {row['n_pairs']}{where}, p {p})"


def compression_curve(sweep: pd.DataFrame) -> plt.Figure:
    """Accuracy against the fraction of weights removed, one panel per filter, global analysis
    (all local sweeps when absent); points sorted by the fraction removed, mean over seeds."""
    part = sweep[sweep["layer"] == GLOBAL_LAYER]
    scope = "global analysis"
    if part.empty:
        part, scope = sweep, "all local sweeps"
    part = part.assign(removed=part["n_removed"] / part["n_total"])
    filters = [f for f in ("h1", "h2", "h3") if f in set(part["filter"])]
    fig, axes = plt.subplots(1, len(filters), figsize=(4.6 * len(filters), 3.8), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], filters):
        for colour, (epoch, rows) in enumerate(part[part["filter"] == name].groupby("epoch")):
            curve = rows.groupby("removed")[["acc_clean", "acc_adv"]].mean().sort_index()
            ax.plot(curve.index, curve["acc_clean"], "-o", ms=3, color=f"C{colour}", label=f"clean, epoch {epoch}")
            ax.plot(curve.index, curve["acc_adv"], "--s", ms=3, color=f"C{colour}", label=f"adversarial, epoch {epoch}")
        ax.set_title(FILTER_NAMES[name])
        ax.set_xlabel("fraction of weights removed")
    return _finish_panels(fig, axes, "accuracy", f"Compression ({scope}), {_title(sweep)}")


def removable(table: pd.DataFrame) -> plt.Figure:
    """Per layer and filter, the largest fraction of weights removable with clean and
    adversarial accuracy within the tolerance (mean over seeds, last checkpoint)."""
    last = table[table["epoch"] == table["epoch"].max()]
    grid = last.pivot_table(index="layer", columns="filter", values="removable", aggfunc="mean").reindex(
        list(dict.fromkeys(last["layer"]))
    )
    fig, ax = plt.subplots(figsize=(5.5, 1.5 + 0.3 * len(grid)))
    sns.heatmap(
        grid,
        ax=ax,
        cmap="Greens",
        vmin=0,
        vmax=1,
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        cbar_kws={"label": "fraction removable"},
    )
    ax.set_title(f"Removable weights, epoch {last['epoch'].max()}, {_title(table)}", fontsize=9)
    fig.tight_layout()
    return fig


def compare_global(scores: pd.DataFrame, hue: str) -> plt.Figure:
    """Global combined scores over epochs with one line per ``hue`` (model or dataset)."""
    table = scores[(scores["layer"] == GLOBAL_LAYER) & (scores["filter"] == "combined")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True, squeeze=False)
    for ax, (column, name) in zip(axes[0], SCORES.items()):
        if not table.empty:
            sns.lineplot(table, x="epoch", y=column, hue=hue, ax=ax, marker="o", errorbar="sd")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(name)
    fixed = "dataset" if hue == "model" else "model"
    fig.suptitle(f"Global scores (combined) across {hue}s, {fixed} {scores[fixed].iloc[0]}")
    fig.tight_layout()
    return fig


def kernel_dropout(kernels: pd.DataFrame, targeting: pd.DataFrame) -> plt.Figure:
    """Accuracy after removing each kernel against the mean over kernels, fragile kernels in
    red, for the first seed at the last checkpoint (the authors' talk, slides 6–9)."""
    seed, epoch = kernels["seed"].min(), kernels["epoch"].max()
    part = kernels[(kernels["seed"] == seed) & (kernels["epoch"] == epoch)]
    layers = list(dict.fromkeys(part["layer"]))
    fig, axes = plt.subplots(len(layers), 2, figsize=(12, 1.2 + 2.6 * len(layers)), squeeze=False)
    for row, layer in zip(axes, layers):
        rows = part[part["layer"] == layer].sort_values("kernel")
        for ax, kind in zip(row, ("clean", "adv")):
            accuracy = rows[f"acc_{kind}"]
            colours = np.where(rows[f"fragile_{kind}"], "C3", "C0")
            ax.bar(rows["kernel"], accuracy, color=colours, width=0.8)
            ax.axhline(accuracy.mean(), color="k", ls="--", lw=0.9, label="mean over kernels")
            ax.axhline(rows[f"acc_{kind}_unfiltered"].iloc[0], color="grey", ls=":", lw=0.9, label="unfiltered")
            hit = targeting[
                (targeting["seed"] == seed)
                & (targeting["epoch"] == epoch)
                & (targeting["layer"] == layer)
                & (targeting["fragility"] == kind)
            ]
            verdict = ""
            if len(hit):
                t = hit.iloc[0]
                verdict = (
                    f"\nd_fragile {t['d_fragile']:.3g} vs d_nonfragile {t['d_nonfragile']:.3g}: "
                    f"{'targets' if t['targets_fragile'] else 'does not target'} fragile kernels"
                )
            name = "clean" if kind == "clean" else "adversarial"
            ax.set_title(f"{layer}: {name}, {int(rows[f'fragile_{kind}'].sum())}/{len(rows)} fragile{verdict}", fontsize=8)
            ax.set_xlabel("kernel removed")
            ax.set_ylabel("accuracy")
            unfiltered = float(rows[f"acc_{kind}_unfiltered"].iloc[0])  # its line stays in view
            ax.set_ylim(
                max(0.0, min(float(accuracy.min()), unfiltered) - 0.05), min(1.0, max(float(accuracy.max()), unfiltered) + 0.02)
            )
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Kernel dropout, seed {seed}, epoch {epoch}, {_title(kernels)}")
    fig.tight_layout()
    return fig


def kernel_consistency(kernels: pd.DataFrame) -> plt.Figure:
    """Kernel × checkpoint grids of clean fragility per layer and seed; the last row marks
    the kernels fragile at every checkpoint."""
    panels = list(kernels.groupby(["layer", "seed"], sort=False))
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 0.8 + 1.6 * len(panels)), squeeze=False)
    for ax, ((layer, seed), part) in zip(axes[:, 0], panels):
        grid = part.pivot_table(index="epoch", columns="kernel", values="fragile_clean", aggfunc="first").astype(float)
        always = grid.min(axis=0).to_frame("every checkpoint").T
        shown = pd.concat([grid, always])
        ax.imshow(shown.to_numpy(), aspect="auto", cmap="Reds", vmin=0, vmax=1.4, interpolation="nearest")
        ax.set_yticks(range(len(shown)), [f"epoch {e}" for e in grid.index] + ["every checkpoint"], fontsize=7)
        ax.axhline(len(grid) - 0.5, color="k", lw=1)
        ax.set_title(
            f"{layer}, seed {seed}: {int(always.sum(axis=1).iloc[0])} of {grid.shape[1]} kernels consistently fragile", fontsize=8
        )
        ax.set_xlabel("kernel")
    fig.suptitle(f"Fragile kernels (clean) over checkpoints, {_title(kernels)}")
    fig.tight_layout()
    return fig


def rank_agreement(agreement: pd.DataFrame) -> plt.Figure:
    """Kendall's τ_b between the unit rankings of every pair of measures, one heatmap per
    checkpoint (mean over seeds): layers in the first row, blocks (where swept) in a row of
    their own — blocks are not layers."""
    if agreement.empty:
        return _empty_figure("Rank agreement: no local layers to rank (only __global__ swept)")
    kinds = [k for k in ("layer", "block") if k in set(agreement["unit_kind"])] if "unit_kind" in agreement else ["layer"]
    epochs = sorted(agreement["epoch"].unique())
    names = list(dict.fromkeys(list(agreement["measure_a"]) + list(agreement["measure_b"])))
    fig, axes = plt.subplots(len(kinds), len(epochs), figsize=(1.2 + 5.2 * len(epochs), 5 * len(kinds)), squeeze=False)
    for row, kind in enumerate(kinds):
        for ax, epoch in zip(axes[row], epochs):
            part = agreement[agreement["epoch"] == epoch]
            part = part[part["unit_kind"] == kind] if "unit_kind" in part else part
            grid = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
            for entry in part.itertuples():
                grid.loc[entry.measure_a, entry.measure_b] = grid.loc[entry.measure_b, entry.measure_a] = entry.kendall_tau
            sns.heatmap(
                grid,
                ax=ax,
                cmap="RdBu",
                vmin=-1,
                vmax=1,
                annot=True,
                fmt=".1f",
                annot_kws={"fontsize": 6},
                cbar=ax is axes[row][-1],
                square=True,
            )
            units = "layers" if kind == "layer" else "blocks"
            ax.set_title(f"epoch {epoch} ({int(part['n_layers'].max()) if len(part) else 0} {units})", fontsize=9)
            ax.tick_params(labelsize=7)
    fig.suptitle(f"Rank agreement of unit measures (Kendall's τ_b, mean over seeds), {_title(agreement)}")
    fig.tight_layout()
    return fig


TRIAGE_ACCURACIES = {"acc_clean": "clean", "acc_adv": "adversarial"}
TRIAGE_MEASURES = {**TRIAGE_ACCURACIES, "cka": "CKA with the block"}
TRIAGE_INITS = {"fit": "", "random": (4, 2)}  # line dashes per initialisation: fit solid, random dashed


def _triage_inits(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its ``init`` column (a table written before it: the random draw only)."""
    return table if "init" in table else table.assign(init="random")


def triage_convergence(triage: pd.DataFrame) -> plt.Figure:
    """Each compressed network against the triage epoch, one column per block: clean and
    adversarial accuracy and the linear CKA of the new layer's output with the block's
    (rows), a colour per scheme and a line style per initialisation (mean ± std over seeds
    and checkpoints), the base network's accuracy dashed black (METHOD §13)."""
    blocks = list(dict.fromkeys(triage["block"]))
    if not blocks:
        return _empty_figure("No block was triaged (blocks, triage.schemes)")
    triage = _triage_inits(triage)
    measures = {column: name for column, name in TRIAGE_MEASURES.items() if column in triage}  # cka: since inits
    dashes = {init: TRIAGE_INITS[init] for init in TRIAGE_INITS if init in set(triage["init"])}
    fig, axes = plt.subplots(
        len(measures), len(blocks), figsize=(max(6.0, 2.6 * len(blocks) + 1), 2.7 * len(measures)), squeeze=False, sharey="row"
    )
    for column, block in enumerate(blocks):
        rows = triage[triage["block"] == block]
        for row, (measure, name) in enumerate(measures.items()):
            ax = axes[row][column]
            first = row == 0 and column == 0
            sns.lineplot(
                rows,
                x="triage_epoch",
                y=measure,
                hue="scheme",
                style="init",
                style_order=list(dashes),
                dashes=dashes,
                errorbar="sd",
                marker="o",
                ax=ax,
                legend=first,
            )
            if measure in TRIAGE_ACCURACIES:
                ax.axhline(rows[f"base_{measure}"].mean(), color="k", ls="--", lw=0.9, label="base network")
                ax.set_ylabel(f"{name} accuracy")
            else:
                ax.set_ylim(-0.02, 1.02)
                ax.set_ylabel("linear CKA with the block")
            ax.set_title(f"{block}, {name}", fontsize=8)
            ax.set_xlabel("triage epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Triage: each block replaced by one layer and retrained\n{_title(triage)}", fontsize=10)
    fig.tight_layout()
    return fig


def triage_criticality(drops: pd.DataFrame) -> plt.Figure:
    """Per block, the clean and adversarial accuracy lost after the last ``local`` triage
    epoch (criticality, METHOD §13), one panel per initialisation (fit first), mean ± std
    over seeds and checkpoints."""
    local = _triage_inits(drops[drops["compression"] == "triage_local"]) if "compression" in drops else drops.iloc[0:0]
    if local.empty:
        return _empty_figure("No local triage scheme ran (triage.schemes)")
    inits = [init for init in TRIAGE_INITS if init in set(local["init"])]
    long = local.melt(
        id_vars=["seed", "epoch", "layer", "init"], value_vars=["drop_clean", "drop_adv"], var_name="kind", value_name="drop"
    )
    long["test set"] = long["kind"].map({"drop_clean": "clean", "drop_adv": "adversarial"})
    width = max(4.5, 1.2 + 0.9 * local["layer"].nunique())
    fig, axes = plt.subplots(1, len(inits), figsize=(width * len(inits), 3.8), squeeze=False, sharey=True)
    for ax, init in zip(axes[0], inits):
        first = ax is axes[0][0]
        sns.barplot(long[long["init"] == init], x="layer", y="drop", hue="test set", errorbar="sd", ax=ax, legend=first)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"{init} initialisation", fontsize=9)
        ax.set_xlabel("block")
        ax.set_ylabel("accuracy lost (base − local)")
        ax.tick_params(axis="x", labelrotation=45)
    fig.suptitle(f"Block criticality by triage (local scheme)\n{_title(local)}", fontsize=10)
    fig.tight_layout()
    return fig


SEMIROBUST_NETWORKS = {
    "normal": "Acc\nnormal",
    "robust": "Acc*\nrobust F*",
    "semirobust": "Acc_sr\nsemirobust F_sr",
    "finetuned": "best\nfine-tuned",
}


def _semirobust_title(table: pd.DataFrame, what: str) -> str:
    """``what``, the protocol (``semirobust.protocol``), the usual title line and, for each
    checkpoint flagged not usable, why (F* not robust, or the trust record's reason)."""
    protocols = sorted(table["protocol"].dropna().unique()) if "protocol" in table else []
    head = f"{what}, protocol {', '.join(protocols)}" if protocols else what
    lines = [head, _title(table)]
    if "usable" in table and "why" in table:
        bad = table[~table["usable"].astype(bool)].drop_duplicates(["seed", "epoch"])
        for row in bad.itertuples():  # the reason without its counts, wrapped to the figure's width
            reason = "; ".join(part.split(" (")[0] for part in str(row.why).split("; ") if part)
            lines += textwrap.wrap(f"seed {int(row.seed)} epoch {int(row.epoch)}: {reason}", 100) if reason else []
    return "\n".join(lines)


def semirobust_accuracy(semirobust: pd.DataFrame) -> plt.Figure:
    """Per split (METHOD §14): the adversarial accuracy of the normal network (Acc), F* (Acc*),
    F_sr (Acc_sr) and the best fine-tuned one of each trial, mean ± std over seeds,
    checkpoints and trials (Acc, Acc*, Acc_sr once per checkpoint), with how many trials
    reached Acc* − δ and their mean epochs (top); the fine-tuning curves against Acc* − δ
    (bottom). The title names the protocol and every checkpoint flagged not usable, and why."""
    splits = sorted(semirobust["split_k"].unique())
    if not splits:
        return _empty_figure("No semirobust split was run (semirobust.splits)")
    table = semirobust if "trial" in semirobust else semirobust.assign(trial=0)
    fig, axes = plt.subplots(2, len(splits), figsize=(max(6.0, 3.8 * len(splits)), 7.0), squeeze=False)
    for column, k in enumerate(splits):
        rows = table[table["split_k"] == k]
        start = rows[rows["finetune_epoch"] == 0].drop_duplicates(["seed", "epoch", "network"])
        tuned = rows[rows["network"] == "finetuned"]
        trials = tuned.groupby(["seed", "epoch", "trial"]).agg(acc_adv=("acc_adv", "max")).reset_index()
        shown = pd.concat([start[["network", "acc_adv"]], trials.assign(network="finetuned")[["network", "acc_adv"]]])
        shown = shown.assign(shown=shown["network"].map(SEMIROBUST_NETWORKS))
        ax = axes[0][column]
        sns.barplot(shown, x="shown", y="acc_adv", order=list(SEMIROBUST_NETWORKS.values()), errorbar="sd", ax=ax)
        reached = tuned[tuned["acc_adv"] >= tuned["target_acc_adv"]].groupby(["seed", "epoch", "trial"])["finetune_epoch"].min()
        note = f"reached Acc* − δ: {len(reached)} of {len(trials)} trials"
        note += f", mean {reached.mean():.1f} epochs" if len(reached) else ""
        ax.set_title(f"k = {k}: f_b from {rows['first_fb_layer'].iloc[0]} on\n{note}", fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("adversarial accuracy")
        ax.tick_params(axis="x", labelsize=7)
        curve = rows[rows["network"].isin(["semirobust", "finetuned"])]
        ax = axes[1][column]
        sns.lineplot(curve, x="finetune_epoch", y="acc_adv", errorbar="sd", marker="o", ax=ax, label="F_sr, fine-tuned")
        ax.axhline(rows["target_acc_adv"].mean(), color="k", ls="--", lw=0.9, label="Acc* − δ")
        ax.set_xlabel("fine-tuning epoch (0: F_sr)")
        ax.set_ylabel("adversarial accuracy")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    fig.suptitle(_semirobust_title(semirobust, "Subnetwork robustness"), fontsize=9)
    fig.tight_layout()
    return fig


DEPENDENCY_MEASURES = {"mi": "ρ: mutual information, bits (EDGE)", "cka": "linear CKA"}


def layer_dependency(dependency: pd.DataFrame) -> plt.Figure:
    """Per split, the dependency of consecutive layer pairs along the network (position 0: the
    pair at the cut) for F*, F_sr and the fine-tuned network, mean ± std over seeds and
    checkpoints: ρ, the mutual information by EDGE (top; class-weighted; grey dashes: the same
    with one layer's images shuffled within each class, EDGE's reading of independent outputs),
    and linear CKA (bottom), each where the table has it."""
    splits = sorted(dependency["split_k"].unique())
    if not splits:
        return _empty_figure("No semirobust split was run (semirobust.splits)")
    measures = [measure for measure in DEPENDENCY_MEASURES if measure in dependency]
    fig, axes = plt.subplots(
        len(measures), len(splits), figsize=(max(5.0, 4.4 * len(splits)), 3.4 * len(measures) + 0.6), squeeze=False
    )
    for column, k in enumerate(splits):
        rows = dependency[dependency["split_k"] == k]
        pairs = rows.drop_duplicates("position").sort_values("position")
        for row, measure in enumerate(measures):
            ax = axes[row][column]
            sns.lineplot(rows, x="position", y=measure, hue="network", errorbar="sd", marker="o", ax=ax)
            if measure == "mi" and "mi_null" in rows:  # EDGE on independent outputs: its bias here
                null = rows.groupby("position")["mi_null"].mean()
                ax.plot(null.index, null.to_numpy(), color="0.5", ls="--", lw=1, label="shuffled within class")
                ax.legend(fontsize=7)
            names = [f"{a}\n→ {b}" for a, b in zip(pairs["layer_a"], pairs["layer_b"])]
            ax.set_xticks(pairs["position"], names, fontsize=6, rotation=90 if len(names) > 5 else 0)
            ax.set_title(f"k = {k}", fontsize=9)
            ax.set_xlabel("consecutive layers, toward the output")
            ax.set_ylabel(DEPENDENCY_MEASURES[measure] + " (per class)")
    fig.suptitle(_semirobust_title(dependency, "Dependency between consecutive layers"), fontsize=9)
    fig.tight_layout()
    return fig
