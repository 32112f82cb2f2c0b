"""The shape every stress test has, and what one stress job loads once for all its units.

A stress test perturbs one **unit** of a checkpoint's network — a layer, a block,
``__global__``, a split — and measures the network on the checkpoint's clean and adversarial
test sets. It is a :class:`StressTest`, declared in its own module and registered once
(:func:`fragility.stress.register`): which units it runs on, its :class:`Settings` (what in
the config changes its tables), its config ``check``, its ``run`` from a :class:`Context` and
a unit to its tables, its claims, the files it needs that a rule of its own makes
(:class:`Prerequisite`) and the tables it derives from the collected ones (:class:`Summary`).
Each table's full column order is declared with it: the run columns (``dataset, model,
seed, epoch``), the ``attack`` that made the adversarial set, and the test's own columns.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..artifacts import AdversarialSet, Checkpoint, TestSet
from ..data import load_dataset
from ..scoring.claims import ClaimSpec
from ..trust import RUN_COLUMNS

# torch and the modules that need it are imported where they are used: Snakemake imports this
# module while it plans a run, where torch may not be installed (fragility.structure).
if TYPE_CHECKING:
    from ..engine.sweep import SweepOptions

__all__ = ["RUN_COLUMNS", "Context", "Prerequisite", "RankMeasures", "Settings", "StressTest", "Summary"]


@dataclass(frozen=True)
class Settings:
    """What in the config changes a stress test's tables, as one frozen object: built once per
    (config, model) by :meth:`from_config` and passed whole to the functions that need it. A
    rule's params are its plain values (:meth:`as_params`), so Snakemake reruns a job exactly
    when one of them changes; the job rebuilds the object from them (:meth:`from_params`).
    A test with no settings uses this empty one."""

    @classmethod
    def from_config(cls, config: dict, model: str) -> Settings:
        return cls()

    def for_units(self, units: list[str]) -> Settings:
        """The settings of a job of ``units`` alone (those that name units keep only these)."""
        return self

    def as_params(self) -> dict:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_params(cls, params: dict) -> Settings:
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown setting {unknown[0]!r}; known: {sorted(names)}")
        return cls(**{name: _frozen(value) for name, value in params.items()})


def _plain(value):
    """Tuples as lists, recursively: the values a rule's params hold (as YAML and JSON write them)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return [_plain(item) for item in value] if isinstance(value, (list, tuple)) else value


def _frozen(value):
    """A list read back from a rule's params as the tuple a frozen settings object holds."""
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class RankMeasures:
    """How a stress test orders the layers from least to most robust, for the rank agreement
    (:mod:`fragility.scoring.agreement`): in the collected ``table``, the rows whose ``by``
    column equals each of ``values`` give one measure per column of ``columns`` (named
    ``{value}_{clean|adv}``), times ``sign`` (−1 for a drop: higher must mean more robust);
    ``where``: column → value, the rows kept first (triage: the ``fit`` initialisation's)."""

    table: str
    by: str
    values: tuple[str, ...]
    columns: tuple[str, ...]
    sign: int = 1
    where: dict = field(default_factory=dict)

    def as_params(self) -> dict:
        """Plain values, as a rule's params hold them (:func:`fragility.scoring.agreement.layer_measures`)."""
        plain = {
            "table": self.table,
            "by": self.by,
            "values": list(self.values),
            "columns": list(self.columns),
            "sign": self.sign,
        }
        return plain | ({"where": dict(self.where)} if self.where else {})


@dataclass(frozen=True)
class Prerequisite:
    """A file of a checkpoint that a stress test reads and a rule of its own makes (F*, the
    adversarially trained network). ``outputs``: file name → its path under the run folder
    ``results/{dataset}/{model}/seed{S}/`` with ``{epoch}``; ``make(context, settings,
    paths)`` writes every one of ``paths`` (file name → path). The workflow generates the
    rule ``name`` from it; the test's jobs find the files in :attr:`Context.paths`."""

    name: str
    description: str
    outputs: dict[str, str]
    make: Callable[[Context, Settings, dict[str, Path]], None]
    mem_mb: int = 4000
    uses_gpu: bool = True


@dataclass(frozen=True)
class Summary:
    """A table a stress test derives from collected tables of one (dataset, model):
    ``make(tables, params)`` with ``tables`` name → DataFrame (``tables`` below) and
    ``params(config, model)`` what in the config changes it. No torch needed to run it.
    The workflow writes it to ``results/{dataset}/{model}/{name}.parquet``."""

    name: str
    description: str
    tables: tuple[str, ...]
    make: Callable[[dict[str, pd.DataFrame], dict], pd.DataFrame]
    params: Callable[[dict, str], dict] = lambda config, model: {}


@dataclass(frozen=True)
class StressTest:
    """One stress test as the workflow, the collection tables, the claims and the memo see it.

    - ``tables``: table name → its columns in order (run columns and ``attack`` included);
      each table is written per (checkpoint, unit) to
      ``results/{dataset}/{model}/seed{S}/{table}/epoch{EEE}/{unit}.parquet`` and collected
      per (dataset, model) as ``results/{dataset}/{model}/{table}.parquet``;
    - ``units(config, model)``: the units it runs on for one model;
    - ``settings``: its :class:`Settings` class (``from_config(config, model)``);
    - ``run(context, unit, settings)``: table name → the test's rows for that unit (its own
      columns; the job adds the run columns and the attack);
    - ``check(config, model)``: its own config checks, each failing with one
      :class:`fragility.config.ConfigError` line naming the key; run before any job;
    - ``claims``: its findings (:class:`fragility.scoring.claims.ClaimSpec`), and
      ``claim_options(config)``: the config keys they read (``options[test name]``);
    - ``prerequisites``: files it reads that a rule of its own makes;
    - ``summaries``: tables it derives from collected tables;
    - ``ranks``: how it orders layers for the rank agreement, if it does;
    - ``epochs(config, model)``: the checkpoint epochs it runs on (None: every checkpoint);
    - ``trains``: its jobs train, so they load the training split (:attr:`Context.training`);
    - ``attack(settings)``: the name of the attack its tables measure with, where that is not
      the checkpoint's adversarial set's (None: that one's).
    """

    name: str
    description: str
    tables: dict[str, list[str]]
    units: Callable[[dict, str], list[str]]
    run: Callable[[Context, str, Settings], dict[str, pd.DataFrame]]
    settings: type[Settings] = Settings
    check: Callable[[dict, str], None] | None = None
    claims: tuple[ClaimSpec, ...] = ()
    claim_options: Callable[[dict], dict] = lambda config: {}
    prerequisites: tuple[Prerequisite, ...] = ()
    summaries: tuple[Summary, ...] = ()
    ranks: RankMeasures | None = None
    priority: int = 0
    epochs: Callable[[dict, str], list[int]] | None = None
    trains: bool = False
    attack: Callable[[Settings], str] | None = None

    def params(self, config: dict, model: str, units: list[str]) -> dict:
        """Exactly what in the config changes the tables of ``units`` of ``model``: a rule's params."""
        return self.settings.from_config(config, model).for_units(units).as_params()

    @property
    def inputs(self) -> dict[str, str]:
        """File name → path under the run folder of every file its prerequisites make."""
        return {name: path for prerequisite in self.prerequisites for name, path in prerequisite.outputs.items()}


class Context:
    """What one stress job of one checkpoint loads once and all its units share: the
    checkpoint and its model, the test set, the adversarial set, the engine options and, for
    a test that trains, the training split (``data``: :func:`fragility.data.load_dataset`'s
    keyword arguments); ``inputs``: the files its prerequisites made (:attr:`StressTest.inputs`)."""

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
    def testset(self) -> TestSet:
        """The checkpoint's clean test images and labels."""
        return TestSet.load(self.paths["testset"])

    @functools.cached_property
    def adversarial(self) -> AdversarialSet:
        return AdversarialSet.load(self.paths["adversarial"], self.testset)

    @functools.cached_property
    def training(self):
        """The run's training split (a :class:`fragility.data.Dataset`), for tests that train."""
        if self.data is None:
            raise ValueError("this stress job was given no dataset to train on (Context data)")
        return load_dataset(**self.data)

    @functools.cached_property
    def checkpoint(self) -> Checkpoint:
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
