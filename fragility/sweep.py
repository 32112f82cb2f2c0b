"""The synaptic filter sweep under its first import path (kept for users' scripts): the
sweep itself lives in :mod:`fragility.stress.synaptic`, the engine in
:mod:`fragility.engine.sweep`."""

from .engine.sweep import METHODS, UNFILTERED, MaskedLayer, SweepOptions, predict_removals
from .stress.synaptic import SWEEP_COLUMNS, Variant, plan_variants, predict_variants, sweep

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
