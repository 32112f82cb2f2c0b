"""The shape every stress test has, and what one stress job loads once for all its units.

A stress test perturbs one **unit** of a checkpoint's network — a layer, ``__global__`` —
and measures the network on the checkpoint's clean and adversarial test sets. It is a
:class:`StressTest`: which units it runs on, what in the config changes its tables, and a
``run`` function from a :class:`Context` and a unit to its tables. Each table's full
column order is declared with it: the run columns (``dataset, model, seed, epoch``), the
``attack`` that made the adversarial set, and the test's own columns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..engine.sweep import SweepOptions
from ..trust import RUN_COLUMNS  # noqa: F401  (re-exported; its one home is the torch-free trust module)


@dataclass(frozen=True)
class RankMeasures:
    """How a stress test orders the layers from least to most robust, for the rank agreement
    (:mod:`fragility.scoring.agreement`): in the collected ``table``, the rows whose ``by``
    column equals each of ``values`` give one measure per column of ``columns`` (named
    ``{value}_{clean|adv}``), times ``sign`` (−1 for a drop: higher must mean more robust)."""

    table: str
    by: str
    values: tuple[str, ...]
    columns: tuple[str, ...]
    sign: int = 1

    def as_params(self) -> dict:
        """Plain values, as a rule's params hold them (:func:`fragility.scoring.agreement.layer_measures`)."""
        return {"table": self.table, "by": self.by, "values": list(self.values), "columns": list(self.columns), "sign": self.sign}


@dataclass(frozen=True)
class StressTest:
    """One stress test as the workflow, the collection tables and the memo see it.

    - ``tables``: table name → its columns in order (run columns and ``attack`` included);
      each table is written per (checkpoint, unit) to
      ``results/{dataset}/{model}/seed{S}/{table}/epoch{EEE}/{unit}.parquet`` and collected
      per (dataset, model) as ``results/{dataset}/{model}/{table}.parquet``;
    - ``units(config, model)``: the units it runs on for one model;
    - ``params(config, model, units)``: exactly what in the config changes the tables of
      those units of ``model`` (a rule's params, so Snakemake reruns a job when they change
      and only then);
    - ``run(context, unit, params)``: table name → the test's rows for that unit (its own
      columns; the job adds the run columns and the attack);
    - ``ranks``: how it orders layers for the rank agreement, if it does;
    - ``epochs(config, model)``: the checkpoint epochs it runs on (None: every checkpoint);
    - ``trains``: its jobs train, so they load the training split (:attr:`Context.training`);
    - ``inputs``: the names of further files of a checkpoint its jobs read (made by rules of
      their own, such as ``robust``: the adversarially trained network), in ``Context.paths``;
    - ``attack(params)``: the name of the attack its tables measure with, where that is not
      the checkpoint's adversarial set's (None: that one's).
    """

    name: str
    description: str
    tables: dict[str, list[str]]
    units: Callable[[dict, str], list[str]]
    run: Callable[[Context, str, dict], dict[str, pd.DataFrame]]
    params: Callable[[dict, str, list[str]], dict] = lambda config, model, units: {}
    ranks: RankMeasures | None = None
    priority: int = 0
    epochs: Callable[[dict, str], list[int]] | None = None
    trains: bool = False
    inputs: tuple[str, ...] = ()
    attack: Callable[[dict], str] | None = None


class Context:
    """What one stress job of one checkpoint loads once and all its units share: the
    checkpoint and its model, the test set, the adversarial set, the engine options and, for
    a test that trains, the training split (``data``: :func:`fragility.data.load_dataset`'s
    keyword arguments); ``inputs``: the further files the test reads (:attr:`StressTest.inputs`)."""

    def __init__(
        self,
        checkpoint: str | Path,
        testset: str | Path,
        adversarial: str | Path,
        device: str,
        options: SweepOptions,
        data: dict | None = None,
        inputs: dict[str, str | Path] | None = None,
    ):
        self.paths = {"checkpoint": checkpoint, "testset": testset, "adversarial": adversarial, **(inputs or {})}
        self.device, self.options, self.data = device, options, data
        self._shared: dict[str, object] = {}

    def shared(self, name: str, make: Callable[[], object]):
        """``make()``, computed once per job: what several units of one test need alike
        (the unperturbed accuracies, a run's initial state)."""
        if name not in self._shared:
            self._shared[name] = make()
        return self._shared[name]

    @functools.cached_property
    def tests(self):
        from ..artifacts import TestSet

        return TestSet.load(self.paths["testset"])

    @functools.cached_property
    def adversarial(self):
        from ..artifacts import AdversarialSet

        return AdversarialSet.load(self.paths["adversarial"], self.tests)

    @functools.cached_property
    def training(self):
        """The run's training split (a :class:`fragility.data.Dataset`), for tests that train."""
        from ..data import load_dataset

        if self.data is None:
            raise ValueError("this stress job was given no dataset to train on (Context data)")
        return load_dataset(**self.data)

    @functools.cached_property
    def checkpoint(self):
        from ..artifacts import Checkpoint
        from ..models import resolve_device

        return Checkpoint.read(self.paths["checkpoint"], resolve_device(self.device))

    @functools.cached_property
    def model(self):
        """The checkpoint's network in eval mode (every test leaves it as it found it)."""
        from ..models import resolve_device

        return self.checkpoint.model(resolve_device(self.device))

    @property
    def attack(self) -> str:
        """The name of the attack that made the adversarial set (``fgsm``, ``pgd-10``)."""
        return self.adversarial.attack
