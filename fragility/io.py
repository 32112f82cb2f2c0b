"""Atomic writes: every table, checkpoint and figure appears whole or not at all.

A file is written under a temporary name in its final folder and renamed into place,
so a job killed mid-write leaves no partial output that a later stage could trust.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds,
    with the mode a plain ``open()`` would give it (0666 less the umask: ``mkstemp`` makes
    0600 files, which nobody else in a project group could read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer that was killed
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def with_leading_columns(table: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """``table`` with ``columns`` (name -> value, e.g. a run's dataset, model, seed, epoch)
    set on every row and placed first: the layout of every stage table."""
    rest = [c for c in table.columns if c not in columns]
    return table.assign(**columns)[list(columns) + rest]


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


PARQUET_MAGIC = b"PAR1"


def parquet_intact(path: str | Path) -> bool:
    """Whether the Parquet file at ``path`` is whole: it begins and ends with the format's magic
    bytes (a truncated or overwritten file does not). Reads 8 bytes, so a workflow can check
    every table it is about to read before planning."""
    path = Path(path)
    size = path.stat().st_size
    if size < 2 * len(PARQUET_MAGIC) + 4:  # the magic twice and the footer length
        return False
    with open(path, "rb") as fh:
        head = fh.read(len(PARQUET_MAGIC))
        fh.seek(-len(PARQUET_MAGIC), os.SEEK_END)
        return head == PARQUET_MAGIC and fh.read() == PARQUET_MAGIC


def save_torch(obj, path: str | Path) -> None:
    import torch  # lazily: the plotting and table stages never need torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_figure(fig, path: str | Path, dpi: float) -> None:
    """``fig`` at ``dpi`` in the format ``path``'s suffix names. A PNG of a figure on the Agg
    canvas is drawn once, straight on the canvas: ``savefig`` lays a figure with a layout
    engine out in a draw of its own first, and ends with the same pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazily: io serves torch stages too

    suffix = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        if suffix == "png" and type(fig.canvas) is FigureCanvasAgg:
            shown = fig.dpi
            fig.set_dpi(dpi)
            try:
                fig.canvas.print_png(tmp)
            finally:
                fig.set_dpi(shown)
        else:
            fig.savefig(tmp, format=suffix, dpi=dpi)
