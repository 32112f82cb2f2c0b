"""What one stress job does: load a checkpoint's files once, run one stress test on each of
its units, write each unit's tables as soon as they are done (the workflow's stress rules
and ``fragility.bench pipeline`` run this same code)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..artifacts import StressMemo
from ..io import with_leading_columns, write_parquet
from .base import Context, StressTest

log = logging.getLogger(__name__)


def run_stress_job(
    test: StressTest,
    context: Context,
    outputs: dict[str, dict[str, str | Path]],
    params: dict,
    identity: dict,
    memo_folder: str | Path | None = None,
) -> float:
    """Run ``test`` on every unit of ``outputs`` (unit → table name → path) of the checkpoint
    that ``context`` holds, with its settings rebuilt from ``params`` (a rule's params:
    :meth:`fragility.stress.base.StressTest.params`); ``identity`` holds the run columns. With ``memo_folder`` finished
    units are memorised (:class:`fragility.artifacts.StressMemo`) and read back on a rerun.
    Returns the seconds spent computing (loading and memo reads excluded)."""
    memo = None
    if memo_folder is not None:
        settings = {"test": test.name, **params, **({"data": context.data} if context.data else {})}
        memo = StressMemo(memo_folder, list(context.paths.values()), settings)
    settings = test.settings.from_params(params)
    computed = 0.0
    for done, (unit, paths) in enumerate(outputs.items(), 1):
        tables = _memorised(memo, test, unit)
        if tables is not None:
            log.info("%s %s (%d/%d): reused the tables of an earlier run of this job", test.name, unit, done, len(outputs))
        else:
            started = time.perf_counter()
            found = test.run(context, unit, settings)
            computed += time.perf_counter() - started
            columns = {**identity, "attack": test.attack(settings) if test.attack else context.attack}
            tables = {name: with_leading_columns(found[name], columns)[test.tables[name]] for name in test.tables}
            for name, table in tables.items():
                if memo:
                    memo.save(unit, name, table)
            log.info("%s %s (%d/%d) done", test.name, unit, done, len(outputs))
        for name, table in tables.items():
            write_parquet(table, paths[name])
    return computed


def _memorised(memo: StressMemo | None, test: StressTest, unit: str) -> dict | None:
    """Every table of ``unit`` from the memo, or None when any is missing or damaged."""
    if memo is None:
        return None
    tables = {name: memo.load(unit, name, columns) for name, columns in test.tables.items()}
    return None if any(table is None for table in tables.values()) else tables
