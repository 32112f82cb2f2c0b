"""Atomic writes: all or nothing, and files a project group can read (the umask, not 0600);
a figure saved as savefig would save it."""

import os
import stat

import pandas as pd
import pytest

from fragility.io import atomic_path, parquet_intact, write_parquet


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it after."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_an_atomic_write_ends_with_the_mode_a_plain_open_gives(tmp_path, umask, mask, mode):
    umask(mask)
    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "table.parquet")
    with open(tmp_path / "plain.txt", "w") as fh:
        fh.write("x")
    assert stat.S_IMODE((tmp_path / "table.parquet").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == mode


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_whole_parquet_file_is_intact_and_a_truncated_or_foreign_one_is_not(tmp_path):
    path = tmp_path / "t.parquet"
    write_parquet(pd.DataFrame({"a": [1, 2, 3]}), path)
    assert parquet_intact(path)
    data = path.read_bytes()
    for damaged in (data[:100], data[:-1], b"", b"PAR1PAR1", b"not parquet at all, but long enough"):
        path.write_bytes(damaged)
        assert not parquet_intact(path), damaged[:12]


def test_a_png_drawn_once_on_the_canvas_has_savefigs_pixels_and_a_pdf_is_a_pdf(tmp_path):
    import numpy as np
    from PIL import Image

    from fragility import plots
    from fragility.io import save_figure

    def figure():
        fig, axes = plots._subplots(1, 2, figsize=(6, 3), layout="constrained")
        for ax in axes:
            ax.plot([0, 1, 2], [2.0, 0.5, 1.0], label="a line")
            ax.set(title="a title the layout makes room for", xlabel="epoch", ylabel="accuracy")
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
        fig.suptitle("and a figure title")
        return fig

    fig = figure()
    save_figure(fig, tmp_path / "once.png", dpi=90)
    figure().savefig(tmp_path / "savefig.png", dpi=90)
    once, saved = (np.asarray(Image.open(tmp_path / name)) for name in ("once.png", "savefig.png"))
    assert once.shape == saved.shape == (270, 540, 4) and (once == saved).all()
    assert fig.dpi == 100  # the figure's own dpi again
    save_figure(figure(), tmp_path / "figure.pdf", dpi=90)
    assert (tmp_path / "figure.pdf").read_bytes().startswith(b"%PDF")
