"""The score table: point scores and labels with their bootstrap intervals, per unit and filter."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import GLOBAL_LAYER
from ..trust import RUN_COLUMNS, undetermine_labels, with_usable
from .bootstrap import INTERVAL_COLUMNS, intervals
from .scores import SCORE_COLUMNS, point_scores

__all__ = ["INTERVAL_COLUMNS", "SCORE_COLUMNS", "score_table"]


def score_table(
    sweep_df: pd.DataFrame, integration: str = "rectangle", tau: float = 0.02, bootstrap: int = 0, bootstrap_seed: int = 0
) -> pd.DataFrame:
    """Scores, labels and normalised scores per unit and filter (h1, h2, h3, combined); with
    ``bootstrap`` replicates (and the sweep's per-image ``correct_*`` columns) their 95 %
    intervals and label confidences (:mod:`fragility.scoring.bootstrap`), else NaN there.
    A sweep with ``usable`` flags (:mod:`fragility.trust`) passes them on, and the labels
    of unusable checkpoints are ``undetermined`` (the scores are kept)."""
    table = intervals(point_scores(sweep_df, integration, tau), sweep_df, integration, tau, bootstrap, bootstrap_seed)
    if "unit_kind" in sweep_df:  # layer, block or global, beside the unit's name
        keys = [k for k in RUN_COLUMNS if k in sweep_df] + ["layer"]
        table = table.merge(sweep_df[keys + ["unit_kind"]].drop_duplicates(), on=keys, how="left", validate="many_to_one")
    else:  # a sweep written before blocks: its units are layers and __global__
        table["unit_kind"] = np.where(table["layer"] == GLOBAL_LAYER, "global", "layer")
    table = table[[c for c in SCORE_COLUMNS if c in table] + [c for c in table if c not in SCORE_COLUMNS]]
    if "usable" not in sweep_df:
        return table
    return undetermine_labels(with_usable(table, sweep_df[RUN_COLUMNS + ["usable"]].drop_duplicates()))
