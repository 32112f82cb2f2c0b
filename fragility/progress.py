"""Progress bars for the loops a user waits on in the Python API — a sweep's variants, the
epochs and batches of training, triage's inits and schemes, F*'s epochs and the fine-tuning
trials of semirobustness, the bootstrap's units — as ``tqdm.auto`` draws them (a widget in a notebook, a bar
in a terminal). Off where nobody watches (a workflow job writes a log: it keeps its lines)
and wherever a caller passes ``progress=False``."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm.auto import tqdm


def watched() -> bool:
    """Whether a person sees this process's output: a terminal, or a notebook's kernel."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress(iterable: Iterable, desc: str, total: int | None = None, enabled: bool | None = None, leave: bool = True):
    """``iterable`` with a bar named ``desc`` when ``enabled`` (None: when :func:`watched`)."""
    return tqdm(iterable, desc=desc, total=total, disable=not (watched() if enabled is None else enabled), leave=leave)
