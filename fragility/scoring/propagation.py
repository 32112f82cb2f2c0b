"""Where robustness propagates, read against the synaptic filters' scores (METHOD §14 and
§6): beside each semirobust split — its Acc, Acc*, Acc_sr and fine-tuning over trials —, the
mean adversarial score r_xε and r_ε of the layers of
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
    "protocol",
    "acc",  # the normal network's adversarial accuracy
    "acc_star",  # F*'s
    "acc_sr",  # F_sr's, before fine-tuning
    "acc_sr_gain",
    "best_acc_adv",  # the best fine-tuned adversarial accuracy, mean over trials
    "best_acc_adv_std",  # its std over trials (NaN with one)
    "epochs_to_converge",  # mean over the trials that reached Acc* − δ
    "trials",
    "converged",
    "score_adv_fa",
    "score_diff_fa",
    "score_adv_fb",
    "score_diff_fb",
    "n_fa",
    "n_fb",
    "why",
    "usable",
]
# the per-split means Kendall's τ pairs with the gain
PART_MEANS = ["score_adv_fa", "score_diff_fa", "score_adv_fb", "score_diff_fb"]
RUN = ["dataset", "model", "seed", "epoch"]
SPLIT = RUN + ["split_k", "first_fb_layer"]


def split_gain(semirobust: pd.DataFrame) -> pd.DataFrame:
    """Per (run, split), the supplement's columns: Acc, Acc*, Acc_sr (the normal, robust and
    semirobust networks' adversarial accuracies, measured once and repeated in every trial),
    Acc_sr − Acc, the best fine-tuned adversarial accuracy (mean and std over trials), the mean
    epochs to converge over the trials that reached Acc* − δ, how many trials ran and
    converged; with the protocol, and ``usable``/``why`` where the table has them."""
    table = semirobust if "trial" in semirobust else semirobust.assign(trial=0)
    start = table[table["finetune_epoch"] == 0].pivot_table(index=SPLIT, columns="network", values="acc_adv", aggfunc="mean")
    found = pd.DataFrame(
        {
            "acc": start.get("normal"),
            "acc_star": start.get("robust"),
            "acc_sr": start.get("semirobust"),
        },
        index=start.index,
    )
    found["acc_sr_gain"] = found["acc_sr"] - found["acc"]
    tuned = table[table["network"] == "finetuned"]
    if len(tuned):
        target = tuned["target_acc_adv"] if "target_acc_adv" in tuned else np.nan
        reached = tuned.assign(reached=tuned["acc_adv"] >= target)
        first = reached[reached["reached"]].groupby(SPLIT + ["trial"])["finetune_epoch"].min()
        trials = reached.groupby(SPLIT + ["trial"]).agg(best=("acc_adv", "max")).join(first.rename("converge"))
        per_split = trials.groupby(level=SPLIT).agg(
            best_acc_adv=("best", "mean"),
            best_acc_adv_std=("best", "std"),
            epochs_to_converge=("converge", "mean"),
            trials=("best", "size"),
            converged=("converge", "count"),
        )
        found = found.join(per_split)
    flags = {"protocol": ("protocol", "first"), "why": ("why", "first"), "usable": ("usable", "all")}
    present = {name: spec for name, spec in flags.items() if spec[0] in table}
    if present:
        found = found.join(table.groupby(SPLIT).agg(**present))
    found = found.reset_index()
    if "usable" not in found:
        found["usable"] = True
    return found.assign(why=found["why"].fillna("") if "why" in found else "")


def split_scores(scores: pd.DataFrame, semirobust: pd.DataFrame, layers: dict[str, list[str]], filter_name: str = "combined"):
    """One row per (run, split): its accuracies (:func:`split_gain`) and the mean r_xε (``score_adv``) and
    r_ε (``score_diff``) of ``filter_name`` over the scored layers of f_a and of f_b (f_b: the
    last k of ``layers[model]``, the filterable layers in registration order), with how many
    layers each mean has; a part with no scored layer at that checkpoint has NaN means."""
    rows = []
    own = scores[(scores["unit_kind"] == "layer") & (scores["filter"] == filter_name)].set_index(RUN + ["layer"])
    splits = split_gain(semirobust).reindex(columns=[c for c in SPLIT_SCORES_COLUMNS if not c.endswith(("_fa", "_fb"))])
    for split in splits.itertuples(index=False):
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
