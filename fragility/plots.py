"""Figures of the paper, drawn from the sweep, score and retrain tables (no torch needed).

Every function takes DataFrames with the documented schemas and returns a matplotlib
Figure; seeds are averaged and their spread shown. A figure is only as good as a reader can
read it as drawn, so titles wrap to the figure's width, legends sit off the data, no side
passes MAX_INCHES and a missing value is hatched and called n/a, never drawn as 0.
"""

from __future__ import annotations

import math
import re
import textwrap

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from . import GLOBAL_LAYER
from .scoring.scores import responses

SCORES = {"score_clean": "clean r_x", "score_adv": "adversarial r_xε", "score_diff": "difference r_ε"}
WHITEBOX_SCORES = {"score_adv_whitebox": "adversarial r_xε, white-box", "score_diff_whitebox": "difference r_ε, white-box"}
MARKS = {"fragile": "Fr", "robust": "Ro", "antifragile": "Af", "undetermined": "?"}
FILTER_NAMES = {"h1": "h1 high-pass", "h2": "h2 low-pass", "h3": "h3 pulse wave", "combined": "combined"}
MAX_INCHES = 24.0  # the longest side of any figure: 2,880 px at the default 120 dpi
TITLE_SIZE = 11  # points, the figure title
MISSING_HATCH = "xx"  # a cell without a value: the axes background hatched through it
ROW = 0.3  # inches per unit (row) of a heatmap
CELL = 0.55  # inches per checkpoint (column) of a heatmap


def _figure(**kwargs) -> Figure:
    """A figure on the Agg canvas, made without pyplot: a figure job never pays pyplot's
    import nor keeps a figure manager alive."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, layout: str = "constrained", **kwargs):
    """pyplot's ``subplots`` on :func:`_figure`."""
    fig = _figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)


ERROR_COLOUR = ".26"  # the ± std lines of a bar: dark grey over any bar colour


def _levels(values: pd.Series, order=None) -> list:
    """The levels of a categorical variable: ``order`` when given, else sorted when numeric,
    else as they first appear (missing values left out)."""
    if order is not None:
        return list(order)
    levels = [level for level in values.unique() if pd.notna(level)]
    return sorted(levels) if pd.api.types.is_numeric_dtype(values) else levels


def _mean_sd(rows: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1: NaN for a single value) of ``y`` at each ``x``."""
    return rows.dropna(subset=[y]).groupby(x, sort=True)[y].agg(["mean", "std"])


def _bars(ax, table: pd.DataFrame, x: str, y: str, hue: str | None = None, *, order=None, hue_order=None) -> None:
    """The mean of ``y`` per category of ``x`` as a bar, side by side per ``hue`` level (a
    colour each, labelled for the legend), with a line of ± one standard deviation over the
    rows: pandas and matplotlib alone, so a figure job imports nothing more."""
    categories = _levels(table[x], order)
    hues = _levels(table[hue], hue_order) if hue else [None]
    width = 0.8 / len(hues)
    for index, level in enumerate(hues):
        rows = table if hue is None else table[table[hue] == level]
        stats = _mean_sd(rows, x, y).reindex(categories)
        shown = stats["mean"].notna().to_numpy()
        centres = (np.arange(len(categories)) - 0.4 + width * (index + 0.5))[shown]
        stats = stats[shown]
        ax.bar(centres, stats["mean"], width, color=f"C{index}", label=str(level) if hue else None)
        for centre, mean, sd in zip(centres, stats["mean"], stats["std"]):
            if np.isfinite(sd):
                ax.plot([centre, centre], [mean - sd, mean + sd], color=ERROR_COLOUR, lw=2.25)
    ax.set_xticks(range(len(categories)), [str(category) for category in categories])
    ax.set_xlim(-0.5, len(categories) - 0.5)
    ax.set(xlabel=x, ylabel=y)


def _lines(
    ax, table: pd.DataFrame, x: str, y: str, hue: str | None = None, *, style: str | None = None, dashes=None, label=None
) -> None:
    """The mean of ``y`` at each ``x`` with markers and a band of ± one standard deviation
    over the rows, per ``hue`` level (a colour) and ``style`` level (its ``dashes``; empty: solid).
    Labelled for the legend: each hue level's line (or ``label`` without a hue); with a
    style, one empty line per colour and per dash pattern instead."""
    hues = _levels(table[hue]) if hue else [None]
    styles = _levels(table[style], list(dashes)) if style else [None]

    def drawn(pattern) -> dict:
        return {"dashes": dashes[pattern]} if style and dashes[pattern] else {"linestyle": "-"}

    for index, level in enumerate(hues):
        of_level = table if hue is None else table[table[hue] == level]
        for pattern in styles:
            stats = _mean_sd(of_level if style is None else of_level[of_level[style] == pattern], x, y)
            if stats.empty:
                continue
            name = None if style else (str(level) if hue else label)
            (line,) = ax.plot(
                stats.index, stats["mean"], color=f"C{index}", marker="o", mec="w", mew=0.75, label=name, **drawn(pattern)
            )
            low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
            ax.fill_between(stats.index, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    if style:
        for index, level in enumerate(hues):
            ax.plot([], [], color=f"C{index}", label=str(level))
        for pattern in styles:
            ax.plot([], [], color=".2", label=str(pattern), **drawn(pattern))
    ax.set(xlabel=x, ylabel=y)


def _wrap(text: str, inches: float, fontsize: float) -> str:
    """``text`` with each of its lines broken to fit ``inches`` at ``fontsize`` points; a
    bracketed note ('[NOT USABLE: …]') is kept whole where it fits a line."""
    width = max(16, int(inches * 72 / (fontsize * 0.6)))
    lines = []
    for line in text.split("\n"):
        current = ""
        for word in re.findall(r"\[[^\]]*\]\S*|\S+", line):
            if len(word) > width:  # longer than a line: broken at its own spaces
                pieces = textwrap.wrap(word, width, break_on_hyphens=False)
                if current:
                    lines.append(current)
                lines += pieces[:-1]
                current = pieces[-1]
            elif current and len(current) + 1 + len(word) > width:
                lines.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        lines.append(current)
    return "\n".join(lines)


def _suptitle(fig, text: str, fontsize: float = TITLE_SIZE) -> None:
    """The figure title wrapped to the figure's width (a narrow figure first widens up to 9
    inches to hold it); the figure grows by the title's extra lines."""
    needed = max(len(line) for line in text.split("\n")) * fontsize * 0.6 / 72 + 0.4
    if fig.get_figwidth() < min(needed, 9.0):
        fig.set_figwidth(min(needed, 9.0))
    wrapped = _wrap(text, fig.get_figwidth() - 0.4, fontsize)
    extra = wrapped.count("\n") - text.count("\n")
    if extra > 0:
        fig.set_figheight(min(MAX_INCHES, fig.get_figheight() + extra * fontsize * 1.3 / 72))
    fig.suptitle(wrapped, fontsize=fontsize)


def _grid(n: int, panel_height: float, fixed: float = 1.0) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels of ``panel_height`` inches: one column while they fit
    MAX_INCHES tall (``fixed``: the title and margins), then as many columns as it takes."""
    fit = max(1, int((MAX_INCHES - fixed) // panel_height))
    columns = math.ceil(n / fit)
    return math.ceil(n / columns), columns


def _epoch_axis(ax, epochs, label: str = "epoch") -> None:
    """Ticks at the checkpoint epochs themselves (whole numbers); one checkpoint says so."""
    epochs = sorted({int(e) for e in epochs})
    if len(epochs) <= 12:
        ax.set_xticks(epochs, [str(e) for e in epochs])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
        label += " (one checkpoint)"
    ax.set_xlabel(label)


def _legend_right(ax, handles=None, labels=None, **kwargs):
    """The axes' legend outside it, to its right (off the data)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    kwargs = {"fontsize": 7, "loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, **kwargs}
    return ax.legend(handles, labels, **kwargs)


def _hatch_missing(ax) -> None:
    """Show the heatmap's blank (NaN) cells hatched: the axes background shows through them."""
    ax.patch.set_hatch(MISSING_HATCH)
    ax.patch.set_edgecolor("0.75")
    ax.patch.set_linewidth(0)


def _missing_legend(fig, what: str) -> None:
    """The figure's legend entry for the hatched cells: n/a, and why."""
    patch = Patch(facecolor="white", edgecolor="0.75", hatch=MISSING_HATCH, label=f"n/a: {what}")
    fig.legend(handles=[patch], loc="outside lower center", fontsize=8, frameon=False)


def _heatmap(ax, values: pd.DataFrame, cmap: str, vmin: float, vmax: float, annot=None, fontsize: float = 6, **options):
    """A heatmap of ``values`` (rows top to bottom) as seaborn draws one — cells at integer
    offsets, masked where NaN, ``annot`` (a frame of texts, or a format for the values)
    centred in each cell that has a value — without seaborn's draw of the whole figure per
    heatmap. ``options``: ``square``, ``xrotation``, ``colorbar`` (its keyword arguments)."""
    data = np.ma.masked_invalid(values.to_numpy(dtype=float))
    mesh = ax.pcolormesh(data, cmap=cmap, vmin=vmin, vmax=vmax)
    rows, columns = data.shape
    ax.set(xlim=(0, columns), ylim=(rows, 0))
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks(np.arange(columns) + 0.5, [str(c) for c in values.columns], rotation=options.get("xrotation", 0))
    ax.set_yticks(np.arange(rows) + 0.5, [str(i) for i in values.index], rotation=0, va="center")
    ax.set_xlabel(values.columns.name or "")
    ax.set_ylabel(values.index.name or "")
    if options.get("square"):
        ax.set_aspect("equal")
    if annot is not None:
        mesh.update_scalarmappable()
        colours = mesh.get_facecolors()
        texts = annot.to_numpy() if isinstance(annot, pd.DataFrame) else None
        for index, value in enumerate(data.flat):
            if value is np.ma.masked:
                continue
            row, column = divmod(index, columns)
            text = str(texts[row, column]) if texts is not None else format(float(value), annot)
            colour = ".15" if _relative_luminance(colours[index]) > 0.408 else "w"
            mark = ax.text(column + 0.5, row + 0.5, text, ha="center", va="center", fontsize=fontsize, color=colour)
            mark.set_in_layout(False)  # inside its cell: nothing for the layout to make room for
    if "colorbar" in options:
        ax.figure.colorbar(mesh, ax=ax, **options["colorbar"])
    return mesh


def _relative_luminance(rgba) -> float:
    """The W3C relative luminance of an RGB(A) colour in [0, 1] (dark text on a light cell)."""
    rgb = np.asarray(rgba, dtype=float)[:3]
    linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


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


def local_score_heatmaps(scores: pd.DataFrame, filter_name: str = "combined", unit_kind: str = "layer") -> Figure:
    """Layer x epoch heatmaps of r_x, r_xε, r_ε with Fr/Ro/Af marks (paper Fig. 10), and below
    them r_xε and r_ε of the white-box reading for the units and checkpoints that have it;
    with bootstrap columns each mark carries its label confidence (mean over seeds). Each
    score and its white-box twin share one colour scale. ``unit_kind="block"`` draws the
    blocks instead (blocks are not layers: they get their own figure)."""
    local = scores[(scores["filter"] == filter_name) & (scores["layer"] != GLOBAL_LAYER)]
    local = local[_unit_kinds(local) == unit_kind]
    what = "Local scores" if unit_kind == "layer" else "Block scores"
    if local.empty:
        missing = "local layer" if unit_kind == "layer" else unit_kind
        return _empty_figure(f"{what} ({filter_name}), {_title(scores)}: no {missing} swept")
    order = list(dict.fromkeys(local["layer"]))
    whitebox = [c for c in WHITEBOX_SCORES if c in local and local[c].notna().any()]
    read = local.dropna(subset=whitebox, how="all") if whitebox else local.iloc[:0]
    read_units = [unit for unit in order if unit in set(read["layer"])]
    row = min(ROW, (MAX_INCHES - 4.0) / (len(order) + len(read_units)))  # a long unit list: thinner rows
    top_height, bottom_height = 1.4 + row * len(order), 1.6 + row * len(read_units)
    width = min(MAX_INCHES, 3 * (2.1 + CELL * local["epoch"].nunique()))
    fig = _figure(figsize=(width, 0.6 + top_height + (bottom_height if whitebox else 0)), layout="constrained")
    top = fig
    if whitebox:
        top, bottom = fig.subfigures(2, 1, height_ratios=[top_height, bottom_height])
    panels = [(ax, column, name, local, order) for ax, (column, name) in zip(top.subplots(1, 3), SCORES.items())]
    if whitebox:
        below = bottom.subplots(1, 3)
        for unused in [below[0], *below[1 + len(whitebox) :]]:
            unused.remove()
        bottom.suptitle(
            "white-box reading: every filtered variant attacked itself (units and checkpoints with the reading)", fontsize=10
        )
        panels += [(ax, column, WHITEBOX_SCORES[column], read, read_units) for ax, column in zip(below[1:], whitebox)]
    missing = False
    for index, (ax, column, name, rows, units) in enumerate(panels):
        values = rows.pivot_table(index="layer", columns="epoch", values=column, aggfunc="mean", dropna=False).reindex(units)
        marks = _marks(rows, column.replace("score", "label")).reindex(index=units, columns=values.columns)
        twin = column.removesuffix("_whitebox") if column.endswith("_whitebox") else f"{column}_whitebox"
        shared = [c for c in (column, twin) if c in local]
        means = local.groupby(["layer", "epoch"])[shared].mean().to_numpy(dtype=float)
        limit = max(float(np.nanmax(np.abs(means))), 1e-9)
        _heatmap(ax, values, "RdBu", -limit, limit, annot=marks.fillna(""), colorbar={"shrink": 0.8, "aspect": 30})
        ax.tick_params(axis="y", labelsize=min(10, 30 * row))
        if values.isna().any().any():
            _hatch_missing(ax)
            missing = True
        _hatch_unusable(ax, rows, units, list(values.columns))
        ax.set_title(name)
        ax.set_ylabel(unit_kind if index in (0, 3) else "")
    notes = ["mark: majority label and its bootstrap confidence"] if _has_intervals(local) else []
    notes += ["hatched: a checkpoint not usable, ? undetermined"] if _unusable(local) else []
    if missing:
        _missing_legend(fig, f"no score for this {unit_kind} and checkpoint")
    _suptitle(fig, "\n".join([f"{what} ({filter_name}), {_title(scores)}: negative = fragile", *notes]))
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


def transfer_vs_whitebox(scores: pd.DataFrame, filter_name: str = "combined") -> Figure:
    """Per unit and checkpoint (mean over seeds): the transferred score against the white-box
    one, r_xε and r_ε, with the mean bootstrap 95 % intervals as error bars and the diagonal.
    Points below the diagonal are units the transferred attack makes look stronger."""
    rows = scores[scores["filter"] == filter_name]
    if "score_adv_whitebox" not in rows or rows["score_adv_whitebox"].isna().all():
        return _empty_figure(f"Transferred vs white-box scores, {_title(scores)}: no unit has the white-box reading")
    rows = rows.dropna(subset=["score_adv_whitebox"])
    fig, axes = _subplots(1, 2, figsize=(12, 5.2), squeeze=False, layout="constrained")
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
        ax.set_xlabel(f"{name}, transferred\n(one adversarial set for every variant)")
        ax.set_ylabel(f"{name}, white-box\n(every variant attacked itself)")
        ax.set_title(name)
    _legend_right(axes[0][-1])
    _suptitle(fig, f"Transferred vs white-box scores ({filter_name}), {_title(scores)}: mean over seeds, bootstrap 95 %")
    return fig


def _empty_figure(title: str) -> Figure:
    """A figure that says why there is nothing to draw (a run that swept no local layer)."""
    width = min(14.0, max(6.0, len(title) * TITLE_SIZE * 0.6 / 72 + 0.6))  # the reason on one line where it can
    fig, ax = _subplots(figsize=(width, 2), layout="constrained")
    ax.axis("off")
    _suptitle(fig, title)
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


def global_scores(scores: pd.DataFrame) -> Figure:
    """Global scores per filter over epochs (paper Fig. 9): mean over seeds with error bars of
    their std, and the mean bootstrap 95 % interval shaded; ticks at the checkpoints."""
    table = scores[scores["layer"] == GLOBAL_LAYER]
    fig, axes = _subplots(1, 3, figsize=(14, 3.8), sharey=True, squeeze=False, layout="constrained")
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
        _epoch_axis(ax, table["epoch"] if len(table) else scores["epoch"])
        ax.set_ylabel("score")
    if not table.empty:
        _legend_right(axes[0][-1])
    note = " (no __global__ layer swept)" if table.empty else ": mean ± std over seeds, shaded: bootstrap 95 %"
    _suptitle(fig, f"Global scores, {_title(scores)}{note}")
    return fig


LANDSCAPE = {"scaled_clean": "clean β̄", "scaled_adv": "adversarial β̄ε", "scaled_diff": "difference β̄ε − β̄"}


def learning_landscape(sweep: pd.DataFrame) -> Figure:
    """Per unit: combined scaled accuracy over threshold x epoch, clean / adversarial /
    difference (Fig. 5, 7), each unit a row of three panels, the rows in more columns where
    one column would run past MAX_INCHES; one colour scale for the accuracies, one for the
    difference. A landscape needs checkpoints: with one, :func:`response_grid` instead."""
    combined = responses(sweep)
    combined = combined[combined["filter"] == "combined"].assign(scaled_diff=lambda d: d["scaled_adv"] - d["scaled_clean"])
    if combined["epoch"].nunique() < 2:
        return response_grid(sweep)
    layers = list(dict.fromkeys(combined["layer"]))
    epochs = sorted(combined["epoch"].unique())
    panel_height = max(1.1, 0.75 + 0.12 * len(epochs))
    rows, groups = _grid(len(layers), panel_height, fixed=2.8)
    width = min(MAX_INCHES, 1.0 + 3.6 * 3 * groups)
    fig, axes = _subplots(
        rows,
        3 * groups,
        figsize=(width, 2.2 + panel_height * rows),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    top = max(1.0, float(combined[["scaled_clean", "scaled_adv"]].max().max()))
    scales = {"scaled_clean": ("viridis", 0, top), "scaled_adv": ("viridis", 0, top), "scaled_diff": ("RdBu", -1, 1)}
    step = max(1, math.ceil(len(epochs) / max(2, int(panel_height * 5))))  # epoch labels that fit the panel
    images, missing = {}, False
    for index, layer in enumerate(layers):
        row, group = index % rows, index // rows
        part = combined[combined["layer"] == layer]
        for offset, (column, name) in enumerate(LANDSCAPE.items()):
            ax = axes[row][3 * group + offset]
            grid = part.pivot_table(index="epoch", columns="alpha_norm", values=column, aggfunc="mean")
            cmap, vmin, vmax = scales[column]
            images[column] = ax.imshow(
                grid.to_numpy(),
                aspect="auto",
                origin="lower",
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                extent=(0, 1, -0.5, len(grid) - 0.5),
                interpolation="nearest",
            )
            if grid.isna().to_numpy().any():
                _hatch_missing(ax)
                missing = True
            ticks = list(range(0, len(grid), step))
            ax.set_yticks(ticks, [str(grid.index[t]) for t in ticks], fontsize=7)
            ax.set_title(_wrap(f"{layer}: {name}", width / (3 * groups) - 0.6, 8), fontsize=8)
            ax.set_ylabel("epoch", fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
            if row == rows - 1 or index == len(layers) - 1:  # the bottom of its column of rows
                ax.set_xlabel("normalised threshold α̂", fontsize=7)
                ax.xaxis.set_tick_params(labelbottom=True)
    for index in range(len(layers), rows * groups):  # the empty places after the last unit
        for offset in range(3):
            axes[index % rows][3 * (index // rows) + offset].remove()
    shown = [ax for ax in axes.flat if ax.images]
    for column, label in (("scaled_diff", "difference β̄ε − β̄"), ("scaled_clean", "clean β̄, adversarial β̄ε")):
        fig.colorbar(images[column], ax=shown, location="bottom", shrink=0.4, aspect=50, pad=0.01, label=label)
    fig.get_layout_engine().set(h_pad=0.1)  # the colour bars' labels clear of the bottom edge
    if missing:
        _missing_legend(fig, "no sweep step at this threshold and checkpoint")
    _suptitle(fig, f"Learning landscape, {_title(sweep)}")
    return fig


def response_grid(sweep: pd.DataFrame, epoch: int | None = None) -> Figure:
    """What one checkpoint shows of every swept unit: its combined response at checkpoint
    ``epoch`` (the last by default), scaled clean and adversarial accuracy against α̂ with the
    baseline φ̄ and the shaded score areas, mean over seeds, one small panel per unit."""
    epoch = int(sweep["epoch"].max()) if epoch is None else epoch
    curves = responses(sweep[sweep["epoch"] == epoch])
    curves = curves[curves["filter"] == "combined"]
    mean = curves.groupby(["layer", "step"], sort=False)[["alpha_norm", "baseline", "scaled_clean", "scaled_adv"]].mean()
    layers = list(dict.fromkeys(curves["layer"]))
    columns = min(len(layers), 6)
    rows = math.ceil(len(layers) / columns)
    panel_height = min(2.0, (MAX_INCHES - 1.8) / rows)
    fig, axes = _subplots(
        rows,
        columns,
        figsize=(1.8 + 2.4 * columns, 1.4 + panel_height * rows),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    for ax, layer in zip(axes.flat, layers):
        part = mean.loc[layer].sort_index()
        x = part["alpha_norm"]
        ax.plot(x, part["baseline"], "k--", lw=1, label="baseline φ̄")
        ax.plot(x, part["scaled_clean"], "C0-o", ms=2, lw=1, label="clean β̄")
        ax.plot(x, part["scaled_adv"], "C3-o", ms=2, lw=1, label="adversarial β̄ε")
        ax.fill_between(x, part["baseline"], part["scaled_clean"], color="C0", alpha=0.2)
        ax.fill_between(x, part["baseline"], part["scaled_adv"], color="C3", alpha=0.15)
        ax.set_title(layer, fontsize=8)
        ax.tick_params(labelsize=7)
    for index, ax in enumerate(axes.flat):
        if index >= len(layers):
            ax.remove()
        elif index + columns >= len(layers):  # nothing below it: its x axis is labelled
            ax.set_xlabel("normalised threshold α̂", fontsize=7)
            ax.xaxis.set_tick_params(labelbottom=True)
    for row in axes:
        row[0].set_ylabel("scaled accuracy", fontsize=7)
    _legend_right(axes[0][-1] if len(layers) >= columns else axes[0][len(layers) - 1])
    _suptitle(
        fig,
        f"Combined filter response per unit at epoch {epoch}, {_title(sweep)}: one checkpoint "
        "(a learning landscape needs several), mean over seeds",
    )
    return fig


def filter_response(sweep: pd.DataFrame, layer: str | None = None, epoch: int | None = None) -> Figure:
    """Scaled accuracy per filter against α̂ with the baseline and the shaded score areas (Fig. 4, 8)."""
    layer = layer or sweep["layer"].iloc[0]
    epoch = epoch or int(sweep["epoch"].max())
    curves = responses(sweep[(sweep["layer"] == layer) & (sweep["epoch"] == epoch)])
    mean = (
        curves.groupby(["filter", "step"], sort=False)[["alpha_norm", "baseline", "scaled_clean", "scaled_adv"]]
        .mean()
        .reset_index()
    )
    fig, axes = _subplots(1, 4, figsize=(16, 3.8), sharey=True, squeeze=False, layout="constrained")
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


def _finish_panels(fig: Figure, axes, ylabel: str, title: str, handles=None) -> Figure:
    """A row of panels sharing a y axis: label on the first, legend right of the last, title."""
    axes[0][0].set_ylabel(ylabel)
    _legend_right(axes[0][-1], *(handles or (None, None)))
    _suptitle(fig, title)
    return fig


def retrain_comparison(retrain: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Selective vs regular retraining, clean and adversarial, mean ± std over seeds (Fig. 12);
    with ``summary`` (:func:`fragility.scoring.stats.retrain_summary`) each panel's title gives the
    pairs, mean ± std of selective − regular and the Wilcoxon p over all checkpoints, and
    each checkpoint's bars the same per epoch."""
    long = retrain.melt(
        id_vars=["seed", "epoch", "branch"], value_vars=["acc_clean", "acc_adv"], var_name="test set", value_name="accuracy"
    )
    epochs = sorted(retrain["epoch"].unique())
    width = 2.3 * len(epochs) + 1.6  # room for each checkpoint's difference text
    stacked = 2 * width > MAX_INCHES - 2.5
    shape, size = ((2, 1), (min(MAX_INCHES, width + 2.5), 7.6)) if stacked else ((1, 2), (max(11.5, 2 * width + 2.5), 4.0))
    fig, axes = _subplots(*shape, figsize=size, squeeze=False, layout="constrained")
    branches = list(dict.fromkeys(["regular", "selective", *retrain["branch"]]))
    for ax, (column, name) in zip(axes.flat, {"acc_clean": "clean", "acc_adv": "adversarial"}.items()):
        _bars(ax, long[long["test set"] == column], "epoch", "accuracy", "branch", hue_order=branches)
        title = f"{name} test accuracy after retraining"
        if summary is not None:
            rows = summary[summary["accuracy"] == column.removeprefix("acc_")]
            overall = rows[rows["scope"] == "all"]
            if len(overall):
                title += "\n" + _difference_text(overall.iloc[0], "all checkpoints")
            for tick, epoch in enumerate(epochs):
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
    _legend_right(axes.flat[-1], title="branch", fontsize=8)
    _suptitle(fig, f"Selective vs regular retraining, {_title(retrain)}{_frozen_text(retrain)}")
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


def compression_curve(sweep: pd.DataFrame) -> Figure:
    """Accuracy against the fraction of weights removed, one panel per filter, global analysis
    (all local sweeps when absent); points sorted by the fraction removed, mean over seeds;
    a colour per checkpoint, clean solid and adversarial dashed."""
    from matplotlib.lines import Line2D

    part = sweep[sweep["layer"] == GLOBAL_LAYER]
    scope = "global analysis"
    if part.empty:
        part, scope = sweep, "all local sweeps"
    part = part.assign(removed=part["n_removed"] / part["n_total"])
    filters = [f for f in ("h1", "h2", "h3") if f in set(part["filter"])]
    fig, axes = _subplots(
        1, len(filters), figsize=(2.0 + 4.6 * len(filters), 4.0), sharey=True, squeeze=False, layout="constrained"
    )
    epochs = sorted(part["epoch"].unique())
    for ax, name in zip(axes[0], filters):
        for colour, (epoch, rows) in enumerate(part[part["filter"] == name].groupby("epoch")):
            curve = rows.groupby("removed")[["acc_clean", "acc_adv"]].mean().sort_index()
            ax.plot(curve.index, curve["acc_clean"], "-o", ms=3, color=f"C{colour}", label=f"clean, epoch {epoch}")
            ax.plot(curve.index, curve["acc_adv"], "--s", ms=3, color=f"C{colour}", label=f"adversarial, epoch {epoch}")
        ax.set_title(FILTER_NAMES[name])
        ax.set_xlabel("fraction of weights removed")
    handles = [Line2D([], [], color=f"C{colour}", label=f"epoch {epoch}") for colour, epoch in enumerate(epochs)]
    handles += [Line2D([], [], color="k", ls="-", marker="o", ms=3, label="clean")]
    handles += [Line2D([], [], color="k", ls="--", marker="s", ms=3, label="adversarial")]
    legend = (handles, [h.get_label() for h in handles])
    return _finish_panels(fig, axes, "accuracy", f"Compression ({scope}), {_title(sweep)}", legend)


def removable(table: pd.DataFrame) -> Figure:
    """Per layer and filter, the largest fraction of weights removable with clean and
    adversarial accuracy within the tolerance (mean over seeds, last checkpoint); a long
    layer list over several panels side by side."""
    last = table[table["epoch"] == table["epoch"].max()]
    grid = last.pivot_table(index="layer", columns="filter", values="removable", aggfunc="mean", dropna=False).reindex(
        list(dict.fromkeys(last["layer"]))
    )
    per_panel = int((MAX_INCHES - 2.0) // ROW)
    panels = max(1, math.ceil(len(grid) / per_panel))
    per_panel = math.ceil(len(grid) / panels)
    fig, axes = _subplots(1, panels, figsize=(1.5 + 4.5 * panels, 1.8 + ROW * per_panel), squeeze=False, layout="constrained")
    for index, ax in enumerate(axes[0]):
        bar = {"colorbar": {"label": "fraction removable"}} if index == panels - 1 else {}
        _heatmap(ax, grid.iloc[index * per_panel : (index + 1) * per_panel], "Greens", 0, 1, annot=".2f", fontsize=7, **bar)
        ax.set_ylabel("layer" if index == 0 else "")
        if grid.isna().any().any():
            _hatch_missing(ax)
    axes[0][0].set_title(_wrap(f"Removable weights, epoch {last['epoch'].max()}, {_title(table)}", 4.3, 9), fontsize=9)
    if grid.isna().any().any():
        _missing_legend(fig, "this filter was not swept on this layer")
    return fig


def compare_global(scores: pd.DataFrame, hue: str) -> Figure:
    """Global combined scores over epochs with one line per ``hue`` (model or dataset)."""
    table = scores[(scores["layer"] == GLOBAL_LAYER) & (scores["filter"] == "combined")]
    fig, axes = _subplots(1, 3, figsize=(14, 3.8), sharey=True, squeeze=False, layout="constrained")
    for ax, (column, name) in zip(axes[0], SCORES.items()):
        last = ax is axes[0][-1]
        if not table.empty:
            _lines(ax, table, "epoch", column, hue)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(name)
        _epoch_axis(ax, table["epoch"] if len(table) else scores["epoch"])
        if last and not table.empty:
            _legend_right(ax, title=hue, fontsize=8)
    fixed = "dataset" if hue == "model" else "model"
    _suptitle(fig, f"Global scores (combined) across {hue}s, {fixed} {scores[fixed].iloc[0]}")
    return fig


def kernel_dropout(kernels: pd.DataFrame, targeting: pd.DataFrame) -> Figure:
    """Accuracy after removing each kernel against the mean over kernels, fragile kernels in
    red, for the first seed at the last checkpoint (the authors' talk, slides 6–9); a layer
    per row of two panels, more layers per row where the rows would not fit."""
    seed, epoch = kernels["seed"].min(), kernels["epoch"].max()
    part = kernels[(kernels["seed"] == seed) & (kernels["epoch"] == epoch)]
    layers = list(dict.fromkeys(part["layer"]))
    rows, per_row = _grid(len(layers), 2.6, fixed=1.2)
    width = min(MAX_INCHES, 12.0 * per_row)
    fig, axes = _subplots(rows, 2 * per_row, figsize=(width, 1.2 + 2.6 * rows), squeeze=False, layout="constrained")
    panel_width = width / (2 * per_row) - 0.4
    for index, layer in enumerate(layers):
        row = axes[index // per_row][2 * (index % per_row) : 2 * (index % per_row) + 2]
        rows_of = part[part["layer"] == layer].sort_values("kernel")
        for ax, kind in zip(row, ("clean", "adv")):
            accuracy = rows_of[f"acc_{kind}"]
            colours = np.where(rows_of[f"fragile_{kind}"], "C3", "C0")
            ax.bar(rows_of["kernel"], accuracy, color=colours, width=0.8)
            ax.axhline(accuracy.mean(), color="k", ls="--", lw=0.9, label="mean over kernels")
            ax.axhline(rows_of[f"acc_{kind}_unfiltered"].iloc[0], color="grey", ls=":", lw=0.9, label="unfiltered")
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
            title = f"{layer}: {name}, {int(rows_of[f'fragile_{kind}'].sum())}/{len(rows_of)} fragile{verdict}"
            ax.set_title(_wrap(title, panel_width, 8), fontsize=8)
            ax.set_xlabel("kernel removed")
            ax.set_ylabel("accuracy")
            unfiltered = float(rows_of[f"acc_{kind}_unfiltered"].iloc[0])  # its line stays in view
            ax.set_ylim(
                max(0.0, min(float(accuracy.min()), unfiltered) - 0.05), min(1.0, max(float(accuracy.max()), unfiltered) + 0.02)
            )
    for ax in axes.flat[2 * len(layers) :]:
        ax.remove()
    _legend_right(axes[0][2 * min(per_row, len(layers)) - 1])
    _suptitle(fig, f"Kernel dropout, seed {seed}, epoch {epoch}, {_title(kernels)}")
    return fig


def kernel_consistency(kernels: pd.DataFrame) -> Figure:
    """Kernel × checkpoint grids of clean fragility per layer and seed; the last row marks
    the kernels fragile at every checkpoint. Panels in more columns where one would not fit."""
    panels = list(kernels.groupby(["layer", "seed"], sort=False))
    epochs = kernels["epoch"].nunique()
    panel_height = max(1.6, 0.7 + 0.17 * (epochs + 1))
    rows, columns = _grid(len(panels), panel_height, fixed=0.8)
    missing = False
    fig, axes = _subplots(
        rows, columns, figsize=(min(MAX_INCHES, 12.0 * columns), 0.8 + panel_height * rows), squeeze=False, layout="constrained"
    )
    for ax, ((layer, seed), part) in zip(axes.flat, panels):
        grid = part.pivot_table(index="epoch", columns="kernel", values="fragile_clean", aggfunc="first").astype(float)
        always = grid.min(axis=0).to_frame("every checkpoint").T
        shown = pd.concat([grid, always])
        ax.imshow(shown.to_numpy(), aspect="auto", cmap="Reds", vmin=0, vmax=1.4, interpolation="nearest")
        if shown.isna().to_numpy().any():  # a kernel without a reading at a checkpoint
            _hatch_missing(ax)
            missing = True
        ax.set_yticks(range(len(shown)), [f"epoch {e}" for e in grid.index] + ["every checkpoint"], fontsize=7)
        ax.axhline(len(grid) - 0.5, color="k", lw=1)
        ax.set_title(
            f"{layer}, seed {seed}: {int(always.sum(axis=1).iloc[0])} of {grid.shape[1]} kernels consistently fragile", fontsize=8
        )
        ax.set_xlabel("kernel")
    for ax in axes.flat[len(panels) :]:
        ax.remove()
    if missing:
        _missing_legend(fig, "no reading of this kernel at this checkpoint")
    _suptitle(fig, f"Fragile kernels (clean) over checkpoints, {_title(kernels)}")
    return fig


def rank_agreement(agreement: pd.DataFrame) -> Figure:
    """Kendall's τ_b between the unit rankings of every pair of measures, one heatmap per
    checkpoint (mean over seeds): layers first, blocks (where swept) after them — blocks are
    not layers —, the checkpoints in rows of panels. A pair without τ (a measure that does
    not rank these units, such as triage for layers, or no spread to rank) is hatched, n/a."""
    if agreement.empty:
        return _empty_figure("Rank agreement: no local layers to rank (only __global__ swept)")
    kinds = [k for k in ("layer", "block") if k in set(agreement["unit_kind"])] if "unit_kind" in agreement else ["layer"]
    epochs = sorted(agreement["epoch"].unique())
    names = list(dict.fromkeys(list(agreement["measure_a"]) + list(agreement["measure_b"])))
    side = 1.6 + 0.26 * len(names)  # one panel, its labels included
    per_row = max(1, min(len(epochs), int((MAX_INCHES - 1.2) // side)))
    rows_per_kind = math.ceil(len(epochs) / per_row)
    rows = len(kinds) * rows_per_kind
    if 0.9 + side * rows > MAX_INCHES:  # too many checkpoints: smaller panels
        side = (MAX_INCHES - 0.9) / rows
    fig, axes = _subplots(rows, per_row, figsize=(1.2 + side * per_row, 0.9 + side * rows), squeeze=False, layout="constrained")
    missing = False
    for k, kind in enumerate(kinds):
        of_kind = agreement[agreement["unit_kind"] == kind] if "unit_kind" in agreement else agreement
        for index, epoch in enumerate(epochs):
            ax = axes[k * rows_per_kind + index // per_row][index % per_row]
            part = of_kind[of_kind["epoch"] == epoch]
            grid = pd.DataFrame(np.nan, index=names, columns=names)
            ranked = part.dropna(subset=["kendall_tau"])
            for name in set(ranked["measure_a"]) | set(ranked["measure_b"]):  # τ of a ranking with itself
                grid.loc[name, name] = 1.0
            for entry in part.itertuples():
                grid.loc[entry.measure_a, entry.measure_b] = grid.loc[entry.measure_b, entry.measure_a] = entry.kendall_tau
            _heatmap(ax, grid, "RdBu", -1, 1, annot=".1f", square=True, xrotation=90)
            if grid.isna().to_numpy().any():
                _hatch_missing(ax)
                missing = True
            units = "layers" if kind == "layer" else "blocks"
            ax.set_title(f"epoch {epoch} ({int(part['n_layers'].max()) if len(part) else 0} {units})", fontsize=9)
            ax.tick_params(labelsize=7)
    for ax in axes.flat:
        if not ax.collections:
            ax.remove()
    drawn = [ax for ax in axes.flat if ax.collections]
    fig.colorbar(drawn[0].collections[0], ax=drawn, shrink=0.5, label="Kendall's τ_b")
    if missing:
        _missing_legend(fig, "no τ (a measure that does not rank these units, e.g. triage for layers, or no spread)")
    _suptitle(fig, f"Rank agreement of unit measures (Kendall's τ_b, mean over seeds), {_title(agreement)}")
    return fig


TRIAGE_ACCURACIES = {"acc_clean": "clean", "acc_adv": "adversarial"}
TRIAGE_MEASURES = {**TRIAGE_ACCURACIES, "cka": "CKA with the block"}
TRIAGE_INITS = {"fit": "", "random": (4, 2)}  # line dashes per initialisation: fit solid, random dashed


def _triage_inits(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its ``init`` column (a table written before it: the random draw only)."""
    return table if "init" in table else table.assign(init="random")


def triage_convergence(triage: pd.DataFrame) -> Figure:
    """Each compressed network against the triage epoch, one column per block: clean and
    adversarial accuracy and the linear CKA of the new layer's output with the block's
    (rows), a colour per scheme and a line style per initialisation (mean ± std over seeds
    and checkpoints), the base network's accuracy dashed black (METHOD §13). Many blocks
    wrap into further rows of measures."""
    blocks = list(dict.fromkeys(triage["block"]))
    if not blocks:
        return _empty_figure("No block was triaged (blocks, triage.schemes)")
    triage = _triage_inits(triage)
    measures = {column: name for column, name in TRIAGE_MEASURES.items() if column in triage}  # cka: since inits
    dashes = {init: TRIAGE_INITS[init] for init in TRIAGE_INITS if init in set(triage["init"])}
    per_row = min(len(blocks), int((MAX_INCHES - 3.0) // 2.6))
    groups = math.ceil(len(blocks) / per_row)
    fig, axes = _subplots(
        len(measures) * groups,
        per_row,
        figsize=(max(6.0, 2.6 * per_row + 3.0), min(MAX_INCHES, 1.0 + 2.7 * len(measures) * groups)),
        squeeze=False,
        sharey="row",
        layout="constrained",
    )
    for index, block in enumerate(blocks):
        rows = triage[triage["block"] == block]
        group, column = divmod(index, per_row)
        for row, (measure, name) in enumerate(measures.items()):
            ax = axes[group * len(measures) + row][column]
            _lines(ax, rows, "triage_epoch", measure, "scheme", style="init", dashes=dashes)
            if measure in TRIAGE_ACCURACIES:
                ax.axhline(rows[f"base_{measure}"].mean(), color="k", ls="--", lw=0.9, label="base network")
                ax.set_ylabel(f"{name} accuracy")
            else:
                ax.set_ylim(-0.02, 1.02)
                ax.set_ylabel("linear CKA with the block")
            ax.set_title(f"{block}, {name}", fontsize=8)
            ax.set_xlabel("triage epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
    for index in range(len(blocks), groups * per_row):  # the empty places after the last block
        for row in range(len(measures)):
            axes[(groups - 1) * len(measures) + row][index % per_row].remove()
    _legend_right(axes[0][per_row - 1], *axes[0][0].get_legend_handles_labels())
    _suptitle(fig, f"Triage: each block replaced by one layer and retrained\n{_title(triage)}", fontsize=10)
    return fig


def triage_criticality(drops: pd.DataFrame) -> Figure:
    """Per block, the clean and adversarial accuracy lost after the last ``local`` triage
    epoch (criticality, METHOD §13), one panel per initialisation (fit first; one above the
    other when side by side would be too wide), mean ± std over seeds and checkpoints."""
    local = _triage_inits(drops[drops["compression"] == "triage_local"]) if "compression" in drops else drops.iloc[0:0]
    if local.empty:
        return _empty_figure("No local triage scheme ran (triage.schemes)")
    inits = [init for init in TRIAGE_INITS if init in set(local["init"])]
    long = local.melt(
        id_vars=["seed", "epoch", "layer", "init"], value_vars=["drop_clean", "drop_adv"], var_name="kind", value_name="drop"
    )
    long["test set"] = long["kind"].map({"drop_clean": "clean", "drop_adv": "adversarial"})
    width = max(4.5, 1.2 + 0.9 * local["layer"].nunique())
    stacked = width * len(inits) + 1.5 > MAX_INCHES
    shape = (len(inits), 1) if stacked else (1, len(inits))
    size = (min(MAX_INCHES, width + 1.5), 4.2 * len(inits)) if stacked else (width * len(inits) + 1.5, 4.2)
    fig, axes = _subplots(*shape, figsize=size, squeeze=False, sharey=True, layout="constrained")
    for ax, init in zip(axes.flat, inits):
        _bars(ax, long[long["init"] == init], "layer", "drop", "test set")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"{init} initialisation", fontsize=9)
        ax.set_xlabel("block")
        ax.set_ylabel("accuracy lost (base − local)")
        ax.tick_params(axis="x", labelrotation=45)
    beside = axes.flat[-1] if len(inits) > 1 and not stacked else axes.flat[0]  # right of the last panel, not between
    _legend_right(beside, *axes.flat[0].get_legend_handles_labels(), title="test set", fontsize=8)
    _suptitle(fig, f"Block criticality by triage (local scheme)\n{_title(local)}", fontsize=10)
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
        for row in bad.itertuples():  # the reason without its counts
            reason = "; ".join(part.split(" (")[0] for part in str(row.why).split("; ") if part)
            lines += [f"seed {int(row.seed)} epoch {int(row.epoch)}: {reason}"] if reason else []
    return "\n".join(lines)


def semirobust_accuracy(semirobust: pd.DataFrame) -> Figure:
    """Per split (METHOD §14): the adversarial accuracy of the normal network (Acc), F* (Acc*),
    F_sr (Acc_sr) and the best fine-tuned one of each trial, mean ± std over seeds,
    checkpoints and trials (Acc, Acc*, Acc_sr once per checkpoint), with how many trials
    reached Acc* − δ and their mean epochs (top); the fine-tuning curves against Acc* − δ
    (bottom). The title names the protocol and every checkpoint flagged not usable, and why."""
    splits = sorted(semirobust["split_k"].unique())
    if not splits:
        return _empty_figure("No semirobust split was run (semirobust.splits)")
    table = semirobust if "trial" in semirobust else semirobust.assign(trial=0)
    fig, axes = _subplots(
        2, len(splits), figsize=(min(MAX_INCHES, max(7.5, 3.8 * len(splits) + 1.8)), 7.4), squeeze=False, layout="constrained"
    )
    for column, k in enumerate(splits):
        rows = table[table["split_k"] == k]
        start = rows[rows["finetune_epoch"] == 0].drop_duplicates(["seed", "epoch", "network"])
        tuned = rows[rows["network"] == "finetuned"]
        trials = tuned.groupby(["seed", "epoch", "trial"]).agg(acc_adv=("acc_adv", "max")).reset_index()
        shown = pd.concat([start[["network", "acc_adv"]], trials.assign(network="finetuned")[["network", "acc_adv"]]])
        shown = shown.assign(shown=shown["network"].map(SEMIROBUST_NETWORKS))
        ax = axes[0][column]
        _bars(ax, shown, "shown", "acc_adv", order=list(SEMIROBUST_NETWORKS.values()))
        reached = tuned[tuned["acc_adv"] >= tuned["target_acc_adv"]].groupby(["seed", "epoch", "trial"])["finetune_epoch"].min()
        note = f"reached Acc* − δ: {len(reached)} of {len(trials)} trials"
        note += f", mean {reached.mean():.1f} epochs" if len(reached) else ""
        ax.set_title(f"k = {k}: f_b from {rows['first_fb_layer'].iloc[0]} on\n{note}", fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("adversarial accuracy")
        ax.tick_params(axis="x", labelsize=7)
        curve = rows[rows["network"].isin(["semirobust", "finetuned"])]
        ax = axes[1][column]
        _lines(ax, curve, "finetune_epoch", "acc_adv", label="F_sr, fine-tuned")
        ax.axhline(rows["target_acc_adv"].mean(), color="k", ls="--", lw=0.9, label="Acc* − δ")
        ax.set_xlabel("fine-tuning epoch (0: F_sr)")
        ax.set_ylabel("adversarial accuracy")
        ax.xaxis.get_major_locator().set_params(integer=True)
    _legend_right(axes[1][-1], *axes[1][-1].get_legend_handles_labels())
    _suptitle(fig, _semirobust_title(semirobust, "Subnetwork robustness"), fontsize=9)
    return fig


DEPENDENCY_MEASURES = {"mi": "ρ: mutual information, bits (EDGE)", "cka": "linear CKA"}


def layer_dependency(dependency: pd.DataFrame) -> Figure:
    """Per split, the dependency of consecutive layer pairs along the network (position 0: the
    pair at the cut) for F*, F_sr and the fine-tuned network, mean ± std over seeds and
    checkpoints: ρ, the mutual information by EDGE (top; class-weighted; grey dashes: the same
    with one layer's images shuffled within each class, EDGE's reading of independent outputs),
    and linear CKA (bottom), each where the table has it."""
    splits = sorted(dependency["split_k"].unique())
    if not splits:
        return _empty_figure("No semirobust split was run (semirobust.splits)")
    measures = [measure for measure in DEPENDENCY_MEASURES if measure in dependency]
    fig, axes = _subplots(
        len(measures),
        len(splits),
        figsize=(min(MAX_INCHES, max(6.5, 4.4 * len(splits) + 2.0)), 3.4 * len(measures) + 0.8),
        squeeze=False,
        layout="constrained",
    )
    for column, k in enumerate(splits):
        rows = dependency[dependency["split_k"] == k]
        pairs = rows.drop_duplicates("position").sort_values("position")
        for row, measure in enumerate(measures):
            ax = axes[row][column]
            _lines(ax, rows, "position", measure, "network")
            if measure == "mi" and "mi_null" in rows:  # EDGE on independent outputs: its bias here
                null = rows.groupby("position")["mi_null"].mean()
                ax.plot(null.index, null.to_numpy(), color="0.5", ls="--", lw=1, label="shuffled within class")
            names = [f"{a}\n→ {b}" for a, b in zip(pairs["layer_a"], pairs["layer_b"])]
            ax.set_xticks(pairs["position"], names, fontsize=6, rotation=90 if len(names) > 5 else 0)
            ax.set_title(f"k = {k}", fontsize=9)
            ax.set_xlabel("consecutive layers, toward the output")
            ax.set_ylabel(DEPENDENCY_MEASURES[measure] + "\n(per class)")
    for row in axes:  # one legend per measure, right of its last panel
        _legend_right(row[-1], *row[-1].get_legend_handles_labels())
    _suptitle(fig, _semirobust_title(dependency, "Dependency between consecutive layers"), fontsize=9)
    return fig


VERDICT_COLOURS = {"fragile": "#d73027", "robust": "#91bfdb", "antifragile": "#1a9850", "undetermined": "white", "n/a": "white"}
VERDICT_HATCHES = {"undetermined": "////", "n/a": MISSING_HATCH}
VERDICT_TESTS = ("synaptic", "reinit", "triage", "kernels", "semirobust")  # column order: the paper's measure first


def _verdict_text(row: dict) -> str:
    """A cell's mark and how sure it is: the bootstrap confidence, else the seeds that agree
    (when more than one was measured); an f_b cell of a semirobust split says so."""
    if row["verdict"] == "n/a":
        return row["measure"].rsplit("(", 1)[-1].rstrip(")") if row["test"] == "semirobust" else ""
    mark = MARKS[row["verdict"]]
    seeds = row["n_seeds"] > 1 and pd.notna(row["seeds_agreeing"]) and row["seeds_agreeing"] < row["n_seeds"]
    sure = f" {row['confidence']:.2f}".replace(" 0.", " .").replace(" 1.00", " 1") if pd.notna(row["confidence"]) else ""
    if pd.isna(row["confidence"]) and row["n_seeds"] > 1 or seeds:
        sure += f" {int(row['seeds_agreeing'])}/{int(row['n_seeds'])}" if pd.notna(row["seeds_agreeing"]) else ""
    return mark + sure


def _verdict_column(measure: str) -> str:
    """A column header: a semirobust split without the part (its cells say f_a or f_b)."""
    return measure.split(" (")[0] if measure.startswith("semirobust") else measure


def verdict_page(verdict: pd.DataFrame) -> Figure:
    """Which units are fragile: every swept layer and block (rows, network order) against every
    stress test's verdict on it (columns; verdict.parquet), each cell coloured by its verdict
    with its bootstrap confidence or the seeds that agree, undetermined cells hatched; the last
    column counts the measures that call the unit fragile. Long unit lists continue in
    further panels side by side."""
    ordered = verdict.assign(_test=verdict["test"].map({t: i for i, t in enumerate(VERDICT_TESTS)}))
    columns = list(dict.fromkeys(_verdict_column(m) for m in ordered.sort_values("_test", kind="stable")["measure"]))
    cells = {(row["unit"], _verdict_column(row["measure"])): row for row in verdict.to_dict("records")}
    units = verdict.drop_duplicates("unit").sort_values("position").to_dict("records")
    per_panel = max(1, int((MAX_INCHES - 3.5) // ROW))
    panels = [units[i : i + per_panel] for i in range(0, len(units), per_panel)]
    panel_width = 1.8 + CELL * 1.25 * (len(columns) + 1)
    height = min(MAX_INCHES, 3.2 + ROW * max(len(panel) for panel in panels))
    fig, axes = _subplots(
        1, len(panels), figsize=(min(MAX_INCHES, panel_width * len(panels)), height), squeeze=False, layout="constrained"
    )
    for ax, panel in zip(axes[0], panels):
        for y, unit in enumerate(panel):
            for x, column in enumerate(columns):
                row = cells.get((unit["unit"], column))
                word = row["verdict"] if row is not None else "n/a"
                ax.add_patch(
                    Rectangle(
                        (x, y), 1, 1, facecolor=VERDICT_COLOURS[word], hatch=VERDICT_HATCHES.get(word),
                        edgecolor="0.75" if word in VERDICT_HATCHES else "white", linewidth=0.5,
                    )
                )  # fmt: skip
                text = _verdict_text(row) if row is not None else ""
                colour = "white" if word in ("fragile", "antifragile") else "black"
                ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=6.5, color=colour)
            share = unit["fragile_by"] / unit["measured_by"] if unit["measured_by"] else np.nan
            shade = matplotlib.colormaps["Reds"](0.1 + 0.75 * share) if np.isfinite(share) else "white"
            ax.add_patch(Rectangle((len(columns) + 0.2, y), 0.8, 1, facecolor=shade, edgecolor="white", linewidth=0.5))
            colour = "white" if np.isfinite(share) and share > 0.6 else "black"
            ax.text(len(columns) + 0.6, y + 0.5, f"{unit['fragile_by']}/{unit['measured_by']}", ha="center", va="center",
                    fontsize=6.5, color=colour)  # fmt: skip
        ax.set_xlim(0, len(columns) + 1)
        ax.set_ylim(len(panel), 0)
        ax.xaxis.tick_top()
        ax.set_xticks(np.arange(len(columns) + 1) + 0.5, [*columns, "fragile by"], rotation=90, fontsize=7)
        names = [f"{u['unit']} (block)" if u["unit_kind"] == "block" else u["unit"] for u in panel]
        ax.set_yticks(np.arange(len(panel)) + 0.5, names, fontsize=7)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    first = verdict.iloc[0]
    epochs = ", ".join(str(e) for e in sorted(verdict["epoch"].unique()))
    _suptitle(fig, f"Which units are fragile: {first['dataset']} / {first['model']}, every stress test, epoch {epochs}")
    handles = [
        Patch(facecolor=VERDICT_COLOURS[word], edgecolor="0.75", hatch=VERDICT_HATCHES.get(word), label=label)
        for word, label in (
            ("fragile", "Fr fragile"),
            ("robust", "Ro robust"),
            ("antifragile", "Af antifragile"),
            ("undetermined", "? undetermined (verdict.parquet: why)"),
            ("n/a", "n/a: not measured for this unit"),
        )
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    return fig
