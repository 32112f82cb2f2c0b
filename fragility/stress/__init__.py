"""Stress tests: each perturbs one unit (a layer, ``__global__``) of a checkpoint's network
and measures it on the clean and adversarial test sets. One module per test, each with a
``TEST`` entry (:class:`fragility.stress.base.StressTest`) registered here once; the
workflow's rules, the collection tables and the memo read :data:`STRESS_TESTS`.

- :mod:`.synaptic` — synaptic filters h1, h2, h3 (the paper's internal stress);
- :mod:`.kernels` — kernel (node) dropout and adversarial targeting;
- :mod:`.reinit` — re-initialisation and re-randomisation;
- :mod:`.triage` — structural compression: a block replaced by one layer and retrained;
- :mod:`.semirobust` — subnetwork robustness: a robust first part with the checkpoint's last
  layers, then those fine-tuned.
"""

from __future__ import annotations

from . import kernels, reinit, semirobust, synaptic, triage
from .base import RUN_COLUMNS, Context, RankMeasures, StressTest

STRESS_TESTS: dict[str, StressTest] = {
    test.name: test for test in (synaptic.TEST, kernels.TEST, reinit.TEST, triage.TEST, semirobust.TEST)
}

__all__ = ["RUN_COLUMNS", "STRESS_TESTS", "Context", "RankMeasures", "StressTest", "rank_families"]


def rank_families() -> list[dict]:
    """Every stress test's rank measures (in registry order), as the agreement reads them."""
    return [test.ranks.as_params() for test in STRESS_TESTS.values() if test.ranks is not None]
