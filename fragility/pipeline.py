"""What one workflow job does, as functions: the stage scripts and ``fragility.bench
pipeline`` run the same code."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .artifacts import AdversarialSet, SweepMemo, TestSet, load_checkpoint
from .attack import Attack
from .io import with_leading_columns, write_parquet
from .sweep import SweepOptions, sweep

log = logging.getLogger(__name__)


def sweep_job(
    checkpoint: str | Path,
    testset: str | Path,
    adversarial: str | Path,
    outputs: dict[str, str | Path],
    options: SweepOptions,
    identity: dict,
    regenerate: dict | None = None,
    device: str = "auto",
    memo_folder: str | Path | None = None,
) -> float:
    """Sweep every layer of ``outputs`` (layer -> table path) of one checkpoint, loading the
    checkpoint, test set and adversarial set once; each table is written as soon as its layer
    is done. ``regenerate`` holds :class:`Attack`'s arguments to re-attack every variant.
    Returns the seconds spent sweeping (loading excluded)."""
    tests = TestSet.load(testset)
    adversarial_set = AdversarialSet.load(adversarial, tests)
    model = load_checkpoint(checkpoint, device)
    memo = None
    if memo_folder is not None:
        settings = {"steps": options.steps, "filters": list(options.filters), "regenerate": regenerate}
        memo = SweepMemo(memo_folder, [checkpoint, testset, adversarial], settings)
    swept = 0.0
    for done, (layer, output) in enumerate(outputs.items(), 1):
        table = memo.load(layer) if memo else None
        if table is not None:
            log.info("layer %s (%d/%d): reused the table of an earlier run of this job", layer, done, len(outputs))
        else:
            started, stats = time.perf_counter(), {}
            table = sweep(
                model,
                layer,
                tests.x,
                tests.y,
                adversarial_set.x_adv,
                options=options,
                stats=stats,
                regenerate_epsilon=adversarial_set.epsilon if regenerate else None,
                attack=Attack(**regenerate) if regenerate else None,
            )
            swept += time.perf_counter() - started
            table = with_leading_columns(table, identity).assign(attack=adversarial_set.attack)
            if memo:
                memo.save(layer, table)
            log.info("layer %s (%d/%d) done", layer, done, len(outputs))
        write_parquet(table, output)
    return swept
