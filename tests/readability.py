"""Whether a person can read a figure as drawn (Agg, ``bbox_inches=None``): every text inside
the figure and clear of the others, no legend over the data, whole epochs on epoch axes, no
side above MAX_PIXELS, missing values said to be missing. A figure can hold the right values
and still be unreadable; these checks see that."""

from __future__ import annotations

import re

import numpy as np
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection, PathCollection, PolyCollection, QuadMesh
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

MAX_PIXELS = 3000
TOLERANCE = 1.0  # pixels a text may reach past the figure's edge (anti-aliasing)
MISSING = "n/a"
NUMBER = re.compile(r"^[−-]?\d*\.?\d+$")


def render(fig, dpi: int):
    """Draw ``fig`` at ``dpi`` with the Agg renderer, as ``savefig(dpi=dpi)`` does; its renderer."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _ticklabels(axis: Axis) -> list[tuple[str, Text]]:
    """The tick labels the axis draws: its ticks inside the view interval, visible labels."""
    low, high = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(high - low), 1.0)
    drawn = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        if tick.get_visible() and low - slack <= tick.get_loc() <= high + slack:
            drawn += [(f"{axis.axis_name} tick label", label) for label in (tick.label1, tick.label2) if label.get_visible()]
    return drawn


def _legend_texts(legend, where: str) -> list[tuple[str, Text]]:
    if legend is None or not legend.get_visible():
        return []
    return [(f"{where} legend", text) for text in [*legend.get_texts(), legend.get_title()]]


def drawn_texts(fig) -> list[tuple[str, Text]]:
    """(where, Text) for every text the figure draws with something to read."""
    found = [("suptitle", fig._suptitle), ("supxlabel", fig._supxlabel), ("supylabel", fig._supylabel)]
    found += [("figure text", text) for text in fig.texts]
    for legend in fig.legends:
        found += _legend_texts(legend, "figure")
    for index, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        where = f"axes {index} ({ax.get_title() or ax.get_label()})"
        found += [(f"{where} title", title) for title in (ax.title, ax._left_title, ax._right_title)]
        found += [(f"{where} text", text) for text in ax.texts]
        found += _legend_texts(ax.get_legend(), where)
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                if axis.get_visible():
                    found += [(f"{where} {axis.axis_name} label", axis.label), (f"{where} offset", axis.offsetText)]
                    found += [(f"{where} {name}", label) for name, label in _ticklabels(axis)]
    unique = {id(text): (where, text) for where, text in reversed(found) if text is not None}  # the suptitle is a figure text
    return [(where, text) for where, text in reversed(unique.values()) if text.get_visible() and text.get_text().strip()]


def texts_outside(fig, renderer) -> list[str]:
    """'where: text' for every drawn text whose extent leaves the figure."""
    box = fig.bbox
    outside = []
    for where, text in drawn_texts(fig):
        extent = text.get_window_extent(renderer)
        if (
            extent.x0 < box.x0 - TOLERANCE
            or extent.y0 < box.y0 - TOLERANCE
            or extent.x1 > box.x1 + TOLERANCE
            or extent.y1 > box.y1 + TOLERANCE
        ):
            shown = text.get_text().replace("\n", " ")[:70]
            outside.append(f"{where}: {shown!r} at x {extent.x0:.0f}…{extent.x1:.0f}, y {extent.y0:.0f}…{extent.y1:.0f}")
    return outside


def _layout_texts(fig) -> list[tuple[str, Text]]:
    """The drawn texts that must not cover one another: all but the annotations inside an
    axes with its axis drawn (marks on heatmap cells, labels beside points)."""
    inside = {id(text) for ax in fig.axes if ax.axison for text in ax.texts}
    return [(where, text) for where, text in drawn_texts(fig) if id(text) not in inside]


def overlapping_texts(fig, renderer) -> list[str]:
    """'a' over 'b' for every two layout texts (titles, labels, tick labels, legends, figure
    texts) whose extents overlap by more than TOLERANCE."""
    found = _layout_texts(fig)
    if len(found) < 2:
        return []
    boxes = np.array([text.get_window_extent(renderer).extents for _, text in found])  # x0, y0, x1, y1
    x0, y0, x1, y1 = (boxes[:, [i]] for i in range(4))
    wide = np.minimum(x1, x1.T) - np.maximum(x0, x0.T) > TOLERANCE
    tall = np.minimum(y1, y1.T) - np.maximum(y0, y0.T) > TOLERANCE
    first, second = np.nonzero(np.triu(wide & tall, k=1))
    named = [f"{where} {text.get_text()[:40]!r}".replace("\n", " ") for where, text in found]
    return [f"{named[a]} over {named[b]}" for a, b in zip(first, second)]


def fractional_epochs(fig) -> list[str]:
    """Tick labels that are not whole epochs on an axis labelled with epochs (one checkpoint
    drawn on a continuous axis reads 3.80 … 4.20)."""
    found = []
    for index, ax in enumerate(fig.axes):
        if not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if "epoch" not in axis.label.get_text() or not axis.get_visible():
                continue
            shown = [label.get_text().replace("−", "-") for _, label in _ticklabels(axis) if label.get_text().strip()]
            bad = [text for text in shown if not re.fullmatch(r"-?\d+", text)]
            if bad:
                found.append(f"axes {index} ({ax.get_title()}): {axis.label.get_text()!r} ticks {bad}")
    return found


def _display_paths(artist):
    transform = artist.get_transform()
    return [transform.transform_path(path) for path in artist.get_paths()]


def _hits(artist, box, renderer) -> bool:
    """Whether a data artist draws anything inside the display box ``box``."""
    if not artist.get_visible():
        return False
    if isinstance(artist, Line2D):
        xy = artist.get_transform().transform(artist.get_xydata()) if len(artist.get_xdata()) else np.empty((0, 2))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if not len(xy):
            return False
        if any(box.contains(x, y) for x, y in xy):
            return True
        lines = artist.get_linestyle() not in ("None", "none", "", " ")
        return lines and artist.get_transform().transform_path(artist.get_path()).intersects_bbox(box, filled=False)
    if isinstance(artist, Patch):
        extent = artist.get_window_extent(renderer)
        return extent.width > 0 and extent.height > 0 and extent.overlaps(box)
    if isinstance(artist, PathCollection) and len(artist.get_offsets()):  # scatter: its points
        points = artist.get_offset_transform().transform(artist.get_offsets())
        return any(box.contains(x, y) for x, y in points if np.isfinite([x, y]).all())
    if isinstance(artist, QuadMesh):
        return artist.get_window_extent(renderer).overlaps(box)
    if isinstance(artist, Collection):
        filled = isinstance(artist, PolyCollection)
        return any(path.intersects_bbox(box, filled=filled) for path in _display_paths(artist) if len(path.vertices))
    if isinstance(artist, AxesImage):
        return artist.get_window_extent(renderer).overlaps(box)
    return False


def data_artists(ax) -> list:
    """What an axes plots: lines with data in data coordinates, patches, collections, images."""
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) and line.get_transform() == ax.transData]
    return [*lines, *ax.patches, *ax.collections, *ax.images]


def legends_over_data(fig, renderer) -> list[str]:
    """'legend of axes i over <artist>' for every legend drawn over its axes' data (a figure
    legend: over any axes' data)."""
    found = []
    owned = [(f"axes {i}", ax.get_legend(), [ax]) for i, ax in enumerate(fig.axes)]
    owned += [("figure", legend, fig.axes) for legend in fig.legends]
    for where, legend, axes in owned:
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer)
        for ax in axes:
            for artist in data_artists(ax):
                if _hits(artist, box, renderer):
                    found.append(f"legend of {where} over {type(artist).__name__} {artist.get_label()!r}")
                    break
    return found


def oversized(fig, dpi: int) -> list[str]:
    width, height = fig.get_size_inches() * dpi
    return [
        f"{side} {pixels:.0f} px > {MAX_PIXELS}" for side, pixels in (("width", width), ("height", height)) if pixels > MAX_PIXELS
    ]


def _cells(artist) -> np.ndarray:
    return np.ma.filled(np.ma.asarray(artist.get_array(), dtype=float), np.nan)


def missing_unmarked(fig, caption: str = "") -> list[str]:
    """Where a heatmap or image has a missing cell, the figure (or its caption) must say
    ``n/a``, and no missing cell may carry a number as its annotation."""
    said = MISSING in caption or any(MISSING in text.get_text() for _, text in drawn_texts(fig))
    found = []
    for index, ax in enumerate(fig.axes):
        grids = [c for c in ax.collections if isinstance(c, QuadMesh)] + list(ax.images)
        for grid in grids:
            cells = _cells(grid)
            if cells.size == 0 or not np.isnan(cells).any():
                continue
            if not said:
                found.append(f"axes {index} ({ax.get_title()}): {int(np.isnan(cells).sum())} missing cells, no '{MISSING}'")
            if isinstance(grid, QuadMesh):  # seaborn's heatmap: annotations at the cell centres
                rows, columns = (n - 1 for n in grid.get_coordinates().shape[:2])
                cells = cells.reshape(rows, columns)
                for text in ax.texts:
                    x, y = text.get_position()
                    row, column = int(np.floor(y)), int(np.floor(x))
                    inside = 0 <= row < cells.shape[0] and 0 <= column < cells.shape[1]
                    if inside and np.isnan(cells[row, column]) and NUMBER.match(text.get_text().strip()):
                        found.append(f"axes {index}: missing cell ({row}, {column}) annotated {text.get_text()!r}")
    return found


def problems(fig, dpi: int, caption: str = "") -> list[str]:
    """Every readability problem of ``fig`` drawn at ``dpi``."""
    renderer = render(fig, dpi)
    return [
        *oversized(fig, dpi),
        *texts_outside(fig, renderer),
        *overlapping_texts(fig, renderer),
        *legends_over_data(fig, renderer),
        *fractional_epochs(fig),
        *missing_unmarked(fig, caption),
    ]


def assert_readable(fig, dpi: int, caption: str = "") -> None:
    """Fail with every readability problem of ``fig`` drawn at ``dpi`` (``caption``: the
    figure's report caption, which may say what ``n/a`` means)."""
    found = problems(fig, dpi, caption)
    assert not found, "figure not readable:\n  " + "\n  ".join(found)
