"""Deprecated: the synaptic filter sweep under its first import path, kept for users' scripts
for one release and removed in the next. Importing it warns (``DeprecationWarning``): the
sweep itself lives in :mod:`fragility.stress.synaptic` (``sweep``, ``SWEEP_COLUMNS``,
``Variant``, ``plan_variants``, ``predict_variants``), the engine in
:mod:`fragility.engine.sweep` (``SweepOptions``, ``MaskedLayer``, ``METHODS``,
``UNFILTERED``, ``predict_removals``)."""

import warnings

from .engine.sweep import METHODS, UNFILTERED, MaskedLayer, SweepOptions, predict_removals
from .stress.synaptic import SWEEP_COLUMNS, Variant, plan_variants, predict_variants, sweep

warnings.warn(
    "fragility.sweep is deprecated and will be removed in the next release: import SweepOptions, MaskedLayer, "
    "METHODS, UNFILTERED and predict_removals from fragility.engine.sweep; sweep, SWEEP_COLUMNS, Variant, "
    "plan_variants and predict_variants from fragility.stress.synaptic",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "METHODS",
    "SWEEP_COLUMNS",
    "UNFILTERED",
    "MaskedLayer",
    "SweepOptions",
    "Variant",
    "plan_variants",
    "predict_removals",
    "predict_variants",
    "sweep",
]
