"""Stress tests: each perturbs one unit (a layer, a block, ``__global__``, a split) of a
checkpoint's network and measures it on the clean and adversarial test sets. One module per
test, each with a ``TEST`` entry (:class:`fragility.stress.base.StressTest`) that owns its
settings, config checks, claims, prerequisites and summaries, registered here once by
:func:`register`; the workflow's rules, the config validation, the collection tables, the
claims and the memo read :data:`STRESS_TESTS`.

- :mod:`.synaptic` — synaptic filters h1, h2, h3 (the paper's internal stress);
- :mod:`.kernels` — kernel (node) dropout and adversarial targeting;
- :mod:`.reinit` — re-initialisation and re-randomisation;
- :mod:`.triage` — structural compression: a block replaced by one layer and retrained;
- :mod:`.semirobust` — subnetwork robustness: a robust first part with the checkpoint's last
  layers, then those fine-tuned.
"""

from __future__ import annotations

from ..config import validate_config
from ..scoring.claims import CLAIMS, register_claim
from . import kernels, reinit, semirobust, synaptic, triage
from .base import RUN_COLUMNS, Context, Prerequisite, RankMeasures, Settings, StressTest, Summary

STRESS_TESTS: dict[str, StressTest] = {}

__all__ = [
    "CLAIMS",
    "RUN_COLUMNS",
    "STRESS_TESTS",
    "Context",
    "Prerequisite",
    "RankMeasures",
    "Settings",
    "StressTest",
    "Summary",
    "claim_options",
    "rank_families",
    "register",
    "summary_owner",
    "validate",
]


def register(test: StressTest) -> StressTest:
    """Add ``test`` to :data:`STRESS_TESTS` and its claims to :data:`fragility.scoring.claims.CLAIMS`.
    Its table, prerequisite and summary names must be new: each file has one owner."""
    if test.name in STRESS_TESTS:
        raise ValueError(f"stress test {test.name!r} is registered twice")
    owned = {name for other in STRESS_TESTS.values() for name in _files(other)}
    clash = sorted(owned & set(_files(test)))
    if clash:
        raise ValueError(f"stress test {test.name!r}: {clash[0]!r} already belongs to another stress test")
    STRESS_TESTS[test.name] = test
    for spec in test.claims:
        register_claim(spec)
    return test


def _files(test: StressTest) -> list[str]:
    """The names of every table and file ``test`` makes."""
    return [*test.tables, *(s.name for s in test.summaries), *(p.name for p in test.prerequisites), *test.inputs]


for _module in (synaptic, kernels, reinit, triage, semirobust):
    register(_module.TEST)


def validate(config: dict) -> dict:
    """:func:`fragility.config.validate_config` with every registered stress test's own
    checks: the config with defaults filled in, or one :class:`fragility.config.ConfigError` line."""
    return validate_config(config, checks=[test.check for test in STRESS_TESTS.values() if test.check is not None])


def rank_families() -> list[dict]:
    """Every stress test's rank measures (in registry order), as the agreement reads them."""
    return [test.ranks.as_params() for test in STRESS_TESTS.values() if test.ranks is not None]


def summary_owner(table: str) -> tuple[StressTest, Summary] | None:
    """The stress test and :class:`Summary` that make ``table``, or None."""
    found = [(test, s) for test in STRESS_TESTS.values() for s in test.summaries if s.name == table]
    return found[0] if found else None


def claim_options(config: dict) -> dict:
    """Every stress test's claim settings, by test name (``options`` of :func:`fragility.scoring.claims.claims_table`)."""
    return {name: test.claim_options(config) for name, test in STRESS_TESTS.items()}
