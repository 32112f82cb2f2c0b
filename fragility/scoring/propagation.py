"""Where robustness propagates, read against the synaptic filters' scores (METHOD §14 and
§6): beside each semirobust split, the mean adversarial score r_ε and Δr of the layers of
f_a and of f_b, and Kendall's τ between a split's gain Acc_sr − Acc and those means — do the
layers the filters call robust receive the robustness a robust f_a hands on?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .agreement import kendall_tau_b

SPLIT_SCORES_COLUMNS = [
    "dataset",
    "model",
    "seed",
    "epoch",
    "split_k",
    "first_fb_layer",
    "acc_sr_gain",
    "score_adv_fa",
    "score_diff_fa",
    "score_adv_fb",
    "score_diff_fb",
    "n_fa",
    "n_fb",
]
# the per-split means Kendall's τ pairs with the gain
PART_MEANS = ["score_adv_fa", "score_diff_fa", "score_adv_fb", "score_diff_fb"]
RUN = ["dataset", "model", "seed", "epoch"]


def split_gain(semirobust: pd.DataFrame) -> pd.DataFrame:
    """Per (run, split): Acc_sr − Acc, the semirobust network's adversarial accuracy minus the
    normal network's, with the split's first layer of f_b."""
    keys = RUN + ["split_k", "first_fb_layer"]
    accuracy = {net: semirobust[semirobust["network"] == net].set_index(keys)["acc_adv"] for net in ("semirobust", "normal")}
    return (accuracy["semirobust"] - accuracy["normal"]).rename("acc_sr_gain").reset_index()


def split_scores(scores: pd.DataFrame, semirobust: pd.DataFrame, layers: dict[str, list[str]], filter_name: str = "combined"):
    """One row per (run, split): the gain Acc_sr − Acc and the mean r_ε (``score_adv``) and
    Δr (``score_diff``) of ``filter_name`` over the scored layers of f_a and of f_b (f_b: the
    last k of ``layers[model]``, the filterable layers in registration order), with how many
    layers each mean has; a part with no scored layer at that checkpoint has NaN means."""
    rows = []
    own = scores[(scores["unit_kind"] == "layer") & (scores["filter"] == filter_name)].set_index(RUN + ["layer"])
    for split in split_gain(semirobust).itertuples(index=False):
        order = layers[split.model]
        parts = {"fa": order[: len(order) - split.split_k], "fb": order[len(order) - split.split_k :]}
        row = split._asdict()
        for part, names in parts.items():
            found = own.reindex([(split.dataset, split.model, split.seed, split.epoch, name) for name in names]).dropna(
                subset=["score_adv"]
            )
            row |= {
                f"score_adv_{part}": float(found["score_adv"].mean()) if len(found) else np.nan,
                f"score_diff_{part}": float(found["score_diff"].mean()) if len(found) else np.nan,
                f"n_{part}": len(found),
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=SPLIT_SCORES_COLUMNS)


def gain_agreement(split_table: pd.DataFrame) -> dict[str, float]:
    """Kendall's τ_b between the gain and each part's mean score, over every (run, split) of
    one (dataset, model); NaN where fewer than two pairs vary."""
    return {mean: kendall_tau_b(split_table["acc_sr_gain"], split_table[mean]) for mean in PART_MEANS}
