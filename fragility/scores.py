"""The fragility scores under their first import path (kept for users' scripts): they live
in :mod:`fragility.scoring.scores` (point scores) and :mod:`fragility.scoring.tables`
(with bootstrap intervals)."""

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
