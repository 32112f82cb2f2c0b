"""Deprecated: the fragility scores under their first import path, kept for users' scripts
for one release and removed in the next. Importing it warns (``DeprecationWarning``): they
live in :mod:`fragility.scoring.scores` (point scores, ``SCORE_COLUMNS``),
:mod:`fragility.scoring.tables` (``score_table``, with bootstrap intervals) and
:mod:`fragility.scoring.bootstrap` (``INTERVAL_COLUMNS``)."""

import warnings

from .scoring.bootstrap import INTERVAL_COLUMNS
from .scoring.scores import (
    INTEGRATIONS,
    RUN_KEYS,
    SCORE_COLUMNS,
    adversarial_score,
    area,
    baseline,
    clean_score,
    difference_score,
    label,
    labels_of,
    normalise,
    normalise_scores,
    responses,
    scaled_performance,
)
from .scoring.tables import score_table

warnings.warn(
    "fragility.scores is deprecated and will be removed in the next release: import score_table from "
    "fragility.scoring.tables, INTERVAL_COLUMNS from fragility.scoring.bootstrap, and the score functions "
    "(baseline, scaled_performance, label, SCORE_COLUMNS, ...) from fragility.scoring.scores",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "INTEGRATIONS",
    "INTERVAL_COLUMNS",
    "RUN_KEYS",
    "SCORE_COLUMNS",
    "adversarial_score",
    "area",
    "baseline",
    "clean_score",
    "difference_score",
    "label",
    "labels_of",
    "normalise",
    "normalise_scores",
    "responses",
    "scaled_performance",
    "score_table",
]
